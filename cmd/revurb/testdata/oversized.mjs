// Scenario: the pusher SDK sends a batch_events whose one event holds about
// 1 MiB of data, over max_request_body, TRIES times in a row (one request
// at a time, each on a connection of its own as node-fetch makes them).
// Every try should be answered 413 with a JSON error body, never a reset
// connection.
//
// Env: TRIES (default 100), DATA_BYTES (default 1048576).
// Output: {tries, statuses: {status: count}, errors: [first few failures],
//  first: {status, body, json}, after: {status, body, json}}
import { run, sdk, reply, trigger } from './lib.mjs';

run(async (obs) => {
  const api = sdk();
  const tries = Number(process.env.TRIES || 100);
  const data = 'x'.repeat(Number(process.env.DATA_BYTES || 1 << 20));
  obs.tries = tries;
  obs.statuses = {};
  obs.errors = [];
  for (let i = 0; i < tries; i++) {
    const r = await reply(() => api.triggerBatch([{ channel: 'big', name: 'huge', data }]));
    const key = String(r.status);
    obs.statuses[key] = (obs.statuses[key] || 0) + 1;
    if (i === 0) obs.first = r;
    if ((r.status !== 413 || r.json === null || typeof r.json.error !== 'string') && obs.errors.length < 5) {
      obs.errors.push({ try: i, ...r });
    }
  }
  // The server still answers a trigger of ordinary size.
  obs.after = await trigger(api, 'big', 'small', { ok: true });
});
