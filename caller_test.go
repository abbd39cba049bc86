package proxyauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// These tests pin down whom a Proxy-Authorization field that the caller set
// is for: the proxy it was first sent to, and no other.

// callerRequest returns a GET of target with the caller's own field.
func callerRequest(t *testing.T, target, value string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", value)
	return req
}

// fieldsReceived returns every Proxy-Authorization value p received.
func fieldsReceived(p *proxyauthtest.Proxy) []string {
	var out []string
	for _, r := range p.Requests() {
		out = append(out, r.ProxyAuthorization...)
	}
	return out
}

// A 407 to the caller's field is the caller's answer: the request does not
// move to the next proxy with the field, and the proxy is not marked
// auth-failed for all traffic because of one request's field.
func TestCallerField407StaysWithItsProxy(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			a := newProxy(t, "user-a", "pass-a")
			b := newAuthProxy(t, openAuth{})
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, a.URL, "user-a", "pass-a"), b.URL},
				Base:    trusting(o.Certificate()),
			}, nil)
			field := basic("caller", "callers-own")
			resp, err := cl.Do(callerRequest(t, o.URL, field))
			if resp != nil {
				resp.Body.Close()
			}
			var pae *proxyauth.ProxyAuthError
			require.ErrorAs(t, err, &pae)
			assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
			assert.Equal(t, a.URL, pae.Proxy.String())
			assert.NotContains(t, fieldsReceived(b), field, "the caller's field crossed to another proxy")
			assert.Empty(t, b.Requests(), "the request moved on after its own field was refused")
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateHealthy, proxyauth.StateUnchecked}, statesOf(tr),
				"the proxy was held responsible for the caller's field")

			// The proxy still serves requests with its own credentials.
			_, _, err = get(cl, o.URL)
			require.NoError(t, err)
			assert.Empty(t, b.Requests())
			o.assertNoProxyAuth(t, "callers-own", "pass-a")
		})
	}
}

// A request that fails over before its field reached anyone goes on
// without it.
func TestCallerFieldNotCarriedOnFailover(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			b := newAuthProxy(t, openAuth{})
			cl, _ := poolClient(t, proxyauth.Config{
				Proxies: []string{"http://" + closedAddr(t), b.URL},
				Base:    trusting(o.Certificate()),
			}, nil)
			field := basic("caller", "callers-own")
			resp, err := cl.Do(callerRequest(t, o.URL, field))
			require.NoError(t, err)
			resp.Body.Close()
			require.NotEmpty(t, b.Requests())
			assert.Empty(t, fieldsReceived(b), "the field meant for the first proxy reached the fallback")
			o.assertNoProxyAuth(t, "callers-own")
		})
	}
}

// With HTTP_PROXY and HTTPS_PROXY naming different proxies, a field meant
// for the first does not reach the second's CONNECT after a redirect from
// http:// to https:// on the same host, which http.Client follows with the
// field copied (it drops the field only for another domain).
func TestCallerFieldNotCarriedAcrossEnvironmentProxiesOnRedirect(t *testing.T) {
	secure := newOrigin(t, true, nil)
	start := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://example.com/landing", http.StatusFound)
	})
	p1 := proxyauthtest.NewUnstartedProxy("user-a", "pass-a")
	p1.DialContext = dialMap(map[string]string{"example.com:80": start.Listener.Addr().String()})
	p1.Start()
	t.Cleanup(p1.Close)
	p2 := proxyauthtest.NewUnstartedProxy("user-b", "pass-b")
	p2.DialContext = dialMap(map[string]string{"example.com:443": secure.Listener.Addr().String()})
	p2.Start()
	t.Cleanup(p2.Close)
	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", p1.URL)
	t.Setenv("HTTPS_PROXY", withUser(t, p2.URL, "user-b", "pass-b"))
	cl := client(t, proxyauth.Config{Base: trusting(secure.Certificate())})

	field := basic("user-a", "pass-a")
	resp, err := cl.Do(callerRequest(t, "http://example.com/start", field))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{field}, fieldsReceived(p1))
	require.Len(t, p2.Requests(), 1)
	assert.Equal(t, []string{basic("user-b", "pass-b")}, fieldsReceived(p2), "the CONNECT to the second proxy carried the first one's field")
	start.assertNoProxyAuth(t, "pass-a")
	secure.assertNoProxyAuth(t, "pass-a", "pass-b")
}

// In a round-robin pool, a redirect of a request with the caller's field
// goes through the proxy that served the first request, which the field
// was for; the other proxy never sees it.
func TestCallerFieldRedirectStaysOnItsProxy(t *testing.T) {
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/landing", http.StatusFound)
			return
		}
		w.Write([]byte("landed"))
	})
	a, b := newAuthProxy(t, openAuth{}), newAuthProxy(t, openAuth{})
	cl, _ := poolClient(t, proxyauth.Config{
		Proxies: []string{a.URL, b.URL},
		Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	}, nil)
	for i := 0; i < 4; i++ {
		a.ResetRequests()
		b.ResetRequests()
		field := basic("caller", "chain-"+string(rune('0'+i)))
		resp, err := cl.Do(callerRequest(t, o.URL+"/start", field))
		require.NoError(t, err)
		resp.Body.Close()
		ra, rb := fieldsReceived(a), fieldsReceived(b)
		switch {
		case len(a.Requests()) == 2:
			assert.Equal(t, []string{field, field}, ra, "chain %d", i)
			assert.Empty(t, b.Requests(), "chain %d: the redirect moved to the other proxy", i)
		case len(b.Requests()) == 2:
			assert.Equal(t, []string{field, field}, rb, "chain %d", i)
			assert.Empty(t, a.Requests(), "chain %d: the redirect moved to the other proxy", i)
		default:
			t.Errorf("chain %d: the two requests went to different proxies: a got %v, b got %v", i, ra, rb)
		}
	}
	o.assertNoProxyAuth(t, "chain-")
}
