// Scenario: pusher-js with an app key the server does not know.
//
// Expect a Pusher error 4001 and no endless reconnecting. After the error the
// script watches for 1.5 s more and counts how often pusher-js went back to
// "connecting". Output: {states:[...], errors:[{code,type,raw}], connecting:n}
import { run, newClient, waitFor, sleep } from './lib.mjs';

run(async (obs) => {
  const client = newClient(obs, process.env.BAD_KEY || 'wrong-key');
  await waitFor(() => obs.errors.some((e) => e.code !== null));
  await sleep(1500);
  obs.connecting = obs.states.filter((s) => s === 'connecting').length;
  obs.final_state = client.connection.state;
});
