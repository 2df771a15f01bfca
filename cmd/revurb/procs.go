package main

import (
	"os"
	"runtime"
	"strconv"
)

// maxEventLoops is loop.New's cap on event loops.
const maxEventLoops = 64

// schedProcs is what setProcs decided: the event loops and GOMAXPROCS.
type schedProcs struct {
	loops, procs int
	// fromEnv: GOMAXPROCS was set in the environment and is left alone.
	fromEnv bool
}

// procsFor is the start-up rule for GOMAXPROCS: one P more than there are
// event loops, and never fewer than the runtime's own default (cur), unless
// the GOMAXPROCS environment variable chose (envSet). loops is the
// event_loops setting (0: one per CPU the process may use, cpus).
//
// Each gnet event loop is a goroutine that holds a P while it runs its
// connections and blocks in epoll_wait without giving it back at once.
// With as many Ps as loops, a runnable HTTP API goroutine (a trigger) or a
// netpoll wake-up waits for sysmon to retake a P, which takes up to the
// scheduler's 10 ms tick: that was revurb's delivery p99 at moderate load
// (issue 16). The spare P runs the API, the timers and the GC.
func procsFor(loops, cpus, cur int, envSet bool) schedProcs {
	if loops <= 0 {
		loops = cpus
	}
	loops = min(loops, maxEventLoops)
	if envSet {
		return schedProcs{loops: loops, procs: cur, fromEnv: true}
	}
	return schedProcs{loops: loops, procs: max(cur, loops+1)}
}

// setProcs applies procsFor to the process and returns what it decided.
// GOMAXPROCS counts as set as the runtime reads it: a number above 0.
func setProcs(eventLoops int) schedProcs {
	n, err := strconv.Atoi(os.Getenv("GOMAXPROCS"))
	envSet := err == nil && n > 0
	// The CPUs the process may use, as the runtime counts them for its
	// own default: the affinity mask and a container's CPU quota (cgroup
	// limit) both count, so that a pod limited to 2 CPUs on a 64-core node
	// runs 2 loops, not 64.
	cpus := runtime.GOMAXPROCS(0)
	if envSet {
		cpus = runtime.NumCPU()
	}
	sp := procsFor(eventLoops, cpus, runtime.GOMAXPROCS(0), envSet)
	if sp.procs != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(sp.procs)
	}
	return sp
}

// String says it for the start log.
func (sp schedProcs) String() string {
	s := strconv.Itoa(sp.loops) + " event loops, GOMAXPROCS " + strconv.Itoa(sp.procs)
	if sp.fromEnv {
		return s + " (from the environment)"
	}
	return s
}
