package proxyauth_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
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
		{"bad port", proxyauth.Config{Proxies: []string{"http://proxy:99999"}}, "Proxies[0]", "the port is not a number"},
		{"bad port after userinfo", proxyauth.Config{Proxies: []string{"http://u:hunter2@proxy:99999"}}, "Proxies[0]", `the port "99999" is not a number`},
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

// TestConfigErrorNamesTheCause checks that each malformed proxy URL gets
// a Reason naming what is wrong with it, and a Value without the password,
// which is "S3cr3t" wherever the input has one.
func TestConfigErrorNamesTheCause(t *testing.T) {
	tests := []struct {
		name, proxy string
		reason      string // a part of the Reason naming the cause
		value       string // the Value, masked
	}{
		{"letters for a port", "http://alice:S3cr3t@127.0.0.1:notaport", `the port "notaport" is not a number`, "http://xxxxx@127.0.0.1:notaport"},
		{"port zero", "http://alice:S3cr3t@127.0.0.1:0", `the port "0" is not a number from 1 to 65535`, "http://xxxxx@127.0.0.1:0"},
		{"signed port", "http://127.0.0.1:+80", "the port is not a number", "http://127.0.0.1:xxxxx"},
		{"password without host", "http://alice:S3cr3t", `without "@host:port"`, "http://alice:xxxxx"},
		{"digit password without host", "http://alice:314159", `without "@host:port"`, "http://alice:xxxxx"},
		{"password without host or scheme", "alice:S3cr3t", `without "@host:port"`, "alice:xxxxx"},
		{"nothing after the scheme", "http://", "no host: write http://host:port", "http://"},
		{"nothing after the at sign", "http://alice:S3cr3t@", `no host after the "@"`, "http://xxxxx@"},
		{"port without host", "socks5://:1080", "no host before the port", "socks5://:1080"},
		{"unclosed IPv6", "http://[::1", `no "]" closing the IPv6 address`, "http://[::1"},
		{"unclosed IPv6 with userinfo", "http://alice:S3cr3t@[::1:3128", `no "]"`, "http://xxxxx@[::1:3128"},
		{"text after IPv6", "http://[::1]3128", `text after the "]"`, "http://[::1]3128"},
		{"IPv6 without brackets", "http://::1:3128", "an IPv6 address needs brackets", "http://:xxxxx"},
		{"extra colon", "http://alice:S3cr3t:3128", `a username and password need "@host:port"`, "http://alice:xxxxx"},
		{"missing colon and slashes", "http//alice:S3cr3t@127.0.0.1:3128", `missing "://" after the scheme: write http://`, "http//xxxxx@127.0.0.1:3128"},
		{"missing slash", "https:/alice:S3cr3t@127.0.0.1:3128", `missing "://" after the scheme: write https://`, "https:/xxxxx@127.0.0.1:3128"},
		{"missing slashes", "socks5:alice:S3cr3t@127.0.0.1:1080", `missing "://" after the scheme: write socks5://`, "socks5:xxxxx@127.0.0.1:1080"},
		{"scheme alone", "http:", `missing "://"`, "http:"},
		{"leading space", " http://alice:S3cr3t@127.0.0.1:3128", "starts with a space", " http://xxxxx@127.0.0.1:3128"},
		{"trailing line break", "http://alice:S3cr3t@127.0.0.1:3128\n", "ends with a line break", "http://xxxxx@127.0.0.1:3128\n"},
		{"trailing line break without host", "http://alice:S3cr3t\r\n", "ends with a line break", "http://alice:xxxxx"},
		{"trailing space", "http://127.0.0.1:3128 ", "ends with a space: remove it", "http://127.0.0.1:xxxxx"},
		{"tab inside", "http://127.0.0.1:\t3128", "contains a tab", "http://127.0.0.1:xxxxx"},
		{"space in password", "http://alice:S3c r3t@127.0.0.1:3128", "contains a space; percent-encode", "http://xxxxx@127.0.0.1:3128"},
		{"control character", "http://alice:S3cr3t\x00@127.0.0.1:3128", "contains a control character", "http://xxxxx@127.0.0.1:3128"},
		{"slash in password", "http://alice:S3c/r3t@127.0.0.1:3128", `an unencoded "/", "?" or "#" in the username or password`, "http://xxxxx@127.0.0.1:3128"},
		{"question mark in password", "http://alice:S3c?r3t@127.0.0.1:3128", `an unencoded "/", "?" or "#" in the username or password`, "http://xxxxx@127.0.0.1:3128"},
		{"hash in password", "http://alice:S3c#r3t@127.0.0.1:3128", "percent-encode", "http://xxxxx@127.0.0.1:3128"},
		{"hash in password without host", "http://alice:S3c#r3t", `without "@host:port"`, "http://alice:xxxxx"},
		{"bad escape", "http://alice:S3cr3t%zz@127.0.0.1:3128", `a "%" in the username or password that does not start an escape`, "http://xxxxx@127.0.0.1:3128"},
		{"percent at the end", "http://alice:S3cr3t%@127.0.0.1:3128", `a "%" in the username or password`, "http://xxxxx@127.0.0.1:3128"},
		{"quote in password", "http://alice:S3cr3t\"@127.0.0.1:3128", "a character that must be percent-encoded", "http://xxxxx@127.0.0.1:3128"},
		{"query", "http://127.0.0.1:3128?password=S3cr3t", "no query", "http://127.0.0.1:3128?xxxxx"},
		{"query after a slash", "http://127.0.0.1:3128/?password=S3cr3t", "no path, query or fragment", "http://127.0.0.1:3128/?xxxxx"},
		{"fragment", "http://127.0.0.1:3128#S3cr3t", "no fragment", "http://127.0.0.1:3128#xxxxx"},
		{"path", "http://127.0.0.1:3128/proxy", `no path: remove "/proxy"`, "http://127.0.0.1:3128/proxy"},
		{"unsupported scheme", "ftp://alice:S3cr3t@127.0.0.1:21", `unsupported proxy scheme "ftp"`, "ftp://xxxxx@127.0.0.1:21"},
		{"separator in the password", "alice:S3c://r3t@127.0.0.1:3128", `the text before "://" is not a scheme`, "xxxxx@127.0.0.1:3128"},
		{"bad host", "http://alice:S3cr3t@prox%zzy:3128", `the host "prox%zzy" is not a host name`, "http://xxxxx@prox%zzy:3128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proxyauth.New(proxyauth.Config{Proxies: []string{tt.proxy}})
			var ce *proxyauth.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "Proxies[0]", ce.Field)
			assert.Contains(t, ce.Reason, tt.reason)
			assert.Equal(t, tt.value, ce.Value)
			for _, part := range []string{"S3cr3t", "S3c", "r3t", "314159"} {
				assert.NotContains(t, err.Error(), part, "Error() shows a password")
			}
		})
	}
}

// TestConfigErrorMasksProbe checks that Pool.Probe is quoted masked when it
// holds what may be userinfo, a query or a fragment.
func TestConfigErrorMasksProbe(t *testing.T) {
	tests := []struct{ name, probe, reason, value string }{
		{"userinfo", "alice:S3cr3t@canary:443", "no userinfo", "xxxxx@canary:443"},
		{"user", "alice@canary:443", "no userinfo", "xxxxx@canary:443"},
		{"password without host", "alice:S3cr3t", "the port", "alice:xxxxx"},
		{"no host", ":443", "neither", ":443"},
		{"URL without host", "https://alice:S3cr3t@/?token=S3cr3t", "not a usable URL", "https://xxxxx@/?xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proxyauth.New(proxyauth.Config{Proxies: []string{"http://127.0.0.1:3128"},
				Pool: proxyauth.PoolConfig{Probe: tt.probe}})
			var ce *proxyauth.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, "Pool.Probe", ce.Field)
			assert.Contains(t, ce.Reason, tt.reason)
			assert.Equal(t, tt.value, ce.Value)
			assert.NotContains(t, err.Error(), "S3cr3t")
		})
	}
}

// TestColonUsernameFromCredentialsFuncMasked checks that a username with a
// colon, as when "user:password" is given as the username, is refused for
// Basic without quoting what follows the colon.
func TestColonUsernameFromCredentialsFuncMasked(t *testing.T) {
	p := newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{
		Proxies: []string{p.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			return proxyauth.Credentials{Username: "alice:S3cr3t"}, nil
		},
	})
	_, err := cl.Get("http://origin.test/")
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.Contains(t, err.Error(), `username "alice:xxxxx" contains a colon`)
	assert.NotContains(t, err.Error(), "S3cr3t")
	assert.Empty(t, p.Requests())
}

func TestNewAcceptsProxyForms(t *testing.T) {
	for _, proxy := range []string{
		"http://proxy:3128", "http://proxy:3128/", "proxy:3128", "127.0.0.1:3128", "https://proxy:443",
		"socks5://u:p@proxy:1080", "socks5h://proxy:1080", "http://[::1]:3128", "HTTP://proxy:3128",
		"http:3128", "http://proxy", "http://proxy:", "u:p@proxy:3128", "http://u:p%40ss%23word@proxy:3128",
		"http://u:p@ss@proxy:3128", "http://[fe80::1%25eth0]:3128", "https:443",
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

// TestBaseDialHonoured checks that a Base that sets only the deprecated
// Dial has it used to reach the proxy.
func TestBaseDialHonoured(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	var dials atomic.Int32
	base := &http.Transport{}
	//lint:ignore SA1019 the deprecated field is what is tested.
	base.Dial = func(network, addr string) (net.Conn, error) {
		dials.Add(1)
		return net.Dial(network, addr)
	}
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: base})
	_, resp, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Positive(t, dials.Load(), "Base.Dial was not used")
	assert.Len(t, p.Requests(), 1)
}
