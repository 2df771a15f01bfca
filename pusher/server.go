package pusher

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server is the protocol core: it holds the apps and their channels, takes
// the messages of every session, and publishes events. Its methods that take
// a *Session run on that session's event loop; the others (Publish and the
// queries) are safe for concurrent use.
type Server struct {
	byKey map[string]*App
	byID  map[string]*App
	apps  []*App
	loops Loops
	log   *slog.Logger
	debug bool
	opts  Options

	ids  *idSource
	gate *gate

	obs                 Observer
	broker              Broker
	clustered           bool          // the broker is not LocalBroker: other nodes exist
	stopCluster         chan struct{} // closed by Stop
	stopOnce            sync.Once
	broadcasts          atomic.Uint64 // events published through Publish
	overloadCloses      atomic.Uint64 // subscribers closed for being too far behind other nodes
	clientEventsDropped atomic.Uint64 // client events the broker could not take for other nodes

	loopCounters []loopCounters // index: event loop
}

// maxLoops is the most event loops a server fans out to: a broadcast keeps
// a bit per loop.
const maxLoops = 64

// loopCounters are the server's counters of one event loop, written by
// that loop alone and read by Stats from anywhere.
type loopCounters struct {
	clientEvents atomic.Uint64 // relayed from this loop; written by it alone
	_            [56]byte      // one 64-byte cache line per loop's state (TestLoopStateSize)
}

// Options tune a Server. Zero values mean the defaults.
type Options struct {
	// Log receives errors and, with Debug, every protocol message (at
	// level Debug).
	Log *slog.Logger
	// Debug logs every message a client sends and every event published.
	Debug bool

	// PublishQueue bounds the delivery work waiting for the event loops, in
	// deliveries: frames times recipients (DefaultPublishQueue).
	PublishQueue int64
	// PublishWait is how long a publisher may wait for room in the queue
	// before Publish gives up with ErrBusy (DefaultPublishWait).
	PublishWait time.Duration
	// PublishWaiters caps the publishers waiting at once; one more is
	// refused at once (DefaultPublishWaiters). Keep it below the HTTP API's
	// concurrency, so that waiting triggers never stop it answering.
	PublishWaiters int

	// Broker joins the server to the other nodes of its cluster; nil is
	// LocalBroker, a cluster of one. Attach starts it.
	Broker Broker
	// Observer hears of the moments the apps' webhooks are made of; nil:
	// none.
	Observer Observer
}

// NewServer returns a server for apps. Attach must be called before the
// first session opens. The configurations are copied.
func NewServer(apps []AppConfig, opts Options) (*Server, error) {
	if len(apps) == 0 {
		return nil, errors.New("pusher: no apps")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.PublishQueue <= 0 {
		opts.PublishQueue = DefaultPublishQueue
	}
	if opts.PublishWait <= 0 {
		opts.PublishWait = DefaultPublishWait
	}
	if opts.PublishWaiters <= 0 {
		opts.PublishWaiters = DefaultPublishWaiters
	}
	if opts.Broker == nil {
		opts.Broker = LocalBroker{}
	}
	s := &Server{
		byKey: make(map[string]*App, len(apps)),
		byID:  make(map[string]*App, len(apps)),
		log:   opts.Log,
		debug: opts.Debug,
		opts:  opts,
		ids:   newIDSource(),

		obs:         opts.Observer,
		broker:      opts.Broker,
		clustered:   opts.Broker.Node() != "",
		stopCluster: make(chan struct{}),
	}
	for _, cfg := range apps {
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		if s.byKey[cfg.Key] != nil || s.byID[cfg.ID] != nil {
			return nil, errors.New("pusher: app " + cfg.ID + " repeats an id or key")
		}
		a := &App{AppConfig: cfg, hub: newHub(int64(cfg.MaxCacheBytes), opts.Broker.Node() != ""), hooks: map[string]bool{}}
		for _, w := range cfg.Webhooks {
			for _, t := range w.EventTypes {
				a.hooks[t] = true
			}
		}
		a.AllowedOrigins = append([]string(nil), cfg.AllowedOrigins...)
		s.apps = append(s.apps, a)
		s.byKey[a.Key] = a
		s.byID[a.ID] = a
	}
	return s, nil
}

// Attach gives the server the event loops it fans broadcasts out to.
// There may be at most 64.
func (s *Server) Attach(l Loops) error {
	if l.Len() < 1 || l.Len() > maxLoops {
		return errors.New("pusher: need 1..64 event loops")
	}
	s.loops = l
	for _, a := range s.apps {
		a.hub.loops = l.Len()
	}
	s.loopCounters = make([]loopCounters, l.Len())
	s.gate = newGate(l.Len(), s.opts.PublishQueue, s.opts.PublishWait, s.opts.PublishWaiters)
	if err := s.broker.Start(s); err != nil {
		return err
	}
	if s.clustered {
		go s.runCluster(s.stopCluster)
	}
	return nil
}

// Stop takes the server out of its cluster: the broker announces this
// node's members and users gone on the other nodes. Call it once the
// event loops have closed their connections.
func (s *Server) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopCluster) })
	return s.broker.Close(ctx)
}

// AppByID returns the app with the given id, or nil.
func (s *Server) AppByID(id string) *App { return s.byID[id] }

// Apps returns the apps the server serves, in the order it was given them.
func (s *Server) Apps() []*App { return s.apps }

// Open starts the session of a connection upgraded on /app/{key} on event
// loop loop. protocol and origin are the query's protocol value and the
// Origin header. It writes pusher:connection_established, or a pusher:error
// and closes the connection (Pusher protocol: connection). It reports
// whether the session is open.
func (s *Server) Open(sess *Session, c Conn, loop int, key, protocol, origin string) bool {
	*sess = Session{conn: c, loop: uint8(loop)}
	app := s.byKey[key]
	var err *Error
	switch {
	case app == nil:
		err = &Error{Code: CodeUnknownApp, Message: "App key " + key + " not in this cluster"}
	case !validProtocol(protocol):
		err = &Error{Code: CodeBadProtocol, Message: "Unsupported protocol version " + protocol}
	case !app.Enabled:
		err = &Error{Code: CodeAppDisabled, Message: "Application disabled"}
	case !app.OriginAllowed(origin):
		err = &Error{Code: CodeUnauthorized, Message: "Origin not allowed"}
	case app.MaxConnections > 0 && app.connections.Add(1)+int64(s.remoteConnections(app)) > int64(app.MaxConnections):
		app.connections.Add(-1)
		err = &Error{Code: CodeOverQuota, Message: "Application is over connection quota"}
	case app.MaxConnections <= 0:
		app.connections.Add(1)
	}
	if err != nil {
		s.fail(sess, err)
		return false
	}
	now := time.Now().UnixNano()
	sess.app, sess.id, sess.open, sess.lastSeen = app, s.ids.id(), true, now
	var buf [80]byte
	data := append(buf[:0], `{"socket_id":"`...)
	data = sess.id.AppendTo(data)
	data = append(data, `","activity_timeout":`...)
	data = strconv.AppendInt(data, int64(app.ActivityTimeout), 10)
	data = append(data, '}')
	s.send(sess, "pusher:connection_established", "", data)
	if s.debug {
		s.log.Debug("open", "socket_id", sess.id.String(), "app", app.ID, "origin", origin)
	}
	return true
}

// validProtocol accepts a missing protocol (as 7) and 5..7.
func validProtocol(p string) bool {
	return p == "" || p == "5" || p == "6" || p == "7"
}

// fail sends err as pusher:error and closes the connection with its code.
func (s *Server) fail(sess *Session, err *Error) {
	sess.conn.Write(appendFrameJSON(nil, err.AppendJSON(nil)))
	sess.conn.Close(err.Code, err.Message)
}

// refuse sends err as pusher:error; the connection stays up.
func (s *Server) refuse(sess *Session, err *Error) {
	if s.debug {
		s.log.Debug("send pusher:error", "socket_id", sess.id.String(), "code", err.Code, "message", err.Message)
	}
	sess.conn.Write(appendFrameJSON(nil, err.AppendJSON(nil)))
}

// send writes one event to sess alone.
func (s *Server) send(sess *Session, event, channel string, data []byte) {
	f := newFrame()
	f.buf = appendEvent(f.buf, event, channel, data)
	f.seal()
	sess.conn.Write(f.bytes())
	f.release()
}

// Close ends the session: its subscriptions, its presence memberships and
// its user. It runs when the connection is gone, however it went.
func (s *Server) Close(sess *Session) {
	if !sess.open {
		return
	}
	sess.open = false
	for len(sess.subs) > 0 {
		s.unsubscribe(sess, len(sess.subs)-1)
	}
	if sess.user != nil {
		s.signout(sess)
	}
	sess.app.connections.Add(-1)
	if s.debug {
		s.log.Debug("close", "socket_id", sess.id.String())
	}
}

// Shutdown tells the client to reconnect at once, elsewhere: pusher:error
// 4200 then close 4200 (Pusher protocol: 4200-4299).
func (s *Server) Shutdown(sess *Session) {
	s.fail(sess, &Error{Code: CodeReconnect, Message: "Server is restarting, reconnect"})
}

// Unauthenticated closes a connection that has not signed in within its
// app's user_authentication_timeout: pusher:error 4009, then close 4009
// (Pusher protocol: authorized connections).
func (s *Server) Unauthenticated(sess *Session) {
	if !sess.open {
		return
	}
	s.fail(sess, &Error{Code: CodeUnauthorized, Message: "Connection not authorized within timeout"})
}

// Touch records inbound traffic that is not a Pusher message (a WebSocket
// ping or pong frame) as activity.
func (s *Server) Touch(sess *Session) {
	sess.lastSeen = time.Now().UnixNano()
	sess.pingSent = 0
}

var pingFrame = appendFrameJSON(nil, []byte(`{"event":"pusher:ping","data":"{}"}`))
var pongFrame = appendFrameJSON(nil, []byte(`{"event":"pusher:pong","data":"{}"}`))

// Check runs the keepalive of sess at now (unix nanoseconds): after
// activity_timeout of silence it sends pusher:ping; if that goes unanswered
// for pong_timeout it closes with 4201 (Pusher protocol: ping and pong).
func (s *Server) Check(sess *Session, now int64) {
	if !sess.open {
		return
	}
	if sess.pingSent != 0 {
		if now-sess.pingSent >= int64(sess.app.pongTimeout()) {
			s.fail(sess, &Error{Code: CodePongNotReceived, Message: "Pong reply not received in time"})
		}
		return
	}
	if now-sess.lastSeen >= int64(sess.app.activityTimeout()) {
		sess.pingSent = now
		sess.conn.Write(pingFrame)
	}
}

// HandleBinary answers a binary frame: the Pusher protocol is text only.
func (s *Server) HandleBinary(sess *Session) {
	s.Touch(sess)
	s.refuse(sess, &Error{Message: "Binary frames are not supported"})
}

// Handle takes one text message from sess (Pusher protocol: client
// events). msg lives only until Handle returns.
func (s *Server) Handle(sess *Session, msg []byte) {
	if !sess.open {
		return
	}
	sess.lastSeen = time.Now().UnixNano()
	sess.pingSent = 0
	if s.debug {
		s.log.Debug("recv", "socket_id", sess.id.String(), "message", string(msg))
	}
	var e envelope
	if err := parseEnvelope(msg, &e); err != nil {
		s.refuse(sess, &Error{Message: "Invalid message: " + err.Error()[len("pusher: "):]})
		return
	}
	switch string(e.event) {
	case "pusher:ping":
		sess.conn.Write(pongFrame)
	case "pusher:pong":
	case "pusher:subscribe":
		s.handleSubscribe(sess, e.data)
	case "pusher:unsubscribe":
		s.handleUnsubscribe(sess, e.data)
	case "pusher:signin":
		s.handleSignin(sess, e.data)
	default:
		if hasPrefix(e.event, "client-") {
			s.clientEvent(sess, &e)
			return
		}
		s.refuse(sess, &Error{Message: "Unknown event " + string(e.event)})
	}
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// appendFrameJSON appends a text frame holding payload.
func appendFrameJSON(dst, payload []byte) []byte {
	f := newFrame()
	f.buf = append(f.buf, payload...)
	f.seal()
	dst = append(dst, f.bytes()...)
	f.release()
	return dst
}
