package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// rssOf reads a memory field ("VmRSS", "VmHWM") of /proc/<pid>/status in
// bytes; pid may be "self".
func rssOf(pid, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok || string(k) != field {
			continue
		}
		f := strings.Fields(string(v))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("%s: unexpected %q", field, v)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		return kb * 1024, err
	}
	return 0, fmt.Errorf("/proc/%s/status: no %s", pid, field)
}

// cpuSeconds returns the user+system CPU time of pid from /proc/<pid>/stat,
// assuming the kernel's usual 100 clock ticks per second.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; fields count from after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3 of stat(5); utime is 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return float64(ut+st) / 100, nil
}

// serverProbe samples the server processes named by -pid (the nodes of
// a cluster, or one server); figures of several processes are summed.
type serverProbe struct{ pids []int }

func (p serverProbe) rss() int64 {
	var sum int64
	for _, n := range p.rssEach() {
		sum += n
	}
	return sum
}

// rssEach is the VmRSS of each process, in the order of p.pids; 0 for one
// that cannot be read.
func (p serverProbe) rssEach() []int64 {
	out := make([]int64, len(p.pids))
	for i, pid := range p.pids {
		out[i], _ = rssOf(strconv.Itoa(pid), "VmRSS")
	}
	return out
}

// cpu is the CPU seconds of the processes, summed and each in the order
// of p.pids, from one reading.
func (p serverProbe) cpu() (float64, []float64) {
	var sum float64
	each := make([]float64, len(p.pids))
	for i, pid := range p.pids {
		each[i], _ = cpuSeconds(pid)
		sum += each[i]
	}
	return sum, each
}

// ioCounts returns the read and write system calls of pid so far, syscr
// and syscw of /proc/<pid>/io. syscw counts write(2), writev(2) and their
// kin, not send(2), sendto(2) or sendmsg(2): a server that writes to its
// sockets with send counts (almost) nothing there.
func ioCounts(pid int) (syscr, syscw int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0, 0, err
	}
	var okR, okW bool
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		if err != nil {
			continue
		}
		switch string(k) {
		case "syscr":
			syscr, okR = n, true
		case "syscw":
			syscw, okW = n, true
		}
	}
	if !okR || !okW {
		return 0, 0, fmt.Errorf("/proc/%d/io: no syscr or syscw", pid)
	}
	return syscr, syscw, nil
}

// io sums ioCounts over the processes; ok is false when there are none or
// one cannot be read.
func (p serverProbe) io() (syscr, syscw int64, ok bool) {
	for _, pid := range p.pids {
		r, w, err := ioCounts(pid)
		if err != nil {
			return 0, 0, false
		}
		syscr += r
		syscw += w
	}
	return syscr, syscw, len(p.pids) > 0
}

// rssSampler samples the servers' VmRSS on a ticker until stop, keeping
// the largest value: the peak while a load runs, which the samples before
// and after it miss. With several processes it keeps the peak of their
// sum and each one's own peak.
type rssSampler struct {
	stopCh chan struct{}
	done   chan struct{}
	peak   int64
	each   []int64
	n      int
}

// samplePeak starts sampling every interval; with no pid it samples nothing.
func (p serverProbe) samplePeak(every time.Duration) *rssSampler {
	s := &rssSampler{stopCh: make(chan struct{}), done: make(chan struct{}), each: make([]int64, len(p.pids))}
	if len(p.pids) == 0 {
		close(s.done)
		return s
	}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			var sum int64
			for i, v := range p.rssEach() {
				sum += v
				s.each[i] = max(s.each[i], v)
			}
			s.peak = max(s.peak, sum)
			s.n++
			select {
			case <-t.C:
			case <-s.stopCh:
				return
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak (of the sum) and the number
// of samples; s.each then holds each process's own peak.
func (s *rssSampler) stop() (peak int64, samples int) {
	select {
	case <-s.stopCh:
	default:
		close(s.stopCh)
	}
	<-s.done
	return s.peak, s.n
}

// rssSample is the server's RSS some time after the ramp (idle mode).
type rssSample struct {
	AfterSec float64 `json:"after_sec"`
	RSS      int64   `json:"rss"`
}

// sampleSettle samples the server's RSS n times spread evenly over settle,
// the last at its end; it stops early when ctx ends.
func (p serverProbe) sampleSettle(ctx context.Context, settle time.Duration, n int) []rssSample {
	var out []rssSample
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for i := 1; i <= n; i++ {
		if !waitUntil(ctx, timer, start.Add(settle*time.Duration(i)/time.Duration(n))) {
			break
		}
		out = append(out, rssSample{AfterSec: time.Since(start).Seconds(), RSS: p.rss()})
	}
	return out
}

// Syscall tracepoints counted by -syscalls, grouped by what they do. The
// write group holds every way a server puts bytes on a socket: uSockets
// (Soketi) uses send(2), which is sendto(2); Go uses write(2) and writev(2).
var syscallGroups = []struct {
	name   string
	events []string
}{
	{name: groupWrite, events: []string{"write", "writev", "sendto", "sendmsg", "sendmmsg"}},
	{name: groupRead, events: []string{"read", "readv", "recvfrom", "recvmsg", "recvmmsg"}},
	{name: groupEpoll, events: []string{"epoll_wait", "epoll_pwait", "epoll_pwait2"}},
}

// Names of the syscall groups in reports; groupAll is every system call.
const (
	groupWrite = "write/send"
	groupRead  = "read/recv"
	groupEpoll = "epoll_wait"
	groupAll   = "all"
)

// allSyscalls is the tracepoint of every system call entry.
const allSyscalls = "raw_syscalls:sys_enter"

// syscallCounter is `perf stat` counting the server's system calls by
// tracepoint while the load runs.
type syscallCounter struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan error
}

// startSyscallCount attaches perf stat to the processes pids (and the
// threads they start); it counts them together.
func startSyscallCount(pids []int) (*syscallCounter, error) {
	var evs []string
	for _, g := range syscallGroups {
		for _, e := range g.events {
			evs = append(evs, "syscalls:sys_enter_"+e)
		}
	}
	evs = append(evs, allSyscalls)
	s := &syscallCounter{done: make(chan error, 1)}
	s.cmd = exec.Command("perf", "stat", "-x", ",", "-e", strings.Join(evs, ","), "-p", (*pidList)(&pids).String())
	s.cmd.Stderr = &s.out
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { s.done <- s.cmd.Wait() }()
	// perf attaches in a few milliseconds; give it time, so that the load
	// does not start before the counting does.
	select {
	case err := <-s.done:
		return nil, fmt.Errorf("perf stat exited: %v: %s", err, truncate(strings.TrimSpace(s.out.String()), 200))
	case <-time.After(300 * time.Millisecond):
	}
	return s, nil
}

// stop interrupts perf stat and returns the counts by system call and by
// group (groupWrite, groupRead, groupEpoll, groupAll).
func (s *syscallCounter) stop() (calls, groups map[string]int64, err error) {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return nil, nil, errors.New("perf stat did not stop")
	}
	return parsePerfStat(s.out.Bytes())
}

// parsePerfStat reads the CSV of `perf stat -x ,` (value, unit, event, …)
// into counts by system call and by group of syscallGroups, plus groupAll.
func parsePerfStat(b []byte) (calls, groups map[string]int64, err error) {
	calls = map[string]int64{}
	groups = map[string]int64{}
	for line := range bytes.Lines(b) {
		f := strings.Split(strings.TrimSpace(string(line)), ",")
		if len(f) < 3 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue // "<not counted>", "<not supported>", comments
		}
		switch ev := f[2]; {
		case ev == allSyscalls:
			groups[groupAll] = n
		case strings.HasPrefix(ev, "syscalls:sys_enter_"):
			calls[strings.TrimPrefix(ev, "syscalls:sys_enter_")] = n
		}
	}
	if len(calls) == 0 {
		return nil, nil, fmt.Errorf("perf stat: no counts in %q", truncate(string(b), 200))
	}
	for _, g := range syscallGroups {
		var sum int64
		for _, e := range g.events {
			sum += calls[e]
		}
		groups[g.name] = sum
	}
	return calls, groups, nil
}

// bindFastLimit is how many sockets one source address takes before
// bind(2) to port 0 slows down: Linux hands bind half of the ephemeral
// range (one parity of port numbers, leaving the other to connect), and
// past it searches the whole range on every call — measured here at ~5 ms
// a bind, against ~5 µs before. 0 when the range cannot be read.
func bindFastLimit() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	return parsePortRangeHalf(b)
}

// parsePortRangeHalf reads "lo hi" and returns half the ports in it.
func parsePortRangeHalf(b []byte) int {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 0
	}
	return (hi - lo + 1) / 2
}

// machineBusy returns the CPU seconds every CPU of the machine has spent
// busy so far (user, nice, system, irq, softirq and steal of the "cpu"
// line of /proc/stat; idle and iowait left out).
func machineBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(b)
}

func parseMachineBusy(b []byte) (float64, error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var busy int64
	// user nice system idle iowait irq softirq steal
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %v", err)
		}
		busy += n
	}
	return float64(busy) / 100, nil
}
