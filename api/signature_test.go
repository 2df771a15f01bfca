package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/revurb/revurb/pusher"
)

// TestAuthenticateKnownVector checks the worked example of Pusher's HTTP API
// reference ("Generating authentication signatures"): app 3, key
// 278d425bdf160c739803, secret 7ad3773142a6692b25b8, at 1353088179.
func TestAuthenticateKnownVector(t *testing.T) {
	app := pusher.DefaultApp("3", "278d425bdf160c739803", "7ad3773142a6692b25b8")
	body := []byte(`{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}`)
	const query = "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0" +
		"&body_md5=ec365a775a4cd0599faeb73354201b6f" +
		"&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
	var args fasthttp.Args
	args.Parse(query)
	now := time.Unix(1353088179, 0)
	if msg := authenticate(&app, []byte("POST"), "/apps/3/events", &args, body, now); msg != "" {
		t.Fatalf("known vector refused: %s", msg)
	}
	// The same request signed for another path, or a changed body, fails.
	if msg := authenticate(&app, []byte("POST"), "/apps/3/batch_events", &args, body, now); msg == "" {
		t.Error("signature accepted for another path")
	}
	if msg := authenticate(&app, []byte("POST"), "/apps/3/events", &args, append(body, ' '), now); msg == "" {
		t.Error("signature accepted for another body")
	}
}

// TestAuthenticate signs queries by hand, as the Pusher SDKs do, and checks
// each reason to refuse one.
func TestAuthenticate(t *testing.T) {
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	now := time.Unix(1700000000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := func(method, path, query string) string {
		return pusher.Sign(testSecret, method+"\n"+path+"\n"+query)
	}
	base := "auth_key=app-key&auth_timestamp=" + ts + "&auth_version=1.0"
	tests := []struct {
		name   string
		method string
		path   string
		query  string // as sent, escaped
		body   string
		want   string // "" accepted
	}{
		{name: "get", method: "GET", path: "/apps/app-id/channels",
			query: base + "&auth_signature=" + sig("GET", "/apps/app-id/channels", base)},
		{name: "signature in upper case", method: "GET", path: "/apps/app-id/channels",
			query: base + "&auth_signature=" + upper(sig("GET", "/apps/app-id/channels", base))},
		{
			// Values are signed unescaped; the comma travels as %2C.
			name: "escaped values", method: "GET", path: "/apps/app-id/channels/presence-a",
			query: "info=user_count%2Csubscription_count&filter_by_prefix=a%20b&" + base + "&auth_signature=" +
				sig("GET", "/apps/app-id/channels/presence-a", base+"&filter_by_prefix=a b&info=user_count,subscription_count"),
		},
		{
			// Keys are lower-cased before sorting.
			name: "upper-case keys", method: "GET", path: "/apps/app-id/channels",
			query: "Auth_Key=app-key&AUTH_TIMESTAMP=" + ts + "&auth_version=1.0&auth_signature=" + sig("GET", "/apps/app-id/channels", base),
		},
		{
			// A path with escapes may be signed decoded, as SDKs sign it.
			name: "decoded path", method: "GET", path: "/apps/app-id/channels/%23server-to-user-1",
			query: base + "&auth_signature=" + sig("GET", "/apps/app-id/channels/#server-to-user-1", base),
		},
		{
			name: "raw path", method: "GET", path: "/apps/app-id/channels/%23server-to-user-1",
			query: base + "&auth_signature=" + sig("GET", "/apps/app-id/channels/%23server-to-user-1", base),
		},
		{
			name: "body", method: "POST", path: "/apps/app-id/users/1/terminate_connections", body: "{}",
			query: base + "&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=" +
				sig("POST", "/apps/app-id/users/1/terminate_connections", base+"&body_md5=99914b932bd37a50b983c5e7c90ae93b"),
		},
		{name: "method is signed", method: "POST", path: "/apps/app-id/channels",
			query: base + "&auth_signature=" + sig("GET", "/apps/app-id/channels", base),
			want:  `Invalid signature: expected the hex HMAC-SHA256 of "POST\n/apps/app-id/channels\n` + base + `"`},
		{name: "missing key", method: "GET", path: "/apps/app-id/channels", query: "auth_timestamp=" + ts,
			want: "Missing auth_key"},
		{name: "wrong key", method: "GET", path: "/apps/app-id/channels", query: "auth_key=x&auth_timestamp=" + ts,
			want: "Invalid auth_key"},
		{name: "missing timestamp", method: "GET", path: "/apps/app-id/channels", query: "auth_key=app-key",
			want: "Missing auth_timestamp"},
		{name: "timestamp not integer", method: "GET", path: "/apps/app-id/channels", query: "auth_key=app-key&auth_timestamp=1.5",
			want: "Invalid auth_timestamp: not an integer"},
		{name: "timestamp 601 s early", method: "GET", path: "/apps/app-id/channels",
			query: "auth_key=app-key&auth_timestamp=" + strconv.FormatInt(now.Unix()-601, 10),
			want:  "Invalid auth_timestamp: more than 600 seconds from the server clock"},
		{name: "timestamp 601 s late", method: "GET", path: "/apps/app-id/channels",
			query: "auth_key=app-key&auth_timestamp=" + strconv.FormatInt(now.Unix()+601, 10),
			want:  "Invalid auth_timestamp: more than 600 seconds from the server clock"},
		{name: "bad version", method: "GET", path: "/apps/app-id/channels", query: "auth_key=app-key&auth_timestamp=" + ts + "&auth_version=1.1",
			want: "Invalid auth_version: only 1.0 is supported"},
		{name: "body without md5", method: "POST", path: "/apps/app-id/events", body: "{}", query: base,
			want: "Missing body_md5"},
		{name: "md5 of another body", method: "POST", path: "/apps/app-id/events", body: "{} ", query: base + "&body_md5=99914b932bd37a50b983c5e7c90ae93b",
			want: "Invalid body_md5: it does not match the body"},
		{name: "missing signature", method: "GET", path: "/apps/app-id/channels", query: base,
			want: "Missing auth_signature"},
		{name: "two signatures", method: "GET", path: "/apps/app-id/channels", query: base + "&auth_signature=a&auth_signature=b",
			want: "Duplicate query parameter auth_signature"},
		{name: "repeated key differing in case", method: "GET", path: "/apps/app-id/channels", query: base + "&AUTH_KEY=app-key",
			want: "Duplicate query parameter auth_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var args fasthttp.Args
			args.Parse(tc.query)
			got := authenticate(&app, []byte(tc.method), tc.path, &args, []byte(tc.body), now)
			if got != tc.want {
				t.Errorf("authenticate = %q, want %q", got, tc.want)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// authenticNaive is the signature check done the obvious way, with
// crypto/hmac and strings: the auth_key is the app's, and auth_signature,
// given once, is the HMAC of METHOD "\n" PATH "\n" QUERY for PATH as sent
// or percent-decoded.
func authenticNaive(args *fasthttp.Args, method, path string) bool {
	var kv, sigs []string
	key := ""
	for k, v := range args.All() {
		switch lk := strings.ToLower(string(k)); lk {
		case "auth_signature":
			sigs = append(sigs, string(v))
			continue
		case "auth_key":
			key = string(v)
		}
		kv = append(kv, strings.ToLower(string(k))+"="+string(v))
	}
	if key != testKey || len(sigs) != 1 {
		return false
	}
	// Sorted by key; keys are unique in a request authenticate accepts.
	sort.Slice(kv, func(i, j int) bool {
		ki, _, _ := strings.Cut(kv[i], "=")
		kj, _, _ := strings.Cut(kv[j], "=")
		return ki < kj
	})
	query := strings.Join(kv, "&")
	sign := func(path string) string {
		m := hmac.New(sha256.New, []byte(testSecret))
		m.Write([]byte(method + "\n" + path + "\n" + query))
		return hex.EncodeToString(m.Sum(nil))
	}
	if strings.EqualFold(sigs[0], sign(path)) {
		return true
	}
	dec, err := url.PathUnescape(path)
	return strings.Contains(path, "%") && err == nil && strings.EqualFold(sigs[0], sign(dec))
}

// FuzzAuthenticate feeds authenticate any query, method, path and body,
// and a request signed as the SDKs sign it with one more parameter of any
// value. It must never panic; it may accept a request only when the
// naive check does; and it must accept every request an SDK signs.
func FuzzAuthenticate(f *testing.F) {
	now := time.Unix(1700000000, 0)
	base := "auth_key=app-key&auth_timestamp=1700000000&auth_version=1.0"
	for _, s := range []struct{ method, path, query, body string }{
		{"GET", "/apps/app-id/channels", base + "&auth_signature=" + pusher.Sign(testSecret, "GET\n/apps/app-id/channels\n"+base), ""},
		{"GET", "/apps/app-id/channels/presence-a", "info=user_count%2Csubscription_count&filter_by_prefix=a%20b&" + base + "&auth_signature=00", ""},
		{"GET", "/apps/app-id/channels", "Auth_Key=app-key&AUTH_TIMESTAMP=1700000000&auth_version=1.0&auth_signature=ab", ""},
		{"GET", "/apps/app-id/channels/%23server-to-user-1", base + "&auth_signature=" + pusher.Sign(testSecret, "GET\n/apps/app-id/channels/#server-to-user-1\n"+base), ""},
		{"POST", "/apps/app-id/users/1/terminate_connections", base + "&body_md5=99914b932bd37a50b983c5e7c90ae93b&auth_signature=x", "{}"},
		{"GET", "/apps/app-id/channels", base + "&auth_signature=a&auth_signature=b", ""},
		{"GET", "/apps/app-id/channels", base + "&AUTH_KEY=app-key", ""},
		{"GET", "/apps/app-id/channels", "auth_key=app-key&auth_timestamp=1.5", ""},
	} {
		f.Add(s.method, s.path, s.query, []byte(s.body), "info", "user_count,subscription_count")
	}
	app := pusher.DefaultApp(testAppID, testKey, testSecret)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte, key, value string) {
		var args fasthttp.Args
		args.Parse(query)
		if msg := authenticate(&app, []byte(method), path, &args, body, now); msg == "" && !authenticNaive(&args, method, path) {
			t.Fatalf("%s %q ?%s accepted, but its signature does not check", method, path, query)
		}
		// One more parameter, signed as an SDK signs it; the names
		// authenticate reads itself are left to the query above.
		if key == "" || strings.Trim(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" ||
			slices.Contains([]string{"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"}, key) {
			return
		}
		q, _ := signQuery(method, path, map[string]string{key: value}, body, signing{}, now)
		args.Parse(q)
		if msg := authenticate(&app, []byte(method), path, &args, body, now); msg != "" {
			t.Fatalf("%s %q ?%s, signed as an SDK signs it, refused: %s", method, path, q, msg)
		}
	})
}
