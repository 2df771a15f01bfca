package main

// End-to-end tests of the webhooks' bounds: a receiver that never
// answers, against the real binary.

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
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
