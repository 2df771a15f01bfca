// Scenario: trigger with socket_id excludes that one connection.
//
// Clients A and B subscribe to excl-channel. The SDK triggers first-event
// with socket_id = A's, then second-event with no exclusion. Per-connection
// order means that once A has second-event, first-event had its chance.
// Output: {socket_a, socket_b, a:{...}, b:{...}, first:{status,...}, second:{...}}
import { run, newClient, connected, subscribe, sdk, trigger, named, waitFor, sleep } from './lib.mjs';

run(async (obs) => {
  const a = {};
  const b = {};
  obs.a = a;
  obs.b = b;
  const pa = newClient(a);
  const pb = newClient(b);
  obs.socket_a = await connected(pa);
  obs.socket_b = await connected(pb);
  await Promise.all([subscribe(pa, a, 'excl-channel'), subscribe(pb, b, 'excl-channel')]);

  const api = sdk();
  obs.first = await trigger(api, 'excl-channel', 'first-event', { n: 1 }, { socket_id: obs.socket_a });
  obs.second = await trigger(api, 'excl-channel', 'second-event', { n: 2 });

  await waitFor(() => named(a, 'second-event').length >= 1 && named(b, 'second-event').length >= 1);
  await sleep(300);
});
