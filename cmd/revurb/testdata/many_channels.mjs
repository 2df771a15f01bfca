// A dashboard on many channels, as pusher-js runs it: one client subscribes
// to CHANNELS channels at once (pusher-js sends every pusher:subscribe back
// to back), then its socket is dropped under it and pusher-js reconnects
// and resubscribes them all at once again. Every channel must succeed both
// times, and an event triggered on each after the reconnect must arrive.
import { env, run, newClient, connected, sdk, trigger, waitUpTo } from './lib.mjs';

const CHANNELS = Number(process.env.CHANNELS || 500);

run(async (obs) => {
  const rec = {};
  const client = newClient(rec);
  obs.ids = [await connected(client)];
  const succeeded = new Map();
  const errors = [];
  const got = new Set();
  for (let i = 0; i < CHANNELS; i++) {
    const name = `dash-${i}`;
    const ch = client.subscribe(name);
    ch.bind('pusher:subscription_succeeded', () => succeeded.set(name, (succeeded.get(name) || 0) + 1));
    ch.bind('pusher:subscription_error', (e) => errors.push({ name, e }));
    ch.bind('tick', () => got.add(name));
  }
  await waitUpTo(() => succeeded.size === CHANNELS || errors.length > 0, 8000);
  obs.first = succeeded.size;

  // Drop the TCP connection without a close frame: pusher-js reconnects
  // and resubscribes every channel it holds.
  const stream = client.connection.connection?.transport?.socket?._stream;
  if (!stream) throw new Error('no TCP stream under the pusher-js client');
  stream.on('error', () => {});
  stream.resetAndDestroy();
  await waitUpTo(() => client.connection.state !== 'connected', 5000);
  obs.ids.push(await connected(client));
  await waitUpTo(() => [...succeeded.values()].every((n) => n === 2) && succeeded.size === CHANNELS, 8000);
  obs.second = [...succeeded.values()].filter((n) => n === 2).length;
  obs.errors = errors.length;
  // The drop itself is reported as 1006; nothing else may be.
  obs.pusherErrors = rec.errors.map((e) => e.code).filter((c) => c !== 1006);

  // Every channel is live: one trigger per 100 channels.
  const api = sdk();
  obs.triggers = [];
  for (let i = 0; i < CHANNELS; i += 100) {
    const names = [];
    for (let j = i; j < Math.min(i + 100, CHANNELS); j++) names.push(`dash-${j}`);
    obs.triggers.push((await trigger(api, names, 'tick', { i })).status);
  }
  await waitUpTo(() => got.size === CHANNELS, 8000);
  obs.delivered = got.size;
});
