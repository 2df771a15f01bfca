package pusher

import (
	"hash/maphash"
	"sync"
)

// An app's channel table: its channels, presence rosters and cached
// events, spread over numShards shards by a hash of the channel name, each
// guarded by its own mutex. This file is the only one that takes a shard's
// locks: everything else reaches the table through the hub's methods
// below, and the bodies they run under a lock are shard methods (in the
// file of their concept) documented "sh.mu is held".
//
// # Lock order
//
// A lock is never taken while one later in this list is held:
//
//  1. shard.tell, which orders a shard's presence announcements: whatever
//     decides that a member is announced takes it before mu and holds it
//     until the announcement is queued to every loop (lockTell), so two
//     announcements of one member reach each loop in the order they were
//     decided;
//  2. cacheStore.mu, the app's cache accounting (an eviction takes a
//     shard's mu inside it);
//  3. shard.mu, one at a time: no code holds two shards' locks;
//
// and apart from these, each taken alone: hub.usersMu (users and
// watchlists), remoteCounts.mu (the other nodes' counts), the publish
// gate's mutex. No lock but shard.tell is held while calling
// Loops.Execute, a Conn method or a Broker method, and shard.tell is never
// taken by a loop's task.

// numShards spreads an app's channels over independent locks.
const numShards = 64

// shard is one slice of an app's channel table. mu guards the maps and the
// shard's channels' counters, and is never held across a write to a
// socket.
type shard struct {
	mu       sync.Mutex
	tell     sync.Mutex // orders presence announcements (lock order, above)
	channels map[string]*channel
	rosters  map[string]*roster // presence channels' members
	cache    map[string]*cachedEvent
	dirty    map[string]struct{} // in a cluster: channels whose count changed since the broker was told
	seq      seqNum              // the number of the shard's last subscription
	_        [12]byte            // one shard per cache line: neighbouring locks do not share one
}

// hub is an app's runtime state on this node.
type hub struct {
	seed      maphash.Seed
	shards    [numShards]shard
	loops     int  // event loops, each channel keeps a list of its subscribers on each (set by Attach)
	clustered bool // other nodes exist: count changes are marked dirty for the broker

	cache cacheStore

	usersMu  sync.Mutex
	users    map[string][]*Session // signed-in user id → its connections here
	online   map[string]bool       // signed-in users online, cluster-wide as the broker tells
	watchers map[string][]*Session // user id → connections watching it

	remote remoteCounts // in a cluster: the other nodes' subscription counts
}

func newHub(maxCache int64, clustered bool) *hub {
	h := &hub{seed: maphash.MakeSeed(), clustered: clustered, users: make(map[string][]*Session),
		online: make(map[string]bool), watchers: make(map[string][]*Session)}
	h.cache.max = maxCache
	h.remote.init()
	for i := range h.shards {
		sh := &h.shards[i]
		sh.channels = make(map[string]*channel)
		sh.rosters = make(map[string]*roster)
		sh.cache = make(map[string]*cachedEvent)
		sh.dirty = make(map[string]struct{})
	}
	return h
}

func (h *hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%numShards]
}

// each runs f on every shard in turn, under its lock. For walks off the
// message path: stats, queries, counts, expiry.
func (h *hub) each(f func(sh *shard)) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		f(sh)
		sh.mu.Unlock()
	}
}

// lockTell takes the announcement order of channel name's shard;
// unlockTell gives it back once the announcement is queued.
func (h *hub) lockTell(name string)   { h.shard(name).tell.Lock() }
func (h *hub) unlockTell(name string) { h.shard(name).tell.Unlock() }

// count is how many connections of this node are in channel name.
func (h *hub) count(name string) int {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.count(name)
}

// info is channel name's subscriptions here and, for presence channels,
// its visible members (the cluster's, as this node knows them).
func (h *hub) info(name string) (subs, users int) {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r := sh.rosters[name]; r != nil {
		users = r.visible
	}
	return sh.count(name), users
}

// members returns the ids of the visible members of presence channel
// name, unsorted.
func (h *hub) members(name string) []string {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.members(name)
}

// presence returns the member list of presence channel name as
// subscription_succeeded carries it, or nil if it has no roster.
func (h *hub) presence(name string) []byte {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if r := sh.rosters[name]; r != nil {
		return appendPresence(nil, r)
	}
	return nil
}

// cached returns the last event of cache channel name, if it has not
// expired at now.
func (h *hub) cached(name string, now int64) *cachedEvent {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.cached(name, now)
}

// join makes sess a subscriber of channel name as j asks (subscribe.go:
// shard.join), numbering its subscription; then, lock released, adds it to
// the channel's list on its loop.
func (h *hub) join(sess *Session, name string, j *joining) joined {
	sh := h.shard(name)
	sh.mu.Lock()
	got := sh.join(h, sess, name, j)
	sh.mu.Unlock()
	if got.ch != nil {
		sess.addTo(got.ch, got.m, got.seq)
	}
	return got
}

// leave drops subscription k of sess (subscribe.go: shard.leave); then,
// lock released, takes it off both lists.
func (h *hub) leave(sess *Session, k int) left {
	sub := sess.subs[k]
	sh := h.shard(sub.ch.name)
	sh.mu.Lock()
	l := sh.leave(h, sess, sub)
	sh.mu.Unlock()
	sess.removeFrom(k)
	return l
}

// route fixes whom a broadcast to channel name reaches (broadcast.go:
// shard.route), keeping keep as the channel's cached event in the same
// step; then, lock released, counts keep against the app's cache cap.
func (h *hub) route(name string, keep *cachedEvent, to *target) routed {
	sh := h.shard(name)
	sh.mu.Lock()
	r := sh.route(h, name, keep, to)
	sh.mu.Unlock()
	if keep != nil {
		h.admit(keep)
	}
	return r
}

// setListed lists user in presence channel name or not, as the cluster
// announced (presence.go: shard.setListed); when that changes whether it
// is visible here, tell queues the announcement, under the shard's
// announcement order, for the subscriptions numbered up to upto.
func (h *hub) setListed(name, user string, info []byte, listed, settled bool, tell func(upto seqNum)) {
	sh := h.shard(name)
	sh.tell.Lock()
	defer sh.tell.Unlock()
	sh.mu.Lock()
	changed, upto := sh.setListed(name, user, info, listed, settled)
	sh.mu.Unlock()
	if changed {
		tell(upto)
	}
}

// unheld returns the members of presence channel name, listed or
// pending, that held does not have.
func (h *hub) unheld(name string, held map[string]struct{}) []string {
	sh := h.shard(name)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	var out []string
	if r := sh.rosters[name]; r != nil {
		for id, m := range r.members {
			if _, ok := held[id]; !ok && (m.listed || m.pending) {
				out = append(out, id)
			}
		}
	}
	return out
}

// admit queues ev for eviction in its turn, and evicts the oldest entries
// while the app keeps more than its cap (cache.go).
func (h *hub) admit(ev *cachedEvent) {
	c := &h.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fifo = append(c.fifo, ev)
	for c.max > 0 && c.bytes.Load() > c.max && c.head < len(c.fifo) {
		v := c.fifo[c.head]
		c.fifo[c.head] = nil
		c.head++
		sh := h.shard(v.channel)
		sh.mu.Lock()
		sh.evict(c, v)
		sh.mu.Unlock()
	}
	c.compact()
}
