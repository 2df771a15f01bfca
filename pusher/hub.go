package pusher

import (
	"hash/maphash"
	"sync"
)

// numShards spreads an app's channels over independent locks.
const numShards = 64

// shard is one slice of an app's channel table. mu guards the maps only and
// is never held across a write to a socket.
type shard struct {
	mu sync.Mutex
	// tell orders the presence announcements of the shard's channels:
	// whatever decides that a member is announced takes it before mu and
	// holds it until the announcement is queued to every loop, so that two
	// announcements of one member reach each loop in the order they were
	// decided (member_added, then member_removed, never the other way).
	tell     sync.Mutex
	channels map[string]*channel
	rosters  map[string]*roster // presence channels' members
	cache    map[string]*cachedEvent
	dirty    map[string]struct{} // in a cluster: channels whose count changed since the broker was told
	seq      seqNum              // the number of the shard's last subscription
	_        [12]byte            // one shard per cache line: neighbouring locks do not share one
}

// hub is an app's runtime state on this node.
type hub struct {
	seed   maphash.Seed
	shards [numShards]shard

	cache cacheStore

	usersMu  sync.Mutex
	users    map[string][]*Session // signed-in user id → its connections here
	online   map[string]bool       // signed-in users online, cluster-wide as the broker tells
	watchers map[string][]*Session // user id → connections watching it

	remote remoteCounts // in a cluster: the other nodes' subscription counts
}

func newHub(maxCache int64) *hub {
	h := &hub{seed: maphash.MakeSeed(), users: make(map[string][]*Session),
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
