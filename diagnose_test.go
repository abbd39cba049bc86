package proxyauth_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// diagCase is one outcome for Diagnose: run produces it, with pass as the
// password of every proxy URL it builds.
type diagCase struct {
	name    string
	run     func(t *testing.T, pass string) (*http.Response, error)
	layer   proxyauth.Layer
	kind    proxyauth.Kind
	summary string // a part of the Summary
	hint    string // a part of one of the Hints; "" for no hint expected
	proxy   bool   // Diagnosis.Proxy is set
}

// diagFetch does a GET of target through a new Transport for cfg.
func diagFetch(t *testing.T, cfg proxyauth.Config, target string) (*http.Response, error) {
	t.Helper()
	return client(t, cfg).Get(target)
}

// diagProxy starts a proxyauthtest proxy that accepts user with password
// accept, with auth as its scheme (nil for Basic).
func diagProxy(t *testing.T, accept string, auth proxyauthtest.Authenticator) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewUnstartedProxy(user, accept)
	p.Auth = auth
	p.Start()
	t.Cleanup(p.Close)
	return p
}

// diagTLSProxy starts a proxyauthtest proxy on TLS that accepts user with
// password accept.
func diagTLSProxy(t *testing.T, accept string) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewTLSProxy(user, accept)
	t.Cleanup(p.Close)
	return p
}

// diagNoChallenge is a proxy scheme that refuses everyone and offers nothing,
// as a proxy with an allow-list of addresses does.
type diagNoChallenge struct{}

func (diagNoChallenge) Challenges() []string { return []string{} }
func (diagNoChallenge) Authorized(*http.Request, []proxyauthtest.Credentials) bool {
	return false
}

// diagProxyURL returns a proxy URL with user and pass that nothing
// listens behind, for errors built by hand.
func diagProxyURL(pass string) *url.URL {
	return &url.URL{Scheme: "http", Host: "proxy.test:3128", User: url.UserPassword(user, pass)}
}

// diagWrapped returns err as http.Client returns it.
func diagWrapped(err error) error {
	return &url.Error{Op: "Get", URL: "https://origin.test/", Err: err}
}

func diagnoseCases() []diagCase {
	const (
		tellsTLS    = "the proxy speaks plain HTTP: use an http:// proxy URL"
		realmOffers = `offers Basic realm="proxyauthtest"`
	)
	return []diagCase{
		{
			name: "200 through the proxy",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}, o.URL)
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOK, summary: "ok",
		},
		{
			name: "302 response",
			run: func(*testing.T, string) (*http.Response, error) {
				return response(http.StatusFound, "Location", "/elsewhere"), nil
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOK, summary: "ok",
		},
		{
			name: "proxy unreachable",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, "http://"+closedAddr(t), user, pass)}}, "http://origin.test/")
			},
			layer: proxyauth.LayerNetwork, kind: proxyauth.KindProxyUnavailable,
			summary: "refused the connection", hint: "check the proxy's host and port", proxy: true,
		},
		{
			name: "proxy unreachable from the environment",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				proxy := withUser(t, "http://"+closedAddr(t), user, pass)
				for _, name := range []string{"http_proxy", "HTTP_PROXY"} {
					t.Setenv(name, proxy)
				}
				for _, name := range []string{"no_proxy", "NO_PROXY"} {
					t.Setenv(name, "")
				}
				return diagFetch(t, proxyauth.Config{}, "http://origin.test/")
			},
			layer: proxyauth.LayerNetwork, kind: proxyauth.KindProxyUnavailable,
			summary: "refused the connection", hint: "comes from the environment (http_proxy, HTTP_PROXY)", proxy: true,
		},
		{
			name: "proxy name does not resolve",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				base := trusting()
				base.DialContext = (&netDialer{resolverAt: closedAddr(t)}).DialContext
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, "http://proxy.test:3128", user, pass)}, Base: base},
					"http://origin.test/")
			},
			layer: proxyauth.LayerNetwork, kind: proxyauth.KindProxyUnavailable,
			summary: `host name "proxy.test"`, hint: "give the proxy as an IP address", proxy: true,
		},
		{
			name: "proxy name not found",
			run: func(_ *testing.T, pass string) (*http.Response, error) {
				return nil, diagWrapped(&proxyauth.ProxyError{Proxy: diagProxyURL(pass), Op: "dial",
					Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "proxy.test", IsNotFound: true}}})
			},
			layer: proxyauth.LayerNetwork, kind: proxyauth.KindProxyUnavailable,
			summary: `"proxy.test" does not resolve`, hint: "spelling of the host name", proxy: true,
		},
		{
			name: "proxy dial timeout",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				base := trusting()
				base.DialContext = (&net.Dialer{Timeout: time.Nanosecond}).DialContext
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, "http://"+closedAddr(t), user, pass)}, Base: base},
					"http://origin.test/")
			},
			layer: proxyauth.LayerNetwork, kind: proxyauth.KindProxyUnavailable,
			summary: "timed out", hint: "Config.ProxyTimeout", proxy: true,
		},
		{
			name: "https proxy URL to a plain proxy",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, "https://"+p.Addr(), user, pass)}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "did not answer the TLS handshake with TLS", hint: tellsTLS, proxy: true,
		},
		{
			name: "https proxy with an untrusted certificate",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				p := diagTLSProxy(t, pass)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: &http.Transport{}},
					"http://origin.test/")
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "the proxy's certificate is not trusted", hint: "Base.TLSClientConfig.RootCAs", proxy: true,
		},
		{
			name: "http proxy URL to a TLS proxy",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagTLSProxy(t, pass)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, "http://"+p.Addr(), user, pass)}, Base: trusting(o.Certificate())},
					o.URL)
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "without answering the CONNECT", hint: "if it listens with TLS, use an https:// proxy URL", proxy: true,
		},
		{
			name: "proxy wants credentials",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{p.URL}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "requires credentials and none were sent (407 to CONNECT", hint: realmOffers, proxy: true,
		},
		{
			name: "credentials rejected",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass+"-rotated", nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "rejected the credentials (407 to CONNECT", hint: "percent-encode special characters", proxy: true,
		},
		{
			name: "digest credentials rejected",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass+"-rotated", digestWith("SHA-256"))
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "rejected the credentials", hint: `realm "proxyauthtest"`, proxy: true,
		},
		{
			name: "no acceptable scheme",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass, digestWith("SHA-256"))
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)},
					Schemes: []proxyauth.Scheme{proxyauth.Basic()}}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "offers no scheme this Transport may use", hint: "Config.Schemes: add proxyauth.Digest()", proxy: true,
		},
		{
			name: "Basic refused in clear",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, RefuseCleartextBasic: true,
					Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "offers no scheme this Transport may use", hint: "use an https:// proxy URL", proxy: true,
		},
		{
			name: "407 without a challenge",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, diagNoChallenge{})
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "wants authentication but offers no challenge (407 to CONNECT)", hint: "by source IP (an allow-list)", proxy: true,
		},
		{
			name: "proxy answers 401",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass+"-rotated", nil)
				p.SetAuthStatus(http.StatusUnauthorized)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "mixed signals", hint: "tinyproxy", proxy: true,
		},
		{
			name: "407 from an upstream proxy",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				upstream := diagProxy(t, "upstream-only", nil)
				edge := proxyauthtest.NewUnstartedProxy(user, pass)
				edge.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, upstream.Addr())
				}
				edge.Start()
				t.Cleanup(edge.Close)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, edge.URL, user, pass)}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "through a chain of 2 proxies (Via): it may come from an upstream proxy", hint: `upstream proxy "proxyauthtest"`, proxy: true,
		},
		{
			name: "407 to CONNECT with two Via hops",
			run: func(_ *testing.T, pass string) (*http.Response, error) {
				return nil, diagWrapped(&proxyauth.ProxyAuthError{Proxy: diagProxyURL(pass), StatusCode: 407, Tunnel: true, Rejected: true,
					Attempts:   1,
					Challenges: []proxyauth.Challenge{{Scheme: "Basic", Params: map[string]string{"realm": "upstream"}}},
					Header:     http.Header{"Via": {"1.1 upstream (squid/6.10), 1.1 edge"}}})
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "may come from an upstream proxy", hint: `upstream proxy "upstream" may need credentials of its own`, proxy: true,
		},
		{
			name: "SOCKS5 wrong password",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				s := proxyauthtest.NewSOCKS5Proxy(user, pass+"-rotated")
				t.Cleanup(s.Close)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, s.URL, user, pass)}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "SOCKS5 proxy rejected the username and password", hint: "socks5:// URL", proxy: true,
		},
		{
			name: "SOCKS5 without credentials",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				s := proxyauthtest.NewSOCKS5Proxy(user, pass)
				t.Cleanup(s.Close)
				return diagFetch(t, proxyauth.Config{Proxies: []string{s.URL}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "requires a username and password and none were sent", hint: "socks5://user:pass@host:1080", proxy: true,
		},
		{
			name: "credentials function fails",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{p.URL},
					Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
						return proxyauth.Credentials{}, errors.New("vault is sealed")
					}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "vault is sealed", hint: "the CredentialsFunc (Config.Credentials) failed", proxy: true,
		},
		{
			name: "credentials function repeats rejected credentials",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				p := diagProxy(t, pass+"-rotated", nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{p.URL},
					Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
						return proxyauth.Credentials{Username: user, Password: pass}, nil
					}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "returned the credentials the proxy had just rejected", hint: "CredentialsRequest.Rejected", proxy: true,
		},
		{
			name: "body cannot be sent again",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass, nil)
				req, err := http.NewRequest(http.MethodPost, o.URL, &trackedBody{Reader: strings.NewReader("payload")})
				if err != nil {
					t.Fatal(err)
				}
				return client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, WaitForChallenge: true}).Do(req)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "the request body cannot be sent again", hint: "Request.GetBody", proxy: true,
		},
		{
			name: "CONNECT refused with 403",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				p.SetConnectStatus(http.StatusForbidden)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindForbidden,
			summary: "refused the CONNECT with 403 Forbidden", hint: "ACL forbids this target or port", proxy: true,
		},
		{
			name: "CONNECT refused by squid's ACL",
			run: func(_ *testing.T, pass string) (*http.Response, error) {
				return nil, diagWrapped(&proxyauth.ProxyError{Proxy: diagProxyURL(pass), Op: "connect", StatusCode: http.StatusForbidden,
					Header: http.Header{"X-Squid-Error": {"ERR_ACCESS_DENIED 0"}, "Via": {"1.1 squid (squid/6.10)"}}})
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindForbidden,
			summary: "403 Forbidden (squid ERR_ACCESS_DENIED)", hint: "squid allows CONNECT only to port 443", proxy: true,
		},
		{
			name: "CONNECT 502",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				p.SetConnectStatus(http.StatusBadGateway)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "refused the CONNECT with 502 Bad Gateway", hint: "could not reach the origin", proxy: true,
		},
		{
			name: "CONNECT 503",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				p.SetConnectStatus(http.StatusServiceUnavailable)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "503 Service Unavailable", hint: "overloaded", proxy: true,
		},
		{
			name: "CONNECT 504 from squid",
			run: func(_ *testing.T, pass string) (*http.Response, error) {
				return nil, diagWrapped(&proxyauth.ProxyError{Proxy: diagProxyURL(pass), Op: "connect", StatusCode: http.StatusGatewayTimeout,
					Header: http.Header{"X-Squid-Error": {"ERR_READ_TIMEOUT 0"}}})
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "504 Gateway Timeout (squid ERR_READ_TIMEOUT)", hint: "did not answer the proxy in time", proxy: true,
		},
		{
			name: "proxy hangs up on the CONNECT",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				p.SetHangUp(true)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}, o.URL)
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "without answering the CONNECT", hint: "overloaded or restarting", proxy: true,
		},
		{
			name: "proxy hangs up on a forwarded request",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass, nil)
				p.SetHangUp(true)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}, o.URL)
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "without answering the forwarded request", hint: "overloaded or restarting", proxy: true,
		},
		{
			name: "CONNECT unanswered",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, "http://"+blackHole(t), user, pass)},
					ProxyTimeout: 100 * time.Millisecond}, "https://origin.test/")
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "did not answer the CONNECT in time", hint: "Config.ProxyTimeout", proxy: true,
		},
		{
			name: "pool of an unreachable and a rejecting proxy",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				p := diagProxy(t, pass+"-rotated", nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{
					withUser(t, "http://"+closedAddr(t), user, pass),
					withUser(t, p.URL, user, pass),
				}}, "http://origin.test/")
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "rejected the credentials (407, offers Basic realm=\"proxyauthtest\") (2 proxies tried)", hint: "the other proxies tried failed too: network:", proxy: true,
		},
		{
			name: "pool of three failures",
			run: func(_ *testing.T, pass string) (*http.Response, error) {
				refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
				return nil, diagWrapped(&proxyauth.PoolError{Errors: []error{
					&proxyauth.ProxyError{Proxy: diagProxyURL(pass), Op: "dial", Err: refused},
					&proxyauth.ProxyError{Proxy: diagProxyURL(pass), Op: "connect", StatusCode: http.StatusForbidden},
					&proxyauth.ProxyError{Proxy: diagProxyURL(pass), Op: "dial", Err: refused},
				}})
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindForbidden,
			summary: "refused the CONNECT with 403 Forbidden (3 proxies tried)", hint: "network: the proxy's address refused the connection", proxy: true,
		},
		{
			name: "origin certificate untrusted",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: &http.Transport{}}, o.URL)
			},
			layer: proxyauth.LayerTLS, kind: proxyauth.KindOther,
			summary: "the origin's certificate is not trusted", hint: "if the proxy inspects TLS",
		},
		{
			name: "origin certificate for another name",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := proxyauthtest.NewUnstartedProxy(user, pass)
				p.DialContext = dialMap(map[string]string{"wrong.test:443": o.Listener.Addr().String()})
				p.Start()
				t.Cleanup(p.Close)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())},
					"https://wrong.test/")
			},
			layer: proxyauth.LayerTLS, kind: proxyauth.KindOther,
			summary: `not valid for "wrong.test" (it names example.com`, hint: "check the host name",
		},
		{
			name: "origin speaks plain HTTP",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}},
					"https://"+strings.TrimPrefix(o.URL, "http://"))
			},
			layer: proxyauth.LayerTLS, kind: proxyauth.KindOther,
			summary: "the origin did not answer the TLS handshake with TLS", hint: "use an http:// URL",
		},
		{
			name: "origin 401 with an expired Bearer token",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token", error_description="The access token expired"`)
					w.WriteHeader(http.StatusUnauthorized)
				})
				p := diagProxy(t, pass, nil)
				req, err := http.NewRequest(http.MethodGet, o.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Authorization", "Bearer old-token")
				return client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}, Base: trusting(o.Certificate())}).Do(req)
			},
			layer: proxyauth.LayerOriginAuth, kind: proxyauth.KindOriginAuth,
			summary: `the origin refused the credentials sent (401, offers Bearer realm="api")`, hint: "expired, revoked or malformed",
		},
		{
			name: "origin 401 Basic",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("WWW-Authenticate", `Basic realm="site"`)
					w.WriteHeader(http.StatusUnauthorized)
				})
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}, o.URL)
			},
			layer: proxyauth.LayerOriginAuth, kind: proxyauth.KindOriginAuth,
			summary: "the origin wants credentials and none were sent", hint: "Proxy-Authorization) never reach the origin",
		},
		{
			name: "origin AuthError",
			run: func(*testing.T, string) (*http.Response, error) {
				return nil, diagWrapped(proxyauth.CheckResponse(response(http.StatusUnauthorized, "WWW-Authenticate", `Basic realm="site"`)))
			},
			layer: proxyauth.LayerOriginAuth, kind: proxyauth.KindOriginAuth,
			summary: "the origin answered 401 Unauthorized", hint: "site's own username and password",
		},
		{
			name: "origin 403",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}, o.URL)
			},
			layer: proxyauth.LayerOrigin, kind: proxyauth.KindForbidden,
			summary: "the origin answered 403 Forbidden", hint: "block proxy and data-center addresses",
		},
		{
			name: "proxy 403 marked by squid",
			run: func(*testing.T, string) (*http.Response, error) {
				return response(http.StatusForbidden, "X-Squid-Error", "ERR_ACCESS_DENIED 0"), nil
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindForbidden,
			summary: "the proxy answered 403 Forbidden itself (squid ERR_ACCESS_DENIED)", hint: "ACL forbids",
		},
		{
			name: "origin 503",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Retry-After", "120")
					w.WriteHeader(http.StatusServiceUnavailable)
				})
				p := diagProxy(t, pass, nil)
				return diagFetch(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}, o.URL)
			},
			layer: proxyauth.LayerOrigin, kind: proxyauth.KindOther,
			summary: "the origin answered 503 Service Unavailable", hint: "retry later (Retry-After: 120)",
		},
		{
			name: "proxy 502 with Proxy-Status",
			run: func(*testing.T, string) (*http.Response, error) {
				return response(http.StatusBadGateway, "Proxy-Status", "edge; error=destination_unavailable"), nil
			},
			layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
			summary: "(Proxy-Status error=destination_unavailable)", hint: "could not connect to the target",
		},
		{
			name: "canceled by the caller",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, nil)
				p := diagProxy(t, pass, nil)
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
				if err != nil {
					t.Fatal(err)
				}
				return client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}}).Do(req)
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOther,
			summary: "the caller canceled the request", hint: "no layer is known to have failed",
		},
		{
			name: "caller's timeout",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-r.Context().Done():
					case <-time.After(generous):
					}
				})
				p := diagProxy(t, pass, nil)
				cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, pass)}})
				cl.Timeout = 100 * time.Millisecond
				return cl.Get(o.URL)
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOther,
			summary: "time ran out before an answer came", hint: "allow more time",
		},
		{
			name: "configuration error",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				_, err := proxyauth.New(proxyauth.Config{Proxies: []string{"ftp://" + user + ":" + pass + "@proxy.test:21"}})
				return nil, err
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOther,
			summary: `configuration: Proxies[0] "ftp://xxxxx@proxy.test:21" is not usable`, hint: "unsupported proxy scheme",
		},
		{
			name: "bare Transport CONNECT 407",
			run: func(t *testing.T, pass string) (*http.Response, error) {
				o := newOrigin(t, true, nil)
				p := diagProxy(t, pass+"-rotated", nil)
				pu, err := url.Parse(withUser(t, p.URL, user, pass))
				if err != nil {
					t.Fatal(err)
				}
				bare := trusting(o.Certificate())
				bare.Proxy = http.ProxyURL(pu)
				t.Cleanup(bare.CloseIdleConnections)
				return (&http.Client{Transport: bare}).Get(o.URL)
			},
			layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
			summary: "answered 407 to the CONNECT", hint: "use a proxyauth Transport",
		},
		{
			name: "unrecognised error",
			run: func(*testing.T, string) (*http.Response, error) {
				return nil, errors.New("boom")
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOther,
			summary: "unrecognised failure: boom",
		},
		{
			name: "no response and no error",
			run: func(*testing.T, string) (*http.Response, error) {
				return nil, nil
			},
			layer: proxyauth.LayerNone, kind: proxyauth.KindOther,
			summary: "nothing to diagnose",
		},
	}
}

// diagnose runs c and diagnoses its outcome.
func diagnose(t *testing.T, c diagCase, pass string) (proxyauth.Diagnosis, error) {
	t.Helper()
	resp, err := c.run(t, pass)
	d := proxyauth.Diagnose(resp, err)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	return d, err
}

func TestDiagnose(t *testing.T) {
	for _, c := range diagnoseCases() {
		t.Run(c.name, func(t *testing.T) {
			d, err := diagnose(t, c, secret)
			t.Log(d)
			if d.Layer != c.layer {
				t.Errorf("Diagnose(%v).Layer = %v, want %v (%v)", err, d.Layer, c.layer, d)
			}
			if d.Kind != c.kind {
				t.Errorf("Diagnose(%v).Kind = %v, want %v", err, d.Kind, c.kind)
			}
			if !strings.Contains(d.Summary, c.summary) {
				t.Errorf("Diagnose(%v).Summary = %q, want it to contain %q", err, d.Summary, c.summary)
			}
			if strings.Contains(d.Summary, "\n") || strings.HasSuffix(d.Summary, ".") {
				t.Errorf("Diagnose(%v).Summary = %q, want one line without a trailing period", err, d.Summary)
			}
			if c.hint != "" && !strings.Contains(strings.Join(d.Hints, "\n"), c.hint) {
				t.Errorf("Diagnose(%v).Hints = %q, want one containing %q", err, d.Hints, c.hint)
			}
			if c.layer != proxyauth.LayerNone && len(d.Hints) == 0 {
				t.Errorf("Diagnose(%v).Hints is empty", err)
			}
			if got := d.Proxy != nil; got != c.proxy {
				t.Errorf("Diagnose(%v).Proxy = %v, want set: %t", err, d.Proxy, c.proxy)
			}
			if d.Proxy != nil && d.Proxy.User != nil {
				t.Errorf("Diagnose(%v).Proxy = %v, want no userinfo", err, d.Proxy)
			}
		})
	}
}

// TestDiagnoseHidesPassword runs every case with a password in the proxy
// URLs and checks that no Diagnosis shows it, plain or in base64.
func TestDiagnoseHidesPassword(t *testing.T) {
	const pass = "hunter2-secret"
	secrets := []string{
		pass,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)),
		base64.StdEncoding.EncodeToString([]byte(pass)),
	}
	for _, c := range diagnoseCases() {
		t.Run(c.name, func(t *testing.T) {
			d, _ := diagnose(t, c, pass)
			if d.Layer != c.layer {
				t.Errorf("Diagnose(%s).Layer = %v, want %v", c.name, d.Layer, c.layer)
			}
			for _, out := range []string{d.String(), fmt.Sprintf("%+v", d), fmt.Sprintf("%#v", d)} {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("Diagnose(%s) = %q: shows the password", c.name, out)
					}
				}
			}
		})
	}
}

// TestDiagnoseMasksHandMadeErrors checks that a password in the URL of an
// error that a caller built, which the Transport never does, is masked too.
func TestDiagnoseMasksHandMadeErrors(t *testing.T) {
	const pass = "hunter2-secret"
	u := diagProxyURL(pass)
	errs := []error{
		&proxyauth.ProxyError{Proxy: u, Op: "dial", Err: errors.New("dial " + u.String() + ": refused")},
		&proxyauth.ProxyAuthError{Proxy: u, StatusCode: 0, Err: errors.New("no credentials for " + u.String())},
	}
	for _, err := range errs {
		d := proxyauth.Diagnose(nil, err)
		if out := d.String() + fmt.Sprintf("%+v", d); strings.Contains(out, pass) {
			t.Errorf("Diagnose(%T) = %q: shows the password", err, out)
		}
	}
}

func TestDiagnoseLayerString(t *testing.T) {
	want := map[proxyauth.Layer]string{
		proxyauth.LayerNone: "none", proxyauth.LayerNetwork: "network", proxyauth.LayerProxy: "proxy",
		proxyauth.LayerProxyAuth: "proxy-auth", proxyauth.LayerTLS: "tls", proxyauth.LayerOrigin: "origin",
		proxyauth.LayerOriginAuth: "origin-auth", proxyauth.Layer(42): "Layer(42)",
	}
	for l, w := range want {
		if got := l.String(); got != w {
			t.Errorf("Layer(%d).String() = %q, want %q", int(l), got, w)
		}
	}
}

func TestDiagnoseDiagnosisString(t *testing.T) {
	tests := []struct {
		name string
		d    proxyauth.Diagnosis
		want string
	}{
		{"ok", proxyauth.Diagnose(response(http.StatusOK), nil), "none: ok"},
		{"hints", proxyauth.Diagnosis{Layer: proxyauth.LayerProxyAuth, Summary: "the proxy rejected the credentials (407)",
			Hints: []string{"check the username and password", "check the realm"}},
			"proxy-auth: the proxy rejected the credentials (407) (hint: check the username and password; hint: check the realm)"},
		{"no hints", proxyauth.Diagnosis{Layer: proxyauth.LayerNone, Summary: "unrecognised failure: boom"}, "none: unrecognised failure: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.d.String(); got != tt.want {
				t.Errorf("Diagnosis.String() = %q, want %q", got, tt.want)
			}
		})
	}
}
