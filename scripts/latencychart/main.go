// Command latencychart draws the request latencies that BenchmarkPrimaryDies
// writes (with PROXYAUTH_LATENCY_OUT=FILE) as an SVG chart: one series of
// points per mode, latency on a log scale against the time since the run
// began, and a dashed line where each run killed its primary.
//
//	go run ./scripts/latencychart [-in FILE] [-o FILE] [-target https] [-title T] [-subtitle S]
//
// The input is CSV with a header naming at least the columns target, mode,
// start_ms, latency_ms, primary ("up" or "dead" when the request started)
// and error ("" when it succeeded); others are ignored. The output depends
// on the input alone. scripts/hedgechart runs the benchmark and this.
package main

import (
	"bytes"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	in := flag.String("in", "-", "the CSV file; - for standard input")
	out := flag.String("o", "docs/hedging.svg", "the SVG file to write; - for standard output")
	target := flag.String("target", "https", `the target rows to draw; "" for all`)
	title := flag.String("title", "Latency of each request when the primary proxy dies", "the chart's title")
	subtitle := flag.String("subtitle", "", "a line under the title")
	flag.Parse()
	if err := run(*in, *out, *target, labels{title: *title, subtitle: *subtitle}); err != nil {
		fmt.Fprintln(os.Stderr, "latencychart:", err)
		os.Exit(1)
	}
}

func run(in, out, target string, l labels) error {
	r := io.Reader(os.Stdin)
	if in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	ss, err := parse(r, target)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	var buf bytes.Buffer
	render(&buf, ss, l)
	if out == "-" {
		_, err = os.Stdout.Write(buf.Bytes())
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// point is one request.
type point struct {
	start, latency float64 // ms
	failed         bool
}

// series is the requests of one mode, in the order of the input.
type series struct {
	mode   string
	points []point
	// killed is the start of the first request after the primary died,
	// in ms; -1 if none.
	killed float64
}

// columns are the columns parse needs.
var columns = []string{"target", "mode", "start_ms", "latency_ms", "primary", "error"}

// parse reads the CSV and returns its series for target ("" for every
// target), in the order in which their modes first appear.
func parse(r io.Reader, target string) ([]series, error) {
	cr := csv.NewReader(r)
	header, err := cr.Read()
	if err == io.EOF {
		return nil, errors.New("empty input, want a header")
	}
	if err != nil {
		return nil, err
	}
	col := map[string]int{}
	for i, name := range header {
		col[name] = i
	}
	for _, name := range columns {
		if _, ok := col[name]; !ok {
			return nil, fmt.Errorf("line 1: no column %q (want %s)", name, strings.Join(columns, ", "))
		}
	}
	var ss []series
	index := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if target != "" && rec[col["target"]] != target {
			continue
		}
		var p point
		for _, f := range []struct {
			name string
			v    *float64
		}{{"start_ms", &p.start}, {"latency_ms", &p.latency}} {
			s := rec[col[f.name]]
			v, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("line %d: %s %q is not a number", line, f.name, s)
			}
			*f.v = v
		}
		if p.start < 0 {
			return nil, fmt.Errorf("line %d: start_ms %v is negative", line, p.start)
		}
		if p.latency <= 0 {
			return nil, fmt.Errorf("line %d: latency_ms %v is not positive, which a log scale cannot show", line, p.latency)
		}
		dead := false
		switch s := rec[col["primary"]]; s {
		case "up":
		case "dead":
			dead = true
		default:
			return nil, fmt.Errorf("line %d: primary %q, want up or dead", line, s)
		}
		p.failed = rec[col["error"]] != ""
		mode := rec[col["mode"]]
		i, ok := index[mode]
		if !ok {
			i = len(ss)
			index[mode] = i
			ss = append(ss, series{mode: mode, killed: -1})
		}
		s := &ss[i]
		s.points = append(s.points, p)
		if dead && (s.killed < 0 || p.start < s.killed) {
			s.killed = p.start
		}
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("no rows for target %q", target)
	}
	return ss, nil
}

// percentile returns the latency at p (0 to 1) of s's points, as the
// benchmark reports it: the element at n×p of the sorted latencies.
func (s series) percentile(p float64) float64 {
	l := make([]float64, len(s.points))
	for i, pt := range s.points {
		l[i] = pt.latency
	}
	slices.Sort(l)
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

// labels are the chart's texts.
type labels struct{ title, subtitle string }

// The chart's geometry, in px.
const (
	width, height            = 820, 500
	left, right, top, bottom = 72, 24, 72, 56
)

// colours of the series, in order; a seventh series takes the first again.
var colours = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// render writes the series as an SVG document.
func render(w *bytes.Buffer, ss []series, l labels) {
	xmax, ymin, ymax := 0.0, math.Inf(1), 0.0
	for _, s := range ss {
		for _, p := range s.points {
			xmax = max(xmax, p.start)
			ymin, ymax = min(ymin, p.latency), max(ymax, p.latency)
		}
	}
	xstep := niceStep(xmax / 8)
	xhi := math.Ceil(xmax/xstep) * xstep
	if xhi == 0 {
		xhi = xstep
	}
	lo, hi := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if hi == lo {
		hi++
	}
	pw, ph := float64(width-left-right), float64(height-top-bottom)
	x := func(ms float64) float64 { return left + ms/xhi*pw }
	y := func(ms float64) float64 { return top + ph - (math.Log10(ms)-lo)/(hi-lo)*ph }

	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	text(w, width/2, 26, "middle", `font-size="16" font-weight="bold"`, l.title)
	if l.subtitle != "" {
		text(w, width/2, 46, "middle", `fill="#444444"`, l.subtitle)
	}

	// The grid and the axes' labels.
	w.WriteString(`<g class="grid" stroke="#dddddd" stroke-width="1">` + "\n")
	for d := lo; d <= hi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if d == hi && m > 1 {
				break
			}
			stroke := ""
			if m > 1 {
				stroke = ` stroke-dasharray="2 3"`
			}
			fmt.Fprintf(w, `<line x1="%s" y1="%s" x2="%s" y2="%s"%s/>`+"\n", f(left), f(y(v)), f(left+pw), f(y(v)), stroke)
		}
	}
	xticks := int(math.Round(xhi / xstep))
	for i := range xticks + 1 {
		v := float64(i) * xstep
		fmt.Fprintf(w, `<line x1="%s" y1="%d" x2="%s" y2="%s"/>`+"\n", f(x(v)), top, f(x(v)), f(top+ph))
	}
	w.WriteString("</g>\n")
	for d := lo; d <= hi; d++ {
		v := math.Pow(10, d)
		text(w, left-8, y(v)+4, "end", "", duration(v))
	}
	seconds := xhi >= 2000
	for i := range xticks + 1 {
		v := float64(i) * xstep
		label := strconv.FormatFloat(v, 'f', decimals(xstep), 64)
		if seconds {
			label = strconv.FormatFloat(v/1000, 'f', decimals(xstep/1000), 64)
		}
		text(w, x(v), top+ph+18, "middle", "", label)
	}
	xunit := "ms"
	if seconds {
		xunit = "s"
	}
	text(w, left+pw/2, height-12, "middle", "", "time since the run began, when the request started ("+xunit+")")
	fmt.Fprintf(w, `<text x="16" y="%s" text-anchor="middle" transform="rotate(-90 16 %s)">latency (log scale)</text>`+"\n", f(top+ph/2), f(top+ph/2))
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%s" height="%s" fill="none" stroke="#888888"/>`+"\n", left, top, f(pw), f(ph))

	// Where each run's primary died.
	labelled := false
	for i, s := range ss {
		if s.killed < 0 {
			continue
		}
		c := colours[i%len(colours)]
		fmt.Fprintf(w, `<line class="killed" data-mode="%s" x1="%s" y1="%d" x2="%s" y2="%s" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n",
			attr(s.mode), f(x(s.killed)), top, f(x(s.killed)), f(top+ph), c)
		if !labelled {
			text(w, x(s.killed)+4, top+ph-8, "start", `fill="#444444"`, "primary dies")
			labelled = true
		}
	}

	// The requests; a failed one is a cross.
	for i, s := range ss {
		c := colours[i%len(colours)]
		fmt.Fprintf(w, `<g class="series" data-mode="%s" fill="%s" stroke="%s" fill-opacity="0.6">`+"\n", attr(s.mode), c, c)
		for _, p := range s.points {
			px, py := x(p.start), y(p.latency)
			if p.failed {
				fmt.Fprintf(w, `<path class="failed" d="M%s %sl6 6m0 -6l-6 6" stroke-width="1.5"/>`+"\n", f(px-3), f(py-3))
				continue
			}
			fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="2.5" stroke="none"/>`+"\n", f(px), f(py))
		}
		w.WriteString("</g>\n")
	}

	// The legend, with each series' figures, at the top right on a
	// background of its own. Its width is a guess from the length of the
	// text: 6.6 px a character is the width of most sans-serif fonts at 12
	// px, and a little room.
	descs := make([]string, len(ss))
	widest := 0
	for i, s := range ss {
		failed := 0
		for _, p := range s.points {
			if p.failed {
				failed++
			}
		}
		descs[i] = fmt.Sprintf("%s: %d requests, p50 %s, p99 %s, max %s", s.mode, len(s.points),
			duration(s.percentile(0.5)), duration(s.percentile(0.99)), duration(s.percentile(1)))
		if failed > 0 {
			descs[i] += fmt.Sprintf(", %d failed", failed)
		}
		widest = max(widest, len(descs[i]))
	}
	bw, bh := float64(widest)*6.6+28, float64(len(ss))*18+8
	bx, by := left+pw-bw-8, float64(top+8)
	w.WriteString(`<g class="legend">` + "\n")
	fmt.Fprintf(w, `<rect x="%s" y="%s" width="%s" height="%s" fill="#ffffff" fill-opacity="0.9" stroke="#bbbbbb"/>`+"\n", f(bx), f(by), f(bw), f(bh))
	for i := range ss {
		ly := by + 18 + float64(i)*18
		fmt.Fprintf(w, `<circle cx="%s" cy="%s" r="4" fill="%s"/>`+"\n", f(bx+12), f(ly-4), colours[i%len(colours)])
		text(w, bx+22, ly, "start", "", descs[i])
	}
	w.WriteString("</g>\n</svg>\n")
}

// text writes a <text> element; extra is more attributes, as they are.
func text(w *bytes.Buffer, x, y float64, anchor, extra, s string) {
	if extra != "" {
		extra = " " + extra
	}
	fmt.Fprintf(w, `<text x="%s" y="%s" text-anchor="%s"%s>`, f(x), f(y), anchor, extra)
	xml.EscapeText(w, []byte(s))
	w.WriteString("</text>\n")
}

// attr escapes s for an attribute value.
func attr(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// f formats a coordinate.
func f(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// duration formats ms as "21.5 ms" or "2.07 s", to three significant
// digits.
func duration(ms float64) string {
	if ms = sig3(ms); ms >= 1000 {
		return strconv.FormatFloat(sig3(ms/1000), 'f', -1, 64) + " s"
	}
	return strconv.FormatFloat(ms, 'f', -1, 64) + " ms"
}

// sig3 rounds v to three significant digits.
func sig3(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 3, 64), 64)
	return r
}

// decimals returns the decimals that multiples of step need.
func decimals(step float64) int {
	return max(0, int(-math.Floor(math.Log10(step))))
}

// niceStep returns the least of 1, 2 or 5 times a power of ten that is at
// least v; 1 for v ≤ 0.
func niceStep(v float64) float64 {
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
