package pusher

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is what Publish returns when the event loops stayed too far
// behind for as long as a publisher may wait: the HTTP API answers it with
// 503.
var ErrBusy = errors.New("pusher: the server is delivering as fast as it can; try again")

// Defaults of the publish bound (Config).
const (
	DefaultPublishQueue   = 4096
	DefaultPublishWait    = 5 * time.Second
	DefaultPublishWaiters = 256
)

// gate bounds the delivery work waiting for the event loops (DESIGN: the
// publish path, bounded). Work is counted in deliveries — one frame to one
// connection — when a broadcast is queued for a loop, and uncounted when
// that loop has run it. A delivery is the unit because its cost is the
// loop's: on loopback here a write system call is about 85% of a loop's
// time, and a frame of 1 KiB costs little more to send than one of 64 B.
//
// A publisher is admitted at once while the queued work is below the
// limit, or no more than the deliveries of its own broadcast (so one with
// no subscribers here at all is never held up); otherwise it
// waits until it is, for maxWait at most, and is then refused with
// ErrBusy. The second rule lets a broadcast to a channel bigger than the
// limit wait behind one predecessor of its size, which keeps the loops busy
// between the two and lets their frames leave in one write per connection. Admission checks the bound, it does not reserve
// room, so the work queued overshoots it by at most one broadcast per
// publisher admitted at the same moment. Work that must not be refused
// (client events, broadcasts from other nodes) is counted without waiting,
// so that it delays publishers in turn.
//
// Counters are per loop, each on its own cache line, written by the loop
// itself and by the goroutines that queue work for it (a publisher, or
// another loop relaying a client event): a loop's own fan-out never writes
// another loop's counter.
type gate struct {
	limit      int64
	maxWait    time.Duration
	maxWaiters int32

	queued  []loopCount // index: event loop
	waiters atomic.Int32

	mu   sync.Mutex
	wake chan struct{} // closed and replaced when room frees up while someone waits

	waits      atomic.Uint64 // publishers that had to wait
	rejections atomic.Uint64 // publishers refused with ErrBusy
}

type loopCount struct {
	n     atomic.Int64 // deliveries
	bytes atomic.Int64 // the frames the queued tasks hold, each counted once per task
	_     [48]byte
}

func newGate(loops int, limit int64, maxWait time.Duration, maxWaiters int) *gate {
	return &gate{
		limit: limit, maxWait: maxWait, maxWaiters: int32(maxWaiters),
		queued: make([]loopCount, loops), wake: make(chan struct{}),
	}
}

// pending is the work queued for all loops.
func (g *gate) pending() int64 {
	var n int64
	for i := range g.queued {
		n += g.queued[i].n.Load()
	}
	return n
}

// admit returns nil once there is room for a publisher about to queue cost
// deliveries, or ErrBusy if there is none within maxWait, if maxWaiters
// publishers are waiting already, or if ctx ends first.
func (g *gate) admit(ctx context.Context, cost int64) error {
	if g.room(cost) {
		return nil
	}
	if g.waiters.Add(1) > g.maxWaiters {
		g.waiters.Add(-1)
		g.rejections.Add(1)
		return ErrBusy
	}
	defer g.waiters.Add(-1)
	g.waits.Add(1)
	timer := time.NewTimer(g.maxWait)
	defer timer.Stop()
	for {
		// Take the wake channel before looking, so that room freed after
		// the look closes this very channel.
		g.mu.Lock()
		wake := g.wake
		g.mu.Unlock()
		if g.room(cost) {
			return nil
		}
		select {
		case <-wake:
		case <-timer.C:
			g.rejections.Add(1)
			return ErrBusy
		case <-ctx.Done():
			g.rejections.Add(1)
			return ErrBusy
		}
	}
}

// room reports whether a broadcast of cost deliveries may be queued now.
func (g *gate) room(cost int64) bool {
	n := g.pending()
	return n < g.limit || n <= cost || cost == 0
}

// pendingBytes is the size of the frames the work queued for all loops
// holds: what it costs in memory, which deliveries alone do not say for
// many small channels.
func (g *gate) pendingBytes() int64 {
	var n int64
	for i := range g.queued {
		n += g.queued[i].bytes.Load()
	}
	return n
}

// add counts cost deliveries of a frame of size bytes queued for loop i.
func (g *gate) add(i int, cost, size int64) {
	g.queued[i].n.Add(cost)
	g.queued[i].bytes.Add(size)
}

// done uncounts what add counted once loop i has run it, and wakes the
// waiting publishers. Each of them looks again against its own bound.
func (g *gate) done(i int, cost, size int64) {
	g.queued[i].n.Add(-cost)
	g.queued[i].bytes.Add(-size)
	if g.waiters.Load() == 0 {
		return
	}
	g.mu.Lock()
	close(g.wake)
	g.wake = make(chan struct{})
	g.mu.Unlock()
}

// PublishStats is what the publish bound has done since the server started.
type PublishStats struct {
	Queued     int64  // deliveries waiting for the loops now
	Waits      uint64 // publishers that waited for room
	Rejections uint64 // publishers refused with ErrBusy
}

// PublishStats reports on the publish bound.
func (s *Server) PublishStats() PublishStats {
	if s.gate == nil {
		return PublishStats{} // not attached to its loops yet
	}
	return PublishStats{Queued: s.gate.pending(), Waits: s.gate.waits.Load(), Rejections: s.gate.rejections.Load()}
}
