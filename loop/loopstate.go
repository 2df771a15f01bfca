package loop

import (
	"fmt"
	"runtime/debug"
	"sync/atomic"
)

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
	plain   []byte  // TLS: a read's opened plaintext (tlsconn.go)
	sealed  []byte  // TLS: a write's records

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

// snapshot returns the loop's connections as they are now, in a slice that
// stays put while a walk over it closes some of them.
func (l *loopState) snapshot() []*conn {
	l.sweep = append(l.sweep[:0], l.conns...)
	return l.sweep
}
