package proxyauth_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// pacServer serves a PAC script that a test may change, and counts the
// fetches.
type pacServer struct {
	*httptest.Server
	mu      sync.Mutex
	script  string
	fetched chan struct{}
}

func newPACServer(t *testing.T, script string) *pacServer {
	t.Helper()
	s := &pacServer{script: script, fetched: make(chan struct{}, 64)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		script := s.script
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
		fmt.Fprint(w, script)
		select {
		case s.fetched <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *pacServer) set(script string) {
	s.mu.Lock()
	s.script = script
	s.mu.Unlock()
}

// hostPort returns the host:port of a test server's URL.
func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

// corpPAC sends *.internal hosts directly and the rest to a, then b.
func corpPAC(a, b string) string {
	return `function FindProxyForURL(url, host) {
	if (shExpMatch(host, "*.internal")) return "DIRECT";
	return "PROXY ` + a + `; PROXY ` + b + `";
}`
}

// pacProxies starts two proxies that accept different credentials, and a
// CredentialsFunc that gives each its own, by CredentialsRequest.Proxy.
func pacProxies(t *testing.T) (a, b *proxyauthtest.Proxy, creds proxyauth.CredentialsFunc) {
	a = newProxy(t, "alice", "pass-a")
	b = newProxy(t, "bob", "pass-b")
	byHost := map[string]proxyauth.Credentials{
		hostPort(t, a.URL): {Username: "alice", Password: "pass-a"},
		hostPort(t, b.URL): {Username: "bob", Password: "pass-b"},
	}
	creds = func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		c, ok := byHost[r.Proxy.Host]
		if !ok {
			return proxyauth.Credentials{}, fmt.Errorf("no credentials for %s", r.Proxy)
		}
		return c, nil
	}
	return a, b, creds
}

// TestPACRoutes: the script's list is followed: *.internal directly, the
// rest through the first proxy with its own credentials; ProxiesFor says
// so, and the origin sees no credentials.
func TestPACRoutes(t *testing.T) {
	o := newOrigin(t, false, nil)
	a, b, creds := pacProxies(t)
	srv := newPACServer(t, corpPAC(hostPort(t, a.URL), hostPort(t, b.URL)))
	base := &http.Transport{DialContext: dialMap(map[string]string{"app.internal:80": hostPort(t, o.URL)})}
	cl, tr := poolClient(t, proxyauth.Config{PAC: srv.URL + "/proxy.pac", Credentials: creds, Base: base}, nil)

	body, resp, err := get(cl, o.URL+"/via-proxy")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "hello from origin", body)
	require.Len(t, a.Requests(), 1, "with alice's credentials at once")
	assert.True(t, a.Requests()[0].Authorized)
	assert.Empty(t, b.Requests())

	_, resp, err = get(cl, "http://app.internal/direct")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Len(t, a.Requests(), 1, "the direct request went to no proxy")
	assert.Empty(t, b.Requests())
	o.assertNoProxyAuth(t, "pass-a", "pass-b")

	req, _ := http.NewRequest(http.MethodGet, o.URL+"/x", nil)
	list, err := tr.ProxiesFor(req)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, hostPort(t, a.URL), list[0].Host)
	assert.Equal(t, hostPort(t, b.URL), list[1].Host)
	assert.Nil(t, list[0].User)
	req, _ = http.NewRequest(http.MethodGet, "http://app.internal/", nil)
	list, err = tr.ProxiesFor(req)
	require.NoError(t, err)
	assert.Equal(t, []*url.URL{nil}, list)
}

// TestPACFailover: with the first proxy down, the request goes to the
// second, and the Failover hook says so; with both down, the error is a
// *PoolError with both failures.
func TestPACFailover(t *testing.T) {
	o := newOrigin(t, false, nil)
	a, b, creds := pacProxies(t)
	srv := newPACServer(t, corpPAC(hostPort(t, a.URL), hostPort(t, b.URL)))
	var mu sync.Mutex
	var failovers []proxyauth.FailoverInfo
	cl, _ := poolClient(t, proxyauth.Config{PAC: srv.URL, Credentials: creds,
		Hooks: proxyauth.Hooks{Failover: func(i proxyauth.FailoverInfo) {
			mu.Lock()
			failovers = append(failovers, i)
			mu.Unlock()
		}}}, nil)
	a.Close()
	_, resp, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotEmpty(t, b.Requests())
	mu.Lock()
	require.Len(t, failovers, 1)
	assert.Equal(t, hostPort(t, a.URL), failovers[0].From.Host)
	assert.Equal(t, hostPort(t, b.URL), failovers[0].To.Host)
	mu.Unlock()

	b.Close()
	_, _, err = get(cl, o.URL+"/again")
	var pe *proxyauth.PoolError
	require.ErrorAs(t, err, &pe, "%v", err)
	assert.ErrorIs(t, err, proxyauth.ErrProxyUnavailable)
}

// TestPACDirectFailover: "PROXY a; DIRECT" goes direct when a is down,
// and only then.
func TestPACDirectFailover(t *testing.T) {
	o := newOrigin(t, false, nil)
	a := newProxy(t, user, secret)
	srv := newPACServer(t, `function FindProxyForURL(u, h) { return "PROXY `+hostPort(t, a.URL)+`; DIRECT"; }`)
	cl, tr := poolClient(t, proxyauth.Config{PAC: srv.URL, Credentials: fixedCreds(user, secret)}, nil)
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.NotEmpty(t, a.Requests(), "the proxy first")
	a.Close()
	_, resp, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	req, _ := http.NewRequest(http.MethodGet, o.URL, nil)
	list, err := tr.ProxiesFor(req)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Nil(t, list[1])
}

func fixedCreds(u, p string) proxyauth.CredentialsFunc {
	return func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		return proxyauth.Credentials{Username: u, Password: p}, nil
	}
}

// TestPACRefresh: a changed script is picked up at the next refresh; a
// failed refresh keeps the last good one.
func TestPACRefresh(t *testing.T) {
	o := newOrigin(t, false, nil)
	a, b, creds := pacProxies(t)
	only := func(p *proxyauthtest.Proxy) string {
		return `function FindProxyForURL(u, h) { return "PROXY ` + hostPort(t, p.URL) + `"; }`
	}
	srv := newPACServer(t, only(a))
	_, tr := poolClient(t, proxyauth.Config{PAC: srv.URL, Credentials: creds, PACRefresh: -1}, nil)
	req, _ := http.NewRequest(http.MethodGet, o.URL, nil)
	first := func() string {
		list, err := tr.ProxiesFor(req)
		require.NoError(t, err)
		require.Len(t, list, 1)
		return list[0].Host
	}
	assert.Equal(t, hostPort(t, a.URL), first())
	srv.set(only(b))
	require.NoError(t, proxyauth.RefreshPAC(tr))
	assert.Equal(t, hostPort(t, b.URL), first(), "the new script, not the cached answer of the old one")
	srv.set("function FindProxyForURL(u, h) { return ")
	assert.Error(t, proxyauth.RefreshPAC(tr))
	assert.Equal(t, hostPort(t, b.URL), first(), "the last good script stays")
}

// TestPACRefreshInBackground: with a short PACRefresh the script is
// fetched again on its own, and Close stops that.
func TestPACRefreshInBackground(t *testing.T) {
	srv := newPACServer(t, `function FindProxyForURL(u, h) { return "DIRECT"; }`)
	tr, err := proxyauth.New(proxyauth.Config{PAC: srv.URL, PACRefresh: 10 * time.Millisecond})
	require.NoError(t, err)
	for i := 0; i < 3; i++ { // New's fetch, then two refreshes
		select {
		case <-srv.fetched:
		case <-time.After(generous):
			t.Fatal("the script was not fetched again")
		}
	}
	require.NoError(t, tr.Close())
	// goleak (TestMain) checks that the refresh goroutine has ended.
}

// TestPACFromFile: a path and a file:// URL both work.
func TestPACFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "proxy.pac")
	require.NoError(t, os.WriteFile(path, []byte(`function FindProxyForURL(u, h) { return "PROXY 127.0.0.1:3128"; }`), 0o600))
	for _, where := range []string{path, "file://" + path} {
		tr, err := proxyauth.New(proxyauth.Config{PAC: where, PACRefresh: -1})
		require.NoError(t, err, where)
		req, _ := http.NewRequest(http.MethodGet, "http://example.test/", nil)
		list, err := tr.ProxiesFor(req)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, "http://127.0.0.1:3128", list[0].String())
		tr.Close()
	}
}

// TestPACConfigErrors: what New refuses, each as a *ConfigError for the
// field PAC.
func TestPACConfigErrors(t *testing.T) {
	closed := "http://" + closedAddr(t) + "/proxy.pac"
	srv := newPACServer(t, "")
	tests := []struct {
		name, script, pac string
		want              string
	}{
		{"unreachable", "", closed, "cannot fetch"},
		{"syntax", "function FindProxyForURL(u, h) { return ", "", "cannot compile"},
		{"no function", "function findProxy(u, h) { return 'DIRECT'; }", "", "FindProxyForURL"},
		{"missing file", "", filepath.Join(t.TempDir(), "none.pac"), "cannot fetch"},
		{"other scheme", "", "ftp://example.test/proxy.pac", "not an http://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			where := tt.pac
			if where == "" {
				srv.set(tt.script)
				where = srv.URL
			}
			_, err := proxyauth.New(proxyauth.Config{PAC: where})
			var ce *proxyauth.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "PAC", ce.Field)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := proxyauth.New(proxyauth.Config{PAC: srv.URL, Proxies: []string{"http://proxy.test:3128"}})
	var ce *proxyauth.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Reason, "one way")
}

// TestPACEvaluationErrors: a script that throws, or returns garbage, gives
// a *PACError that says which, and Diagnose hints at ProxiesFor; nothing
// goes direct.
func TestPACEvaluationErrors(t *testing.T) {
	o := newOrigin(t, false, nil)
	tests := []struct {
		name, body string
		op, want   string
	}{
		{"throws", `throw new Error("no route for " + host);`, "evaluate", "no route for 127.0.0.1"},
		{"garbage", `return "FOO bar; PROXY";`, "result", "FOO bar"},
		{"empty", `return "";`, "result", "no usable entry"},
		{"not a string", `return 42;`, "evaluate", "number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newPACServer(t, "function FindProxyForURL(url, host) { "+tt.body+" }")
			cl, _ := poolClient(t, proxyauth.Config{PAC: srv.URL}, nil)
			_, _, err := get(cl, o.URL)
			var pe *proxyauth.PACError
			require.ErrorAs(t, err, &pe)
			assert.ErrorIs(t, err, proxyauth.ErrPAC)
			assert.Equal(t, tt.op, pe.Op)
			assert.Contains(t, err.Error(), tt.want)
			d := proxyauth.Diagnose(nil, err)
			assert.Contains(t, strings.Join(d.Hints, "\n"), "ProxiesFor", d.String())
			assert.Empty(t, o.received(), "nothing went direct")
		})
	}
}

// TestPACCutsHTTPSURLs: for an https:// target the script sees the scheme
// and host only, as in Chromium; for http:// the whole URL.
func TestPACCutsHTTPSURLs(t *testing.T) {
	srv := newPACServer(t, `function FindProxyForURL(url, host) {
	if (url == "https://example.test/" || url == "http://example.test/path?q=1") return "DIRECT";
	return "PROXY 127.0.0.1:9; PROXY saw-" + url.length + ":1";
}`)
	tr, err := proxyauth.New(proxyauth.Config{PAC: srv.URL, PACRefresh: -1})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	for _, target := range []string{"https://example.test/path?secret=1", "http://example.test/path?q=1"} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		list, err := tr.ProxiesFor(req)
		require.NoError(t, err)
		assert.Equal(t, []*url.URL{nil}, list, target)
	}
}

// TestPACResolver: the script's DNS lookups go to Config.PACResolver.
func TestPACResolver(t *testing.T) {
	srv := newPACServer(t, `function FindProxyForURL(url, host) {
	if (isInNet(dnsResolve(host), "10.0.0.0", "255.0.0.0")) return "PROXY 127.0.0.1:3128";
	return "DIRECT";
}`)
	res := fakeResolver{"intranet.corp": {net.ParseIP("10.1.2.3")}, "www.example": {net.ParseIP("192.0.2.7")}}
	tr, err := proxyauth.New(proxyauth.Config{PAC: srv.URL, PACResolver: res, PACRefresh: -1})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	for host, proxied := range map[string]bool{"intranet.corp": true, "www.example": false} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/", nil)
		list, err := tr.ProxiesFor(req)
		require.NoError(t, err)
		require.Len(t, list, 1)
		assert.Equal(t, proxied, list[0] != nil, host)
	}
}

// fakeResolver answers from a map, and fails for any other name: no
// lookup leaves the machine.
type fakeResolver map[string][]net.IP

func (r fakeResolver) LookupIPAddr(_ context.Context, host string) ([]net.IPAddr, error) {
	ips, ok := r[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	out := make([]net.IPAddr, len(ips))
	for i, ip := range ips {
		out[i] = net.IPAddr{IP: ip}
	}
	return out, nil
}

// TestPACCancelledNotCached: a request that ends while the script runs
// gets its context's error, and the next request evaluates the script
// again rather than get that error from the cache.
func TestPACCancelledNotCached(t *testing.T) {
	srv := newPACServer(t, `function FindProxyForURL(url, host) {
	if (host == "slow.test") { while (true) {} }
	return "DIRECT";
}`)
	tr, err := proxyauth.New(proxyauth.Config{PAC: srv.URL, PACRefresh: -1})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://slow.test/", nil)
	_, err = tr.ProxiesFor(req)
	var pe *proxyauth.PACError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "evaluate", pe.Op)
	req, _ = http.NewRequest(http.MethodGet, "http://slow.test/", nil)
	_, err = tr.ProxiesFor(req)
	require.ErrorAs(t, err, &pe, "the loop runs into the time bound")
	assert.Contains(t, err.Error(), "timeout", "evaluated again, not the cancellation from the cache")
}
