// Two apps' backends trigger through the pusher SDK at once: "capped"
// (max_backend_events_per_second: 50) and "free" (no cap). Each sends
// TRIGGERS single events and TRIGGERS/10 batches of 10 as fast as they are
// answered, a few at a time over keep-alive. Output: {capped: {status:
// count}, free: {status: count}, capped_429: the first 429's body}.
import http from 'node:http';
import PusherSDK from 'pusher';
import { env, run } from './lib.mjs';

const TRIGGERS = Number(process.env.TRIGGERS || 100);

function sdkFor(appId, key, secret) {
  return new PusherSDK({ appId, key, secret, host: env.wsHost, port: String(env.apiPort), useTLS: false, timeout: 5000,
    agent: new http.Agent({ keepAlive: true, maxSockets: 4 }) });
}

async function flood(api, out) {
  const one = async (call) => {
    let status;
    try {
      status = (await call()).status;
    } catch (err) {
      status = err.status ?? String(err.message ?? err);
      if (status === 429 && out.first_429 === undefined) out.first_429 = err.body;
    }
    out.statuses[status] = (out.statuses[status] || 0) + 1;
  };
  const batch = Array.from({ length: 10 }, (_, i) => ({ channel: 'load', name: 'b', data: String(i) }));
  const calls = [];
  for (let i = 0; i < TRIGGERS; i++) {
    calls.push(() => api.trigger('load', 'e', { i }));
    if (i % 10 === 0) calls.push(() => api.triggerBatch(batch));
  }
  // Four at a time.
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < calls.length) await one(calls[next++]);
  }));
}

run(async (obs) => {
  obs.capped = { statuses: {} };
  obs.free = { statuses: {} };
  await Promise.all([
    flood(sdkFor('capped', 'capped-key', 'capped-secret'), obs.capped),
    flood(sdkFor('free', 'free-key', 'free-secret'), obs.free),
  ]);
});
