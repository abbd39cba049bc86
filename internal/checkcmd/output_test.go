package checkcmd

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
)

// decodeLines decodes each line of s as a JSON object.
func decodeLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if l == "" && len(out) == 0 && i == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not a JSON object: %v\n%s", i+1, err, l)
		}
		out = append(out, m)
	}
	return out
}

// dialTo returns a DialContext that dials addr, whatever it is asked for.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
}

// jsonKeys are the keys of every JSON line.
var jsonKeys = []string{"proxy", "ok", "layer", "summary", "hints", "scheme", "status", "latency_ms",
	"addr", "connect_ms", "auth_required", "offered"}

func TestJSON(t *testing.T) {
	origin := newOrigin(t, true)
	ca := caFile(t, origin)
	basic := newProxy(t, nil, "alice", "wonderland", false)
	tlsProxy := newProxy(t, openAuth{}, "", "", true)
	forbidding := openProxy(t)
	forbidding.SetConnectStatus(http.StatusForbidden)
	dead := "http://" + testnet.Closed(t)
	withUser := "http://alice:wonderland@" + basic.Listener.Addr().String()
	got := runMain(t, Env{}, "-json", "-cacert", ca, "-target", origin.URL+"/", withUser, tlsProxy.URL, forbidding.URL, dead)
	if got.code != ExitFailed {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", got.code, got.stderr)
	}
	if !strings.Contains(got.stderr, "4 proxies: 2 ok, 2 failed") {
		t.Errorf("stderr:\n%s\nwant the count", got.stderr)
	}
	if strings.Contains(got.stdout, "proxies:") {
		t.Errorf("stdout holds more than JSON:\n%s", got.stdout)
	}
	rows := decodeLines(t, got.stdout)
	if len(rows) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(rows), got.stdout)
	}
	for i, row := range rows {
		var keys []string
		for k := range row {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := slices.Sorted(slices.Values(jsonKeys))
		if !slices.Equal(keys, want) {
			t.Errorf("line %d: keys %v, want %v", i+1, keys, want)
		}
		for k, kind := range map[string]string{"proxy": "string", "ok": "bool", "layer": "string", "summary": "string",
			"hints": "array", "scheme": "string", "auth_required": "bool", "offered": "array"} {
			if typeOf(row[k]) != kind {
				t.Errorf("line %d: %s is %s (%v), want %s", i+1, k, typeOf(row[k]), row[k], kind)
			}
		}
	}

	type want struct {
		proxy, layer, scheme string
		ok, reached, conn    bool
		offered              []any
	}
	for i, w := range []want{
		{strings.Replace(withUser, "alice:wonderland@", "", 1), "none", "Basic", true, true, true, []any{"Basic"}},
		{tlsProxy.URL, "none", "", true, true, true, []any{}},
		{forbidding.URL, "proxy", "", false, false, true, []any{}},
		{dead, "network", "", false, false, false, []any{}},
	} {
		row := rows[i]
		if row["proxy"] != w.proxy || row["layer"] != w.layer || row["scheme"] != w.scheme || row["ok"] != w.ok {
			t.Errorf("line %d: %v\nwant proxy %s, layer %s, scheme %q, ok %v", i+1, row, w.proxy, w.layer, w.scheme, w.ok)
		}
		if !slices.Equal(row["offered"].([]any), w.offered) {
			t.Errorf("line %d: offered %v, want %v", i+1, row["offered"], w.offered)
		}
		for _, k := range []string{"status", "latency_ms"} {
			if kind := typeOf(row[k]); w.reached && kind != "number" || !w.reached && kind != "null" {
				t.Errorf("line %d: %s is %v, want a number only when the target was reached (%v)", i+1, k, row[k], w.reached)
			}
		}
		if kind := typeOf(row["connect_ms"]); w.conn && kind != "number" || !w.conn && kind != "null" {
			t.Errorf("line %d: connect_ms is %v, want a number only after a connection (%v)", i+1, row["connect_ms"], w.conn)
		}
		if kind := typeOf(row["addr"]); w.conn && kind != "string" || !w.conn && kind != "null" {
			t.Errorf("line %d: addr is %v, want a string only after a connection (%v)", i+1, row["addr"], w.conn)
		}
		if w.ok && row["status"] != 200.0 {
			t.Errorf("line %d: status %v, want 200", i+1, row["status"])
		}
		if !w.ok && len(row["hints"].([]any)) == 0 {
			t.Errorf("line %d: a failure without hints", i+1)
		}
	}
	if rows[0]["auth_required"] != true || rows[1]["auth_required"] != false {
		t.Errorf("auth_required %v and %v, want true and false", rows[0]["auth_required"], rows[1]["auth_required"])
	}
}

// typeOf names the JSON type of a decoded value.
func typeOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

func TestTable(t *testing.T) {
	origin := newOrigin(t, false)
	open := openProxy(t)
	basic := newProxy(t, nil, "alice", "wonderland", false)
	noChallenge := newProxy(t, noChallenge{}, "", "", false)
	mixed := newProxy(t, nil, "alice", "wonderland", false)
	mixed.SetAuthStatus(http.StatusUnauthorized)
	origin401 := origin.URL + "/private"
	got := runMain(t, Env{}, "-target", origin.URL+"/", open.URL, basic.URL, noChallenge.URL, mixed.URL)
	if got.code != ExitFailed {
		t.Fatalf("exit status %d, want 1; stderr:\n%s", got.code, got.stderr)
	}
	t.Logf("table:\n%s", got.stdout)
	rows := lines(got.stdout)
	header := strings.Fields(rows[0])
	if !slices.Equal(header, []string{"PROXY", "RESULT", "LAYER", "AUTH", "STATUS", "CONNECT", "LATENCY"}) {
		t.Errorf("header %q", rows[0])
	}
	// One row per proxy, in order, each failure followed by its summary
	// and hints, indented.
	type row struct {
		fields []string
		under  []string
	}
	var table []row
	for _, l := range rows[1 : len(rows)-1] {
		if strings.HasPrefix(l, indent) {
			if len(table) == 0 {
				t.Fatalf("an indented line before any row: %q", l)
			}
			table[len(table)-1].under = append(table[len(table)-1].under, strings.TrimPrefix(l, indent))
			continue
		}
		table = append(table, row{fields: strings.Fields(l)})
	}
	if len(table) != 4 {
		t.Fatalf("%d rows, want 4:\n%s", len(table), got.stdout)
	}
	want := [][]string{
		{open.URL, "ok", "-", "none", "needed", "200"},
		{basic.URL, "FAIL", "proxy-auth", "-", "-"},
		{noChallenge.URL, "FAIL", "proxy-auth", "-", "-"},
		{mixed.URL, "FAIL", "proxy-auth", "-", "-"},
	}
	for i, w := range want {
		if f := table[i].fields; len(f) < len(w) || !slices.Equal(f[:len(w)], w) {
			t.Errorf("row %d: %q, want it to start with %q", i+1, f, w)
		}
	}
	if len(table[0].under) != 0 {
		t.Errorf("lines under a passing row: %q", table[0].under)
	}
	for i, r := range table[1:] {
		if len(r.under) < 2 || strings.HasPrefix(r.under[0], "hint: ") || !strings.HasPrefix(r.under[1], "hint: ") {
			t.Errorf("row %d: lines under it %q, want the summary then hints", i+2, r.under)
		}
	}
	if !strings.Contains(table[1].under[0], "requires credentials and none were sent") {
		t.Errorf("row 2: summary %q", table[1].under[0])
	}
	if !strings.Contains(table[2].under[0], "offers no challenge") {
		t.Errorf("row 3: summary %q", table[2].under[0])
	}
	if !strings.Contains(table[3].under[0], "mixed signals") {
		t.Errorf("row 4: summary %q", table[3].under[0])
	}
	if last := rows[len(rows)-1]; last != "4 proxies: 1 ok, 3 failed" {
		t.Errorf("last line %q, want the count", last)
	}

	// An origin's 401: every layer of the proxy passed.
	got = runMain(t, Env{}, "-target", origin401, open.URL)
	rows = lines(got.stdout)
	if f := strings.Fields(rows[1]); got.code != ExitFailed || !slices.Equal(f[:6], []string{open.URL, "FAIL", "origin-auth", "none", "needed", "401"}) {
		t.Errorf("exit status %d, table:\n%s\nwant an origin-auth failure with status 401", got.code, got.stdout)
	}
}

func TestReportOrder(t *testing.T) {
	// Results come in any order; rows go out in the list's, each as soon
	// as those before it are out.
	var out syncBuffer
	u := func(port string) *url.URL { return &url.URL{Scheme: "http", Host: "127.0.0.1:" + port} }
	list := []*url.URL{u("1"), u("2"), u("3")}
	r := newReport(&out, true, list)
	res := func(i int) proxyauth.CheckResult {
		return proxyauth.CheckResult{Proxy: list[i], OK: true, StatusCode: 200, Latency: time.Millisecond}
	}
	r.add(2, res(2), false)
	r.add(1, res(1), false)
	if out.String() != "" {
		t.Fatalf("wrote %q before the first result", out.String())
	}
	r.add(0, res(0), false)
	rows := decodeLines(t, out.String())
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3", len(rows))
	}
	for i, row := range rows {
		if row["proxy"] != list[i].String() {
			t.Errorf("row %d: proxy %v, want %v", i, row["proxy"], list[i])
		}
	}
}
