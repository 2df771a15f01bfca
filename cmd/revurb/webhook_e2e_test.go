package main

// End-to-end tests of the webhooks' bounds: a receiver that never
// answers, against the real binary.

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pushersdk "github.com/pusher/pusher-http-go/v5"
)

// stuckReceiver is a webhook endpoint that never answers: every request
// waits until the test ends.
type stuckReceiver struct {
	srv  *httptest.Server
	seen atomic.Int32 // requests begun
}

func newStuckReceiver(t *testing.T) *stuckReceiver {
	r := &stuckReceiver{}
	release := make(chan struct{})
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.seen.Add(1)
		select {
		case <-release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(r.srv.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handlers
	return r
}

// rss is the resident memory of process pid, in bytes (Linux).
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc/pid/status")
	return 0
}

// metric is the value of an unlabelled counter or gauge at /metrics.
func metric(t *testing.T, srv *server, family string) float64 {
	t.Helper()
	f := scrape(t, "http://"+srv.apiAddr()+"/metrics")[family]
	if f == nil || len(f.Metric) != 1 {
		t.Fatalf("family %s: %v", family, f)
	}
	if c := f.Metric[0].Counter; c != nil {
		return c.GetValue()
	}
	return f.Metric[0].Gauge.GetValue()
}

// TestWebhookQueueBytes: 5,001 client events of 10 KB for a receiver
// that never answers. The queue holds what webhook_queue_bytes allows, the
// rest is dropped and counted (revurb_webhooks_dropped_total), the process
// grows by a few MiB, not by what it was sent (bounded only in events, it
// grew by 205 MiB for 10,001 such events; under -race, by 495 MiB), and the
// sender's connection is served throughout.
func TestWebhookQueueBytes(t *testing.T) {
	t.Parallel()
	r := newStuckReceiver(t)
	const bound = 1 << 20
	cfg := writeConfig(t, "shutdown_grace: 1s\nwebhook_queue_bytes: "+strconv.Itoa(bound),
		", client_event_rate: 100000, max_messages_per_second: 0, webhooks: [{url: \""+r.srv.URL+"/hook\", event_types: [client_event]}]")
	srv := startServer(t, serverConfig{Args: []string{"--config", cfg}})
	pid := srv.cmd.Process.Pid

	w, id := joinApp(t, srv, defaultRawApp)
	w.subscribePrivate(defaultRawApp, id, "private-flood")
	before := rss(t, pid)
	const events, size = 5_001, 10_000
	msg := []byte(`{"event":"client-x","channel":"private-flood","data":{"pad":"` + strings.Repeat("x", size-10) + `"}}`)
	var buf []byte
	for i := 0; i < events; i++ {
		buf = appendFrame(buf, true, opText, msg, true)
		if len(buf) > 1<<20 || i == events-1 {
			_ = w.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := w.c.Write(buf); err != nil {
				t.Fatalf("write after %d events: %v", i, err)
			}
			buf = buf[:0]
		}
	}
	// Messages are handled in order: the pong comes after every event.
	w.send(opText, `{"event":"pusher:ping","data":{}}`)
	if m := w.readMessage(); m["event"] != "pusher:pong" {
		t.Fatalf("after the flood: %v, want pusher:pong", m)
	}
	grown := rss(t, pid) - before
	dropped := metric(t, srv, "revurb_webhooks_dropped_total")
	depth := metric(t, srv, "revurb_webhook_queue_depth")
	if r.seen.Load() == 0 {
		t.Error("the receiver got no request")
	}
	// What may wait: bound / (10 KB + its slot), and one batch (at most
	// 100 events, or 1 MiB) in flight.
	if most := float64(bound / size); depth > most {
		t.Errorf("%v events queued, at most %v fit in %d bytes", depth, most, bound)
	}
	if least := float64(events - bound/size - 100); dropped < least {
		t.Errorf("%v events dropped, want at least %v of %d", dropped, least, events)
	}
	// A generous ceiling: the race detector's shadow memory and the
	// garbage collector's headroom (GOGC) come on top of the bound. The
	// queue unbounded in bytes grew by 205 MiB here.
	if grown > 64<<20 {
		t.Errorf("the process grew by %d MiB", grown>>20)
	}
	t.Logf("grew by %d KiB; %v events dropped, %v queued", grown>>10, dropped, depth)
	w.expectAlive()
}

// TestWebhookShutdownWithinGrace: with webhooks pending for a receiver
// that never answers, SIGTERM stops the process within shutdown_grace as
// a whole — the drain and the webhooks share the one deadline.
func TestWebhookShutdownWithinGrace(t *testing.T) {
	t.Parallel()
	r := newStuckReceiver(t)
	const grace = 3 * time.Second
	cfg := writeConfig(t, "shutdown_grace: 3s\nwebhook_delay: 100ms",
		", webhooks: [{url: \""+r.srv.URL+"/hook\", event_types: "+allHooks+"}]")
	// Under -race, the race runtime sleeps a second at exit
	// (atexit_sleep_ms) for other threads' reports: not the server's time.
	srv := startServer(t, serverConfig{Args: []string{"--config", cfg}, Env: []string{"GORACE=halt_on_error=1 atexit_sleep_ms=0"}})
	w, _ := joinApp(t, srv, defaultRawApp)
	w.subscribe("news", "", "")
	w.wantSubscribed("news")
	waitFor(t, "the first webhook request", func() bool { return r.seen.Load() > 0 })
	// More waits behind the request in flight: the drain's channel_vacated.
	start := time.Now()
	if err := srv.terminate(grace + time.Second); err != nil {
		t.Fatalf("SIGTERM with webhooks pending, shutdown_grace %v: %v", grace, err)
	}
	t.Logf("exited %v after SIGTERM", time.Since(start).Round(10*time.Millisecond))
	if out := srv.out.String(); !strings.Contains(out, "webhook: ") {
		t.Errorf("nothing logged of the webhooks left unsent:\n%s", out)
	}
}

// sdkReceiver is an app's webhook endpoint built on the official Go SDK
// (pusher-http-go v5): it parses each request with Client.Webhook, with
// the encryption master key configured, and keeps what was sent and the
// SDK's verdict.
type sdkReceiver struct {
	mu   sync.Mutex
	sdk  *pushersdk.Client // Webhook caches the parsed key: used under mu
	reqs []sdkRequest
	srv  *httptest.Server
}

type sdkRequest struct {
	events []map[string]any // as sent
	err    error            // the SDK's
	read   int              // events the SDK returned
}

func newSDKReceiver(t *testing.T, masterKey string) *sdkReceiver {
	h := &sdkReceiver{sdk: &pushersdk.Client{AppID: "app-id", Key: "app-key", Secret: "app-secret", EncryptionMasterKeyBase64: masterKey}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p struct {
			Events []map[string]any `json:"events"`
		}
		_ = json.Unmarshal(body, &p)
		h.mu.Lock()
		defer h.mu.Unlock()
		hook, err := h.sdk.Webhook(r.Header, body)
		req := sdkRequest{events: p.Events, err: err}
		if hook != nil {
			req.read = len(hook.Events)
		}
		h.reqs = append(h.reqs, req)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// count is how many events named name on channel were sent.
func (h *sdkReceiver) count(name, channel string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.reqs {
		for _, e := range r.events {
			if e["name"] == name && e["channel"] == channel {
				n++
			}
		}
	}
	return n
}

// TestWebhooksEncryptedChannels: pusher-js clients on public, cache,
// private and private-encrypted channels, all subscribed at once, a
// whisper and an encrypted trigger; the app's webhooks go to a receiver
// that parses every request with the official Go SDK. No request that
// holds events of other channels is rejected: the encrypted channels'
// events, which carry no data and which that SDK rejects wherever they
// are (as it rejects Pusher's own), travel in requests of their own. And
// every event arrives.
func TestWebhooksEncryptedChannels(t *testing.T) {
	t.Parallel()
	needNode(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	masterKey := base64.StdEncoding.EncodeToString(key)
	h := newSDKReceiver(t, masterKey)
	cfg := writeConfig(t, "webhook_delay: 300ms", ", webhooks: [{url: \""+h.srv.URL+"/hook\", event_types: "+allHooks+"}]")
	srv := startServer(t, serverConfig{Args: []string{"--config", cfg}})
	env := srv.nodeEnv()
	env["MASTER_KEY"] = masterKey
	obs := runNode(t, "webhooks.mjs", env)
	for _, c := range []string{"a", "b"} {
		wantJSON(t, "connection errors of "+c, at(t, obs, c, "errors"), `[]`)
	}
	wantJSON(t, "the encrypted trigger", at(t, obs, "trigger"), `{"status":200,"body":"{}","json":{}}`)

	channels := []string{"news", "cache-news", "private-chat", "private-encrypted-vault", "private-encrypted-cache-prices"}
	waitFor(t, "every channel vacated", func() bool {
		for _, ch := range channels {
			if h.count("channel_vacated", ch) == 0 {
				return false
			}
		}
		return true
	})
	for _, want := range []struct {
		name, channel string
		n             int
	}{
		{"channel_occupied", "news", 1}, {"channel_occupied", "cache-news", 1}, {"channel_occupied", "private-chat", 1},
		{"channel_occupied", "private-encrypted-vault", 1}, {"channel_occupied", "private-encrypted-cache-prices", 1},
		{"channel_vacated", "news", 1}, {"channel_vacated", "cache-news", 1}, {"channel_vacated", "private-chat", 1},
		{"channel_vacated", "private-encrypted-vault", 1}, {"channel_vacated", "private-encrypted-cache-prices", 1},
		{"cache_miss", "cache-news", 1}, {"cache_miss", "private-encrypted-cache-prices", 1},
		{"client_event", "private-chat", 1},
	} {
		if got := h.count(want.name, want.channel); got != want.n {
			t.Errorf("%s on %s: %d, want %d", want.name, want.channel, got, want.n)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var plain, encrypted int
	for i, r := range h.reqs {
		enc := 0
		for _, e := range r.events {
			if ch, _ := e["channel"].(string); strings.HasPrefix(ch, "private-encrypted-") {
				enc++
			}
			if e["name"] == "client_event" && (e["data"] != `{"who":"a"}` || e["event"] != "client-typing") {
				t.Errorf("client_event %v", e)
			}
		}
		switch {
		case enc == 0:
			plain++
			if r.err != nil || r.read != len(r.events) {
				t.Errorf("request %d %v: the SDK read %d events, error %v", i, r.events, r.read, r.err)
			}
		case enc != len(r.events):
			t.Errorf("request %d mixes an encrypted channel's events with others: %v", i, r.events)
		default:
			encrypted++
		}
	}
	if plain == 0 || encrypted == 0 {
		t.Errorf("%d requests without encrypted channels' events and %d with", plain, encrypted)
	}
}
