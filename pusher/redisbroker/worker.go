package redisbroker

import (
	"context"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// op is one piece of work for Redis, done in order by the worker: a
// command, or a job (fn) the worker runs between two batches, such as a
// resync, which so sees every change queued before it done and none
// queued after.
type op struct {
	cmd  rueidis.Completed
	fn   func(c rueidis.Client) error
	done chan error // if not nil, gets the outcome, for a caller that waits

	// A script's: to send it again with EVAL when Redis does not have it
	// (NOSCRIPT), and to act on its answer.
	script     *script
	keys, args []string
	app        *app
	node       string // a member script's: the name it wrote under
}

// queue hands o to the worker: at once, or, if wait, for up to publishWait
// while the queue is full; it reports whether o was taken.
func (b *Broker) queue(o op, wait bool) bool {
	if b.closed.Load() {
		return false
	}
	select {
	case b.ops <- o:
		return true
	default:
	}
	if !wait {
		b.lost.Add(1)
		return false
	}
	t := time.NewTimer(publishWait)
	defer t.Stop()
	select {
	case b.ops <- o:
		return true
	case <-t.C:
	case <-b.ctx.Done():
	}
	b.lost.Add(1)
	return false
}

// runWorker does the queued work in order, in batches: one round trip for
// all the commands waiting, and each job between them in its turn.
func (b *Broker) runWorker() {
	defer b.wg.Done()
	batch := make([]op, 0, 512)
	for {
		batch = batch[:0]
		select {
		case o := <-b.ops:
			batch = append(batch, o)
		case <-b.ctx.Done():
			return
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case o := <-b.ops:
				batch = append(batch, o)
			default:
				break more
			}
		}
		c := b.redis()
		for i := 0; i < len(batch); {
			if batch[i].fn != nil {
				var err error = pusher.ErrBrokerDown
				if c != nil {
					err = batch[i].fn(c)
				}
				if batch[i].done != nil {
					batch[i].done <- err
				}
				i++
				continue
			}
			j := i
			for j < len(batch) && batch[j].fn == nil {
				j++
			}
			b.exec(c, batch[i:j])
			i = j
		}
	}
}

// exec sends a run of commands in one round trip and acts on the answers.
func (b *Broker) exec(c rueidis.Client, ops []op) {
	if c == nil {
		b.lost.Add(uint64(len(ops)))
		for _, o := range ops {
			if o.done != nil {
				o.done <- pusher.ErrBrokerDown
			}
		}
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, callTimeout)
	defer cancel()
	res := doScripts(ctx, c, ops)
	for i, r := range res {
		o := &ops[i]
		err := r.Error()
		switch {
		case err == nil || rueidis.IsRedisNil(err):
			err = nil
			if o.script == luaJoin || o.script == luaLeave {
				if v, _ := r.AsInt64(); v == -1 && o.node == b.names.get() {
					b.reaped() // the others took this node for dead
				}
			}
		case isRedisErr(err):
			b.cfg.Log.Warn("redisbroker: Redis refused a command", "error", err)
			if o.app != nil {
				b.askResync(o.app) // a script found something wrong: the resync repairs it
			}
		default:
			b.lost.Add(1)
			b.down(err)
			if o.app != nil {
				b.askResync(o.app)
			}
		}
		if o.done != nil {
			o.done <- err
		}
	}
}

func isRedisErr(err error) bool {
	_, ok := rueidis.IsRedisErr(err)
	return ok
}

// firstErr is the first error among results that is not a nil reply.
func firstErr(res []rueidis.RedisResult) error {
	for _, r := range res {
		if err := r.Error(); err != nil && !rueidis.IsRedisNil(err) {
			return err
		}
	}
	return nil
}
