package redisbroker

import (
	"context"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// Reaping removes a node's state from Redis, app by app, a few hundred
// users per script, publishing member_removed for those only it had and
// then its goodbye: a dead node's, by one of the others (reapDead), or
// this node's own when it stops (leave).

// Timings and bounds of the reaping.
const (
	reapEvery    = 2 * time.Second // how often a node looks for the dead
	reapBatch    = 200             // users one luaReap removes
	reapChannels = 16              // channels of an app a reap step takes
)

// leave removes this node's state from every app and its name from the
// cluster.
func (b *Broker) leave(ctx context.Context, c rueidis.Client) error {
	node := b.names.get()
	if _, err := b.reapApps(ctx, c, node, b.appList()); err != nil {
		return err
	}
	return firstErr(c.DoMulti(ctx,
		c.B().Zrem().Key(b.nodesKey()).Member(node).Build(),
		c.B().Del().Key(b.appsKey(node)).Build()))
}

// reapDead removes the nodes whose beat is older than the node timeout,
// app by app, each app under a lock (K:reap:N) so that one node does it;
// a node that has just come back to Redis waits a node timeout first, as
// the others may not have beaten since either. A dead node leaves P:nodes
// once no app holds anything of it.
func (b *Broker) reapDead(c rueidis.Client) {
	if time.Since(time.Unix(0, b.since.Load())) < b.cfg.NodeTimeout || !b.registered.Load() {
		return
	}
	dead := b.view.dead(time.Now().Add(-b.cfg.NodeTimeout).UnixMilli())
	me := b.names.get()
	for _, node := range dead {
		if node != me && !b.reapNode(c, me, node) {
			return
		}
	}
}

// reapNode removes dead node from the apps whose lock this node, me,
// takes, and from P:nodes once no app holds anything of it. It reports
// false when Redis does not answer.
func (b *Broker) reapNode(c rueidis.Client, me, node string) bool {
	ctx, cancel := context.WithTimeout(b.ctx, 4*callTimeout)
	defer cancel()
	ids, err := c.Do(ctx, c.B().Smembers().Key(b.appsKey(node)).Build()).AsStrSlice()
	if err != nil {
		return false
	}
	var mine []*app
	var cmds rueidis.Commands
	for _, id := range ids {
		if a := b.appByID(id); a != nil {
			mine = append(mine, a)
			cmds = append(cmds, c.B().Set().Key(a.reapLock(node)).Value(me).Nx().PxMilliseconds(b.cfg.NodeTimeout.Milliseconds()).Build())
		}
	}
	var locked []*app
	for i, r := range c.DoMulti(ctx, cmds...) {
		if ok, err := r.AsBool(); err == nil && ok {
			locked = append(locked, mine[i])
		}
	}
	if len(locked) > 0 {
		n, err := b.reapApps(ctx, c, node, locked)
		if err == nil {
			b.cfg.Log.Warn("redisbroker: a node stopped beating: removed it and the members only it had", "node", node, "timeout", b.cfg.NodeTimeout.String(), "apps", len(locked), "members", n)
		}
	}
	if left, err := c.Do(ctx, c.B().Scard().Key(b.appsKey(node)).Build()).AsInt64(); err == nil && left == 0 {
		_ = c.Do(ctx, c.B().Zrem().Key(b.nodesKey()).Member(node).Build()).Error()
	}
	return true
}

// reapApps removes node's state from apps a few hundred users per script
// (luaReap), publishing member_removed for those no other node has, then
// its goodbye on each app's bus; it returns how many members it removed.
// node is unregistered from each app first, so that it writes nothing
// more there should it be alive.
func (b *Broker) reapApps(ctx context.Context, c rueidis.Client, node string, apps []*app) (int64, error) {
	cmds := make(rueidis.Commands, 0, len(apps))
	for _, a := range apps {
		cmds = append(cmds, c.B().Srem().Key(a.reg()).Member(node).Build())
	}
	if err := firstErr(c.DoMulti(ctx, cmds...)); err != nil {
		return 0, err
	}
	var removed int64
	for active := apps; len(active) > 0; {
		jobs, done, still, err := b.reapRound(ctx, c, node, active)
		if err != nil {
			return removed, err
		}
		n, err := b.reapUsers(ctx, c, node, jobs)
		removed += n
		if err != nil {
			return removed, err
		}
		if err := b.goodbye(ctx, c, node, done); err != nil {
			return removed, err
		}
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		active = still
	}
	return removed, nil
}

// reapJob is one channel of a node a reap round takes users from.
type reapJob struct {
	a  *app
	ch string
}

// reapRound reads up to reapChannels of node's channels in each of apps
// (K:k:N): the apps where it has none left are done, the others still to
// reap.
func (b *Broker) reapRound(ctx context.Context, c rueidis.Client, node string, apps []*app) (jobs []reapJob, done, still []*app, err error) {
	cmds := make(rueidis.Commands, 0, len(apps))
	for _, a := range apps {
		cmds = append(cmds, c.B().Srandmember().Key(a.kk(node)).Count(reapChannels).Build())
	}
	for i, r := range c.DoMulti(ctx, cmds...) {
		a := apps[i]
		chans, err := r.AsStrSlice()
		if err != nil && !isRedisErr(err) {
			return nil, nil, nil, err
		}
		if len(chans) == 0 {
			done = append(done, a)
			continue
		}
		still = append(still, a)
		for _, ch := range chans {
			jobs = append(jobs, reapJob{a, ch})
		}
	}
	return jobs, done, still, nil
}

// reapUsers removes up to reapBatch of node's users from each job's
// channel, by luaReap; it returns how many members it removed.
func (b *Broker) reapUsers(ctx context.Context, c rueidis.Client, node string, jobs []reapJob) (int64, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	cmds := make(rueidis.Commands, 0, len(jobs))
	for _, j := range jobs {
		cmds = append(cmds, c.B().Srandmember().Key(j.a.nk(node, j.ch)).Count(reapBatch).Build())
	}
	res := c.DoMulti(ctx, cmds...)
	ops := make([]op, 0, len(jobs))
	for i, j := range jobs {
		users, err := res[i].AsStrSlice()
		if err != nil && !isRedisErr(err) {
			return 0, err
		}
		h := b.header(j.a)
		args := []string{b.pubCmd(), j.a.bus, j.ch, indexed(j.ch)}
		for _, u := range users {
			msg := j.a.sig.sign(appendMember(nil, h, &pusher.Membership{Channel: j.ch, User: u}))
			args = append(args, u, string(msg))
		}
		ops = append(ops, scriptOp(c, luaReap, nil, j.a.memberKeys(node, j.ch), args))
	}
	var removed int64
	var skip rueidis.Commands
	for i, r := range doScripts(ctx, c, ops) {
		n, err := r.AsInt64()
		if err != nil {
			if !isRedisErr(err) {
				return removed, err
			}
			// A key of the wrong type: what cannot be read cannot be
			// reaped. The channel is dropped from the node's keys, so
			// that the reap ends, and the resyncs repair the counts.
			b.cfg.Log.Warn("redisbroker: Redis refused a reap", "error", err)
			skip = append(skip, c.B().Srem().Key(jobs[i].a.kk(node)).Member(jobs[i].ch).Build(),
				c.B().Del().Key(jobs[i].a.nk(node, jobs[i].ch)).Build())
			continue
		}
		removed += n
	}
	if len(skip) > 0 {
		return removed, firstErr(c.DoMulti(ctx, skip...))
	}
	return removed, nil
}

// goodbye says on the bus of each of apps, where node has no state left,
// that it is gone, and drops its last keys there.
func (b *Broker) goodbye(ctx context.Context, c rueidis.Client, node string, apps []*app) error {
	if len(apps) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, 3*len(apps))
	for _, a := range apps {
		cmds = append(cmds, b.pub(c, a, a.sig.sign(appendGoodbye(nil, b.header(a), node))),
			c.B().Srem().Key(b.appsKey(node)).Member(a.id).Build(),
			c.B().Del().Key(a.kk(node)).Build())
	}
	return firstErr(c.DoMulti(ctx, cmds...))
}
