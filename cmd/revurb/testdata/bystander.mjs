// Scenario: a well-behaved app while other clients flood the HTTP API (the
// Go test runs the flood from other addresses). A pusher-js client
// subscribes to "bystander"; then, one after the other, the pusher SDK
// triggers TRIES events on it and GET /up is asked TRIES times (each on a
// connection of its own, as node-fetch makes them).
//
// Env: TRIES (default 20).
// Output: {subscribed, triggers: {status: count}, ups: {status: count},
//  failures: [first few], received: n, slowest_ms: the longest trigger or
//  GET /up, for the log}
import http from 'node:http';
import { run, newClient, connected, subscribe, sdk, trigger, waitUpTo, named, env } from './lib.mjs';

// up asks GET /up on a connection of its own and resolves with its status,
// or null and the error.
function up() {
  return new Promise((resolve) => {
    const req = http.get({ host: env.wsHost, port: env.apiPort, path: '/up', agent: false, timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: null, error: String(err) }));
  });
}

run(async (obs) => {
  const tries = Number(process.env.TRIES || 20);
  const rec = {};
  const client = newClient(rec);
  await connected(client);
  obs.subscribed = await subscribe(client, rec, 'bystander');
  const api = sdk(env.appSecret, { timeout: 10000 });
  obs.triggers = {};
  obs.ups = {};
  obs.failures = [];
  const count = (m, r, what, i) => {
    const key = String(r.status);
    m[key] = (m[key] || 0) + 1;
    if (r.status !== 200 && obs.failures.length < 5) obs.failures.push({ what, try: i, ...r });
  };
  obs.slowest_ms = 0;
  const timed = async (f) => {
    const start = Date.now();
    const r = await f();
    obs.slowest_ms = Math.max(obs.slowest_ms, Date.now() - start);
    return r;
  };
  for (let i = 0; i < tries; i++) {
    count(obs.triggers, await timed(() => trigger(api, 'bystander', 'tick', { i })), 'trigger', i);
    count(obs.ups, await timed(up), 'up', i);
  }
  await waitUpTo(() => named(rec, 'tick').length >= tries, 5000);
  obs.received = named(rec, 'tick').length;
});
