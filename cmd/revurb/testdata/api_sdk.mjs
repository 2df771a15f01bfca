// Scenario: the HTTP API through the pusher server SDK (v5), checked
// against what pusher-js clients are subscribed to.
//
// Clients: A (presence-room as user "1", news, private-orders) and B
// (presence-room as user "2", signed in as "2" with pusher.signin() so that
// terminate_connections applies to it). Channel and user auth are signed
// locally with the SDK (authorizeChannel, authenticateUser) through
// pusher-js customHandlers. Steps:
//  1. the GET routes: channels (all; presence- with user_count), one channel
//     (presence-room, news), users (presence-room; news → 400),
//     channels?info=user_count without a prefix (→ 400);
//  2. triggerBatch b1 on news, b2 on private-orders (info on the second);
//  3. a batch of 11 events (→ 400), a batch with one bad channel name
//     (→ 400), then 300 ms for anything they wrongly published;
//  4. trigger with-info on news with info=subscription_count;
//  5. terminateUserConnections("2"): B goes down; /users is polled until
//     only "1" is left (up to 3 s).
// Output: {a, b: {states, errors, events}, b_signed_in, gets: {...}, batch,
//  batch_too_large, batch_bad_channel, with_info, terminate, users_after,
//  users_polls, room_after, a_state_at_end}
import { run, newClient, connected, subscribe, sdk, reply, trigger, waitFor, waitUpTo, sleep, named } from './lib.mjs';

run(async (obs) => {
  const api = sdk();

  // authOptions signs channel (and user) authorization locally with the SDK.
  const authOptions = (userId, name) => ({
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const data = channelName.startsWith('presence-') ? { user_id: userId, user_info: { name } } : undefined;
          callback(null, api.authorizeChannel(socketId, channelName, data));
        } catch (err) {
          callback(err, null);
        }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try {
          callback(null, api.authenticateUser(socketId, { id: userId }));
        } catch (err) {
          callback(err, null);
        }
      },
    },
  });

  const a = {};
  const b = {};
  obs.a = a;
  obs.b = b;
  const pa = newClient(a, undefined, authOptions('1', 'A'));
  const pb = newClient(b, undefined, authOptions('2', 'B'));
  await Promise.all([connected(pa), connected(pb)]);

  // B signs in as "2": terminate_connections closes signed-in connections.
  const signedIn = new Promise((resolve) => {
    pb.connection.bind('message', (m) => {
      if (m.event === 'pusher:signin_success') resolve(true);
    });
  });
  pb.signin();
  obs.b_signed_in = await Promise.race([signedIn, sleep(2000).then(() => false)]);

  await subscribe(pa, a, 'presence-room');
  await subscribe(pb, b, 'presence-room');
  await Promise.all([subscribe(pa, a, 'news'), subscribe(pa, a, 'private-orders')]);
  // A has seen B join: the server's state is settled.
  await waitFor(() => named(a, 'pusher:member_added').length >= 1);

  // 1. GET routes.
  const get = (path, params) => reply(() => api.get(params ? { path, params } : { path }));
  obs.gets = {
    channels: await get('/channels'),
    presence_user_count: await get('/channels', { filter_by_prefix: 'presence-', info: 'user_count' }),
    room: await get('/channels/presence-room', { info: 'user_count,subscription_count' }),
    news: await get('/channels/news', { info: 'subscription_count' }),
    room_users: await get('/channels/presence-room/users'),
    news_users: await get('/channels/news/users'),
    user_count_no_prefix: await get('/channels', { info: 'user_count' }),
  };

  // 2. A batch of two, info asked on the second.
  obs.batch = await reply(() =>
    api.triggerBatch([
      { channel: 'news', name: 'b1', data: { n: 1 } },
      { channel: 'private-orders', name: 'b2', data: { n: 2 }, info: 'subscription_count' },
    ]),
  );
  await waitFor(() => named(a, 'b1').length >= 1 && named(a, 'b2').length >= 1);

  // 3. Refused batches publish nothing.
  const eleven = [];
  for (let i = 0; i < 11; i++) eleven.push({ channel: 'news', name: `over-${i}`, data: { i } });
  obs.batch_too_large = await reply(() => api.triggerBatch(eleven));
  obs.batch_bad_channel = await reply(() =>
    api.triggerBatch([
      { channel: 'news', name: 'partial', data: { n: 3 } },
      { channel: 'private-orders', name: 'partial', data: { n: 4 } },
      { channel: 'bad channel!', name: 'partial', data: { n: 5 } },
    ]),
  );
  await sleep(300);

  // 4. A trigger asking for info.
  obs.with_info = await trigger(api, 'news', 'with-info', { x: 1 }, { info: 'subscription_count' });
  await waitFor(() => named(a, 'with-info').length >= 1);
  await sleep(200); // duplicates, if any, show here

  // 5. Terminate user "2".
  obs.terminate = await reply(() => api.terminateUserConnections('2'));
  const down = (s) => s === 'disconnected' || s === 'failed' || s === 'unavailable';
  await waitUpTo(() => down(b.states.at(-1)), 3000);
  obs.users_polls = 0;
  const gone = () => JSON.stringify(obs.users_after?.json) === JSON.stringify({ users: [{ id: '1' }] });
  const deadline = Date.now() + 3000;
  for (;;) {
    obs.users_polls++;
    obs.users_after = await get('/channels/presence-room/users');
    if (gone() || Date.now() > deadline) break;
    await sleep(50);
  }
  obs.room_after = await get('/channels/presence-room', { info: 'user_count,subscription_count' });
  await waitUpTo(() => named(a, 'pusher:member_removed').length >= 1, 2000);
  await sleep(300); // a reconnect of B, if pusher-js attempted one, shows here
  obs.a_state_at_end = pa.connection.state;
});
