package redisbroker

import (
	"context"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// Bounds of the resyncs.
const (
	resyncGap   = time.Second // between two resyncs of the same app, but for its first
	resyncBatch = 128         // changes one luaResync makes
)

// askResync asks for a resync of apps: their state told Redis again and
// their members reloaded from it. It never waits.
func (b *Broker) askResync(apps ...*app) {
	b.maint.mu.Lock()
	for _, a := range apps {
		b.maint.resync[a] = true
	}
	b.maint.mu.Unlock()
	select {
	case b.maint.kick <- struct{}{}:
	default:
	}
}

// runResync runs the resync asked for, if any is due, in the worker's
// order, and waits for it.
func (b *Broker) runResync() {
	m := &b.maint
	// cmu before maint.mu: the bus, holding cmu, takes maint.mu to note a
	// hello or ask for a resync.
	b.cmu.Lock()
	m.mu.Lock()
	if len(m.resync) == 0 {
		m.mu.Unlock()
		b.cmu.Unlock()
		return
	}
	due := time.Since(m.last) >= resyncGap || !b.registered.Load()
	var apps []*app
	for a := range m.resync {
		if due || !b.loaded[a.id] {
			apps = append(apps, a)
			delete(m.resync, a)
		}
	}
	if len(apps) > 0 {
		m.last = time.Now()
	}
	m.mu.Unlock()
	b.cmu.Unlock()
	if len(apps) == 0 {
		return
	}
	start := time.Now()
	done := make(chan error, 1)
	o := op{fn: func(c rueidis.Client) error { return b.resync(c, apps) }, done: done}
	var err error
	if b.queue(o, true) {
		select {
		case err = <-done:
		case <-b.ctx.Done():
			return
		}
	} else {
		err = pusher.ErrBrokerFull
	}
	if err != nil {
		if b.ctx.Err() == nil {
			b.cfg.Log.Debug("redisbroker: a resync failed; trying again", "error", err)
		}
		b.maint.mu.Lock()
		for _, a := range apps {
			m.resync[a] = true
		}
		b.maint.mu.Unlock()
		return
	}
	m.mu.Lock()
	m.stats.resyncs++
	m.stats.took = time.Since(start)
	m.mu.Unlock()
}

// register puts this node's name in P:nodes, P:apps:N and every app's
// K:nodes: from then on its scripts are taken.
func (b *Broker) register(ctx context.Context, c rueidis.Client) error {
	node := b.names.get()
	cmds := rueidis.Commands{c.B().Zadd().Key(b.nodesKey()).ScoreMember().ScoreMember(float64(time.Now().UnixMilli()), node).Build()}
	ids := make([]string, 0, len(b.apps))
	for _, a := range b.apps {
		ids = append(ids, a.id)
		cmds = append(cmds, c.B().Sadd().Key(a.reg()).Member(node).Build())
	}
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		cmds = append(cmds, c.B().Sadd().Key(b.appsKey(node)).Member(ids[:n]...).Build())
		ids = ids[n:]
	}
	return firstErr(c.DoMulti(ctx, cmds...))
}

// resync tells Redis this node's state of apps again and reloads the
// cluster's. It runs as a job of the worker: every join and leave queued
// before it is in Redis, and none after it is, while it takes the node's
// state, so that the two agree. It costs in proportion to the node's own
// state and the apps' members, whatever else Redis holds:
//
//  1. the node's sets of each app (K:k:N, then each K:n:N:C) are read and
//     compared with its state, and luaResync sends the differences;
//  2. its full counts go out, and at an app's first load a hello;
//  3. each channel the app has members in (K:chans, and those this node
//     lists) is read by luaSnapshot, whose marker on the bus says where
//     the read took place; the bus reloads the channel there.
func (b *Broker) resync(c rueidis.Client, apps []*app) error {
	ctx, cancel := context.WithTimeout(b.ctx, 4*callTimeout)
	defer cancel()
	if !b.registered.Load() {
		if err := b.register(ctx, c); err != nil {
			return err
		}
		b.registered.Store(true)
	}
	node := b.names.get()
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.id
	}
	st := b.cluster.State(ids...)
	state := map[string]*pusher.AppState{}
	for i := range st.Apps {
		state[st.Apps[i].App] = &st.Apps[i]
	}
	// 1. What Redis holds of this node, against what it holds.
	cmds := make(rueidis.Commands, len(apps))
	for i, a := range apps {
		cmds[i] = c.B().Smembers().Key(a.kk(node)).Build()
	}
	res := c.DoMulti(ctx, cmds...)
	type channel struct {
		a    *app
		name string
		want map[string][]byte // user → info
	}
	var chans []*channel
	for i, a := range apps {
		inRedis, err := res[i].AsStrSlice()
		if err != nil && !isRedisErr(err) {
			return err
		}
		as := state[a.id]
		seen := map[string]bool{}
		if as != nil {
			for name, members := range as.Presence {
				want := make(map[string][]byte, len(members))
				for _, m := range members {
					want[m.User] = m.Info
				}
				chans, seen[name] = append(chans, &channel{a, name, want}), true
			}
			if len(as.Users) > 0 {
				want := make(map[string][]byte, len(as.Users))
				for _, u := range as.Users {
					want[u] = nil
				}
				chans, seen[""] = append(chans, &channel{a, "", want}), true
			}
		}
		for _, name := range inRedis {
			if !seen[name] {
				chans, seen[name] = append(chans, &channel{a, name, nil}), true
			}
		}
	}
	cmds = cmds[:0]
	for _, ch := range chans {
		cmds = append(cmds, c.B().Smembers().Key(ch.a.nk(node, ch.name)).Build())
	}
	res = c.DoMulti(ctx, cmds...)
	var ops []op
	for i, ch := range chans {
		have, err := res[i].AsStrSlice()
		if err != nil && !isRedisErr(err) {
			return err
		}
		var changes []string
		h := header{origin: node, time: time.Now().UnixMilli(), app: ch.a.id}
		inRedis := make(map[string]bool, len(have))
		for _, u := range have {
			inRedis[u] = true
			if _, ok := ch.want[u]; !ok {
				msg := ch.a.sig.sign(appendMember(nil, h, &pusher.Membership{Channel: ch.name, User: u}))
				changes = append(changes, "-", u, "", string(msg))
			}
		}
		for u, info := range ch.want {
			if !inRedis[u] || err != nil {
				msg := ch.a.sig.sign(appendMember(nil, h, &pusher.Membership{Channel: ch.name, User: u, Info: info, Added: true}))
				changes = append(changes, "+", u, string(info), string(msg))
			}
		}
		for first := true; first || len(changes) > 0; first = false {
			n := min(len(changes), 4*resyncBatch)
			o := op{script: luaResync, app: ch.a, keys: ch.a.memberKeys(node, ch.name),
				args: append([]string{b.pubCmd(), ch.a.bus, node, ch.name, indexed(ch.name)}, changes[:n]...)}
			o.cmd = evalsha(c, o.script, o.keys, o.args)
			ops = append(ops, o)
			changes = changes[n:]
		}
	}
	res = doScripts(ctx, c, ops)
	for i, r := range res {
		v, err := r.AsInt64()
		switch {
		case err != nil && !isRedisErr(err):
			return err
		case err != nil:
			b.cfg.Log.Warn("redisbroker: Redis refused a resync", "error", err)
		case v == -1:
			b.reaped()
			return nil
		case v == 2:
			if err := b.recount(ctx, c, ops[i].app, ops[i].args[3]); err != nil {
				return err
			}
		}
	}
	// 2. Counts, and hellos: sent from here, in the worker's order (a job
	// never queues: the worker would wait for itself).
	cmds = cmds[:0]
	for i := range st.Apps {
		as := &st.Apps[i]
		a := b.byID[as.App]
		cmds = append(cmds, b.countsCmds(c, a, &as.Counts)...)
		b.cmu.Lock()
		first := !b.loaded[a.id]
		b.cmu.Unlock()
		if first {
			cmds = append(cmds, b.pub(c, a, a.sig.sign(appendHello(nil, b.header(a)))))
		}
	}
	if len(cmds) > 0 {
		if err := firstErr(c.DoMulti(ctx, cmds...)); err != nil {
			return err
		}
	}
	// 3. Snapshots.
	return b.snapshot(ctx, c, apps, state)
}

// recount rebuilds one channel's counts from every registered node's set
// (luaRecount), after a resync found them broken.
func (b *Broker) recount(ctx context.Context, c rueidis.Client, a *app, ch string) error {
	for range 3 {
		nodes, err := c.Do(ctx, c.B().Smembers().Key(a.reg()).Build()).AsStrSlice()
		if err != nil {
			return err
		}
		keys := []string{a.reg(), a.ck(ch), a.mk(ch), a.chans()}
		msg := a.sig.sign(appendReset(nil, b.header(a)))
		args := []string{b.pubCmd(), a.bus, ch, indexed(ch), string(msg)}
		for _, n := range nodes {
			keys = append(keys, a.nk(n, ch))
			args = append(args, n)
		}
		o := op{script: luaRecount, keys: keys, args: args}
		o.cmd = evalsha(c, o.script, keys, args)
		v, err := doScripts(ctx, c, []op{o})[0].AsInt64()
		if err != nil {
			return err
		}
		if v != -2 {
			b.cfg.Log.Warn("redisbroker: repaired a presence channel's counts in Redis", "app", a.id, "channel", ch)
			return nil
		}
	}
	return nil
}
