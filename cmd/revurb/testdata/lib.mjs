// Shared plumbing for the end-to-end scenarios run by cmd/revurb/e2e_test.go.
//
// Every scenario reads its parameters from the environment, records what it
// observes into one object, and prints that object as a single JSON line on
// stdout. It exits 0 when it saw everything it waited for and 1 when its hard
// timeout fired first (printing what it saw so far, with "timeout": true).
// Judging the observations is the Go test's job.

import PusherJS from 'pusher-js';
import PusherSDK from 'pusher';

function need(name) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    throw new Error(`missing env ${name}`);
  }
  return v;
}

export const env = {
  wsHost: process.env.WS_HOST || '127.0.0.1',
  wsPort: Number(need('WS_PORT')),
  apiPort: Number(need('API_PORT')),
  appId: process.env.APP_ID || 'app-id',
  appKey: process.env.APP_KEY || 'app-key',
  appSecret: process.env.APP_SECRET || 'app-secret',
  timeoutMs: Number(process.env.TIMEOUT_MS || 10000),
  // TLS=1: wss:// and https://, the server's CA trusted through
  // NODE_EXTRA_CA_CERTS.
  tls: process.env.TLS === '1',
  // WSS_PORT: the wss:// port beside a plain ws:// WS_PORT (revurb
  // --plain-port), as a page served over http:// has them: pusher-js is
  // not forced to TLS and takes ws:// on WS_PORT; the API stays https://
  // with TLS=1.
  wssPort: Number(process.env.WSS_PORT || 0),
};

const clients = [];
let done = false;

// finish prints the observations once and exits with code.
export function finish(obs, code = 0) {
  if (done) return;
  done = true;
  // Serialize before disconnecting: disconnect() fires state changes.
  const line = JSON.stringify(obs) + '\n';
  for (const c of clients) {
    try {
      c.disconnect();
    } catch {
      // Best effort: the process exits right after.
    }
  }
  process.stdout.write(line, () => process.exit(code));
}

// run calls body(obs) under the hard timeout; body resolves when the scenario
// has seen what it waits for.
export function run(body) {
  const obs = {};
  const timer = setTimeout(() => {
    obs.timeout = true;
    finish(obs, 1);
  }, env.timeoutMs);
  Promise.resolve()
    .then(() => body(obs))
    .then(
      () => {
        clearTimeout(timer);
        finish(obs, 0);
      },
      (err) => {
        clearTimeout(timer);
        obs.exception = String(err && err.stack ? err.stack : err);
        finish(obs, 1);
      },
    );
}

// clientOptions are the pusher-js options pointing at the server under test.
export function clientOptions(extra = {}) {
  return {
    cluster: 'mt1', // required by the typings; ignored when wsHost is set
    wsHost: env.wsHost,
    wsPort: env.wsPort,
    wssPort: env.wssPort || env.wsPort,
    forceTLS: env.tls && !env.wssPort,
    enabledTransports: env.tls ? ['ws', 'wss'] : ['ws'],
    disableStats: true,
    ...extra,
  };
}

// track registers a pusher-js (or Echo's) client so finish disconnects it.
export function track(client) {
  clients.push(client);
  return client;
}

// newClient makes a pusher-js client whose observations land in rec:
// rec.states (initial state, then every change), rec.errors (connection error payloads),
// rec.events (every channel event, in arrival order).
export function newClient(rec, key = env.appKey, extra = {}) {
  rec.errors = [];
  rec.events = [];
  const client = track(new PusherJS(key, clientOptions(extra)));
  // The constructor already moved to "connecting", before any bind.
  rec.states = [client.connection.state];
  client.connection.bind('state_change', (s) => rec.states.push(s.current));
  client.connection.bind('error', (e) => rec.errors.push(plainError(e)));
  return client;
}

// plainError turns a pusher-js error event into plain JSON, surfacing the
// Pusher error code wherever pusher-js nested it.
export function plainError(e) {
  const code = e?.data?.code ?? e?.error?.data?.code ?? null;
  let copy;
  try {
    copy = JSON.parse(JSON.stringify(e));
  } catch {
    copy = String(e);
  }
  return { code, type: e?.type ?? null, raw: copy };
}

// connected resolves with the socket_id once client is connected.
export function connected(client) {
  return new Promise((resolve) => {
    if (client.connection.state === 'connected') {
      resolve(client.connection.socket_id);
      return;
    }
    const cb = (s) => {
      if (s.current === 'connected') {
        client.connection.unbind('state_change', cb);
        resolve(client.connection.socket_id);
      }
    };
    client.connection.bind('state_change', cb);
  });
}

// subscribe subscribes client to name, records every event on that channel
// into rec.events as {channel, event, data}, and resolves once
// pusher:subscription_succeeded (or pusher:subscription_error) arrived.
export function subscribe(client, rec, name) {
  return new Promise((resolve) => {
    const ch = client.subscribe(name);
    ch.bind_global((event, data) => {
      rec.events.push({ channel: name, event, data: data === undefined ? null : data });
      if (event === 'pusher:subscription_succeeded' || event === 'pusher:subscription_error') {
        resolve(event);
      }
    });
  });
}

// waitFor polls pred every 10 ms and resolves when it holds.
export function waitFor(pred) {
  return new Promise((resolve) => {
    const tick = () => (pred() ? resolve() : setTimeout(tick, 10));
    tick();
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// waitUpTo resolves true once pred holds, or false after ms: for steps
// where the event awaited may rightly never come.
export function waitUpTo(pred, ms) {
  return Promise.race([waitFor(pred).then(() => true), sleep(ms).then(() => false)]);
}

// dropSocket resets the TCP connection under a pusher-js client without a
// WebSocket close frame (an abrupt drop, as when a laptop lid shuts), then
// stops the client so it does not reconnect.
export function dropSocket(client) {
  const stream = client.connection.connection?.transport?.socket?._stream;
  if (!stream) {
    throw new Error('dropSocket: no TCP stream under the pusher-js client');
  }
  stream.on('error', () => {});
  if (typeof stream.resetAndDestroy === 'function') {
    stream.resetAndDestroy();
  } else {
    stream.destroy();
  }
  client.disconnect();
}

// sdk makes a server SDK client for the HTTP API under test; extra adds
// SDK options (encryptionMasterKeyBase64, for one).
export function sdk(secret = env.appSecret, extra = {}) {
  return new PusherSDK({
    appId: env.appId,
    key: env.appKey,
    secret,
    host: env.wsHost,
    port: String(env.apiPort),
    useTLS: env.tls,
    timeout: 5000,
    ...extra,
  });
}

// trigger calls sdk.trigger and resolves (never rejects) with
// {status, body, json} where json is the parsed body or null.
export function trigger(client, channels, event, data, params) {
  return reply(() => client.trigger(channels, event, data, params));
}

// reply calls request (an SDK call returning a fetch Response promise) and
// resolves (never rejects) with {status, body, json} like trigger.
export async function reply(request) {
  try {
    const res = await request();
    const body = await res.text();
    return { status: res.status, body, json: parseOrNull(body) };
  } catch (err) {
    return {
      status: err.status ?? null,
      body: err.body ?? null,
      json: parseOrNull(err.body),
      error: err.status ? undefined : String(err.error ?? err.message ?? err),
    };
  }
}

function parseOrNull(s) {
  if (typeof s !== 'string') return null;
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

// named returns the events in rec (client-side records) named event.
export function named(rec, event) {
  return rec.events.filter((e) => e.event === event);
}
