package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Phase ranks of a worker, in the order it reaches them.
const (
	rankStarted = iota
	rankReady
	rankRan
	rankDrained
	rankReported
	rankExited
)

var msgRank = map[string]int{msgReady: rankReady, msgRan: rankRan, msgDrained: rankDrained, msgReport: rankReported}

// fleet is the coordinator's view of its workers, in process or children.
type fleet struct {
	rank    []int
	sent    []int64
	reports []*Report
	msgs    chan workerMsg
	ctrl    []func(ctrlMsg)
	finish  []func() // releases a worker after its report (waits for a child)
	notes   []string
	mu      sync.Mutex // guards notes
}

// exitMsg is the pseudo message of a worker whose stream ended.
const exitMsg = "exit"

func (f *fleet) apply(m workerMsg) {
	if m.Type == exitMsg {
		f.rank[m.Index] = rankExited
		return
	}
	if r, ok := msgRank[m.Type]; ok && r > f.rank[m.Index] {
		f.rank[m.Index] = r
	}
	switch m.Type {
	case msgRan:
		f.sent[m.Index] = m.Sent
	case msgReport:
		f.reports[m.Index] = m.Report
	}
}

// wait returns once every worker reached rank r (or exited), or at deadline.
func (f *fleet) wait(r int, deadline time.Time) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		all := true
		for _, x := range f.rank {
			if x < r {
				all = false
				break
			}
		}
		if all {
			return true
		}
		select {
		case m := <-f.msgs:
			f.apply(m)
		case <-timer.C:
			return false
		}
	}
}

func (f *fleet) broadcast(m ctrlMsg) {
	for i, send := range f.ctrl {
		if f.rank[i] < rankExited {
			send(m)
		}
	}
}

func (f *fleet) note(s string) {
	f.mu.Lock()
	f.notes = append(f.notes, s)
	f.mu.Unlock()
}

// coordinate runs the whole measurement and returns the merged report.
// The server's figures for the load (CPU, syscalls, peak RSS) are taken
// from just before go to the moment every worker has its deliveries in,
// while the sockets are still open: connecting and closing them is not
// part of the load.
func coordinate(cfg *config) *Report {
	begin := time.Now()
	deadline := begin.Add(cfg.duration)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	probe := serverProbe{pids: cfg.pids}
	redis := serverProbe{pids: cfg.redisPIDs}
	progress := func(format string, a ...any) {
		if !cfg.quiet {
			fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", a...)
		}
	}
	rep := newReport(cfg)
	rep.Command = commandLine()
	rep.Procs = cfg.procs
	if len(cfg.pids) > 0 {
		rep.ServerPID = cfg.pids[0]
	}
	if len(cfg.pids) > 1 {
		rep.ServerPIDs = cfg.pids
	}
	if len(cfg.redisPIDs) > 0 {
		rep.RedisPID = cfg.redisPIDs[0]
	}
	if len(cfg.redisPIDs) > 1 {
		rep.RedisPIDs = cfg.redisPIDs
	}
	rssBefore := probe.rssEach()
	cpu0, cpuEach0 := probe.cpu()
	for i, n := range rssBefore {
		rep.RSSBefore += n
		if n == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("cannot read /proc/%d/status", cfg.pids[i]))
		}
	}
	redisCPU0, _ := redis.cpu()
	for i, n := range redis.rssEach() {
		if n == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("-redis-pid: cannot read /proc/%d/status", cfg.redisPIDs[i]))
		}
	}
	if n := fdLimit(); n > 0 && uint64((cfg.conns+cfg.procs-1)/cfg.procs)+64 > n {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d sockets per process exceed the descriptor limit %d: use -procs", (cfg.conns+cfg.procs-1)/cfg.procs, n))
	}
	if perAddr, most := (cfg.conns+cfg.procs*cfg.sources-1)/(cfg.procs*cfg.sources), bindFastLimit(); most > 0 && perAddr > most && !cfg.bindNoPort {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d sockets per source address: binding a source port slows to milliseconds past about %d (half the ephemeral range); add -sources", perAddr, most))
	}

	// Workers get a little longer than the coordinator so that, when the
	// deadline hits, it is the coordinator that tells them to report.
	workerCap := cfg.duration + cfg.drain + 10*time.Second
	if cfg.pprofAddr != "" {
		workerCap += time.Duration(cfg.profileSecs)*time.Second + 40*time.Second
	}
	f := startFleet(cfg, workerCap)
	defer func() {
		for _, fin := range f.finish {
			fin()
		}
	}()

	progress("%s: opening %d sockets to %s (%d proc)", cfg.mode, cfg.conns, cfg.wsAddr, cfg.procs)
	f.wait(rankReady, deadline)
	rssConnected := probe.rssEach()
	for _, n := range rssConnected {
		rep.RSSConnected += n
	}
	progress("setup over after %.2f s", time.Since(begin).Seconds())

	var sc *syscallCounter
	if cfg.syscalls && len(cfg.pids) > 0 {
		var err error
		if sc, err = startSyscallCount(cfg.pids); err != nil {
			rep.Notes = append(rep.Notes, "-syscalls: "+err.Error())
		}
	}
	var prof *profiler
	if cfg.pprofAddr != "" {
		var err error
		if prof, err = startProfile(cfg.pprofAddr, cfg.profileDir, cfg.profileSecs); err != nil {
			rep.Notes = append(rep.Notes, "-pprof: "+err.Error())
		}
	}
	cpuGo, cpuEachGo := probe.cpu()
	redisGo, _ := redis.cpu()
	selfGo, _ := cpuSeconds(os.Getpid())
	machineGo, machineErr := machineBusy()
	syscr0, syscw0, ioOK := probe.io()
	peak := probe.samplePeak(cfg.rssEvery)
	f.broadcast(ctrlMsg{Type: msgGo})
	var pub *publishResult
	switch cfg.mode {
	case modeFanout:
		how := fmt.Sprintf("at %g/s", cfg.rate)
		if cfg.closed {
			how = "closed loop"
		}
		progress("triggering %d events on %d channels from %d publishers, %s", cfg.events, cfg.channels, cfg.publishers, how)
		pub = publish(ctx, cfg)
	case modeConnect:
		progress("holding for %s", cfg.hold)
		t := time.NewTimer(cfg.hold)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	case modeIdle:
		progress("idle for %s, %d RSS samples", cfg.settle, cfg.samples)
		rep.Settle = probe.sampleSettle(ctx, cfg.settle, cfg.samples)
	case modeClientEvents:
		progress("sending %d client events per socket at %.1f/s", cfg.events, cfg.rate)
	}
	f.wait(rankRan, deadline)
	drainUntil := time.Now().Add(cfg.drain)
	if drainUntil.After(deadline) {
		drainUntil = deadline
	}
	if time.Now().After(deadline) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("stopped by -duration %s", cfg.duration))
		drainUntil = time.Now()
	}
	done := ctrlMsg{Type: msgDone, DrainUntil: drainUntil.UnixNano()}
	if pub != nil {
		done.PublishedPerChannel = pub.perChannel
		done.Failed = pub.failed
		if pub.nFailed > len(pub.failed) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%d triggers failed; only the first %d are told apart from the successful ones", pub.nFailed, len(pub.failed)))
		}
	}
	progress("waiting for deliveries until %s", drainUntil.Format("15:04:05.000"))
	f.broadcast(done)
	if !f.wait(rankDrained, drainUntil.Add(20*time.Second)) {
		rep.Notes = append(rep.Notes, "a worker did not finish draining in time")
	}
	cpuDrained, cpuEachDrained := probe.cpu()
	redisDrained, _ := redis.cpu()
	selfDrained, _ := cpuSeconds(os.Getpid())
	machineDrained, machineErr1 := machineBusy()
	syscr1, syscw1, ioOK1 := probe.io()
	rep.RSSPeak, rep.RSSSamples = peak.stop()
	if sc != nil {
		calls, groups, err := sc.stop()
		if err != nil {
			rep.Notes = append(rep.Notes, "-syscalls: "+err.Error())
		}
		rep.Syscalls, rep.SyscallGroups = calls, groups
	}
	if prof != nil {
		progress("fetching profiles into %s", cfg.profileDir)
		files, problems := prof.finish()
		rep.Profiles = files
		for _, p := range problems {
			rep.Notes = append(rep.Notes, "-pprof: "+p)
		}
	}
	f.broadcast(ctrlMsg{Type: msgClose})
	if !f.wait(rankReported, time.Now().Add(30*time.Second)) {
		rep.Notes = append(rep.Notes, "a worker did not report in time; its sockets are missing")
	}
	cpuEnd, cpuEachEnd := probe.cpu()
	redisEnd, _ := redis.cpu()
	rssEnd := probe.rssEach()
	for _, n := range rssEnd {
		rep.RSSEnd += n
	}

	for i, wr := range f.reports {
		if wr == nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("worker %d sent no report", i))
			continue
		}
		rep.merge(wr)
	}
	rep.Notes = append(rep.Notes, f.notes...)
	rep.LoadgenCPULoadSec += selfDrained - selfGo
	if machineErr == nil && machineErr1 == nil {
		rep.MachineCPULoadSec = machineDrained - machineGo
	}
	if pub != nil {
		rep.Published = pub.published
		rep.PublishFailed = pub.nFailed
		rep.PublishStatus = pub.status
		if len(pub.errors) > 0 {
			rep.PublishErrors = pub.errors
		}
		rep.PublishLatency.merge(&pub.latency)
		rep.DeliveryStartNs = pub.start.UnixNano()
		rep.PublishSec = pub.end.Sub(pub.start).Seconds()
	}
	if len(cfg.pids) > 0 {
		rep.ServerCPUSec = cpuEnd - cpu0
		rep.ServerCPULoadSec = cpuDrained - cpuGo
		rep.ServerCPUSetupSec = cpuGo - cpu0
		if ioOK && ioOK1 {
			rep.ServerSyscr = syscr1 - syscr0
			rep.ServerSyscw = syscw1 - syscw0
		}
	}
	if len(cfg.pids) > 1 {
		for i, pid := range cfg.pids {
			rep.Servers = append(rep.Servers, serverReport{
				PID: pid, RSSBefore: rssBefore[i], RSSConnected: rssConnected[i], RSSPeak: peak.each[i], RSSEnd: rssEnd[i],
				CPUSec: cpuEachEnd[i] - cpuEach0[i], CPULoadSec: cpuEachDrained[i] - cpuEachGo[i],
			})
		}
	}
	if len(cfg.redisPIDs) > 0 {
		rep.RedisCPUSec = redisEnd - redisCPU0
		rep.RedisCPULoadSec = redisDrained - redisGo
		rep.RedisRSSEnd = redis.rss()
	}
	rep.ElapsedSec = time.Since(begin).Seconds()
	rep.finish()
	return rep
}

// startFleet starts the workers: one goroutine when cfg.procs is 1, else
// cfg.procs children of this binary, each with a share of the sockets and
// its own source addresses, killed at the latest after workerCap + 30 s.
func startFleet(cfg *config, workerCap time.Duration) *fleet {
	n := cfg.procs
	f := &fleet{
		rank:    make([]int, n),
		sent:    make([]int64, n),
		reports: make([]*Report, n),
		msgs:    make(chan workerMsg, 16*n),
		ctrl:    make([]func(ctrlMsg), n),
		finish:  make([]func(), n),
	}
	if n == 1 {
		ctrl := make(chan ctrlMsg, 4)
		ctx, cancel := context.WithTimeout(context.Background(), workerCap)
		exited := make(chan struct{})
		go func() {
			defer close(exited)
			runWorker(ctx, cfg, 0, ctrl, func(m workerMsg) { f.msgs <- m })
		}()
		var once sync.Once
		f.ctrl[0] = func(m ctrlMsg) { ctrl <- m }
		f.finish[0] = func() {
			once.Do(func() { close(ctrl) })
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
			}
			cancel()
		}
		return f
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	units, unit := cfg.conns, 1
	if cfg.mode == modeClientEvents {
		units, unit = cfg.conns/2, 2 // children get whole pairs
	}
	offset := 0
	for i := range n {
		share := units / n
		if i < units%n {
			share++
		}
		f.startChild(i, self, cfg.childArgs(i, share*unit, offset, cfg.sourceFirst+i*cfg.sources, workerCap), workerCap+30*time.Second)
		offset += share * unit
	}
	return f
}

// startChild runs one child and bridges its stdin and stdout to the fleet.
func (f *fleet) startChild(i int, self string, args []string, kill time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), kill)
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 2 * time.Second
	stdin, err1 := cmd.StdinPipe()
	stdout, err2 := cmd.StdoutPipe()
	if err := firstErr(err1, err2, cmd.Start()); err != nil {
		f.note(fmt.Sprintf("child %d: %v", i, err))
		f.rank[i] = rankExited
		f.ctrl[i] = func(ctrlMsg) {}
		f.finish[i] = cancel
		return
	}
	var wmu sync.Mutex
	enc := json.NewEncoder(stdin)
	f.ctrl[i] = func(m ctrlMsg) {
		wmu.Lock()
		defer wmu.Unlock()
		_ = enc.Encode(m)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			var m workerMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				f.note(fmt.Sprintf("child %d: bad line %q", i, truncate(sc.Text(), 100)))
				continue
			}
			m.Index = i
			f.msgs <- m
		}
		f.msgs <- workerMsg{Type: exitMsg, Index: i}
	}()
	f.finish[i] = func() {
		wmu.Lock()
		stdin.Close()
		wmu.Unlock()
		if err := cmd.Wait(); err != nil {
			f.note(fmt.Sprintf("child %d: %v", i, err))
		}
		cancel()
	}
}

// childArgs is the command line of child i: every flag of the parent with
// the child's share of sockets (conns of them, the first being socket
// connOffset of the whole run) and source addresses.
func (c *config) childArgs(i, conns, connOffset, sourceFirst int, duration time.Duration) []string {
	args := []string{
		"-child", "-child-index=" + strconv.Itoa(i),
		"-mode=" + c.mode,
		"-ws=" + c.wsAddr, "-api=" + c.apiAddr,
		"-app-id=" + c.appID, "-key=" + c.key, "-secret=" + c.secret,
		"-conns=" + strconv.Itoa(conns),
		"-conn-offset=" + strconv.Itoa(connOffset),
		"-sources=" + strconv.Itoa(c.sources),
		"-source-first=" + strconv.Itoa(sourceFirst),
		"-channel=" + c.channel,
		"-channels=" + strconv.Itoa(c.channels),
		"-publishers=" + strconv.Itoa(c.publishers),
		"-events=" + strconv.Itoa(c.events),
		"-rate=" + strconv.FormatFloat(c.rate, 'g', -1, 64),
		"-size=" + strconv.Itoa(c.size),
		"-concurrency=" + strconv.Itoa(c.concurrency),
		"-readbuf=" + strconv.Itoa(c.readBuf),
		"-duration=" + duration.String(),
		"-drain=" + c.drain.String(),
	}
	if c.bindNoPort {
		args = append(args, "-bind-no-port")
	}
	if c.retry > 0 {
		args = append(args, "-retry="+c.retry.String())
	}
	if c.tls {
		args = append(args, "-tls", "-api-plain="+strconv.FormatBool(c.apiPlain), "-ca="+c.caFile)
		if c.tlsGroups != nil {
			args = append(args, "-tls-groups="+c.tlsGroups.String())
		}
	}
	return args
}

// runChild is main for a -child: control lines on stdin, messages on
// stdout, one JSON object a line.
func runChild(cfg *config) int {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	ctrl := make(chan ctrlMsg, 4)
	go func() {
		defer close(ctrl)
		dec := json.NewDecoder(os.Stdin)
		for {
			var m ctrlMsg
			if err := dec.Decode(&m); err != nil {
				if err != io.EOF {
					fmt.Fprintln(os.Stderr, "loadgen child:", err)
				}
				return
			}
			ctrl <- m
		}
	}()
	enc := json.NewEncoder(os.Stdout)
	var mu sync.Mutex
	runWorker(ctx, cfg, cfg.childIndex, ctrl, func(m workerMsg) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(m); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen child:", err)
		}
	})
	return 0
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// commandLine is how this run was invoked, for the report.
func commandLine() string {
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		if strings.ContainsAny(a, " \t\"'$") {
			a = strconv.Quote(a)
		}
		args[i] = a
	}
	if len(args) > 0 {
		args[0] = "loadgen"
	}
	return strings.Join(args, " ")
}
