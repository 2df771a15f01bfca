// Command compare writes the side-by-side results file of perf/run.sh:
// for every scenario, the loadgen command, revurb's and Soketi's figures
// and their ratio, from the JSON reports loadgen wrote.
//
//	compare -dir perf/results/2026-12-01T220000Z -out perf/results/2026-12-01T220000Z.md
//
// The run directory holds meta.tsv (key, value: the run's header lines, in
// order) and runs.tsv, one line per scenario and server:
//
//	scenario  server  exit-status  server-alive  cpu-idle-%  metrics  json  txt  log  command
//
// command is how to repeat the run by hand; metrics is a comma-separated list of the figures the scenario is about
// (names in the metrics table below); json, txt and log are file names in
// the directory. Every ratio is oriented so that above 1 means revurb did
// better: revurb/Soketi where higher is better, Soketi/revurb where lower
// is better, and each line says which.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Server names as run.sh writes them, in column order. nginx is nginx
// terminating TLS in front of a plain revurb (the wss scenarios); its
// column appears only in a run that has it.
const (
	revurb = "revurb"
	soketi = "soketi"
	nginx  = "nginx"
)

// labels are the servers' column headings.
var labels = map[string]string{revurb: "revurb", soketi: "Soketi", nginx: "nginx + revurb"}

// direction says which way a figure is better.
type direction int

const (
	higherBetter direction = iota
	lowerBetter
	noRatio // correctness figures and counts: no ratio
)

// metric is one figure of a loadgen report.
type metric struct {
	label string
	dir   direction
	// value extracts the figure; ok is false when the report lacks it.
	value func(r report) (v float64, ok bool)
	// text formats it; nil: format by value with format.
	text   func(r report) string
	format string
}

// report is a loadgen JSON report, read loosely: compare only consumes
// the JSON, so that the load generator's types stay its own.
type report map[string]any

func (r report) num(path ...string) (float64, bool) {
	var v any = map[string]any(r)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return 0, false
		}
		if v, ok = m[p]; !ok {
			return 0, false
		}
	}
	f, ok := v.(float64)
	return f, ok
}

// numOr0 is num for counters that loadgen leaves out when zero.
func (r report) numOr0(path ...string) (float64, bool) {
	if v, ok := r.num(path...); ok {
		return v, true
	}
	_, isReport := r["mode"]
	return 0, isReport
}

func (r report) counts(key string) map[string]float64 {
	m, _ := r[key].(map[string]any)
	out := map[string]float64{}
	for k, v := range m {
		if f, ok := v.(float64); ok {
			out[k] = f
		}
	}
	return out
}

func field(path ...string) func(report) (float64, bool) {
	return func(r report) (float64, bool) { return r.num(path...) }
}

func counter(path ...string) func(report) (float64, bool) {
	return func(r report) (float64, bool) { return r.numOr0(path...) }
}

func mibField(key string) func(report) (float64, bool) {
	return func(r report) (float64, bool) {
		v, ok := r.num(key)
		return v / (1 << 20), ok
	}
}

// metrics are the figures compare knows, by the names run.sh uses.
var metrics = map[string]metric{
	"delivered": {label: "delivered of expected", dir: noRatio, value: field("delivered"), text: func(r report) string {
		d, _ := r.numOr0("delivered")
		e, _ := r.numOr0("expected")
		return fmt.Sprintf("%.0f of %.0f", d, e)
	}},
	"exact": {label: "every event once, in order", dir: noRatio, value: counter("expected"), text: exactText},
	"lost":  {label: "lost (not delivered when the drain ended)", dir: noRatio, value: counter("lost"), format: "%.0f"},
	"duplicates": {
		label: "duplicates", dir: noRatio, value: counter("duplicates"), format: "%.0f",
	},
	"out_of_order": {label: "reordered (per publisher)", dir: noRatio, value: counter("out_of_order"), format: "%.0f"},
	"trigger_status": {label: "trigger HTTP status", dir: noRatio, value: counter("published"), text: func(r report) string {
		return countsText(r.counts("publish_status"))
	}},
	"msgs_per_sec":  {label: "deliveries/s", dir: higherBetter, value: field("msgs_per_sec"), format: "%.0f"},
	"latency_p50":   {label: "delivery latency p50 (ms)", dir: lowerBetter, value: field("latency", "p50_ms"), format: "%.2f"},
	"latency_p90":   {label: "delivery latency p90 (ms)", dir: lowerBetter, value: field("latency", "p90_ms"), format: "%.2f"},
	"latency_p99":   {label: "delivery latency p99 (ms)", dir: lowerBetter, value: field("latency", "p99_ms"), format: "%.2f"},
	"latency_max":   {label: "delivery latency max (ms)", dir: lowerBetter, value: field("latency", "max_ms"), format: "%.2f"},
	"api_p50":       {label: "trigger (API) latency p50 (ms)", dir: lowerBetter, value: field("publish_latency", "p50_ms"), format: "%.2f"},
	"api_p99":       {label: "trigger (API) latency p99 (ms)", dir: lowerBetter, value: field("publish_latency", "p99_ms"), format: "%.2f"},
	"publish_sec":   {label: "publishing took (s)", dir: noRatio, value: field("publish_sec"), format: "%.2f"},
	"cpu_load":      {label: "server CPU during the load (s)", dir: lowerBetter, value: field("server_cpu_load_sec"), format: "%.2f"},
	"cpu_per_deliv": {label: "server CPU per delivery (µs)", dir: lowerBetter, value: field("server_cpu_per_delivery_us"), format: "%.2f"},
	"syscw_per_deliv": {
		// No ratio: syscw counts write(2) and writev(2), which Go uses, but
		// not send(2), which uSockets (Soketi) uses; writes_per_deliv counts both.
		label: "server syscw per delivery (/proc/PID/io: write/writev only, not send)", dir: noRatio,
		value: counter("server_syscw_per_delivery"), format: "%.3f",
	},
	"writes_per_deliv": {
		label: "server write/send syscalls per delivery (perf)", dir: lowerBetter,
		value: field("server_writes_per_delivery"), format: "%.3f",
	},
	"syscalls_per_deliv": {
		label: "server syscalls per delivery, all (perf)", dir: lowerBetter,
		value: field("server_syscalls_per_delivery"), format: "%.3f",
	},
	"rss_connected": {label: "server RSS, subscribers in (MiB)", dir: lowerBetter, value: mibField("server_rss_connected"), format: "%.1f"},
	"rss_peak":      {label: "server RSS, peak during the load (MiB)", dir: lowerBetter, value: mibField("server_rss_peak"), format: "%.1f"},
	"rss_growth": {
		label: "server peak RSS minus RSS with subscribers in (MiB)", dir: lowerBetter,
		value: func(r report) (float64, bool) {
			if _, ok := r.num("server_rss_peak"); !ok {
				return 0, false
			}
			v, _ := r.numOr0("server_rss_growth")
			return v / (1 << 20), true
		}, format: "%.1f",
	},
	"connected":     {label: "connections subscribed", dir: noRatio, value: field("subscribed"), format: "%.0f"},
	"bytes_idle":    {label: "server RSS per idle connection, headline (bytes)", dir: lowerBetter, value: field("server_bytes_per_conn_idle"), format: "%.0f"},
	"bytes_ramp":    {label: "… right after the ramp (bytes)", dir: lowerBetter, value: field("server_bytes_per_conn"), format: "%.0f"},
	"bytes_settled": {label: "… after the settle period (bytes)", dir: lowerBetter, value: field("server_bytes_per_conn_settled"), format: "%.0f"},
	"rss_before":    {label: "server RSS before connecting (MiB)", dir: lowerBetter, value: mibField("server_rss_before"), format: "%.1f"},
	"loadgen_cpu":   {label: "load generator CPU during the load (s)", dir: noRatio, value: field("loadgen_cpu_load_sec"), format: "%.2f"},
	"other_cpu": {
		label: "other work on the machine during the load (CPU s; disturbs the run)", dir: noRatio,
		value: counter("other_cpu_load_sec"), format: "%.2f",
	},
	"subscribe_p99":   {label: "subscribe latency p99 (ms)", dir: lowerBetter, value: field("subscribe_latency", "p99_ms"), format: "%.2f"},
	"connect_per_sec": {label: "connections/s during the ramp", dir: higherBetter, value: field("connects_per_sec"), format: "%.0f"},
	"connect_sec":     {label: "time from the first dial to the last socket ready (s)", dir: lowerBetter, value: field("connect_sec"), format: "%.2f"},
	"connect_p99":     {label: "time to connection_established p99 (ms)", dir: lowerBetter, value: field("connect_latency", "p99_ms"), format: "%.1f"},
	"cpu_per_conn":    {label: "server CPU per connection opened (µs)", dir: lowerBetter, value: field("server_cpu_per_conn_us"), format: "%.0f"},
	"conns_per_cpu_sec": {
		// What one core of the server side opens per second when nothing
		// else limits it: the client's handshakes may (loadgen has a core
		// of its own in wss-handshakes-1core, and may still be the slower).
		label: "connections per server CPU second (1 s / CPU per connection)", dir: higherBetter,
		value: func(r report) (float64, bool) {
			v, ok := r.num("server_cpu_per_conn_us")
			if !ok || v <= 0 {
				return 0, false
			}
			return 1e6 / v, true
		}, format: "%.0f",
	},
	"retries": {label: "dials tried again (-retry)", dir: noRatio, value: counter("connected"), text: func(r report) string {
		return countsText(r.counts("retries"))
	}},
	"failures": {label: "sockets not connected", dir: noRatio, value: counter("connected"), text: failuresText},
}

// modeMetrics are the figures of each scenario's full table, by mode.
var modeMetrics = map[string][]string{
	"fanout": {"delivered", "exact", "lost", "duplicates", "out_of_order", "trigger_status", "msgs_per_sec",
		"latency_p50", "latency_p90", "latency_p99", "latency_max", "api_p50", "api_p99", "publish_sec",
		"cpu_load", "cpu_per_deliv", "syscw_per_deliv", "writes_per_deliv", "syscalls_per_deliv",
		"rss_connected", "rss_peak", "rss_growth", "loadgen_cpu", "other_cpu"},
	"client-events": {"delivered", "exact", "lost", "duplicates", "out_of_order", "msgs_per_sec",
		"latency_p50", "latency_p90", "latency_p99", "latency_max", "cpu_load", "cpu_per_deliv",
		"syscw_per_deliv", "writes_per_deliv", "syscalls_per_deliv", "rss_connected", "rss_peak", "loadgen_cpu", "other_cpu"},
	"idle": {"connected", "bytes_idle", "bytes_ramp", "bytes_settled", "rss_before", "rss_connected",
		"connect_per_sec", "subscribe_p99"},
	"connect": {"connected", "failures", "connect_per_sec", "connect_sec", "connect_p99", "cpu_per_conn", "conns_per_cpu_sec", "retries", "bytes_ramp", "rss_connected", "loadgen_cpu"},
}

// exactText says whether every expected event arrived once and in order.
func exactText(r report) string {
	e, _ := r.numOr0("expected")
	var bad []string
	for _, k := range []string{"lost", "duplicates", "out_of_order", "unexpected", "wrong_channel"} {
		if v, _ := r.numOr0(k); v != 0 {
			bad = append(bad, fmt.Sprintf("%.0f %s", v, strings.ReplaceAll(k, "_", " ")))
		}
	}
	switch {
	case e == 0:
		return "no (nothing expected)"
	case len(bad) > 0:
		return "no: " + strings.Join(bad, ", ")
	}
	return "yes"
}

// failuresText is how many sockets of the run did not connect, and why.
func failuresText(r report) string {
	c, _ := r.numOr0("conns")
	n, _ := r.numOr0("connected")
	if c-n <= 0 {
		return "0"
	}
	return fmt.Sprintf("%.0f (%s)", c-n, countsText(r.counts("failures")))
}

func countsText(m map[string]float64) string {
	if len(m) == 0 {
		return "—"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s × %.0f", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// cell formats one report's figure.
func (m metric) cell(r report) string {
	if r == nil {
		return "—"
	}
	if m.text != nil {
		if _, ok := m.value(r); !ok {
			return "—"
		}
		return m.text(r)
	}
	v, ok := m.value(r)
	if !ok {
		return "—"
	}
	return fmt.Sprintf(m.format, v)
}

// ratio returns the figure's ratio oriented so that above 1 means revurb
// did better than Soketi, and how it was taken; "" when there is none.
func (m metric) ratio(rv, sk report) (string, string) {
	return m.ratioVs(rv, sk, labels[soketi])
}

// ratioVs is ratio against the report o of the server called name.
func (m metric) ratioVs(rv, o report, name string) (string, string) {
	if m.dir == noRatio || rv == nil || o == nil {
		return "—", ""
	}
	a, ok1 := m.value(rv)
	b, ok2 := m.value(o)
	if !ok1 || !ok2 {
		return "—", ""
	}
	num, den, how := a, b, "revurb/"+name+" (higher is better)"
	if m.dir == lowerBetter {
		num, den, how = b, a, name+"/revurb (lower is better)"
	}
	if den <= 0 || num <= 0 || math.IsInf(num/den, 0) || math.IsNaN(num/den) {
		return "—", how
	}
	return formatRatio(num / den), how
}

// formatRatio prints a ratio with two significant digits or more.
func formatRatio(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f×", x)
	case x >= 10:
		return fmt.Sprintf("%.1f×", x)
	default:
		return fmt.Sprintf("%.2f×", x)
	}
}

// run is one line of runs.tsv.
type run struct {
	scenario, server string
	exit             string
	alive            bool
	idle             string
	metrics          []string
	json, txt, log   string
	command          string
	rep              report
}

func readRuns(dir string) ([]*run, error) {
	f, err := os.Open(filepath.Join(dir, "runs.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []*run
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 10 {
			return nil, fmt.Errorf("runs.tsv:%d: %d columns, want 10", n, len(cols))
		}
		r := &run{scenario: cols[0], server: cols[1], exit: cols[2], alive: cols[3] == "yes", idle: cols[4],
			json: cols[6], txt: cols[7], log: cols[8], command: cols[9]}
		if cols[5] != "" {
			r.metrics = strings.Split(cols[5], ",")
		}
		for _, m := range r.metrics {
			if _, ok := metrics[m]; !ok {
				return nil, fmt.Errorf("runs.tsv:%d: unknown metric %q", n, m)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, r.json)); err == nil {
			if err := json.Unmarshal(b, &r.rep); err != nil {
				return nil, fmt.Errorf("%s: %v", r.json, err)
			}
		}
		runs = append(runs, r)
	}
	return runs, sc.Err()
}

func readMeta(dir string) ([][2]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, "meta.tsv"))
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, "\t")
		if ok {
			out = append(out, [2]string{k, v})
		}
	}
	return out, nil
}

// scenario groups the runs of one scenario by server.
type scenario struct {
	name    string
	metrics []string
	by      map[string]*run
}

func group(runs []*run) []*scenario {
	var out []*scenario
	idx := map[string]*scenario{}
	for _, r := range runs {
		s := idx[r.scenario]
		if s == nil {
			s = &scenario{name: r.scenario, metrics: r.metrics, by: map[string]*run{}}
			idx[r.scenario] = s
			out = append(out, s)
		}
		s.by[r.server] = r
	}
	return out
}

func (s *scenario) rep(server string) report {
	if r := s.by[server]; r != nil {
		return r.rep
	}
	return nil
}

// mode is the loadgen mode of the scenario's reports.
func (s *scenario) mode() string {
	for _, srv := range []string{revurb, soketi, nginx} {
		if m, ok := s.rep(srv)["mode"].(string); ok {
			return m
		}
	}
	return ""
}

// serversOf lists the servers of the run in column order: revurb and
// Soketi always, nginx when some scenario ran it.
func serversOf(scenarios []*scenario) []string {
	out := []string{revurb, soketi}
	for _, s := range scenarios {
		if s.by[nginx] != nil {
			return append(out, nginx)
		}
	}
	return out
}

// row writes one table row: the figure for each server, then the ratio of
// revurb to each other server and how the ratios were taken.
func row(w io.Writer, lead string, m metric, servers []string, rep func(string) report) {
	var b strings.Builder
	b.WriteString(lead)
	var how string
	for i, srv := range servers {
		b.WriteString(" | " + m.cell(rep(srv)))
		if i == 0 {
			continue
		}
		r, h := m.ratioVs(rep(revurb), rep(srv), labels[srv])
		b.WriteString(" | " + r)
		if len(servers) > 2 && h != "" {
			h = strings.Replace(h, labels[srv], "other", 1)
		}
		if how == "" {
			how = h
		}
	}
	fmt.Fprintf(w, "%s | %s |\n", b.String(), how)
}

// header writes a table's heading: lead's columns, each server with its
// ratio, and how the ratios were taken.
func header(w io.Writer, lead string, servers []string) {
	cols := lead
	n := strings.Count(lead, "|") - 1
	for i, srv := range servers {
		cols += " " + labels[srv] + " |"
		n++
		if i > 0 {
			cols += " ratio |"
			if len(servers) > 2 {
				cols = strings.TrimSuffix(cols, " ratio |") + " ratio vs " + labels[srv] + " |"
			}
			n++
		}
	}
	fmt.Fprintln(w, cols+" ratio taken as |")
	fmt.Fprintln(w, "|"+strings.Repeat("---|", n+1))
}

// write writes the results file; svg names the curve's SVG beside it (""
// for none).
func write(w io.Writer, title string, meta [][2]string, scenarios []*scenario, dir, svg string) {
	servers := serversOf(scenarios)
	fmt.Fprintf(w, "# %s\n\n", title)
	for _, kv := range meta {
		fmt.Fprintf(w, "- %s: %s\n", kv[0], kv[1])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every ratio is oriented so that **above 1× means revurb did better**: revurb/Soketi for")
	fmt.Fprintln(w, "higher-is-better figures (deliveries/s), Soketi/revurb for lower-is-better ones (latency,")
	fmt.Fprintln(w, "CPU, syscalls, memory); each row says which. \"—\": no figure or no ratio (correctness counts).")
	if len(servers) > 2 {
		fmt.Fprintln(w, "The same holds for the ratios against nginx + revurb (nginx terminating TLS in front of a")
		fmt.Fprintln(w, "plain revurb, the wss scenarios only; its figures are both processes' together).")
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Summary")
	fmt.Fprintln(w)
	header(w, "| scenario | figure |", servers)
	for _, s := range scenarios {
		for _, name := range s.metrics {
			row(w, "| "+s.name+" | "+metrics[name].label, metrics[name], servers, s.rep)
		}
	}
	fmt.Fprintln(w)
	writeCurveTable(w, curve(scenarios), svg)
	for _, s := range scenarios {
		writeScenario(w, s, servers, dir)
	}
}

// writeScenario writes one scenario's section: the commands, every figure
// of its mode side by side, and each server's full report.
func writeScenario(w io.Writer, s *scenario, servers []string, dir string) {
	fmt.Fprintf(w, "## %s\n\n```\n", s.name)
	for _, srv := range servers {
		if r := s.by[srv]; r != nil {
			fmt.Fprintf(w, "# %s\n%s\n", srv, r.command)
		}
	}
	fmt.Fprint(w, "```\n\n")
	header(w, "| figure |", servers)
	for _, name := range modeMetrics[s.mode()] {
		m := metrics[name]
		some := false
		for _, srv := range servers {
			if _, ok := m.value(s.rep(srv)); ok {
				some = true
			}
		}
		if some {
			row(w, "| "+m.label, m, servers, s.rep)
		}
	}
	fmt.Fprintln(w)
	for _, srv := range servers {
		r := s.by[srv]
		if r == nil {
			continue
		}
		var notes []string
		if r.exit != "0" {
			notes = append(notes, "loadgen exit status "+r.exit)
		}
		if r.idle != "" {
			notes = append(notes, "CPU idle before the run "+r.idle+"%")
		}
		fmt.Fprintf(w, "%s's full report (%s):\n\n```\n", srv, strings.Join(append(notes, "`"+r.txt+"`"), "; "))
		b, err := os.ReadFile(filepath.Join(dir, r.txt))
		if err != nil {
			fmt.Fprintf(w, "(no report: %v)\n", err)
		}
		w.Write(b)
		fmt.Fprint(w, "```\n\n")
		if !r.alive {
			fmt.Fprintf(w, "**The %s server died during this scenario.** The end of its log:\n\n```\n%s```\n\n", srv, tail(filepath.Join(dir, r.log), 30))
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(b), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "")
}

func main() {
	dir := flag.String("dir", "", "run directory with meta.tsv, runs.tsv and the loadgen reports")
	out := flag.String("out", "", "results file to write (default: stdout)")
	title := flag.String("title", "revurb and Soketi side by side", "heading of the results file")
	flag.Parse()
	if err := mainErr(*dir, *out, *title); err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

func mainErr(dir, out, title string) error {
	if dir == "" {
		return errors.New("-dir is required")
	}
	meta, err := readMeta(dir)
	if err != nil {
		return err
	}
	runs, err := readRuns(dir)
	if err != nil {
		return err
	}
	scenarios := group(runs)
	if out == "" {
		bw := bufio.NewWriter(os.Stdout)
		write(bw, title, meta, scenarios, dir, "")
		return bw.Flush()
	}
	svg := ""
	if pts := curve(scenarios); len(pts) > 0 {
		// The curve's SVG goes beside the results file: <name>-curve.svg.
		path := strings.TrimSuffix(out, ".md") + "-curve.svg"
		if err := writeFile(path, func(w io.Writer) {
			writeSVG(w, pts, "Open-loop fan-out, 1k subscribers over 10 channels, 64 B: delivery latency")
		}); err != nil {
			return err
		}
		svg = filepath.Base(path)
	}
	return writeFile(out, func(w io.Writer) { write(w, title, meta, scenarios, dir, svg) })
}

// writeFile creates path and writes it with f through a buffer.
func writeFile(path string, f func(io.Writer)) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(fh)
	f(bw)
	return errors.Join(bw.Flush(), fh.Close())
}
