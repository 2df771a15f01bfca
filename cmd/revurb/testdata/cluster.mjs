// A driver for the cluster tests: pusher-js clients and the pusher SDK
// against several revurb nodes, told what to do one command at a time.
//
// The test writes one JSON command per line on stdin and reads one JSON
// reply per line on stdout, {seq, ...} with the command's seq. Nothing is
// judged here; the replies are what the clients saw. NODES is a JSON list
// of {ws, api} ports.
//
// Commands:
//   connect   {id, node, user?, info?, watch?}      → {socket_id}
//   subscribe {id, channel}                         → {event, data}: succeeded or error
//   signin    {id}                                  → {user_data}
//   whisper   {id, channel, event, data}            → {}
//   disconnect {id}                                 → {}
//   wait      {id, event, channel?, count, ms}      → {ok, events}
//   seen      {id}                                  → {events, states, watchlist}
//   trigger   {node, channel, event, data, socket_id?} → {status, body}
//   get       {node, path, params?}                 → {status, json}
//   terminate {node, user}                          → {status}
//   sendToUser {node, user, event, data}            → {status}
import readline from 'node:readline';
import PusherJS from 'pusher-js';
import PusherSDK from 'pusher';
import { env, clientOptions, track, plainError, reply, waitUpTo } from './lib.mjs';
import { startAuthServer, authQuery } from './authserver.mjs';

const nodes = JSON.parse(process.env.NODES);
const sdks = nodes.map(
  (n) =>
    new PusherSDK({
      appId: env.appId,
      key: env.appKey,
      secret: env.appSecret,
      host: '127.0.0.1',
      port: String(n.api),
      useTLS: false,
      timeout: 5000,
    }),
);
const auth = await startAuthServer(sdks[0]);
const clients = new Map();

function record(rec, channel, event, data) {
  rec.events.push({ channel, event, data: data === undefined ? null : data });
}

const ops = {
  async connect({ id, node, user, info, watch }) {
    const rec = { events: [], states: [], errors: [], watchlist: [], user_events: [] };
    const q = authQuery({ user, info, watch });
    const p = track(
      new PusherJS(
        env.appKey,
        clientOptions({
          wsPort: nodes[node].ws,
          channelAuthorization: { endpoint: `${auth.base}/auth?${q}` },
          userAuthentication: { endpoint: `${auth.base}/user-auth?${q}` },
        }),
      ),
    );
    rec.states.push(p.connection.state);
    p.connection.bind('state_change', (s) => rec.states.push(s.current));
    p.connection.bind('error', (e) => rec.errors.push(plainError(e)));
    p.user.watchlist.bind('online', (e) => rec.watchlist.push({ name: 'online', ...e }));
    p.user.watchlist.bind('offline', (e) => rec.watchlist.push({ name: 'offline', ...e }));
    p.user.bind_global((event, data) => rec.user_events.push({ event, data: data ?? null }));
    clients.set(id, { p, rec });
    await new Promise((resolve) => {
      if (p.connection.state === 'connected') resolve();
      p.connection.bind('connected', resolve);
    });
    return { socket_id: p.connection.socket_id };
  },
  async subscribe({ id, channel }) {
    const { p, rec } = clients.get(id);
    return new Promise((resolve) => {
      const ch = p.subscribe(channel);
      ch.bind_global((event, data) => {
        record(rec, channel, event, data);
        if (event === 'pusher:subscription_succeeded' || event === 'pusher:subscription_error') {
          resolve({ event, data: data ?? null });
        }
      });
    });
  },
  async signin({ id }) {
    const { p } = clients.get(id);
    return new Promise((resolve) => {
      p.connection.bind('message', (m) => {
        if (m.event === 'pusher:signin_success') resolve({ user_data: m.data.user_data });
      });
      p.signin();
    });
  },
  async whisper({ id, channel, event, data }) {
    const { p } = clients.get(id);
    return { sent: p.channel(channel).trigger(event, data) };
  },
  async disconnect({ id }) {
    clients.get(id).p.disconnect();
    return {};
  },
  async wait({ id, event, channel, count = 1, ms = 10000 }) {
    const { rec } = clients.get(id);
    const match = () => rec.events.filter((e) => e.event === event && (channel === undefined || e.channel === channel));
    const ok = await waitUpTo(() => match().length >= count, ms);
    return { ok, events: match() };
  },
  async seen({ id }) {
    const { rec } = clients.get(id);
    return rec;
  },
  async trigger({ node, channel, event, data, socket_id }) {
    const params = socket_id ? { socket_id } : undefined;
    return reply(() => sdks[node].trigger(channel, event, data, params));
  },
  async get({ node, path, params }) {
    return reply(() => sdks[node].get({ path, params: params || {} }));
  },
  async terminate({ node, user }) {
    return reply(() => sdks[node].terminateUserConnections(user));
  },
  async sendToUser({ node, user, event, data }) {
    return reply(() => sdks[node].sendToUser(user, event, data));
  },
};

const rl = readline.createInterface({ input: process.stdin });
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
rl.on('line', async (line) => {
  const cmd = JSON.parse(line);
  try {
    out({ seq: cmd.seq, ...(await ops[cmd.op](cmd)) });
  } catch (err) {
    out({ seq: cmd.seq, exception: String(err && err.stack ? err.stack : err) });
  }
});
rl.on('close', () => process.exit(0));
