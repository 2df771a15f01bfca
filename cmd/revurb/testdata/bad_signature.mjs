// Scenario: the pusher SDK with a wrong secret, then with the right one.
//
// Output: {bad:{status,body,json}, good:{status,body,json}}
import { run, sdk, trigger } from './lib.mjs';

run(async (obs) => {
  obs.bad = await trigger(sdk('wrong-secret'), 'my-channel', 'my-event', { message: 'hello' });
  obs.good = await trigger(sdk(), 'my-channel', 'my-event', { message: 'hello' });
});
