package proxyauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// proxyOf gets target through tr and returns what ProxyOf says of the
// response, "DIRECT" for nil.
func proxyOf(t *testing.T, cl *http.Client, target string) string {
	t.Helper()
	resp, err := cl.Get(target)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	u := proxyauth.ProxyOf(resp)
	if u == nil {
		return "DIRECT"
	}
	assert.Nil(t, u.User, "ProxyOf has no userinfo")
	return u.String()
}

func TestProxyOfFixedAndPool(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		o := newOrigin(t, tlsOn, nil)
		a, b := newProxy(t, user, secret), newProxy(t, user, secret)
		digest := proxyauthtest.NewDigestProxy(user, secret)
		t.Cleanup(digest.Close)
		base := trusting(o.Certificate())

		one := client(t, proxyauth.Config{Proxies: []string{withUser(t, a.URL, user, secret)}, Base: base})
		assert.Equal(t, a.URL, proxyOf(t, one, o.URL))
		viaDigest := client(t, proxyauth.Config{Proxies: []string{withUser(t, digest.URL, user, secret)}, Base: base})
		assert.Equal(t, digest.URL, proxyOf(t, viaDigest, o.URL))
		assert.Equal(t, digest.URL, proxyOf(t, viaDigest, o.URL), "once the proxy's nonce is known")

		// After failover: the proxy that served, not the first tried.
		down := "http://" + closedAddr(t)
		pool := client(t, proxyauth.Config{Proxies: []string{down, withUser(t, b.URL, user, secret)}, Base: base})
		assert.Equal(t, b.URL, proxyOf(t, pool, o.URL))

		// Round robin: each response names its own proxy.
		rr := client(t, proxyauth.Config{Base: base, Credentials: fixedCreds(user, secret),
			Proxies: []string{a.URL, b.URL}, Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin}})
		a.ResetRequests()
		b.ResetRequests()
		got := map[string]int{}
		for range 4 {
			got[proxyOf(t, rr, o.URL)]++
		}
		assert.Equal(t, map[string]int{a.URL: 2, b.URL: 2}, got)
	}
}

func TestProxyOfEnvironmentAndPAC(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newMappedProxy(t, map[string]string{"origin.test:443": hostOf(t, o.URL)})
	base := trusting(o.Certificate())
	base.TLSClientConfig.ServerName = "example.com"
	base.DialContext = dialMap(map[string]string{"direct.test:443": hostOf(t, o.URL)})

	t.Setenv("HTTPS_PROXY", withUser(t, p.URL, user, secret))
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "direct.test")
	env := client(t, proxyauth.Config{Base: base})
	assert.Equal(t, p.URL, proxyOf(t, env, "https://origin.test/"))
	assert.Equal(t, "DIRECT", proxyOf(t, env, "https://direct.test/"))

	script := fmt.Sprintf(`function FindProxyForURL(url, host) {
		return host == "direct.test" ? "DIRECT" : "PROXY %s; DIRECT";
	}`, hostOf(t, p.URL))
	file := filepath.Join(t.TempDir(), "proxy.pac")
	require.NoError(t, os.WriteFile(file, []byte(script), 0o600))
	pac := client(t, proxyauth.Config{PAC: file, PACRefresh: -1, Base: base, Credentials: fixedCreds(user, secret)})
	assert.Equal(t, p.URL, proxyOf(t, pac, "https://origin.test/"))
	assert.Equal(t, "DIRECT", proxyOf(t, pac, "https://direct.test/"))
}

func TestProxyOfRedirects(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/end", http.StatusFound)
			return
		}
		io.WriteString(w, "end")
	})
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{Credentials: fixedCreds(user, secret), Proxies: []string{a.URL, b.URL},
		Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin}})
	resp, err := cl.Get(o.URL + "/start")
	require.NoError(t, err)
	resp.Body.Close()
	require.NotNil(t, resp.Request.Response, "a redirect was followed")
	first, last := proxyauth.ProxyOf(resp.Request.Response), proxyauth.ProxyOf(resp)
	require.NotNil(t, first)
	require.NotNil(t, last)
	assert.ElementsMatch(t, []string{a.URL, b.URL}, []string{first.String(), last.String()},
		"round robin: the redirect went through the other proxy, and each response says which")
}

func TestProxyOfOthers(t *testing.T) {
	t.Parallel()
	assert.Nil(t, proxyauth.ProxyOf(nil))
	assert.Nil(t, proxyauth.ProxyOf(&http.Response{}))
	o := newOrigin(t, false, nil)
	resp, err := http.Get(o.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Nil(t, proxyauth.ProxyOf(resp), "a response of another RoundTripper")

	// A request made in the context of a proxied response's request, and
	// sent directly: its response was served by no proxy.
	p := newProxy(t, user, secret)
	proxied := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	resp, err = proxied.Get(o.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, p.URL, proxyauth.ProxyOf(resp).String())
	req, err := http.NewRequestWithContext(resp.Request.Context(), http.MethodGet, o.URL, nil)
	require.NoError(t, err)
	direct, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(t, err)
	direct.Body.Close()
	assert.Nil(t, proxyauth.ProxyOf(direct))
	// And through the Transport again: the new response's own proxy.
	again, err := proxied.Do(req)
	require.NoError(t, err)
	again.Body.Close()
	assert.Equal(t, p.URL, proxyauth.ProxyOf(again).String())
}

func TestProxyOfRequestHoldsNoSecret(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, nil)
	digest := proxyauthtest.NewDigestProxy(user, secret)
	t.Cleanup(digest.Close)
	basicProxy := newProxy(t, user, secret)
	for _, proxyURL := range []string{digest.URL, basicProxy.URL} {
		cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, proxyURL, user, secret)}})
		for range 2 { // the second carries credentials at once
			req, err := http.NewRequestWithContext(context.WithValue(context.Background(), ctxKey{}, "mine"), http.MethodGet, o.URL, nil)
			require.NoError(t, err)
			resp, err := cl.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Empty(t, resp.Request.Header.Get("Proxy-Authorization"), "no credential of ours in resp.Request")
			assert.Equal(t, "mine", resp.Request.Context().Value(ctxKey{}), "the caller's context values")
			assert.Equal(t, proxyURL, proxyauth.ProxyOf(resp).String())
			ctx := resp.Request.Context()
			for _, s := range []string{fmt.Sprintf("%v %+v %#v %s", ctx, ctx, ctx, ctx), fmt.Sprintf("%+v", *resp.Request)} {
				assert.NotContains(t, s, secret)
				assert.NotContains(t, s, strings.TrimPrefix(basic(user, secret), "Basic "))
			}
		}
	}
	// A field the caller set stays in resp.Request, as the caller set it.
	p := newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL}})
	req, err := http.NewRequest(http.MethodGet, o.URL, nil)
	require.NoError(t, err)
	req.Header.Set("Proxy-Authorization", basic(user, secret))
	resp, err := cl.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, basic(user, secret), resp.Request.Header.Get("Proxy-Authorization"))
	assert.Equal(t, p.URL, proxyauth.ProxyOf(resp).String())
}

type ctxKey struct{}
