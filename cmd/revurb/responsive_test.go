package main

import (
	"context"
	"net"
	"net/http"
	"strings"
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

// TestAPIAnswersWhileLoopsAreBusy wires the server in process, holds every
// event loop, and checks that the HTTP API still answers — health, queries
// and triggers — because it runs on its own goroutines and a trigger only
// queues work for the loops. The event arrives once the loops are free.
func TestAPIAnswersWhileLoopsAreBusy(t *testing.T) {
	apps := []pusher.AppConfig{pusher.DefaultApp("app-id", "app-key", "app-secret")}
	p, err := pusher.NewServer(apps, pusher.Options{})
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
	httpAPI := api.New(p, api.Options{})
	go func() { _ = httpAPI.Serve(ln) }()
	t.Cleanup(func() { _ = httpAPI.Shutdown() })

	// One subscriber on each loop (round robin).
	clients := []*wsConn{dialWS(t, srv, "/app/app-key?protocol=7"), dialWS(t, srv, "/app/app-key?protocol=7")}
	for _, c := range clients {
		c.expectEstablished()
		c.sendText(`{"event":"pusher:subscribe","data":{"channel":"busy"}}`)
		if m := c.readMessage(); m["event"] != "pusher_internal:subscription_succeeded" {
			t.Fatalf("subscribe: %v", m)
		}
	}

	release := make(chan struct{})
	for i := 0; i < eng.Len(); i++ {
		b := blockLoop{started: make(chan struct{}), release: release}
		if err := eng.Execute(i, b); err != nil {
			t.Fatal(err)
		}
		<-b.started
	}
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()

	res, err := http.Get("http://" + srv.apiAddr() + "/up")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /up while the loops are busy: %v %v", res, err)
	}
	res.Body.Close()
	for i := 0; i < 20; i++ {
		if code, body := signedPost(t, srv, "/apps/app-id/events", `{"name":"e","channel":"busy","data":"{\"n\":1}"}`); code != 200 {
			t.Fatalf("trigger while the loops are busy: %d %s", code, body)
		}
	}
	close(release)
	released = true
	for _, c := range clients {
		for i := 0; i < 20; i++ {
			m := c.readMessage()
			if d, _ := m["data"].(string); m["event"] != "e" || !strings.Contains(d, `"n":1`) {
				t.Fatalf("event %v", m)
			}
		}
	}
}
