package main

import (
	"bytes"
	"net"
	"runtime"
	rtrace "runtime/trace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/exp/trace"
)

func TestClassify(t *testing.T) {
	stack := func(fns ...string) trace.Stack {
		var fr []trace.StackFrame
		for i, fn := range fns {
			fr = append(fr, trace.StackFrame{PC: uint64(i + 1), Func: fn})
		}
		return trace.MakeStack(fr)
	}
	cases := []struct {
		stk  trace.Stack
		want class
	}{
		{stack("golang.org/x/sys/unix.EpollWait", "github.com/panjf2000/gnet/v2/pkg/netpoll.(*Poller).Polling", "github.com/panjf2000/gnet/v2.(*eventloop).run"), classLoop},
		{stack("github.com/panjf2000/gnet/v2.(*eventloop).ticker"), classOther},
		{stack("internal/poll.(*FD).Read", "github.com/valyala/fasthttp.(*Server).serveConn", "github.com/valyala/fasthttp.(*workerPool).workerFunc"), classAPI},
		{stack("runtime.gopark", "runtime.gcBgMarkWorker"), classGC},
		{stack("main.main"), classOther},
	}
	for _, c := range cases {
		if got := classify(c.stk); got != c.want {
			t.Errorf("classify(%s) = %s, want %s", c.stk, classNames[got], classNames[c.want])
		}
	}
}

// spin burns CPU until stop is closed.
func spin(stop <-chan struct{}) {
	x := 0
	for {
		select {
		case <-stop:
			return
		default:
		}
		for i := range 100000 {
			x += i
		}
	}
}

// TestTraceOfThisProcess takes a real trace of a fasthttp server answering
// requests while CPU-bound goroutines hold the only P and a GC runs, and
// checks that tracestat finds the API goroutines, their waits for a P, the
// time every P was busy, and the GC.
func TestTraceOfThisProcess(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go srv.Serve(ln)
	defer srv.Shutdown()

	var buf bytes.Buffer
	if err := rtrace.Start(&buf); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { spin(stop) })
	}
	client := &fasthttp.Client{}
	for range 20 {
		if code, _, err := client.Get(nil, "http://"+ln.Addr().String()+"/"); err != nil || code != 200 {
			t.Fatalf("GET: %d %v", code, err)
		}
		time.Sleep(time.Millisecond)
	}
	runtime.GC()
	close(stop)
	wg.Wait()
	rtrace.Stop()

	s := newStats()
	if err := s.read(&buf); err != nil {
		t.Fatal(err)
	}
	api := 0
	var apiWaits int
	for id, g := range s.gs {
		if g.class == classAPI {
			api++
			for _, w := range s.waits[id] {
				apiWaits += len(w)
			}
		}
	}
	if api == 0 || apiWaits == 0 {
		t.Errorf("HTTP API goroutines %d with %d waits for a P; want some of each", api, apiWaits)
	}
	if len(s.gcMarks) == 0 || len(s.stw) == 0 {
		t.Errorf("GC: %d mark phases, %d stop-the-world pauses; want runtime.GC's", len(s.gcMarks), len(s.stw))
	}
	if s.allBusy <= 0 {
		t.Errorf("every P busy for %v; want the spinning goroutines' time on the one P", s.allBusy)
	}
	var out strings.Builder
	s.write(&out)
	for _, want := range []string{"HTTP API (fasthttp), woken |", "stop-the-world pause |", "every P busy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
