package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func rep(t *testing.T, js string) report {
	t.Helper()
	var r report
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRatio(t *testing.T) {
	fast := rep(t, `{"mode":"fanout","msgs_per_sec":200000,"latency":{"p99_ms":2},"server_syscw_per_delivery":0.5,"lost":0}`)
	slow := rep(t, `{"mode":"fanout","msgs_per_sec":50000,"latency":{"p99_ms":30}}`)
	for _, tc := range []struct {
		metric, want, how string
		rv, sk            report
	}{
		{metric: "msgs_per_sec", rv: fast, sk: slow, want: "4.00×", how: "revurb/Soketi (higher is better)"},
		{metric: "msgs_per_sec", rv: slow, sk: fast, want: "0.25×", how: "revurb/Soketi (higher is better)"},
		{metric: "latency_p99", rv: fast, sk: slow, want: "15.0×", how: "Soketi/revurb (lower is better)"},
		{metric: "latency_p99", rv: slow, sk: fast, want: "0.07×", how: "Soketi/revurb (lower is better)"},
		// syscw misses send(2), which Soketi uses: never a ratio.
		{metric: "syscw_per_deliv", rv: fast, sk: fast, want: "—"},
		// A zero on either side is no ratio.
		{metric: "cpu_per_deliv", rv: rep(t, `{"server_cpu_per_delivery_us":0}`), sk: slow, want: "—"},
		{metric: "lost", rv: fast, sk: slow, want: "—"},
		{metric: "msgs_per_sec", rv: fast, sk: nil, want: "—"},
		{metric: "api_p99", rv: fast, sk: slow, want: "—"},
	} {
		got, how := metrics[tc.metric].ratio(tc.rv, tc.sk)
		if got != tc.want || how != tc.how {
			t.Errorf("%s: %q %q, want %q %q", tc.metric, got, how, tc.want, tc.how)
		}
	}
	if got := formatRatio(123.4); got != "123×" {
		t.Errorf("formatRatio %q", got)
	}
}

func TestCells(t *testing.T) {
	good := rep(t, `{"mode":"fanout","expected":100,"delivered":100,"published":10,"publish_status":{"200":9,"503":1},"server_rss_peak":3145728}`)
	bad := rep(t, `{"mode":"fanout","expected":100,"delivered":98,"lost":2,"out_of_order":3}`)
	none := rep(t, `{"mode":"fanout"}`)
	for _, tc := range []struct {
		metric string
		r      report
		want   string
	}{
		{"exact", good, "yes"},
		{"exact", bad, "no: 2 lost, 3 out of order"},
		{"exact", none, "no (nothing expected)"},
		{"delivered", bad, "98 of 100"},
		{"trigger_status", good, "200 × 9, 503 × 1"},
		{"rss_peak", good, "3.0"},
		{"rss_growth", good, "0.0"},
		{"rss_growth", bad, "—"},
		{"lost", good, "0"},
		{"latency_p99", good, "—"},
		{"msgs_per_sec", nil, "—"},
	} {
		if got := metrics[tc.metric].cell(tc.r); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.metric, got, tc.want)
		}
	}
}

// TestWrite builds a run directory as run.sh does and checks the results
// file's summary rows and sections.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"meta.tsv": "commit\tabc123\nmachine\t2 CPUs\n",
		"runs.tsv": "fanout-x\trevurb\t0\tyes\t97\tmsgs_per_sec,latency_p99\tfanout-x.revurb.json\tfanout-x.revurb.txt\tfanout-x.revurb.log\tloadgen -mode fanout -conns 10\n" +
			"fanout-x\tsoketi\t0\tno\t95\tmsgs_per_sec,latency_p99\tfanout-x.soketi.json\tfanout-x.soketi.txt\tfanout-x.soketi.log\tloadgen -mode fanout -conns 10\n",
		"fanout-x.revurb.json": `{"mode":"fanout","expected":10,"delivered":10,"msgs_per_sec":1000,"latency":{"p99_ms":1.5}}`,
		"fanout-x.soketi.json": `{"mode":"fanout","expected":10,"delivered":10,"msgs_per_sec":500,"latency":{"p99_ms":4.5}}`,
		"fanout-x.revurb.txt":  "revurb table\n",
		"fanout-x.soketi.txt":  "soketi table\n",
		"fanout-x.soketi.log":  "soketi crashed\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "results.md")
	if err := mainErr(dir, out, "test run"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"# test run\n",
		"- commit: abc123\n",
		"| fanout-x | deliveries/s | 1000 | 500 | 2.00× | revurb/Soketi (higher is better) |",
		"| fanout-x | delivery latency p99 (ms) | 1.50 | 4.50 | 3.00× | Soketi/revurb (lower is better) |",
		"## fanout-x\n\n```\n# revurb\nloadgen -mode fanout -conns 10\n# soketi\nloadgen -mode fanout -conns 10\n```",
		"| every event once, in order | yes | yes | — |  |",
		"revurb table\n",
		"CPU idle before the run 97%",
		"**The soketi server died during this scenario.**",
		"soketi crashed\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("results lack %q\n%s", want, got)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "runs.tsv"), []byte("a\trevurb\t0\tyes\t\tnope\tx\ty\tz\tcmd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := mainErr(dir, out, "t"); err == nil || !strings.Contains(err.Error(), "unknown metric") {
		t.Errorf("unknown metric: %v", err)
	}
}

// TestWriteNginx: a run with nginx + revurb (the wss scenarios) gets its
// column and the ratio of revurb to it, beside Soketi's.
func TestWriteNginx(t *testing.T) {
	dir := t.TempDir()
	line := func(srv string) string {
		return "wss-x\t" + srv + "\t0\tyes\t97\tcpu_per_deliv,failures\twss-x." + srv + ".json\twss-x." + srv + ".txt\twss-x." + srv + ".log\tloadgen -tls\n"
	}
	files := map[string]string{
		"meta.tsv":          "commit\tabc123\n",
		"runs.tsv":          line("revurb") + line("soketi") + line("nginx"),
		"wss-x.revurb.json": `{"mode":"fanout","conns":10,"connected":10,"server_cpu_per_delivery_us":2}`,
		"wss-x.soketi.json": `{"mode":"fanout","conns":10,"connected":8,"failures":{"timeout":2},"server_cpu_per_delivery_us":8}`,
		"wss-x.nginx.json":  `{"mode":"fanout","conns":10,"connected":10,"server_cpu_per_delivery_us":5}`,
		"wss-x.revurb.txt":  "r\n",
		"wss-x.soketi.txt":  "s\n",
		"wss-x.nginx.txt":   "n\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "results.md")
	if err := mainErr(dir, out, "wss"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{
		"| scenario | figure | revurb | Soketi | ratio vs Soketi | nginx + revurb | ratio vs nginx + revurb | ratio taken as |\n|---|---|---|---|---|---|---|---|\n",
		"| wss-x | server CPU per delivery (µs) | 2.00 | 8.00 | 4.00× | 5.00 | 2.50× | other/revurb (lower is better) |",
		"| wss-x | sockets not connected | 0 | 2 (timeout × 2) | — | 0 | — |  |",
		"# nginx\nloadgen -tls\n",
		"nginx's full report",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("results lack %q\n%s", want, got)
		}
	}
}

// TestModeMetricsKnown: every figure a mode's table lists is a metric.
func TestModeMetricsKnown(t *testing.T) {
	for mode, names := range modeMetrics {
		for _, n := range names {
			if _, ok := metrics[n]; !ok {
				t.Errorf("mode %s lists unknown metric %q", mode, n)
			}
		}
	}
}

// TestCurve: curve-* scenarios become the curve's table and an SVG beside
// the results file, points ordered by offered deliveries/s (rate ×
// subscribers / channels).
func TestCurve(t *testing.T) {
	dir := t.TempDir()
	var runs strings.Builder
	files := map[string]string{"meta.tsv": "commit\tabc123\n"}
	for _, pt := range []struct {
		name, server string
		rate         int
		p50, p99     float64
	}{
		{"curve-1k-10ch-50", "revurb", 360, 1.1, 3.2}, {"curve-1k-10ch-50", "soketi", 360, 2.5, 9.6},
		{"curve-1k-10ch-25", "revurb", 180, 0.9, 2.0}, {"curve-1k-10ch-25", "soketi", 180, 2.0, 6.0},
	} {
		base := pt.name + "." + pt.server
		fmt.Fprintf(&runs, "%s\t%s\t0\tyes\t95\tlatency_p99\t%s.json\t%s.txt\t%s.log\tloadgen\n", pt.name, pt.server, base, base, base)
		files[base+".json"] = fmt.Sprintf(`{"mode":"fanout","rate":%d,"subscribed":1000,"channels":10,"expected":10,"delivered":10,"msgs_per_sec":%d,"latency":{"p50_ms":%g,"p99_ms":%g}}`,
			pt.rate, pt.rate*100, pt.p50, pt.p99)
	}
	files["runs.tsv"] = runs.String()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "run.md")
	if err := mainErr(dir, out, "curve"); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile(filepath.Join(dir, "run-curve.svg"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(md)
	for _, want := range []string{
		"![p50 and p99 delivery latency against offered deliveries/s](run-curve.svg)",
		"| 18000 | 0.90 / 2.00 | 2.00 / 6.00 | 3.00× | 18000 | 18000 | yes; yes |\n| 36000 | 1.10 / 3.20 | 2.50 / 9.60 | 3.00× |",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("results lack %q\n%s", want, got)
		}
	}
	if s := string(svg); !strings.HasPrefix(s, "<svg ") || strings.Count(s, "<polyline") != 4 || !strings.Contains(s, "Soketi p99") {
		t.Errorf("SVG: want 4 lines (p50 and p99 of each server) and a legend:\n%s", s)
	}
}
