package proxyauth_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// openAuth lets everyone through: a proxy that needs no credentials.
type openAuth struct{}

func (openAuth) Challenges() []string                                       { return nil }
func (openAuth) Authorized(*http.Request, []proxyauthtest.Credentials) bool { return true }

// TestLeakRedirectAcrossTheProxyBoundary follows a redirect from a proxied
// host to a subdomain that NO_PROXY sends direct. http.Client drops
// Proxy-Authorization on redirects to other domains, but copies it to a
// subdomain; the Transport must not let it reach the direct origin.
func TestLeakRedirectAcrossTheProxyBoundary(t *testing.T) {
	bypass := newOrigin(t, false, nil)
	start := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://direct.origin.test/landing", http.StatusFound)
	})
	p := newMappedProxy(t, map[string]string{"origin.test:80": start.Listener.Addr().String()})
	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", withUser(t, p.URL, user, secret))
	t.Setenv("NO_PROXY", "direct.origin.test")
	base := trusting()
	base.DialContext = dialMap(map[string]string{"direct.origin.test:80": bypass.Listener.Addr().String()})
	cl := client(t, proxyauth.Config{Base: base})
	req, err := http.NewRequest(http.MethodGet, "http://origin.test/start", nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", basic(user, secret))
	resp, err := cl.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	require.Len(t, bypass.received(), 1, "the redirect was followed directly")
	bypass.assertNoProxyAuth(t, secret)
	start.assertNoProxyAuth(t, secret)
}

// TestLeakRedirectToAnotherHostThroughTheProxy follows an https redirect to
// another host: the credentials stay on the CONNECTs.
func TestLeakRedirectToAnotherHostThroughTheProxy(t *testing.T) {
	second := newOrigin(t, true, nil)
	first := newOrigin(t, true, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, second.URL+"/next", http.StatusTemporaryRedirect)
	})
	p := newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(first.Certificate())})
	req, err := http.NewRequest(http.MethodGet, first.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", basic(user, secret))
	resp, err := cl.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	first.assertNoProxyAuth(t, secret)
	second.assertNoProxyAuth(t, secret)
	require.Len(t, p.Requests(), 2, "one CONNECT per host")
}

// TestLeakFailoverToAnOpenProxy: the credentials of the proxy that failed
// are not sent to the next one, which needs none.
func TestLeakFailoverToAnOpenProxy(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			authed := newProxy(t, user, secret)
			open := newAuthProxy(t, openAuth{})
			cl, _ := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, authed.URL, user, secret), open.URL},
				Base:    trusting(o.Certificate()),
			}, nil)
			_, _, err := get(cl, o.URL)
			require.NoError(t, err)
			authed.Close()
			cl.CloseIdleConnections()
			_, _, err = get(cl, o.URL)
			require.NoError(t, err)
			reqs := open.Requests()
			require.NotEmpty(t, reqs)
			for _, r := range reqs {
				assert.Empty(t, r.ProxyAuthorization, "%s %s carried credentials", r.Method, r.Target)
			}
			o.assertNoProxyAuth(t, secret)
		})
	}
}

// TestLeakEachProxyGetsOnlyItsOwnCredentials spreads requests over two
// proxies with different credentials.
func TestLeakEachProxyGetsOnlyItsOwnCredentials(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			a, b := newProxy(t, "user-a", "pass-a"), newProxy(t, "user-b", "pass-b")
			cl, _ := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, a.URL, "user-a", "pass-a"), withUser(t, b.URL, "user-b", "pass-b")},
				Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
				Base:    trusting(o.Certificate()),
			}, nil)
			for i := 0; i < 6; i++ {
				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
				cl.CloseIdleConnections()
			}
			for name, p := range map[string]*proxyauthtest.Proxy{"a": a, "b": b} {
				reqs := p.Requests()
				require.NotEmpty(t, reqs)
				for _, r := range reqs {
					assert.Equal(t, []string{basic("user-"+name, "pass-"+name)}, r.ProxyAuthorization, "proxy %s", name)
				}
			}
		})
	}
}

// TestLeakOrigin407InsideTheTunnel: an origin that answers 407 inside a TLS
// tunnel gets no proxy credentials in reply; its answer is a response.
func TestLeakOrigin407InsideTheTunnel(t *testing.T) {
	o := newOrigin(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="give me your proxy password"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
	})
	p := newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())})
	resp, err := cl.Get(o.URL)
	require.NoError(t, err, "the origin's 407 is the origin's response")
	resp.Body.Close()
	assert.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	assert.Len(t, o.received(), 1, "not answered with credentials")
	o.assertNoProxyAuth(t, secret)
	assert.Len(t, p.Requests(), 1, "one CONNECT, no retry")
}

// TestLeakSchemesStayApart: Digest answers never go to a proxy that asked
// only for Basic, and Basic never to one that asked only for Digest once it
// has asked (and never at all with WaitForChallenge).
func TestLeakSchemesStayApart(t *testing.T) {
	o := newOrigin(t, false, nil)
	t.Run("Basic-only proxy", func(t *testing.T) {
		p := newProxy(t, user, secret)
		cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, WaitForChallenge: true})
		for i := 0; i < 3; i++ {
			_, _, err := get(cl, o.URL)
			require.NoError(t, err)
		}
		for _, r := range p.Requests() {
			assert.NotEqual(t, "Digest", r.Scheme)
		}
	})
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("Digest-only proxy, WaitForChallenge %t", wait), func(t *testing.T) {
			p := newAuthProxy(t, digestWith("SHA-256"))
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, WaitForChallenge: wait})
			for i := 0; i < 3; i++ {
				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
			}
			for i, r := range p.Requests() {
				if r.Scheme == "Basic" {
					assert.True(t, i == 0 && !wait, "request %d sent Basic to a proxy that asked for Digest", i)
				}
			}
		})
	}
}

// TestLeakNothingPrintsSecrets formats every exported type that can meet a
// password, every way fmt can, after real failures.
func TestLeakNothingPrintsSecrets(t *testing.T) {
	const pass = "hunter2-leak-check"
	b64 := strings.TrimPrefix(basic(user, pass), "Basic ")
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: []string{withUser(t, "http://"+closedAddr(t), user, pass), withUser(t, p.URL, user, pass)},
		Base:    trusting(o.Certificate()),
	}, nil)
	resp, err := cl.Get(o.URL)
	values := []any{err, proxyauth.Diagnose(resp, err), tr.Pool().Stats(), proxyauth.Credentials{Username: user, Password: pass},
		&proxyauth.ConfigError{Field: "Proxies[0]", Value: "xxxxx@proxy"}}
	var pe *proxyauth.PoolError
	if assert.ErrorAs(t, err, &pe) {
		values = append(values, pe, pe.Errors)
	}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			out := fmt.Sprintf(verb, v)
			assert.NotContains(t, out, pass, "fmt.Sprintf(%q, %T)", verb, v)
			assert.NotContains(t, out, b64, "fmt.Sprintf(%q, %T)", verb, v)
		}
	}
}
