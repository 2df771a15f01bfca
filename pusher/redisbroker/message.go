package redisbroker

import (
	"encoding/binary"
	"errors"

	json "github.com/goccy/go-json"

	"github.com/revurb/revurb/pusher"
)

// The bus carries two encodings. What a node publishes itself —
// broadcasts, counts, terminate and hello — is binary: a kind byte, then
// fields as uvarint-prefixed strings and uvarints; the event's data is
// read back as a slice of the message, not copied. What the Lua
// scripts publish — member events and a dead node's goodbye — is JSON,
// which Redis's Lua can write (cjson); it starts with '{', never a kind
// byte.

// Kinds of binary bus messages.
const (
	kindBroadcast byte = 1 + iota
	kindCounts
	kindTerminate
	kindHello
)

// Kinds of the JSON messages the scripts publish, after their "k" field.
const (
	kindMember byte = 'm'
	kindGone   byte = 'g'
)

// Flags of a broadcast.
const flagClientEvent byte = 1

var errMessage = errors.New("redisbroker: malformed bus message")

// appendBroadcast appends b as a bus message, numbered seq by its node.
func appendBroadcast(dst []byte, b *pusher.Broadcast, seq uint64) []byte {
	dst = append(dst, kindBroadcast)
	dst = appendString(dst, b.Origin)
	dst = appendString(dst, b.App)
	dst = binary.AppendUvarint(dst, uint64(len(b.Channels)))
	for _, ch := range b.Channels {
		dst = appendString(dst, ch)
	}
	dst = appendString(dst, b.Event)
	dst = appendBytes(dst, b.Data)
	dst = appendString(dst, b.Except)
	dst = binary.AppendVarint(dst, b.CacheUntil)
	var flags byte
	if b.ClientEvent {
		flags |= flagClientEvent
	}
	dst = append(dst, flags)
	dst = appendString(dst, b.User)
	return binary.AppendUvarint(dst, seq)
}

// appendCounts appends c as a bus message.
func appendCounts(dst []byte, c *pusher.Counts) []byte {
	dst = append(dst, kindCounts)
	dst = appendString(dst, c.Node)
	dst = appendString(dst, c.App)
	full := byte(0)
	if c.Full {
		full = 1
	}
	dst = append(dst, full)
	dst = binary.AppendUvarint(dst, uint64(max(c.Connections, 0)))
	dst = binary.AppendUvarint(dst, uint64(len(c.Channels)))
	for _, cc := range c.Channels {
		dst = appendString(dst, cc.Channel)
		dst = binary.AppendUvarint(dst, uint64(max(cc.Count, 0)))
	}
	return dst
}

// appendTerminate appends a request to close user's connections in app.
func appendTerminate(dst []byte, origin, app, user string) []byte {
	dst = append(dst, kindTerminate)
	dst = appendString(dst, origin)
	dst = appendString(dst, app)
	return appendString(dst, user)
}

// appendHello appends a new node's greeting: every node answers with all
// its counts.
func appendHello(dst []byte, origin string) []byte {
	return appendString(append(dst, kindHello), origin)
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
	kind      byte // a binary kind, or kindMember or kindGone for JSON ones
	origin    string
	broadcast pusher.Broadcast
	seq       uint64 // of a broadcast: its number on its node
	counts    pusher.Counts
	member    pusher.Membership
	app, user string // terminate
	node      string // gone
}

// memberJSON is a JSON bus message, as the Lua scripts write it.
type memberJSON struct {
	Kind    string `json:"k"`
	App     string `json:"a"`
	Channel string `json:"c"`
	User    string `json:"u"`
	Info    string `json:"i"`
	Except  string `json:"x"`
	Added   int    `json:"d"`
	Node    string `json:"n"`
}

// decode reads one bus message; a broadcast's Data aliases b.
func decode(b []byte, m *message) error {
	*m = message{}
	if len(b) == 0 {
		return errMessage
	}
	if b[0] == '{' {
		var j memberJSON
		if err := json.Unmarshal(b, &j); err != nil {
			return errMessage
		}
		switch j.Kind {
		case "m":
			m.kind = kindMember
			m.member = pusher.Membership{App: j.App, Channel: j.Channel, User: j.User, Added: j.Added == 1, Except: j.Except, Node: j.Node}
			if j.Info != "" {
				m.member.Info = []byte(j.Info)
			}
		case "g":
			m.kind, m.node = kindGone, j.Node
		default:
			return errMessage
		}
		return nil
	}
	r := reader{b: b[1:]}
	m.kind = b[0]
	switch m.kind {
	case kindBroadcast:
		bc := &m.broadcast
		bc.Origin, bc.App = r.string(), r.string()
		n := r.uvarint()
		if n > uint64(len(r.b)) { // each channel takes a byte at least
			return errMessage
		}
		bc.Channels = make([]string, n)
		for i := range bc.Channels {
			bc.Channels[i] = r.string()
		}
		bc.Event = r.string()
		bc.Data = r.bytes()
		bc.Except = r.string()
		bc.CacheUntil = r.varint()
		flags := r.byte()
		bc.ClientEvent = flags&flagClientEvent != 0
		bc.User = r.string()
		m.seq = r.uvarint()
		m.origin = bc.Origin
	case kindCounts:
		c := &m.counts
		c.Node, c.App = r.string(), r.string()
		c.Full = r.byte() == 1
		c.Connections = int(r.uvarint() & (1<<31 - 1))
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			return errMessage
		}
		c.Channels = make([]pusher.ChannelCount, n)
		for i := range c.Channels {
			c.Channels[i] = pusher.ChannelCount{Channel: r.string(), Count: int(r.uvarint() & (1<<31 - 1))}
		}
		m.origin = c.Node
	case kindTerminate:
		m.origin, m.app, m.user = r.string(), r.string(), r.string()
	case kindHello:
		m.origin = r.string()
	default:
		return errMessage
	}
	if r.bad || len(r.b) != 0 {
		return errMessage
	}
	return nil
}

// reader takes fields off a binary message; a short or malformed one sets
// bad and yields zero values from then on.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.bad = true
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// bytes is the next uvarint-prefixed field, aliasing the message: decode's
// callers hand it a buffer of their own.
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	b := r.b[:n:n]
	r.b = r.b[n:]
	return b
}

func (r *reader) string() string {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}
