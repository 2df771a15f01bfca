// Scenario: pusher-js and the pusher SDK through nginx running the README's
// example (TestREADMENginxExample), in front of revurb. WS_PORT and API_PORT
// are both nginx's port: one origin, as Laravel's REVERB_HOST:REVERB_PORT.
//
// Client c1 subscribes to via-nginx and private-via-nginx, client c2 to
// private-via-nginx (both authorized by authserver.mjs). The SDK triggers
// proxied-event {"n":1} on both channels; c2 whispers client-hello
// {"from":"c2"} on private-via-nginx; the SDK asks GET /channels. Output:
// {socket_c1, socket_c2, c1:{states,errors,events}, c2:{...},
//  trigger:{status,body,json}, whisper: bool, channels:{status,body,json}}
import { run, env, newClient, connected, subscribe, sdk, trigger, reply, named, waitFor, sleep } from './lib.mjs';
import { startAuthServer } from './authserver.mjs';

run(async (obs) => {
  const api = sdk();
  const auth = await startAuthServer(api);
  const opts = { channelAuthorization: { endpoint: `${auth.base}/auth` } };
  const c1 = {};
  const c2 = {};
  obs.c1 = c1;
  obs.c2 = c2;
  const p1 = newClient(c1, env.appKey, opts);
  const p2 = newClient(c2, env.appKey, opts);
  obs.socket_c1 = await connected(p1);
  obs.socket_c2 = await connected(p2);
  await Promise.all([
    subscribe(p1, c1, 'via-nginx'),
    subscribe(p1, c1, 'private-via-nginx'),
    subscribe(p2, c2, 'private-via-nginx'),
  ]);

  obs.trigger = await trigger(api, ['via-nginx', 'private-via-nginx'], 'proxied-event', { n: 1 });
  await waitFor(() => named(c1, 'proxied-event').length >= 2 && named(c2, 'proxied-event').length >= 1);

  obs.whisper = p2.channel('private-via-nginx').trigger('client-hello', { from: 'c2' });
  await waitFor(() => named(c1, 'client-hello').length >= 1);

  obs.channels = await reply(() => api.get({ path: '/channels' }));
  await sleep(300); // let duplicates, or an echo to c2, arrive
});
