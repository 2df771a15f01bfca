package redisbroker

import (
	"time"

	"github.com/redis/rueidis"
)

// A node holds two clients: the commands' and the bus's, whose
// connections carry subscriptions only. The heartbeat connects them and
// finds out, with every beat, whether Redis answers (upAgain) or not
// (down); nothing else waits on it.

// connect makes the two clients, commands' and bus's, and starts reading
// the bus; nil if Redis cannot be reached yet.
func (b *Broker) connect() rueidis.Client {
	c, err := rueidis.NewClient(b.opt)
	if err != nil {
		b.down(err)
		return nil
	}
	bus, err := rueidis.NewClient(b.busOpt)
	if err != nil {
		c.Close()
		b.down(err)
		return nil
	}
	b.sharded.Store(c.Mode() == rueidis.ClientModeCluster)
	// Under appsMu, so that an app SetApps adds is subscribed to once:
	// here, or there.
	b.appsMu.Lock()
	defer b.appsMu.Unlock()
	b.bus.Store(&bus)
	b.client.Store(&c)
	for _, g := range b.groups(bus, b.appList()) {
		b.wg.Add(1)
		go b.runGroup(g)
	}
	return c
}

// sleep waits d, or until Close: false then.
func (b *Broker) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.ctx.Done():
		return false
	}
}

// down records that Redis is away, logging it once.
func (b *Broker) down(err error) {
	b.up.Store(false)
	b.skipMu.Lock()
	b.skipped = nil // what was waiting on the lost connection is lost with it
	b.skipMu.Unlock()
	if !b.logged.Swap(true) {
		b.cfg.Log.Warn("redisbroker: Redis is unreachable: serving this node's clients alone until it is back", "error", err)
	}
}

// upAgain records that Redis answers, logging it once; after an outage it
// asks for a resync of every app, whose state Redis may have lost.
func (b *Broker) upAgain() {
	if b.up.Swap(true) {
		return
	}
	b.since.Store(time.Now().UnixNano())
	if b.logged.Swap(false) {
		b.cfg.Log.Info("redisbroker: Redis is back: telling it this node's state again")
		b.askResync(b.appList()...)
	}
}

// redis returns the commands' client, nil before the first connection.
func (b *Broker) redis() rueidis.Client {
	if c := b.client.Load(); c != nil {
		return *c
	}
	return nil
}

// live returns the commands' client when Redis answers and this node is
// in the cluster, else nil: what is meant for the other nodes goes out
// only then, as they would refuse a node they do not know.
func (b *Broker) live() rueidis.Client {
	if c := b.redis(); c != nil && b.up.Load() && b.registered.Load() {
		return c
	}
	return nil
}

// busClient returns the bus's client, nil before the first connection.
func (b *Broker) busClient() rueidis.Client {
	if c := b.bus.Load(); c != nil {
		return *c
	}
	return nil
}
