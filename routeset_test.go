package proxyauth_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// connCounter is a Base whose dials are counted, with the connections
// still open and a signal for each one closed.
type connCounter struct {
	dials, open atomic.Int32
	closed      chan struct{} // one value per connection closed
	to          string        // where every dial goes; "" for where it asks
}

func newConnCounter(to string) *connCounter {
	return &connCounter{closed: make(chan struct{}, 4096), to: to}
}

func (c *connCounter) base(o *origin) *http.Transport {
	b := trusting(o.Certificate())
	b.ForceAttemptHTTP2 = false
	var d net.Dialer
	b.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if c.to != "" {
			addr = c.to
		}
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c.dials.Add(1)
		c.open.Add(1)
		return &countedConn{Conn: conn, c: c}, nil
	}
	return b
}

type countedConn struct {
	net.Conn
	c    *connCounter
	once sync.Once
}

func (cc *countedConn) Close() error {
	cc.once.Do(func() {
		cc.c.open.Add(-1)
		cc.c.closed <- struct{}{}
	})
	return cc.Conn.Close()
}

// awaitOpen waits until at most n connections are open.
func (c *connCounter) awaitOpen(t *testing.T, n int32) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for c.open.Load() > n {
		select {
		case <-c.closed:
		case <-timeout:
			t.Fatalf("%d connections open after 20s, want at most %d: those of released routes are not closed", c.open.Load(), n)
		}
	}
}

// newDigestProxy starts a proxy that accepts user/secret with Digest alone.
func newDigestProxy(t *testing.T) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewDigestProxy(user, secret)
	t.Cleanup(p.Close)
	return p
}

// TestReleasedRouteKeepsCredentials releases a proxy's route between two
// requests: the route is made again on a new connection, the
// CredentialsFunc is not asked again, and the proxy gets the credentials
// with the first request, as it did before the release.
func TestReleasedRouteKeepsCredentials(t *testing.T) {
	for _, tt := range targets {
		for _, c := range []struct {
			name   string
			digest bool
			fn     bool
		}{{"basic-in-url", false, false}, {"basic-func", false, true}, {"digest-func", true, true}} {
			t.Run(tt.name+"/"+c.name, func(t *testing.T) {
				o := newOrigin(t, tt.tls, nil)
				p := newProxy(t, user, secret)
				if c.digest {
					p = newDigestProxy(t)
				}
				v := &vault{password: secret}
				cfg := proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}
				if c.fn {
					cfg = proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials}
				}
				cc := newConnCounter("")
				cfg.Base = cc.base(o)
				cl, tr := poolClient(t, cfg, nil)

				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
				before, dials := len(p.Requests()), cc.dials.Load()
				require.Equal(t, 1, proxyauth.LiveRoutes(tr))
				proxyauth.ReleaseRoutes(tr)
				assert.Equal(t, 0, proxyauth.LiveRoutes(tr))
				cc.awaitOpen(t, 0)

				_, _, err = get(cl, o.URL)
				require.NoError(t, err)
				assert.Equal(t, dials+1, cc.dials.Load(), "the route was made again, on a new connection")
				reqs := p.Requests()[before:]
				require.Len(t, reqs, 1, "one request after the release, without a 407 first")
				assert.True(t, reqs[0].Authorized)
				want := "Basic"
				if c.digest {
					want = "Digest"
				}
				assert.Equal(t, want, reqs[0].Scheme)
				if c.fn {
					assert.Equal(t, 1, v.count(), "the CredentialsFunc is asked once, whatever becomes of the route")
				}
			})
		}
	}
}

// TestReleasedRoutesKeepHealthAndStats releases the routes of a pool whose
// first proxy is down (ejected) and whose second refuses the credentials
// (auth-failed): both stay out, and the statistics go on counting.
func TestReleasedRoutesKeepHealthAndStats(t *testing.T) {
	o := newOrigin(t, false, nil)
	bad, good := newProxy(t, user, secret), newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: []string{"http://" + closedAddr(t), withUser(t, bad.URL, user, "wrong"), withUser(t, good.URL, user, secret)},
		Pool:    proxyauth.PoolConfig{EjectionTime: time.Hour, MaxEjectionTime: time.Hour, ProbeInterval: time.Hour, MaxEjectedPercent: 100},
	}, newFakeClock())
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	out := []proxyauth.ProxyState{proxyauth.StateEjected, proxyauth.StateAuthFailed, proxyauth.StateHealthy}
	require.Equal(t, out, statesOf(tr))
	require.Equal(t, []uint64{0, 1, 1}, requestsOf(tr))
	atBad := len(bad.Requests())

	for round := range 3 {
		proxyauth.ReleaseRoutes(tr)
		require.Equal(t, 0, proxyauth.LiveRoutes(tr))
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
		assert.Equal(t, out, statesOf(tr), "round %d", round)
		assert.Equal(t, []uint64{0, 1, uint64(2 + round)}, requestsOf(tr), "round %d", round)
		assert.Equal(t, 1, proxyauth.LiveRoutes(tr), "only the healthy proxy's route was made again")
	}
	assert.Len(t, bad.Requests(), atBad, "the auth-failed proxy was not tried again")
	assert.Len(t, good.Requests(), 4)
	st := tr.Pool().Stats()
	assert.Equal(t, uint64(1), st[1].Statuses[http.StatusProxyAuthRequired])
	assert.NotEmpty(t, st[0].LastError)
}

// TestIdleRouteReleased lets a proxy's route go idle, by the pool's clock:
// within the idle time the connection is reused; past it the route is
// released with the next request, its connection closed, and made again
// without asking the CredentialsFunc.
func TestIdleRouteReleased(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	v := &vault{password: secret}
	cc := newConnCounter("")
	clock := newFakeClock()
	cl, tr := poolClient(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials, Base: cc.base(o)}, clock)

	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	clock.Advance(proxyauth.RouteIdleTime - time.Second)
	_, _, err = get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, int32(1), cc.dials.Load(), "within the idle time the route and its connection stay")

	clock.Advance(proxyauth.RouteIdleTime + time.Second)
	_, _, err = get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, int32(2), cc.dials.Load(), "idle for longer, the route was made again")
	cc.awaitOpen(t, 1) // the released route's
	assert.Equal(t, 1, proxyauth.LiveRoutes(tr))
	assert.Equal(t, 1, v.count())
	for i, r := range p.Requests() {
		assert.True(t, r.Authorized, "request %d", i)
	}
	assert.Len(t, p.Requests(), 3, "no 407")
}

// TestLiveRoutesBounded sends one request through each of 2,000 proxies:
// no more than MaxLiveRoutes routes are alive at once, and the released
// routes' connections are closed.
func TestLiveRoutesBounded(t *testing.T) {
	const n = 2000
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	cc := newConnCounter(p.Addr()) // every proxy's address leads to p
	proxies := make([]string, n)
	for i := range proxies {
		proxies[i] = "http://" + user + ":" + secret + "@p" + strconv.Itoa(i) + ".test:3128"
	}
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: proxies, Base: cc.base(o), Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	}, nil)
	most := 0
	for i := range n {
		_, _, err := get(cl, o.URL)
		require.NoError(t, err, "request %d", i)
		most = max(most, proxyauth.LiveRoutes(tr))
	}
	assert.Equal(t, proxyauth.MaxLiveRoutes, most)
	assert.LessOrEqual(t, int(cc.open.Load()), proxyauth.MaxLiveRoutes, "connections of released routes are closed")
	st := tr.Pool().Stats()
	for i := range st {
		if st[i].Requests != 1 || st[i].State != proxyauth.StateHealthy {
			t.Fatalf("proxy %d: %d requests, %v; want 1, healthy", i, st[i].Requests, st[i].State)
		}
	}
}

// TestRequestInFlightSurvivesRelease releases routes while a request is
// in its route, and while the body of a response is being read: neither
// breaks, a held route is not released, and the connection of a released
// one closes once its body is read.
func TestRequestInFlightSurvivesRelease(t *testing.T) {
	arrived, answer, body := make(chan struct{}), make(chan struct{}), make(chan struct{})
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-answer
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "first half, ")
		w.(http.Flusher).Flush()
		<-body
		io.WriteString(w, "second half")
	})
	p := newProxy(t, user, secret)
	cc := newConnCounter("")
	clock := newFakeClock()
	cl, tr := poolClient(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: cc.base(o)}, clock)

	type result struct {
		text string
		err  error
	}
	done := make(chan result, 1)
	headers := make(chan *http.Response, 1)
	go func() {
		resp, err := cl.Get(o.URL)
		if err != nil {
			done <- result{err: err}
			return
		}
		headers <- resp
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{string(b), err}
	}()
	select {
	case <-arrived:
	case <-time.After(20 * time.Second):
		t.Fatal("the request did not reach the origin")
	}
	// The request holds its route: neither an idle time nor a release
	// takes it.
	clock.Advance(2 * proxyauth.RouteIdleTime)
	proxyauth.SweepRoutes(tr)
	proxyauth.ReleaseRoutes(tr)
	assert.Equal(t, 1, proxyauth.LiveRoutes(tr), "a route held by a request is not released")
	close(answer)
	var resp *http.Response
	select {
	case resp = <-headers:
	case r := <-done:
		t.Fatalf("the request failed: %v", r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("no answer")
	}
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The response's body is still coming: the route, no longer held, is
	// released, and the body still arrives whole.
	proxyauth.ReleaseRoutes(tr)
	assert.Equal(t, 0, proxyauth.LiveRoutes(tr))
	close(body)
	var r result
	select {
	case r = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the body did not end")
	}
	require.NoError(t, r.err)
	assert.Equal(t, "first half, second half", r.text)
	cc.awaitOpen(t, 0) // the released route's connection closes once its body was read
}

// TestReleasesDuringRequests releases the routes over and over while
// requests go through four proxies from eight goroutines: every request
// succeeds, the CredentialsFunc is asked once per proxy, and the
// statistics count every request.
func TestReleasesDuringRequests(t *testing.T) {
	const workers, each = 8, 40
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	cc := newConnCounter(p.Addr())
	v := &vault{password: secret}
	proxies := []string{"http://a.test:3128", "http://b.test:3128", "http://c.test:3128", "http://d.test:3128"}
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: proxies, Credentials: v.credentials, Base: cc.base(o),
		Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	}, nil)
	stop := make(chan struct{})
	released := make(chan int)
	go func() {
		n := 0
		for ; n < 10_000_000; n++ {
			select {
			case <-stop:
				released <- n
				return
			default:
				proxyauth.ReleaseRoutes(tr)
			}
		}
		<-stop
		released <- n
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Go(func() {
			for range each {
				if _, resp, err := get(cl, o.URL); err != nil {
					errs <- err
				} else if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %s", resp.Status)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	t.Logf("%d releases during %d requests", <-released, workers*each)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, len(proxies), v.count(), "one call per proxy")
	var total uint64
	for _, s := range tr.Pool().Stats() {
		total += s.Requests
	}
	assert.Equal(t, uint64(workers*each), total)
}
