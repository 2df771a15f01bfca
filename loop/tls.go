package loop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/revurb/revurb/pusher"
)

// wss:// in the loops (DESIGN: TLS in the loops). An established
// connection's records are opened and sealed on its own loop, by the record
// layer (record.go); no goroutine is kept per connection. Only the
// handshake runs off the loop, because crypto/tls's handshake is a blocking
// function: the loop hands a connection's records, whole, to a handshake
// worker (a goroutine of a bounded pool) through a queue of its own, and
// the worker's writes come back to the loop as tasks. When the handshake is
// done the worker leaves the traffic secrets (from crypto/tls's key log)
// and the records the handshake did not read — application data the client
// sent right after its Finished — and the loop takes the connection on
// from there; the tls.Conn and the worker's stack are gone.
//
// Bounds: at most Config.MaxHandshakes run at once; every other connection
// the engine may hold (Config.MaxConns, or sixteen times MaxHandshakes
// without a cap) may wait for a worker, so that a reconnect storm waits
// rather than fails, each waiter holding only the one record of its
// ClientHello (maxWaitingBytes); past that a new connection is closed at
// once, and the established ones are untouched. What a connection may send
// before its handshake ends is bounded (maxHandshakeRecords,
// maxHandshakeBytes), and a stalled handshake — running or waiting — is
// closed by the sweep, as a slow upgrade is (Config.HandshakeTimeout); a
// waiter closed so is skipped by the worker that reaches it.

const (
	maxHandshakeRecords = 64
	maxHandshakeBytes   = 64 << 10
	// maxWaitingBytes is what a handshake no worker has taken yet may
	// hold: one record of the largest size, its header included.
	maxWaitingBytes = 5 + 16<<10 + 256
)

var errHandshakeFlood = errors.New("loop: too much sent before the TLS handshake ended")

// tlsServer is an engine's TLS: its configuration and handshake workers.
type tlsServer struct {
	cfg     *tls.Config
	jobs    chan *tlsHandshake
	running atomic.Int32
	max     int32

	done, failed, refused atomic.Uint64
	took                  handshakeTimes
}

// newTLSServer takes the caller's configuration (certificates or
// GetCertificate), with what the record layer needs: TLS 1.2 or 1.3, AEAD
// suites, ALPN http/1.1 and no session tickets (a resumption would need
// the ticket keys here too).
// waiting is how many handshakes may wait for a worker.
func newTLSServer(base *tls.Config, maxHandshakes, waiting int) *tlsServer {
	cfg := base.Clone()
	cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	if cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	cfg.CipherSuites = tlsSuites
	cfg.NextProtos = []string{"http/1.1"}
	cfg.SessionTicketsDisabled = true
	cfg.Renegotiation = tls.RenegotiateNever
	return &tlsServer{cfg: cfg, jobs: make(chan *tlsHandshake, waiting), max: int32(maxHandshakes)}
}

// tlsConn is a connection's TLS state: its handshake while it runs, then
// its record layer.
type tlsConn struct {
	hs      *tlsHandshake
	rec     *records
	pending []byte // plaintext opened and not yet consumed (a partial frame, or unread past the budget)
	update  bool   // the client asked for a KeyUpdate: send one before the next record
}

// tlsHandshake is one connection's handshake. The loop appends the
// client's records to recs; the worker reads them one at a time.
type tlsHandshake struct {
	c      *conn // touched on the loop only
	ts     *tlsServer
	e      *Engine
	loop   int
	start  time.Time
	ctx    context.Context
	cancel context.CancelFunc
	local  net.Addr
	remote net.Addr

	mu       sync.Mutex
	recs     [][]byte
	bytes    int
	started  bool // a worker has taken it
	finished bool
	wake     chan struct{}

	// The worker's, until it queues the done task.
	cur          []byte
	keylog       keyLog
	serverRandom []byte
	keys         *tlsKeys
	err          error
}

// handshakeTraffic queues the whole records at the start of buf for c's
// handshake, submitting it at its first, and returns the bytes used.
func (c *conn) handshakeTraffic(buf []byte) (int, error) {
	t := c.tls
	used := 0
	for {
		n, err := recordLen(buf[used:])
		if err != nil {
			return used, err
		}
		if n == 0 || used+n > len(buf) {
			return used, nil
		}
		if t.hs == nil {
			t.hs = c.l.e.tls.newHandshake(c)
			if !c.l.e.tls.submit(t.hs) {
				return used, errHandshakeFlood
			}
		}
		if !t.hs.push(bytes.Clone(buf[used : used+n])) {
			return used, errHandshakeFlood
		}
		used += n
	}
}

func (ts *tlsServer) newHandshake(c *conn) *tlsHandshake {
	h := &tlsHandshake{c: c, ts: ts, e: c.l.e, loop: c.l.index, start: time.Now(), wake: make(chan struct{}, 1),
		local: c.gc.LocalAddr(), remote: c.gc.RemoteAddr()}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	return h
}

// push queues a record from the client, within the bounds.
func (h *tlsHandshake) push(rec []byte) bool {
	h.mu.Lock()
	limit := maxHandshakeBytes
	if !h.started {
		limit = maxWaitingBytes
	}
	ok := len(h.recs) < maxHandshakeRecords && h.bytes+len(rec) <= limit
	if ok {
		h.recs = append(h.recs, rec)
		h.bytes += len(rec)
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
	return ok
}

// submit queues h for a worker, starting one if fewer than max run; false
// if as many wait already.
func (ts *tlsServer) submit(h *tlsHandshake) bool {
	select {
	case ts.jobs <- h:
	default:
		ts.refused.Add(1)
		return false
	}
	if ts.reserve() {
		go ts.work()
	}
	return true
}

// reserve counts one more worker if fewer than max run.
func (ts *tlsServer) reserve() bool {
	for {
		n := ts.running.Load()
		if n >= ts.max {
			return false
		}
		if ts.running.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// work runs queued handshakes until there are none, then ends.
func (ts *tlsServer) work() {
	for {
		select {
		case h := <-ts.jobs:
			h.run()
			continue
		default:
		}
		ts.running.Add(-1)
		// A handshake queued after the look above, while this worker was
		// still counted, would wait for the next submit: look once more.
		if len(ts.jobs) == 0 || !ts.reserve() {
			return
		}
	}
}

// run does the handshake and hands the result to the loop.
func (h *tlsHandshake) run() {
	defer h.cancel()
	h.mu.Lock()
	h.started = true
	h.mu.Unlock()
	if h.ctx.Err() == nil {
		cfg := h.ts.cfg.Clone()
		cfg.KeyLogWriter = &h.keylog
		tc := tls.Server(&handshakePipe{h}, cfg)
		if h.err = tc.HandshakeContext(h.ctx); h.err == nil {
			st := tc.ConnectionState()
			h.keys, h.err = h.keylog.keys(st.Version, st.CipherSuite, h.serverRandom)
		}
	} else {
		h.err = h.ctx.Err()
	}
	h.mu.Lock()
	h.finished = true
	h.mu.Unlock()
	_ = h.e.Execute(h.loop, handshakeDone{h})
}

// handshakeDone takes a finished handshake on, on the connection's loop.
type handshakeDone struct{ h *tlsHandshake }

func (d handshakeDone) Run(context.Context) error {
	h := d.h
	c := h.c
	if c.state != stateHandshake || c.tls == nil || c.tls.hs != h {
		return nil // closed meanwhile
	}
	if h.err != nil {
		h.ts.failed.Add(1)
		c.state = stateClosing
		_ = c.gc.Close()
		return nil
	}
	rec, err := newRecords(h.keys)
	if err != nil {
		h.ts.failed.Add(1)
		c.state = stateClosing
		_ = c.gc.Close()
		return nil
	}
	h.ts.done.Add(1)
	h.ts.took.observe(time.Since(h.start))
	h.mu.Lock()
	rest := h.recs
	h.recs = nil
	h.mu.Unlock()
	c.tls.hs, c.tls.rec = nil, rec
	// What the client sent after its Finished, then whatever waits in the
	// socket's buffer.
	if err := c.openRecords(rest); err != nil {
		c.tlsFail(err)
		return nil
	}
	if c.serve() {
		_ = c.gc.Close()
	}
	return nil
}

// handshakeWrite sends what the handshake wrote, on the loop.
type handshakeWrite struct {
	h *tlsHandshake
	b []byte
}

func (w handshakeWrite) Run(context.Context) error {
	if c := w.h.c; c.state == stateHandshake && c.tls != nil && c.tls.hs == w.h {
		_, _ = c.gc.Write(w.b)
	}
	return nil
}

// handshakePipe is the net.Conn crypto/tls runs the handshake over: it
// reads the client's records as the loop queued them, one at a time (so
// that a record after the client's Finished is never read), and writes
// through the loop.
type handshakePipe struct{ h *tlsHandshake }

func (p *handshakePipe) Read(b []byte) (int, error) {
	h := p.h
	for len(h.cur) == 0 {
		h.mu.Lock()
		if len(h.recs) > 0 {
			h.cur = h.recs[0]
			h.recs[0] = nil
			h.recs = h.recs[1:]
		}
		h.mu.Unlock()
		if len(h.cur) > 0 {
			break
		}
		select {
		case <-h.wake:
		case <-h.ctx.Done():
			return 0, net.ErrClosed
		}
	}
	n := copy(b, h.cur)
	h.cur = h.cur[n:]
	return n, nil
}

func (p *handshakePipe) Write(b []byte) (int, error) {
	h := p.h
	if h.ctx.Err() != nil {
		return 0, net.ErrClosed
	}
	if r := serverRandom(b); r != nil {
		h.serverRandom = r
	}
	if err := h.e.Execute(h.loop, handshakeWrite{h, bytes.Clone(b)}); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *handshakePipe) Close() error                     { p.h.cancel(); return nil }
func (p *handshakePipe) LocalAddr() net.Addr              { return p.h.local }
func (p *handshakePipe) RemoteAddr() net.Addr             { return p.h.remote }
func (p *handshakePipe) SetDeadline(time.Time) error      { return nil }
func (p *handshakePipe) SetReadDeadline(time.Time) error  { return nil }
func (p *handshakePipe) SetWriteDeadline(time.Time) error { return nil }

// serverRandom returns the random of a ServerHello that starts the records
// b, or nil (RFC 5246 §7.4.1.3: type 2, length, version, random).
func serverRandom(b []byte) []byte {
	if len(b) < recordHeaderLen+4+2+32 || b[0] != recordHandshake || b[recordHeaderLen] != 2 {
		return nil
	}
	return bytes.Clone(b[recordHeaderLen+6 : recordHeaderLen+6+32])
}

// keyLog takes crypto/tls's key log lines (NSS's format) for one
// handshake: the secrets the record layer is built from.
type keyLog struct {
	clientRandom, master       []byte
	clientSecret, serverSecret []byte
}

func (k *keyLog) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 {
		return len(line), nil
	}
	random, err1 := hex.DecodeString(string(f[1]))
	secret, err2 := hex.DecodeString(string(f[2]))
	if err1 != nil || err2 != nil {
		return len(line), nil
	}
	switch string(f[0]) {
	case "CLIENT_RANDOM":
		k.clientRandom, k.master = random, secret
	case "CLIENT_TRAFFIC_SECRET_0":
		k.clientSecret = secret
	case "SERVER_TRAFFIC_SECRET_0":
		k.serverSecret = secret
	}
	return len(line), nil
}

// keys is what the record layer needs of a handshake of version and suite.
func (k *keyLog) keys(version, suite uint16, serverRandom []byte) (*tlsKeys, error) {
	tk := &tlsKeys{version: version, suite: suite}
	switch version {
	case tls.VersionTLS13:
		if k.clientSecret == nil || k.serverSecret == nil {
			return nil, errors.New("loop: TLS 1.3 traffic secrets missing from the key log")
		}
		tk.clientSecret, tk.serverSecret = k.clientSecret, k.serverSecret
	case tls.VersionTLS12:
		if k.master == nil || serverRandom == nil {
			return nil, errors.New("loop: TLS 1.2 master secret or server random missing")
		}
		tk.master, tk.clientRandom, tk.serverRandom = k.master, k.clientRandom, serverRandom
	default:
		return nil, errRecordSuite
	}
	return tk, nil
}

// handshakeTimes counts handshake times by bucket
// (pusher.TLSHandshakeBuckets; the last counts those over every bound) and
// sums them.
type handshakeTimes struct {
	counts [16]atomic.Uint64
	sumNs  atomic.Uint64
}

func (t *handshakeTimes) observe(d time.Duration) {
	i := 0
	for i < len(pusher.TLSHandshakeBuckets) && d.Seconds() > pusher.TLSHandshakeBuckets[i] {
		i++
	}
	t.counts[i].Add(1)
	t.sumNs.Add(uint64(d))
}

// stats adds the handshakes' counts to st.
func (ts *tlsServer) stats(st *pusher.TransportStats) {
	st.TLSHandshakes, st.TLSHandshakesFailed, st.TLSHandshakesRefused = ts.done.Load(), ts.failed.Load(), ts.refused.Load()
	st.TLSHandshakeSeconds = make([]uint64, len(pusher.TLSHandshakeBuckets)+1)
	for i := range st.TLSHandshakeSeconds {
		st.TLSHandshakeSeconds[i] = ts.took.counts[i].Load()
	}
	st.TLSHandshakeSecondsSum = time.Duration(ts.took.sumNs.Load()).Seconds()
}
