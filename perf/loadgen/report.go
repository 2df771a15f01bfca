package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one run measured. Workers fill the socket side; the
// coordinator merges them and adds the publishing side and the server's
// /proc figures. All times are unix nanoseconds unless the name says
// otherwise; derived figures are recomputed by finish after a merge.
type Report struct {
	Mode       string    `json:"mode"`
	Command    string    `json:"command,omitempty"`
	Date       time.Time `json:"date"`
	Procs      int       `json:"procs"`
	Channel    string    `json:"channel"`
	Channels   int       `json:"channels"`
	EventSize  int       `json:"event_size,omitempty"`
	Rate       float64   `json:"rate"`
	Closed     bool      `json:"closed,omitempty"`
	Publishers int       `json:"publishers"`

	SourceAddrs int    `json:"source_addrs"`
	SourceFirst string `json:"source_first"`

	Conns      int            `json:"conns"`
	Connected  int64          `json:"connected"`
	Subscribed int64          `json:"subscribed"`
	Failures   map[string]int `json:"failures,omitempty"`
	// TLS counts the sockets' TLS handshakes by what they settled on:
	// version, cipher suite and key exchange (-tls).
	TLS map[string]int `json:"tls,omitempty"`
	// Retries counts the dials tried again (-retry) by why the attempt
	// before failed; a socket may retry several times.
	Retries           map[string]int `json:"retries,omitempty"`
	FirstDialNs       int64          `json:"first_dial_ns"`
	LastEstablishedNs int64          `json:"last_established_ns"`
	ConnectSec        float64        `json:"connect_sec"`
	ConnectsPerSec    float64        `json:"connects_per_sec"`
	ConnectLatency    *hist          `json:"connect_latency"`
	SubscribeLatency  *hist          `json:"subscribe_latency"`

	Events         int            `json:"events"`
	Published      int            `json:"published"`
	PublishFailed  int            `json:"publish_failed,omitempty"`
	PublishStatus  map[string]int `json:"publish_status,omitempty"`
	PublishErrors  map[string]int `json:"publish_errors,omitempty"`
	PublishLatency *hist          `json:"publish_latency"`
	PublishSec     float64        `json:"publish_sec,omitempty"`
	Sent           int64          `json:"sent"`

	// Expected counts every event answered 200 once per subscriber of its
	// channel (client events: every one sent); Delivered counts distinct
	// expected deliveries, Lost the expected ones that never came.
	// OutOfOrder counts deliveries that came after a later one of the same
	// publisher. DeliveredFailed counts deliveries of events whose trigger
	// was not answered 200.
	Expected        int64   `json:"expected"`
	Delivered       int64   `json:"delivered"`
	Lost            int64   `json:"lost"`
	DeliveryRatio   float64 `json:"delivery_ratio"`
	Duplicates      int64   `json:"duplicates"`
	OutOfOrder      int64   `json:"out_of_order"`
	Unexpected      int64   `json:"unexpected"`
	WrongChannel    int64   `json:"wrong_channel,omitempty"`
	DeliveredFailed int64   `json:"delivered_failed,omitempty"`
	Latency         *hist   `json:"latency"`
	DeliveryStartNs int64   `json:"delivery_start_ns"`
	LastDeliveryNs  int64   `json:"last_delivery_ns"`
	DeliverySec     float64 `json:"delivery_sec"`
	MsgsPerSec      float64 `json:"msgs_per_sec"`

	// SocketsExact counts the subscribed sockets that received every event
	// they were expected to, each once and in its publisher's order
	// (fanout).
	SocketsExact int64 `json:"sockets_exact,omitempty"`

	// Targets: with several -ws targets, what each one's sockets saw.
	Targets []*targetReport `json:"targets,omitempty"`

	Drops        map[string]int `json:"drops,omitempty"`
	Closes       map[string]int `json:"server_closes,omitempty"`
	ServerErrors map[string]int `json:"server_errors,omitempty"`
	FrameErrors  map[string]int `json:"frame_errors,omitempty"`
	OtherEvents  map[string]int `json:"other_events,omitempty"`

	// The server, with -pid. "Load" figures run from just before go until
	// every worker had its deliveries in, sockets still open. With several
	// PIDs (a cluster's nodes) ServerPID is the first, the RSS and CPU
	// figures are sums over them (RSSPeak the peak of the sum), and Servers
	// holds each one's own.
	ServerPID        int     `json:"server_pid,omitempty"`
	ServerPIDs       []int   `json:"server_pids,omitempty"`
	RSSBefore        int64   `json:"server_rss_before,omitempty"`
	RSSConnected     int64   `json:"server_rss_connected,omitempty"`
	RSSPeak          int64   `json:"server_rss_peak,omitempty"` // largest sample during the load
	RSSSamples       int     `json:"server_rss_samples,omitempty"`
	RSSGrowth        int64   `json:"server_rss_growth,omitempty"` // peak minus connected
	RSSEnd           int64   `json:"server_rss_end,omitempty"`
	BytesPerConn     float64 `json:"server_bytes_per_conn,omitempty"` // (connected - before) / connections
	ServerCPUSec     float64 `json:"server_cpu_sec,omitempty"`
	ServerCPULoadSec float64 `json:"server_cpu_load_sec,omitempty"`
	// ServerCPUSetupSec is the server's CPU while the sockets were opened
	// (TCP, TLS handshake, upgrade, subscription), from before the first
	// dial until every socket was ready; CPUPerConnUs divides it by the
	// sockets connected.
	ServerCPUSetupSec float64 `json:"server_cpu_setup_sec,omitempty"`
	CPUPerConnUs      float64 `json:"server_cpu_per_conn_us,omitempty"`
	CPUPerDeliveryUs  float64 `json:"server_cpu_per_delivery_us,omitempty"`
	ServerSyscr       int64   `json:"server_syscr,omitempty"` // during the load, /proc/PID/io
	ServerSyscw       int64   `json:"server_syscw,omitempty"`
	SyscwPerDelivery  float64 `json:"server_syscw_per_delivery,omitempty"`

	Servers []serverReport `json:"servers,omitempty"`

	// Redis, with -redis-pid: its CPU seconds in total and during the load
	// (user+sys of /proc/PID/stat), per event published, and its RSS at
	// the end.
	RedisPID           int     `json:"redis_pid,omitempty"`
	RedisPIDs          []int   `json:"redis_pids,omitempty"` // a Redis Cluster's primaries, summed
	RedisCPUSec        float64 `json:"redis_cpu_sec,omitempty"`
	RedisCPULoadSec    float64 `json:"redis_cpu_load_sec,omitempty"`
	RedisCPUPerEventUs float64 `json:"redis_cpu_per_event_us,omitempty"`
	RedisRSSEnd        int64   `json:"redis_rss_end,omitempty"`

	// -syscalls: perf stat counts during the load, by system call and by
	// group (write/send, read/recv, epoll_wait, all).
	Syscalls               map[string]int64 `json:"server_syscalls,omitempty"`
	SyscallGroups          map[string]int64 `json:"server_syscall_groups,omitempty"`
	WritesPerDelivery      float64          `json:"server_writes_per_delivery,omitempty"`
	SyscallsPerDelivery    float64          `json:"server_syscalls_per_delivery,omitempty"`
	ReadsPerDelivery       float64          `json:"server_reads_per_delivery,omitempty"`
	EpollWaitsPerDelivery  float64          `json:"server_epoll_waits_per_delivery,omitempty"`
	DeliveriesPerWriteCall float64          `json:"server_deliveries_per_write,omitempty"`

	// Idle mode: RSS through the settle period, bytes per connection right
	// after the ramp and at the end of the settle period, and the larger
	// of the two.
	Settle              []rssSample `json:"server_rss_settle,omitempty"`
	BytesPerConnSettled float64     `json:"server_bytes_per_conn_settled,omitempty"`
	BytesPerConnIdle    float64     `json:"server_bytes_per_conn_idle,omitempty"`

	Profiles []string `json:"profiles,omitempty"`

	// The load generator itself: peak RSS (summed over processes) and CPU
	// seconds during the load; on a shared machine it competes with the
	// server for the same cores.
	LoadgenRSS        int64   `json:"loadgen_rss_peak"`
	LoadgenCPULoadSec float64 `json:"loadgen_cpu_load_sec,omitempty"`
	// The whole machine's busy CPU seconds during the load, and what of it
	// neither the server (with -pid), Redis (with -redis-pid) nor the load
	// generator used: other work on a shared machine, which disturbs the
	// figures.
	MachineCPULoadSec float64 `json:"machine_cpu_load_sec,omitempty"`
	OtherCPULoadSec   float64 `json:"other_cpu_load_sec,omitempty"`

	ElapsedSec float64  `json:"elapsed_sec"`
	Notes      []string `json:"notes,omitempty"`
}

// serverReport is one server process's figures, with several -pid.
type serverReport struct {
	PID          int     `json:"pid"`
	RSSBefore    int64   `json:"rss_before"`
	RSSConnected int64   `json:"rss_connected"`
	RSSPeak      int64   `json:"rss_peak"`
	RSSEnd       int64   `json:"rss_end"`
	CPUSec       float64 `json:"cpu_sec"`
	CPULoadSec   float64 `json:"cpu_load_sec"`
}

// targetReport is what the sockets of one -ws target saw.
type targetReport struct {
	Addr       string `json:"addr"`
	Conns      int    `json:"conns"`
	Connected  int64  `json:"connected"`
	Subscribed int64  `json:"subscribed"`
	// Expected, Delivered, Lost and SocketsExact as in Report, for this
	// target's sockets (Expected and SocketsExact in fanout only).
	Expected     int64 `json:"expected"`
	Delivered    int64 `json:"delivered"`
	Lost         int64 `json:"lost"`
	SocketsExact int64 `json:"sockets_exact"`
	Latency      *hist `json:"latency"`
}

// newTargets is an empty targetReport per address of addrs when there are
// several, else nil.
func newTargets(addrs []string) []*targetReport {
	if len(addrs) < 2 {
		return nil
	}
	out := make([]*targetReport, len(addrs))
	for i, a := range addrs {
		out[i] = &targetReport{Addr: a, Latency: &hist{}}
	}
	return out
}

// mergeTargets adds o's per-target figures into r's, matching them by
// position: every process has the same -ws list.
func (r *Report) mergeTargets(o []*targetReport) {
	if r.Targets == nil && len(o) > 0 {
		r.Targets = make([]*targetReport, len(o))
		for i, t := range o {
			r.Targets[i] = &targetReport{Addr: t.Addr, Latency: &hist{}}
		}
	}
	for i, t := range o {
		if i >= len(r.Targets) || r.Targets[i].Addr != t.Addr {
			r.Notes = append(r.Notes, fmt.Sprintf("target %d (%s) of a worker does not match", i, t.Addr))
			continue
		}
		d := r.Targets[i]
		d.Conns += t.Conns
		d.Connected += t.Connected
		d.Subscribed += t.Subscribed
		d.Expected += t.Expected
		d.Delivered += t.Delivered
		d.SocketsExact += t.SocketsExact
		d.Latency.merge(t.Latency)
	}
}

func newReport(cfg *config) *Report {
	return &Report{
		Mode:             cfg.mode,
		Date:             time.Now().UTC(),
		Procs:            1,
		Channel:          cfg.channel,
		Channels:         cfg.channels,
		EventSize:        cfg.size,
		Rate:             cfg.rate,
		Closed:           cfg.closed,
		Publishers:       cfg.publishers,
		Events:           cfg.events,
		ConnectLatency:   &hist{},
		SubscribeLatency: &hist{},
		PublishLatency:   &hist{},
		Latency:          &hist{},
	}
}

// merge adds a worker's report into r.
func (r *Report) merge(o *Report) {
	r.Conns += o.Conns
	r.Connected += o.Connected
	r.Subscribed += o.Subscribed
	r.SourceAddrs += o.SourceAddrs
	if r.SourceFirst == "" {
		r.SourceFirst = o.SourceFirst
	}
	if o.FirstDialNs != 0 && (r.FirstDialNs == 0 || o.FirstDialNs < r.FirstDialNs) {
		r.FirstDialNs = o.FirstDialNs
	}
	r.LastEstablishedNs = max(r.LastEstablishedNs, o.LastEstablishedNs)
	r.ConnectLatency.merge(o.ConnectLatency)
	r.SubscribeLatency.merge(o.SubscribeLatency)
	r.Latency.merge(o.Latency)
	r.Sent += o.Sent
	r.Expected += o.Expected
	r.Delivered += o.Delivered
	r.Duplicates += o.Duplicates
	r.OutOfOrder += o.OutOfOrder
	r.Unexpected += o.Unexpected
	r.WrongChannel += o.WrongChannel
	r.DeliveredFailed += o.DeliveredFailed
	if o.DeliveryStartNs != 0 && (r.DeliveryStartNs == 0 || o.DeliveryStartNs < r.DeliveryStartNs) {
		r.DeliveryStartNs = o.DeliveryStartNs
	}
	r.LastDeliveryNs = max(r.LastDeliveryNs, o.LastDeliveryNs)
	r.SocketsExact += o.SocketsExact
	r.mergeTargets(o.Targets)
	r.LoadgenRSS += o.LoadgenRSS
	r.LoadgenCPULoadSec += o.LoadgenCPULoadSec
	for _, p := range []struct{ dst, src *map[string]int }{
		{&r.Failures, &o.Failures}, {&r.Drops, &o.Drops}, {&r.Closes, &o.Closes},
		{&r.ServerErrors, &o.ServerErrors}, {&r.FrameErrors, &o.FrameErrors},
		{&r.OtherEvents, &o.OtherEvents}, {&r.TLS, &o.TLS}, {&r.Retries, &o.Retries},
	} {
		for k, v := range *p.src {
			if *p.dst == nil {
				*p.dst = map[string]int{}
			}
			(*p.dst)[k] += v
		}
	}
	r.Notes = append(r.Notes, o.Notes...)
}

// finish computes the derived figures.
func (r *Report) finish() {
	if r.LastEstablishedNs > r.FirstDialNs && r.FirstDialNs > 0 {
		r.ConnectSec = float64(r.LastEstablishedNs-r.FirstDialNs) / 1e9
		r.ConnectsPerSec = float64(r.Connected) / r.ConnectSec
	}
	r.Lost = max(r.Expected-r.Delivered, 0)
	if r.Expected > 0 {
		r.DeliveryRatio = float64(r.Delivered) / float64(r.Expected)
	}
	if r.LastDeliveryNs > r.DeliveryStartNs && r.DeliveryStartNs > 0 {
		r.DeliverySec = float64(r.LastDeliveryNs-r.DeliveryStartNs) / 1e9
		r.MsgsPerSec = float64(r.Delivered) / r.DeliverySec
	}
	if r.RSSConnected > 0 && r.Connected > 0 {
		r.BytesPerConn = float64(r.RSSConnected-r.RSSBefore) / float64(r.Connected)
	}
	if r.RSSPeak > 0 && r.RSSConnected > 0 {
		r.RSSGrowth = r.RSSPeak - r.RSSConnected
	}
	if len(r.Settle) > 0 && r.Connected > 0 && r.RSSBefore > 0 {
		r.BytesPerConnSettled = float64(r.Settle[len(r.Settle)-1].RSS-r.RSSBefore) / float64(r.Connected)
		r.BytesPerConnIdle = max(r.BytesPerConn, r.BytesPerConnSettled)
	}
	for _, t := range r.Targets {
		t.Lost = max(t.Expected-t.Delivered, 0)
	}
	if r.ServerCPUSetupSec > 0 && r.Connected > 0 {
		r.CPUPerConnUs = r.ServerCPUSetupSec * 1e6 / float64(r.Connected)
	}
	if r.MachineCPULoadSec > 0 {
		r.OtherCPULoadSec = max(r.MachineCPULoadSec-r.ServerCPULoadSec-r.RedisCPULoadSec-r.LoadgenCPULoadSec, 0)
	}
	if r.RedisCPULoadSec > 0 && r.Published > 0 {
		r.RedisCPUPerEventUs = r.RedisCPULoadSec * 1e6 / float64(r.Published)
	}
	if d := float64(r.Delivered); d > 0 {
		perDelivery := func(n float64) float64 { return n / d }
		if r.ServerCPULoadSec > 0 {
			r.CPUPerDeliveryUs = perDelivery(r.ServerCPULoadSec * 1e6)
		}
		r.SyscwPerDelivery = perDelivery(float64(r.ServerSyscw))
		if g := r.SyscallGroups; g != nil {
			r.WritesPerDelivery = perDelivery(float64(g[groupWrite]))
			r.ReadsPerDelivery = perDelivery(float64(g[groupRead]))
			r.EpollWaitsPerDelivery = perDelivery(float64(g[groupEpoll]))
			r.SyscallsPerDelivery = perDelivery(float64(g[groupAll]))
			if g[groupWrite] > 0 {
				r.DeliveriesPerWriteCall = d / float64(g[groupWrite])
			}
		}
	}
}

// writeTable prints the report for people.
func (r *Report) writeTable(out io.Writer) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	row("mode", "%s (%d proc, %d source addrs from %s)", r.Mode, r.Procs, r.SourceAddrs, r.SourceFirst)
	row("date", "%s", r.Date.Format(time.RFC3339))
	if r.Command != "" {
		row("command", "%s", r.Command)
	}
	row("connections", "%d requested, %d established, %d subscribed", r.Conns, r.Connected, r.Subscribed)
	for _, t := range r.Targets {
		row("target "+t.Addr, "%d sockets: %d established, %d subscribed", t.Conns, t.Connected, t.Subscribed)
	}
	if r.ConnectSec > 0 {
		row("connect rate", "%.0f conn/s (%.2f s from first dial to last connection_established)", r.ConnectsPerSec, r.ConnectSec)
	}
	row("connect latency", "%s", latencyLine(r.ConnectLatency))
	if r.Mode != modeConnect {
		row("subscribe latency", "%s", latencyLine(r.SubscribeLatency))
	}
	switch r.Mode {
	case modeFanout:
		how := fmt.Sprintf("open loop at %g/s", r.Rate)
		if r.Closed {
			how = "closed loop"
		}
		row("events", "%d published of %d, %s, %d publisher(s), %d channel(s) %s, %d bytes of data",
			r.Published, r.Events, how, r.Publishers, r.Channels, channelsLabel(r.Channel, r.Channels), r.EventSize)
		row("trigger status", "%s (%.2f s of publishing)", countsLine(r.PublishStatus), r.PublishSec)
		row("API latency", "%s", latencyLine(r.PublishLatency))
	case modeClientEvents:
		row("client events", "%d sent (%d per socket at %.1f/s)", r.Sent, r.Events, r.Rate)
	}
	if r.Mode == modeFanout || r.Mode == modeClientEvents {
		row("delivered", "%d of %d expected (ratio %.4f), %d lost; %d duplicate, %d out of order, %d unexpected, %d on a wrong channel",
			r.Delivered, r.Expected, r.DeliveryRatio, r.Lost, r.Duplicates, r.OutOfOrder, r.Unexpected, r.WrongChannel)
		if r.DeliveredFailed > 0 {
			row("delivered anyway", "%d deliveries of events whose trigger failed", r.DeliveredFailed)
		}
		if r.Mode == modeFanout && r.Expected > 0 {
			row("sockets exact", "%d of %d subscribed sockets received every event once and in order", r.SocketsExact, r.Subscribed)
		}
		row("delivery latency", "%s", latencyLine(r.Latency))
		row("throughput", "%.0f msgs/s delivered over %.2f s", r.MsgsPerSec, r.DeliverySec)
		for _, t := range r.Targets {
			row("deliveries via "+t.Addr, "%d of %d expected, %d lost, %d of %d sockets exact; latency %s",
				t.Delivered, t.Expected, t.Lost, t.SocketsExact, t.Subscribed, latencyLine(t.Latency))
		}
	}
	if r.ServerPID != 0 {
		label, pids := "server RSS", fmt.Sprintf("pid %d", r.ServerPID)
		if len(r.Servers) > 1 {
			label, pids = "servers' RSS", fmt.Sprintf("sum over %d pids", len(r.Servers))
		}
		row(label, "%s before, %s connected, %s peak during the load (%s over connected; %d samples), %s at end (%s)",
			mib(r.RSSBefore), mib(r.RSSConnected), mib(r.RSSPeak), mibDelta(r.RSSGrowth), r.RSSSamples, mib(r.RSSEnd), pids)
		for _, sv := range r.Servers {
			row("server "+strconv.Itoa(sv.PID), "RSS %s before, %s connected, %s peak, %s at end; CPU %.2f s in total, %.2f s during the load",
				mib(sv.RSSBefore), mib(sv.RSSConnected), mib(sv.RSSPeak), mib(sv.RSSEnd), sv.CPUSec, sv.CPULoadSec)
		}
		if r.BytesPerConn != 0 {
			row("server memory", "%.0f bytes per connection once connected", r.BytesPerConn)
		}
		if len(r.Settle) > 0 {
			var b strings.Builder
			for i, x := range r.Settle {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%s at %.0f s", mib(x.RSS), x.AfterSec)
			}
			row("idle RSS", "%s", b.String())
			row("idle memory", "%.0f bytes per connection (the larger of %.0f after the ramp and %.0f after %.0f s idle)",
				r.BytesPerConnIdle, r.BytesPerConn, r.BytesPerConnSettled, r.Settle[len(r.Settle)-1].AfterSec)
		}
		label = "server CPU"
		if len(r.Servers) > 1 {
			label = "servers' CPU (sum)"
		}
		row(label, "%.2f s in total, %.2f s during the load", r.ServerCPUSec, r.ServerCPULoadSec)
		if r.CPUPerConnUs > 0 {
			row("server per connection", "%.0f µs CPU while the sockets were opened (%.2f s in all)", r.CPUPerConnUs, r.ServerCPUSetupSec)
		}
		if r.Delivered > 0 {
			row("server per delivery", "%.2f µs CPU, %.3f syscw (%d syscw, %d syscr during the load)",
				r.CPUPerDeliveryUs, r.SyscwPerDelivery, r.ServerSyscw, r.ServerSyscr)
		}
		if g := r.SyscallGroups; g != nil {
			row("server syscalls", "%d write/send (%.3f per delivery, %.1f deliveries per call), %d read/recv, %d epoll_wait, %d in all (%.3f per delivery)",
				g[groupWrite], r.WritesPerDelivery, r.DeliveriesPerWriteCall, g[groupRead], g[groupEpoll], g[groupAll], r.SyscallsPerDelivery)
		}
	}
	if r.RedisPID != 0 {
		pids := "pid " + strconv.Itoa(r.RedisPID)
		if len(r.RedisPIDs) > 1 {
			pids = fmt.Sprintf("%d servers, pids %v", len(r.RedisPIDs), r.RedisPIDs)
		}
		row("redis", "%.2f s CPU in total, %.2f s during the load (%.1f µs per event published), RSS %s at end (%s)",
			r.RedisCPUSec, r.RedisCPULoadSec, r.RedisCPUPerEventUs, mib(r.RedisRSSEnd), pids)
	}
	for _, p := range r.Profiles {
		row("profile", "%s", p)
	}
	row("loadgen", "%s peak RSS, %.2f s CPU during the load", mib(r.LoadgenRSS), r.LoadgenCPULoadSec)
	if r.MachineCPULoadSec > 0 {
		who := "server"
		if r.RedisPID != 0 {
			who = "servers, Redis"
		}
		row("machine CPU", "%.2f s busy during the load, %.2f s of it neither %s nor loadgen", r.MachineCPULoadSec, r.OtherCPULoadSec, who)
	}
	row("elapsed", "%.2f s", r.ElapsedSec)
	for _, m := range []struct {
		name string
		m    map[string]int
	}{
		{"setup failures", r.Failures}, {"publish errors", r.PublishErrors}, {"dropped", r.Drops},
		{"server closes", r.Closes}, {"server errors", r.ServerErrors},
		{"frame errors", r.FrameErrors}, {"other events", r.OtherEvents}, {"tls", r.TLS}, {"retried", r.Retries},
	} {
		for _, k := range slices.Sorted(maps.Keys(m.m)) {
			row(m.name, "%d × %s", m.m[k], k)
		}
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	tw.Flush()
}

// countsLine prints m as "k × n, …" sorted by key.
func countsLine(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d × %s", m[k], k)
	}
	return b.String()
}

// channelsLabel names the channels of a fanout run.
func channelsLabel(name string, n int) string {
	if n <= 1 {
		return strconv.Quote(name)
	}
	return strconv.Quote(channelName(name, 0, n)) + "…" + strconv.Quote(channelName(name, n-1, n))
}

func latencyLine(h *hist) string {
	if h == nil || h.count() == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  max %s  (n=%d)",
		ms(h.quantile(0.5)), ms(h.quantile(0.9)), ms(h.quantile(0.99)), ms(float64(h.max.Load())), h.count())
}

// ms formats microseconds as milliseconds.
func ms(us float64) string {
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", us/1e3), "0"), ".") + " ms"
}

func mibDelta(b int64) string { return fmt.Sprintf("%+.1f MiB", float64(b)/(1<<20)) }

func mib(b int64) string {
	if b == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
