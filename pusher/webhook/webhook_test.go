package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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
			<-r.hold
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
	s, err := pusher.NewServer([]pusher.AppConfig{a}, pusher.Options{})
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
