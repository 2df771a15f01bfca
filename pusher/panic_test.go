package pusher

import (
	"context"
	"testing"
	"time"
)

// queuedLoops queues every task and runs them when told, each under a
// recover, as package loop does: a task that panics is logged there and
// the loop goes on.
type queuedLoops struct {
	n     int
	tasks []Task
}

func (l *queuedLoops) Len() int { return l.n }

func (l *queuedLoops) Execute(_ int, t Task) error { l.tasks = append(l.tasks, t); return nil }

// run runs the queued tasks and returns how many panicked.
func (l *queuedLoops) run() (panicked int) {
	for len(l.tasks) > 0 {
		t := l.tasks[0]
		l.tasks = l.tasks[1:]
		func() {
			defer func() {
				if recover() != nil {
					panicked++
				}
			}()
			_ = t.Run(context.Background())
		}()
	}
	return panicked
}

// panicWriter is a connection whose writes hit a bug once armed.
type panicWriter struct {
	recConn
	armed bool
}

func (p *panicWriter) Write(b []byte) {
	if p.armed {
		panic("a bug in a write")
	}
	p.recConn.Write(b)
}

// TestPanicInFanout: a subscriber's write panics during a fan-out. The
// loop recovers it; after that, every count is consistent: a close on that
// loop runs at once, the publish bound is back to zero, and triggers are
// still admitted.
func TestPanicInFanout(t *testing.T) {
	app := DefaultApp("app-id", "app-key", "app-secret")
	s, err := NewServer([]AppConfig{app}, Config{PublishQueue: 1, PublishWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	loops := &queuedLoops{n: 2}
	if err := s.Attach(loops); err != nil {
		t.Fatal(err)
	}
	a := s.AppByID("app-id")
	open := func(c Conn) *Session {
		sess := &Session{}
		if !s.Open(sess, c, 1, "app-key", "7", "") {
			t.Fatal("open refused")
		}
		s.Handle(sess, []byte(`{"event":"pusher:subscribe","data":{"channel":"news"}}`))
		return sess
	}
	pw := &panicWriter{}
	bad := open(pw)
	other := open(&recConn{})
	loops.run()
	pw.armed = true

	if err := s.Publish(context.Background(), a, []Event{{Channels: []string{"news"}, Name: "e", Data: []byte(`1`)}}); err != nil {
		t.Fatal(err)
	}
	if n := loops.run(); n != 1 {
		t.Fatalf("%d tasks panicked, want the fan-out", n)
	}
	if q := s.PublishStats().Queued; q != 0 {
		t.Fatalf("the publish bound still counts %d deliveries after the panic", q)
	}
	// A close on that loop runs at once, not after a bracket that never ends.
	s.Close(other)
	if got := s.Channel(a, "news").SubscriptionCount; got != 1 {
		t.Fatalf("after closing one of two subscribers: %d subscriptions", got)
	}
	s.Close(bad)
	if s.Channel(a, "news").Occupied {
		t.Fatal("the channel is still occupied after both closed")
	}
	// Triggers are still admitted, and delivered.
	for i := range 3 {
		c := &recConn{}
		open(c)
		if err := s.Publish(context.Background(), a, []Event{{Channels: []string{"news"}, Name: "e", Data: []byte(`2`)}}); err != nil {
			t.Fatalf("trigger %d after the panic: %v", i, err)
		}
		loops.run()
	}
}
