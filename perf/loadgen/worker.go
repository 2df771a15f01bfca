package main

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Messages between the coordinator and a worker (in process over channels,
// or a child process over JSON lines on stdin and stdout).
const (
	msgReady   = "ready"   // worker → coordinator: setup over
	msgRan     = "ran"     // worker → coordinator: its own sending is over
	msgDrained = "drained" // worker → coordinator: deliveries are in (or the drain timed out); sockets still open
	msgReport  = "report"  // worker → coordinator: final report
	msgGo      = "go"      // coordinator → worker: start the load
	msgDone    = "done"    // coordinator → worker: drain, then say drained
	msgClose   = "close"   // coordinator → worker: close the sockets and report
)

// workerMsg is what a worker says to the coordinator.
type workerMsg struct {
	Type       string  `json:"type"`
	Index      int     `json:"index"`
	Connected  int64   `json:"connected,omitempty"`
	Subscribed int64   `json:"subscribed,omitempty"`
	Sent       int64   `json:"sent,omitempty"`
	Report     *Report `json:"report,omitempty"`
}

// ctrlMsg is what the coordinator says to a worker.
type ctrlMsg struct {
	Type string `json:"type"`
	// PublishedPerChannel counts the fanout events whose trigger was
	// answered 200, by channel index.
	PublishedPerChannel []int `json:"published_per_channel,omitempty"`
	// Failed lists the ids of fanout events whose trigger was not answered
	// 200: they are not expected, and a delivery of one is counted apart.
	Failed []int `json:"failed,omitempty"`
	// DrainUntil is when to stop waiting for deliveries, unix nanos.
	DrainUntil int64 `json:"drain_until,omitempty"`
}

// worker owns a share of the connections: it sets them up, sends client
// events when the mode wants it, waits for deliveries and reports.
type worker struct {
	cfg         *config
	index       int
	sourceFirst int
	path        string
	eventName   string
	eventQuoted []byte
	publishers  int // whose numbering each socket checks: cfg.publishers, 1 in client-events

	conns     []*conn
	setupWG   sync.WaitGroup
	readersWG sync.WaitGroup
	stopping  atomic.Bool

	setupClosed bool // guarded by mu

	established atomic.Int64
	subscribed  atomic.Int64
	delivered   atomic.Int64
	sent        atomic.Int64
	firstDial   atomic.Int64 // unix nanos
	lastEstab   atomic.Int64 // unix nanos

	connectLat   hist
	subscribeLat hist
	latency      hist
	targetLat    []*hist // per -ws target, when there are several

	mu           sync.Mutex // guards the maps and conn.ws registration
	failures     map[string]int
	drops        map[string]int
	closes       map[string]int
	serverErrors map[string]int
	frameErrors  map[string]int
	other        map[string]int
	tlsSessions  map[string]int // what the TLS handshakes settled on (-tls)
	retries      map[string]int // dials tried again (-retry), by why the one before failed
}

func newWorker(cfg *config, index int) *worker {
	w := &worker{
		cfg:          cfg,
		index:        index,
		sourceFirst:  cfg.sourceFirst,
		path:         "/app/" + cfg.key + "?protocol=7&client=revurb-loadgen&version=1.0&flash=false",
		eventName:    fanoutEvent,
		publishers:   cfg.publishers,
		failures:     map[string]int{},
		drops:        map[string]int{},
		closes:       map[string]int{},
		serverErrors: map[string]int{},
		frameErrors:  map[string]int{},
		other:        map[string]int{},
		tlsSessions:  map[string]int{},
		retries:      map[string]int{},
	}
	if cfg.mode == modeClientEvents {
		w.eventName = clientEvent
	}
	w.eventQuoted = []byte(`"event":"` + w.eventName + `"`)
	if len(cfg.wsAddrs) > 1 {
		w.targetLat = make([]*hist, len(cfg.wsAddrs))
		for i := range w.targetLat {
			w.targetLat[i] = &hist{}
		}
	}
	w.conns = make([]*conn, cfg.conns)
	for i := range w.conns {
		c := &conn{w: w, index: i, chanIdx: i % cfg.channels, target: targetOf(cfg.connOffset+i, len(cfg.wsAddrs))}
		c.channel = channelName(cfg.channel, c.chanIdx, cfg.channels)
		if cfg.mode == modeClientEvents {
			c.channel = "private-" + cfg.channel + "-" + strconv.Itoa(cfg.childIndex) + "-" + strconv.Itoa(i/2)
		}
		w.conns[i] = c
	}
	return w
}

// count adds one to m[key].
func (w *worker) count(m *map[string]int, key string) {
	w.mu.Lock()
	(*m)[key]++
	w.mu.Unlock()
}

// drop records a ready connection that ended while the load was running.
// register publishes c's socket so that stop can close it; it refuses
// (and closes the socket) once the worker is stopping.
func (w *worker) register(c *conn, wc *wsConn) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping.Load() {
		wc.abort()
		return false
	}
	if w.setupClosed {
		wc.abort()
		w.failures["setup: not ready in time"]++
		return false
	}
	c.ws = wc
	return true
}

func (w *worker) noteDial(t time.Time) {
	w.firstDial.CompareAndSwap(0, t.UnixNano())
}

func (w *worker) noteEstablished(t time.Time) {
	n := t.UnixNano()
	for {
		m := w.lastEstab.Load()
		if n <= m || w.lastEstab.CompareAndSwap(m, n) {
			return
		}
	}
}

// setup starts every connection with at most cfg.concurrency attempts in
// flight and returns when all are set up or have failed, or ctx ends.
func (w *worker) setup(ctx, dialCtx context.Context) {
	sem := make(chan struct{}, w.cfg.concurrency)
	release := func() { <-sem }
	w.setupWG.Add(len(w.conns))
	launched := 0
	for _, c := range w.conns {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		w.readersWG.Add(1)
		launched++
		go c.run(dialCtx, release)
	}
	// Connections never launched count as set up (and failed).
	for range len(w.conns) - launched {
		w.setupWG.Done()
	}
	done := make(chan struct{})
	go func() { w.setupWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// closeSetup ends the setup phase: sockets not ready by now take no part
// in the load and are closed as failures.
func (w *worker) closeSetup() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.setupClosed = true
	for _, c := range w.conns {
		if c.ws != nil && !c.setupDone.Load() {
			c.timedOut.Store(true)
			c.ws.abort()
		}
	}
}

// stop closes every socket and waits for the readers to end.
func (w *worker) stop(cancelDials context.CancelFunc) {
	w.mu.Lock()
	w.stopping.Store(true)
	for _, c := range w.conns {
		if c.ws != nil {
			c.ws.abort()
		}
	}
	w.mu.Unlock()
	cancelDials()
	w.readersWG.Wait()
}

// runWorker is the life of a worker: setup, ready, go, (client events),
// ran, done, drain, drained, close, report. Every wait also ends with ctx
// or when ctrl closes, so that a worker always reports. Between drained
// and close the sockets stay open, so that the coordinator can read the
// server's figures (and profiles) for the load alone, without the
// teardown.
func runWorker(ctx context.Context, cfg *config, index int, ctrl <-chan ctrlMsg, out func(workerMsg)) {
	w := newWorker(cfg, index)
	goCh := make(chan struct{})
	doneCh := make(chan ctrlMsg, 1)
	closeCh := make(chan struct{})
	go func() {
		started, done, closed := false, false, false
		for m := range ctrl {
			switch {
			case m.Type == msgGo && !started:
				started = true
				close(goCh)
			case m.Type == msgDone && !done:
				done = true
				doneCh <- m
			case m.Type == msgClose && !closed:
				closed = true
				close(closeCh)
			}
		}
		// The coordinator is gone: report now.
		if !done {
			doneCh <- ctrlMsg{Type: msgDone, DrainUntil: 1}
		}
		if !closed {
			close(closeCh)
		}
	}()

	dialCtx, cancelDials := context.WithCancel(context.Background())
	setupCtx, cancelSetup := context.WithCancel(ctx)
	setupOver := make(chan struct{})
	go func() { w.setup(setupCtx, dialCtx); close(setupOver) }()
	var done *ctrlMsg
	select {
	case <-setupOver:
	case <-ctx.Done():
	case m := <-doneCh:
		done = &m
	}
	cancelSetup()
	<-setupOver
	start := time.Now()
	w.closeSetup()
	subs := w.subscribersPerChannel()
	out(workerMsg{Type: msgReady, Index: index, Connected: w.established.Load(), Subscribed: w.subscribed.Load()})

	var cpuGo float64
	if done == nil {
		select {
		case <-goCh:
			start = time.Now()
			cpuGo, _ = cpuSeconds(os.Getpid())
			if cfg.mode == modeClientEvents {
				w.sendAll(ctx, doneCh, &done)
			}
		case <-ctx.Done():
		case m := <-doneCh:
			done = &m
		}
	}
	out(workerMsg{Type: msgRan, Index: index, Sent: w.sent.Load()})

	if done == nil {
		select {
		case m := <-doneCh:
			done = &m
		case <-ctx.Done():
		}
	}
	var expected int64
	var failed, perChannel []int
	switch cfg.mode {
	case modeFanout:
		if done != nil {
			expected = expectedDeliveries(subs, done.PublishedPerChannel)
			failed, perChannel = done.Failed, done.PublishedPerChannel
		}
	case modeClientEvents:
		expected = w.sent.Load()
	}
	if done != nil {
		w.drain(ctx, expected, len(failed) > 0, time.Unix(0, done.DrainUntil))
	}
	var cpuLoad float64
	if cfg.child && cpuGo > 0 {
		// In process, the coordinator counts this process itself.
		cpu, _ := cpuSeconds(os.Getpid())
		cpuLoad = cpu - cpuGo
	}
	out(workerMsg{Type: msgDrained, Index: index})
	select {
	case <-closeCh:
	case <-ctx.Done():
	}
	w.stop(cancelDials)
	rep := w.report(start, expected, failed, perChannel)
	rep.LoadgenCPULoadSec = cpuLoad
	out(workerMsg{Type: msgReport, Index: index, Report: rep})
}

// subscribersPerChannel counts the sockets that take part in the load, by
// channel index; call it after closeSetup.
func (w *worker) subscribersPerChannel() []int64 {
	subs := make([]int64, w.cfg.channels)
	for _, c := range w.conns {
		if c.subscribed.Load() && !c.timedOut.Load() {
			subs[c.chanIdx]++
		}
	}
	return subs
}

// drain waits until expected deliveries are in, or until, or ctx's end.
// When some triggers failed, deliveries of their events also count in
// w.delivered, so it then waits on until nothing arrives for quiet.
func (w *worker) drain(ctx context.Context, expected int64, failures bool, until time.Time) {
	const quiet = 500 * time.Millisecond
	last, lastChange := w.delivered.Load(), time.Now()
	for time.Now().Before(until) && ctx.Err() == nil {
		n := w.delivered.Load()
		if n != last {
			last, lastChange = n, time.Now()
		}
		if n >= expected && (!failures || time.Since(lastChange) >= quiet) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sendAll runs every subscribed socket's client-event sender and waits for
// them, or for ctx, or for an early done (stored into *done).
func (w *worker) sendAll(ctx context.Context, doneCh <-chan ctrlMsg, done **ctrlMsg) {
	sendCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	start := time.Now()
	interval := time.Duration(float64(time.Second) / w.cfg.rate)
	for _, c := range w.conns {
		if !c.subscribed.Load() {
			continue
		}
		wg.Add(1)
		// Spread the senders over one interval so that the load is smooth.
		offset := time.Duration(rand.Int64N(int64(interval) + 1))
		go func() {
			defer wg.Done()
			c.sendClientEvents(sendCtx, start, offset)
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
	case m := <-doneCh:
		*done = &m
	}
	cancel()
	<-finished
}

// report gathers what the worker saw; call it after stop. Deliveries of
// the failed events (triggers not answered 200) are not counted as
// delivered but apart. perChannel counts the events answered 200 by
// channel index (fanout), each socket's expectation.
func (w *worker) report(start time.Time, expected int64, failed, perChannel []int) *Report {
	r := newReport(w.cfg)
	r.Conns = len(w.conns)
	r.Connected = w.established.Load()
	r.Subscribed = w.subscribed.Load()
	r.FirstDialNs = w.firstDial.Load()
	r.LastEstablishedNs = w.lastEstab.Load()
	r.ConnectLatency.merge(&w.connectLat)
	r.SubscribeLatency.merge(&w.subscribeLat)
	r.Latency.merge(&w.latency)
	r.Expected = expected
	r.Sent = w.sent.Load()
	r.DeliveryStartNs = start.UnixNano()
	r.Targets = newTargets(w.cfg.wsAddrs)
	for i, t := range r.Targets {
		t.Latency.merge(w.targetLat[i])
	}
	failedSet := bitsetOf(failed, w.cfg.events)
	for _, c := range w.conns {
		n := c.received.Load()
		if failedSet != nil {
			f := c.log.countIn(failedSet)
			n -= f
			r.DeliveredFailed += f
		}
		r.Delivered += n
		var want int64
		exact := false
		if w.cfg.mode == modeFanout && perChannel != nil && c.subscribed.Load() && !c.timedOut.Load() {
			want = int64(perChannel[c.chanIdx])
			exact = n == want && c.log.duplicates == 0 && c.log.outOfOrder == 0 && c.log.unexpected == 0 && c.wrongChannel == 0
			if exact {
				r.SocketsExact++
			}
		}
		if r.Targets != nil {
			t := r.Targets[c.target]
			t.Conns++
			if c.established.Load() {
				t.Connected++
			}
			if c.subscribed.Load() {
				t.Subscribed++
			}
			t.Expected += want
			t.Delivered += n
			if exact {
				t.SocketsExact++
			}
		}
		r.Duplicates += c.log.duplicates
		r.OutOfOrder += c.log.outOfOrder
		r.Unexpected += c.log.unexpected
		r.WrongChannel += c.wrongChannel
		if c.lastAt > r.LastDeliveryNs {
			r.LastDeliveryNs = c.lastAt
		}
	}
	r.Failures = w.failures
	r.Drops = w.drops
	r.Closes = w.closes
	r.ServerErrors = w.serverErrors
	r.FrameErrors = w.frameErrors
	r.OtherEvents = w.other
	r.TLS = w.tlsSessions
	r.Retries = w.retries
	r.LoadgenRSS, _ = rssOf("self", "VmHWM")
	r.SourceAddrs = w.cfg.sources
	r.SourceFirst = sourceAddr(w.sourceFirst, 0).IP.String()
	return r
}

// targetOf is the -ws target of the socket with global index g among n
// targets: round robin, so that with -procs the sockets of every child
// (each starting at its -conn-offset) still spread evenly.
func targetOf(g, n int) int {
	if n <= 1 {
		return 0
	}
	return g % n
}

// classify names a socket error by kind, without the addresses and ports
// that would make every error distinct.
func classify(err error) string {
	var ne net.Error
	var te tlsError
	switch {
	case err == nil:
		return "none"
	case errors.As(err, &te):
		return "tls handshake: " + classifyTLS(te.err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no source port left (add -sources)"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files (add -procs)"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	}
	return truncate(err.Error(), 100)
}

// classifyTLS is classify for a handshake's error: crypto/tls's own
// (a certificate that does not verify, an alert) keep their text, with
// the "tls: " crypto/tls puts first dropped.
func classifyTLS(err error) string {
	s := classify(err)
	return strings.TrimPrefix(s, "tls: ")
}
