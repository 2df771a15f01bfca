// One browser client of TestBrowser. Its parameters come in the page's query
// string: key (app key), host and port (the WebSocket endpoint), tls (1:
// wss://), name (a, b, ...: how the driver tells pages apart in its
// output).
//
// The page connects with pusher-js's browser build, authorizing private
// channels through the test's /auth endpoint as a Laravel app would
// (channelAuthorization, transport "ajax"), subscribes to every channel named
// in the "channels" parameter (comma-separated) and records into window.obs:
//   states      the connection's initial state, then every change
//   errors      connection error payloads ({code, type})
//   events      every channel event, {channel, event, data}, in arrival order
//   socket_id   once connected
//   ws          the native WebSocket once connected: {url, protocol,
//               extensions} (extensions is what the handshake negotiated)
// window.whisper(channel, event, data) sends a client event and returns
// pusher-js's answer (true when it was sent).
(function () {
  'use strict';
  const q = new URLSearchParams(location.search);
  const obs = {
    name: q.get('name'),
    states: [],
    errors: [],
    events: [],
    socket_id: null,
    ws: null,
  };
  window.obs = obs;

  // log mirrors every observation to the console, which the driver prints
  // to its stderr as it happens (seen when a run fails).
  function log(what, value) {
    console.log(obs.name + ' ' + what + ' ' + JSON.stringify(value));
  }

  const tls = q.get('tls') === '1';
  const pusher = new Pusher(q.get('key'), {
    cluster: 'mt1', // required by pusher-js; ignored when wsHost is set
    wsHost: q.get('host'),
    wsPort: Number(q.get('port')),
    wssPort: Number(q.get('port')),
    forceTLS: tls,
    enabledTransports: tls ? ['ws', 'wss'] : ['ws'],
    disableStats: true,
    channelAuthorization: { endpoint: '/auth', transport: 'ajax' },
  });
  // The state before any bind: "initialized" (the browser build connects
  // once the document is ready).
  obs.states.push(pusher.connection.state);
  pusher.connection.bind('state_change', function (s) {
    obs.states.push(s.current);
    log('state', s.current);
  });
  pusher.connection.bind('error', function (e) {
    const err = {
      code: (e && e.data && e.data.code) || (e && e.error && e.error.data && e.error.data.code) || null,
      type: (e && e.type) || null,
    };
    obs.errors.push(err);
    log('error', err);
  });
  pusher.connection.bind('connected', function () {
    obs.socket_id = pusher.connection.socket_id;
    const ws = pusher.connection.connection.transport.socket;
    obs.ws = { url: ws.url, protocol: ws.protocol, extensions: ws.extensions };
    log('connected', { socket_id: obs.socket_id, ws: obs.ws });
  });

  for (const name of (q.get('channels') || '').split(',').filter(Boolean)) {
    pusher.subscribe(name).bind_global(function (event, data) {
      const e = { channel: name, event: event, data: data === undefined ? null : data };
      obs.events.push(e);
      log('event', e);
    });
  }

  window.whisper = function (channel, event, data) {
    return pusher.channel(channel).trigger(event, data);
  };
  window.disconnect = function () {
    pusher.disconnect();
  };
})();
