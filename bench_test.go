package proxyauth_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func benchGet(b *testing.B, c *http.Client, target string) {
	resp, err := c.Get(target)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %s", resp.Status)
	}
}

// BenchmarkPreemptiveBasic measures the hot path, a plain request with
// Basic credentials sent at once, against a bare http.Transport with the
// same static credentials through the same proxy.
func BenchmarkPreemptiveBasic(b *testing.B) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy(user, secret)
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	pu.User = url.UserPassword(user, secret)

	bare := &http.Transport{Proxy: http.ProxyURL(pu), MaxIdleConnsPerHost: 64}
	defer bare.CloseIdleConnections()
	ours, err := proxyauth.New(proxyauth.Config{Proxies: []string{pu.String()}, Base: &http.Transport{MaxIdleConnsPerHost: 64}})
	if err != nil {
		b.Fatal(err)
	}
	defer ours.CloseIdleConnections()
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{{"bare", bare}, {"proxyauth", ours}} {
		cl := &http.Client{Transport: c.rt}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchGet(b, cl, origin.URL)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					benchGet(b, cl, origin.URL)
				}
			})
		})
	}
}

// BenchmarkAuthorize measures making one Proxy-Authorization value.
func BenchmarkAuthorize(b *testing.B) {
	creds := proxyauth.Credentials{Username: user, Password: secret}
	req := proxyauth.AuthRequest{Method: http.MethodConnect, URI: "origin.example:443"}
	for _, c := range []struct {
		name   string
		scheme proxyauth.Scheme
		ch     *proxyauth.Challenge
	}{
		{"Basic", proxyauth.Basic(), nil},
		{"Digest-MD5", proxyauth.Digest(), &proxyauth.Challenge{Scheme: "Digest",
			Params: map[string]string{"realm": "r", "nonce": "abcdef0123456789", "qop": "auth", "algorithm": "MD5"}}},
		{"Digest-SHA-256", proxyauth.Digest(), &proxyauth.Challenge{Scheme: "Digest",
			Params: map[string]string{"realm": "r", "nonce": "abcdef0123456789", "qop": "auth", "algorithm": "SHA-256"}}},
	} {
		b.Run(c.name, func(b *testing.B) {
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

// BenchmarkRefreshStorm rotates the proxy's password, then sends a storm of
// concurrent requests that all meet the rejection; it reports the
// credentials callback's calls per storm, which must be 1.
func BenchmarkRefreshStorm(b *testing.B) {
	const storm = 100
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy(user, "pass-0")
	defer proxy.Close()
	var (
		mu      sync.Mutex
		current = "pass-0"
		calls   atomic.Int64
	)
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxy.URL},
		Base:    &http.Transport{MaxIdleConnsPerHost: storm},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			calls.Add(1)
			mu.Lock()
			defer mu.Unlock()
			return proxyauth.Credentials{Username: user, Password: current}, nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr}
	benchGet(b, cl, origin.URL)
	calls.Store(0)
	storms := 0
	for b.Loop() {
		storms++
		mu.Lock()
		current = "pass-" + strconv.Itoa(storms)
		mu.Unlock()
		proxy.SetCredentials(proxyauthtest.Credentials{Username: user, Password: current})
		var wg sync.WaitGroup
		for i := 0; i < storm; i++ {
			wg.Go(func() { benchGet(b, cl, origin.URL) })
		}
		wg.Wait()
	}
	b.ReportMetric(float64(calls.Load())/float64(storms), "calls/storm")
}

// BenchmarkPoolPick measures choosing the first proxy of a request, which
// must stay flat from 10 to 10,000 proxies.
func BenchmarkPoolPick(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		proxies := make([]string, n)
		for i := range proxies {
			proxies[i] = "http://127.0.0.1:" + strconv.Itoa(1024+i) // never dialed: picking sends nothing
		}
		for _, s := range []proxyauth.Strategy{proxyauth.Ordered, proxyauth.RoundRobin, proxyauth.Random, proxyauth.StickyHost} {
			tr, err := proxyauth.New(proxyauth.Config{Proxies: proxies, Pool: proxyauth.PoolConfig{Strategy: s}})
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
			b.Run(s.String()+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					proxyauth.Pick(tr, req)
				}
			})
			tr.Close()
		}
	}
}

// closingListener accepts connections and closes them at once: a proxy
// that is up but broken, so that every request through it fails over.
func closingListener(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	b.Cleanup(func() { l.Close(); <-done })
	return l.Addr().String()
}

// BenchmarkFailover measures what a failing primary adds to a request
// (https target: the primary accepts the connection and drops it before
// answering the CONNECT; it is never ejected here, so every request pays),
// against the same request through the fallback alone.
func BenchmarkFailover(b *testing.B) {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	good := proxyauthtest.NewProxy(user, secret)
	defer good.Close()
	pu, _ := url.Parse(good.URL)
	pu.User = url.UserPassword(user, secret)
	base := origin.Client().Transport.(*http.Transport)
	for _, c := range []struct {
		name    string
		proxies []string
	}{
		{"fallback-only", []string{pu.String()}},
		{"failing-primary", []string{"http://" + closingListener(b), pu.String()}},
	} {
		tr, err := proxyauth.New(proxyauth.Config{Proxies: c.proxies, Base: base,
			Pool: proxyauth.PoolConfig{EjectAfter: 1 << 30}})
		if err != nil {
			b.Fatal(err)
		}
		cl := &http.Client{Transport: tr}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				benchGet(b, cl, origin.URL)
				tr.CloseIdleConnections() // a new tunnel, and so a new try of the primary, each time
			}
		})
		tr.Close()
	}
}
