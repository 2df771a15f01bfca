// A tiny app backend for the scenarios: the channel authorization and user
// authentication endpoints pusher-js and Laravel Echo post to, answered with
// the pusher SDK's own authorizeChannel and authenticateUser.
//
// Who the caller is travels in the endpoint's query string, one endpoint URL
// per client:
//   POST /auth?user=ID&info=JSON[&socket=ID]   channel authorization
//     user  presence user_id (all digits: sent as a JSON number)
//     info  presence user_info, JSON (absent: no user_info)
//     socket  sign for this socket id instead of the caller's (a forged auth)
//   POST /user-auth?user=ID[&watch=ID,ID]       user authentication
// The body is pusher-js's form: socket_id=...&channel_name=...
import http from 'node:http';

// startAuthServer listens on 127.0.0.1:0 and resolves with {base, requests}:
// base is http://127.0.0.1:PORT; requests logs {path, socket_id, channel_name}.
export function startAuthServer(api) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://auth.invalid');
      const q = url.searchParams;
      const form = new URLSearchParams(body);
      const socketId = form.get('socket_id');
      const channel = form.get('channel_name');
      requests.push({ path: url.pathname, socket_id: socketId, channel_name: channel });
      let reply;
      try {
        if (url.pathname === '/auth') {
          let presence;
          if (channel.startsWith('presence-')) {
            const user = q.get('user');
            presence = { user_id: /^\d+$/.test(user) ? Number(user) : user };
            if (q.has('info')) presence.user_info = JSON.parse(q.get('info'));
          }
          reply = api.authorizeChannel(q.get('socket') || socketId, channel, presence);
        } else if (url.pathname === '/user-auth') {
          const user = { id: q.get('user') };
          if (q.get('watch')) user.watchlist = q.get('watch').split(',');
          reply = api.authenticateUser(socketId, user);
        } else {
          res.writeHead(404, { 'Content-Type': 'application/json' });
          res.end('{"error":"not found"}');
          return;
        }
      } catch (err) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: String(err) }));
        return;
      }
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(reply));
    });
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.unref();
      resolve({ base: `http://127.0.0.1:${server.address().port}`, requests });
    });
  });
}

// authQuery is the query string naming a client to the auth server.
export function authQuery({ user, info, socket, watch } = {}) {
  const q = new URLSearchParams();
  if (user !== undefined) q.set('user', String(user));
  if (info !== undefined) q.set('info', JSON.stringify(info));
  if (socket !== undefined) q.set('socket', socket);
  if (watch !== undefined) q.set('watch', watch.join(','));
  return q.toString();
}
