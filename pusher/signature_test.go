package pusher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

// signNaive is HMAC-SHA256 by crypto/hmac, the reference Signer is checked
// against.
func signNaive(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignerMatchesHMAC(t *testing.T) {
	tests := []struct {
		name, secret, msg string
	}{
		{name: "empty", secret: "", msg: ""},
		{name: "channel auth", secret: "app-secret", msg: "123.456:private-chat"},
		// The worked example of the Pusher HTTP API reference.
		{name: "api", secret: "7ad3773142a6692b25b8", msg: "POST\n/apps/3/events\nauth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f"},
		{name: "secret of a block", secret: strings.Repeat("k", sha256.BlockSize), msg: "m"},
		{name: "secret over a block", secret: strings.Repeat("k", sha256.BlockSize+1), msg: "m"},
		{name: "long secret", secret: strings.Repeat("secret", 50), msg: strings.Repeat("message", 100)},
	}
	var s Signer // one, reused: a Signer is reset between signatures
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := signNaive(tt.secret, tt.msg)
			if got := Sign(tt.secret, tt.msg); got != want {
				t.Fatalf("Sign = %s, want %s", got, want)
			}
			s.Reset(tt.secret)
			s.WriteString(tt.msg)
			if got := string(s.AppendSum([]byte("x"))); got != "x"+want {
				t.Fatalf("AppendSum = %s, want x%s", got, want)
			}
			for _, sig := range []string{want, strings.ToUpper(want)} {
				s.Reset(tt.secret)
				s.Write([]byte(tt.msg))
				if !s.MatchesString(sig) {
					t.Errorf("Matches(%s) = false", sig)
				}
			}
		})
	}
	if want := "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"; Sign(tests[2].secret, tests[2].msg) != want {
		t.Errorf("the Pusher reference example signs as %s, want %s", Sign(tests[2].secret, tests[2].msg), want)
	}
}

// TestSignerPieces signs messages written in random pieces.
func TestSignerPieces(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s Signer
	for range 200 {
		secret := strings.Repeat("s", r.IntN(150))
		msg := make([]byte, r.IntN(300))
		for i := range msg {
			msg[i] = byte(r.UintN(256))
		}
		s.Reset(secret)
		for rest := msg; len(rest) > 0; {
			n := r.IntN(len(rest) + 1)
			s.Write(rest[:n])
			rest = rest[n:]
		}
		if got, want := string(s.AppendSum(nil)), signNaive(secret, string(msg)); got != want {
			t.Fatalf("secret of %d bytes, message of %d: %s, want %s", len(secret), len(msg), got, want)
		}
	}
}

func TestSignerRefuses(t *testing.T) {
	good := signNaive("app-secret", "msg")
	tests := []struct {
		name, sig string
	}{
		{name: "empty", sig: ""},
		{name: "short", sig: good[:SignatureLen-1]},
		{name: "long", sig: good + "0"},
		{name: "one digit off", sig: good[:10] + string(good[10]^1) + good[11:]},
		{name: "other secret", sig: signNaive("app-secreT", "msg")},
		{name: "not hex", sig: strings.Repeat("z", SignatureLen)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := AcquireSigner("app-secret")
			defer ReleaseSigner(s)
			s.WriteString("msg")
			if s.MatchesString(tt.sig) {
				t.Errorf("Matches(%q) = true", tt.sig)
			}
		})
	}
}

func TestCheckAuth(t *testing.T) {
	app := &App{AppConfig: AppConfig{Key: "app-key", Secret: "app-secret"}}
	sig := signNaive("app-secret", "1.2:private-x")
	tests := []struct {
		name, auth string
		want       bool
	}{
		{name: "good", auth: "app-key:" + sig, want: true},
		{name: "upper-case hex", auth: "app-key:" + strings.ToUpper(sig), want: true},
		{name: "other key", auth: "app-kez:" + sig},
		{name: "no colon", auth: "app-key" + sig},
		{name: "empty", auth: ""},
		{name: "other message", auth: "app-key:" + signNaive("app-secret", "1.2:private-y")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := app.checkAuth(tt.auth, "1.2:private-x"); got != tt.want {
				t.Errorf("checkAuth(%q) = %v, want %v", tt.auth, got, tt.want)
			}
		})
	}
}
