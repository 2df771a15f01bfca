package redisbroker

import (
	"context"
	"sync"
	"time"
)

// The maintenance goroutine does what is neither the worker's queue nor
// the heartbeat: it runs the resyncs asked for (coalesced, and at most one
// a second but for an app's first), answers other nodes' hellos (at a
// bounded rate), gives the node a new name when the others took it for
// dead, reaps the nodes that stopped beating, and reads the primaries for
// the metrics.

// maintenanceEvery is how often the maintenance looks for work when
// nothing kicks it.
const maintenanceEvery = 100 * time.Millisecond

// maintenance is what the goroutine is asked to do.
type maintenance struct {
	mu       sync.Mutex
	resync   map[*app]bool // apps to resync
	last     time.Time     // when the last resync ran
	hellos   map[string]bool
	answered map[string]time.Time // app → when its hellos were last answered
	kick     chan struct{}
	rename   chan struct{}
	stats    struct {
		resyncs uint64
		took    time.Duration
	}
}

func (m *maintenance) init() {
	m.resync, m.hellos, m.answered = map[*app]bool{}, map[string]bool{}, map[string]time.Time{}
	m.kick, m.rename = make(chan struct{}, 1), make(chan struct{}, 1)
}

// runMaintenance is the maintenance goroutine: every maintenanceEvery, or
// when kicked, it rejoins under a new name if the node was reaped, expires
// the snapshots that never completed and, while Redis answers, reads the
// primaries (every heartbeatEvery), runs the resync due, answers the
// hellos owed and reaps the dead (every reapEvery).
func (b *Broker) runMaintenance() {
	defer b.wg.Done()
	t := time.NewTicker(maintenanceEvery)
	defer t.Stop()
	lastReap, lastPoll := time.Now(), time.Time{}
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-t.C:
		case <-b.maint.kick:
		case <-b.maint.rename:
			b.rename()
		}
		b.expireSnapshots(time.Now().Add(-snapshotTimeout))
		c := b.redis()
		if c == nil || !b.up.Load() || b.closed.Load() {
			continue
		}
		if time.Since(lastPoll) >= heartbeatEvery {
			lastPoll = time.Now()
			ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
			b.topo.poll(ctx, c, b)
			cancel()
		}
		b.runResync()
		b.answerHellos(c)
		if time.Since(lastReap) >= reapEvery {
			lastReap = time.Now()
			b.reapDead(c)
		}
	}
}
