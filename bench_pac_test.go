package proxyauth_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/proxyauth/proxyauth"
)

// BenchmarkPAC measures what a PAC script costs a request, through the
// nullProxy (which answers at once, so that the client's work is what is
// timed): proxyauth with the proxy in Config.Proxies against proxyauth
// with a PAC script of about 200 lines that names the same proxy, whose
// answer for the target is cached after the first request. lookup=cached
// is ProxiesFor alone with the answer cached: the share of a request
// that the PAC adds.
func BenchmarkPAC(b *testing.B) {
	p := newNullProxy(b)
	u, err := url.Parse(p.URL)
	if err != nil {
		b.Fatal(err)
	}
	script := corporatePAC(u.Host)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, script) }))
	b.Cleanup(srv.Close)
	base := func() *http.Transport {
		return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Roots}, MaxIdleConnsPerHost: 64}
	}
	creds := func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		return proxyauth.Credentials{Username: user, Password: secret}, nil
	}
	clients := []struct {
		name string
		cfg  proxyauth.Config
	}{
		{"fixed", proxyauth.Config{Proxies: []string{p.URL}, Credentials: creds, Base: base()}},
		{"pac", proxyauth.Config{PAC: srv.URL, Credentials: creds, Base: base()}},
	}
	for _, target := range []string{"http", "https"} {
		for _, c := range clients {
			tr := newTransport(b, c.cfg)
			cl := &http.Client{Transport: tr}
			target := target + "://127.0.0.1:9/"
			b.Run("target="+strings.Split(target, ":")[0]+"/client="+c.name, func(b *testing.B) {
				warm(b, cl, target, 2)
				b.ReportAllocs()
				for b.Loop() {
					benchGet(b, cl, target)
				}
			})
		}
	}
	tr := newTransport(b, proxyauth.Config{PAC: srv.URL, Credentials: creds, Base: base()})
	req, _ := http.NewRequest(http.MethodGet, "https://www.example.com/path", nil)
	if _, err := tr.ProxiesFor(req); err != nil {
		b.Fatal(err)
	}
	b.Run("lookup=cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := tr.ProxiesFor(req); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// corporatePAC returns a PAC script of about 200 lines in the style of a
// corporate one: many internal domains and networks sent directly, a few
// hosts to special proxies, the rest to proxy.
func corporatePAC(proxy string) string {
	var sb strings.Builder
	sb.WriteString("function FindProxyForURL(url, host) {\n")
	sb.WriteString("  if (isPlainHostName(host)) return \"DIRECT\";\n")
	for i := 0; i < 80; i++ {
		fmt.Fprintf(&sb, "  if (dnsDomainIs(host, \".dept%d.corp.example\")) return \"DIRECT\";\n", i)
	}
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&sb, "  if (shExpMatch(host, \"*.partner%d.example\")) return \"PROXY partner-proxy.corp.example:8080\";\n", i)
	}
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&sb, "  if (shExpMatch(url, \"http://legacy%d.example/*\")) return \"PROXY legacy.corp.example:3128; DIRECT\";\n", i)
	}
	sb.WriteString("  if (shExpMatch(host, \"10.*\") || shExpMatch(host, \"192.168.*\")) return \"DIRECT\";\n")
	sb.WriteString("  return \"PROXY " + proxy + "; DIRECT\";\n}\n")
	return sb.String()
}
