package pusher

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestEventLimit(t *testing.T) {
	const rate = 50
	var l eventLimit
	now := time.Now().UnixNano()
	for i := range rate / 10 {
		if w := l.take(rate, 10, now); w != 0 {
			t.Fatalf("batch %d of a full second refused, wait %v", i, w)
		}
	}
	w := l.take(rate, 1, now)
	if w <= 0 || w > time.Second/rate {
		t.Fatalf("an empty bucket waits %v, want (0, %v]", w, time.Second/rate)
	}
	// 100 ms later, 5 events are back: a batch of 5 passes, of 6 does not.
	now += int64(100 * time.Millisecond)
	if w := l.take(rate, 6, now); w == 0 {
		t.Fatal("6 events passed where 5 were back")
	}
	if w := l.take(rate, 5, now); w != 0 {
		t.Fatalf("5 events refused, wait %v", w)
	}
	if got := l.refused.Load(); got != 7 {
		t.Fatalf("refused %d events, want 7", got)
	}
	// A batch larger than a second's worth passes on a full bucket, and
	// leaves it in debt.
	now += int64(10 * time.Second)
	if w := l.take(rate, 2*rate, now); w != 0 {
		t.Fatalf("a batch of two seconds' worth refused on a full bucket, wait %v", w)
	}
	if w := l.take(rate, 1, now+int64(time.Second)); w == 0 {
		t.Fatal("the debt was not kept")
	}
}

func TestPublishOverRate(t *testing.T) {
	s, app := newServer(t, 1, func(a *AppConfig) { a.MaxBackendEventsPerSecond = 3 })
	events := []Event{{Channels: []string{"a"}, Name: "e", Data: []byte("{}")}, {Channels: []string{"b"}, Name: "e", Data: []byte("{}")}}
	if err := s.Publish(context.Background(), app, events); err != nil {
		t.Fatal(err)
	}
	var re *RateError
	if err := s.Publish(context.Background(), app, events); !errors.As(err, &re) || re.RetryAfterSeconds() != "1" {
		t.Fatalf("Publish = %v, want a RateError with Retry-After 1", err)
	}
	if st := s.Stats(); st.Apps[0].EventsOverRate != 2 || st.Broadcasts != 2 {
		t.Fatalf("stats %+v: want 2 events over rate, 2 broadcast", st.Apps[0])
	}
}
