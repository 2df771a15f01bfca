package redisbroker

import (
	"encoding/binary"
	"errors"

	"github.com/revurb/revurb/pusher"
)

// A bus message is binary: a version byte, a kind byte, the node that sent
// it, when (unix ms, by its clock), the app, then the kind's fields as
// uvarint-prefixed strings and uvarints, and last an HMAC-SHA256 of all
// that, cut to macSize bytes, under the app's bus key. Every message is
// made and signed by a node, in Go: what the Lua scripts publish is a
// message the node made beforehand and handed to them, so Redis never
// holds a key and never makes a message of its own.

// version starts every bus message; a node drops any other.
const version byte = 2

// Kinds of bus messages.
const (
	kindBroadcast byte = 1 + iota
	kindCounts
	kindTerminate
	kindHello
	kindMember  // published by luaJoin, luaLeave, luaResync and luaReap
	kindGoodbye // a node's state is gone from an app: forget it
	kindMarker  // a snapshot's place on the bus (luaSnapshot)
	kindReset   // luaResync repaired an app's keys: every node resyncs it
)

// Flags of a broadcast.
const flagClientEvent byte = 1

// Limits of what a message may hold beyond the app's own (event data, its
// name, channels per event, user_info): a node refuses a message past any
// of them.
const (
	maxCountsPerMessage = 256     // channel counts in one counts message
	maxFullCounts       = 1 << 18 // channel counts of one node's full count of an app
	maxID               = 1024    // a user id, socket id or node name
	nameSlack           = 256     // over max_channel_name_length: #server-to-user- and the occupancy prefix
)

// Errors of decode, which name the reason a message is refused.
var (
	errMalformed = errors.New("malformed")
	errSize      = errors.New("size")
	errLimit     = errors.New("limit")
)

// limits is what one app's messages may hold.
type limits struct {
	data, event, name, info, channels int
	message                           int // a whole message, MAC included
}

func newLimits(a *pusher.AppConfig) limits {
	l := limits{data: a.MaxEventDataSize, event: a.MaxEventNameLength, name: a.MaxChannelNameLength + nameSlack,
		info: a.MaxUserInfoSize, channels: max(a.MaxChannelsPerEvent, 1)}
	header := 64 + 3*maxID
	broadcast := header + l.data + l.event + l.channels*(l.name+3) + maxID
	member := header + l.name + 2*maxID + l.info
	counts := header + maxCountsPerMessage*(l.name+13)
	l.message = max(broadcast, member, counts) + macSize
	return l
}

// header is what starts every message.
type header struct {
	kind   byte
	origin string // the node that made it
	time   int64  // unix ms, by the origin's clock
	app    string
}

func appendHeader(dst []byte, h header) []byte {
	dst = append(dst, version, h.kind)
	dst = appendString(dst, h.origin)
	dst = binary.AppendUvarint(dst, uint64(max(h.time, 0)))
	return appendString(dst, h.app)
}

// appendBroadcast appends b as a bus message body, numbered seq by its
// node.
func appendBroadcast(dst []byte, h header, b *pusher.Broadcast, seq uint64) []byte {
	h.kind = kindBroadcast
	dst = appendHeader(dst, h)
	dst = binary.AppendUvarint(dst, uint64(len(b.Channels)))
	for _, ch := range b.Channels {
		dst = appendString(dst, ch)
	}
	dst = appendString(dst, b.Event)
	dst = appendBytes(dst, b.Data)
	dst = appendString(dst, b.Except)
	dst = binary.AppendVarint(dst, b.CacheUntilMs)
	var flags byte
	if b.ClientEvent {
		flags |= flagClientEvent
	}
	dst = append(dst, flags)
	dst = appendString(dst, b.User)
	return binary.AppendUvarint(dst, seq)
}

// appendCounts appends some of a node's counts of an app: all of them when
// gen is 0 and the node had that few, or one part of a full count (gen,
// the full count's number, not 0), the last part when last.
func appendCounts(dst []byte, h header, conns int, full bool, gen uint64, last bool, channels []pusher.ChannelCount) []byte {
	h.kind = kindCounts
	dst = appendHeader(dst, h)
	var flags byte
	if full {
		flags |= 1
	}
	if last {
		flags |= 2
	}
	dst = append(dst, flags)
	dst = binary.AppendUvarint(dst, gen)
	dst = binary.AppendUvarint(dst, uint64(max(conns, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(channels)))
	for _, cc := range channels {
		dst = appendString(dst, cc.Channel)
		dst = binary.AppendUvarint(dst, uint64(max(cc.Count, 0)))
	}
	return dst
}

// appendTerminate appends a request to close user's connections.
func appendTerminate(dst []byte, h header, user string) []byte {
	h.kind = kindTerminate
	return appendString(appendHeader(dst, h), user)
}

// appendHello appends a new node's greeting: every node answers with its
// counts of the app.
func appendHello(dst []byte, h header) []byte {
	h.kind = kindHello
	return appendHeader(dst, h)
}

// appendMember appends a membership change as the cluster announces it.
func appendMember(dst []byte, h header, m *pusher.Membership) []byte {
	h.kind = kindMember
	dst = appendHeader(dst, h)
	dst = appendString(dst, m.Channel)
	dst = appendString(dst, m.User)
	dst = appendBytes(dst, m.Info)
	dst = appendString(dst, m.Except)
	added := byte(0)
	if m.Added {
		added = 1
	}
	return append(dst, added)
}

// appendGoodbye appends that node's state in the app is gone.
func appendGoodbye(dst []byte, h header, node string) []byte {
	h.kind = kindGoodbye
	return appendString(appendHeader(dst, h), node)
}

// appendMarker appends a snapshot's marker.
func appendMarker(dst []byte, h header, token uint64) []byte {
	h.kind = kindMarker
	return binary.AppendUvarint(appendHeader(dst, h), token)
}

// appendReset appends a request to every node to resync the app.
func appendReset(dst []byte, h header) []byte {
	h.kind = kindReset
	return appendHeader(dst, h)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendBytes(dst, b []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(b)))
	return append(dst, b...)
}

// message is one bus message, decoded: the kind says which fields hold.
type message struct {
	header
	broadcast pusher.Broadcast
	seq       uint64 // of a broadcast: its number on its node
	counts    pusher.Counts
	gen       uint64 // of counts: the full count it is part of, or 0
	last      bool   // of counts: the full count's last part
	member    pusher.Membership
	user      string // terminate
	node      string // goodbye
	token     uint64 // marker
}

// decode reads one message body (its MAC checked and cut off) within l;
// a broadcast's Data aliases b. The error says why it is refused.
func decode(b []byte, l *limits, m *message) error {
	*m = message{}
	if len(b) < 2 || b[0] != version {
		return errMalformed
	}
	r := reader{b: b[2:]}
	m.kind = b[1]
	m.origin, m.time, m.app = r.string(maxID), int64(r.uvarint()&(1<<63-1)), r.string(maxID)
	switch m.kind {
	case kindBroadcast:
		bc := &m.broadcast
		bc.Origin, bc.App = m.origin, m.app
		n := r.uvarint()
		if n == 0 || n > uint64(l.channels) {
			return r.fail(errLimit)
		}
		bc.Channels = make([]string, n)
		for i := range bc.Channels {
			bc.Channels[i] = r.string(l.name)
		}
		bc.Event = r.string(l.event)
		bc.Data = r.bytes(l.data)
		bc.Except = r.string(maxID)
		bc.CacheUntilMs = r.varint()
		bc.ClientEvent = r.byte()&flagClientEvent != 0
		bc.User = r.string(maxID)
		m.seq = r.uvarint()
	case kindCounts:
		c := &m.counts
		c.Node, c.App = m.origin, m.app
		flags := r.byte()
		c.Full, m.last = flags&1 != 0, flags&2 != 0
		m.gen = r.uvarint()
		c.Connections = int(r.uvarint() & (1<<31 - 1))
		n := r.uvarint()
		if n > maxCountsPerMessage {
			return r.fail(errLimit)
		}
		c.Channels = make([]pusher.ChannelCount, n)
		for i := range c.Channels {
			c.Channels[i] = pusher.ChannelCount{Channel: r.string(l.name), Count: int(r.uvarint() & (1<<31 - 1))}
		}
	case kindTerminate:
		m.user = r.string(maxID)
	case kindHello, kindReset:
	case kindMember:
		mb := &m.member
		mb.App, mb.Node = m.app, m.origin
		mb.Channel, mb.User = r.string(l.name), r.string(maxID)
		if info := r.bytes(l.info); len(info) > 0 {
			mb.Info = info
		}
		mb.Except = r.string(maxID)
		mb.Added = r.byte() == 1
	case kindGoodbye:
		m.node = r.string(maxID)
	case kindMarker:
		m.token = r.uvarint()
	default:
		return errMalformed
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return errMalformed
	}
	return nil
}

// reader takes fields off a message; a short or malformed one, or a field
// over its limit, sets err and yields zero values from then on.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(err error) error {
	if r.err == nil {
		r.err = err
	}
	r.b = nil
	return r.err
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(errMalformed)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(errMalformed)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail(errMalformed)
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes is the next uvarint-prefixed field of at most limit bytes,
// aliasing the message: decode's callers hand it a buffer of their own.
func (r *reader) bytes(limit int) []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(limit) {
		r.fail(errSize)
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(errMalformed)
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) string(limit int) string { return string(r.bytes(limit)) }
