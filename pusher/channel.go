package pusher

import (
	"hash/maphash"
	"strings"
	"sync"
)

// Kind is what a channel's name prefix makes it (Pusher protocol: channel
// types). A channel's kind never changes.
type Kind uint8

const (
	// Public channels need no authorization.
	Public Kind = iota
	// Private channels need a signature over socket_id:channel.
	Private
	// Presence channels need a signature over socket_id:channel:channel_data
	// and track their members.
	Presence
	// Encrypted channels (private-encrypted-) are private channels whose data
	// the server relays untouched; client events are refused on them.
	Encrypted
	// ServerOnly channels (#...) are only for the server, such as
	// #server-to-user-{id}; clients may not subscribe.
	ServerOnly
)

var kindNames = [...]string{"public", "private", "presence", "encrypted", "server"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ChannelKind returns the kind of the channel named name and whether it is a
// cache channel (one that replays its last event to new subscribers).
func ChannelKind(name string) (kind Kind, cache bool) {
	switch {
	case strings.HasPrefix(name, "#"):
		return ServerOnly, false
	case strings.HasPrefix(name, "private-encrypted-cache-"):
		return Encrypted, true
	case strings.HasPrefix(name, "private-encrypted-"):
		return Encrypted, false
	case strings.HasPrefix(name, "private-cache-"):
		return Private, true
	case strings.HasPrefix(name, "private-"):
		return Private, false
	case strings.HasPrefix(name, "presence-cache-"):
		return Presence, true
	case strings.HasPrefix(name, "presence-"):
		return Presence, false
	case strings.HasPrefix(name, "cache-"):
		return Public, true
	}
	return Public, false
}

// ValidChannelName reports whether name is 1..max characters of
// [A-Za-z0-9_\-=@,.;] (Pusher protocol: channel naming conventions), with a
// leading '#' allowed for server channels.
func ValidChannelName(name string, max int) bool {
	if len(name) == 0 || len(name) > max {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '_', c == '-', c == '=', c == '@', c == ',', c == '.', c == ';':
		case c == '#' && i == 0:
		default:
			return false
		}
	}
	return true
}

// channel is one occupied channel of an app.
//
// Fields under "shard" are guarded by the shard's mutex. subs[i] is owned by
// event loop i: only code running on loop i reads or writes it, so fan-out
// walks it without a lock.
type channel struct {
	name  string
	kind  Kind
	cache bool

	// shard
	count   int                // subscriptions, all loops
	perLoop []int32            // subscriptions per loop: which loops a broadcast visits
	members map[string]*member // presence: user id → member

	// loop-owned
	subs [][]subscriber
}

// subscriber is one entry of a channel's subscribers on a loop: the
// session and the number of its subscription (shard.seq when it joined).
type subscriber struct {
	sess *Session
	seq  uint64
}

// member is one user of a presence channel. A user with several
// connections in the channel is one member.
type member struct {
	info  []byte // raw JSON of user_info, or nil
	conns int
}

// loopMask returns a bit per loop that has subscribers. Callers hold the
// shard lock.
func (c *channel) loopMask() uint64 {
	var m uint64
	for i, n := range c.perLoop {
		if n > 0 {
			m |= 1 << i
		}
	}
	return m
}

// numShards spreads an app's channels over independent locks.
const numShards = 64

// shard is one slice of an app's channel table. mu guards the maps only and
// is never held across a write to a socket.
type shard struct {
	mu       sync.Mutex
	channels map[string]*channel
	cache    map[string]*cachedEvent
	seq      uint64   // subscriptions made in the shard; numbers them
	_        [40]byte // keep neighbouring shard locks off one cache line
}

// hub is an app's runtime state on this node.
type hub struct {
	seed   maphash.Seed
	shards [numShards]shard

	usersMu  sync.Mutex
	users    map[string][]*Session // signed-in user id → its connections
	watchers map[string][]*Session // user id → connections watching it
}

func newHub() *hub {
	h := &hub{seed: maphash.MakeSeed(), users: make(map[string][]*Session), watchers: make(map[string][]*Session)}
	for i := range h.shards {
		h.shards[i].channels = make(map[string]*channel)
		h.shards[i].cache = make(map[string]*cachedEvent)
	}
	return h
}

func (h *hub) shard(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%numShards]
}
