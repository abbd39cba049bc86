package proxyauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// fakeClock is the pool's clock in tests: it moves only when told.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// poolClient returns a client over a Transport for cfg whose pool reads
// clock, and the Transport.
func poolClient(t *testing.T, cfg proxyauth.Config, clock *fakeClock) (*http.Client, *proxyauth.Transport) {
	t.Helper()
	tr, err := proxyauth.New(cfg)
	require.NoError(t, err)
	if clock != nil {
		proxyauth.SetPoolClock(tr, clock.Now)
	}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}, tr
}

// stateOf returns the state of each proxy of tr's pool.
func statesOf(tr *proxyauth.Transport) []proxyauth.ProxyState {
	var out []proxyauth.ProxyState
	for _, s := range tr.Pool().Stats() {
		out = append(out, s.State)
	}
	return out
}

func requestsOf(tr *proxyauth.Transport) []uint64 {
	var out []uint64
	for _, s := range tr.Pool().Stats() {
		out = append(out, s.Requests)
	}
	return out
}

func TestFailoverFromDeadPrimary(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			primary, fallback := newProxy(t, user, secret), newProxy(t, user, secret)
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, primary.URL, user, secret), withUser(t, fallback.URL, user, secret)},
				Base:    trusting(o.Certificate()),
			}, nil)
			_, _, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Len(t, primary.Requests(), 1, "the primary serves while it is up")
			primary.Close()
			cl.CloseIdleConnections()

			body, _, err := get(cl, o.URL)
			require.NoError(t, err, "the fallback serves")
			assert.Equal(t, "hello from origin", body)
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateEjected, proxyauth.StateHealthy}, statesOf(tr))
			for i := 0; i < 3; i++ {
				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
			}
			assert.Equal(t, []uint64{2, 4}, requestsOf(tr), "the ejected primary is skipped")
			wantAtFallback := 4
			if tt.tunnel {
				wantAtFallback = 1 // one tunnel, reused
			}
			assert.Len(t, fallback.Requests(), wantAtFallback)
			st := tr.Pool().Stats()[0]
			assert.Contains(t, st.LastError, "cannot reach proxy")
			assert.Equal(t, 1, st.Ejections)
		})
	}
}

func TestBlackHoledPrimaryCostsOneBoundedWait(t *testing.T) {
	o := newOrigin(t, true, nil)
	fallback := newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies:      []string{withUser(t, "http://"+blackHole(t), user, secret), withUser(t, fallback.URL, user, secret)},
		Base:         trusting(o.Certificate()),
		ProxyTimeout: expiring,                             // the fallback must answer within it too
		Pool:         proxyauth.PoolConfig{HedgeAfter: -1}, // the wait that hedging spares (hedge_test.go)
	}, nil)
	_, _, err := get(cl, o.URL)
	require.NoError(t, err, "served by the fallback after the bounded wait")
	assert.Equal(t, proxyauth.StateEjected, statesOf(tr)[0])
	st := tr.Pool().Stats()[0]
	assert.Contains(t, st.LastError, "did not answer the CONNECT")
	assert.Contains(t, st.LastError, "timeout")
	for i := 0; i < 3; i++ {
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
	}
	assert.Equal(t, []uint64{1, 4}, requestsOf(tr), "the black hole is tried once")
}

func TestBlackHoledPrimaryPlainTarget(t *testing.T) {
	o := newOrigin(t, false, nil)
	fallback := newProxy(t, user, secret)
	base := trusting()
	base.ResponseHeaderTimeout = expiring // a forwarded request's answer waits on the origin too; the fallback's must come within it
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: []string{"http://" + blackHole(t), withUser(t, fallback.URL, user, secret)},
		Base:    base,
	}, nil)
	_, _, err := get(cl, o.URL)
	require.NoError(t, err, "a GET fails over after the bounded wait")
	assert.Equal(t, proxyauth.StateEjected, statesOf(tr)[0])
	assert.Contains(t, tr.Pool().Stats()[0].LastError, "did not answer the forwarded request")
}

func TestRecoveredProxyReadmittedOnlyAfterProbe(t *testing.T) {
	o := newOrigin(t, false, nil)
	addr := closedAddr(t)
	fallback := newProxy(t, user, secret)
	clock := newFakeClock()
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: []string{withUser(t, "http://"+addr, user, secret), withUser(t, fallback.URL, user, secret)},
		Pool:    proxyauth.PoolConfig{EjectionTime: time.Minute},
	}, clock)
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateEjected, proxyauth.StateHealthy}, statesOf(tr),
		"the primary failed its first probe")

	// The primary comes back on its address.
	l, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	primary := proxyauthtest.NewUnstartedProxy(user, secret)
	primary.Listener.Close()
	primary.Listener = l
	primary.Start()
	t.Cleanup(primary.Close)

	_, _, err = get(cl, o.URL)
	require.NoError(t, err)
	assert.Empty(t, primary.Requests(), "still ejected: no probe has passed")

	clock.Advance(2 * time.Minute)
	// Due: this request starts a probe. It goes to the fallback, or, if
	// the probe passed before it picked, already to the primary.
	_, _, err = get(cl, o.URL)
	require.NoError(t, err)
	proxyauth.WaitForProbes(tr)
	assert.Equal(t, proxyauth.StateHealthy, statesOf(tr)[0], "the probe passed")
	before := len(primary.Requests())
	_, _, err = get(cl, o.URL)
	require.NoError(t, err)
	assert.Len(t, primary.Requests(), before+1, "the primary serves again")
}

func TestProxyWithBadCredentialsMarkedAuthFailed(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			bad, good := newProxy(t, user, secret), newProxy(t, user, secret)
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, bad.URL, user, "wrong"), withUser(t, good.URL, user, secret)},
				Base:    trusting(o.Certificate()),
			}, nil)
			for i := 0; i < 3; i++ {
				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
			}
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateAuthFailed, proxyauth.StateHealthy}, statesOf(tr))
			assert.Len(t, bad.Requests(), 1, "skipped once it refused the credentials")
			wantAtGood := 3
			if tt.tunnel {
				wantAtGood = 1 // one tunnel, reused
			}
			assert.Len(t, good.Requests(), wantAtGood)
			assert.Equal(t, uint64(1), tr.Pool().Stats()[0].Statuses[http.StatusProxyAuthRequired])
		})
	}
}

func TestPOSTNotResentAfterOriginMayHaveSeenIt(t *testing.T) {
	tests := []struct {
		name         string
		method       string
		idempotency  bool
		wantFailover bool
	}{
		{"POST", http.MethodPost, false, false},
		{"POST with Idempotency-Key", http.MethodPost, true, true},
		{"PUT", http.MethodPut, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, bodies := recordingOrigin(t, false)
			hangs, good := newProxy(t, user, secret), newProxy(t, user, secret)
			cl, _ := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, hangs.URL, user, secret), withUser(t, good.URL, user, secret)},
			}, nil)
			hangs.SetHangUp(true) // reads the request, then drops the connection
			req, err := http.NewRequest(tc.method, o.URL, strings.NewReader("order #1"))
			require.NoError(t, err)
			if tc.idempotency {
				req.Header.Set("Idempotency-Key", "k-1")
			}
			resp, err := cl.Do(req)
			if !tc.wantFailover {
				var pe *proxyauth.ProxyError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, "forward", pe.Op)
				assert.Empty(t, good.Requests(), "not resent through the fallback")
				assert.Empty(t, bodies())
				return
			}
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, []string{"order #1"}, bodies())
			assert.Len(t, good.Requests(), 1)
		})
	}
	t.Run("POST through a CONNECT that failed", func(t *testing.T) {
		o, bodies := recordingOrigin(t, true)
		hangs, good := newProxy(t, user, secret), newProxy(t, user, secret)
		cl, _ := poolClient(t, proxyauth.Config{
			Proxies: []string{withUser(t, hangs.URL, user, secret), withUser(t, good.URL, user, secret)},
			Base:    trusting(o.Certificate()),
		}, nil)
		hangs.SetHangUp(true)
		resp, err := cl.Post(o.URL, "text/plain", strings.NewReader("order #2"))
		require.NoError(t, err, "no tunnel, so the origin cannot have seen it")
		resp.Body.Close()
		assert.Equal(t, []string{"order #2"}, bodies())
	})
}

func TestAllProxiesDown(t *testing.T) {
	a, b := closedAddr(t), closedAddr(t)
	cl, _ := poolClient(t, proxyauth.Config{Proxies: []string{"http://" + a, withUser(t, "http://"+b, user, secret)}}, nil)
	for i := 0; i < 2; i++ { // probes, then panic mode
		_, err := cl.Get("http://origin.test/")
		var pool *proxyauth.PoolError
		require.ErrorAs(t, err, &pool)
		require.Len(t, pool.Errors, 2)
		var pe *proxyauth.ProxyError
		require.ErrorAs(t, err, &pe)
		assert.ErrorIs(t, err, proxyauth.ErrProxyUnavailable)
		assert.Contains(t, err.Error(), a)
		assert.Contains(t, err.Error(), b)
		assert.NotContains(t, err.Error(), secret)
		assert.Equal(t, proxyauth.KindProxyUnavailable, proxyauth.Classify(nil, err))
	}
}

func TestMaxProxiesPerRequest(t *testing.T) {
	var proxies []string
	for i := 0; i < 5; i++ {
		proxies = append(proxies, "http://"+closedAddr(t))
	}
	cl, _ := poolClient(t, proxyauth.Config{Proxies: proxies, Pool: proxyauth.PoolConfig{MaxProxiesPerRequest: 2}}, nil)
	_, err := cl.Get("http://origin.test/")
	var pool *proxyauth.PoolError
	require.ErrorAs(t, err, &pool)
	assert.Len(t, pool.Errors, 2)
}

// anyHost dials every address at to.
func anyHost(to string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, _ string) (net.Conn, error) { return d.DialContext(ctx, network, to) }
}

// mappedProxies starts n proxies that send every target to o.
func mappedProxies(t *testing.T, n int, o *origin) ([]*proxyauthtest.Proxy, []string) {
	var ps []*proxyauthtest.Proxy
	var urls []string
	for i := 0; i < n; i++ {
		p := proxyauthtest.NewUnstartedProxy(user, secret)
		p.DialContext = anyHost(o.Listener.Addr().String())
		p.Start()
		t.Cleanup(p.Close)
		ps = append(ps, p)
		urls = append(urls, withUser(t, p.URL, user, secret))
	}
	return ps, urls
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	o := newOrigin(t, false, nil)
	_, urls := mappedProxies(t, 3, o)
	t.Run("equal weights", func(t *testing.T) {
		cl, tr := poolClient(t, proxyauth.Config{Proxies: urls, Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin}}, nil)
		for i := 0; i < 30; i++ {
			_, _, err := get(cl, fmt.Sprintf("http://site%d.test/", i))
			require.NoError(t, err)
		}
		assert.Equal(t, []uint64{10, 10, 10}, requestsOf(tr))
	})
	t.Run("weights", func(t *testing.T) {
		cl, tr := poolClient(t, proxyauth.Config{Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin,
			Proxies: []proxyauth.PoolProxy{{URL: urls[0], Weight: 1}, {URL: urls[1], Weight: 2}, {URL: urls[2], Weight: 3}}}}, nil)
		for i := 0; i < 60; i++ {
			_, _, err := get(cl, "http://site.test/")
			require.NoError(t, err)
		}
		assert.Equal(t, []uint64{10, 20, 30}, requestsOf(tr))
	})
}

func TestRandomUsesEveryProxy(t *testing.T) {
	o := newOrigin(t, false, nil)
	_, urls := mappedProxies(t, 3, o)
	cl, tr := poolClient(t, proxyauth.Config{Proxies: urls, Pool: proxyauth.PoolConfig{Strategy: proxyauth.Random}}, nil)
	for i := 0; i < 90; i++ {
		_, _, err := get(cl, "http://site.test/")
		require.NoError(t, err)
	}
	for i, n := range requestsOf(tr) {
		assert.NotZero(t, n, "proxy %d never chosen in 90 requests", i) // chance of a miss: 3·(2/3)^90 < 1e-15
	}
}

func TestStickyHostKeepsAHostOnOneProxy(t *testing.T) {
	o := newOrigin(t, false, nil)
	ps, urls := mappedProxies(t, 4, o)
	cl, tr := poolClient(t, proxyauth.Config{Proxies: urls, Pool: proxyauth.PoolConfig{Strategy: proxyauth.StickyHost}}, nil)
	hostsPerProxy := map[int]int{}
	for h := 0; h < 40; h++ {
		host := fmt.Sprintf("shop%d.test", h)
		for i := 0; i < 3; i++ {
			_, _, err := get(cl, "http://"+host+"/page")
			require.NoError(t, err)
		}
		var seen []int
		for i, p := range ps {
			for _, r := range p.Requests() {
				if strings.Contains(r.Target, host+"/") {
					seen = append(seen, i)
				}
			}
		}
		require.Len(t, seen, 3)
		assert.Equal(t, seen[0], seen[1], "host %s moved between proxies", host)
		assert.Equal(t, seen[0], seen[2], "host %s moved between proxies", host)
		hostsPerProxy[seen[0]]++
	}
	assert.GreaterOrEqual(t, len(hostsPerProxy), 3, "hosts spread over the proxies: %v", hostsPerProxy)

	// A host whose proxy goes away moves to another one, and the others stay.
	req, _ := http.NewRequest(http.MethodGet, "http://shop0.test/", nil)
	home := proxyauth.Pick(tr, req)
	others := map[string]int{}
	for h := 1; h < 40; h++ {
		r, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://shop%d.test/", h), nil)
		others[r.URL.Host] = proxyauth.Pick(tr, r)
	}
	ps[home].Close()
	cl.CloseIdleConnections()
	_, _, err := get(cl, "http://shop0.test/page")
	require.NoError(t, err)
	assert.NotEqual(t, home, proxyauth.Pick(tr, req))
	for host, was := range others {
		r, _ := http.NewRequest(http.MethodGet, "http://"+host+"/", nil)
		if was != home {
			assert.Equal(t, was, proxyauth.Pick(tr, r), "host %s moved though its proxy is up", host)
		}
	}
}

func TestProbeTargets(t *testing.T) {
	o := newOrigin(t, false, nil)
	canary := newOrigin(t, false, nil)
	canaryAddr := canary.Listener.Addr().String()
	tests := []struct {
		name  string
		probe string
	}{
		{"CONNECT to a canary", canaryAddr},
		{"GET of a probe URL", canary.URL + "/health"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bad, good := newProxy(t, user, secret), newProxy(t, user, secret)
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, bad.URL, user, "wrong"), withUser(t, good.URL, user, secret)},
				Pool:    proxyauth.PoolConfig{Probe: tc.probe, ProbeAtStart: true},
			}, nil)
			proxyauth.WaitForProbes(tr)
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateAuthFailed, proxyauth.StateHealthy}, statesOf(tr),
				"the probe checked the credentials")
			_, _, err := get(cl, o.URL)
			require.NoError(t, err)
			for _, r := range bad.Requests() {
				assert.NotEqual(t, o.URL+"/", r.Target, "no real request went to the proxy that failed its probe")
			}
		})
	}
	t.Run("SOCKS5 canary", func(t *testing.T) {
		bad := proxyauthtest.NewSOCKS5Proxy(user, secret)
		t.Cleanup(bad.Close)
		good := proxyauthtest.NewSOCKS5Proxy(user, secret)
		t.Cleanup(good.Close)
		_, tr := poolClient(t, proxyauth.Config{
			Proxies: []string{withUser(t, bad.URL, user, "wrong"), withUser(t, good.URL, user, secret)},
			Pool:    proxyauth.PoolConfig{Probe: canaryAddr, ProbeAtStart: true},
		}, nil)
		proxyauth.WaitForProbes(tr)
		assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateAuthFailed, proxyauth.StateHealthy}, statesOf(tr))
	})
}

func TestPoolStats(t *testing.T) {
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok")
	})
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{Proxies: []string{withUser(t, a.URL, user, secret), withUser(t, b.URL, user, secret)}}, nil)
	for _, path := range []string{"/", "/", "/missing"} {
		_, _, err := get(cl, o.URL+path)
		require.NoError(t, err)
	}
	st := tr.Pool().Stats()
	require.Len(t, st, 2)
	assert.Equal(t, a.URL, st[0].Proxy, "no userinfo")
	assert.Equal(t, proxyauth.StateHealthy, st[0].State)
	assert.Equal(t, uint64(3), st[0].Requests)
	assert.Equal(t, map[proxyauth.Kind]uint64{proxyauth.KindOK: 2, proxyauth.KindOther: 1}, st[0].Outcomes)
	assert.Equal(t, map[int]uint64{200: 2, 404: 1}, st[0].Statuses)
	assert.Equal(t, uint64(3), st[0].Latency.Count)
	assert.Positive(t, st[0].Latency.Max)
	assert.Equal(t, proxyauth.StateUnchecked, st[1].State)
	assert.Zero(t, st[1].Requests)
	assert.NotContains(t, fmt.Sprintf("%+v", st), secret)
}

func TestEjectionCapKeepsAProxy(t *testing.T) {
	o := newOrigin(t, true, nil)
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: []string{withUser(t, a.URL, user, secret), withUser(t, b.URL, user, secret)},
		Base:    trusting(o.Certificate()),
	}, nil)
	_, _, err := get(cl, o.URL) // a probed and used
	require.NoError(t, err)
	a.SetConnectStatus(http.StatusBadGateway)
	b.SetConnectStatus(http.StatusBadGateway)
	cl.CloseIdleConnections()
	_, err = cl.Get(o.URL)
	require.Error(t, err)
	states := statesOf(tr)
	ejected := 0
	for _, s := range states {
		if s == proxyauth.StateEjected {
			ejected++
		}
	}
	assert.Equal(t, 1, ejected, "at most half of two proxies is ejected for traffic failures: %v", states)
}

func TestContextDeadlineStopsFailover(t *testing.T) {
	fallback := newProxy(t, user, secret)
	cl, _ := poolClient(t, proxyauth.Config{
		Proxies:      []string{"http://" + blackHole(t), withUser(t, fallback.URL, user, secret)},
		ProxyTimeout: time.Minute,
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://origin.test/", nil)
	require.NoError(t, err)
	_, err = cl.Do(req)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	assert.Empty(t, fallback.Requests(), "no failover once the caller's deadline passed")
}

func TestClosedTransportStillServes(t *testing.T) {
	o := newOrigin(t, false, nil)
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{Proxies: []string{withUser(t, a.URL, user, secret), withUser(t, b.URL, user, secret)}}, nil)
	require.NoError(t, tr.Close())
	_, _, err := get(cl, o.URL)
	require.NoError(t, err, "unchecked proxies are used unprobed once probes have stopped")
	assert.Len(t, a.Requests(), 1)
}
