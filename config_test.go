package proxyauth_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

func TestNewRejectsBadConfig(t *testing.T) {
	creds := func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		return proxyauth.Credentials{}, nil
	}
	tests := []struct {
		name      string
		cfg       proxyauth.Config
		wantField string
		wantText  string
	}{
		{"empty URL", proxyauth.Config{Proxies: []string{""}}, "Proxies[0]", "empty proxy URL"},
		{"unsupported scheme", proxyauth.Config{Proxies: []string{"ftp://proxy:21"}}, "Proxies[0]", `unsupported proxy scheme "ftp"`},
		{"socks4", proxyauth.Config{Proxies: []string{"socks4://proxy:1080"}}, "Proxies[0]", `unsupported proxy scheme "socks4"`},
		{"bad port", proxyauth.Config{Proxies: []string{"http://proxy:99999"}}, "Proxies[0]", `port "99999"`},
		{"unencoded slash in password", proxyauth.Config{Proxies: []string{"http://u:pa/ss-hunter2@proxy:3128"}}, "Proxies[0]", "percent-encode"},
		{"unencoded hash in password", proxyauth.Config{Proxies: []string{"http://u:pa#ss-hunter2@proxy:3128"}}, "Proxies[0]", "percent-encode"},
		{"bad escape in password", proxyauth.Config{Proxies: []string{"http://u:pa%zzhunter2@proxy:3128"}}, "Proxies[0]", "percent-encode"},
		{"path", proxyauth.Config{Proxies: []string{"http://proxy:3128/some/path"}}, "Proxies[0]", "no path"},
		{"colon in Basic username", proxyauth.Config{Proxies: []string{"http://a%3Ab:hunter2@proxy:3128"}}, "Proxies[0]", "colon"},
		{"SOCKS5 username too long", proxyauth.Config{Proxies: []string{"socks5://" + strings.Repeat("u", 256) + ":hunter2@proxy:1080"}}, "Proxies[0]", "1 to 255 bytes"},
		{"SOCKS5 password without username", proxyauth.Config{Proxies: []string{"socks5://:hunter2@proxy:1080"}}, "Proxies[0]", "1 to 255 bytes"},
		{"no host", proxyauth.Config{Proxies: []string{"http://:3128"}}, "Proxies[0]", "no host"},
		{"same proxy twice", proxyauth.Config{Proxies: []string{"http://a:1", "http://u:hunter2@a:1"}}, "Proxies[1]", "the same proxy as Proxies[0]"},
		{"Proxies and Pool.Proxies", proxyauth.Config{Proxies: []string{"http://a:1"}, Pool: proxyauth.PoolConfig{Proxies: []proxyauth.PoolProxy{{URL: "http://b:1"}}}}, "Pool.Proxies", "set together"},
		{"bad pool URL", proxyauth.Config{Pool: proxyauth.PoolConfig{Proxies: []proxyauth.PoolProxy{{URL: "ftp://u:hunter2@b:1"}}}}, "Pool.Proxies[0].URL", "unsupported proxy scheme"},
		{"weight", proxyauth.Config{Pool: proxyauth.PoolConfig{Proxies: []proxyauth.PoolProxy{{URL: "http://b:1", Weight: 101}}}}, "Pool.Proxies[0].Weight", "not from 0 to 100"},
		{"strategy", proxyauth.Config{Proxies: []string{"http://a:1"}, Pool: proxyauth.PoolConfig{Strategy: 9}}, "Pool.Strategy", "not one of"},
		{"negative interval", proxyauth.Config{Proxies: []string{"http://a:1"}, Pool: proxyauth.PoolConfig{ProbeInterval: -1}}, "Pool.ProbeInterval", "negative"},
		{"percent", proxyauth.Config{Proxies: []string{"http://a:1"}, Pool: proxyauth.PoolConfig{MaxEjectedPercent: 101}}, "Pool.MaxEjectedPercent", "more than 100"},
		{"probe target", proxyauth.Config{Proxies: []string{"http://a:1"}, Pool: proxyauth.PoolConfig{Probe: "no-port"}}, "Pool.Probe", "neither"},
		{"pool proxy userinfo and Credentials", proxyauth.Config{Pool: proxyauth.PoolConfig{Proxies: []proxyauth.PoolProxy{{URL: "http://u:hunter2@b:1", Credentials: creds}}}}, "Pool.Proxies[0].URL", "give the credentials one way"},
		{"userinfo and Credentials", proxyauth.Config{Proxies: []string{"http://u:hunter2@proxy:3128"}, Credentials: creds}, "Proxies[0]", "give the credentials one way"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := proxyauth.New(tt.cfg)
			assert.Nil(t, tr)
			var ce *proxyauth.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tt.wantField, ce.Field)
			assert.Contains(t, err.Error(), tt.wantText)
			assert.NotContains(t, err.Error(), "hunter2", "Error() shows a password")
			assert.NotContains(t, ce.Value, "hunter2")
		})
	}
}

func TestNewAcceptsProxyForms(t *testing.T) {
	for _, proxy := range []string{
		"http://proxy:3128", "http://proxy:3128/", "proxy:3128", "127.0.0.1:3128", "https://proxy:443",
		"socks5://u:p@proxy:1080", "socks5h://proxy:1080", "http://[::1]:3128", "HTTP://proxy:3128",
	} {
		t.Run(proxy, func(t *testing.T) {
			_, err := proxyauth.New(proxyauth.Config{Proxies: []string{proxy}})
			assert.NoError(t, err)
		})
	}
}

func TestColonUsernameWithoutBasic(t *testing.T) {
	_, err := proxyauth.New(proxyauth.Config{Proxies: []string{"http://a%3Ab:pw@proxy:3128"},
		Schemes: []proxyauth.Scheme{proxyauth.Digest()}})
	assert.NoError(t, err, "Digest can carry a colon in the username")
}

func TestConfigChangesAfterNewDoNotMatter(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	cfg := proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}
	cl := client(t, cfg)
	cfg.Proxies[0] = "http://" + closedAddr(t)
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Len(t, p.Requests(), 1)
}

// clearProxyEnv unsets every proxy variable for the test.
func clearProxyEnv(t *testing.T) {
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
}

func TestEnvironment(t *testing.T) {
	o := newOrigin(t, false, nil)
	so := newOrigin(t, true, nil)
	// The environment never proxies loopback targets, so the targets have
	// names: the proxy maps them to the loopback origins, and so does the
	// base dialer for the one NO_PROXY names.
	p := newMappedProxy(t, map[string]string{
		"origin.test:80":   o.Listener.Addr().String(),
		"secure.test:443":  so.Listener.Addr().String(),
		"bypass.test:80":   o.Listener.Addr().String(),
		"unmapped.test:80": closedAddr(t),
	})
	base := trusting(so.Certificate())
	base.TLSClientConfig.ServerName = "example.com" // the name in httptest's certificate
	base.DialContext = dialMap(map[string]string{"bypass.test:80": o.Listener.Addr().String()})

	t.Run("HTTP_PROXY and HTTPS_PROXY", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", withUser(t, p.URL, user, secret))
		t.Setenv("HTTPS_PROXY", withUser(t, p.URL, user, secret))
		cl := client(t, proxyauth.Config{Base: base})
		p.ResetRequests()
		_, resp, err := get(cl, "http://origin.test/a")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		_, resp, err = get(cl, "https://secure.test/b")
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		reqs := p.Requests()
		require.Len(t, reqs, 2)
		assert.Equal(t, "http://origin.test/a", reqs[0].Target)
		assert.Equal(t, "secure.test:443", reqs[1].Target)
		for _, r := range reqs {
			assert.Equal(t, []string{basic(user, secret)}, r.ProxyAuthorization)
		}
	})

	t.Run("NO_PROXY bypass drops Proxy-Authorization", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", withUser(t, p.URL, user, secret))
		t.Setenv("NO_PROXY", "bypass.test")
		cl := client(t, proxyauth.Config{Base: base})
		p.ResetRequests()
		before := len(o.received())
		req, err := http.NewRequest(http.MethodGet, "http://bypass.test/", nil)
		require.NoError(t, err)
		req.Header.Set("Proxy-Authorization", basic(user, secret))
		resp, err := cl.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Empty(t, p.Requests(), "the proxy saw nothing")
		assert.Len(t, o.received(), before+1, "the origin was reached directly")
		o.assertNoProxyAuth(t, secret)
	})

	t.Run("loopback targets are never proxied", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", withUser(t, p.URL, user, secret))
		cl := client(t, proxyauth.Config{Base: base})
		p.ResetRequests()
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
		assert.Empty(t, p.Requests())
	})

	t.Run("lower case wins", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", "http://"+closedAddr(t))
		t.Setenv("http_proxy", withUser(t, p.URL, user, secret))
		cl := client(t, proxyauth.Config{Base: base})
		_, _, err := get(cl, "http://origin.test/")
		require.NoError(t, err)
	})

	t.Run("scheme defaults to http", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", strings.TrimPrefix(withUser(t, p.URL, user, secret), "http://"))
		cl := client(t, proxyauth.Config{Base: base})
		_, _, err := get(cl, "http://origin.test/")
		require.NoError(t, err)
	})

	t.Run("invalid value", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("https_proxy", "ftp://u:hunter2@proxy.test:21")
		_, err := proxyauth.New(proxyauth.Config{})
		var ce *proxyauth.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "https_proxy", ce.Field)
		assert.NotContains(t, err.Error(), "hunter2")
	})

	t.Run("no proxy at all", func(t *testing.T) {
		clearProxyEnv(t)
		_, err := proxyauth.New(proxyauth.Config{})
		var ce *proxyauth.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Contains(t, err.Error(), "environment names no proxy")
	})

	t.Run("read when New runs", func(t *testing.T) {
		clearProxyEnv(t)
		t.Setenv("HTTP_PROXY", withUser(t, p.URL, user, secret))
		cl := client(t, proxyauth.Config{Base: base})
		t.Setenv("HTTP_PROXY", "http://"+closedAddr(t))
		_, _, err := get(cl, "http://origin.test/")
		require.NoError(t, err)
	})
}
