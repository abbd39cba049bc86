package proxyauth_test

// The benchmarks measure proxyauth against a bare *http.Transport in the
// same run, through the same loopback proxy: a benchProxy, which costs
// little, so that the client's share shows. BENCHMARKS.md has the figures
// and scripts/bench runs them. Sub-benchmark names carry key=value parts
// so that benchstat can set the clients side by side:
//
//	benchstat -col /client steady.txt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// getOK sends a GET and reads the whole answer; anything but a 200 is an
// error.
func getOK(c *http.Client, target string) error {
	resp, err := c.Get(target)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

func benchGet(b *testing.B, c *http.Client, target string) {
	if err := getOK(c, target); err != nil {
		b.Fatal(err)
	}
}

// benchOrigins are an http:// and an https:// origin that answer "ok", and
// 500 to a request that carries Proxy-Authorization, which must never
// reach them; the benchmarks fail on anything but a 200.
type benchOrigins struct {
	plain, tls *httptest.Server
	roots      *x509.CertPool
}

func newBenchOrigins(b *testing.B) *benchOrigins {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" {
			http.Error(w, "Proxy-Authorization reached the origin", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})
	o := &benchOrigins{plain: httptest.NewUnstartedServer(h), tls: httptest.NewUnstartedServer(h), roots: x509.NewCertPool()}
	for _, s := range []*httptest.Server{o.plain, o.tls} {
		// Handshakes that a closing client cuts short are expected here.
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
	}
	o.plain.Start()
	o.tls.StartTLS()
	o.roots.AddCert(o.tls.Certificate())
	b.Cleanup(o.plain.Close)
	b.Cleanup(o.tls.Close)
	return o
}

func (o *benchOrigins) url(target string) string {
	if target == "https" {
		return o.tls.URL
	}
	return o.plain.URL
}

// base returns the settings that the bare Transport and proxyauth's share.
func (o *benchOrigins) base() *http.Transport {
	return &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: o.roots},
		MaxIdleConnsPerHost: 64,
	}
}

func newTransport(b *testing.B, cfg proxyauth.Config) *proxyauth.Transport {
	t, err := proxyauth.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { t.Close() })
	return t
}

// warm sends n requests at once, so that the 407 of Digest and the
// connections or tunnels that n requests at a time need come before the
// timing.
func warm(b *testing.B, cl *http.Client, target string, n int) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() { errs <- getOK(cl, target) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchClient makes a client of one kind afresh for each sub-benchmark, so
// that none runs among the connections and heap of those before it: the
// order of the sub-benchmarks moves their figures by a few percent
// otherwise.
type benchClient struct {
	name string
	make func(b *testing.B) *http.Client
}

// benchClients are the clients compared: a bare *http.Transport with
// static Basic credentials, proxyauth sending Basic at once, and proxyauth
// answering the proxy's Digest challenge (a Digest value for every http://
// request; for https:// only on the CONNECT). base gives each its own
// *http.Transport with the same settings.
func benchClients(proxyURL string, base func() *http.Transport) []benchClient {
	return []benchClient{
		{"bare", func(b *testing.B) *http.Client {
			u, _ := url.Parse(proxyURL)
			t := base()
			t.Proxy = http.ProxyURL(u)
			b.Cleanup(t.CloseIdleConnections)
			return &http.Client{Transport: t}
		}},
		{"basic", func(b *testing.B) *http.Client {
			return &http.Client{Transport: newTransport(b, proxyauth.Config{Proxies: []string{proxyURL}, Base: base()})}
		}},
		{"digest", func(b *testing.B) *http.Client {
			return &http.Client{Transport: newTransport(b, proxyauth.Config{Proxies: []string{proxyURL}, Base: base(),
				Schemes: []proxyauth.Scheme{proxyauth.Digest()}})}
		}},
	}
}

// steady runs the sub-benchmarks target=T/run=seq|parallel/client=C for
// each target URL and client, with 8 goroutines in parallel.
func steady(b *testing.B, targets map[string]string, clients []benchClient) {
	for _, target := range []string{"http", "https"} {
		u := targets[target]
		for _, run := range []string{"seq", "parallel"} {
			for _, c := range clients {
				b.Run("target="+target+"/run="+run+"/client="+c.name, func(b *testing.B) {
					cl := c.make(b)
					warm(b, cl, u, 8)
					b.ReportAllocs()
					if run == "seq" {
						for b.Loop() {
							benchGet(b, cl, u)
						}
						return
					}
					b.SetParallelism(4)
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if err := getOK(cl, u); err != nil {
								b.Error(err)
								return
							}
						}
					})
				})
			}
		}
	}
}

// BenchmarkSteady is the hot path: requests through a proxy that has
// accepted the credentials already, to an http:// target (a request to the
// proxy each) and an https:// target (one request in a tunnel that stays
// open), sequential and parallel, with the benchClients. One proxy offers
// Basic and Digest, so the three share it.
func BenchmarkSteady(b *testing.B) {
	o := newBenchOrigins(b)
	steady(b, map[string]string{"http": o.plain.URL, "https": o.tls.URL}, benchClients(benchProxyURL(b), o.base))
}

// benchProxyURL starts a benchProxy that offers Basic and Digest and
// returns its URL with the credentials.
func benchProxyURL(b *testing.B) string {
	digest := proxyauthtest.NewDigest()
	digest.RotateNonceEvery(10000) // a nextnonce now and then; the proxy keeps the counts of one nonce
	proxy := newBenchProxy(b, proxyauthtest.Multi(proxyauthtest.Basic{}, digest), user, secret)
	return withUser(b, proxy.URL, user, secret)
}

// BenchmarkPaired measures the throughput of proxyauth as a share of the
// bare Transport's, the two taking turns within each iteration, so that
// the drift of a shared machine, which moves BenchmarkSteady's figures by
// several percent from one run to the next, hits both alike; through the
// benchProxy and through the nullProxy (where the client's own work is
// most of the time, so that the ratio is the harshest). Sequential:
// one request each, timed one by one. Parallel: a batch of 64 requests
// from 8 goroutines each, timed as a whole. ratio is the bare Transport's
// time over proxyauth's: 1 means the same throughput, 0.98 is 2% less.
// client=bare pairs the bare Transport with another one: its ratio, which
// should be 1, shows the error of the method. Both clients of a pair are
// made afresh for it.
func BenchmarkPaired(b *testing.B) {
	o := newBenchOrigins(b)
	null := newNullProxy(b)
	nullBase := func() *http.Transport {
		return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: null.Roots}, MaxIdleConnsPerHost: 64}
	}
	for _, p := range []struct {
		name    string
		targets map[string]string
		clients []benchClient
	}{
		{"bench", map[string]string{"http": o.plain.URL, "https": o.tls.URL}, benchClients(benchProxyURL(b), o.base)},
		{"null", map[string]string{"http": "http://127.0.0.1:9/", "https": "https://127.0.0.1:9/"},
			benchClients(withUser(b, null.URL, user, secret), nullBase)},
	} {
		b.Run("proxy="+p.name, func(b *testing.B) { paired(b, p.targets, p.clients) })
	}
}

// paired runs BenchmarkPaired's sub-benchmarks through one proxy.
func paired(b *testing.B, targets map[string]string, clients []benchClient) {
	const workers, batch = 8, 64
	for _, target := range []string{"http", "https"} {
		u := targets[target]
		for _, run := range []string{"seq", "parallel"} {
			for _, c := range clients {
				b.Run("target="+target+"/run="+run+"/client="+c.name, func(b *testing.B) {
					bareClient, ours := clients[0].make(b), c.make(b)
					warm(b, bareClient, u, workers)
					warm(b, ours, u, workers)
					timed := func(cl *http.Client) time.Duration {
						start := time.Now()
						if run == "seq" {
							benchGet(b, cl, u)
							return time.Since(start)
						}
						var (
							wg     sync.WaitGroup
							failed failures
						)
						for range workers {
							wg.Go(func() {
								for range batch / workers {
									failed.add(getOK(cl, u))
								}
							})
						}
						wg.Wait()
						failed.check(b)
						return time.Since(start)
					}
					perIteration := 1
					if run == "parallel" {
						perIteration = batch
					}
					takeTurns(b, perIteration, func() time.Duration { return timed(bareClient) }, func() time.Duration { return timed(ours) })
				})
			}
		}
	}
}

// takeTurns runs bare and ours in turn on every iteration, each going
// first on every other one, and reports the ratio of their total times
// (bare's over ours: the throughput of ours as a share of bare's) and each
// one's time per request, an iteration being perIteration requests of
// each.
func takeTurns(b *testing.B, perIteration int, bare, ours func() time.Duration) {
	var bareTime, ourTime time.Duration
	for i := 0; b.Loop(); i++ {
		if i%2 == 0 {
			bareTime += bare()
			ourTime += ours()
		} else {
			ourTime += ours()
			bareTime += bare()
		}
	}
	n := float64(b.N * perIteration)
	b.ReportMetric(float64(bareTime)/float64(ourTime), "ratio")
	b.ReportMetric(float64(bareTime.Nanoseconds())/n, "bare-ns/req")
	b.ReportMetric(float64(ourTime.Nanoseconds())/n, "ns/req")
	b.ReportMetric(0, "ns/op") // an iteration is two clients' work: see ns/req
}

// BenchmarkClientCost is BenchmarkSteady through a nullProxy, which
// answers at once and checks nothing, so that the client's own work is
// most of what is timed: the harshest view of what proxyauth adds to a
// bare Transport, and of what Digest adds to Basic, per request. The
// targets, 127.0.0.1:9, are never dialed: the nullProxy answers for them.
func BenchmarkClientCost(b *testing.B) {
	p := newNullProxy(b)
	base := func() *http.Transport {
		return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}, MaxIdleConnsPerHost: 64}
	}
	steady(b, map[string]string{"http": "http://127.0.0.1:9/", "https": "https://127.0.0.1:9/"},
		benchClients(withUser(b, p.URL, user, secret), base))
}

// BenchmarkClientTimeout is BenchmarkPaired's sequential http:// case
// through the nullProxy with http.Client.Timeout set, as scrapers often
// have it. net/http then treats a RoundTripper that is not its own
// Transport the old way, with a goroutine and a timer per request, which
// the bare Transport does not pay: ratio shows what that costs here.
func BenchmarkClientTimeout(b *testing.B) {
	null := newNullProxy(b)
	clients := benchClients(withUser(b, null.URL, user, secret), func() *http.Transport {
		return &http.Transport{MaxIdleConnsPerHost: 64}
	})
	for _, timeout := range []time.Duration{0, 30 * time.Second} {
		b.Run("timeout="+timeout.String(), func(b *testing.B) {
			bare, ours := clients[0].make(b), clients[1].make(b)
			bare.Timeout, ours.Timeout = timeout, timeout
			const u = "http://127.0.0.1:9/"
			warm(b, bare, u, 1)
			warm(b, ours, u, 1)
			timed := func(cl *http.Client) func() time.Duration {
				return func() time.Duration {
					start := time.Now()
					benchGet(b, cl, u)
					return time.Since(start)
				}
			}
			b.ReportAllocs()
			takeTurns(b, 1, timed(bare), timed(ours))
		})
	}
}

// BenchmarkAuthorize measures making one Proxy-Authorization value, which
// is what a Digest session adds to every http:// request.
func BenchmarkAuthorize(b *testing.B) {
	creds := proxyauth.Credentials{Username: user, Password: secret}
	req := proxyauth.AuthRequest{Method: http.MethodGet, URI: "http://origin.example/some/path?q=1"}
	digest := func(alg string) *proxyauth.Challenge {
		return &proxyauth.Challenge{Scheme: "Digest", Params: map[string]string{
			"realm": "proxy", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "qop": "auth", "algorithm": alg}}
	}
	for _, c := range []struct {
		name   string
		scheme proxyauth.Scheme
		ch     *proxyauth.Challenge
	}{
		{"Basic", proxyauth.Basic(), nil},
		{"Digest-MD5", proxyauth.Digest(), digest("MD5")},
		{"Digest-SHA-256", proxyauth.Digest(), digest("SHA-256")},
		{"Digest-SHA-512-256", proxyauth.Digest(), digest("SHA-512-256")},
	} {
		b.Run("scheme="+c.name, func(b *testing.B) {
			a, err := c.scheme.Start(c.ch, creds)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Authorize(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// latencies collects request durations and reports their percentiles.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) percentile(p float64) time.Duration {
	if len(l.d) == 0 {
		return 0
	}
	s := slices.Clone(l.d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// failures counts the failed requests of concurrent goroutines and keeps
// the first error, for the report.
type failures struct {
	n     atomic.Int64
	first atomic.Pointer[error]
}

func (f *failures) add(err error) {
	if err != nil && f.n.Add(1) == 1 {
		f.first.Store(&err)
	}
}

// check fails b if a request failed; call it once the goroutines are done.
func (f *failures) check(b *testing.B) {
	if n := f.n.Load(); n > 0 {
		b.Fatalf("%d requests failed; the first: %v", n, *f.first.Load())
	}
}

func timedGet(b *testing.B, c *http.Client, target string, l *latencies) error {
	start := time.Now()
	err := getOK(c, target)
	l.add(time.Since(start))
	return err
}

// BenchmarkRefreshStorm sends storms of 1,000 concurrent requests through
// a proxy. In "rotated", the proxy's password has changed just before each
// storm, so that every request meets a 407; the credentials callback must
// be called once per storm, which calls/storm reports. "same" is the
// baseline: the same storm with the credentials unchanged. Both start
// without idle connections, since a change of credentials closes them.
func BenchmarkRefreshStorm(b *testing.B) {
	const storm = 1000
	o := newBenchOrigins(b)
	for _, rotate := range []bool{false, true} {
		name := "credentials=same"
		if rotate {
			name = "credentials=rotated"
		}
		b.Run(name, func(b *testing.B) {
			proxy := newBenchProxy(b, nil, user, "pass-0")
			var (
				mu      sync.Mutex
				current = "pass-0"
				calls   atomic.Int64
			)
			tr := newTransport(b, proxyauth.Config{
				Proxies: []string{proxy.URL},
				Base:    &http.Transport{MaxIdleConnsPerHost: storm},
				Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
					calls.Add(1)
					mu.Lock()
					defer mu.Unlock()
					return proxyauth.Credentials{Username: user, Password: current}, nil
				},
			})
			cl := &http.Client{Transport: tr}
			benchGet(b, cl, o.plain.URL)
			calls.Store(0)
			var (
				storms int
				lat    latencies
				failed failures
			)
			for b.Loop() {
				storms++
				b.StopTimer()
				tr.CloseIdleConnections()
				if rotate {
					mu.Lock()
					current = "pass-" + strconv.Itoa(storms)
					mu.Unlock()
					proxy.SetCredentials(user, current)
				}
				b.StartTimer()
				var wg sync.WaitGroup
				for range storm {
					wg.Go(func() { failed.add(timedGet(b, cl, o.plain.URL, &lat)) })
				}
				wg.Wait()
			}
			failed.check(b)
			b.ReportMetric(float64(calls.Load())/float64(storms), "calls/storm")
			b.ReportMetric(float64(lat.percentile(0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(lat.percentile(0.50).Microseconds())/1000, "p50-ms")
		})
	}
}

// BenchmarkFailover measures what a failed primary adds to a request
// through a pool of two, against the same request through the fallback
// alone, the two sent in turn in each iteration. "refused": the primary
// has gone down and refuses connections; it is never ejected here, so
// every request tries it first. "black-holed": the primary accepts
// connections and never answers; it was ejected by the request that found
// it so, before the timing, and later requests go straight to the
// fallback. added-p50-µs and added-p99-µs are the differences of the
// percentiles of the two.
func BenchmarkFailover(b *testing.B) {
	o := newBenchOrigins(b)
	for _, c := range []struct {
		primary, target string
	}{
		{"refused", "http"},
		{"refused", "https"},
		{"black-holed", "https"},
	} {
		refused := c.primary == "refused"
		b.Run("primary="+c.primary+"/target="+c.target, func(b *testing.B) {
			fallback := newBenchProxy(b, nil, user, secret)
			fu := withUser(b, fallback.URL, user, secret)
			alone := &http.Client{Transport: newTransport(b, proxyauth.Config{Proxies: []string{fu}, Base: o.base()})}

			var pool *proxyauth.Transport
			if refused {
				primary := newBenchProxy(b, nil, user, secret)
				pool = newTransport(b, proxyauth.Config{
					Proxies: []string{withUser(b, primary.URL, user, secret), fu}, Base: o.base(),
					Pool: proxyauth.PoolConfig{EjectAfter: 1 << 30}})
				benchGet(b, &http.Client{Transport: pool}, o.url(c.target)) // through the primary, which passes its probe
				primary.Close()
				pool.CloseIdleConnections()
			} else {
				pool = newTransport(b, proxyauth.Config{
					Proxies: []string{"http://" + user + ":" + secret + "@" + blackHole(b), fu}, Base: o.base(),
					ProxyTimeout: expiring, // the fallback must answer within it too
					Pool:         proxyauth.PoolConfig{EjectionTime: time.Hour, MaxEjectionTime: time.Hour}})
			}
			cl := &http.Client{Transport: pool}
			benchGet(b, cl, o.url(c.target)) // fails over; the black hole is ejected
			benchGet(b, alone, o.url(c.target))
			if st := pool.Pool().Stats()[0]; !refused && st.State != proxyauth.StateEjected && !st.Stalled {
				// Hedged, the request took the fallback after HedgeAfter
				// and the black hole is passed over until its own dial
				// times out, when it is ejected.
				b.Fatalf("the black-holed primary is %v, neither ejected nor passed over", st.State)
			}
			var via, direct latencies
			b.ReportAllocs()
			for b.Loop() {
				if err := timedGet(b, alone, o.url(c.target), &direct); err != nil {
					b.Fatal(err)
				}
				if err := timedGet(b, cl, o.url(c.target), &via); err != nil {
					b.Fatal(err)
				}
			}
			if st := pool.Pool().Stats()[0]; refused && st.Requests < uint64(b.N) {
				b.Fatalf("the refused primary was tried %d times in %d iterations", st.Requests, b.N)
			}
			b.ReportMetric(float64((via.percentile(0.50)-direct.percentile(0.50)).Nanoseconds())/1000, "added-p50-µs")
			b.ReportMetric(float64((via.percentile(0.99)-direct.percentile(0.99)).Nanoseconds())/1000, "added-p99-µs")
		})
	}
}

// BenchmarkPoolSteady is the hot path of a pool of two live proxies,
// requests reusing their connections, with hedging on (its default) and
// off: what a race that is never needed costs.
func BenchmarkPoolSteady(b *testing.B) {
	o := newBenchOrigins(b)
	a, c := newBenchProxy(b, nil, user, secret), newBenchProxy(b, nil, user, secret)
	for _, target := range []string{"http", "https"} {
		for _, hedge := range []struct {
			name  string
			after time.Duration
		}{{"on", 0}, {"off", -1}} {
			b.Run("target="+target+"/hedge="+hedge.name, func(b *testing.B) {
				cl := &http.Client{Transport: newTransport(b, proxyauth.Config{
					Proxies: []string{withUser(b, a.URL, user, secret), withUser(b, c.URL, user, secret)},
					Base:    o.base(),
					Pool:    proxyauth.PoolConfig{HedgeAfter: hedge.after},
				})}
				u := o.url(target)
				warm(b, cl, u, 1)
				b.ReportAllocs()
				for b.Loop() {
					benchGet(b, cl, u)
				}
			})
		}
	}
}
