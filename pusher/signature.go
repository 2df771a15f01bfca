package pusher

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
)

// Sign returns hex HMAC-SHA256 of msg with secret, the signature that
// channel auth, user auth, webhooks and the HTTP API all use.
func Sign(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// SignatureEqual compares a received hex signature with the expected one in
// constant time.
func SignatureEqual(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// checkAuth verifies an auth string "key:signature" over msg
// (Pusher protocol: authenticating channel and user subscriptions).
func (a *App) checkAuth(auth, msg string) bool {
	key, sig, ok := strings.Cut(auth, ":")
	if !ok || subtle.ConstantTimeCompare([]byte(key), []byte(a.Key)) != 1 {
		return false
	}
	return SignatureEqual(strings.ToLower(sig), Sign(a.Secret, msg))
}
