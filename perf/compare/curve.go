package main

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// The latency–throughput curve: the scenarios named curve-* (perf/lib.sh)
// offer one open-loop fan-out at rising rates; compare tabulates them and
// draws p50 and p99 delivery latency against offered deliveries/s for both
// servers as an SVG.

const curvePrefix = "curve-"

// point is one server's figures at one offered rate.
type point struct {
	offered, achieved float64 // deliveries/s
	p50, p99          float64 // ms
	exact             string
}

// offered is the deliveries/s a fan-out report offered: events/s times
// the subscribers of a channel.
func offered(r report) (float64, bool) {
	rate, ok1 := r.num("rate")
	subs, ok2 := r.num("subscribed")
	chans, ok3 := r.num("channels")
	if !ok1 || !ok2 || !ok3 || chans <= 0 {
		return 0, false
	}
	return rate * subs / chans, true
}

// curve returns each server's points, by offered rate.
func curve(scenarios []*scenario) map[string][]point {
	out := map[string][]point{}
	for _, s := range scenarios {
		if !strings.HasPrefix(s.name, curvePrefix) {
			continue
		}
		for _, srv := range []string{revurb, soketi} {
			r := s.rep(srv)
			off, ok := offered(r)
			if !ok {
				continue
			}
			p := point{offered: off, exact: exactText(r)}
			p.achieved, _ = r.num("msgs_per_sec")
			p.p50, _ = r.num("latency", "p50_ms")
			p.p99, _ = r.num("latency", "p99_ms")
			out[srv] = append(out[srv], p)
		}
	}
	for _, pts := range out {
		slices.SortFunc(pts, func(a, b point) int { return cmp.Compare(a.offered, b.offered) })
	}
	return out
}

// writeCurveTable writes the curve's Markdown section; svg is the SVG's
// file name beside the results file ("" for none).
func writeCurveTable(w io.Writer, pts map[string][]point, svg string) {
	if len(pts) == 0 {
		return
	}
	fmt.Fprintln(w, "## The latency–throughput curve")
	fmt.Fprintln(w)
	if svg != "" {
		fmt.Fprintf(w, "![p50 and p99 delivery latency against offered deliveries/s](%s)\n\n", svg)
	}
	fmt.Fprintln(w, "| offered deliveries/s | revurb p50 / p99 (ms) | Soketi p50 / p99 (ms) | p99 ratio (Soketi/revurb) | revurb deliveries/s | Soketi deliveries/s | every event once, in order (revurb; Soketi) |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	by := map[float64][2]*point{}
	var rates []float64
	for i, srv := range []string{revurb, soketi} {
		for j := range pts[srv] {
			p := &pts[srv][j]
			e, seen := by[p.offered]
			if !seen {
				rates = append(rates, p.offered)
			}
			e[i] = p
			by[p.offered] = e
		}
	}
	slices.Sort(rates)
	cell := func(p *point, f func(*point) string) string {
		if p == nil {
			return "—"
		}
		return f(p)
	}
	lat := func(p *point) string { return fmt.Sprintf("%.2f / %.2f", p.p50, p.p99) }
	thr := func(p *point) string { return fmt.Sprintf("%.0f", p.achieved) }
	ex := func(p *point) string { return p.exact }
	for _, r := range rates {
		e := by[r]
		ratio := "—"
		if e[0] != nil && e[1] != nil && e[0].p99 > 0 {
			ratio = formatRatio(e[1].p99 / e[0].p99)
		}
		fmt.Fprintf(w, "| %.0f | %s | %s | %s | %s | %s | %s; %s |\n", r, cell(e[0], lat), cell(e[1], lat), ratio,
			cell(e[0], thr), cell(e[1], thr), cell(e[0], ex), cell(e[1], ex))
	}
	fmt.Fprintln(w)
}

// SVG geometry.
const (
	svgW, svgH                       = 720, 420
	padL, padR, padT, padB           = 70, 170, 30, 50
	plotW, plotH                     = svgW - padL - padR, svgH - padT - padB
	colourRevurb, colourSoketi       = "#1f6feb", "#d1242f"
	minLatencyAxis, minLatencyDecade = 0.1, -1
)

// writeSVG draws p50 (dashed) and p99 (solid) against offered deliveries/s,
// latency on a log scale.
func writeSVG(w io.Writer, pts map[string][]point, title string) {
	maxX, maxY := 0.0, 1.0
	for _, ps := range pts {
		for _, p := range ps {
			maxX = max(maxX, p.offered)
			maxY = max(maxY, p.p99, p.p50)
		}
	}
	maxX = niceCeil(maxX)
	decades := int(math.Ceil(math.Log10(maxY))) - minLatencyDecade
	x := func(v float64) float64 { return padL + v/maxX*plotW }
	y := func(v float64) float64 {
		v = max(v, minLatencyAxis)
		return padT + plotH - (math.Log10(v)-minLatencyDecade)/float64(decades)*plotH
	}
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(w, `<text x="%d" y="18" font-size="14">%s</text>`+"\n", padL, xmlEscape(title))
	for d := 0; d <= decades; d++ {
		v := math.Pow(10, float64(d+minLatencyDecade))
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", padL, padL+plotW, y(v), y(v))
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%g ms</text>`+"\n", padL-6, y(v)+4, v)
	}
	for i := 0; i <= 5; i++ {
		v := maxX * float64(i) / 5
		fmt.Fprintf(w, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%d" stroke="#ddd"/>`+"\n", x(v), x(v), padT, padT+plotH)
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%.0fk</text>`+"\n", x(v), padT+plotH+16, v/1000)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">offered deliveries/s (open loop)</text>`+"\n", padL+plotW/2, svgH-10)
	fmt.Fprintf(w, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">delivery latency (log scale)</text>`+"\n", padT+plotH/2)
	legend := padT + 10
	for _, srv := range []string{revurb, soketi} {
		ps := pts[srv]
		if len(ps) == 0 {
			continue
		}
		colour, name := colourRevurb, "revurb"
		if srv == soketi {
			colour, name = colourSoketi, "Soketi"
		}
		for _, q := range []struct {
			label, dash string
			v           func(point) float64
		}{{"p99", "", func(p point) float64 { return p.p99 }}, {"p50", ` stroke-dasharray="6 4"`, func(p point) float64 { return p.p50 }}} {
			var path []string
			for _, p := range ps {
				path = append(path, fmt.Sprintf("%.1f,%.1f", x(p.offered), y(q.v(p))))
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(p.offered), y(q.v(p)), colour)
			}
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(path, " "), colour, q.dash)
			fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", padL+plotW+12, padL+plotW+40, legend, legend, colour, q.dash)
			fmt.Fprintf(w, `<text x="%d" y="%d">%s %s</text>`+"\n", padL+plotW+46, legend+4, name, q.label)
			legend += 20
		}
	}
	fmt.Fprintln(w, "</svg>")
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
