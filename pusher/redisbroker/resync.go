package redisbroker

import (
	"context"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// A resync tells Redis this node's state of some apps again and reloads
// the cluster's: at start, after Redis or a bus subscription was lost,
// after work was dropped, and when a script found something wrong. The
// maintenance chooses the apps (askResync, takeResyncs) and the worker
// runs it as a job (resync), between two batches.

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
// order, and waits for it; a resync that fails is asked for again.
func (b *Broker) runResync() {
	apps := b.takeResyncs()
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
	m := &b.maint
	if err != nil {
		if b.ctx.Err() == nil {
			b.cfg.Log.Debug("redisbroker: a resync failed; trying again", "error", err)
		}
		m.mu.Lock()
		for _, a := range apps {
			m.resync[a] = true
		}
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	m.stats.resyncs++
	m.stats.took = time.Since(start)
	m.mu.Unlock()
}

// takeResyncs takes the apps whose resync is due: all those asked for, at
// most once per resyncGap, but an app not loaded yet at once.
func (b *Broker) takeResyncs() []*app {
	m := &b.maint
	// cmu before maint.mu: the bus, holding cmu, takes maint.mu to note a
	// hello or ask for a resync.
	b.cmu.Lock()
	defer b.cmu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.resync) == 0 {
		return nil
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
	// Asked for before a reload, perhaps: resync the apps as they are now.
	return b.current(apps)
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
	if err := b.register(ctx, c); err != nil {
		return err
	}
	node := b.names.get()
	ids := make([]string, len(apps))
	for i, a := range apps {
		ids[i] = a.id
	}
	st := b.cluster.State(ids...)
	state := make(map[string]*pusher.AppState, len(st.Apps))
	for i := range st.Apps {
		state[st.Apps[i].App] = &st.Apps[i]
	}
	chans, err := b.resyncChannels(ctx, c, node, apps, state)
	if err != nil {
		return err
	}
	ops, err := b.resyncOps(ctx, c, node, chans)
	if err != nil {
		return err
	}
	if reaped, err := b.runResyncOps(ctx, c, ops); reaped || err != nil {
		return err
	}
	if err := b.announce(ctx, c, st); err != nil {
		return err
	}
	return b.snapshot(ctx, c, apps, state)
}

// register puts this node's name in P:nodes, P:apps:N and every app's
// K:nodes, unless it is there: from then on its scripts are taken.
func (b *Broker) register(ctx context.Context, c rueidis.Client) error {
	if b.registered.Load() {
		return nil
	}
	node := b.names.get()
	cmds := rueidis.Commands{c.B().Zadd().Key(b.nodesKey()).ScoreMember().ScoreMember(float64(time.Now().UnixMilli()), node).Build()}
	ids := make([]string, 0, len(b.appList()))
	for _, a := range b.appList() {
		ids = append(ids, a.id)
		cmds = append(cmds, c.B().Sadd().Key(a.reg()).Member(node).Build())
	}
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		cmds = append(cmds, c.B().Sadd().Key(b.appsKey(node)).Member(ids[:n]...).Build())
		ids = ids[n:]
	}
	if err := firstErr(c.DoMulti(ctx, cmds...)); err != nil {
		return err
	}
	b.registered.Store(true)
	return nil
}

// resyncChannel is one channel of a resync, and the members this node
// has there.
type resyncChannel struct {
	a    *app
	name string            // "" for the app's signed-in users
	want map[string][]byte // user → info; nil when the node has none
}

// resyncChannels lists the channels of apps to resync: each one this node
// has members in (state), and each one Redis holds some of its members in
// (K:k:N).
func (b *Broker) resyncChannels(ctx context.Context, c rueidis.Client, node string, apps []*app, state map[string]*pusher.AppState) ([]*resyncChannel, error) {
	cmds := make(rueidis.Commands, len(apps))
	for i, a := range apps {
		cmds[i] = c.B().Smembers().Key(a.kk(node)).Build()
	}
	res := c.DoMulti(ctx, cmds...)
	var chans []*resyncChannel
	for i, a := range apps {
		inRedis, err := res[i].AsStrSlice()
		if err != nil && !isRedisErr(err) {
			return nil, err
		}
		held := heldChannels(a, state[a.id])
		seen := make(map[string]bool, len(held))
		for _, ch := range held {
			seen[ch.name] = true
		}
		chans = append(chans, held...)
		for _, name := range inRedis {
			if !seen[name] {
				chans, seen[name] = append(chans, &resyncChannel{a, name, nil}), true
			}
		}
	}
	return chans, nil
}

// heldChannels are the channels of a this node has members in, as as
// tells (nil: none).
func heldChannels(a *app, as *pusher.AppState) []*resyncChannel {
	if as == nil {
		return nil
	}
	var out []*resyncChannel
	for name, members := range as.Presence {
		want := make(map[string][]byte, len(members))
		for _, m := range members {
			want[m.User] = m.Info
		}
		out = append(out, &resyncChannel{a, name, want})
	}
	for _, name := range as.Occupied {
		out = append(out, &resyncChannel{a, occupancyChannel(name), map[string][]byte{occupant: nil}})
	}
	if len(as.Users) > 0 {
		want := make(map[string][]byte, len(as.Users))
		for _, u := range as.Users {
			want[u] = nil
		}
		out = append(out, &resyncChannel{a, "", want})
	}
	return out
}

// resyncOps reads this node's set of each channel (K:n:N:C) and makes the
// luaResync scripts that send what differs, resyncBatch changes each, and
// at least one per channel (which repairs its keys).
func (b *Broker) resyncOps(ctx context.Context, c rueidis.Client, node string, chans []*resyncChannel) ([]op, error) {
	cmds := make(rueidis.Commands, len(chans))
	for i, ch := range chans {
		cmds[i] = c.B().Smembers().Key(ch.a.nk(node, ch.name)).Build()
	}
	res := c.DoMulti(ctx, cmds...)
	var ops []op
	for i, ch := range chans {
		have, err := res[i].AsStrSlice()
		if err != nil && !isRedisErr(err) {
			return nil, err
		}
		// A set Redis could not read (a key of the wrong type, which the
		// script deletes) is taken as empty: every member is sent again.
		changes := ch.changes(node, have, err != nil)
		for first := true; first || len(changes) > 0; first = false {
			n := min(len(changes), 4*resyncBatch)
			args := append([]string{b.pubCmd(), ch.a.bus, node, ch.name, indexed(ch.name)}, changes[:n]...)
			ops = append(ops, scriptOp(c, luaResync, ch.a, ch.a.memberKeys(node, ch.name), args))
			changes = changes[n:]
		}
	}
	return ops, nil
}

// changes are the luaResync arguments that make node's set of ch, have in
// Redis (unread: every member is sent again), what the node has: "-",
// user, "", member_removed for each user only Redis has; "+", user, info,
// member_added for each user only the node has.
func (ch *resyncChannel) changes(node string, have []string, unread bool) []string {
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
		if !inRedis[u] || unread {
			msg := ch.a.sig.sign(appendMember(nil, h, &pusher.Membership{Channel: ch.name, User: u, Info: info, Added: true}))
			changes = append(changes, "+", u, string(info), string(msg))
		}
	}
	return changes
}

// runResyncOps runs the resync's scripts and acts on their answers: a
// channel whose counts were broken is recounted; a node the scripts
// refuse, taken for dead, stops here and rejoins (reaped).
func (b *Broker) runResyncOps(ctx context.Context, c rueidis.Client, ops []op) (reaped bool, err error) {
	for i, r := range doScripts(ctx, c, ops) {
		v, err := r.AsInt64()
		switch {
		case err != nil && !isRedisErr(err):
			return false, err
		case err != nil:
			b.cfg.Log.Warn("redisbroker: Redis refused a resync", "error", err)
		case v == -1:
			b.reaped()
			return true, nil
		case v == 2:
			if err := b.recount(ctx, c, ops[i].app, ops[i].args[3]); err != nil {
				return false, err
			}
		}
	}
	return false, nil
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
		v, err := doScripts(ctx, c, []op{scriptOp(c, luaRecount, nil, keys, args)})[0].AsInt64()
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

// announce sends this node's full counts of the apps in st, and a hello on
// the bus of each not loaded yet: from the worker's job itself, in its
// order (a job never queues: the worker would wait for itself).
func (b *Broker) announce(ctx context.Context, c rueidis.Client, st *pusher.NodeState) error {
	var cmds rueidis.Commands
	for i := range st.Apps {
		as := &st.Apps[i]
		a := b.appByID(as.App)
		if a == nil {
			continue // removed by a reload since
		}
		cmds = append(cmds, b.countsCmds(c, a, &as.Counts)...)
		b.cmu.Lock()
		first := !b.loaded[a.id]
		b.cmu.Unlock()
		if first {
			cmds = append(cmds, b.pub(c, a, a.sig.sign(appendHello(nil, b.header(a)))))
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	return firstErr(c.DoMulti(ctx, cmds...))
}
