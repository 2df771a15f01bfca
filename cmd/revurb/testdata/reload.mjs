// Apps reloaded on SIGHUP, as pusher-js clients and the pusher SDK see it.
//
// Env: lib.mjs's WS_PORT / API_PORT, and KEPT_* (id, key, old and new
// secret of the app whose secret rotates), GONE_KEY (an app the reload
// removes), NEW_* (id, key, secret of the app it adds).
//
// It talks while it runs: it prints "ready" once two clients of each of
// KEPT and GONE are subscribed to "news"; the test reloads and writes
// "reloaded"; the scenario then watches GONE's clients closed (and not
// reconnecting), connects a client of NEW, and triggers on KEPT with the
// old secret and the new one, and prints "checked"; the test reloads a
// broken file and writes "broken"; the scenario checks that NEW and the
// new secret still serve. Output:
// {kept: [rec], gone: [rec], fresh: rec, after: rec, old_secret, new_secret,
//  new_app, after_broken, after_broken_new}
import readline from 'node:readline';
import PusherSDK from 'pusher';
import { env, run, newClient, connected, subscribe, trigger, sleep, waitFor } from './lib.mjs';

const e = process.env;
const said = [];
readline.createInterface({ input: process.stdin }).on('line', (l) => said.push(l.trim()));
const told = (word) => waitFor(() => said.includes(word));

function sdkFor(appId, key, secret) {
  return new PusherSDK({ appId, key, secret, host: env.wsHost, port: String(env.apiPort), useTLS: false, timeout: 5000 });
}

async function client(key) {
  const rec = {};
  const c = newClient(rec, key);
  await connected(c);
  await subscribe(c, rec, 'news');
  return rec;
}

run(async (obs) => {
  obs.kept = [await client(e.KEPT_KEY), await client(e.KEPT_KEY)];
  obs.gone = [await client(e.GONE_KEY), await client(e.GONE_KEY)];
  process.stdout.write('ready\n');

  await told('reloaded');
  // The removed app's clients are closed with 4001 and stay down.
  await waitFor(() => obs.gone.every((r) => r.errors.some((x) => x.code === 4001)));
  await sleep(1500);
  obs.fresh = await client(e.NEW_KEY);
  obs.old_secret = await trigger(sdkFor(e.KEPT_ID, e.KEPT_KEY, e.KEPT_OLD_SECRET), 'news', 'rotated', { by: 'old' });
  obs.new_secret = await trigger(sdkFor(e.KEPT_ID, e.KEPT_KEY, e.KEPT_NEW_SECRET), 'news', 'rotated', { by: 'new' });
  obs.new_app = await trigger(sdkFor(e.NEW_ID, e.NEW_KEY, e.NEW_SECRET), 'news', 'hello', { to: 'new' });
  await waitFor(() => obs.kept.every((r) => r.events.some((x) => x.event === 'rotated')));
  await waitFor(() => obs.fresh.events.some((x) => x.event === 'hello'));
  process.stdout.write('checked\n');

  await told('broken');
  obs.after = await client(e.NEW_KEY);
  obs.after_broken = await trigger(sdkFor(e.KEPT_ID, e.KEPT_KEY, e.KEPT_NEW_SECRET), 'news', 'still', {});
  obs.after_broken_new = await trigger(sdkFor(e.NEW_ID, e.NEW_KEY, e.NEW_SECRET), 'news', 'still', {});
  await waitFor(() => obs.after.events.some((x) => x.event === 'still'));
});
