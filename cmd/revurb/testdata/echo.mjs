// Scenario: Laravel Echo (broadcaster "pusher") on a public channel.
//
// .listen('.my-event') takes the name as is; .listen('OrderShipped') gets the
// default App\Events namespace. Output:
// {subscribed, socket_id, received:[{listener, data}], my:{status,...}, ns:{...}}
import Echo from 'laravel-echo';
import PusherJS from 'pusher-js';
import { run, env, clientOptions, track, sdk, trigger, waitFor, sleep } from './lib.mjs';

run(async (obs) => {
  obs.received = [];
  obs.errors = [];
  const echo = new Echo({
    broadcaster: 'pusher',
    key: env.appKey,
    Pusher: PusherJS,
    ...clientOptions(),
  });
  track(echo);
  echo.connector.pusher.connection.bind('error', (e) => obs.errors.push(e?.data?.code ?? e?.error?.data?.code ?? null));

  await new Promise((resolve) => {
    echo
      .channel('echo-channel')
      .subscribed(() => {
        obs.subscribed = true;
        resolve();
      })
      .listen('.my-event', (data) => obs.received.push({ listener: '.my-event', data }))
      .listen('OrderShipped', (data) => obs.received.push({ listener: 'OrderShipped', data }));
  });
  obs.socket_id = echo.socketId();

  const api = sdk();
  obs.my = await trigger(api, 'echo-channel', 'my-event', { message: 'hello' });
  obs.ns = await trigger(api, 'echo-channel', 'App\\Events\\OrderShipped', { order: 42 });

  await waitFor(() => obs.received.length >= 2);
  await sleep(300);
});
