package redisbroker

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/rueidis"

	"github.com/revurb/revurb/pusher"
)

// A resync ends with snapshots: each channel of an app with members is
// read by luaSnapshot, which publishes a marker on the bus as it reads.
// The worker gets the members (arrived), the bus the marker (marker), in
// either order; the channel is reloaded when both are in, with the member
// events the bus carried after the marker applied over the members, so
// that nothing waits — neither the bus for the snapshot nor the snapshot
// for the bus.

// snapshotTimeout is how long a snapshot may wait for its marker or its
// result before the app is resynced again.
const snapshotTimeout = 30 * time.Second

// maxSnapshotLog bounds the member events a snapshot logs while its
// result is on its way (a few milliseconds); past it, the app is resynced
// again.
const maxSnapshotLog = 4096

// snapshot is one channel's members as Redis held them at the point of
// the bus where its marker is: what a resync reloads. Its result comes
// back to the worker and its marker to the bus, in either order; it is
// applied when both are in, with the member events the bus carried after
// the marker (logged meanwhile) applied over it.
type snapshot struct {
	app     *app
	channel string
	first   bool // the app's first load: the cache channels' events come along
	made    time.Time
	seen    bool // the marker came
	arrived bool // the result came
	members []pusher.Member
	cached  []string
	log     []pusher.Membership
	broken  bool // the log overflowed
}

// appSnapshots is what the snapshots of one app read.
type appSnapshots struct {
	a      *app
	first  bool     // the app's first load: its cache channels' events come along
	chans  []string // the channels, the users ("") last
	cached []string // at the first load, the cache channels with an event
}

// snapshot reads, for each app, every channel with members (and the
// users, last), each by luaSnapshot with a marker; at an app's first load
// the users' snapshot brings the cache channels' last events too.
func (b *Broker) snapshot(ctx context.Context, c rueidis.Client, apps []*app, state map[string]*pusher.AppState) error {
	plans, err := b.planSnapshots(ctx, c, apps, state)
	if err != nil {
		return err
	}
	var ops []op
	var tokens []uint64
	for i := range plans {
		for _, ch := range plans[i].chans {
			token, o := b.snapshotOp(c, &plans[i], ch)
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
		members, cached := readSnapshot(parts)
		b.arrived(tokens[i], members, cached)
	}
	return nil
}

// planSnapshots reads which channels of apps have members (K:chans) and,
// at an app's first load, which cache channels have an event (K:cachex).
func (b *Broker) planSnapshots(ctx context.Context, c rueidis.Client, apps []*app, state map[string]*pusher.AppState) ([]appSnapshots, error) {
	plans := make([]appSnapshots, len(apps))
	b.cmu.Lock()
	for i, a := range apps {
		plans[i] = appSnapshots{a: a, first: !b.loaded[a.id]}
	}
	b.cmu.Unlock()
	cmds := make(rueidis.Commands, 0, 2*len(apps))
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for _, p := range plans {
		cmds = append(cmds, c.B().Smembers().Key(p.a.chans()).Build())
		if p.first {
			cmds = append(cmds, c.B().Zrangebyscore().Key(p.a.cachex()).Min(now).Max("+inf").Build())
		}
	}
	res := c.DoMulti(ctx, cmds...)
	k := 0
	for i := range plans {
		p := &plans[i]
		chans, err := res[k].AsStrSlice()
		k++
		if err != nil && !isRedisErr(err) {
			return nil, err
		}
		if p.first {
			p.cached, err = res[k].AsStrSlice()
			k++
			if err != nil && !isRedisErr(err) {
				return nil, err
			}
		}
		p.chans = snapshotChannels(chans, state[p.a.id])
	}
	return plans, nil
}

// snapshotChannels are the channels Redis lists with members and those
// this node lists the members of (as, if not nil), each once, and the
// users ("") last: their snapshot completes the app's.
func snapshotChannels(inRedis []string, as *pusher.AppState) []string {
	names := map[string]bool{}
	for _, ch := range inRedis {
		names[ch] = true
	}
	if as != nil {
		for _, ch := range as.Rosters {
			names[ch] = true
		}
	}
	delete(names, "")
	list := make([]string, 0, len(names)+1)
	for ch := range names {
		list = append(list, ch)
	}
	return append(list, "")
}

// snapshotOp registers the snapshot of channel ch of p's app, and makes
// the luaSnapshot that reads it and publishes its marker.
func (b *Broker) snapshotOp(c rueidis.Client, p *appSnapshots, ch string) (uint64, op) {
	a := p.a
	token := b.tokens.Add(1)
	s := &snapshot{app: a, channel: ch, first: p.first && ch == "", made: time.Now()}
	b.cmu.Lock()
	b.snaps[token] = s
	b.cmu.Unlock()
	keys := []string{a.mk(ch)}
	if s.first {
		for _, cc := range p.cached {
			keys = append(keys, a.cache(cc))
		}
	}
	args := []string{b.pubCmd(), a.bus, string(a.sig.sign(appendMarker(nil, b.header(a), token)))}
	return token, scriptOp(c, luaSnapshot, a, keys, args)
}

// readSnapshot reads luaSnapshot's answer: the members, user and info
// flat, and the cache channels' last events.
func readSnapshot(parts []rueidis.RedisMessage) ([]pusher.Member, []string) {
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
	return members, cached
}

// logMember logs e for the snapshots of its channel waiting for their
// result. The caller holds cmu.
func (b *Broker) logMember(a *app, e *pusher.Membership) {
	for _, s := range b.waiting {
		if s.app != a || s.channel != e.Channel || s.broken {
			continue
		}
		if len(s.log) >= maxSnapshotLog {
			s.broken, s.log = true, nil
			continue
		}
		s.log = append(s.log, pusher.Membership{User: e.User, Info: e.Info, Added: e.Added})
	}
}

// marker notes that snapshot token's marker came. The caller holds cmu.
func (b *Broker) marker(token uint64) {
	s := b.snaps[token]
	if s == nil {
		return
	}
	s.seen = true
	if s.arrived {
		b.apply(token, s)
	} else {
		b.waiting = append(b.waiting, s)
	}
}

// arrived notes that snapshot token's result came.
func (b *Broker) arrived(token uint64, members []pusher.Member, cached []string) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	s := b.snaps[token]
	if s == nil {
		return
	}
	s.members, s.cached, s.arrived = members, cached, true
	if s.seen {
		b.apply(token, s)
	}
}

// apply reloads the snapshot's channel, and at the app's first load its
// cache. The caller holds cmu.
func (b *Broker) apply(token uint64, s *snapshot) {
	delete(b.snaps, token)
	for i, w := range b.waiting {
		if w == s {
			b.waiting = append(b.waiting[:i], b.waiting[i+1:]...)
			break
		}
	}
	if s.broken {
		b.askResync(s.app)
		return
	}
	b.cluster.Reload(s.app.id, s.channel, replay(s.members, s.log))
	if s.channel == "" {
		// The users are the last of an app's snapshots: every other one
		// of the app's is in.
		b.appLoaded(s)
	}
}

// replay applies log, the member events the bus carried after a
// snapshot's marker, over the snapshot's members.
func replay(members []pusher.Member, log []pusher.Membership) []pusher.Member {
	if len(log) == 0 {
		return members
	}
	at := map[string]int{}
	for i, m := range members {
		at[m.User] = i
	}
	for _, e := range log {
		i, ok := at[e.User]
		switch {
		case e.Added && ok:
			members[i].Info = e.Info
		case e.Added:
			at[e.User] = len(members)
			members = append(members, pusher.Member{User: e.User, Info: e.Info})
		case ok:
			last := len(members) - 1
			members[i] = members[last]
			at[members[i].User] = i
			members = members[:last]
			delete(at, e.User)
		}
	}
	return members
}

// appLoaded marks the app of s, its users' snapshot, loaded; at its first
// load it delivers the cache channels' last events first, once. The
// caller holds cmu.
func (b *Broker) appLoaded(s *snapshot) {
	if s.first && !b.loaded[s.app.id] { // else delivered by an earlier first load
		for _, raw := range s.cached {
			body, ok := s.app.sig.open([]byte(raw))
			var m message
			if !ok || decode(body, &s.app.lim, &m) != nil || m.kind != kindBroadcast {
				continue
			}
			b.cluster.Deliver(&m.broadcast)
		}
	}
	b.loaded[s.app.id] = true
	if len(b.loaded) == len(b.appList()) && !b.ready.Swap(true) {
		b.cfg.Log.Info("redisbroker: joined the cluster: every app's members loaded", "node", b.names.get(), "apps", len(b.appList()), "took", time.Since(b.started).Round(time.Millisecond).String())
	}
}

// expireSnapshots drops the snapshots whose marker or result never came
// (a subscription lost meanwhile), resyncing their apps again.
func (b *Broker) expireSnapshots(older time.Time) {
	b.cmu.Lock()
	defer b.cmu.Unlock()
	for token, s := range b.snaps {
		if s.made.Before(older) {
			s.broken = true
			b.apply(token, s)
		}
	}
}
