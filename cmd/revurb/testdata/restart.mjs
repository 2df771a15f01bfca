// A rolling restart as a Laravel deployment sees it: pusher-js clients on
// channel "deploy" and a backend that triggers "tick" {n} back to back over
// one keep-alive connection with the pusher SDK, while the test starts a
// second revurb on the same ports and stops the first with SIGTERM.
//
// Unlike the other scenarios this one talks while it runs: it prints
// "ready" once every client is subscribed, then "ack N STATUS" for each
// trigger answered; the test writes "signalled" on stdin once it has sent
// SIGTERM, and the scenario publishes for AFTER_MS more, waits for the
// clients to catch up, and prints its observations as one JSON line.
import http from 'node:http';
import https from 'node:https';
import readline from 'node:readline';
import { env, run, newClient, connected, subscribe, sdk, trigger, sleep, waitUpTo } from './lib.mjs';

const CLIENTS = Number(process.env.CLIENTS || 4);
const AFTER_MS = Number(process.env.AFTER_MS || 3000);

run(async (obs) => {
  obs.clients = [];
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const rec = { ids: [], got: [] };
    const c = newClient(rec);
    c.connection.bind('connected', () => rec.ids.push(c.connection.socket_id));
    await connected(c);
    const ch = c.subscribe('deploy');
    await new Promise((resolve) => ch.bind('pusher:subscription_succeeded', resolve));
    ch.bind('tick', (d) => rec.got.push(d.n));
    clients.push(rec);
    obs.clients.push(rec);
  }
  process.stdout.write('ready\n');

  let signalled = false;
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'signalled') signalled = true;
  });

  const Agent = env.tls ? https.Agent : http.Agent;
  const pusher = sdk(env.appSecret, { agent: new Agent({ keepAlive: true, maxSockets: 1 }) });
  obs.acks = [];
  let stopAt = Infinity;
  for (let n = 1; Date.now() < stopAt; n++) {
    if (signalled && stopAt === Infinity) stopAt = Date.now() + AFTER_MS;
    const r = await trigger(pusher, 'deploy', 'tick', { n });
    obs.acks.push({ n, status: r.status, error: r.error ?? null });
    process.stdout.write(`ack ${n} ${r.status}\n`);
    await sleep(2);
  }
  const last = obs.acks[obs.acks.length - 1].n;
  // A client whose reconnect landed in the old process's accept queue as
  // it exited was reset, and pusher-js retries it after a back-off: give
  // it time (this returns as soon as every client has caught up).
  await waitUpTo(() => clients.every((c) => c.got.includes(last)), 20000);
});
