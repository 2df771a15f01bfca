// Command tracestat reads a Go execution trace of revurb (runtime/trace,
// e.g. from --pprof's /debug/pprof/trace?seconds=N) and prints, as
// Markdown tables, where its goroutines wait:
//
//   - scheduler latency, the time from runnable to running, of the event
//     loops (gnet), the HTTP API (fasthttp and revurb's api), the GC's
//     workers and the rest, split by how each became runnable: woken from
//     a wait, put back by preemption or a yield, or back from a system call
//     whose P was taken meanwhile;
//
//   - how long each class runs once it has a P, and how long the loops sit
//     in system calls (epoll_wait mostly);
//
//   - how much of the time no P was idle, so that a goroutine made
//     runnable had to wait for one;
//
//   - the GC: cycles, stop-the-world pauses, mark assists by class;
//
//   - the handoff from the API to a loop (from the wake-up that queues a
//     batch to the loop running it) and each batch's length, writes
//     included: revurb's own trace annotations in loop/tasks.go, written
//     only while a trace is taken.
//
//     tracestat perf/profiles/trace.out
//
// perf/trace.sh takes the trace under an open-loop scenario and runs this.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/exp/trace"
)

// class is what a goroutine is, told by the frames of its stacks.
type class int

const (
	classOther class = iota
	classLoop
	classAPI
	classGC
	nClasses
)

var classNames = [nClasses]string{"other", "event loop (gnet)", "HTTP API (fasthttp)", "GC worker"}

// classify returns the class that stk's frames say, or classOther.
func classify(stk trace.Stack) class {
	c := classOther
	for f := range stk.Frames() {
		fn := f.Func
		switch {
		case strings.HasSuffix(fn, "(*Poller).Polling") && strings.Contains(fn, "gnet"),
			strings.Contains(fn, "gnet/v2.(*eventloop).run"),
			strings.Contains(fn, "gnet/v2.(*eventloop).orbit"),
			strings.Contains(fn, "gnet/v2.(*eventloop).rotate"):
			return classLoop
		case strings.Contains(fn, "github.com/valyala/fasthttp"),
			strings.Contains(fn, "github.com/revurb/revurb/api."):
			c = classAPI
		case fn == "runtime.gcBgMarkWorker", fn == "runtime.bgsweep", fn == "runtime.bgscavenge":
			if c == classOther {
				c = classGC
			}
		}
	}
	return c
}

// how a goroutine became runnable.
type cause int

const (
	causeWoken     cause = iota // from waiting, or created
	causePreempted              // from running: preempted or yielded
	causeSyscall                // back from a system call without its P
	nCauses
)

var causeNames = [nCauses]string{"woken", "preempted or yielded", "back from a syscall without a P"}

// gor is what tracestat keeps of one goroutine.
type gor struct {
	class      class
	known      bool
	runnableAt trace.Time // 0: not runnable
	why        cause
	runningAt  trace.Time // 0: not running
	syscallAt  trace.Time // 0: not in a system call
}

// stats is everything tracestat gathers.
type stats struct {
	gs       map[trace.GoID]*gor
	waits    map[trace.GoID][nCauses][]time.Duration
	runs     map[trace.GoID][]time.Duration
	syscalls map[trace.GoID][]time.Duration
	assists  map[trace.GoID][]time.Duration
	assistAt map[trace.GoID]trace.Time

	procs       map[trace.ProcID]bool // running (true) or idle (false); absent: not there
	busySince   trace.Time            // when the last P went busy; 0: some P is idle
	allBusy     time.Duration
	allBusyRuns []time.Duration

	gcMarks   []time.Duration
	markAt    trace.Time
	stw       []time.Duration
	stwAt     map[trace.GoID]trace.Time
	batches   []time.Duration
	batchAt   map[trace.GoID]trace.Time
	handoffs  []time.Duration
	wakeAt    map[string]trace.Time // loop index → its wake-up not yet run
	first     trace.Time
	last      trace.Time
	events    int
	procsSeen int
}

func newStats() *stats {
	return &stats{
		gs: map[trace.GoID]*gor{}, waits: map[trace.GoID][nCauses][]time.Duration{},
		runs: map[trace.GoID][]time.Duration{}, syscalls: map[trace.GoID][]time.Duration{},
		assists: map[trace.GoID][]time.Duration{}, assistAt: map[trace.GoID]trace.Time{},
		procs: map[trace.ProcID]bool{}, stwAt: map[trace.GoID]trace.Time{}, batchAt: map[trace.GoID]trace.Time{},
		wakeAt: map[string]trace.Time{},
	}
}

func (s *stats) g(id trace.GoID) *gor {
	g := s.gs[id]
	if g == nil {
		g = &gor{}
		s.gs[id] = g
	}
	return g
}

// learn classifies goroutine id from stk unless it is known already.
func (s *stats) learn(id trace.GoID, stk trace.Stack) {
	if id == trace.NoGoroutine || stk == trace.NoStack {
		return
	}
	g := s.g(id)
	if g.known && g.class != classOther {
		return
	}
	if c := classify(stk); c != classOther || !g.known {
		g.class, g.known = c, c != classOther
	}
}

// read consumes the whole trace.
func (s *stats) read(r io.Reader) error {
	tr, err := trace.NewReader(r)
	if err != nil {
		return err
	}
	for {
		ev, err := tr.ReadEvent()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.event(ev)
	}
}

func (s *stats) event(ev trace.Event) {
	t := ev.Time()
	if s.events == 0 {
		s.first = t
	}
	s.events++
	s.last = t
	s.learn(ev.Goroutine(), ev.Stack())
	switch ev.Kind() {
	case trace.EventStateTransition:
		st := ev.StateTransition()
		switch st.Resource.Kind {
		case trace.ResourceGoroutine:
			s.learn(st.Resource.Goroutine(), st.Stack)
			from, to := st.Goroutine()
			s.goTransition(st.Resource.Goroutine(), from, to, t)
		case trace.ResourceProc:
			_, to := st.Proc()
			s.procTransition(st.Resource.Proc(), to, t)
		}
	case trace.EventRangeBegin, trace.EventRangeEnd:
		s.rangeEvent(ev, t)
	case trace.EventLog:
		// loop/tasks.go: a wake-up queued for loop i, and loop i running it.
		l := ev.Log()
		switch l.Category {
		case "loop.wake":
			s.wakeAt[l.Message] = t
		case "loop.run":
			if at, ok := s.wakeAt[l.Message]; ok {
				s.handoffs = append(s.handoffs, t.Sub(at))
				delete(s.wakeAt, l.Message)
			}
		}
	case trace.EventRegionBegin, trace.EventRegionEnd:
		if ev.Region().Type != "loop.batch" {
			return
		}
		if ev.Kind() == trace.EventRegionBegin {
			s.batchAt[ev.Goroutine()] = t
		} else if at, ok := s.batchAt[ev.Goroutine()]; ok {
			s.batches = append(s.batches, t.Sub(at))
			delete(s.batchAt, ev.Goroutine())
		}
	}
}

func (s *stats) goTransition(id trace.GoID, from, to trace.GoState, t trace.Time) {
	g := s.g(id)
	if from == trace.GoRunning && g.runningAt != 0 {
		s.runs[id] = append(s.runs[id], t.Sub(g.runningAt))
		g.runningAt = 0
	}
	if from == trace.GoSyscall && g.syscallAt != 0 {
		s.syscalls[id] = append(s.syscalls[id], t.Sub(g.syscallAt))
		g.syscallAt = 0
	}
	switch to {
	case trace.GoRunnable:
		g.runnableAt = t
		switch from {
		case trace.GoRunning:
			g.why = causePreempted
		case trace.GoSyscall:
			g.why = causeSyscall
		default:
			g.why = causeWoken
		}
		if from == trace.GoUndetermined {
			g.runnableAt = 0 // runnable since before the trace: no start to measure from
		}
	case trace.GoRunning:
		if from == trace.GoRunnable && g.runnableAt != 0 {
			w := s.waits[id]
			w[g.why] = append(w[g.why], t.Sub(g.runnableAt))
			s.waits[id] = w
		}
		g.runnableAt = 0
		g.runningAt = t
	case trace.GoSyscall:
		g.syscallAt = t
	default:
		g.runnableAt = 0
	}
}

// procTransition follows how many Ps run: while none is idle, a goroutine
// made runnable waits for one.
func (s *stats) procTransition(id trace.ProcID, to trace.ProcState, t trace.Time) {
	switch to {
	case trace.ProcRunning:
		s.procs[id] = true
	case trace.ProcIdle:
		s.procs[id] = false
	default:
		delete(s.procs, id)
	}
	s.procsSeen = max(s.procsSeen, len(s.procs))
	busy := len(s.procs) > 0
	for _, running := range s.procs {
		busy = busy && running
	}
	switch {
	case busy && s.busySince == 0:
		s.busySince = t
	case !busy && s.busySince != 0:
		d := t.Sub(s.busySince)
		s.allBusy += d
		s.allBusyRuns = append(s.allBusyRuns, d)
		s.busySince = 0
	}
}

func (s *stats) rangeEvent(ev trace.Event, t trace.Time) {
	r := ev.Range()
	begin := ev.Kind() == trace.EventRangeBegin
	switch {
	case r.Name == "GC concurrent mark phase":
		if begin {
			s.markAt = t
		} else if s.markAt != 0 {
			s.gcMarks = append(s.gcMarks, t.Sub(s.markAt))
			s.markAt = 0
		}
	case strings.HasPrefix(r.Name, "stop-the-world"):
		id := ev.Goroutine()
		if begin {
			s.stwAt[id] = t
		} else if at, ok := s.stwAt[id]; ok {
			s.stw = append(s.stw, t.Sub(at))
			delete(s.stwAt, id)
		}
	case r.Name == "GC mark assist":
		id := r.Scope.Goroutine()
		if begin {
			s.assistAt[id] = t
		} else if at, ok := s.assistAt[id]; ok {
			s.assists[id] = append(s.assists[id], t.Sub(at))
			delete(s.assistAt, id)
		}
	}
}

func main() {
	if len(os.Args) != 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: tracestat TRACE-FILE")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "tracestat:", err)
		os.Exit(1)
	}
	defer f.Close()
	s := newStats()
	if err := s.read(f); err != nil {
		fmt.Fprintln(os.Stderr, "tracestat:", err)
		os.Exit(1)
	}
	s.write(os.Stdout)
}

// dist is a sorted sample of durations.
type dist []time.Duration

func (d dist) q(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(p*float64(len(d))))]
}

func (d dist) sum() time.Duration {
	var t time.Duration
	for _, x := range d {
		t += x
	}
	return t
}

func (d dist) over(x time.Duration) int {
	n, _ := slices.BinarySearch(d, x+1)
	return len(d) - n
}

func sorted(ds ...[]time.Duration) dist {
	var out dist
	for _, d := range ds {
		out = append(out, d...)
	}
	slices.Sort(out)
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/1e6) }

// row prints one line of a distribution table.
func row(w io.Writer, name string, d dist) {
	if len(d) == 0 {
		fmt.Fprintf(w, "| %s | 0 | — | — | — | — | — | — | — | — |\n", name)
		return
	}
	fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %d | %d | %s |\n", name, len(d), ms(d.q(0.5)), ms(d.q(0.9)),
		ms(d.q(0.99)), ms(d.q(0.999)), ms(d[len(d)-1]), d.over(time.Millisecond), d.over(5*time.Millisecond), ms(d.sum()))
}

const distHeader = "| %s | n | p50 (ms) | p90 | p99 | p99.9 | max | > 1 ms | > 5 ms | total (ms) |\n|---|---|---|---|---|---|---|---|---|---|\n"

// byClass gathers per-goroutine samples into per-class ones.
func (s *stats) byClass(m map[trace.GoID][]time.Duration) [nClasses]dist {
	var out [nClasses]dist
	for id, d := range m {
		c := s.g(id).class
		out[c] = append(out[c], d...)
	}
	for i := range out {
		slices.Sort(out[i])
	}
	return out
}

func (s *stats) write(w io.Writer) {
	span := s.last.Sub(s.first)
	fmt.Fprintf(w, "trace: %s, %d events, %d goroutines, up to %d Ps\n\n", span.Round(time.Millisecond), s.events, len(s.gs), s.procsSeen)
	counts := [nClasses]int{}
	for _, g := range s.gs {
		counts[g.class]++
	}
	fmt.Fprintf(w, "goroutines: %d event loops, %d HTTP API, %d GC workers, %d other\n\n", counts[classLoop], counts[classAPI], counts[classGC], counts[classOther])

	fmt.Fprintln(w, "### Scheduler latency: runnable → running")
	fmt.Fprintln(w)
	fmt.Fprintf(w, distHeader, "goroutines, how they became runnable")
	for c := range nClasses {
		if c == classOther {
			continue
		}
		for why := range nCauses {
			var parts [][]time.Duration
			for id, ws := range s.waits {
				if s.g(id).class == c {
					parts = append(parts, ws[why])
				}
			}
			if d := sorted(parts...); len(d) > 0 || why == causeWoken {
				row(w, classNames[c]+", "+causeNames[why], d)
			}
		}
	}
	var other [][]time.Duration
	for id, ws := range s.waits {
		if s.g(id).class == classOther {
			other = append(other, ws[:]...)
		}
	}
	row(w, "other, any", sorted(other...))
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### Running and in system calls")
	fmt.Fprintln(w)
	fmt.Fprintf(w, distHeader, "stretch")
	runs, sys := s.byClass(s.runs), s.byClass(s.syscalls)
	for _, c := range []class{classLoop, classAPI, classGC} {
		row(w, classNames[c]+": running", runs[c])
	}
	row(w, classNames[classLoop]+": in a system call", sys[classLoop])
	row(w, "handoff: a task queued for a loop → the loop runs its batch", sorted(s.handoffs))
	row(w, "one batch of tasks on a loop, its writes included", sorted(s.batches))
	row(w, "every P busy (a runnable goroutine waits for a P)", sorted(s.allBusyRuns))
	if span > 0 {
		fmt.Fprintf(w, "\nevery P busy %.1f%% of the trace\n", 100*float64(s.allBusy)/float64(span))
	}
	fmt.Fprintln(w)

	fmt.Fprintln(w, "### GC")
	fmt.Fprintln(w)
	fmt.Fprintf(w, distHeader, "phase")
	row(w, "concurrent mark (one cycle)", sorted(s.gcMarks))
	row(w, "stop-the-world pause", sorted(s.stw))
	assists := s.byClass(s.assists)
	for _, c := range []class{classLoop, classAPI, classOther} {
		row(w, "mark assist: "+classNames[c], assists[c])
	}
}
