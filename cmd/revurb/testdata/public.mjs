// Scenario: pusher-js on public channels, events triggered by the pusher SDK.
//
// Client 1 subscribes to my-channel and chan-a, client 2 to chan-b. The SDK
// triggers my-event {"message":"hello"} on my-channel, then multi-event
// {"n":2} on [chan-a, chan-b] in one call. Output:
// {socket_id, c1:{states,errors,events}, c2:{...}, single:{status,body,json},
//  multi:{...}}
import { run, newClient, connected, subscribe, sdk, trigger, named, waitFor, sleep } from './lib.mjs';

run(async (obs) => {
  const c1 = {};
  const c2 = {};
  obs.c1 = c1;
  obs.c2 = c2;
  const p1 = newClient(c1);
  const p2 = newClient(c2);
  obs.socket_id = await connected(p1);
  await connected(p2);
  await Promise.all([
    subscribe(p1, c1, 'my-channel'),
    subscribe(p1, c1, 'chan-a'),
    subscribe(p2, c2, 'chan-b'),
  ]);

  const api = sdk();
  obs.single = await trigger(api, 'my-channel', 'my-event', { message: 'hello' });
  obs.multi = await trigger(api, ['chan-a', 'chan-b'], 'multi-event', { n: 2 });

  await waitFor(() => named(c1, 'my-event').length >= 1 && named(c1, 'multi-event').length >= 1 && named(c2, 'multi-event').length >= 1);
  await sleep(300); // let duplicates, if any, arrive
});
