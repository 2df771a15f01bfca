package pusher

import (
	"context"
	"math"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSimulated500k holds 500,000 sessions, each subscribed to one
// channel, in one process without sockets, and reports what a server
// of that size costs:
//
//   - B/sub: heap bytes per session and its subscription, measured after a
//     full collection (the session struct included, as package loop embeds
//     one per connection);
//   - enqueue-ms: the time Publish takes to hand one broadcast to every
//     subscriber's loop (the API's part: it returns then);
//   - fanout-ms: the time the loops then take to write the frame to all
//     500,000 connections (here connections that count the bytes);
//   - gc-p99-ms: the 99th percentile of the stop-the-world pauses of the
//     collections forced during the run, with all of it live.
//
// Each iteration is one broadcast, enqueued and fanned out.
func BenchmarkSimulated500k(b *testing.B) {
	const n = 500_000
	loops := &heldLoops{n: 2}
	s, err := NewServer([]AppConfig{DefaultApp("app-id", "app-key", "app-secret")}, Config{})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Attach(loops); err != nil {
		b.Fatal(err)
	}
	app := s.AppByID("app-id")
	sub := []byte(`{"event":"pusher:subscribe","data":{"channel":"everyone"}}`)

	before := heapLive()
	sessions := make([]Session, n)
	conns := make([]countConn, n)
	for i := range sessions {
		if !s.Open(&sessions[i], &conns[i], i%2, "app-key", "7", "") {
			b.Fatal("open refused")
		}
		s.Handle(&sessions[i], sub)
	}
	perSub := float64(heapLive()-before) / n
	for i := range conns {
		conns[i] = countConn{}
	}

	events := []Event{{Channels: []string{"everyone"}, Name: "news", Data: []byte(`{"title":"hello"}`)}}
	ctx := context.Background()
	var enqueue, fanout time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := s.Publish(ctx, app, events); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		loops.run()
		enqueue += t1.Sub(t0)
		fanout += time.Since(t1)
	}
	b.StopTimer()
	if got := conns[n-1].writes; got != b.N {
		b.Fatalf("last subscriber got %d of %d events", got, b.N)
	}
	pauses := gcPauseP99(func() {
		for range 10 {
			runtime.GC()
		}
	})
	b.ReportMetric(perSub, "B/sub")
	b.ReportMetric(float64(enqueue.Microseconds())/1000/float64(b.N), "enqueue-ms")
	b.ReportMetric(float64(fanout.Microseconds())/1000/float64(b.N), "fanout-ms")
	b.ReportMetric(pauses.Seconds()*1000, "gc-p99-ms")
	runtime.KeepAlive(sessions)
	runtime.KeepAlive(conns)
}

// heapLive is the heap in use after a full collection.
func heapLive() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// gcPauseP99 runs f and returns the 99th percentile of the stop-the-world
// pauses of garbage collections during it.
func gcPauseP99(f func()) time.Duration {
	const name = "/sched/pauses/total/gc:seconds"
	sample := []metrics.Sample{{Name: name}}
	metrics.Read(sample)
	start := sample[0].Value.Float64Histogram()
	startCounts := append([]uint64(nil), start.Counts...)
	f()
	metrics.Read(sample)
	h := sample[0].Value.Float64Histogram()
	var total uint64
	counts := make([]uint64, len(h.Counts))
	for i := range h.Counts {
		counts[i] = h.Counts[i] - startCounts[i]
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	want := uint64(math.Ceil(float64(total) * 0.99))
	var seen uint64
	for i, c := range counts {
		if seen += c; seen >= want {
			// The bucket's upper bound: a pause at most this long.
			return time.Duration(h.Buckets[i+1] * float64(time.Second))
		}
	}
	return time.Duration(h.Buckets[len(h.Buckets)-1] * float64(time.Second))
}

// BenchmarkSubscriptionMemory reports the heap bytes one subscription
// costs where a connection has many (README: max_subscriptions): 100
// sessions each in 2,000 channels of their own (B/sub-own: the channel
// and its shard entry come with each), and 100 sessions each in the same
// 2,000 channels (B/sub-shared: the subscription alone, in the session's
// list and index and in the channel's list). Each iteration is one such
// set-up, measured after a full collection.
func BenchmarkSubscriptionMemory(b *testing.B) {
	const sessions, channels = 100, 2000
	subs := make([][]byte, sessions*channels)
	for i := range subs {
		subs[i] = []byte(`{"event":"pusher:subscribe","data":{"channel":"c-` + strconv.Itoa(i) + `"}}`)
	}
	measure := func(shared bool) float64 {
		s, err := NewServer([]AppConfig{DefaultApp("app-id", "app-key", "app-secret")}, Config{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Attach(&heldLoops{n: 2}); err != nil {
			b.Fatal(err)
		}
		ss := make([]Session, sessions)
		conns := make([]countConn, sessions)
		for i := range ss {
			if !s.Open(&ss[i], &conns[i], i%2, "app-key", "7", "") {
				b.Fatal("open refused")
			}
		}
		before := heapLive()
		for i := range ss {
			for k := range channels {
				msg := subs[i*channels+k]
				if shared {
					msg = subs[k]
				}
				s.Handle(&ss[i], msg)
			}
			if len(ss[i].subs) != channels {
				b.Fatalf("session %d in %d channels, want %d", i, len(ss[i].subs), channels)
			}
		}
		per := float64(heapLive()-before) / (sessions * channels)
		runtime.KeepAlive(ss)
		runtime.KeepAlive(conns)
		return per
	}
	var own, shared float64
	for range b.N {
		own += measure(false)
		shared += measure(true)
	}
	b.ReportMetric(own/float64(b.N), "B/sub-own")
	b.ReportMetric(shared/float64(b.N), "B/sub-shared")
}
