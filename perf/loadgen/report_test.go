package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReportMerge checks that a worker report survives the children's JSON
// and that the new socket-side counters add up, while finish derives the
// per-delivery and memory figures from the coordinator's.
func TestReportMerge(t *testing.T) {
	cfg := &config{mode: modeFanout, channel: "perf", channels: 8, publishers: 8, closed: true, events: 100}
	worker := func(delivered, expected, dups, reordered, wrong, failed int64) *Report {
		r := newReport(cfg)
		r.Conns, r.Connected, r.Subscribed = 10, 10, 10
		r.Delivered, r.Expected = delivered, expected
		r.Duplicates, r.OutOfOrder, r.WrongChannel, r.DeliveredFailed = dups, reordered, wrong, failed
		r.Latency.record(time.Duration(delivered) * time.Millisecond)
		r.DeliveryStartNs, r.LastDeliveryNs = 1e9, 3e9
		return r
	}
	var back []*Report
	for _, w := range []*Report{worker(400, 500, 1, 2, 3, 4), worker(500, 500, 0, 1, 0, 6)} {
		b, err := json.Marshal(w)
		if err != nil {
			t.Fatal(err)
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		back = append(back, &r)
	}
	rep := newReport(cfg)
	rep.ServerPID = 1
	rep.RSSBefore, rep.RSSConnected, rep.RSSPeak = 10<<20, 12<<20, 20<<20
	rep.ServerCPULoadSec = 0.9
	rep.ServerCPUSetupSec = 0.004
	rep.LoadgenCPULoadSec = 0.5
	rep.MachineCPULoadSec = 1.6
	rep.ServerSyscw = 450
	rep.SyscallGroups = map[string]int64{groupWrite: 90, groupRead: 9, groupEpoll: 18, groupAll: 180}
	for _, r := range back {
		rep.merge(r)
	}
	rep.finish()
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"delivered", float64(rep.Delivered), 900},
		{"expected", float64(rep.Expected), 1000},
		{"lost", float64(rep.Lost), 100},
		{"duplicates", float64(rep.Duplicates), 1},
		{"out of order", float64(rep.OutOfOrder), 3},
		{"wrong channel", float64(rep.WrongChannel), 3},
		{"delivered of failed triggers", float64(rep.DeliveredFailed), 10},
		{"connected", float64(rep.Connected), 20},
		{"latency samples", float64(rep.Latency.count()), 2},
		{"ratio", rep.DeliveryRatio, 0.9},
		{"msgs/s", rep.MsgsPerSec, 450},
		{"CPU µs per delivery", rep.CPUPerDeliveryUs, 1000},
		{"syscw per delivery", rep.SyscwPerDelivery, 0.5},
		{"writes per delivery", rep.WritesPerDelivery, 0.1},
		{"deliveries per write", rep.DeliveriesPerWriteCall, 10},
		{"syscalls per delivery", rep.SyscallsPerDelivery, 0.2},
		{"RSS growth", float64(rep.RSSGrowth), 8 << 20},
		{"other CPU", rep.OtherCPULoadSec, 0.2},
		{"bytes per connection", rep.BytesPerConn, float64(2<<20) / 20},
		{"CPU µs per connection", rep.CPUPerConnUs, 200},
	} {
		if d := c.got - c.want; d > 1e-9 || d < -1e-9 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if !rep.Closed || rep.Publishers != 8 || rep.Channels != 8 {
		t.Errorf("run shape %v %d %d", rep.Closed, rep.Publishers, rep.Channels)
	}
}

// TestReportIdle: the idle headline is the larger of the figure right
// after the ramp and the one at the end of the settle period.
func TestReportIdle(t *testing.T) {
	for _, tc := range []struct {
		name            string
		connected, last int64
		want            float64
	}{
		{name: "memory returned while idle", connected: 30 << 20, last: 20 << 20, want: float64(20<<20) / 1000},
		{name: "memory grew while idle", connected: 20 << 20, last: 30 << 20, want: float64(20<<20) / 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReport(&config{mode: modeIdle, channels: 1, publishers: 1})
			r.Connected = 1000
			r.RSSBefore, r.RSSConnected = 10<<20, tc.connected
			r.Settle = []rssSample{{AfterSec: 10, RSS: 25 << 20}, {AfterSec: 20, RSS: tc.last}}
			r.finish()
			if r.BytesPerConnIdle != tc.want {
				t.Errorf("headline %v, want %v (ramp %v, settled %v)", r.BytesPerConnIdle, tc.want, r.BytesPerConn, r.BytesPerConnSettled)
			}
		})
	}
}

func TestParsePerfStat(t *testing.T) {
	out := []byte(`1200,,syscalls:sys_enter_write,1000,100.00,,
300,,syscalls:sys_enter_writev,1000,100.00,,
0,,syscalls:sys_enter_sendto,1000,100.00,,
<not counted>,,syscalls:sys_enter_sendmsg,0,0.00,,
50,,syscalls:sys_enter_sendmmsg,1000,100.00,,
700,,syscalls:sys_enter_read,1000,100.00,,
7,,syscalls:sys_enter_recvfrom,1000,100.00,,
99,,syscalls:sys_enter_epoll_pwait,1000,100.00,,
5000,,raw_syscalls:sys_enter,1000,100.00,,
`)
	calls, groups, err := parsePerfStat(out)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{groupWrite: 1550, groupRead: 707, groupEpoll: 99, groupAll: 5000}
	for k, v := range want {
		if groups[k] != v {
			t.Errorf("group %s = %d, want %d", k, groups[k], v)
		}
	}
	if calls["writev"] != 300 || calls["sendmsg"] != 0 {
		t.Errorf("calls %v", calls)
	}
	if _, _, err := parsePerfStat([]byte("Error: no permission\n")); err == nil {
		t.Error("no counts accepted")
	}
}

// TestProbeSelf reads this process's own /proc figures.
func TestProbeSelf(t *testing.T) {
	p := serverProbe{pids: []int{os.Getpid()}}
	if p.rss() <= 0 {
		t.Error("no RSS")
	}
	r0, w0, ok := p.io()
	if !ok {
		t.Fatal("/proc/self/io not readable")
	}
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		f.Write([]byte("x"))
	}
	f.Close()
	r1, w1, _ := p.io()
	if w1-w0 < 10 || r1 < r0 {
		t.Errorf("syscw %d → %d, syscr %d → %d", w0, w1, r0, r1)
	}
	s := p.samplePeak(time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if peak, n := s.stop(); peak <= 0 || n < 2 {
		t.Errorf("peak %d over %d samples", peak, n)
	}
}

// TestChildArgs: a child parses the command line its parent gives it into
// the parent's load, with its own share of sockets and addresses.
func TestChildArgs(t *testing.T) {
	for _, args := range [][]string{
		{"-mode", "fanout", "-conns", "1000", "-channels", "10", "-publishers", "8", "-closed", "-events", "500", "-size", "64"},
		{"-mode", "fanout", "-conns", "1000", "-ws", "127.0.0.1:1,127.0.0.1:2", "-api", "127.0.0.1:3,127.0.0.1:4"},
		{"-mode", "idle", "-conns", "19500", "-settle", "1s"},
		{"-mode", "client-events", "-conns", "2000", "-events", "20", "-rate", "5"},
	} {
		parent, err := parseFlags(append(args, "-procs", "2"))
		if err != nil {
			t.Fatal(err)
		}
		child, err := parseFlags(parent.childArgs(1, 500, 1000, 12, time.Minute))
		if err != nil {
			t.Fatalf("%v: child: %v", args, err)
		}
		if child.mode != parent.mode || child.channels != parent.channels || child.publishers != parent.publishers ||
			child.events != parent.events || child.size != parent.size || child.conns != 500 || child.connOffset != 1000 || child.sourceFirst != 12 ||
			!child.child || child.childIndex != 1 || child.duration != time.Minute ||
			!slices.Equal(child.wsAddrs, parent.wsAddrs) || !slices.Equal(child.apiAddrs, parent.apiAddrs) {
			t.Errorf("%v: child config %+v from parent %+v", args, child, parent)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{name: "closed fanout", args: []string{"-closed", "-channels", "8", "-publishers", "8"}},
		{name: "idle", args: []string{"-mode", "idle", "-settle", "0s"}},
		{name: "closed outside fanout", args: []string{"-mode", "client-events", "-closed"}, err: "-closed and -channels"},
		{name: "channels outside fanout", args: []string{"-mode", "idle", "-channels", "2"}, err: "-closed and -channels"},
		{name: "no channels", args: []string{"-channels", "0"}, err: "-channels"},
		{name: "pprof elsewhere", args: []string{"-pprof", "10.0.0.1:6060"}, err: "loopback"},
		{name: "pprof on loopback", args: []string{"-pprof", "127.0.0.1:6060"}},
		{name: "profile too long", args: []string{"-pprof", "127.0.0.1:6060", "-profile-seconds", "0"}, err: "-profile-seconds"},
		{name: "unknown mode", args: []string{"-mode", "flood"}, err: "unknown -mode"},
		{name: "ws list", args: []string{"-ws", "127.0.0.1:1, 127.0.0.2:2,[::1]:3", "-api", "localhost:4,127.0.0.1:5"}},
		{name: "ws list with a hole", args: []string{"-ws", "127.0.0.1:1,,127.0.0.1:2"}, err: "empty address"},
		{name: "ws list going elsewhere", args: []string{"-ws", "127.0.0.1:1,192.168.1.1:2"}, err: "loopback"},
		{name: "api list going elsewhere", args: []string{"-api", "127.0.0.1:1,example.com:80"}, err: "loopback"},
		{name: "pid list", args: []string{"-pid", "10,11, 12", "-redis-pid", "13"}},
		{name: "pid twice", args: []string{"-pid", "10,10"}, err: "twice"},
		{name: "pid not a number", args: []string{"-pid", "10,x"}, err: "not a process id"},
		{name: "pid zero in a list", args: []string{"-pid", "10,0"}, err: "not a process id"},
		{name: "redis pid negative", args: []string{"-redis-pid", "-1"}, err: "-redis-pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args)
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("err = %v, want it to mention %q", err, tc.err)
			}
		})
	}
}

func TestMachineBusy(t *testing.T) {
	busy, err := parseMachineBusy([]byte("cpu  100 20 30 9000 50 5 6 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"))
	if err != nil || busy != 1.68 {
		t.Errorf("busy %v %v, want 1.68 s", busy, err)
	}
	if _, err := parseMachineBusy([]byte("intr 1 2 3\n")); err == nil {
		t.Error("no cpu line accepted")
	}
	if _, err := machineBusy(); err != nil {
		t.Fatal("/proc/stat:", err)
	}
}

// TestParseLists: -ws, -api and -pid lists come out in order, trimmed; a
// single value stays a list of one, and -pid 0 means none.
func TestParseLists(t *testing.T) {
	cfg, err := parseFlags([]string{"-ws", "127.0.0.1:1, 127.0.0.1:2", "-api", "127.0.0.1:3", "-pid", "7, 8,9"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.wsAddrs, []string{"127.0.0.1:1", "127.0.0.1:2"}) || !slices.Equal(cfg.apiAddrs, []string{"127.0.0.1:3"}) ||
		!slices.Equal(cfg.pids, []int{7, 8, 9}) {
		t.Errorf("ws %q, api %q, pids %v", cfg.wsAddrs, cfg.apiAddrs, cfg.pids)
	}
	if s := (*pidList)(&cfg.pids).String(); s != "7,8,9" {
		t.Errorf("pid list prints as %q", s)
	}
	cfg, err = parseFlags([]string{"-pid", "0"})
	if err != nil || len(cfg.pids) != 0 || len(cfg.wsAddrs) != 1 {
		t.Errorf("-pid 0: %v %v, ws %q", cfg.pids, err, cfg.wsAddrs)
	}
}

// TestTargetOf: the sockets of every child, each starting at its offset
// as startFleet hands them out, spread over the targets round robin, so
// that the totals per target differ by at most one.
func TestTargetOf(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		conns, procs, nTargets int
	}{
		{name: "6 nodes x 17000, 6 procs", conns: 102_000, procs: 6, nTargets: 6},
		{name: "7 nodes x 15000, 6 procs", conns: 105_000, procs: 6, nTargets: 7},
		{name: "uneven", conns: 1001, procs: 3, nTargets: 4},
		{name: "one target", conns: 10, procs: 2, nTargets: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			per := make([]int, tc.nTargets)
			offset := 0
			for i := range tc.procs {
				share := tc.conns / tc.procs
				if i < tc.conns%tc.procs {
					share++
				}
				for j := range share {
					per[targetOf(offset+j, tc.nTargets)]++
				}
				offset += share
			}
			if offset != tc.conns {
				t.Fatalf("handed out %d sockets, want %d", offset, tc.conns)
			}
			if lo, hi := slices.Min(per), slices.Max(per); hi-lo > 1 {
				t.Errorf("sockets per target %v", per)
			}
		})
	}
}

// TestReportTargets: per-target figures of two workers add up by position
// through the children's JSON, and finish derives each one's lost count;
// several servers' figures and Redis's CPU per event come out of finish.
func TestReportTargets(t *testing.T) {
	cfg := &config{mode: modeFanout, channel: "perf", channels: 1, publishers: 1, events: 10,
		wsAddrs: []string{"127.0.0.1:1", "127.0.0.1:2"}}
	worker := func(delivered0, delivered1 int64) *Report {
		r := newReport(cfg)
		r.Targets = newTargets(cfg.wsAddrs)
		for i, d := range []int64{delivered0, delivered1} {
			tg := r.Targets[i]
			tg.Conns, tg.Connected, tg.Subscribed, tg.Expected, tg.Delivered = 5, 5, 5, 50, d
			if d == 50 {
				tg.SocketsExact = 5
			}
			tg.Latency.record(time.Duration(d) * time.Millisecond)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		return &back
	}
	rep := newReport(cfg)
	rep.merge(worker(50, 40))
	rep.merge(worker(50, 50))
	rep.Published = 10
	rep.RedisPID, rep.RedisCPULoadSec = 1, 0.002
	rep.ServerCPULoadSec, rep.LoadgenCPULoadSec, rep.MachineCPULoadSec = 1, 1, 2.5
	rep.finish()
	if len(rep.Targets) != 2 {
		t.Fatalf("%d targets", len(rep.Targets))
	}
	for i, want := range []struct{ conns, delivered, lost, exact int64 }{{10, 100, 0, 10}, {10, 90, 10, 5}} {
		tg := rep.Targets[i]
		if int64(tg.Conns) != want.conns || tg.Delivered != want.delivered || tg.Lost != want.lost || tg.SocketsExact != want.exact ||
			tg.Latency.count() != 2 || tg.Addr != cfg.wsAddrs[i] {
			t.Errorf("target %d: %+v, want %+v", i, *tg, want)
		}
	}
	if rep.RedisCPUPerEventUs != 200 {
		t.Errorf("Redis CPU per event %v µs, want 200", rep.RedisCPUPerEventUs)
	}
	if d := rep.OtherCPULoadSec - 0.498; d > 1e-9 || d < -1e-9 {
		t.Errorf("other CPU %v, want 0.498 (machine less servers, Redis and loadgen)", rep.OtherCPULoadSec)
	}
	mismatched := newReport(cfg)
	mismatched.merge(worker(50, 50))
	other := worker(50, 50)
	other.Targets[1].Addr = "127.0.0.1:3"
	mismatched.merge(other)
	if len(mismatched.Notes) != 1 || mismatched.Targets[1].Conns != 5 {
		t.Errorf("a worker with other targets: notes %q, target 1 has %d conns", mismatched.Notes, mismatched.Targets[1].Conns)
	}
}

// TestProbeSeveral reads two processes' figures, this one and a child:
// the sums are the sums of each one's.
func TestProbeSeveral(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	if err := cmd.Start(); err != nil {
		t.Fatal("sleep(1):", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	p := serverProbe{pids: []int{os.Getpid(), cmd.Process.Pid}}
	each := p.rssEach()
	if len(each) != 2 || each[0] <= 0 || each[1] <= 0 {
		t.Fatalf("RSS of each %v", each)
	}
	if total, each := p.cpu(); len(each) != 2 || total != each[0]+each[1] {
		t.Errorf("CPU %v, of each %v", total, each)
	}
	s := p.samplePeak(time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	peak, n := s.stop()
	if n < 2 || s.each[0] <= 0 || s.each[1] <= 0 || peak < s.each[1] || peak > s.each[0]+s.each[1] {
		t.Errorf("peak %d of the sum, each %v, %d samples", peak, s.each, n)
	}
	if _, _, ok := (serverProbe{}).io(); ok {
		t.Error("io of no process is ok")
	}
}

func TestParsePortRangeHalf(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{in: "32768\t60999\n", want: 14116},
		{in: "10000 65535", want: 27768},
		{in: "nonsense", want: 0},
		{in: "5 4", want: 0},
	} {
		if got := parsePortRangeHalf([]byte(tc.in)); got != tc.want {
			t.Errorf("parsePortRangeHalf(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
