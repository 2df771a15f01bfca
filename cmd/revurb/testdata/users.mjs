// Scenario: pusher-js users — pusher.signin(), sendToUser, watchlists and
// terminateUserConnections, signed by a real user-authentication endpoint.
//
// Connections: carol (watching alice and bob), alice a1 and a2, bob b1 and b2
// (both watching alice). Steps, each waiting for what it causes:
//  carol signs in; a1 signs in; a2 signs in; b1 signs in; b2 signs in;
//  sendToUser(alice, greet, {n:1}) then sendToUser(bob, greet, {n:2});
//  terminateUserConnections(alice); b1 disconnects; b2 disconnects.
// Output: {carol, a1, a2, b1, b2: {states, errors, user_data, greet,
//  watchlist, channels}, send_alice, send_bob, terminate}
import PusherJS from 'pusher-js';
import { run, env, clientOptions, track, plainError, sdk, reply, waitFor, sleep } from './lib.mjs';
import { startAuthServer, authQuery } from './authserver.mjs';

run(async (obs) => {
  const api = sdk();
  const auth = await startAuthServer(api);

  // signedIn makes a pusher-js client signed in as user; it resolves once
  // pusher:signin_success arrived (and, with a watchlist, the first
  // watchlist event).
  const signedIn = async (name, user, watch) => {
    const rec = { states: [], errors: [], greet: [], watchlist: [], channels: [] };
    obs[name] = rec;
    const q = authQuery({ user, watch });
    const p = track(
      new PusherJS(
        env.appKey,
        clientOptions({
          channelAuthorization: { endpoint: `${auth.base}/auth?${q}` },
          userAuthentication: { endpoint: `${auth.base}/user-auth?${q}` },
        }),
      ),
    );
    rec.states.push(p.connection.state);
    p.connection.bind('state_change', (s) => rec.states.push(s.current));
    p.connection.bind('error', (e) => rec.errors.push(plainError(e)));
    p.connection.bind('message', (m) => {
      if (m.channel && m.event === 'pusher_internal:subscription_succeeded') rec.channels.push(m.channel);
    });
    p.user.bind('greet', (data) => rec.greet.push(data));
    p.user.watchlist.bind('online', (e) => rec.watchlist.push(e));
    p.user.watchlist.bind('offline', (e) => rec.watchlist.push(e));
    const done = new Promise((resolve) => {
      p.connection.bind('message', (m) => {
        if (m.event === 'pusher:signin_success') resolve();
      });
    });
    p.signin();
    await done;
    if (watch) await waitFor(() => rec.watchlist.length >= 1);
    rec.user_data = p.user.user_data;
    return p;
  };

  await signedIn('carol', 'carol', ['alice', 'bob']);
  await signedIn('a1', 'alice');
  await waitFor(() => obs.carol.watchlist.length >= 2);
  await signedIn('a2', 'alice');
  const b1 = await signedIn('b1', 'bob', ['alice']);
  await waitFor(() => obs.carol.watchlist.length >= 3);
  const b2 = await signedIn('b2', 'bob', ['alice']);
  await sleep(100);

  obs.send_alice = await reply(() => api.sendToUser('alice', 'greet', { n: 1 }));
  obs.send_bob = await reply(() => api.sendToUser('bob', 'greet', { n: 2 }));
  await waitFor(() => ['a1', 'a2', 'b1', 'b2'].every((n) => obs[n].greet.length >= 1));
  await sleep(200);

  obs.terminate = await reply(() => api.terminateUserConnections('alice'));
  const final = (s) => s === 'disconnected' || s === 'failed' || s === 'unavailable';
  await waitFor(
    () =>
      final(obs.a1.states.at(-1)) &&
      final(obs.a2.states.at(-1)) &&
      obs.carol.watchlist.length >= 4 &&
      obs.b1.watchlist.length >= 2 &&
      obs.b2.watchlist.length >= 2,
  );
  await sleep(300); // a reconnect, if pusher-js attempted one, shows here

  b1.disconnect();
  await sleep(300);
  b2.disconnect();
  await waitFor(() => obs.carol.watchlist.length >= 5);
  await sleep(200);
});
