package pusher

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"sync/atomic"
)

// SocketID identifies one connection (Pusher protocol: socket_id), written
// as two decimal numbers joined by a dot: the high and the low 32 bits.
// The zero SocketID is none.
type SocketID uint64

// String returns the socket_id as the protocol writes it, "123.456".
func (id SocketID) String() string {
	var b [24]byte
	return string(id.AppendTo(b[:0]))
}

// AppendTo appends the socket_id's text to dst.
func (id SocketID) AppendTo(dst []byte) []byte {
	dst = strconv.AppendUint(dst, uint64(id>>32), 10)
	dst = append(dst, '.')
	return strconv.AppendUint(dst, uint64(uint32(id)), 10)
}

// ParseSocketID reads a socket_id written by String. ok is false for
// anything else, such as another server's id whose parts overflow 32 bits:
// no session here has that id.
func ParseSocketID(s string) (id SocketID, ok bool) {
	dot := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			dot = i
			break
		}
	}
	if dot <= 0 || dot == len(s)-1 {
		return 0, false
	}
	hi, err1 := strconv.ParseUint(s[:dot], 10, 32)
	lo, err2 := strconv.ParseUint(s[dot+1:], 10, 32)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return SocketID(hi<<32 | lo), true
}

// idSource hands out socket ids that are unique on this node and that
// nobody can predict: a counter enciphered by a 64-bit permutation under a
// random key (a four-round Feistel network whose round function is AES).
// A client that knows its own id learns nothing of its neighbours', so it
// cannot hide a broadcast from one by passing its id as socket_id, nor
// count how fast others connect. Ids of two nodes collide only by chance,
// with odds of about n²/2⁶⁵ for n connections ever made.
type idSource struct {
	block cipher.Block
	next  atomic.Uint64
}

func newIDSource() *idSource {
	var key [16]byte
	if _, err := rand.Read(key[:]); err != nil {
		panic("pusher: no randomness for socket ids: " + err.Error())
	}
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err)
	}
	return &idSource{block: block}
}

// id returns a fresh socket id, never 0 and never one given before.
func (g *idSource) id() SocketID {
	for {
		if id := g.permute(g.next.Add(1)); id != 0 {
			return SocketID(id)
		}
	}
}

// permute is a bijection of the 64-bit numbers: distinct counters give
// distinct ids.
func (g *idSource) permute(x uint64) uint64 {
	l, r := uint32(x>>32), uint32(x)
	var in, out [16]byte
	for round := byte(0); round < 4; round++ {
		in[0] = round
		binary.BigEndian.PutUint32(in[1:], r)
		g.block.Encrypt(out[:], in[:])
		l, r = r, l^binary.BigEndian.Uint32(out[:])
	}
	return uint64(l)<<32 | uint64(r)
}
