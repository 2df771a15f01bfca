package loop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/codec"
	"github.com/revurb/revurb/pusher"
)

// Config sets up an Engine.
type Config struct {
	// Addr is host:port to listen on for WebSockets.
	Addr string
	// Loops is the number of event loops; 0 means one per CPU.
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

	srv   *pusher.Server
	cfg   Config
	proto string
	ready chan struct{}
	eng   gnet.Engine

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

// loopState is what revurb keeps for one event loop. Only that loop
// touches it, except q, which any goroutine may queue tasks on.
type loopState struct {
	_       [64]byte // the counters below stay off other loops' cache lines
	e       *Engine
	index   int
	conns   []*conn // the loop's connections; conn.slot is the position
	st      *stager
	q       taskQueue
	sweep   []*conn // the sweep's copy of conns, reused
	scratch []byte  // for a frame built on the loop and staged at once

	depth   int     // turns in progress on the loop (turn.go)
	closing []*conn // connections gone during the turn, for the protocol core to close after it

	throttled      []*conn // connections over their message budget (budget.go)
	spareThrottled []*conn // the list a resume turn drained, reused
	resume         resumer

	// Counters, written by the loop alone and read by Stats from anywhere:
	// an atomic each, on this loop's own cache lines, so that counting
	// costs a message no contended write.
	opened            atomic.Uint64
	closed            [len(closeCodes) + 1]atomic.Uint64 // by closeCodes, then any other
	msgsIn, msgsOut   atomic.Uint64
	bytesIn, bytesOut atomic.Uint64
	throttles         atomic.Uint64 // connections that went over their message budget
	nThrottled        atomic.Int32  // len(throttled), for the ticker
	_                 [64]byte
}

// closeCodes are the close codes counted apart (metrics label them); any
// other is counted as "other". 1006 is a connection that went without a
// close frame.
var closeCodes = [...]int{1000, 1001, 1002, 1003, 1006, 1007, 1008, 1009, 1011,
	4001, 4003, 4004, 4005, 4007, 4009, 4100, 4200, 4201}

// countClose counts a connection closed with code.
func (l *loopState) countClose(code int) {
	for i, c := range closeCodes {
		if c == code {
			l.closed[i].Add(1)
			return
		}
	}
	l.closed[len(closeCodes)].Add(1)
}

var _ pusher.Loops = (*Engine)(nil)

// New returns an engine serving srv and attaches itself to srv.
func New(srv *pusher.Server, cfg Config) (*Engine, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.NumCPU()
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
	e := &Engine{srv: srv, cfg: cfg, proto: "tcp://" + cfg.Addr, ready: make(chan struct{})}
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
	return gnet.Run(e, e.proto,
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

// Execute runs t on loop i, after every task queued for loop i before it.
//
// Tasks go through a queue of revurb's own, and gnet is woken once per
// batch: gnet's task queues can run a later task before an earlier one when
// a loop falls behind (a task overflows into its second queue), and a
// broadcast must never overtake the one published before it. The batch also
// saves one gnet task, with its allocation and eventfd write, per broadcast.
func (e *Engine) Execute(i int, t pusher.Task) error {
	q := &e.loops[i].q
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
	wake := !q.woken
	q.woken = true
	q.mu.Unlock()
	if !wake {
		return nil
	}
	e.mu.Lock()
	var el gnet.EventLoop
	if i < len(e.gnets) {
		el = e.gnets[i]
	}
	e.mu.Unlock()
	if el == nil {
		return errors.New("loop: no event loop " + strconv.Itoa(i))
	}
	return el.Execute(context.Background(), q)
}

// taskQueue is the tasks waiting for one loop, in the order they came.
type taskQueue struct {
	l     *loopState
	mu    sync.Mutex
	tasks []pusher.Task
	spare []pusher.Task // the drained batch's slice, reused
	woken bool          // a Run is queued in gnet and has not started draining
}

// Run drains the queue on its loop: one turn, whose writes leave together
// at its end.
func (q *taskQueue) Run(ctx context.Context) error {
	q.l.begin()
	defer q.l.end()
	q.mu.Lock()
	batch := q.tasks
	q.tasks, q.spare = q.spare[:0], nil
	q.woken = false
	q.mu.Unlock()
	for _, t := range batch {
		q.l.run(ctx, t)
	}
	clear(batch)
	q.mu.Lock()
	q.spare = batch[:0]
	q.mu.Unlock()
	return nil
}

// run runs one task. A task that panics is a bug: it is logged with its
// stack and the loop goes on with the next, rather than every connection
// going down with the process.
func (l *loopState) run(ctx context.Context, t pusher.Task) {
	defer func() {
		if r := recover(); r != nil {
			l.e.cfg.Log.Error("loop: panic in a task; going on with the next", "loop", l.index, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	_ = t.Run(ctx)
}

// flushSafely sends what the loop's turn has staged, at the end of a task
// turn and after a panic serving a connection. A write that panics is
// logged and loses that connection's frames; the others still go, by
// flushing again (each pass gets past at least one connection), and
// should that not end, the rest is dropped.
func (l *loopState) flushSafely() {
	for range len(l.st.dirty) + 1 {
		if l.tryFlush() {
			return
		}
	}
	l.st.reset()
}

// tryFlush flushes the staged frames and reports whether it got through
// without a panic.
func (l *loopState) tryFlush() (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			l.e.cfg.Log.Error("loop: panic flushing the turn's writes; going on with the other connections", "loop", l.index, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			ok = false
		}
	}()
	l.st.flush()
	return true
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

// eachLoop runs f on every loop that has had connections and returns a
// channel that is closed when all of them have run it.
func (e *Engine) eachLoop(f func(i int)) <-chan struct{} {
	e.mu.Lock()
	n := len(e.gnets)
	e.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		i := i
		err := e.Execute(i, gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			f(i)
			return nil
		}))
		if err != nil {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
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
				e.srv.Shutdown(&c.sess)
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
	// Newcomers being refused do not hold the exit up: only clients that
	// had a session are waited for, to read their close frame.
	for e.open.Load()-e.refusing.Load() > 0 && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	return e.eng.Stop(ctx)
}

// Stats is what the engine has seen since it started.
type Stats struct {
	Refused       uint64 // connections refused: over MaxConns, or while stopping
	SlowConsumers uint64 // connections closed with 4100 for their unsent backlog
	InboundCloses uint64 // connections closed with 4100 for what they sent unread past MaxInbound
	Throttles     uint64 // times a connection went over its message budget and was read more slowly
	Opened        uint64 // WebSocket connections opened (handshake done)
	// Closed counts WebSocket connections closed, by close code: the code
	// of the close frame sent (the client's own, echoed), 1006 for one gone
	// without a close frame; "other" for codes not in closeCodes.
	Closed            map[string]uint64
	MessagesIn        uint64 // WebSocket messages received (data and control; a fragmented one once)
	MessagesOut       uint64 // WebSocket messages sent
	BytesIn, BytesOut uint64
}

// Stats reports on the engine, summing its loops' counters.
func (e *Engine) Stats() Stats {
	st := Stats{Refused: e.refused.Load(), SlowConsumers: e.slowConsumers.Load(), InboundCloses: e.inboundCloses.Load(), Closed: map[string]uint64{}}
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
	return st
}

// OnBoot keeps the engine handle. gnet calls it before it binds the
// listening sockets of loops 1..n-1 (one each, SO_REUSEPORT), so readiness
// waits for the first OnTick: the ticker starts once every loop listens.
func (e *Engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.eng = eng
	return gnet.None
}

// OnOpen gives the connection its state; the handshake comes as traffic.
// A connection over MaxConns, or one arriving while the engine stops, is
// refused: told why after its handshake (4100 over capacity, 4200
// reconnect now) if few enough wait for that already, else closed at once.
func (e *Engine) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	l := e.loops[e.loopIndex(gc.EventLoop())]
	c := &conn{gc: gc, l: l, slot: int32(len(l.conns)), deadline: time.Now().Add(e.cfg.HandshakeTimeout).UnixNano()}
	n := e.open.Add(1)
	switch {
	case e.stopping.Load():
		c.refuse = pusher.CodeReconnect
	case e.cfg.MaxConns > 0 && n > int64(e.cfg.MaxConns):
		c.refuse = pusher.CodeOverCapacity
	}
	if c.refuse != 0 {
		e.refused.Add(1)
		if e.refusing.Add(1) > int64(e.cfg.Refusing) {
			e.refusing.Add(-1)
			e.open.Add(-1)
			return nil, gnet.Close
		}
		c.deadline = time.Now().Add(refuseTimeout).UnixNano()
	}
	gc.SetContext(c)
	l.conns = append(l.conns, c)
	return nil, gnet.None
}

// refuseTimeout is how long a refused connection may take to send its
// handshake and be told why.
const refuseTimeout = 2 * time.Second

// OnClose ends the session, however the connection went.
func (e *Engine) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*conn)
	if !ok {
		return gnet.None
	}
	if c.state == stateOpen && c.refuse == 0 {
		c.l.countClose(1006) // gone without a close frame
	}
	c.state = stateClosed
	e.open.Add(-1)
	if c.refuse != 0 {
		e.refusing.Add(-1)
	}
	l := c.l
	last := len(l.conns) - 1
	moved := l.conns[last]
	l.conns[c.slot], moved.slot = moved, c.slot
	l.conns[last] = nil
	l.conns = l.conns[:last]
	// Closed by gnet inside a write of a turn: the protocol core hears of
	// it when that turn ends. Else this is a turn of its own.
	l.closing = append(l.closing, c)
	if l.depth == 0 {
		l.begin()
		l.end()
	}
	return gnet.None
}

// OnTraffic decodes what arrived and hands complete messages to the
// protocol core.
func (e *Engine) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	c.l.begin()
	defer c.l.end()
	if c.serve() {
		return gnet.Close
	}
	return gnet.None
}

// serve reads what c has received and not consumed yet, as far as its
// message budget allows, in a turn of c's loop. It reports whether
// c must be closed at once: a bug reached by one client's bytes must not
// take every other connection down with the process, so a panic is
// logged, that client is told 1011 and dropped.
func (c *conn) serve() (closeNow bool) {
	defer func() {
		if r := recover(); r != nil {
			c.l.e.cfg.Log.Error("loop: panic serving a connection; closing it with 1011", "remote", fmt.Sprint(c.gc.RemoteAddr()), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			c.l.st.forget(c)
			if c.state == stateOpen {
				_, _ = c.gc.Write(codec.AppendCloseFrame(nil, ws.StatusInternalServerError, "Internal server error"))
				c.l.countClose(int(ws.StatusInternalServerError))
			}
			c.state = stateClosing
			closeNow = true
		}
	}()
	if c.throttled {
		// Still waiting for its budget: what arrived waits too, up to the
		// cap. (A resume turn takes it off the list first.)
		c.overInbound()
		return false
	}
	buf, _ := c.gc.Peek(-1)
	// Discard(0) would drop everything buffered: gnet treats n <= 0 as
	// "all". A partial request or frame must stay for the next read.
	if n := c.traffic(buf); n > 0 {
		_, _ = c.gc.Discard(n)
	}
	if c.throttled {
		c.overInbound()
	}
	return false
}

// sweepEvery is how often each loop checks its connections' keepalive
// deadlines. Deadlines are seconds long, so one pass a second over the loop's
// connections is precise enough and costs no timer per connection.
const sweepEvery = time.Second

// sweepTicks is how many ticks, resumeEvery apart, make a sweepEvery.
const sweepTicks = int(sweepEvery / resumeEvery)

// expireEvery is how many sweeps pass between purges of expired cache-channel
// events: a purge walks every cached event, and a late purge only holds
// memory a little longer (an expired event is never replayed).
const expireEvery = 30 * sweepTicks

// OnTick queues, every resumeEvery, a resume turn on each loop with
// throttled connections, and every sweepEvery a sweep of every loop's
// connections.
func (e *Engine) OnTick() (time.Duration, gnet.Action) {
	if e.ticks == 0 {
		close(e.ready)
	}
	now := time.Now().UnixNano()
	for i, l := range e.loops {
		if l.nThrottled.Load() > 0 {
			_ = e.Execute(i, l.resume)
		}
	}
	if e.ticks%sweepTicks == 0 {
		e.eachLoop(func(i int) { e.sweep(i, now) })
	}
	if e.ticks++; e.ticks%expireEvery == 0 {
		e.srv.Expire(now)
	}
	return resumeEvery, gnet.None
}

// sweep runs on loop i: keepalive for open sessions, a deadline for
// handshakes, and the final close of connections whose close frame has
// been flushed.
func (e *Engine) sweep(i int, now int64) {
	for _, c := range e.loops[i].snapshot() {
		switch c.state {
		case stateOpen:
			if c.deadline != 0 && now > c.deadline {
				c.deadline = 0
				if c.sess.User() == "" {
					e.srv.Unauthenticated(&c.sess)
					continue
				}
			}
			e.srv.Check(&c.sess, now)
		case stateHandshake:
			if now > c.deadline {
				c.state = stateClosing
				c.deadline = 0
				_ = c.gc.Close()
			}
		case stateClosing:
			if c.deadline != 0 && (c.gc.OutboundBuffered() == 0 || now > c.deadline) {
				c.deadline = 0
				_ = c.gc.Close()
			}
		}
	}
	clear(e.loops[i].sweep) // let closed connections go
}

// snapshot returns the loop's connections as they are now, in a slice that
// stays put while a walk over it closes some of them.
func (l *loopState) snapshot() []*conn {
	l.sweep = append(l.sweep[:0], l.conns...)
	return l.sweep
}
