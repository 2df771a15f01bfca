// Scenario: pusher-js on cache channels.
//
// With nobody subscribed, the SDK triggers headline {title:"first"} then
// {title:"second"} on cache-news and order {id:1} on private-cache-orders.
// Client p then subscribes to cache-news, private-cache-orders, cache-fresh
// (never triggered) and presence-cache-lobby (never triggered); the SDK
// triggers headline {title:"third"}; client q subscribes to cache-news last.
// Output: {p:{events,errors}, q:{...}, triggers:[...]}
import { run, env, newClient, connected, subscribe, sdk, trigger, named, waitFor, sleep } from './lib.mjs';
import { startAuthServer, authQuery } from './authserver.mjs';

run(async (obs) => {
  const api = sdk();
  const auth = await startAuthServer(api);
  const opts = { channelAuthorization: { endpoint: `${auth.base}/auth?${authQuery({ user: 'p', info: { name: 'P' } })}` } };

  obs.triggers = [
    await trigger(api, 'cache-news', 'headline', { title: 'first' }),
    await trigger(api, 'cache-news', 'headline', { title: 'second' }),
    await trigger(api, 'private-cache-orders', 'order', { id: 1 }),
  ];

  const p = {};
  const q = {};
  obs.p = p;
  obs.q = q;
  const pp = newClient(p, env.appKey, opts);
  await connected(pp);
  for (const ch of ['cache-news', 'private-cache-orders', 'cache-fresh', 'presence-cache-lobby']) {
    await subscribe(pp, p, ch);
  }
  await waitFor(() => named(p, 'pusher:cache_miss').length >= 2);
  obs.triggers.push(await trigger(api, 'cache-news', 'headline', { title: 'third' }));
  await waitFor(() => named(p, 'headline').length >= 2);

  const pq = newClient(q, env.appKey, opts);
  await connected(pq);
  await subscribe(pq, q, 'cache-news');
  await waitFor(() => named(q, 'headline').length >= 1);
  await sleep(200);
});
