package proxyauth_test

// What sessions cost through whole requests: the heap of 100,000 live
// ones, a request with and without one, and ProxyOf.
// bench_session_internal_test.go measures the lookup alone.

import (
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"testing"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// nullPool returns a client whose Transport is a round-robin pool of two
// nullProxies, which answer every request themselves: what a request
// costs through it is mostly the client's.
func nullPool(b *testing.B) (*http.Client, *proxyauth.Transport) {
	tr := newTransport(b, proxyauth.Config{
		Proxies: []string{withUser(b, newNullProxy(b).URL, user, secret), withUser(b, newNullProxy(b).URL, user, secret)},
		Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	})
	return &http.Client{Transport: tr}, tr
}

// nullTarget is never dialed: the nullProxies answer for it.
const nullTarget = "http://127.0.0.1:9/"

// benchSessionGet sends a GET of target in ctx and reads the whole answer.
func benchSessionGet(b *testing.B, cl *http.Client, ctx context.Context, target string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := cl.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %s", resp.Status)
	}
}

// BenchmarkSessions measures the heap that 100,000 live sessions keep,
// made by requests through a pool, each in a session of its own with an
// id such as "user-12345" (B/session, at most 200), and the time of a
// request that starts a session (ns/op).
func BenchmarkSessions(b *testing.B) {
	const n = 100000
	cl, _ := nullPool(b)
	benchSessionGet(b, cl, proxyauth.WithSession(context.Background(), "warm-up"), nullTarget) // connections, credentials and statistics made before
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		benchSessionGet(b, cl, proxyauth.WithSession(context.Background(), "user-"+strconv.Itoa(i)), nullTarget)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := 0.0
	if after.HeapAlloc > before.HeapAlloc {
		per = float64(after.HeapAlloc-before.HeapAlloc) / n
	}
	i := n
	b.ReportAllocs()
	for b.Loop() {
		benchSessionGet(b, cl, proxyauth.WithSession(context.Background(), "user-"+strconv.Itoa(i)), nullTarget)
		i++
	}
	b.ReportMetric(per, "B/session")
}

// BenchmarkSessionRequest sends the same GET without a session and in one
// that lives on, through a round-robin pool of two proxies: the
// proxyauthtest proxy, which forwards to an origin, and the nullProxy,
// which answers itself, so that the client's share shows. The difference
// is what a session adds to a whole request.
func BenchmarkSessionRequest(b *testing.B) {
	o := newBenchOrigins(b)
	pa, pb := proxyauthtest.NewProxy(user, secret), proxyauthtest.NewProxy(user, secret)
	b.Cleanup(pa.Close)
	b.Cleanup(pb.Close)
	viaTest := &http.Client{Transport: newTransport(b, proxyauth.Config{
		Proxies: []string{withUser(b, pa.URL, user, secret), withUser(b, pb.URL, user, secret)},
		Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	})}
	viaNull, _ := nullPool(b)
	for _, p := range []struct {
		name   string
		cl     *http.Client
		target string
		reset  func()
	}{
		{"proxyauthtest", viaTest, o.plain.URL, func() { pa.ResetRequests(); pb.ResetRequests() }},
		{"null", viaNull, nullTarget, func() {}},
	} {
		for _, s := range []struct {
			name string
			ctx  context.Context
		}{
			{"none", context.Background()},
			{"live", proxyauth.WithSession(context.Background(), "user-12345")}, // a flow's context, made once
		} {
			b.Run("proxy="+p.name+"/session="+s.name, func(b *testing.B) {
				for range 2 {
					benchSessionGet(b, p.cl, s.ctx, p.target) // both proxies' connections, and the session, made before
				}
				b.ReportAllocs()
				n := 0
				for b.Loop() {
					benchSessionGet(b, p.cl, s.ctx, p.target)
					if n++; n%4096 == 0 {
						p.reset() // the proxyauthtest proxies record every request
					}
				}
			})
		}
	}
}

// BenchmarkProxyOf measures ProxyOf on a response of a pool.
func BenchmarkProxyOf(b *testing.B) {
	cl, _ := nullPool(b)
	resp, err := cl.Get(nullTarget)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if proxyauth.ProxyOf(resp) == nil {
		b.Fatal("ProxyOf = nil for a response of a pool")
	}
	b.ReportAllocs()
	for b.Loop() {
		if proxyauth.ProxyOf(resp) == nil {
			b.Fatal("ProxyOf = nil")
		}
	}
}
