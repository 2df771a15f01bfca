package pusher

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
	"unsafe"
)

// SignatureLen is the length of a signature: hex SHA-256.
const SignatureLen = 2 * sha256.Size

// Signer computes the signature that the Pusher protocol and HTTP API use
// everywhere — channel and user authentication, webhooks, the HTTP API's
// auth_signature: the hex HMAC-SHA256 (RFC 2104) of a message with an
// app's secret. Reset starts a signature, Write and WriteString add the
// message in as many pieces as it comes, and AppendSum or Matches ends it;
// Reset again for the next. Every program that signs or checks a
// signature (pusher, api, the load generator) does it with a Signer.
//
// A Signer allocates nothing once it has signed one message: keep one, or
// take one from AcquireSigner and give it back with ReleaseSigner. The
// zero value is ready. It is not safe for concurrent use.
type Signer struct {
	// inner hashes ipad-key || message, outer opad-key || inner's sum.
	// crypto/hmac would do the same but makes a new pair for every key,
	// and its hashes are interfaces: a buffer handed to them escapes, so
	// the pads and sums live here rather than on the stack.
	inner, outer hash.Hash
	pad          [sha256.BlockSize]byte
	sum          [sha256.Size]byte
	hex          [SignatureLen]byte
}

// The pads of RFC 2104 §2.
const (
	ipad = 0x36
	opad = 0x5c
)

// Reset starts a signature with secret.
func (s *Signer) Reset(secret string) {
	if s.inner == nil {
		s.inner, s.outer = sha256.New(), sha256.New()
	}
	key := bytesOf(secret)
	if len(key) > sha256.BlockSize {
		// RFC 2104 §2: a key longer than a block is hashed first.
		s.outer.Reset()
		s.outer.Write(key)
		key = s.outer.Sum(s.sum[:0])
	}
	s.pad = [sha256.BlockSize]byte{}
	copy(s.pad[:], key)
	for i := range s.pad {
		s.pad[i] ^= ipad
	}
	s.inner.Reset()
	s.inner.Write(s.pad[:])
	for i := range s.pad {
		s.pad[i] ^= ipad ^ opad
	}
	s.outer.Reset()
	s.outer.Write(s.pad[:])
}

// Write adds p to the message. It never fails.
func (s *Signer) Write(p []byte) (int, error) {
	return s.inner.Write(p)
}

// WriteString adds p to the message. It never fails.
func (s *Signer) WriteString(p string) (int, error) {
	return s.inner.Write(bytesOf(p))
}

// sumHex ends the signature and returns it, hex in lower case, in s.hex.
func (s *Signer) sumHex() []byte {
	s.outer.Write(s.inner.Sum(s.sum[:0]))
	hex.Encode(s.hex[:], s.outer.Sum(s.sum[:0]))
	return s.hex[:]
}

// AppendSum ends the signature and appends it to dst: SignatureLen bytes
// of lower-case hex.
func (s *Signer) AppendSum(dst []byte) []byte {
	return append(dst, s.sumHex()...)
}

// Matches ends the signature and reports, in constant time, whether sig
// is it, in hex of either case.
func (s *Signer) Matches(sig []byte) bool {
	want := s.sumHex()
	if len(sig) != len(want) {
		return false
	}
	var got [SignatureLen]byte
	for i, c := range sig {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		got[i] = c
	}
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// MatchesString is Matches for a signature held in a string.
func (s *Signer) MatchesString(sig string) bool {
	return s.Matches(bytesOf(sig))
}

var signers = sync.Pool{New: func() any { return new(Signer) }}

// AcquireSigner returns a Signer from a pool, Reset with secret. Give it
// back with ReleaseSigner when done.
func AcquireSigner(secret string) *Signer {
	s := signers.Get().(*Signer)
	s.Reset(secret)
	return s
}

// ReleaseSigner gives s back to the pool; s must not be used after.
func ReleaseSigner(s *Signer) {
	signers.Put(s)
}

// Sign returns the signature of msg with secret (see Signer), for those
// who want it as a string.
func Sign(secret, msg string) string {
	s := AcquireSigner(secret)
	defer ReleaseSigner(s)
	s.WriteString(msg)
	return string(s.sumHex())
}

// checkAuth verifies an auth string "key:signature" over msg
// (Pusher protocol: authenticating channel and user subscriptions).
func (a *App) checkAuth(auth, msg string) bool {
	key, sig, ok := strings.Cut(auth, ":")
	if !ok || subtle.ConstantTimeCompare(bytesOf(key), bytesOf(a.Key)) != 1 {
		return false
	}
	s := AcquireSigner(a.Secret)
	defer ReleaseSigner(s)
	s.WriteString(msg)
	return s.MatchesString(sig)
}

// bytesOf is s as bytes, without a copy, for functions that only read
// them.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}
