package main

import (
	"os"
	"runtime"
	"strconv"
	"testing"
)

func TestProcsFor(t *testing.T) {
	cases := []struct {
		name                 string
		loops, cpus, cur     int
		env                  bool
		wantLoops, wantProcs int
	}{
		{name: "default loops on 2 CPUs", loops: 0, cpus: 2, cur: 2, wantLoops: 2, wantProcs: 3},
		{name: "default loops on 8 CPUs", loops: 0, cpus: 8, cur: 8, wantLoops: 8, wantProcs: 9},
		{name: "one loop keeps the default", loops: 1, cpus: 8, cur: 8, wantLoops: 1, wantProcs: 8},
		{name: "one loop on one CPU", loops: 1, cpus: 1, cur: 1, wantLoops: 1, wantProcs: 2},
		{name: "more loops than CPUs", loops: 6, cpus: 2, cur: 2, wantLoops: 6, wantProcs: 7},
		{name: "loops capped as loop.New caps them", loops: 100, cpus: 2, cur: 2, wantLoops: 64, wantProcs: 65},
		{name: "GOMAXPROCS set in the environment wins", loops: 0, cpus: 2, cur: 2, env: true, wantLoops: 2, wantProcs: 2},
		{name: "GOMAXPROCS=1 in the environment", loops: 0, cpus: 4, cur: 1, env: true, wantLoops: 4, wantProcs: 1},
	}
	for _, c := range cases {
		got := procsFor(c.loops, c.cpus, c.cur, c.env)
		if got.loops != c.wantLoops || got.procs != c.wantProcs || got.fromEnv != c.env {
			t.Errorf("%s: procsFor(%d, %d, %d, %v) = %+v, want loops %d procs %d", c.name, c.loops, c.cpus, c.cur, c.env, got, c.wantLoops, c.wantProcs)
		}
	}
}

// TestSetProcs: without GOMAXPROCS in the environment (or with a value
// the runtime ignores) the process gets one P more than its event loops;
// with it, the runtime's value stays.
func TestSetProcs(t *testing.T) {
	before := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(before) })
	t.Setenv("GOMAXPROCS", "") // restored after the test
	os.Unsetenv("GOMAXPROCS")

	// event_loops 0: one loop per CPU the runtime schedules on by default
	// (a container's CPU quota included).
	if sp := setProcs(0); sp.loops != before || runtime.GOMAXPROCS(0) != before+1 {
		t.Fatalf("event_loops 0: %+v, GOMAXPROCS now %d, want %d loops and GOMAXPROCS %d", sp, runtime.GOMAXPROCS(0), before, before+1)
	}
	runtime.GOMAXPROCS(before)
	loops := before + 1
	if sp := setProcs(loops); sp.fromEnv || sp.procs != loops+1 || runtime.GOMAXPROCS(0) != loops+1 {
		t.Fatalf("unset: %+v, GOMAXPROCS now %d, want %d", sp, runtime.GOMAXPROCS(0), loops+1)
	}
	runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", "0")
	if sp := setProcs(loops); sp.fromEnv || runtime.GOMAXPROCS(0) != loops+1 {
		t.Fatalf("GOMAXPROCS=0 (ignored by the runtime): %+v, GOMAXPROCS now %d, want %d", sp, runtime.GOMAXPROCS(0), loops+1)
	}
	runtime.GOMAXPROCS(before)
	t.Setenv("GOMAXPROCS", strconv.Itoa(before))
	if sp := setProcs(loops); !sp.fromEnv || runtime.GOMAXPROCS(0) != before {
		t.Fatalf("GOMAXPROCS=%d: %+v, GOMAXPROCS now %d, want it left alone", before, sp, runtime.GOMAXPROCS(0))
	}
}
