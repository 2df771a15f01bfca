// Scenario: Laravel Echo (BROADCASTER=reverb or pusher) on private,
// presence and encrypted channels, authorized by a real auth endpoint.
//
// Users: 1 Alice (echo a), 2 Bob (echo b and echo b2: two connections),
// 3 Carol (echo c), 4 Dave (echo d, whose endpoint signs for another socket).
// Steps, each waiting for what it causes:
//  private:   a listens on private-orders; the SDK triggers OrderPlaced.
//  whisper:   a and b on private-chat whisper typing to each other.
//  presence:  a, b, b2, c join room in turn; a whispers on it, then c does;
//             b leaves (b2 stays), c's socket drops abruptly, b2 disconnects.
//  encrypted: a listens on private-encrypted-secret; the SDK (with a master
//             key) triggers SecretEvent.
//  error:     d subscribes private-denied with a forged auth; the SDK then
//             triggers Nope there and Ping on a public channel d joins.
// Output: {orders, chat:{a,b}, room:{...}, secret, denied:{...}, errors}
import crypto from 'node:crypto';
import Echo from 'laravel-echo';
import PusherJS from 'pusher-js';
import { run, env, clientOptions, track, sdk, trigger, waitFor, sleep, dropSocket } from './lib.mjs';
import { startAuthServer, authQuery } from './authserver.mjs';

const broadcaster = process.env.BROADCASTER || 'pusher';

run(async (obs) => {
  obs.broadcaster = broadcaster;
  obs.errors = {};
  const api = sdk(env.appSecret, { encryptionMasterKeyBase64: crypto.randomBytes(32).toString('base64') });
  const auth = await startAuthServer(api);

  const echoFor = (name, who) => {
    const q = authQuery(who);
    const echo = new Echo({
      broadcaster,
      key: env.appKey,
      Pusher: PusherJS,
      ...clientOptions(),
      authEndpoint: `${auth.base}/auth?${q}`,
      userAuthentication: { endpoint: `${auth.base}/user-auth?${q}`, headers: {} },
    });
    track(echo);
    obs.errors[name] = [];
    echo.connector.pusher.connection.bind('error', (e) => obs.errors[name].push(e?.data?.code ?? e?.error?.data?.code ?? null));
    return echo;
  };
  const subscribed = (ch) => new Promise((resolve) => ch.subscribed(resolve));
  const whisperLog = (list) => (data, meta) => list.push({ data, user_id: meta?.user_id ?? null });

  const a = echoFor('a', { user: 1, info: { name: 'Alice' } });
  const b = echoFor('b', { user: 2, info: { name: 'Bob' } });

  // private: an SDK-triggered event.
  obs.orders = { received: [] };
  await subscribed(a.private('orders').listen('.OrderPlaced', (data) => obs.orders.received.push(data)));
  obs.orders.trigger = await trigger(api, 'private-orders', 'OrderPlaced', { id: 7, total: '9.99' });
  await waitFor(() => obs.orders.received.length >= 1);

  // whisper on a private channel.
  obs.chat = { a: [], b: [] };
  const chatA = a.private('chat').listenForWhisper('typing', whisperLog(obs.chat.a));
  const chatB = b.private('chat').listenForWhisper('typing', whisperLog(obs.chat.b));
  await Promise.all([subscribed(chatA), subscribed(chatB)]);
  chatA.whisper('typing', { who: 'Alice', typing: true });
  await waitFor(() => obs.chat.b.length >= 1);
  chatB.whisper('typing', { who: 'Bob', typing: false });
  await waitFor(() => obs.chat.a.length >= 1);

  // presence.
  const room = { here: {}, joining: [], leaving: [], added: [], removed: [], whispers: {} };
  obs.room = room;
  const join = async (name, echo) => {
    room.whispers[name] = [];
    const ch = echo.join('room');
    await new Promise((resolve) => {
      ch.here((members) => {
        room.here[name] = members;
        resolve();
      });
    });
    ch.listenForWhisper('typing', whisperLog(room.whispers[name]));
    return ch;
  };
  const roomA = await join('a', a);
  roomA.joining((info) => room.joining.push(info)).leaving((info) => room.leaving.push(info));
  const pa = a.connector.pusher.channel('presence-room');
  pa.bind('pusher:member_added', (m) => room.added.push(m));
  pa.bind('pusher:member_removed', (m) => room.removed.push(m));
  room.me = pa.members.me;

  await join('b', b);
  await waitFor(() => room.joining.length >= 1);
  const b2 = echoFor('b2', { user: 2, info: { name: 'Bob' } });
  await join('b2', b2);
  await sleep(150);
  const c = echoFor('c', { user: 3, info: { name: 'Carol' } });
  const roomC = await join('c', c);
  await waitFor(() => room.joining.length >= 2);
  room.count_after_joins = pa.members.count;

  roomA.whisper('typing', { who: 'Alice' });
  await waitFor(() => room.whispers.b.length >= 1 && room.whispers.b2.length >= 1 && room.whispers.c.length >= 1);
  roomC.whisper('typing', { who: 'Carol' });
  await waitFor(() => room.whispers.a.length >= 1);
  await sleep(150);

  b.leave('room');
  await sleep(300);
  room.leaving_after_b_left = room.leaving.length;
  dropSocket(c.connector.pusher);
  await waitFor(() => room.leaving.length >= 1);
  b2.disconnect();
  await waitFor(() => room.leaving.length >= 2);
  room.count_at_end = pa.members.count;

  // encrypted: the SDK encrypts, pusher-js decrypts with the shared secret.
  obs.secret = { received: [], errors: [] };
  await subscribed(
    a
      .encryptedPrivate('secret')
      .listen('.SecretEvent', (data) => obs.secret.received.push(data))
      .error((e) => obs.secret.errors.push(e)),
  );
  obs.secret.trigger = await trigger(api, 'private-encrypted-secret', 'SecretEvent', { text: 'the eagle lands at 9', n: [1, 2] });
  await waitFor(() => obs.secret.received.length >= 1);

  // error: auth signed for another socket.
  const d = echoFor('d', { user: 4, socket: '123.456' });
  obs.denied = { errors: [], nope: [], after: [] };
  d.private('denied')
    .error((e) => obs.denied.errors.push(e))
    .subscribed(() => (obs.denied.subscribed = true))
    .listen('.Nope', (data) => obs.denied.nope.push(data));
  await waitFor(() => obs.denied.errors.length >= 1);
  await subscribed(d.channel('after-denied').listen('.Ping', (data) => obs.denied.after.push(data)));
  obs.denied.nope_trigger = await trigger(api, 'private-denied', 'Nope', { n: 1 });
  obs.denied.ping_trigger = await trigger(api, 'after-denied', 'Ping', { n: 2 });
  await waitFor(() => obs.denied.after.length >= 1);
  await sleep(200);
  obs.denied.state = d.connector.pusher.connection.state;
  obs.auth_paths = [...new Set(auth.requests.map((r) => r.path))];
});
