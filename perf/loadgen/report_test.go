package main

import (
	"encoding/json"
	"os"
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
	p := serverProbe{pid: os.Getpid()}
	if p.rss() <= 0 {
		t.Error("no RSS")
	}
	r0, w0, ok := p.io()
	if !ok {
		t.Skip("/proc/self/io not readable here")
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
		{"-mode", "idle", "-conns", "19500", "-settle", "1s"},
		{"-mode", "client-events", "-conns", "2000", "-events", "20", "-rate", "5"},
	} {
		parent, err := parseFlags(append(args, "-procs", "2"))
		if err != nil {
			t.Fatal(err)
		}
		child, err := parseFlags(parent.childArgs(1, 500, 12, time.Minute))
		if err != nil {
			t.Fatalf("%v: child: %v", args, err)
		}
		if child.mode != parent.mode || child.channels != parent.channels || child.publishers != parent.publishers ||
			child.events != parent.events || child.size != parent.size || child.conns != 500 || child.sourceFirst != 12 ||
			!child.child || child.childIndex != 1 || child.duration != time.Minute {
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
		t.Skip("/proc/stat:", err)
	}
}
