package interop_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/proxyauth/proxyauth"
)

// BenchmarkSquidConnBound measures what NTLM and Negotiate cost through a
// real squid that offers Negotiate, NTLM and Basic, beside a bare
// *http.Transport with static Basic credentials and proxyauth with Basic,
// to an http:// and an https:// target:
//
//   - conn=reuse: keep-alive, the steady state: the handshake was made on
//     the connection once, so a request costs what Basic's does;
//   - conn=new: every request on a new connection (DisableKeepAlives), so
//     each pays its handshake: NTLM's two legs, Negotiate's one token.
//
// conns/op counts the connections opened to squid per request.
func BenchmarkSquidConnBound(b *testing.B) {
	o := newOrigins(b, nil)
	k := StartKDC(b, map[string]string{user: secret})
	sq := StartSquid(b, SquidOptions{Negotiate: k.SquidNegotiate(), NTLM: true, Basic: true, Users: map[string]string{user: secret}})
	ccache := k.Kinit(b, user, secret)
	raw := withUser(b, sq.LocalhostURL(), user, secret)
	pu, err := url.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	kerberos := proxyauth.Kerberos{Config: k.Config, CCache: ccache}
	for _, mode := range []string{"reuse", "new"} {
		for _, target := range targets {
			var dials atomic.Int64
			base := func() *http.Transport {
				t := o.base()
				t.DisableKeepAlives = mode == "new"
				var d net.Dialer
				t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					return d.DialContext(ctx, network, addr)
				}
				return t
			}
			bare := base()
			bare.Proxy = http.ProxyURL(pu)
			b.Cleanup(bare.CloseIdleConnections)
			clients := []struct {
				name string
				rt   http.RoundTripper
			}{
				{"bare", bare},
				{"basic", newClient(b, proxyauth.Config{Proxies: []string{raw}, Base: base(),
					Schemes: []proxyauth.Scheme{proxyauth.Basic()}}).Transport},
				{"ntlm", newClient(b, proxyauth.Config{Proxies: []string{raw}, Base: base(),
					Schemes: []proxyauth.Scheme{proxyauth.NTLM()}}).Transport},
				{"negotiate", newClient(b, proxyauth.Config{Proxies: []string{sq.LocalhostURL()}, Base: base(),
					Schemes: []proxyauth.Scheme{proxyauth.Negotiate(kerberos)}}).Transport},
			}
			for _, c := range clients {
				cl := &http.Client{Transport: c.rt}
				b.Run("conn="+mode+"/target="+target.name+"/client="+c.name, func(b *testing.B) {
					b.ReportAllocs()
					get := func() {
						resp, err := cl.Get(o.url(target.tls))
						if err != nil {
							b.Fatal(err, sq.Log())
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							b.Fatalf("status %s", resp.Status)
						}
					}
					get() // the first contact (the 407 that names the scheme) is not the subject
					dials.Store(0)
					for b.Loop() {
						get()
					}
					b.ReportMetric(float64(dials.Load())/float64(b.N), "conns/op")
				})
			}
		}
	}
	if n := o.leaked(); n != 0 {
		b.Fatalf("%d requests reached an origin with Proxy-Authorization", n)
	}
}

// BenchmarkNegotiateToken is the client's share of a Negotiate
// connection: one token from a ticket already held (the service ticket
// is fetched from the KDC once, on the first connection).
func BenchmarkNegotiateToken(b *testing.B) {
	k := StartKDC(b, map[string]string{user: secret})
	ccache := k.Kinit(b, user, secret)
	scheme := proxyauth.Negotiate(proxyauth.Kerberos{Config: k.Config, CCache: ccache})
	auth, err := scheme.Start(&proxyauth.Challenge{Scheme: "Negotiate"}, proxyauth.Credentials{})
	if err != nil {
		b.Fatal(err)
	}
	ca := auth.(proxyauth.ConnAuthorizer)
	proxy := &url.URL{Scheme: "http", Host: "localhost:3128"}
	b.ReportAllocs()
	for b.Loop() {
		hs, err := ca.Handshake(context.Background(), proxyauth.AuthRequest{Method: http.MethodConnect, URI: "example.com:443", Proxy: proxy})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := hs.Next(nil); err != nil {
			b.Fatal(err)
		}
	}
}
