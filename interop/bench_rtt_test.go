package interop_test

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
)

// rttOneWay, rttLink, rttLimit and rttDial are those of the root
// package's BenchmarkRTT (bench_rtt_test.go), which explains them.
const (
	rttOneWay = 10 * time.Millisecond
	rttLink   = 2 * rttOneWay
)

func rttLimit(want float64) float64 { return want + 0.5 + 0.05*want }

// rttDial dials over the simulated link (testnet.Dialer).
var rttDial = testnet.Dialer(rttLink)

// BenchmarkSquidRTT counts the round trips of tunnels through a real squid
// 20 ms away (a testnet.Relay in front of it; the origin is on loopback
// beside it) that offers Negotiate, NTLM and Basic, as BenchmarkRTT does
// for proxyauthtest's proxies: RTT/op is the time per request over the
// round-trip time, and the sub-benchmark fails when its fastest request
// exceeds the case's minimum by more than rttLimit allows. conn=new is a new tunnel for every
// request (DisableKeepAlives), after a first request that met the
// challenge; conn=reused one tunnel for all. curl's rows, with curl's own
// timings, only report.
func BenchmarkSquidRTT(b *testing.B) {
	o := newOrigins(b, nil)
	k := StartKDC(b, map[string]string{user: secret})
	sq := StartSquid(b, SquidOptions{Negotiate: k.SquidNegotiate(), NTLM: true, Basic: true, Users: map[string]string{user: secret}})
	ccache := k.Kinit(b, user, secret)
	relay := testnet.NewRelay(b, sq.Addr, rttOneWay)
	_, port, _ := net.SplitHostPort(relay.Addr)
	proxyURL := "http://localhost:" + port // Negotiate's service is HTTP/localhost
	kerberos := proxyauth.Kerberos{Config: k.Config, CCache: ccache}
	target := o.url(true)

	schemes := map[string]proxyauth.Scheme{
		"basic": proxyauth.Basic(), "ntlm": proxyauth.NTLM(), "negotiate": proxyauth.Negotiate(kerberos),
	}
	curl, _ := exec.LookPath("curl")
	if curl == "" && os.Getenv("CI") != "" {
		b.Fatal("curl not found: install it with apt-get install -y curl")
	}
	caFile := filepath.Join(b.TempDir(), "origin.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: o.tls.Certificate().Raw}), 0o600); err != nil {
		b.Fatal(err)
	}

	for _, c := range []struct {
		scheme, conn string
		want         float64
	}{
		{"basic", "new", 4},     // TCP, CONNECT, TLS, request
		{"ntlm", "new", 5},      // TCP, two CONNECT legs, TLS, request
		{"negotiate", "new", 4}, // TCP, one CONNECT leg with the token, TLS, request
		{"basic", "reused", 1},
		{"ntlm", "reused", 1},
		{"negotiate", "reused", 1},
	} {
		prefix := "scheme=" + c.scheme + "/conn=" + c.conn + "/client="
		base := func() *http.Transport {
			t := o.base()
			t.TLSClientConfig.MinVersion = tls.VersionTLS13
			t.DisableKeepAlives = c.conn == "new"
			t.DialContext = rttDial
			return t
		}
		b.Run(prefix+"proxyauth", func(b *testing.B) {
			raw := proxyURL
			if c.scheme != "negotiate" {
				raw = withUser(b, proxyURL, user, secret)
			}
			cl := newClient(b, proxyauth.Config{Proxies: []string{raw}, Base: base(),
				Schemes: []proxyauth.Scheme{schemes[c.scheme]}})
			squidRTT(b, cl, target, c.want, relay, sq)
		})
		if c.scheme == "basic" {
			b.Run(prefix+"bare", func(b *testing.B) {
				t := base()
				pu, err := url.Parse(withUser(b, proxyURL, user, secret))
				if err != nil {
					b.Fatal(err)
				}
				t.Proxy = http.ProxyURL(pu)
				defer t.CloseIdleConnections()
				squidRTT(b, &http.Client{Transport: t}, target, c.want, relay, sq)
			})
		}
		if curl != "" {
			b.Run(prefix+"curl", func(b *testing.B) {
				args := []string{"-q", "-sS", "--noproxy", "", "-x", proxyURL, "--cacert", caFile, "--tlsv1.3",
					"-w", "%{http_code} %{time_total}\\n"}
				env := phEnv()
				switch c.scheme {
				case "negotiate":
					args = append(args, "--proxy-negotiate", "--proxy-user", ":")
					env = k.Env(ccache)
				default:
					args = append(args, "--proxy-"+c.scheme, "--proxy-user", user+":"+secret)
				}
				urls := []string{target}
				if c.conn == "reused" {
					urls = append(urls, target) // the second reuses the first's tunnel
				}
				for _, u := range urls {
					args = append(args, "-o", os.DevNull, u)
				}
				start := relay.Connections()
				var total, fastest time.Duration
				for b.Loop() {
					times := squidCurl(b, curl, args, env, len(urls))
					d := times[len(times)-1]
					total += d
					if fastest == 0 || d < fastest {
						fastest = d
					}
				}
				n := float64(b.N)
				b.ReportMetric(float64(total)/n, "ns/op")
				b.ReportMetric(float64(total)/n/float64(rttLink), "RTT/op")
				b.ReportMetric(float64(fastest)/float64(rttLink), "min-RTT/op")
				b.ReportMetric(float64(relay.Connections()-start)/n, "conns/op")
			})
		}
	}
	if n := o.leaked(); n != 0 {
		b.Fatalf("%d requests reached an origin with Proxy-Authorization", n)
	}
}

// squidRTT sends a first request through cl (the challenge), then b.N
// timed ones, and reports and checks their round trips.
func squidRTT(b *testing.B, cl *http.Client, target string, want float64, relay *testnet.Relay, sq *Squid) {
	get := func() {
		resp, err := cl.Get(target)
		if err != nil {
			b.Fatal(err, sq.Log())
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %s", resp.Status)
		}
	}
	get()
	start := relay.Connections()
	var total, fastest time.Duration
	for b.Loop() {
		t0 := time.Now()
		get()
		d := time.Since(t0)
		total += d
		if fastest == 0 || d < fastest {
			fastest = d
		}
	}
	n := float64(b.N)
	got := float64(fastest) / float64(rttLink)
	b.ReportMetric(float64(total)/n/float64(rttLink), "RTT/op")
	b.ReportMetric(got, "min-RTT/op")
	b.ReportMetric(float64(relay.Connections()-start)/n, "conns/op")
	// The fastest request, not the mean: a round trip too many is in
	// every request, where a busy machine slows some of them.
	if got > rttLimit(want) {
		b.Fatalf("the fastest request took %.2f round trips, want at most %.2f (%g, and %.2f for the machine)",
			got, rttLimit(want), want, rttLimit(want)-want)
	}
}

// squidCurl runs curl, whose command line holds the password and is never
// printed, and returns its time for each of its n transfers.
func squidCurl(b *testing.B, curl string, args, env []string, n int) []time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	times, err := testnet.CurlTimes(ctx, curl, args, env)
	if err != nil {
		b.Fatal(err)
	}
	if len(times) != n {
		b.Fatalf("curl printed %d results for %d URLs", len(times), n)
	}
	return times
}
