package redisbroker

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/revurb/revurb/pusher"
)

// TestResyncLockOrder: the maintenance, choosing the resyncs due, never
// holds maint.mu while it waits for cmu, which the bus holds when it
// notes a hello or asks for a resync: the two never wait for each other.
func TestResyncLockOrder(t *testing.T) {
	b, err := New(Config{URL: "redis://127.0.0.1:1", Apps: []pusher.AppConfig{pusher.DefaultApp("app-id", "app-key", "app-secret")},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a := b.apps[0]
	b.askResync(a)
	b.cmu.Lock() // as the bus does, handing a message to the cluster
	ran := make(chan struct{})
	go func() { b.runResync(); close(ran) }()
	time.Sleep(100 * time.Millisecond) // the maintenance is waiting for cmu
	owed := make(chan struct{})
	go func() { b.maint.owe(a.id); close(owed) }()
	select {
	case <-owed:
	case <-time.After(5 * time.Second):
		t.Error("the bus, holding cmu, waited for maint.mu, held by the maintenance waiting for cmu")
	}
	b.cmu.Unlock()
	b.cancel() // no worker: the resync queued is given up
	<-ran
	<-owed
}
