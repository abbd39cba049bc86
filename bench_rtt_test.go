package proxyauth_test

// BenchmarkRTT counts round trips rather than microseconds: a
// testnet.Relay in front of each proxy gives the link to it a round-trip
// time of 20 ms, TCP's handshake included, while the origins sit on
// loopback next to the proxy. Each sub-benchmark reports RTT/op, its mean
// time per operation over the round-trip time, min-RTT/op, its fastest
// operation's, and conns/op, the connections the relays accepted per
// operation. It fails when its fastest operation exceeds the round trips
// the case needs (or, where proxyauth needs more today, those: see
// "KNOWN GAP") by more than rttLimit allows, which is what one round trip
// too many does, and a busy machine does not. The names carry key=value
// parts, so that benchstat can set the clients side by side:
//
//	benchstat -col /client rtt.txt
//
// curl's rows use curl's own timings (-w %{time_total}), not the time of
// its process, and only report: they are the reference.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

const (
	rttOneWay = 10 * time.Millisecond // the relay's delay each way
	rttLink   = 2 * rttOneWay         // the round-trip time
	// rttSlack is what a case may take over its round trips: half a
	// round trip, and a twentieth of each of its round trips. The relay
	// itself adds about 1.2 ms to a round trip on a 2-core VM (its timers
	// and goroutine wake-ups), a TLS handshake a millisecond or two: 0.05
	// to 0.1 round trip each, which a 6-round-trip case would otherwise
	// spend of its half.
	rttSlack = 0.5
	rttSlope = 0.05

	// rttHedgeAfter and rttProxyTimeout are the blackhole case's
	// PoolConfig.HedgeAfter and Config.ProxyTimeout.
	rttHedgeAfter   = 100 * time.Millisecond
	rttProxyTimeout = 2 * time.Second
)

// rttProxy is a proxyauthtest proxy offering Basic or Digest alone, behind
// a relay whose address is the proxy's for the clients.
type rttProxy struct {
	*proxyauthtest.Proxy
	relay *testnet.Relay
	url   string // "http://RELAY", without userinfo
}

func newRTTProxy(b *testing.B, auth string) *rttProxy {
	var p *proxyauthtest.Proxy
	if auth == "digest" {
		p = proxyauthtest.NewDigestProxy(user, secret)
	} else {
		p = proxyauthtest.NewProxy(user, secret)
	}
	b.Cleanup(p.Close)
	r := testnet.NewRelay(b, p.Addr(), rttOneWay)
	return &rttProxy{Proxy: p, relay: r, url: "http://" + r.Addr}
}

// rttEnv holds the origins of BenchmarkRTT and curl's copy of the TLS
// origin's certificate.
type rttEnv struct {
	o      *benchOrigins
	caFile string
}

// newRTTOrigins are benchOrigins whose TLS origin has an ECDSA P-256
// certificate: httptest's RSA-2048 one costs the server a few
// milliseconds a handshake on a slow machine, a tenth of a round trip
// here, which is not what the benchmark counts.
func newRTTOrigins(b *testing.B) *benchOrigins {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rtt origin"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	h := func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }
	o := &benchOrigins{plain: httptest.NewUnstartedServer(http.HandlerFunc(h)),
		tls: httptest.NewUnstartedServer(http.HandlerFunc(h)), roots: x509.NewCertPool()}
	for _, s := range []*httptest.Server{o.plain, o.tls} {
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
	}
	o.tls.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}
	o.plain.Start()
	o.tls.StartTLS()
	o.roots.AddCert(cert)
	b.Cleanup(o.plain.Close)
	b.Cleanup(o.tls.Close)
	return o
}

// base returns the settings every Go client of the benchmark shares: TLS
// 1.3 to the origin, keep-alives as keep says, and rttDial.
func (e *rttEnv) base(keep bool) *http.Transport {
	return &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.o.roots, MinVersion: tls.VersionTLS13},
		DisableKeepAlives: !keep,
		DialContext:       rttDial,
	}
}

// rttDial dials over the simulated link (testnet.Dialer).
var rttDial = testnet.Dialer(rttLink)

// rttCreds is a CredentialsFunc that gives user and secret.
func rttCreds(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
	return proxyauth.Credentials{Username: user, Password: secret}, nil
}

// library returns a proxyauth client for the proxy URLs (a pool of them,
// in order, when there are several), answering Digest alone when auth is
// "digest", and a function that closes it.
func (e *rttEnv) library(b *testing.B, auth string, keep bool, proxies ...string) (*http.Client, func()) {
	cfg := proxyauth.Config{Proxies: proxies, Credentials: rttCreds, Base: e.base(keep)}
	if auth == "digest" {
		cfg.Schemes = []proxyauth.Scheme{proxyauth.Digest()}
	}
	t, err := proxyauth.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return &http.Client{Transport: t}, func() { t.Close() }
}

// bare returns a bare *http.Transport client with Basic credentials in the
// proxy URL, which net/http sends on every plain request and on every
// CONNECT.
func (e *rttEnv) bare(b *testing.B, proxyURL string, keep bool) (*http.Client, func()) {
	t := e.base(keep)
	u, err := url.Parse(withUser(b, proxyURL, user, secret))
	if err != nil {
		b.Fatal(err)
	}
	t.Proxy = http.ProxyURL(u)
	return &http.Client{Transport: t}, t.CloseIdleConnections
}

// rttCounter measures a sub-benchmark: the time of each operation over the
// round-trip time, against the case's minimum.
type rttCounter struct {
	b       *testing.B
	relays  []*testnet.Relay
	conns   int
	n       int
	total   time.Duration
	fastest time.Duration
}

func countRTT(b *testing.B, relays ...*testnet.Relay) *rttCounter {
	c := &rttCounter{b: b, relays: relays}
	for _, r := range relays {
		c.conns -= r.Connections()
	}
	return c
}

// add records an operation that took d.
func (c *rttCounter) add(d time.Duration) {
	if c.n == 0 || d < c.fastest {
		c.fastest = d
	}
	c.n++
	c.total += d
}

// done reports RTT/op, the mean, and min-RTT, the fastest operation's, as
// round trips, and conns/op; when check is set, it fails if the fastest
// operation took more than rttLimit(want). The fastest, not the mean: a
// round trip too many is in every operation, where a busy machine slows
// some of them, and the mean with them.
func (c *rttCounter) done(unit string, want float64, check bool) {
	b := c.b
	for _, r := range c.relays {
		c.conns += r.Connections()
	}
	if c.n == 0 {
		b.Fatal("no operation measured")
	}
	n := float64(c.n)
	mean := float64(c.total) / n / float64(rttLink)
	fastest := float64(c.fastest) / float64(rttLink)
	b.ReportMetric(mean, unit)
	b.ReportMetric(fastest, "min-"+unit)
	if c.relays != nil {
		b.ReportMetric(float64(c.conns)/n, "conns/op")
	}
	if unit == "RTT/op" {
		b.ReportMetric(float64(c.total)/n, "ns/op") // for curl, its own time rather than its process's
	}
	if limit := rttLimit(want); check && fastest > limit {
		b.Fatalf("the fastest operation took %.2f round trips (mean %.2f, %.2f connections), want at most %.2f (%g, and %.2f for the machine)",
			fastest, mean, float64(c.conns)/n, limit, want, limit-want)
	}
}

// rttLimit is the most round trips a case of want round trips may take.
func rttLimit(want float64) float64 { return want + rttSlack + rttSlope*want }

// loop runs op b.N times and checks the round trips of the fastest
// against want; op returns the time it took, its setup and teardown left
// out.
func loop(b *testing.B, want float64, op func() time.Duration, relays ...*testnet.Relay) {
	c := countRTT(b, relays...)
	for b.Loop() {
		c.add(op())
	}
	c.done("RTT/op", want, true)
}

// rttGet returns an op for loop: a GET through cl.
func rttGet(b *testing.B, cl *http.Client, target string) func() time.Duration {
	return func() time.Duration {
		start := time.Now()
		benchGet(b, cl, target)
		return time.Since(start)
	}
}

// freshGet returns an op for loop: a GET through a client made for it,
// closed untimed.
func freshGet(b *testing.B, mk func() (*http.Client, func()), target string) func() time.Duration {
	return func() time.Duration {
		start := time.Now()
		cl, closeFn := mk()
		benchGet(b, cl, target)
		took := time.Since(start)
		b.StopTimer()
		closeFn()
		b.StartTimer()
		return took
	}
}

// BenchmarkRTT counts the round trips of requests through proxies 20 ms
// away (see the top of the file); BENCHMARKS.md has the figures. A tunnel
// is an https:// request: TCP, the CONNECT, TLS 1.3 and the request take a
// round trip each. "new" means a new connection each request, with
// DisableKeepAlives on the Transport; "first" means a new Transport each
// request, so that it meets the proxy's challenge; "reused" means one
// connection for every request.
func BenchmarkRTT(b *testing.B) {
	e := &rttEnv{o: newRTTOrigins(b)}
	https, plain := e.o.tls.URL, e.o.plain.URL
	curl := curlBinary(b)
	if curl != "" {
		e.caFile = writeCA(b, e.o)
	}

	for _, c := range []struct {
		name, auth, target string
		keep, fresh        bool
		want               float64 // the minimum
		today              float64 // proxyauth's, where it is more; see BENCHMARKS.md
	}{
		{"tunnel-new", "basic", https, false, false, 4, 0},
		{"tunnel-new", "digest", https, false, false, 4, 0}, // the nonce held from a first request
		// net/http closes the connection of a CONNECT answered 407; the
		// route keeps it for the attempt that answers (proxyConn).
		{"tunnel-first", "digest", https, true, true, 5, 0},
		{"tunnel-reused", "basic", https, true, false, 1, 0},
		{"tunnel-reused", "digest", https, true, false, 1, 0},
		{"plain-new", "basic", plain, false, false, 2, 0},
		{"plain-new", "digest", plain, false, false, 2, 0},
		{"plain-first", "digest", plain, true, true, 3, 0},
		{"plain-reused", "basic", plain, true, false, 1, 0},
		{"plain-reused", "digest", plain, true, false, 1, 0},
	} {
		prefix := "case=" + c.name + "/auth=" + c.auth + "/client="
		b.Run(prefix+"proxyauth", func(b *testing.B) {
			p := newRTTProxy(b, c.auth)
			bound := max(c.want, c.today)
			if c.fresh {
				mk := func() (*http.Client, func()) { return e.library(b, c.auth, c.keep, p.url) }
				loop(b, bound, freshGet(b, mk, c.target), p.relay)
				return
			}
			cl, closeFn := e.library(b, c.auth, c.keep, p.url)
			defer closeFn()
			benchGet(b, cl, c.target) // the challenge, the nonce, the connection to reuse
			loop(b, bound, rttGet(b, cl, c.target), p.relay)
		})
		if c.auth == "basic" {
			b.Run(prefix+"bare", func(b *testing.B) {
				p := newRTTProxy(b, c.auth)
				cl, closeFn := e.bare(b, p.url, c.keep)
				defer closeFn()
				benchGet(b, cl, c.target)
				loop(b, c.want, rttGet(b, cl, c.target), p.relay)
			})
		}
		// curl holds no nonce from one run to the next: its Digest
		// tunnel on a new connection is a first contact. Its Digest
		// answer to a plain request gives the path alone as the uri,
		// where proxyauthtest wants the request's absolute URL: 407.
		if curl != "" && (c.auth == "basic" || c.target == https && !strings.HasSuffix(c.name, "-new")) {
			b.Run(prefix+"curl", func(b *testing.B) {
				p := newRTTProxy(b, c.auth)
				counter := countRTT(b, p.relay)
				for b.Loop() {
					urls := []string{c.target}
					if strings.HasSuffix(c.name, "-reused") {
						urls = append(urls, c.target) // the second reuses the first's connection
					}
					times := runCurl(b, curl, e.caFile, p.url, c.auth, urls...)
					counter.add(times[len(times)-1])
				}
				counter.done("RTT/op", c.want, false)
			})
		}
	}

	b.Run("case=refused-primary/auth=basic/client=proxyauth", func(b *testing.B) {
		// The refused primary is a closed port: rttDial makes its
		// refusal cost the round trip of a refused SYN. (A relay in
		// front of it would accept the connect, which a probe that
		// only connects would take for a pass.)
		refused := testnet.Closed(b)
		live := newRTTProxy(b, "basic")
		mk := func() (*http.Client, func()) { return e.library(b, "basic", false, "http://"+refused, live.url) }
		// The fallback alone takes 4; the refusal may add its round trip.
		// The probe of the unchecked fallback is its connect, which its
		// tunnel then takes (route.park).
		loop(b, 4+1, freshGet(b, mk, https), live.relay)
	})

	blackhole := func(b *testing.B) (*http.Client, func(), *testnet.Relay, *testnet.Relay) {
		live := newRTTProxy(b, "basic")
		hole := testnet.NewRelay(b, testnet.NewSilent(b, nil).Addr, rttOneWay)
		t, err := proxyauth.New(proxyauth.Config{
			Proxies:      []string{"http://" + hole.Addr, live.url},
			Credentials:  rttCreds,
			Base:         e.base(false),
			ProxyTimeout: rttProxyTimeout, // bounds the case until hedging races the fallback
			Pool:         proxyauth.PoolConfig{Strategy: proxyauth.Ordered, HedgeAfter: rttHedgeAfter},
		})
		if err != nil {
			b.Fatal(err)
		}
		return &http.Client{Transport: t}, func() { t.Close() }, hole, live.relay
	}
	b.Run("case=blackhole-primary-first/auth=basic/client=proxyauth", func(b *testing.B) {
		// HEDGING: this bound needs PoolConfig.HedgeAfter to race the
		// fallback after 100 ms. Without it, the request waits out
		// ProxyTimeout (2 s) first, and the case fails at its first
		// operation, at once rather than after b.N of them.
		want := 4 + float64(rttHedgeAfter)/float64(rttLink)
		counter := countRTT(b)
		for b.Loop() {
			b.StopTimer()
			cl, closeFn, hole, live := blackhole(b)
			counter.relays = append(counter.relays, hole, live)
			counter.conns -= hole.Connections() + live.Connections()
			b.StartTimer()
			start := time.Now()
			benchGet(b, cl, https)
			took := time.Since(start)
			counter.add(took)
			b.StopTimer()
			closeFn()
			b.StartTimer()
			if took >= rttProxyTimeout {
				b.Fatalf("HEDGING: the first request took %.2f round trips (%v), want at most %.2f: 4 and HedgeAfter (%v); it waited out ProxyTimeout",
					float64(took)/float64(rttLink), took.Round(time.Millisecond), rttLimit(want), rttHedgeAfter)
			}
		}
		counter.done("RTT/op", want, true)
	})
	b.Run("case=blackhole-primary-next/auth=basic/client=proxyauth", func(b *testing.B) {
		cl, closeFn, hole, live := blackhole(b)
		defer closeFn()
		benchGet(b, cl, https) // the request that finds the black hole
		loop(b, 4, rttGet(b, cl, https), hole, live)
	})

	// rotation: at every operation the proxy starts refusing the
	// password, and the CredentialsFunc knows the new one. RTT/op is the
	// first request after the change, which meets the 407; next-RTT/req
	// the two after it, which should not.
	for _, c := range []struct {
		name, target string
		keep         bool
		first, next  float64 // the minimums
		today        float64 // the first request's today, where it is more
	}{
		// KNOWN GAP: Basic credentials ride in the proxy URL, which is
		// part of net/http's key for a connection (connectMethod.key), so
		// the resend with new ones opens a new connection; taking them
		// out of the URL would cost every request a copy (BENCHMARKS.md).
		{"plain-reused", plain, true, 2, 1, 3},
		// The CONNECT answered 407 keeps its connection for the answer.
		{"tunnel-new", https, false, 5, 4, 0},
	} {
		b.Run("case=rotation-"+c.name+"/auth=basic/client=proxyauth", func(b *testing.B) {
			p := newRTTProxy(b, "basic")
			var password atomic.Pointer[string]
			pw := secret
			password.Store(&pw)
			creds := func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
				return proxyauth.Credentials{Username: user, Password: *password.Load()}, nil
			}
			t, err := proxyauth.New(proxyauth.Config{Proxies: []string{p.url}, Credentials: creds, Base: e.base(c.keep)})
			if err != nil {
				b.Fatal(err)
			}
			defer t.Close()
			cl := &http.Client{Transport: t}
			benchGet(b, cl, c.target)
			counter, after := countRTT(b, p.relay), countRTT(b)
			const next = 2
			rejected, i := 0, 0
			for b.Loop() {
				b.StopTimer()
				i++
				pw := secret + "-" + strconv.Itoa(i)
				p.SetCredentials(proxyauthtestCreds(user, pw))
				password.Store(&pw)
				p.ResetRequests()
				b.StartTimer()
				counter.add(rttGet(b, cl, c.target)())
				for range next {
					after.add(rttGet(b, cl, c.target)())
				}
				b.StopTimer()
				for _, r := range p.Requests() {
					if r.Status == http.StatusProxyAuthRequired {
						rejected++
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(rejected)/float64(b.N), "407s/op")
			if rejected != b.N {
				b.Errorf("%d 407s in %d rotations of %d requests each, want one per rotation", rejected, b.N, 1+next)
			}
			after.done("next-RTT/req", c.next, true)
			counter.done("RTT/op", max(c.first, c.today), true)
		})
	}
}

// curlBinary returns curl's path, or "" when it is missing (a failure in
// CI, as in ./interop).
func curlBinary(b *testing.B) string {
	p, err := exec.LookPath("curl")
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		b.Fatalf("curl not found: install it with apt-get install -y curl")
	}
	b.Logf("curl not found: its rows are left out (apt-get install -y curl)")
	return ""
}

// writeCA writes the TLS origin's certificate where curl can read it.
func writeCA(b *testing.B, o *benchOrigins) string {
	path := filepath.Join(b.TempDir(), "origin.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.tls.TLS.Certificates[0].Leaf.Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// runCurl fetches the urls in one run of curl through the proxy, with
// Basic or Digest, and returns curl's time for each transfer. Its command
// line, which holds the password, is never printed.
func runCurl(b *testing.B, curl, caFile, proxyURL, auth string, urls ...string) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args := []string{"-q", "-sS", "--noproxy", "", "-x", proxyURL, "--proxy-" + auth,
		"--proxy-user", user + ":" + secret, "--cacert", caFile, "--tlsv1.3",
		"-w", "%{http_code} %{time_total}\\n"}
	for _, u := range urls {
		args = append(args, "-o", os.DevNull, u)
	}
	times, err := testnet.CurlTimes(ctx, curl, args, os.Environ())
	if err != nil {
		b.Fatal(err)
	}
	if len(times) != len(urls) {
		b.Fatalf("curl printed %d results for %d URLs", len(times), len(urls))
	}
	return times
}
