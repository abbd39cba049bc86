package checkcmd

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/proxyauth/proxyauth"
)

// The results go to stdout in the list's order, each as soon as every
// result before it is known, as a table row or a line of JSON.

const (
	// indent starts the summary and hint lines under a table row.
	indent = "    "
	// maxProxyWidth bounds the PROXY column; a longer URL pushes its row.
	maxProxyWidth = 60
)

// report writes the results in order. Its methods are called one at a
// time.
type report struct {
	w      *bufio.Writer
	json   bool
	widths widths
	// around, if not nil, runs each write (the progress clears its line
	// around it).
	around func(func())

	pending     map[int]pendingResult
	next        int // the index of the next result to write
	header      bool
	ok, failed  int
	notChecked  int  // results that an interruption left unknown
	noneChecked bool // no check could start: the one result says why
	err         error
}

type pendingResult struct {
	r           proxyauth.CheckResult
	interrupted bool // the run was interrupted when it came
}

// widths are the widths of the table's padded columns.
type widths struct{ proxy, auth int }

// newReport returns a report to w, its table's columns sized for proxies
// (which may be nil when they are not known).
func newReport(w io.Writer, asJSON bool, proxies []*url.URL) *report {
	wd := widths{proxy: len("PROXY"), auth: len("none needed")}
	for _, p := range proxies {
		wd.proxy = max(wd.proxy, min(len(proxyName(p, p == nil)), maxProxyWidth))
		if p != nil && strings.HasPrefix(p.Scheme, "socks") {
			wd.auth = max(wd.auth, len("username/password"))
		}
	}
	return &report{w: bufio.NewWriter(w), json: asJSON, widths: wd, pending: map[int]pendingResult{}}
}

// add takes the result of index i, and writes it with those after it that
// are known, once those before it are written.
func (r *report) add(i int, res proxyauth.CheckResult, interrupted bool) {
	r.pending[i] = pendingResult{res, interrupted}
	if _, ok := r.pending[r.next]; !ok {
		return
	}
	r.write(func() {
		for {
			p, ok := r.pending[r.next]
			if !ok {
				break
			}
			delete(r.pending, r.next)
			r.next++
			switch {
			case p.r.OK:
				r.ok++
			case p.interrupted && p.r.Diagnosis.Layer == proxyauth.LayerNone:
				// Canceled or never tried: nothing is known of it.
				r.notChecked++
				continue
			default:
				r.failed++
			}
			if r.json {
				r.jsonLine(p.r)
			} else {
				r.row(p.r)
			}
		}
	})
}

// line writes a line of text, after the table.
func (r *report) line(s string) {
	r.write(func() {
		r.w.WriteString(s + "\n")
	})
}

// write runs f, which writes to r.w, and flushes it, through around.
func (r *report) write(f func()) {
	do := func() {
		f()
		if err := r.w.Flush(); err != nil && r.err == nil {
			r.err = err
		}
	}
	if r.around != nil {
		r.around(do)
	} else {
		do()
	}
}

// flush returns the first error met writing.
func (r *report) flush() error {
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = err
	}
	return r.err
}

// summary returns the final line: "3 proxies: 2 ok, 1 failed".
func (r *report) summary(interrupted bool) string {
	if r.noneChecked {
		return "no proxy could be checked"
	}
	n := r.ok + r.failed + r.notChecked
	noun := "proxies"
	if n == 1 {
		noun = "proxy"
	}
	s := fmt.Sprintf("%d %s: %d ok, %d failed", n, noun, r.ok, r.failed)
	if r.notChecked > 0 || interrupted {
		s += fmt.Sprintf(", %d not checked (interrupted)", r.notChecked)
	}
	return s
}

// row writes res as a table row, with its summary and hints under it when
// it failed (the hints only when it passed).
func (r *report) row(res proxyauth.CheckResult) {
	if !r.header {
		r.header = true
		r.cells("PROXY", "RESULT", "LAYER", "AUTH", "STATUS", "CONNECT", "LATENCY")
	}
	result, layer := "ok", "-"
	if !res.OK {
		result = "FAIL"
		if res.Diagnosis.Layer != proxyauth.LayerNone {
			layer = res.Diagnosis.Layer.String()
		}
	}
	status, connect, latency := "-", "-", "-"
	if res.StatusCode != 0 {
		status, latency = strconv.Itoa(res.StatusCode), millis(res.Latency)
	}
	if res.Addr != "" {
		connect = millis(res.Connect)
	}
	r.cells(proxyName(res.Proxy, res.Direct), result, layer, authText(res), status, connect, latency)
	if !res.OK {
		r.w.WriteString(indent + res.Diagnosis.Summary + "\n")
	}
	for _, h := range res.Diagnosis.Hints {
		r.w.WriteString(indent + "hint: " + h + "\n")
	}
}

// cells writes one line of the table.
func (r *report) cells(proxy, result, layer, auth, status, connect, latency string) {
	fmt.Fprintf(r.w, "%-*s  %-6s  %-11s  %-*s  %-6s  %-8s  %s\n",
		r.widths.proxy, proxy, result, layer, r.widths.auth, auth, status, connect, latency)
}

// proxyName names a proxy for the output: its URL (without userinfo, as
// CheckResult gives it), "DIRECT", or "-" when none could be chosen.
func proxyName(p *url.URL, direct bool) string {
	switch {
	case direct:
		return "DIRECT"
	case p == nil:
		return "-"
	}
	return p.String()
}

// authText says how the proxy authenticated the check: the scheme it
// accepted, "none needed" when it passed without asking, "-" otherwise.
func authText(res proxyauth.CheckResult) string {
	switch {
	case res.Proxy == nil:
		return "-"
	case res.Scheme != "":
		return res.Scheme
	case !res.AuthRequired && proxyPassed(res):
		return "none needed"
	}
	return "-"
}

// proxyPassed reports whether every layer of the proxy passed.
func proxyPassed(res proxyauth.CheckResult) bool {
	switch res.Diagnosis.Layer {
	case proxyauth.LayerTLS, proxyauth.LayerOrigin, proxyauth.LayerOriginAuth:
		return true
	}
	return res.OK
}

// millis formats d in milliseconds: "0.4ms", "12ms".
func millis(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
}

// jsonResult is the JSON form of a result, one line per proxy. Its keys
// are fixed: scripts read them.
type jsonResult struct {
	Proxy        *string  `json:"proxy"` // null when no proxy could be chosen
	OK           bool     `json:"ok"`
	Layer        string   `json:"layer"`
	Summary      string   `json:"summary"`
	Hints        []string `json:"hints"`
	Scheme       string   `json:"scheme"`
	Status       *int     `json:"status"`     // null when the target was not reached
	LatencyMS    *float64 `json:"latency_ms"` // null when the target was not reached
	Addr         *string  `json:"addr"`       // null when no connection was made
	ConnectMS    *float64 `json:"connect_ms"` // null when no connection was made
	AuthRequired bool     `json:"auth_required"`
	Offered      []string `json:"offered"`
}

// jsonLine writes res as one line of JSON.
func (r *report) jsonLine(res proxyauth.CheckResult) {
	j := jsonResult{
		OK:           res.OK,
		Layer:        res.Diagnosis.Layer.String(),
		Summary:      res.Diagnosis.Summary,
		Hints:        append([]string{}, res.Diagnosis.Hints...),
		Scheme:       res.Scheme,
		AuthRequired: res.AuthRequired,
		Offered:      append([]string{}, res.Offered...),
	}
	if res.Direct || res.Proxy != nil {
		s := proxyName(res.Proxy, res.Direct)
		j.Proxy = &s
	}
	if res.StatusCode != 0 {
		code, ms := res.StatusCode, fractionalMillis(res.Latency)
		j.Status, j.LatencyMS = &code, &ms
	}
	if res.Addr != "" {
		addr, ms := res.Addr, fractionalMillis(res.Connect)
		j.Addr, j.ConnectMS = &addr, &ms
	}
	enc := json.NewEncoder(r.w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil && r.err == nil {
		r.err = err
	}
}

// fractionalMillis returns d in milliseconds, to the microsecond.
func fractionalMillis(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}
