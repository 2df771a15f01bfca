package pusher

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// An app's cap on the events its backend triggers through the HTTP API,
// max_backend_events_per_second (Soketi's name): a token bucket per app,
// so that one app's flood leaves the others untouched.

// RateError is what Publish returns for a trigger over its app's
// max_backend_events_per_second: nothing was sent, and the backend may try
// again after RetryAfter (the HTTP API answers 429 with Retry-After).
type RateError struct {
	RetryAfter time.Duration
}

func (e *RateError) Error() string {
	return "pusher: over max_backend_events_per_second: retry after " + e.RetryAfter.String()
}

// eventLimit is a token bucket holding up to one second of the app's
// rate, refilled as time passes. A trigger of n events takes n tokens if
// the bucket holds them; one of more events than a second's worth is let
// through when the bucket is full, and leaves it in debt, so that the
// rate holds on average.
type eventLimit struct {
	mu      sync.Mutex
	tokens  float64
	last    int64 // unix nanoseconds of the last refill; 0: full
	refused atomic.Uint64
}

// take asks for n events at rate per second at now (unix nanoseconds);
// it returns 0, or how long to wait before asking again.
func (l *eventLimit) take(rate, n int, now int64) time.Duration {
	r := float64(rate)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == 0 {
		l.tokens = r
	} else {
		l.tokens = math.Min(r, l.tokens+r*float64(now-l.last)/1e9)
	}
	l.last = now
	need := math.Min(float64(n), r)
	if l.tokens >= need {
		l.tokens -= float64(n)
		return 0
	}
	l.refused.Add(uint64(n))
	return time.Duration((need - l.tokens) / r * 1e9)
}

// give back n events taken for a trigger that was not sent after all.
func (l *eventLimit) give(rate, n int) {
	l.mu.Lock()
	l.tokens = math.Min(float64(rate), l.tokens+float64(n))
	l.mu.Unlock()
}

// admit charges events to a's max_backend_events_per_second: nil, or
// the *RateError to return.
func (a *App) admit(n int) error {
	rate := a.MaxBackendEventsPerSecond
	if rate <= 0 {
		return nil
	}
	if wait := a.limit.take(rate, n, time.Now().UnixNano()); wait > 0 {
		return &RateError{RetryAfter: wait}
	}
	return nil
}

// RetryAfterSeconds is e's wait in whole seconds, at least 1, as HTTP's
// Retry-After says it.
func (e *RateError) RetryAfterSeconds() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.RetryAfter.Seconds()))))
}
