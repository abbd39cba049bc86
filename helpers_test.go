package proxyauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// origin is a test origin server that records the header of every request
// it receives, to prove what reached it.
type origin struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

// newOrigin starts an origin, with TLS when tlsOn; handler may be nil for
// a plain "hello" answer.
func newOrigin(t *testing.T, tlsOn bool, handler http.HandlerFunc) *origin {
	t.Helper()
	o := &origin{}
	h := func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.headers = append(o.headers, r.Header.Clone())
		o.mu.Unlock()
		if handler != nil {
			handler(w, r)
			return
		}
		io.WriteString(w, "hello from origin")
	}
	if tlsOn {
		o.Server = httptest.NewTLSServer(http.HandlerFunc(h))
	} else {
		o.Server = httptest.NewServer(http.HandlerFunc(h))
	}
	t.Cleanup(o.Close)
	return o
}

// received returns the headers of every request the origin received.
func (o *origin) received() []http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]http.Header(nil), o.headers...)
}

// assertNoProxyAuth fails the test if any request that reached the origin
// carried a Proxy-Authorization field or a password.
func (o *origin) assertNoProxyAuth(t *testing.T, secrets ...string) {
	t.Helper()
	for i, h := range o.received() {
		for k, vs := range h {
			if strings.EqualFold(k, "Proxy-Authorization") {
				t.Errorf("origin request %d carried %s", i, k)
			}
			for _, v := range vs {
				for _, s := range secrets {
					if s != "" && strings.Contains(v, s) {
						t.Errorf("origin request %d: field %s carries a secret", i, k)
					}
				}
			}
		}
	}
}

// newProxy starts a proxyauthtest proxy that accepts user/pass.
func newProxy(t *testing.T, user, pass string) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)
	return p
}

// newMappedProxy starts a proxy that accepts user/secret and dials the
// host:port addresses of m at their loopback values.
func newMappedProxy(t *testing.T, m map[string]string) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewUnstartedProxy(user, secret)
	p.DialContext = dialMap(m)
	p.Start()
	t.Cleanup(p.Close)
	return p
}

// withUser returns rawURL with the userinfo user:pass, percent-encoded.
func withUser(t testing.TB, rawURL, user, pass string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

// trusting returns a base Transport that trusts the certificates of the
// given TLS servers (httptest servers share one certificate).
func trusting(certs ...*x509.Certificate) *http.Transport {
	pool := x509.NewCertPool()
	for _, c := range certs {
		if c != nil { // a plain http:// server has none
			pool.AddCert(c)
		}
	}
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
}

// client returns an http.Client over a new proxyauth Transport for cfg.
func client(t *testing.T, cfg proxyauth.Config) *http.Client {
	t.Helper()
	tr, err := proxyauth.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// get does a GET and returns the body of a successful response.
func get(c *http.Client, target string) (string, *http.Response, error) {
	resp, err := c.Get(target)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), resp, err
}

func basic(user, pass string) string {
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(user, pass)
	return r.Header.Get("Authorization")
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string { return testnet.Closed(t) }

// dialMap returns a DialContext that sends the listed host:port addresses
// to loopback ones, and everything else where it says.
func dialMap(m map[string]string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := m[addr]; ok {
			addr = to
		}
		return d.DialContext(ctx, network, addr)
	}
}

// trackedBody is a request body that counts its Close calls.
type trackedBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *trackedBody) Close() error {
	b.closes.Add(1)
	return nil
}

// netDialer dials with a resolver whose name server is at resolverAt.
type netDialer struct{ resolverAt string }

func (d *netDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Resolver: &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var dd net.Dialer
			return dd.DialContext(ctx, network, d.resolverAt)
		},
	}}
	return nd.DialContext(ctx, network, addr)
}

func proxyauthtestCreds(u, p string) proxyauthtest.Credentials {
	return proxyauthtest.Credentials{Username: u, Password: p}
}

// blackHole accepts TCP connections and never says anything.
func blackHole(t testing.TB) string { return testnet.NewSilent(t, nil).Addr }
