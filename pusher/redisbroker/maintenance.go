package redisbroker

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// The maintenance goroutine does what is neither the worker's queue nor
// the heartbeat: it runs the resyncs asked for (coalesced, and at most one
// a second but for an app's first), answers other nodes' hellos (at a
// bounded rate), gives the node a new name when the others took it for
// dead, reaps the nodes that stopped beating, and reads the primaries for
// the metrics.

// Timings of the maintenance.
const (
	maintenanceEvery = 100 * time.Millisecond
	resyncGap        = time.Second // between two resyncs of the same app, but for its first
	helloGap         = time.Second // between two answers to hellos of the same app
	helloBatch       = 256         // apps whose hellos are answered per maintenance turn
	snapshotTimeout  = 30 * time.Second
	reapBatch        = 200 // users one luaReap removes
	reapChannels     = 16  // channels of an app a reap step takes
	resyncBatch      = 128 // changes one luaResync makes
)

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

// owe notes that a node said hello on app's bus.
func (m *maintenance) owe(app string) {
	m.mu.Lock()
	m.hellos[app] = true
	m.mu.Unlock()
}

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

// reaped asks for this node to rejoin under a new name. It never waits.
func (b *Broker) reaped() {
	select {
	case b.maint.rename <- struct{}{}:
	default:
	}
}

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

// rename gives the node a new name and rejoins under it: every app is
// resynced as at start. The old name's state is the reaper's.
func (b *Broker) rename() {
	if b.closed.Load() || !b.registered.Swap(false) {
		return // not joined yet, or rejoining already
	}
	old, cur, err := b.names.rename()
	if err != nil {
		b.registered.Store(true)
		return
	}
	b.cfg.Log.Warn("redisbroker: the other nodes took this node for dead (cut off from Redis longer than the node timeout, or Redis lost its state): rejoining under a new name", "old", old, "node", cur)
	b.cmu.Lock()
	clear(b.loaded)
	b.cmu.Unlock()
	b.askResync(b.apps...)
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
	cmds := rueidis.Commands{c.B().Zadd().Key(b.p+":nodes").ScoreMember().ScoreMember(float64(time.Now().UnixMilli()), node).Build()}
	ids := make([]string, 0, len(b.apps))
	for _, a := range b.apps {
		ids = append(ids, a.id)
		cmds = append(cmds, c.B().Sadd().Key(a.reg()).Member(node).Build())
	}
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		cmds = append(cmds, c.B().Sadd().Key(b.p+":apps:"+node).Member(ids[:n]...).Build())
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

// snapshot reads, for each app, every channel with members (and the
// users, last), each by luaSnapshot with a marker; at an app's first load
// the users' snapshot brings the cache channels' last events too.
func (b *Broker) snapshot(ctx context.Context, c rueidis.Client, apps []*app, state map[string]*pusher.AppState) error {
	cmds := make(rueidis.Commands, 0, 2*len(apps))
	b.cmu.Lock()
	first := make([]bool, len(apps))
	for i, a := range apps {
		first[i] = !b.loaded[a.id]
	}
	b.cmu.Unlock()
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for i, a := range apps {
		cmds = append(cmds, c.B().Smembers().Key(a.chans()).Build())
		if first[i] {
			cmds = append(cmds, c.B().Zrangebyscore().Key(a.cachex()).Min(now).Max("+inf").Build())
		}
	}
	res := c.DoMulti(ctx, cmds...)
	var ops []op
	var tokens []uint64
	k := 0
	for i, a := range apps {
		chans, err := res[k].AsStrSlice()
		k++
		if err != nil && !isRedisErr(err) {
			return err
		}
		var cached []string
		if first[i] {
			cached, err = res[k].AsStrSlice()
			k++
			if err != nil && !isRedisErr(err) {
				return err
			}
		}
		names := map[string]bool{}
		for _, ch := range chans {
			names[ch] = true
		}
		if as := state[a.id]; as != nil {
			for _, ch := range as.Rosters {
				names[ch] = true
			}
		}
		delete(names, "")
		list := make([]string, 0, len(names)+1)
		for ch := range names {
			list = append(list, ch)
		}
		list = append(list, "") // the users last: their snapshot completes the app's
		for _, ch := range list {
			token := b.tokens.Add(1)
			s := &snapshot{app: a, channel: ch, first: first[i] && ch == "", made: time.Now()}
			b.cmu.Lock()
			b.snaps[token] = s
			b.cmu.Unlock()
			keys := []string{a.mk(ch)}
			if s.first {
				for _, cc := range cached {
					keys = append(keys, a.cache(cc))
				}
			}
			o := op{script: luaSnapshot, keys: keys, app: a,
				args: []string{b.pubCmd(), a.bus, string(a.sig.sign(appendMarker(nil, b.header(a), token)))}}
			o.cmd = evalsha(c, o.script, o.keys, o.args)
			ops, tokens = append(ops, o), append(tokens, token)
		}
	}
	for i, r := range doScripts(ctx, c, ops) {
		parts, err := r.ToArray()
		if err != nil || len(parts) != 2 {
			b.cmu.Lock()
			delete(b.snaps, tokens[i])
			b.cmu.Unlock()
			if err != nil && !isRedisErr(err) {
				return err
			}
			b.askResync(ops[i].app)
			continue
		}
		flat, _ := parts[0].AsStrSlice()
		members := make([]pusher.Member, 0, len(flat)/2)
		for j := 0; j+1 < len(flat); j += 2 {
			m := pusher.Member{User: flat[j]}
			if flat[j+1] != "" {
				m.Info = []byte(flat[j+1])
			}
			members = append(members, m)
		}
		var cached []string
		if vals, err := parts[1].ToArray(); err == nil {
			for _, v := range vals {
				if s, err := v.ToString(); err == nil {
					cached = append(cached, s)
				}
			}
		}
		b.arrived(tokens[i], members, cached)
	}
	return nil
}

// answerHellos sends the full counts of the apps whose bus carried a
// hello, each at most once per helloGap and helloBatch apps per turn:
// however many hellos come, a node answers at a bounded rate.
func (b *Broker) answerHellos(c rueidis.Client) {
	m := &b.maint
	m.mu.Lock()
	var ids []string
	now := time.Now()
	for id := range m.hellos {
		if len(ids) == helloBatch {
			break
		}
		if now.Sub(m.answered[id]) >= helloGap {
			ids = append(ids, id)
			delete(m.hellos, id)
			m.answered[id] = now
		}
	}
	if len(m.answered) > 2*len(b.apps) {
		for id, t := range m.answered {
			if now.Sub(t) >= helloGap {
				delete(m.answered, id)
			}
		}
	}
	m.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	st := b.cluster.State(ids...)
	for i := range st.Apps {
		for _, cmd := range b.countsCmds(c, b.byID[st.Apps[i].App], &st.Apps[i].Counts) {
			b.queue(op{cmd: cmd}, true)
		}
	}
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
		if node == me {
			continue
		}
		ctx, cancel := context.WithTimeout(b.ctx, 4*callTimeout)
		ids, err := c.Do(ctx, c.B().Smembers().Key(b.p+":apps:"+node).Build()).AsStrSlice()
		if err != nil {
			cancel()
			return
		}
		var mine []*app
		var cmds rueidis.Commands
		for _, id := range ids {
			if a := b.byID[id]; a != nil {
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
		if left, err := c.Do(ctx, c.B().Scard().Key(b.p+":apps:"+node).Build()).AsInt64(); err == nil && left == 0 {
			_ = c.Do(ctx, c.B().Zrem().Key(b.p+":nodes").Member(node).Build()).Error()
		}
		cancel()
	}
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
	active := apps
	for len(active) > 0 {
		cmds = cmds[:0]
		for _, a := range active {
			cmds = append(cmds, c.B().Srandmember().Key(a.kk(node)).Count(reapChannels).Build())
		}
		res := c.DoMulti(ctx, cmds...)
		type job struct {
			a  *app
			ch string
		}
		var jobs []job
		var done, still []*app
		for i, a := range active {
			chans, err := res[i].AsStrSlice()
			if err != nil && !isRedisErr(err) {
				return removed, err
			}
			if len(chans) == 0 {
				done = append(done, a)
				continue
			}
			still = append(still, a)
			for _, ch := range chans {
				jobs = append(jobs, job{a, ch})
			}
		}
		if len(jobs) > 0 {
			cmds = cmds[:0]
			for _, j := range jobs {
				cmds = append(cmds, c.B().Srandmember().Key(j.a.nk(node, j.ch)).Count(reapBatch).Build())
			}
			res = c.DoMulti(ctx, cmds...)
			var ops []op
			for i, j := range jobs {
				users, err := res[i].AsStrSlice()
				if err != nil && !isRedisErr(err) {
					return removed, err
				}
				h := b.header(j.a)
				o := op{script: luaReap, keys: j.a.memberKeys(node, j.ch), args: []string{b.pubCmd(), j.a.bus, j.ch, indexed(j.ch)}}
				for _, u := range users {
					msg := j.a.sig.sign(appendMember(nil, h, &pusher.Membership{Channel: j.ch, User: u}))
					o.args = append(o.args, u, string(msg))
				}
				o.cmd = evalsha(c, o.script, o.keys, o.args)
				ops = append(ops, o)
			}
			var skip rueidis.Commands
			for i, r := range doScripts(ctx, c, ops) {
				n, err := r.AsInt64()
				if err != nil {
					if !isRedisErr(err) {
						return removed, err
					}
					// A key of the wrong type: what cannot be read
					// cannot be reaped. The channel is dropped from the
					// node's keys, so that the reap ends, and the resyncs
					// repair the counts.
					b.cfg.Log.Warn("redisbroker: Redis refused a reap", "error", err)
					skip = append(skip, c.B().Srem().Key(jobs[i].a.kk(node)).Member(jobs[i].ch).Build(),
						c.B().Del().Key(jobs[i].a.nk(node, jobs[i].ch)).Build())
					continue
				}
				removed += n
			}
			if len(skip) > 0 {
				if err := firstErr(c.DoMulti(ctx, skip...)); err != nil {
					return removed, err
				}
			}
		}
		if len(done) > 0 {
			cmds = cmds[:0]
			for _, a := range done {
				cmds = append(cmds, b.pub(c, a, a.sig.sign(appendGoodbye(nil, b.header(a), node))),
					c.B().Srem().Key(b.p+":apps:"+node).Member(a.id).Build(),
					c.B().Del().Key(a.kk(node)).Build())
			}
			if err := firstErr(c.DoMulti(ctx, cmds...)); err != nil {
				return removed, err
			}
		}
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		active = still
	}
	return removed, nil
}
