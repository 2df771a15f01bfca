package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is what one run measured. Workers fill the socket side; the
// coordinator merges them and adds the publishing side and the server's
// /proc figures. All times are unix nanoseconds unless the name says
// otherwise; derived figures are recomputed by finish after a merge.
type Report struct {
	Mode      string    `json:"mode"`
	Command   string    `json:"command,omitempty"`
	Date      time.Time `json:"date"`
	Procs     int       `json:"procs"`
	Channel   string    `json:"channel"`
	EventSize int       `json:"event_size,omitempty"`
	Rate      float64   `json:"rate"`

	SourceAddrs int    `json:"source_addrs"`
	SourceFirst string `json:"source_first"`

	Conns             int            `json:"conns"`
	Connected         int64          `json:"connected"`
	Subscribed        int64          `json:"subscribed"`
	Failures          map[string]int `json:"failures,omitempty"`
	FirstDialNs       int64          `json:"first_dial_ns"`
	LastEstablishedNs int64          `json:"last_established_ns"`
	ConnectSec        float64        `json:"connect_sec"`
	ConnectsPerSec    float64        `json:"connects_per_sec"`
	ConnectLatency    *hist          `json:"connect_latency"`
	SubscribeLatency  *hist          `json:"subscribe_latency"`

	Events         int            `json:"events"`
	Published      int            `json:"published"`
	PublishErrors  map[string]int `json:"publish_errors,omitempty"`
	PublishLatency *hist          `json:"publish_latency"`
	Sent           int64          `json:"sent"`

	Expected        int64   `json:"expected"`
	Delivered       int64   `json:"delivered"`
	DeliveryRatio   float64 `json:"delivery_ratio"`
	Duplicates      int64   `json:"duplicates"`
	OutOfOrder      int64   `json:"out_of_order"`
	Unexpected      int64   `json:"unexpected"`
	Latency         *hist   `json:"latency"`
	DeliveryStartNs int64   `json:"delivery_start_ns"`
	LastDeliveryNs  int64   `json:"last_delivery_ns"`
	DeliverySec     float64 `json:"delivery_sec"`
	MsgsPerSec      float64 `json:"msgs_per_sec"`

	Drops        map[string]int `json:"drops,omitempty"`
	Closes       map[string]int `json:"server_closes,omitempty"`
	ServerErrors map[string]int `json:"server_errors,omitempty"`
	FrameErrors  map[string]int `json:"frame_errors,omitempty"`
	OtherEvents  map[string]int `json:"other_events,omitempty"`

	ServerPID        int     `json:"server_pid,omitempty"`
	RSSBefore        int64   `json:"server_rss_before,omitempty"`
	RSSConnected     int64   `json:"server_rss_connected,omitempty"`
	RSSEnd           int64   `json:"server_rss_end,omitempty"`
	BytesPerConn     float64 `json:"server_bytes_per_conn,omitempty"`
	ServerCPUSec     float64 `json:"server_cpu_sec,omitempty"`
	ServerCPULoadSec float64 `json:"server_cpu_load_sec,omitempty"`
	LoadgenRSS       int64   `json:"loadgen_rss_peak"`

	ElapsedSec float64  `json:"elapsed_sec"`
	Notes      []string `json:"notes,omitempty"`
}

func newReport(cfg *config) *Report {
	return &Report{
		Mode:             cfg.mode,
		Date:             time.Now().UTC(),
		Procs:            1,
		Channel:          cfg.channel,
		EventSize:        cfg.size,
		Rate:             cfg.rate,
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
	if o.DeliveryStartNs != 0 && (r.DeliveryStartNs == 0 || o.DeliveryStartNs < r.DeliveryStartNs) {
		r.DeliveryStartNs = o.DeliveryStartNs
	}
	r.LastDeliveryNs = max(r.LastDeliveryNs, o.LastDeliveryNs)
	r.LoadgenRSS += o.LoadgenRSS
	for _, p := range []struct{ dst, src *map[string]int }{
		{&r.Failures, &o.Failures}, {&r.Drops, &o.Drops}, {&r.Closes, &o.Closes},
		{&r.ServerErrors, &o.ServerErrors}, {&r.FrameErrors, &o.FrameErrors},
		{&r.OtherEvents, &o.OtherEvents},
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
	if r.ConnectSec > 0 {
		row("connect rate", "%.0f conn/s (%.2f s from first dial to last connection_established)", r.ConnectsPerSec, r.ConnectSec)
	}
	row("connect latency", "%s", latencyLine(r.ConnectLatency))
	if r.Mode != modeConnect {
		row("subscribe latency", "%s", latencyLine(r.SubscribeLatency))
	}
	switch r.Mode {
	case modeFanout:
		row("events", "%d published of %d at %.0f/s to %q", r.Published, r.Events, r.Rate, r.Channel)
		row("API latency", "%s", latencyLine(r.PublishLatency))
	case modeClientEvents:
		row("client events", "%d sent (%d per socket at %.1f/s)", r.Sent, r.Events, r.Rate)
	}
	if r.Mode != modeConnect {
		row("delivered", "%d of %d expected (ratio %.4f); %d duplicate, %d out of order, %d unexpected",
			r.Delivered, r.Expected, r.DeliveryRatio, r.Duplicates, r.OutOfOrder, r.Unexpected)
		row("delivery latency", "%s", latencyLine(r.Latency))
		row("throughput", "%.0f msgs/s delivered over %.2f s", r.MsgsPerSec, r.DeliverySec)
	}
	if r.ServerPID != 0 {
		row("server RSS", "%s before, %s connected, %s at end (pid %d)", mib(r.RSSBefore), mib(r.RSSConnected), mib(r.RSSEnd), r.ServerPID)
		if r.BytesPerConn != 0 {
			row("server memory", "%.0f bytes per connection", r.BytesPerConn)
		}
		row("server CPU", "%.2f s in total, %.2f s during the load", r.ServerCPUSec, r.ServerCPULoadSec)
	}
	row("loadgen peak RSS", "%s", mib(r.LoadgenRSS))
	row("elapsed", "%.2f s", r.ElapsedSec)
	for _, m := range []struct {
		name string
		m    map[string]int
	}{
		{"setup failures", r.Failures}, {"publish errors", r.PublishErrors}, {"dropped", r.Drops},
		{"server closes", r.Closes}, {"server errors", r.ServerErrors},
		{"frame errors", r.FrameErrors}, {"other events", r.OtherEvents},
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

func mib(b int64) string {
	if b == 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
