package webhook

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pushersdk "github.com/pusher/pusher-http-go/v5"
	"golang.org/x/crypto/nacl/secretbox"

	"github.com/revurb/revurb/pusher"
)

// receiver is an HTTP endpoint that records what it is sent and answers
// with the statuses it is given, then 200.
type receiver struct {
	mu       sync.Mutex
	statuses []int
	got      []request
	srv      *httptest.Server
	hold     chan struct{} // if not nil, every request waits for it
	held     atomic.Int32  // requests waiting for hold
}

type request struct {
	header http.Header
	body   []byte
	events []map[string]any
	timeMs float64
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.hold != nil {
			r.held.Add(1)
			<-r.hold
			r.held.Add(-1)
		}
		body, _ := io.ReadAll(req.Body)
		var payload struct {
			TimeMs float64          `json:"time_ms"`
			Events []map[string]any `json:"events"`
		}
		_ = json.Unmarshal(body, &payload)
		r.mu.Lock()
		r.got = append(r.got, request{header: req.Header.Clone(), body: body, events: payload.Events, timeMs: payload.TimeMs})
		status := 200
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.got...)
}

// waiting is how many requests wait for hold.
func (r *receiver) waiting() int { return int(r.held.Load()) }

// waitFor polls cond for up to 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 15 s for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// setup returns the app (with one webhook to r) and a dispatcher.
func setup(t *testing.T, r *receiver, hook pusher.Webhook, cfg Config) (*pusher.App, *Dispatcher) {
	t.Helper()
	hook.URL = r.srv.URL + "/hook"
	a := pusher.DefaultApp("app-id", "app-key", "app-secret")
	a.Webhooks = []pusher.Webhook{hook}
	s, err := pusher.NewServer([]pusher.AppConfig{a}, pusher.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Window == 0 {
		cfg.Window = 50 * time.Millisecond
	}
	d := New([]pusher.AppConfig{a}, cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d.Close(ctx)
	})
	return s.AppByID("app-id"), d
}

var allTypes = []string{"channel_occupied", "channel_vacated", "member_added", "member_removed", "client_event", "cache_miss", "subscription_count"}

// TestBatchSignedAndFiltered: moments close together leave in one POST,
// in order, signed as Pusher signs (hex HMAC-SHA256 of the body under the
// app secret) with the app key and the webhook's own headers; a channel
// the filter leaves out, or an event type not asked for, is not sent.
func TestBatchSignedAndFiltered(t *testing.T) {
	r := newReceiver(t)
	app, d := setup(t, r, pusher.Webhook{
		EventTypes: []string{"channel_occupied", "member_added", "client_event", "subscription_count"},
		Filter:     pusher.WebhookFilter{StartsWith: "presence-", EndsWith: "-room"},
		Headers:    map[string]string{"X-Custom": "yes"},
	}, Config{})
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "presence-a-room"})
	d.Observe(&pusher.Moment{App: app, Name: pusher.MemberAdded, Channel: "presence-a-room", User: "ann"})
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "presence-other"}) // filtered out
	d.Observe(&pusher.Moment{App: app, Name: pusher.CacheMiss, Channel: "presence-a-room"})      // not asked for
	d.Observe(&pusher.Moment{App: app, Name: pusher.ClientEventHook, Channel: "presence-a-room", User: "ann",
		Event: "client-typing", Data: []byte(`{"who":"ann"}`), SocketID: "1.2"})
	d.Observe(&pusher.Moment{App: app, Name: pusher.SubscriptionCount, Channel: "presence-a-room", Count: 3})
	waitFor(t, "one POST", func() bool { return len(r.requests()) == 1 })
	req := r.requests()[0]
	if got := req.header.Get("X-Pusher-Signature"); got != pusher.Sign("app-secret", string(req.body)) {
		t.Fatalf("signature %q", got)
	}
	if req.header.Get("X-Pusher-Key") != "app-key" || req.header.Get("X-Custom") != "yes" || req.header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", req.header)
	}
	if now := float64(time.Now().UnixMilli()); req.timeMs < now-60_000 || req.timeMs > now {
		t.Fatalf("time_ms %v", req.timeMs)
	}
	want := []map[string]any{
		{"name": "channel_occupied", "channel": "presence-a-room"},
		{"name": "member_added", "channel": "presence-a-room", "user_id": "ann"},
		{"name": "client_event", "channel": "presence-a-room", "user_id": "ann", "event": "client-typing", "data": `{"who":"ann"}`, "socket_id": "1.2"},
		{"name": "subscription_count", "channel": "presence-a-room", "subscription_count": float64(3)},
	}
	got, _ := json.Marshal(req.events)
	wantJSON, _ := json.Marshal(want)
	if string(got) != string(wantJSON) {
		t.Fatalf("events\n got %s\nwant %s", got, wantJSON)
	}
	// The receiver records a request before its answer reaches the
	// dispatcher, so the count of sent follows a moment later.
	waitFor(t, "the count of sent", func() bool { return d.Stats().Sent == 1 })
	if st := d.Stats(); st.Sent != 1 || st.Failed != 0 || st.Queue != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRetryUntilAnswered: a batch answered 500, then 503, is sent again
// after 1 s, then 2 s, and counted as sent once answered 200; each failed
// attempt is counted.
func TestRetryUntilAnswered(t *testing.T) {
	r := newReceiver(t, 500, 503)
	app, d := setup(t, r, pusher.Webhook{EventTypes: allTypes}, Config{})
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "a"})
	waitFor(t, "three attempts", func() bool { return len(r.requests()) == 3 })
	reqs := r.requests()
	if string(reqs[0].body) != string(reqs[2].body) {
		t.Fatal("a retry is not the same batch")
	}
	waitFor(t, "the count of sent", func() bool { return d.Stats().Sent == 1 })
	if st := d.Stats(); st.Failed != 2 {
		t.Fatalf("stats %+v, want 2 failed attempts", st)
	}
}

// TestRemovalWaits: channel_vacated and member_removed wait the delay,
// and a comeback within it drops both the removal and the comeback.
func TestRemovalWaits(t *testing.T) {
	r := newReceiver(t)
	app, d := setup(t, r, pusher.Webhook{EventTypes: allTypes}, Config{Delay: 300 * time.Millisecond})
	d.Observe(&pusher.Moment{App: app, Name: pusher.MemberRemoved, Channel: "presence-a", User: "ann"})
	d.Observe(&pusher.Moment{App: app, Name: pusher.MemberAdded, Channel: "presence-a", User: "ann"}) // a reload
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelVacated, Channel: "gone"})
	waitFor(t, "the vacated channel", func() bool { return len(r.requests()) == 1 })
	time.Sleep(500 * time.Millisecond) // past the delay: nothing else comes
	reqs := r.requests()
	if len(reqs) != 1 || len(reqs[0].events) != 1 || reqs[0].events[0]["name"] != "channel_vacated" || reqs[0].events[0]["channel"] != "gone" {
		t.Fatalf("sent %v", reqs)
	}
}

// TestQueueBound: events that do not fit in the queue are dropped and
// counted, and the caller never waits.
func TestQueueBound(t *testing.T) {
	r := newReceiver(t)
	r.hold = make(chan struct{})
	app, d := setup(t, r, pusher.Webhook{EventTypes: allTypes}, Config{Queue: 4, Window: time.Millisecond})
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			d.Observe(&pusher.Moment{App: app, Name: pusher.CacheMiss, Channel: "c"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Observe blocked on a full queue")
	}
	if st := d.Stats(); st.Dropped == 0 {
		t.Fatalf("stats %+v: nothing dropped", st)
	}
	close(r.hold)
}

// TestQueueBytesBound: a receiver that never answers, and client events
// of 10 KB each, 40 times what the queue may hold: what the queue holds
// (as it counts, and as the heap shows) stays within QueueBytes, the rest
// is dropped and counted, and the caller never waits.
func TestQueueBytesBound(t *testing.T) {
	r := newReceiver(t)
	r.hold = make(chan struct{})
	defer close(r.hold)
	const bound = 256 << 10
	app, d := setup(t, r, pusher.Webhook{EventTypes: allTypes}, Config{QueueBytes: bound, Window: time.Millisecond})
	data := []byte(`{"pad":"` + strings.Repeat("x", 10_000) + `"}`)
	const events = 1000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	var peak int64
	for i := 0; i < events; i++ {
		d.Observe(&pusher.Moment{App: app, Name: pusher.ClientEventHook, Channel: "private-chat", Event: "client-x",
			Data: data, SocketID: "1.2"})
		peak = max(peak, d.Stats().QueueBytes)
	}
	waitFor(t, "the first POST", func() bool { return len(r.requests()) > 0 || r.waiting() > 0 })
	grown := int64(heap()) - int64(before)
	st := d.Stats()
	// The batch in flight counts too, its body in place of its events:
	// what JSON adds to them is less than the slots they held, so the
	// body never takes the count past the bound.
	if peak > bound {
		t.Errorf("queue held %d bytes at its peak, bound %d", peak, bound)
	}
	if want := uint64(events - bound/10_000); st.Dropped < want {
		t.Errorf("stats %+v: dropped %d, want at least %d of %d events of 10 KB", st, st.Dropped, want, events)
	}
	if grown > 2*bound {
		t.Errorf("the heap grew by %d bytes with %d queued, bound %d", grown, st.QueueBytes, bound)
	}
}

// TestCloseWithinContext: with a receiver that never answers and a
// Timeout far away, Close returns once its context ends, abandoning the
// request in flight and counting what it drops.
func TestCloseWithinContext(t *testing.T) {
	r := newReceiver(t)
	r.hold = make(chan struct{})
	defer close(r.hold)
	app, d := setup(t, r, pusher.Webhook{EventTypes: allTypes}, Config{Timeout: time.Hour, Window: time.Millisecond})
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "a"})
	waitFor(t, "the POST in flight", func() bool { return r.waiting() > 0 })
	d.Observe(&pusher.Moment{App: app, Name: pusher.ChannelOccupied, Channel: "b"})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan struct{})
	go func() {
		d.Close(ctx)
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting 10 s after its context ended")
	}
	if st := d.Stats(); st.Dropped != 2 || st.Sent != 0 || st.Queue != 0 || st.QueueBytes != 0 {
		t.Fatalf("stats %+v, want both events dropped and nothing held", st)
	}
}

// TestEncryptedChannelsApart: moments of private-encrypted- channels
// among others, all within one window, reach a receiver that parses each
// request with the official Go SDK (pusher-http-go v5, the encryption
// master key configured), all in order. Every request without an
// encrypted channel's event is accepted; an encrypted channel's events
// never share a request with others; the one with data (which the SDK can
// decrypt) is alone and accepted. Those without data the SDK rejects
// wherever they are, as it rejects Pusher's own: alone, they take nothing
// else with them.
func TestEncryptedChannelsApart(t *testing.T) {
	masterKey := bytes.Repeat([]byte{7}, 32)
	sdk := &pushersdk.Client{AppID: "app-id", Key: "app-key", Secret: "app-secret",
		EncryptionMasterKeyBase64: base64.StdEncoding.EncodeToString(masterKey)}
	r := newReceiver(t)
	app, d := setup(t, r, pusher.Webhook{EventTypes: allTypes}, Config{Window: 300 * time.Millisecond})
	secret := encrypt(t, "private-encrypted-vault", []byte(`{"text":"at nine"}`), masterKey)
	moments := []pusher.Moment{
		{Name: pusher.ChannelOccupied, Channel: "news"},
		{Name: pusher.ChannelOccupied, Channel: "private-encrypted-vault"},
		{Name: pusher.SubscriptionCount, Channel: "private-encrypted-vault", Count: 1},
		{Name: pusher.ClientEventHook, Channel: "private-chat", Event: "client-typing", Data: []byte(`{"who":"ann"}`), SocketID: "1.2"},
		{Name: pusher.SubscriptionCount, Channel: "news", Count: 1},
		{Name: pusher.ClientEventHook, Channel: "private-encrypted-vault", Event: "client-secret", Data: secret, SocketID: "1.3"},
		{Name: pusher.ClientEventHook, Channel: "private-encrypted-vault", Event: "client-secret", Data: secret, SocketID: "1.4"},
		{Name: pusher.CacheMiss, Channel: "private-encrypted-cache-prices"},
		{Name: pusher.MemberAdded, Channel: "presence-room", User: "ann"},
		{Name: pusher.ChannelOccupied, Channel: "private-encrypted-other"},
	}
	for i := range moments {
		moments[i].App = app
		d.Observe(&moments[i])
	}
	total := func() (n int) {
		for _, req := range r.requests() {
			n += len(req.events)
		}
		return n
	}
	waitFor(t, "every event", func() bool { return total() == len(moments) })

	var order []string
	for i, req := range r.requests() {
		encrypted, withData := 0, 0
		for _, e := range req.events {
			order = append(order, e["name"].(string)+" "+e["channel"].(string))
			if strings.HasPrefix(e["channel"].(string), "private-encrypted-") {
				encrypted++
				if e["data"] != nil {
					withData++
				}
			}
		}
		hook, err := sdk.Webhook(req.header, req.body)
		switch {
		case encrypted == 0:
			if err != nil {
				t.Errorf("request %d rejected by the SDK: %v\n%s", i, err, req.body)
			} else if len(hook.Events) != len(req.events) {
				t.Errorf("request %d: the SDK read %d events of %d", i, len(hook.Events), len(req.events))
			}
		case encrypted != len(req.events):
			t.Errorf("request %d mixes an encrypted channel's events with others: %s", i, req.body)
		case withData > 0 && len(req.events) > 1:
			t.Errorf("request %d: an encrypted event with data is not alone: %s", i, req.body)
		case withData > 0:
			if err != nil || len(hook.Events) != 1 || hook.Events[0].Data != `{"text":"at nine"}` {
				t.Errorf("request %d: the SDK read %+v, %v", i, hook, err)
			}
		case err == nil:
			t.Errorf("request %d: the SDK accepted encrypted events without data; if it now does, they may share a request: %s", i, req.body)
		}
	}
	var want []string
	for _, m := range moments {
		want = append(want, m.Name+" "+m.Channel)
	}
	if strings.Join(order, "\n") != strings.Join(want, "\n") {
		t.Errorf("events in the order\n%s\nwant\n%s", strings.Join(order, "\n"), strings.Join(want, "\n"))
	}
	// Runs of one class share a request: news; the vault's two; the chat
	// and news; each secret alone; the encrypted cache miss; presence; the
	// other encrypted channel.
	if n := len(r.requests()); n != 8 {
		t.Errorf("%d requests, want 8", n)
	}
}

// encrypt seals data for channel as Pusher's end-to-end encryption does
// (the SDKs' encrypt): NaCl secretbox under SHA-256(channel + master key),
// as {"nonce", "ciphertext"} in base64, itself a JSON string as a client
// event's data.
func encrypt(t *testing.T, channel string, data, masterKey []byte) []byte {
	t.Helper()
	key := sha256.Sum256(append([]byte(channel), masterKey...))
	var nonce [24]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		t.Fatal(err)
	}
	sealed := secretbox.Seal(nil, data, &nonce, &key)
	msg, _ := json.Marshal(map[string]string{"nonce": base64.StdEncoding.EncodeToString(nonce[:]), "ciphertext": base64.StdEncoding.EncodeToString(sealed)})
	s, _ := json.Marshal(string(msg))
	return s
}
