package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/revurb/revurb/api"
	"github.com/revurb/revurb/loop"
	"github.com/revurb/revurb/pusher"
)

// blockLoop is a task that holds an event loop until release is closed:
// the loop stands for one saturated by WebSocket traffic.
type blockLoop struct {
	started chan struct{}
	release chan struct{}
}

func (b blockLoop) Run(context.Context) error {
	close(b.started)
	<-b.release
	return nil
}

// inProcess is the server wired in this process, as cmd wires it, so that
// a test can hold its event loops.
type inProcess struct {
	*server
	p   *pusher.Server
	eng *loop.Engine
}

func startInProcess(t *testing.T, opts pusher.Config) *inProcess {
	t.Helper()
	p, err := pusher.NewServer([]pusher.AppConfig{pusher.DefaultApp("app-id", "app-key", "app-secret")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &server{host: "127.0.0.1", wsPort: freePort(t), appID: "app-id", appKey: "app-key", secret: "app-secret"}
	eng, err := loop.New(p, loop.Config{Addr: srv.wsAddr(), Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Run() }()
	<-eng.Ready()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.apiPort = ln.Addr().(*net.TCPAddr).Port
	httpAPI := api.New(p, api.Config{})
	go func() { _ = httpAPI.Serve(ln) }()
	t.Cleanup(func() { _ = httpAPI.Shutdown(context.Background()) })
	return &inProcess{server: srv, p: p, eng: eng}
}

// subscribers dials two subscribers of channel, on whichever loops the
// kernel hands them to.
func (s *inProcess) subscribers(t *testing.T, channel string) []*wsConn {
	t.Helper()
	var clients []*wsConn
	for range 2 {
		c := dialWS(t, s.server, "/app/app-key?protocol=7")
		c.expectEstablished()
		c.sendText(`{"event":"pusher:subscribe","data":{"channel":"` + channel + `"}}`)
		if m := c.readMessage(); m["event"] != "pusher_internal:subscription_succeeded" {
			t.Fatalf("subscribe: %v", m)
		}
		clients = append(clients, c)
	}
	return clients
}

// hold blocks every event loop that has connections until the returned
// func is called (the test's cleanup calls it too).
func (s *inProcess) hold(t *testing.T) (release func()) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(release)
	for i := 0; i < s.eng.Active(); i++ {
		b := blockLoop{started: make(chan struct{}), release: ch}
		if err := s.eng.Execute(i, b); err != nil {
			t.Fatal(err)
		}
		<-b.started
	}
	return release
}

func trigger(t *testing.T, srv *server, channel string, n int) (int, string) {
	t.Helper()
	return signedPost(t, srv, "/apps/app-id/events",
		`{"name":"e","channel":"`+channel+`","data":"{\"n\":`+strconv.Itoa(n)+`}"}`)
}

// TestAPIAnswersWhileLoopsAreBusy holds every event loop and checks that
// the HTTP API goes on answering — health, queries and triggers — because
// it runs on its own goroutines: triggers are admitted at once while the
// work queued for the loops is below the bound, and once it is full they
// wait for room while every other route still answers. When the loops are
// free again each waiting trigger is answered 200 and every event accepted
// arrives, once.
func TestAPIAnswersWhileLoopsAreBusy(t *testing.T) {
	// A bound of 8 deliveries: 4 events to the 2 subscribers.
	s := startInProcess(t, pusher.Config{PublishQueue: 8, PublishWait: time.Minute})
	clients := s.subscribers(t, "busy")
	release := s.hold(t)

	for n := 0; n < 4; n++ {
		if code, body := trigger(t, s.server, "busy", n); code != 200 {
			t.Fatalf("trigger %d while the loops are busy: %d %s", n, code, body)
		}
	}
	const waiting = 5
	codes := make(chan int, waiting)
	for n := 4; n < 4+waiting; n++ {
		go func() {
			code, _ := trigger(t, s.server, "busy", n)
			codes <- code
		}()
	}
	for s.p.PublishStats().Waits < waiting {
		time.Sleep(time.Millisecond)
	}
	res, err := http.Get("http://" + s.apiAddr() + "/up")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /up while triggers wait: %v %v", res, err)
	}
	res.Body.Close()
	if code, body := signedGet(t, s.server, "/apps/app-id/channels/busy", "info=subscription_count"); code != 200 || !strings.Contains(body, `"subscription_count":2`) {
		t.Fatalf("channel query while triggers wait: %d %s", code, body)
	}
	select {
	case code := <-codes:
		t.Fatalf("a trigger over the bound was answered %d while the loops were held", code)
	default:
	}

	release()
	for range waiting {
		if code := <-codes; code != 200 {
			t.Fatalf("waiting trigger answered %d once the loops were free", code)
		}
	}
	for _, c := range clients {
		seen := map[float64]bool{}
		for range 4 + waiting {
			m := c.readMessage()
			var d map[string]float64
			if m["event"] != "e" || json.Unmarshal([]byte(m["data"].(string)), &d) != nil || seen[d["n"]] {
				t.Fatalf("event %v", m)
			}
			seen[d["n"]] = true
		}
	}
	// The last fan-out's work is counted done once its task returns, which
	// may be a moment after its frames reached the sockets.
	waitFor(t, "the publish queue to empty", func() bool { return s.p.PublishStats().Queued == 0 })
	if st := s.p.PublishStats(); st.Rejections != 0 {
		t.Fatalf("publish stats %+v", st)
	}
}

// TestTriggerBusyPastWait: a trigger that waits longer than the bound's
// wait for the loops is answered 503 with a JSON error and Retry-After,
// and its event is never sent.
func TestTriggerBusyPastWait(t *testing.T) {
	s := startInProcess(t, pusher.Config{PublishQueue: 2, PublishWait: 100 * time.Millisecond})
	clients := s.subscribers(t, "busy")
	release := s.hold(t)
	if code, body := trigger(t, s.server, "busy", 0); code != 200 {
		t.Fatalf("first trigger: %d %s", code, body)
	}
	if code, _ := trigger(t, s.server, "busy", 1); code != 200 { // waits behind one of its size
		t.Fatalf("second trigger: %d", code)
	}
	res, body := signedPostResponse(t, s.server, "/apps/app-id/events", `{"name":"e","channel":"busy","data":"{\"n\":2}"}`)
	if res.StatusCode != 503 || res.Header.Get("Retry-After") != "1" || !strings.HasPrefix(body, `{"error":`) {
		t.Fatalf("trigger past the wait: %d %v %s", res.StatusCode, res.Header, body)
	}
	release()
	for _, c := range clients {
		for n := 0; n < 2; n++ {
			m := c.readMessage()
			if d, _ := m["data"].(string); m["event"] != "e" || d != `{"n":`+strconv.Itoa(n)+`}` {
				t.Fatalf("event %d: %v", n, m)
			}
		}
		c.expectAlive() // and nothing before the pong: the refused event was never sent
	}
	if st := s.p.PublishStats(); st.Rejections != 1 {
		t.Fatalf("publish stats %+v", st)
	}
}
