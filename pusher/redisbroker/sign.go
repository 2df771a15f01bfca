package redisbroker

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"sync"

	"github.com/revurb/revurb/pusher"
)

// macSize is how much of the HMAC a message carries: 128 bits.
const macSize = 16

// signer signs and checks one app's messages. It is safe for concurrent
// use.
type signer struct {
	key  []byte
	pool sync.Pool // hash.Hash under key
}

func newSigner(key []byte) *signer {
	s := &signer{key: key}
	s.pool.New = func() any { return hmac.New(sha256.New, s.key) }
	return s
}

// sign appends the MAC of msg to it.
func (s *signer) sign(msg []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	var sum [sha256.Size]byte
	out := append(msg, h.Sum(sum[:0])[:macSize]...)
	s.pool.Put(h)
	return out
}

// open checks msg's MAC and returns the message without it.
func (s *signer) open(msg []byte) ([]byte, bool) {
	if len(msg) < macSize {
		return nil, false
	}
	body, mac := msg[:len(msg)-macSize], msg[len(msg)-macSize:]
	h := s.pool.Get().(hash.Hash)
	h.Reset()
	h.Write(body)
	var sum [sha256.Size]byte
	ok := hmac.Equal(h.Sum(sum[:0])[:macSize], mac)
	s.pool.Put(h)
	return body, ok
}

// busKey derives an app's bus key: from the cluster secret when one is
// set, else from the app's own credentials, so that nodes serving the
// same app with the same config agree without configuring anything.
func busKey(secret string, a *pusher.AppConfig) []byte {
	var m hash.Hash
	if secret != "" {
		m = hmac.New(sha256.New, []byte(secret))
		m.Write([]byte("revurb bus key\x00" + a.ID))
	} else {
		m = hmac.New(sha256.New, []byte(a.Secret))
		m.Write([]byte("revurb bus key\x00" + a.ID + "\x00" + a.Key))
	}
	return m.Sum(nil)
}
