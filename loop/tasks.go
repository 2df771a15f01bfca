package loop

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"runtime/trace"
	"strconv"
	"sync"

	"github.com/panjf2000/gnet/v2"

	"github.com/revurb/revurb/pusher"
)

// Work queued for a loop from elsewhere (pusher's Tasks: broadcasts,
// one session's frames; the engine's own sweeps and resumes), run in
// order, one batch a turn.

// Execute runs t on loop i, after every task queued for loop i before it.
//
// Tasks go through a queue of revurb's own, and gnet is woken once per
// batch: gnet's task queues can run a later task before an earlier one when
// a loop falls behind (a task overflows into its second queue), and a
// broadcast must never overtake the one published before it. The batch also
// saves one gnet task, with its allocation and eventfd write, per broadcast.
func (e *Engine) Execute(i int, t pusher.Task) error {
	q := &e.loops[i].q
	q.mu.Lock()
	q.tasks = append(q.tasks, t)
	wake := !q.woken
	q.woken = true
	q.mu.Unlock()
	if !wake {
		return nil
	}
	if trace.IsEnabled() {
		// perf/tracestat: from here to the loop's "loop.run" is the handoff.
		trace.Log(context.Background(), "loop.wake", strconv.Itoa(i))
	}
	e.mu.Lock()
	var el gnet.EventLoop
	if i < len(e.gnets) {
		el = e.gnets[i]
	}
	e.mu.Unlock()
	if el == nil {
		return errors.New("loop: no event loop " + strconv.Itoa(i))
	}
	return el.Execute(context.Background(), q)
}

// taskQueue is the tasks waiting for one loop, in the order they came.
type taskQueue struct {
	l     *loopState
	mu    sync.Mutex
	tasks []pusher.Task
	spare []pusher.Task // the drained batch's slice, reused
	woken bool          // a Run is queued in gnet and has not started draining
}

// Run drains the queue on its loop: one turn, whose writes leave together
// at its end.
func (q *taskQueue) Run(ctx context.Context) error {
	if trace.IsEnabled() {
		// Only while an execution trace is taken (perf/trace.sh): the
		// handoff from the wake-up and the batch's length, writes included.
		trace.Log(ctx, "loop.run", strconv.Itoa(q.l.index))
		defer trace.StartRegion(ctx, "loop.batch").End()
	}
	q.l.begin()
	defer q.l.end()
	q.mu.Lock()
	batch := q.tasks
	q.tasks, q.spare = q.spare[:0], nil
	q.woken = false
	q.mu.Unlock()
	for _, t := range batch {
		q.l.run(ctx, t)
	}
	clear(batch)
	q.mu.Lock()
	q.spare = batch[:0]
	q.mu.Unlock()
	return nil
}

// run runs one task. A task that panics is a bug: it is logged with its
// stack and the loop goes on with the next, rather than every connection
// going down with the process.
func (l *loopState) run(ctx context.Context, t pusher.Task) {
	defer func() {
		if r := recover(); r != nil {
			l.e.cfg.Log.Error("loop: panic in a task; going on with the next", "loop", l.index, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	_ = t.Run(ctx)
}

// eachLoop runs f on every loop that has had connections and returns a
// channel that is closed when all of them have run it.
func (e *Engine) eachLoop(f func(i int)) <-chan struct{} {
	e.mu.Lock()
	n := len(e.gnets)
	e.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		i := i
		err := e.Execute(i, gnet.RunnableFunc(func(context.Context) error {
			defer wg.Done()
			f(i)
			return nil
		}))
		if err != nil {
			wg.Done()
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	return done
}
