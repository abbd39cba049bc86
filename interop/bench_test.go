package interop_test

import (
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/proxyauth/proxyauth"
)

// BenchmarkSquidSteady is the steady-state benchmark of the root package
// through a real squid that offers Digest and Basic: a bare *http.Transport
// with static Basic credentials against proxyauth with Basic and with
// Digest, to an http:// and an https:// target. squid is the slowest part
// here, so the ratios say more about what a real deployment sees than
// about proxyauth's own cost, which the root package's benchmarks isolate.
func BenchmarkSquidSteady(b *testing.B) {
	o := newOrigins(b, nil)
	sq := StartSquid(b, SquidOptions{Basic: true, Digest: true, Users: map[string]string{user: secret}})
	raw := withUser(b, sq.URL, user, secret)
	pu, err := url.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	bare := o.base()
	bare.Proxy = http.ProxyURL(pu)
	b.Cleanup(bare.CloseIdleConnections)
	clients := []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", bare},
		{"basic", newClient(b, proxyauth.Config{Proxies: []string{raw}, Base: o.base(),
			Schemes: []proxyauth.Scheme{proxyauth.Basic()}}).Transport},
		{"digest", newClient(b, proxyauth.Config{Proxies: []string{raw}, Base: o.base(),
			Schemes: []proxyauth.Scheme{proxyauth.Digest()}}).Transport},
	}
	for _, target := range targets {
		for _, c := range clients {
			cl := &http.Client{Transport: c.rt}
			b.Run("target="+target.name+"/client="+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
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
			})
		}
	}
	if n := o.leaked(); n != 0 {
		b.Fatalf("%d requests reached an origin with Proxy-Authorization", n)
	}
}
