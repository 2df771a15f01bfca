// Scenario: pusher-js and pusher_internal:subscription_count, surfaced as
// pusher:subscription_count on the channel.
//
// p1 subscribes to counted, then p2 does, then p2 unsubscribes. Whether the
// server sends counts is the app's setting, so each step waits for the count
// it may cause for at most 600 ms. Output: {p1:{events,errors,count},
// p2:{...}}, count being pusher-js's channel.subscriptionCount at the end.
import { run, newClient, connected, subscribe, named, waitUpTo, sleep } from './lib.mjs';

run(async (obs) => {
  const r1 = {};
  const r2 = {};
  obs.p1 = r1;
  obs.p2 = r2;
  const p1 = newClient(r1);
  const p2 = newClient(r2);
  await Promise.all([connected(p1), connected(p2)]);
  const counts = (rec) => named(rec, 'pusher:subscription_count').length;

  await subscribe(p1, r1, 'counted');
  await waitUpTo(() => counts(r1) >= 1, 600);
  await subscribe(p2, r2, 'counted');
  await waitUpTo(() => counts(r1) >= 2 && counts(r2) >= 1, 600);
  p2.unsubscribe('counted');
  await waitUpTo(() => counts(r1) >= 3, 600);
  await sleep(200);
  r1.count = p1.channel('counted').subscriptionCount ?? null;
});
