package redisbroker

import (
	"context"
	"time"

	"github.com/redis/rueidis"
)

// heartbeatEvery is how often a node beats, and reads the others' beats.
const heartbeatEvery = time.Second

// runHeartbeat connects, then beats every second: it writes this node's
// time into P:nodes and reads the whole set back (the node view the bus
// checks messages against, and the dead the maintenance reaps). It does
// nothing else, and nothing else waits on it, so that a node never stops
// beating while it runs and Redis answers. A beat that finds this node's
// entry gone means the others took it for dead (or Redis lost everything):
// the node rejoins under a new name.
func (b *Broker) runHeartbeat() {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for b.ctx.Err() == nil {
		c := b.redis()
		if c == nil {
			if c = b.connect(); c == nil {
				if !b.sleep(backoff) {
					return
				}
				backoff = min(2*backoff, maxBackoff)
				continue
			}
		}
		ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
		err := b.beat(ctx, c)
		cancel()
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			b.down(err)
			if !b.sleep(backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = 50 * time.Millisecond
		b.upAgain()
		select {
		case <-t.C:
		case <-b.ctx.Done():
			return
		}
	}
}

// beat writes this node's beat, if it has registered, and reads the set.
func (b *Broker) beat(ctx context.Context, c rueidis.Client) error {
	key := b.nodesKey()
	now := time.Now().UnixMilli()
	if b.registered.Load() && !b.closed.Load() {
		node := b.names.get()
		changed, err := c.Do(ctx, c.B().Zadd().Key(key).Xx().Ch().ScoreMember().ScoreMember(float64(now), node).Build()).AsInt64()
		if err != nil {
			return err
		}
		if changed == 0 && node == b.names.get() && b.registered.Load() {
			// Gone from the set: reaped while alive (cut off longer than
			// the node timeout), or Redis restarted empty.
			b.reaped()
		}
	}
	all, err := c.Do(ctx, c.B().Zrange().Key(key).Min("0").Max("-1").Withscores().Build()).AsZScores()
	if err != nil {
		return err
	}
	nodes := make(map[string]int64, len(all))
	for _, z := range all {
		nodes[z.Member] = int64(z.Score)
	}
	if gone := b.view.update(nodes, now, time.Now().UnixMilli()); len(gone) > 0 {
		b.cmu.Lock()
		for _, n := range gone {
			if !b.names.own(n) {
				b.forget(n)
			}
		}
		b.cmu.Unlock()
	}
	return nil
}
