package loop

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/pusher"
)

// Config sets up an Engine.
type Config struct {
	// Addr is host:port to listen on for WebSockets.
	Addr string
	// Loops is the number of event loops; 0 means one per CPU the process
	// may use, as the runtime counts them for GOMAXPROCS (a container's CPU
	// quota and the affinity mask count).
	Loops int
	// MaxOutbound is how many bytes may wait unsent for one connection
	// before it is closed as a slow consumer with 4100 (0: 1 MiB).
	MaxOutbound int
	// HandshakeTimeout closes a connection that has not finished its
	// WebSocket handshake in time (0: 10 s).
	HandshakeTimeout time.Duration
	// MaxConns caps the connections the engine holds at once (0: no cap),
	// so that the process never reaches its descriptor limit: gnet stops
	// the whole engine when accept fails with EMFILE. A connection over the
	// cap is told 4100 (over capacity) after its handshake, or, when
	// Refusing connections wait for that already, closed at once.
	MaxConns int
	// Refusing caps the connections over MaxConns, or arriving while the
	// engine stops, that are held until their handshake to be told why they
	// are refused (0: 16). Each holds a descriptor for at most
	// refuseTimeout.
	Refusing int
	// TLS, when not nil, makes the port speak TLS (wss://) with these
	// certificates (Certificates or GetCertificate); the engine restricts
	// it to TLS 1.2 and 1.3 with AEAD suites, ALPN http/1.1 and no
	// session tickets.
	TLS *tls.Config
	// PlainAddr, with TLS, is a second host:port that speaks plain ws://
	// beside Addr's wss:// (pusher-js's wsPort beside its wssPort); the
	// same loops serve both. Empty: Addr alone.
	PlainAddr string
	// MaxHandshakes caps the TLS handshakes running at once (0: 256);
	// every other connection the engine may hold (MaxConns, or sixteen
	// times MaxHandshakes without a cap) may wait for one to end, holding
	// its ClientHello only; more are closed at once.
	MaxHandshakes int
	// MaxInbound is how many bytes a connection over its message budget
	// may have sent unread before it is closed with 4100 (0: 1 MiB).
	MaxInbound int
	// Path is a prefix in front of the WebSocket endpoint, /app/{key}
	// ("" or "/ws": then /ws/app/{key}), for a proxy that forwards a
	// sub-path.
	Path string
	// Log receives errors.
	Log *slog.Logger
}

// Engine is the WebSocket side of revurb: a gnet engine whose event loops
// own every connection. It implements pusher.Loops.
type Engine struct {
	gnet.BuiltinEventEngine

	srv       *pusher.Server
	cfg       Config
	addrs     []string // gnet's protocol addresses: Addr, then PlainAddr
	plainPort int      // PlainAddr's port, 0 without one
	ready     chan struct{}
	eng       gnet.Engine
	tls       *tlsServer // nil: plain ws://

	mu    sync.Mutex
	gnets []gnet.EventLoop // index → gnet's loop, filled as loops open connections
	loops []*loopState     // index → revurb's state of the loop

	stopping      atomic.Bool
	open          atomic.Int64 // connections held, refused ones included
	refusing      atomic.Int64 // connections held only to be refused
	refused       atomic.Uint64
	slowConsumers atomic.Uint64
	inboundCloses atomic.Uint64
	ticks         int // OnTick calls; only the ticker goroutine touches it
}

var _ pusher.Loops = (*Engine)(nil)

// New returns an engine serving srv and attaches itself to srv.
func New(srv *pusher.Server, cfg Config) (*Engine, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Loops > 64 {
		cfg.Loops = 64
	}
	if cfg.MaxOutbound <= 0 {
		cfg.MaxOutbound = 1 << 20
	}
	if cfg.MaxInbound <= 0 {
		cfg.MaxInbound = 1 << 20
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.Refusing <= 0 {
		cfg.Refusing = 16
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Path = strings.TrimSuffix(cfg.Path, "/") + appPath
	e := &Engine{srv: srv, cfg: cfg, addrs: []string{"tcp://" + cfg.Addr}, ready: make(chan struct{})}
	if cfg.PlainAddr != "" {
		if cfg.TLS == nil {
			return nil, errors.New("loop: a plain ws:// address beside the WebSocket port needs TLS on that port")
		}
		_, port, err := net.SplitHostPort(cfg.PlainAddr)
		if e.plainPort, _ = strconv.Atoi(port); err != nil || e.plainPort <= 0 || strings.HasSuffix(cfg.Addr, ":"+port) {
			return nil, errors.New("loop: plain address " + cfg.PlainAddr + " needs a port of its own")
		}
		e.addrs = append(e.addrs, "tcp://"+cfg.PlainAddr)
	}
	if cfg.TLS != nil {
		if cfg.MaxHandshakes <= 0 {
			cfg.MaxHandshakes = 256
		}
		waiting := cfg.MaxConns
		if waiting <= 0 {
			waiting = 16 * cfg.MaxHandshakes
		}
		e.tls = newTLSServer(cfg.TLS, cfg.MaxHandshakes, max(waiting, cfg.MaxHandshakes))
	}
	e.loops = make([]*loopState, cfg.Loops)
	for i := range e.loops {
		l := &loopState{e: e, index: i, st: newStager()}
		l.q.l = l
		l.resume.l = l
		e.loops[i] = l
	}
	if err := srv.Attach(e); err != nil {
		return nil, err
	}
	return e, nil
}

// Run listens and serves until Stop. It blocks.
func (e *Engine) Run() error {
	return gnet.Rotate(e, e.addrs,
		gnet.WithNumEventLoop(e.cfg.Loops),
		gnet.WithLoadBalancing(gnet.RoundRobin),
		gnet.WithTicker(true),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReuseAddr(true),
		// Each loop listens on its own socket, all in one SO_REUSEPORT
		// group: a new process can bind the port while this one drains
		// (a restart without downtime), and a loop accepts, opens and, over
		// the cap, closes one connection at a time, so that accept never
		// runs out of descriptors.
		gnet.WithReusePort(true),
		gnet.WithLogger(gnetLogger{e.cfg.Log}),
	)
}

// Ready is closed once the engine listens on every loop's socket.
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Len is the number of event loops.
func (e *Engine) Len() int { return e.cfg.Loops }

// Active is the number of event loops that have had a connection: loops
// 0..Active()-1 take tasks. With SO_REUSEPORT the kernel picks the loop of
// each connection, so a loop is known once it has had one.
func (e *Engine) Active() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.gnets)
}

// loopIndex returns the index of el, giving it the next one the first time.
func (e *Engine) loopIndex(el gnet.EventLoop) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, x := range e.gnets {
		if x == el {
			return i
		}
	}
	e.gnets = append(e.gnets, el)
	return len(e.gnets) - 1
}

// Stop tells every client to reconnect elsewhere (pusher:error 4200, close
// 4200) and stops the engine. The goodbye is queued on each loop behind the
// broadcasts already queued there, so every event published before Stop
// reaches its subscribers first. Connections that arrive meanwhile, gnet's
// listeners being open until its loops exit, are told 4200 after their
// handshake too. Stop returns once every client has gone or when ctx is
// done, whichever is first.
func (e *Engine) Stop(ctx context.Context) error {
	e.stopping.Store(true)
	done := e.eachLoop(func(i int) {
		for _, c := range e.loops[i].snapshot() {
			switch c.state {
			case stateOpen:
				e.srv.Reconnect(&c.sess)
			case stateHandshake:
				if c.refuse == 0 {
					c.refuse = pusher.CodeReconnect
					e.refusing.Add(1)
				}
				c.deadline = min(c.deadline, time.Now().Add(refuseTimeout).UnixNano())
			}
		}
	})
	select {
	case <-done:
	case <-ctx.Done():
	}
	// Clients that had a session are waited for, to read their close
	// frame; newcomers being refused only a little (refuseTimeout at most):
	// more keep coming while the listeners are open, but a wss:// client
	// cut in the middle of its TLS handshake backs off for many seconds
	// where one told 4200 reconnects at once.
	for e.open.Load()-e.refusing.Load() > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	for end := time.Now().Add(refuseTimeout); e.open.Load() > 0 && ctx.Err() == nil && time.Now().Before(end); {
		time.Sleep(20 * time.Millisecond)
	}
	return e.eng.Stop(ctx)
}

// Stats reports what the engine has seen since it started, summing its
// loops' counters; Closed names the codes not in closeCodes "other".
func (e *Engine) Stats() pusher.TransportStats {
	st := pusher.TransportStats{Refused: e.refused.Load(), SlowConsumers: e.slowConsumers.Load(), InboundCloses: e.inboundCloses.Load(), Closed: map[string]uint64{}}
	for _, l := range e.loops {
		st.Opened += l.opened.Load()
		st.Throttles += l.throttles.Load()
		st.MessagesIn += l.msgsIn.Load()
		st.MessagesOut += l.msgsOut.Load()
		st.BytesIn += l.bytesIn.Load()
		st.BytesOut += l.bytesOut.Load()
		for i := range l.closed {
			name := "other"
			if i < len(closeCodes) {
				name = strconv.Itoa(closeCodes[i])
			}
			if n := l.closed[i].Load(); n > 0 {
				st.Closed[name] += n
			}
		}
	}
	if e.tls != nil {
		e.tls.stats(&st)
	}
	return st
}

// OnBoot keeps the engine handle. gnet calls it before it binds the
// listening sockets of loops 1..n-1 (one each, SO_REUSEPORT), so readiness
// waits for the first OnTick: the ticker starts once every loop listens.
func (e *Engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	return gnet.None
}
