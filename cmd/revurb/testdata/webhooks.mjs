// Scenario: pusher-js on public, cache, private and private-encrypted
// channels of an app whose webhooks go to the Go test's receiver.
//
// a subscribes at once (as pusher-js does after connecting) to news,
// cache-news, private-chat, private-encrypted-vault and
// private-encrypted-cache-prices; b to private-chat and
// private-encrypted-vault. a whispers client-typing {who:"a"} on
// private-chat and b receives it; the SDK (with the master key) triggers
// secret {text:"at nine"} on private-encrypted-vault and both decrypt it.
// Then both disconnect.
// Env MASTER_KEY: the encryption master key, base64.
// Output: {a:{events,errors}, b:{...}, trigger}
import { run, env, newClient, connected, subscribe, sdk, trigger, named, waitFor } from './lib.mjs';
import { startAuthServer, authQuery } from './authserver.mjs';

run(async (obs) => {
  const api = sdk(env.appSecret, { encryptionMasterKeyBase64: process.env.MASTER_KEY });
  const auth = await startAuthServer(api);
  const opts = (user) => ({ channelAuthorization: { endpoint: `${auth.base}/auth?${authQuery({ user })}` } });
  const a = {};
  const b = {};
  obs.a = a;
  obs.b = b;
  const pa = newClient(a, env.appKey, opts('a'));
  const pb = newClient(b, env.appKey, opts('b'));
  await Promise.all([connected(pa), connected(pb)]);
  await Promise.all([
    ...['news', 'cache-news', 'private-chat', 'private-encrypted-vault', 'private-encrypted-cache-prices'].map((ch) => subscribe(pa, a, ch)),
    ...['private-chat', 'private-encrypted-vault'].map((ch) => subscribe(pb, b, ch)),
  ]);
  pa.channel('private-chat').trigger('client-typing', { who: 'a' });
  await waitFor(() => named(b, 'client-typing').length >= 1);
  obs.trigger = await trigger(api, 'private-encrypted-vault', 'secret', { text: 'at nine' });
  await waitFor(() => named(a, 'secret').length >= 1 && named(b, 'secret').length >= 1);
});
