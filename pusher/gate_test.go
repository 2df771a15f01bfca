package pusher

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// heldLoops keeps every task until the test runs them, like event loops too
// busy to keep up; publishers may queue from any goroutine.
type heldLoops struct {
	n     int
	mu    sync.Mutex
	tasks []Task
}

func (l *heldLoops) Len() int { return l.n }

func (l *heldLoops) Execute(_ int, t Task) error {
	l.mu.Lock()
	l.tasks = append(l.tasks, t)
	l.mu.Unlock()
	return nil
}

// run runs the tasks queued so far, on the caller's goroutine.
func (l *heldLoops) run() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, t := range tasks {
		_ = t.Run(context.Background())
	}
}

// gateServer is a server on held loops with the publish bound set by opts,
// and subs subscribers of "news" on loop 0.
func gateServer(t *testing.T, opts Config, subs int) (*Server, *App, *heldLoops, []*client) {
	t.Helper()
	loops := &heldLoops{n: 1}
	s, err := NewServer([]AppConfig{DefaultApp("app-id", "app-key", "app-secret")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(loops); err != nil {
		t.Fatal(err)
	}
	clients := make([]*client, subs)
	for i := range clients {
		clients[i] = dial(t, s, 0)
		clients[i].subscribe("news")
	}
	return s, s.AppByID("app-id"), loops, clients
}

func newsEvent(n int) []Event {
	return []Event{{Channels: []string{"news"}, Name: "e", Data: []byte(strconv.Itoa(n))}}
}

// TestPublishWaitsForRoom: with the loops behind by the whole bound, a
// publisher waits; it is admitted as soon as the loops have run what was
// queued, and every event accepted reaches every subscriber, in order.
func TestPublishWaitsForRoom(t *testing.T) {
	s, app, loops, clients := gateServer(t, Config{PublishQueue: 4, PublishWait: time.Minute}, 2)
	ctx := context.Background()
	// Two events of two deliveries each fill the bound of four.
	for n := 0; n < 2; n++ {
		if err := s.Publish(ctx, app, newsEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	if q := s.PublishStats().Queued; q != 4 {
		t.Fatalf("queued %d deliveries, want 4", q)
	}
	done := make(chan error)
	go func() { done <- s.Publish(ctx, app, newsEvent(2)) }()
	// The third waits: it is still waiting after the loops had every
	// chance to be admitted it if they were going to.
	for s.PublishStats().Waits == 0 {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("admitted over the bound: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	loops.run()
	if err := <-done; err != nil {
		t.Fatalf("after the loops ran: %v", err)
	}
	loops.run()
	for _, c := range clients {
		for n := 0; n < 3; n++ {
			if m := c.mustEvent("e"); m["data"] != strconv.Itoa(n) {
				t.Fatalf("event %d: %v", n, m)
			}
		}
		c.none()
	}
	if st := s.PublishStats(); st.Queued != 0 || st.Waits != 1 || st.Rejections != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestPublishBusyPastWait: a publisher that waits longer than PublishWait
// gets ErrBusy, is counted, and its event is not sent; a publisher that
// finds PublishWaiters waiting already gets ErrBusy at once.
func TestPublishBusyPastWait(t *testing.T) {
	s, app, loops, clients := gateServer(t, Config{PublishQueue: 1, PublishWait: 20 * time.Millisecond, PublishWaiters: 1}, 1)
	ctx := context.Background()
	// The second event may wait behind the first one, its size; the third
	// finds the queue full.
	for n := 0; n < 2; n++ {
		if err := s.Publish(ctx, app, newsEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := s.Publish(ctx, app, newsEvent(2)); !errors.Is(err, ErrBusy) {
		t.Fatalf("past the wait: %v, want ErrBusy", err)
	}
	if time.Since(start) < 20*time.Millisecond {
		t.Fatal("refused before PublishWait")
	}

	// One waiter fills PublishWaiters; the next is refused without waiting.
	waiting := make(chan error)
	go func() {
		waiting <- s.Publish(ctx, app, newsEvent(3))
	}()
	for s.PublishStats().Waits < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Publish(ctx, app, newsEvent(4)); !errors.Is(err, ErrBusy) {
		t.Fatalf("over the waiters' cap: %v, want ErrBusy", err)
	}
	if err := <-waiting; !errors.Is(err, ErrBusy) { // the loops never ran
		t.Fatalf("waiter: %v, want ErrBusy", err)
	}

	loops.run()
	for n := 0; n < 2; n++ {
		if m := clients[0].mustEvent("e"); m["data"] != strconv.Itoa(n) {
			t.Fatalf("%v", m)
		}
	}
	clients[0].none() // nothing refused was sent
	if st := s.PublishStats(); st.Rejections != 3 {
		t.Fatalf("stats %+v, want 3 rejections", st)
	}
}

// TestPublishBigBroadcast: a broadcast to more subscribers than the bound
// is admitted while the queue is below its own size, so that it can wait
// behind one predecessor, and not behind two.
func TestPublishBigBroadcast(t *testing.T) {
	s, app, loops, _ := gateServer(t, Config{PublishQueue: 2, PublishWait: 20 * time.Millisecond}, 5)
	ctx := context.Background()
	for n := 0; n < 2; n++ {
		if err := s.Publish(ctx, app, newsEvent(n)); err != nil {
			t.Fatalf("event %d of 5 deliveries: %v", n, err)
		}
	}
	if err := s.Publish(ctx, app, newsEvent(2)); !errors.Is(err, ErrBusy) {
		t.Fatalf("third: %v, want ErrBusy", err)
	}
	loops.run()
	if err := s.Publish(ctx, app, newsEvent(3)); err != nil {
		t.Fatal(err)
	}
}

// TestPublishToNobodyHere: with the queue full, a broadcast to a channel
// with no subscribers here costs the loops nothing and is admitted at once.
func TestPublishToNobodyHere(t *testing.T) {
	s, app, _, _ := gateServer(t, Config{PublishQueue: 1, PublishWait: time.Minute}, 1)
	ctx := context.Background()
	for n := 0; n < 2; n++ { // the second waits behind the first, its size
		if err := s.Publish(ctx, app, newsEvent(n)); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- s.Publish(ctx, app, []Event{{Channels: []string{"empty"}, Name: "e", Data: []byte("x")}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a broadcast to nobody waited for the loops")
	}
	if st := s.PublishStats(); st.Waits != 0 {
		t.Fatalf("stats %+v: it waited", st)
	}
}

// TestClientEventsCountTowardTheBound: a client event fanned out to other
// loops is never refused, and delays publishers like any other work.
func TestClientEventsCountTowardTheBound(t *testing.T) {
	loops := &heldLoops{n: 2}
	s, err := NewServer([]AppConfig{DefaultApp("app-id", "app-key", "app-secret")}, Config{PublishQueue: 1, PublishWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Attach(loops); err != nil {
		t.Fatal(err)
	}
	a, b, c := dial(t, s, 0), dial(t, s, 1), dial(t, s, 1)
	for _, x := range []*client{a, b, c} {
		x.subscribe("private-chat")
	}
	a.subscribe("news") // the publish below costs 1 delivery
	a.send(`{"event":"client-typing","channel":"private-chat","data":{}}`)
	if q := s.PublishStats().Queued; q != 2 {
		t.Fatalf("queued %d", q)
	}
	if err := s.Publish(context.Background(), s.AppByID("app-id"), newsEvent(0)); !errors.Is(err, ErrBusy) {
		t.Fatalf("publish behind a queued client event: %v, want ErrBusy", err)
	}
	loops.run()
	b.mustEvent("client-typing")
	c.mustEvent("client-typing")
}

// TestRemoteBroadcastOverload: a broadcast from another node is never
// refused, but a node already holding overloadFactor bounds of work
// closes the subscribers of its channels with 4100 rather than queue
// without end or skip it silently.
func TestRemoteBroadcastOverload(t *testing.T) {
	s, app, loops, clients := gateServer(t, Config{PublishQueue: 1, PublishWait: 20 * time.Millisecond}, 2)
	b := &Broadcast{Origin: "elsewhere", App: app.ID, Channels: []string{"news"}, Event: "e", Data: []byte("1")}
	s.Deliver(b) // queued: 2 deliveries
	if q := s.PublishStats().Queued; q != 2 {
		t.Fatalf("queued %d", q)
	}
	for s.PublishStats().Queued <= overloadFactor*1 {
		s.Deliver(b)
	}
	s.Deliver(b) // over the line: refused by closing its subscribers
	loops.run()
	for _, c := range clients {
		if c.conn.closeCode != CodeOverCapacity {
			t.Fatalf("subscriber closed with %d, want 4100", c.conn.closeCode)
		}
	}
	if s.overloadCloses.Load() != 2 {
		t.Fatalf("counted %d overload closes", s.overloadCloses.Load())
	}

	// A cache channel keeps an event it could not deliver, as the other
	// nodes' do: a subscriber who reconnects is replayed it.
	for s.PublishStats().Queued <= overloadFactor*1 {
		s.Deliver(b)
	}
	s.Deliver(&Broadcast{Origin: "elsewhere", App: app.ID, Channels: []string{"cache-news"}, Event: "headline", Data: []byte("kept")})
	loops.run()
	late := dial(t, s, 0)
	late.subscribe("cache-news")
	if m := late.mustEvent("headline"); m["data"] != "kept" {
		t.Fatalf("replay %v", m)
	}
}

// TestRemoteBroadcastOverloadBytes: many large events queued, few
// deliveries each, are bounded by the memory their frames hold too.
func TestRemoteBroadcastOverloadBytes(t *testing.T) {
	s, app, loops, clients := gateServer(t, Config{PublishQueue: 1 << 20, PublishWait: 20 * time.Millisecond}, 2)
	data := []byte(`"` + strings.Repeat("x", 10000) + `"`)
	b := &Broadcast{Origin: "elsewhere", App: app.ID, Channels: []string{"news"}, Event: "e", Data: data}
	for s.gate.pendingBytes() <= overloadBytes {
		s.Deliver(b)
		if s.overloadCloses.Load() != 0 {
			t.Fatalf("closed with %d bytes queued", s.gate.pendingBytes())
		}
	}
	if q := s.PublishStats().Queued; q > overloadFactor*s.gate.limit {
		t.Fatalf("the deliveries' bound came first: %d queued", q)
	}
	s.Deliver(b)
	loops.run()
	for _, c := range clients {
		if c.conn.closeCode != CodeOverCapacity {
			t.Fatalf("subscriber closed with %d, want 4100", c.conn.closeCode)
		}
	}
	if s.overloadCloses.Load() != 2 {
		t.Fatalf("counted %d overload closes", s.overloadCloses.Load())
	}
	if q, n := s.PublishStats().Queued, s.gate.pendingBytes(); q != 0 || n != 0 {
		t.Fatalf("after the loops ran: %d deliveries, %d bytes still counted", q, n)
	}
}
