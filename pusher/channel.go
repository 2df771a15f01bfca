package pusher

import "strings"

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
	count   int     // subscriptions, all loops
	perLoop []int32 // subscriptions per loop: which loops a broadcast visits

	// loop-owned
	subs [][]subscriber
}

// count is how many connections of this node are in channel name. sh.mu
// is held.
func (sh *shard) count(name string) int {
	if ch := sh.channels[name]; ch != nil {
		return ch.count
	}
	return 0
}

// markDirty marks channel name as changed since the broker was last told
// its count, in a cluster. sh.mu is held.
func (sh *shard) markDirty(h *hub, name string) {
	if h.clustered {
		sh.dirty[name] = struct{}{}
	}
}

// subscriber is one entry of a channel's subscribers on a loop: the
// session, the number of its subscription (shard.seq when it joined) and
// where that subscription sits in the session's own list (Session.subs), so
// that either list drops an entry in O(1).
type subscriber struct {
	sess *Session
	seq  seqNum
	k    int32
}

// seqNum numbers the subscriptions of a shard. It wraps, and compares as a
// serial number (RFC 1982): a broadcast's bound and the subscriptions it is
// compared with are never 2³¹ subscriptions apart, as a broadcast waits for
// its loops for seconds at most. 0 is never a subscription's number.
type seqNum uint32

// before reports whether a was numbered before b.
func (a seqNum) before(b seqNum) bool { return int32(a-b) < 0 }

// next returns the number after a, skipping 0.
func (a seqNum) next() seqNum {
	if a++; a == 0 {
		a++
	}
	return a
}
