package pusher

import (
	"context"
	"math"
	"runtime"
	"runtime/metrics"
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
	s, err := NewServer([]AppConfig{DefaultApp("app-id", "app-key", "app-secret")}, Options{})
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
