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
	mu       sync.Mutex
	channels map[string]*channel
	cache    map[string]*cachedEvent
	seq      seqNum   // the number of the shard's last subscription
	_        [36]byte // one shard per cache line: neighbouring locks do not share one
}

// hub is an app's runtime state on this node.
type hub struct {
	seed   maphash.Seed
	shards [numShards]shard

	cache cacheStore

	usersMu  sync.Mutex
	users    map[string][]*Session // signed-in user id → its connections
	watchers map[string][]*Session // user id → connections watching it
}

func newHub(maxCache int64) *hub {
	h := &hub{seed: maphash.MakeSeed(), users: make(map[string][]*Session), watchers: make(map[string][]*Session)}
	h.cache.max = maxCache
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*channel)
		h.shards[i].cache = make(map[string]*cachedEvent)
	}
	return h
}

func (h *hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%numShards]
}
