package api

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// DefaultConcurrency is the cap on connections served at once when
// Config.Concurrency is 0. Keep it above pusher.Config.PublishWaiters, so
// that triggers waiting for the event loops never stop the API answering.
const DefaultConcurrency = 1024

// Config tunes a Server.
type Config struct {
	// MaxBodySize caps a request body, in bytes (0: DefaultMaxBodySize). A
	// larger body gets 413 before the rest of it is read.
	MaxBodySize int
	// MaxURLSize caps a request's URL (its request target: path and
	// query), in bytes (0: DefaultMaxURLSize); a longer one gets 414.
	MaxURLSize int
	// MaxHeaderSize caps a request's header block, the request line
	// apart, in bytes (0: DefaultMaxHeaderSize); a larger one gets 431.
	MaxHeaderSize int
	// Concurrency caps the connections open at once on a listener made by
	// Listen (0: DefaultConcurrency). When all are taken, one that is not
	// being served makes room (conns.go); failing that, one more waits in
	// the kernel's queue until one closes.
	Concurrency int
	// ConnsPerAddress caps the connections of one client address (an IPv6
	// /64) on a listener made by Listen (0: an eighth of Concurrency, at
	// least 1; negative: no cap). One more is answered 503 with
	// Retry-After.
	ConnsPerAddress int
	// ReadTimeout bounds the arrival of a request, headers and body (0:
	// DefaultReadTimeout); WriteTimeout the writing of its response and
	// IdleTimeout a keep-alive connection's wait for its next request (0:
	// 30 s, 60 s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// TLS, when not nil, makes the listeners Listen opens speak HTTPS with
	// these certificates (Certificates or GetCertificate).
	TLS *tls.Config
	// Path is a prefix a proxy may leave in front of the routes ("/ws":
	// /ws/apps/..., /ws/up); the routes answer with it and without.
	Path string
	// Sources are the counters of the event loops and the webhook
	// dispatcher, for the metrics.
	Sources Sources
	// MetricsElsewhere takes GET /metrics off the API port, for a listener
	// of its own (MetricsHandler).
	MetricsElsewhere bool
	// Console serves the debug console at /console (console.go);
	// ConsoleToken, if set, lets its holder watch every app.
	Console      bool
	ConsoleToken string
	// Log receives server errors and, with Debug, every request.
	Log *slog.Logger
	// Debug logs each request with its status and duration.
	Debug bool
}

// Server is the Pusher HTTP API in front of one pusher.Server.
type Server struct {
	p           *pusher.Server
	tls         *tls.Config
	log         *slog.Logger
	debug       bool
	maxBody     int
	maxURL      int
	maxHeaders  int
	readTimeout time.Duration
	lingerBytes int64
	concurrency int
	perAddr     int
	prefix      string
	srv         *fasthttp.Server

	// The answers to requests over a limit (limits.go).
	bodyTooLarge, urlTooLong, headersTooLarge string

	metrics          *metrics
	metricsElsewhere bool

	consoleOn    bool
	consoleToken atomic.Pointer[string]
	streams      atomic.Int32 // console streams open

	mu       sync.Mutex
	lns      []net.Listener // those Serve was given, for Drain
	tables   []*connTable   // those of the listeners Listen made, for the metrics
	draining atomic.Bool

	// now is the clock that auth_timestamp is checked against.
	now func() time.Time
}

// New returns an API server for p. p must have its event loops attached
// before the first trigger arrives.
func New(p *pusher.Server, opts Config) *Server {
	s := &Server{p: p, tls: opts.TLS, log: opts.Log, debug: opts.Debug, now: time.Now,
		maxBody: orDefault(opts.MaxBodySize, DefaultMaxBodySize), maxURL: orDefault(opts.MaxURLSize, DefaultMaxURLSize),
		maxHeaders: orDefault(opts.MaxHeaderSize, DefaultMaxHeaderSize), readTimeout: orDefault(opts.ReadTimeout, DefaultReadTimeout),
		concurrency: orDefault(opts.Concurrency, DefaultConcurrency),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.perAddr = opts.ConnsPerAddress
	switch {
	case s.perAddr == 0:
		s.perAddr = max(s.concurrency/8, 1)
	case s.perAddr < 0:
		s.perAddr = 0
	}
	s.lingerBytes = lingerBytes(s.maxBody)
	s.limitMessages()
	s.metrics, s.metricsElsewhere = newMetrics(p, opts.Sources, s.connStats), opts.MetricsElsewhere
	s.prefix = strings.TrimSuffix(opts.Path, "/")
	s.consoleOn = opts.Console
	s.SetConsoleToken(opts.ConsoleToken)
	s.srv = &fasthttp.Server{
		Handler:            s.handle,
		ErrorHandler:       s.handleError,
		ConnState:          connStateHook,
		Name:               "revurb",
		MaxRequestBodySize: s.maxBody,
		// Listen's listener caps the connections; this cap, above it, is
		// for a listener from elsewhere.
		Concurrency: s.concurrency + 16,
		// The request line and the header block are read into this
		// buffer; what does not fit is refused with 414 or 431
		// (readError), and what fits is checked against each limit
		// (overLimit).
		ReadBufferSize: s.maxURL + s.maxHeaders + requestLineSlack,
		// ReadTimeout runs from the slot (a first request) or the first
		// byte (the next ones) to the end of the body: a client that does
		// not send a whole request in time is answered 408 and closed.
		// The others bound a slow reader and an idle keep-alive
		// connection, so that Shutdown and a stalled client cannot hold a
		// worker forever.
		ReadTimeout:                  s.readTimeout,
		WriteTimeout:                 orDefault(opts.WriteTimeout, 30*time.Second),
		IdleTimeout:                  orDefault(opts.IdleTimeout, 60*time.Second),
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		Logger:                       fasthttpLogger{s.log},
	}
	return s
}

// orDefault is v, or def when v is not above zero.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Serve accepts connections on ln until Drain or Shutdown. It returns nil
// then, else the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	err := s.srv.Serve(ln)
	if s.draining.Load() {
		return nil
	}
	return err
}

// Drain begins a graceful stop, the first step of a restart without
// downtime: the listeners close, so that new connections go to the next
// process on the port; GET /up answers 503, so that a load balancer stops
// sending; and every response carries Connection: close, so that a
// keep-alive client opens its next connection to that process instead of
// finding this one gone. Requests keep being answered until Shutdown.
func (s *Server) Drain() {
	s.draining.Store(true)
	s.mu.Lock()
	lns := s.lns
	s.mu.Unlock()
	for _, ln := range lns {
		_ = ln.Close()
	}
}

// Shutdown stops accepting connections, closes idle ones and waits for
// requests in flight until ctx is done.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	err := s.srv.ShutdownWithContext(ctx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("api: shutdown timed out with requests in flight")
	case errors.Is(err, net.ErrClosed):
		return nil // Drain closed the listeners already
	}
	return err
}

// Handler is the request handler Serve runs, for tests and for embedding.
func (s *Server) Handler() fasthttp.RequestHandler { return s.handle }

// handle serves one request and, with Debug, logs it.
func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	serving(ctx)
	if s.draining.Load() {
		ctx.SetConnectionClose()
	}
	start := time.Now()
	r := routeNone
	if !s.overLimit(ctx) {
		r = s.serve(ctx)
	}
	took := time.Since(start)
	s.metrics.observe(r, ctx.Response.StatusCode(), took)
	if s.debug {
		s.log.Debug("api", "method", string(ctx.Method()), "path", string(ctx.URI().PathOriginal()), "status", ctx.Response.StatusCode(), "took", took.String())
	}
}

// route is one endpoint of the HTTP API.
type route uint8

const (
	routeNone route = iota
	routeEvents
	routeBatchEvents
	routeChannels
	routeChannel
	routeChannelUsers
	routeTerminate
	routeConnections
	routeUp
	routeMetrics
	routeConsole
	routeCount
)

// routeMethods is the HTTP method each route takes.
var routeMethods = [...]string{
	routeEvents:       fasthttp.MethodPost,
	routeBatchEvents:  fasthttp.MethodPost,
	routeChannels:     fasthttp.MethodGet,
	routeChannel:      fasthttp.MethodGet,
	routeChannelUsers: fasthttp.MethodGet,
	routeTerminate:    fasthttp.MethodPost,
	routeConnections:  fasthttp.MethodGet,
}

// parseRoute splits a request path as sent into its route, app id and the
// channel name or user id it names. Segments are percent-decoded one by
// one, so that an escaped '/' stays inside its segment.
func parseRoute(path string) (r route, appID, arg string) {
	rest, ok := strings.CutPrefix(path, "/apps/")
	if !ok {
		return routeNone, "", ""
	}
	var seg [4]string
	n := 0
	for n < len(seg) {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			seg[n] = rest
			n++
			rest = ""
			break
		}
		seg[n], rest = rest[:i], rest[i+1:]
		n++
	}
	if rest != "" || n < 2 {
		return routeNone, "", ""
	}
	for i := range n {
		if strings.IndexByte(seg[i], '%') >= 0 {
			u, err := url.PathUnescape(seg[i])
			if err != nil {
				return routeNone, "", ""
			}
			seg[i] = u
		}
	}
	switch {
	case n == 2 && seg[1] == "events":
		r = routeEvents
	case n == 2 && seg[1] == "batch_events":
		r = routeBatchEvents
	case n == 2 && seg[1] == "channels":
		r = routeChannels
	case n == 2 && seg[1] == "connections":
		r = routeConnections
	case n == 3 && seg[1] == "channels":
		r, arg = routeChannel, seg[2]
	case n == 4 && seg[1] == "channels" && seg[3] == "users":
		r, arg = routeChannelUsers, seg[2]
	case n == 4 && seg[1] == "users" && seg[3] == "terminate_connections":
		r, arg = routeTerminate, seg[2]
	default:
		return routeNone, "", ""
	}
	return r, seg[0], arg
}

// serve routes a request: route (404), method (405), body size (413), app
// (404), signature (401), app disabled (403), then the endpoint.
func (s *Server) serve(ctx *fasthttp.RequestCtx) route {
	signed := string(ctx.URI().PathOriginal())
	path := signed
	if s.prefix != "" {
		path = strings.TrimPrefix(path, s.prefix)
	}
	switch {
	case path == "/up":
		if !ctx.IsGet() && !ctx.IsHead() {
			ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
			fail(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
			return routeUp
		}
		if s.draining.Load() {
			reply(ctx, fasthttp.StatusServiceUnavailable, healthDraining)
			return routeUp
		}
		reply(ctx, fasthttp.StatusOK, healthOK)
		return routeUp
	case s.consoleOn && (path == "/console" || strings.HasPrefix(path, "/console/")):
		s.console(ctx, signed, path[len("/console"):])
		return routeConsole
	case path == "/metrics" && !s.metricsElsewhere:
		if !ctx.IsGet() {
			ctx.Response.Header.Set(fasthttp.HeaderAllow, "GET")
			fail(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
			return routeMetrics
		}
		s.metrics.handler(ctx)
		return routeMetrics
	}
	r, appID, arg := parseRoute(path)
	if r == routeNone {
		fail(ctx, fasthttp.StatusNotFound, "Not found")
		return r
	}
	if want := routeMethods[r]; string(ctx.Method()) != want {
		ctx.Response.Header.Set(fasthttp.HeaderAllow, want)
		fail(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
		return r
	}
	body := ctx.PostBody()
	if len(body) > s.maxBody {
		fail(ctx, fasthttp.StatusRequestEntityTooLarge, s.bodyTooLarge)
		return r
	}
	app := s.p.AppByID(appID)
	if app == nil {
		fail(ctx, fasthttp.StatusNotFound, "Unknown app")
		return r
	}
	if msg := s.authenticated(ctx, app, signed, path, body); msg != "" {
		fail(ctx, fasthttp.StatusUnauthorized, msg)
		return r
	}
	if !app.Enabled {
		// Pusher answers 403 for a disabled app.
		fail(ctx, fasthttp.StatusForbidden, "Application disabled")
		return r
	}
	switch r {
	case routeEvents:
		s.events(ctx, app, body)
	case routeBatchEvents:
		s.batchEvents(ctx, app, body)
	case routeChannels:
		s.channels(ctx, app)
	case routeChannel:
		s.channel(ctx, app, arg)
	case routeChannelUsers:
		s.users(ctx, app, arg)
	case routeTerminate:
		s.terminate(ctx, app, arg)
	case routeConnections:
		s.connections(ctx, app)
	}
	return r
}

// authenticated checks the request's signature with app's secret: ""
// when it holds, else why not. An SDK behind a proxy signs the path it
// asks for (signed), prefix and all; one that knows nothing of the
// prefix signs the route alone (path).
func (s *Server) authenticated(ctx *fasthttp.RequestCtx, app *pusher.App, signed, path string, body []byte) string {
	msg := authenticate(&app.AppConfig, ctx.Method(), signed, ctx.QueryArgs(), body, s.now())
	if msg != "" && signed != path {
		msg = authenticate(&app.AppConfig, ctx.Method(), path, ctx.QueryArgs(), body, s.now())
	}
	return msg
}

var (
	healthOK       = []byte(`{"health":"OK"}`)
	healthDraining = []byte(`{"health":"DRAINING"}`)
	emptyObject    = []byte(`{}`)
)

// reply writes a JSON body with status.
func reply(ctx *fasthttp.RequestCtx, status int, body []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(body)
}

// fail writes {"error":msg} with status.
func fail(ctx *fasthttp.RequestCtx, status int, msg string) {
	b := make([]byte, 0, len(msg)+16)
	b = append(b, `{"error":`...)
	b = codec.AppendJSONString(b, msg)
	reply(ctx, status, append(b, '}'))
}

// apiError is a refused request: its status and its reason.
type apiError struct {
	status int
	msg    string
}

func badRequest(msg string) *apiError { return &apiError{status: fasthttp.StatusBadRequest, msg: msg} }

func (e *apiError) write(ctx *fasthttp.RequestCtx) { fail(ctx, e.status, e.msg) }
