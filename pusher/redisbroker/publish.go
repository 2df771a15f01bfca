package redisbroker

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// What a node puts on its apps' buses: broadcasts and client events
// (Publish), with the cache channels' last events kept beside them, and
// terminate requests. A broadcast from the HTTP API comes back to its own
// node through the bus, like any other node's — unless Redis was too slow
// to answer and the node delivered it itself: then the bus's copy is
// skipped (await, settle, skippedOwn).

// publishWait is the longest Publish waits for room in the queue before
// it gives up (the HTTP API then answers 503), and for Redis's answer.
const publishWait = time.Second

// maxSkipped bounds the broadcasts skip remembers.
const maxSkipped = 4096

// Publish sends bc on the app's bus and, for a broadcast from the HTTP API
// (ctx not done), waits until Redis has taken it — the order of those
// answers is the order every node delivers in. While Redis is away it
// returns pusher.ErrBrokerDown at once: the caller delivers bc here, and
// the other nodes miss it.
func (b *Broker) Publish(ctx context.Context, bc *pusher.Broadcast) error {
	a := b.appByID(bc.App)
	c := b.live()
	if a == nil || c == nil {
		b.lost.Add(1)
		return pusher.ErrBrokerDown
	}
	seq := b.seq.Add(1)
	h := b.header(a)
	o := op{cmd: b.pub(c, a, a.sig.sign(appendBroadcast(nil, h, bc, seq)))}
	wait := ctx.Err() == nil
	if wait {
		o.done = make(chan error, 1)
		b.await(seq)
	}
	if !b.queue(o, wait) {
		b.settle(seq, false)
		return pusher.ErrBrokerFull
	}
	if bc.CacheUntilMs > 0 {
		b.keepCached(c, a, h, bc)
	}
	if !wait {
		return nil
	}
	t := time.NewTimer(publishWait)
	defer t.Stop()
	select {
	case err := <-o.done:
		if err == nil {
			b.settle(seq, false)
			return nil
		}
	case <-t.C:
	case <-ctx.Done():
	}
	// Redis stuck rather than gone, or the connection or the caller gone:
	// the broadcast may still go out, late. Unless the bus has handed it
	// back already, this node's subscribers get it now, from the caller
	// (ErrBrokerDown), and not again from the bus.
	if b.settle(seq, true) {
		return nil
	}
	return pusher.ErrBrokerDown
}

// keepCached stores bc as the last event of its cache channels, expiring
// with it, indexed by when it expires (K:cachex, whose expired entries
// every store drops).
func (b *Broker) keepCached(c rueidis.Client, a *app, h header, bc *pusher.Broadcast) {
	now := time.Now().UnixMilli()
	ttl := bc.CacheUntilMs - now
	if ttl <= 0 {
		return
	}
	for _, ch := range bc.Channels {
		if _, cache := pusher.ChannelKind(ch); !cache {
			continue
		}
		one := *bc
		one.Channels = []string{ch}
		msg := a.sig.sign(appendBroadcast(nil, h, &one, 0))
		b.queue(op{cmd: c.B().Set().Key(a.cache(ch)).Value(rueidis.BinaryString(msg)).PxMilliseconds(ttl).Build()}, false)
		b.queue(op{cmd: c.B().Zadd().Key(a.cachex()).ScoreMember().ScoreMember(float64(bc.CacheUntilMs), ch).Build()}, false)
		b.queue(op{cmd: c.B().Zremrangebyscore().Key(a.cachex()).Min("-inf").Max(itoa(now)).Build()}, false)
	}
}

// Terminate asks the other nodes to close user's connections.
func (b *Broker) Terminate(ctx context.Context, appID, user string) error {
	a := b.appByID(appID)
	c := b.live()
	if a == nil || c == nil {
		return errors.New("redisbroker: Redis is unreachable")
	}
	if !b.queue(op{cmd: b.pub(c, a, a.sig.sign(appendTerminate(nil, b.header(a), user)))}, ctx.Err() == nil) {
		return pusher.ErrBrokerFull
	}
	return nil
}

// await records that Publish waits for Redis's answer to broadcast seq.
func (b *Broker) await(seq uint64) {
	b.skipMu.Lock()
	if b.pending == nil {
		b.pending = make(map[uint64]bool)
	}
	b.pending[seq] = false
	b.skipMu.Unlock()
}

// settle ends the wait for broadcast seq and reports whether the bus has
// handed it back meanwhile. If it has not and skip is set, the bus's copy,
// should it still come, is skipped: the caller delivers it here. The marks
// are bounded: those of broadcasts that never reached Redis are dropped
// when it goes down, and all of them past maxSkipped.
func (b *Broker) settle(seq uint64, skip bool) (seen bool) {
	b.skipMu.Lock()
	defer b.skipMu.Unlock()
	seen = b.pending[seq]
	delete(b.pending, seq)
	if seen || !skip {
		return seen
	}
	if b.skipped == nil || len(b.skipped) >= maxSkipped {
		b.skipped = make(map[uint64]struct{})
	}
	b.skipped[seq] = struct{}{}
	return false
}

// skippedOwn reports, once, whether this node's broadcast seq, handed
// back by the bus, was delivered here already (settle); it notes for a
// Publish still waiting that its broadcast has come back.
func (b *Broker) skippedOwn(seq uint64) bool {
	b.skipMu.Lock()
	defer b.skipMu.Unlock()
	if _, ok := b.pending[seq]; ok {
		b.pending[seq] = true
	}
	if _, ok := b.skipped[seq]; ok {
		delete(b.skipped, seq)
		return true
	}
	return false
}

// header is the start of a message from this node, now, about a.
func (b *Broker) header(a *app) header {
	return header{origin: b.names.get(), time: time.Now().UnixMilli(), app: a.id}
}

// pubCmd is the command publishing on a bus: sharded on a Redis Cluster,
// so that each app's messages go through its own shard only.
func (b *Broker) pubCmd() string {
	if b.sharded.Load() {
		return "SPUBLISH"
	}
	return "PUBLISH"
}

// pub builds the command publishing msg on a's bus.
func (b *Broker) pub(c rueidis.Client, a *app, msg []byte) rueidis.Completed {
	if b.sharded.Load() {
		return c.B().Spublish().Channel(a.bus).Message(rueidis.BinaryString(msg)).Build()
	}
	return c.B().Publish().Channel(a.bus).Message(rueidis.BinaryString(msg)).Build()
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
