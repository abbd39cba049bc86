package proxyauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func response(code int, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	u, _ := url.Parse("https://origin.test/path")
	return &http.Response{StatusCode: code, Header: h, Request: &http.Request{URL: u, Header: http.Header{}}}
}

func TestClassifyResponses(t *testing.T) {
	tests := []struct {
		name string
		resp *http.Response
		want proxyauth.Kind
	}{
		{"200", response(200), proxyauth.KindOK},
		{"302", response(302), proxyauth.KindOK},
		{"407", response(407, "Proxy-Authenticate", `Basic realm="p"`), proxyauth.KindProxyAuth},
		{"origin 401", response(401, "WWW-Authenticate", `Bearer realm="api"`), proxyauth.KindOriginAuth},
		{"proxy 401 with Proxy-Authenticate", response(401, "Proxy-Authenticate", `Basic realm="p"`), proxyauth.KindProxyAuth},
		{"proxy 401 with X-Squid-Error", response(401, "X-Squid-Error", "ERR_CACHE_ACCESS_DENIED 0"), proxyauth.KindProxyAuth},
		{"403", response(403), proxyauth.KindForbidden},
		{"squid 403", response(403, "X-Squid-Error", "ERR_ACCESS_DENIED 0"), proxyauth.KindForbidden},
		{"squid 502", response(502, "X-Squid-Error", "ERR_CONNECT_FAIL 111"), proxyauth.KindProxyUnavailable},
		{"Proxy-Status 503", response(503, "Proxy-Status", "edge; error=destination_unavailable"), proxyauth.KindProxyUnavailable},
		{"origin 503", response(503), proxyauth.KindOther},
		{"404", response(404), proxyauth.KindOther},
		{"nil", nil, proxyauth.KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proxyauth.Classify(tt.resp, nil); got != tt.want {
				t.Errorf("Classify(%s, nil) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestClassifyErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want proxyauth.Kind
	}{
		{"ProxyAuthError", &proxyauth.ProxyAuthError{StatusCode: 407}, proxyauth.KindProxyAuth},
		{"wrapped ProxyAuthError", &url.Error{Op: "Get", URL: "https://x", Err: &proxyauth.ProxyAuthError{StatusCode: 407}}, proxyauth.KindProxyAuth},
		{"ProxyError dial", &proxyauth.ProxyError{Op: "dial"}, proxyauth.KindProxyUnavailable},
		{"ProxyError 403", &proxyauth.ProxyError{Op: "connect", StatusCode: 403}, proxyauth.KindForbidden},
		{"AuthError", &proxyauth.AuthError{StatusCode: 401}, proxyauth.KindOriginAuth},
		{"StatusError 403", &proxyauth.StatusError{StatusCode: 403}, proxyauth.KindForbidden},
		{"StatusError 404", &proxyauth.StatusError{StatusCode: 404}, proxyauth.KindOther},
		{"canceled", context.Canceled, proxyauth.KindOther},
		{"other", errors.New("boom"), proxyauth.KindOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := proxyauth.Classify(nil, tt.err); got != tt.want {
				t.Errorf("Classify(nil, %v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestClassifyBareTransport checks that Classify reads the errors of a bare
// http.Transport, which reports a CONNECT 407 only as text.
func TestClassifyBareTransport(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	s := proxyauthtest.NewSOCKS5Proxy(user, secret)
	t.Cleanup(s.Close)
	tests := []struct {
		name  string
		proxy string
		want  proxyauth.Kind
	}{
		{"CONNECT 407", withUser(t, p.URL, user, "wrong"), proxyauth.KindProxyAuth},
		{"unreachable", "http://" + closedAddr(t), proxyauth.KindProxyUnavailable},
		{"SOCKS5 wrong password", withUser(t, s.URL, user, "wrong"), proxyauth.KindProxyAuth},
		{"SOCKS5 no credentials", s.URL, proxyauth.KindProxyAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pu, err := url.Parse(tt.proxy)
			require.NoError(t, err)
			bare := trusting(o.Certificate())
			bare.Proxy = http.ProxyURL(pu)
			t.Cleanup(bare.CloseIdleConnections)
			_, err = (&http.Client{Transport: bare}).Get(o.URL)
			require.Error(t, err)
			if got := proxyauth.Classify(nil, err); got != tt.want {
				t.Errorf("Classify(nil, %v) = %v, want %v", err, got, tt.want)
			}
		})
	}
}

func TestCheckResponse(t *testing.T) {
	assert.NoError(t, proxyauth.CheckResponse(response(200)))
	assert.Error(t, proxyauth.CheckResponse(nil))

	var ae *proxyauth.AuthError
	require.ErrorAs(t, proxyauth.CheckResponse(response(401, "WWW-Authenticate", `Basic realm="r"`)), &ae)
	assert.Equal(t, "https://origin.test/path", ae.URL.String())

	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, proxyauth.CheckResponse(response(407, "Proxy-Authenticate", `Digest realm="d", nonce="n"`)), &pae)
	assert.Equal(t, 407, pae.StatusCode)
	assert.Equal(t, "Digest", pae.Challenges[0].Scheme)
	require.ErrorAs(t, proxyauth.CheckResponse(response(401, "X-Squid-Error", "ERR_CACHE_ACCESS_DENIED 0")), &pae)
	assert.Equal(t, 401, pae.StatusCode)

	var pe *proxyauth.ProxyError
	require.ErrorAs(t, proxyauth.CheckResponse(response(403, "X-Squid-Error", "ERR_ACCESS_DENIED 0")), &pe)
	assert.Equal(t, 403, pe.StatusCode)
	assert.Equal(t, "forward", pe.Op)

	var se *proxyauth.StatusError
	require.ErrorAs(t, proxyauth.CheckResponse(response(404)), &se)
	assert.Equal(t, 404, se.StatusCode)
	assert.Equal(t, "proxyauth: server https://origin.test/path answered 404 Not Found", se.Error())
}

func TestKindString(t *testing.T) {
	want := map[proxyauth.Kind]string{
		proxyauth.KindOK: "ok", proxyauth.KindProxyUnavailable: "proxy-unavailable", proxyauth.KindProxyAuth: "proxy-auth",
		proxyauth.KindForbidden: "forbidden", proxyauth.KindOriginAuth: "origin-auth", proxyauth.KindOther: "other",
		proxyauth.Kind(42): "Kind(42)",
	}
	for k, w := range want {
		if got := k.String(); got != w {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, w)
		}
	}
}

// TestSecretsNeverPrinted formats every exported type that can hold
// credentials, or errors about them, every way fmt can.
func TestSecretsNeverPrinted(t *testing.T) {
	const pass = "hunter2-very-secret"
	b64 := strings.TrimPrefix(basic(user, pass), "Basic ")
	proxy := &url.URL{Scheme: "http", Host: "proxy.test:3128", User: url.UserPassword(user, pass)}
	values := []any{
		proxyauth.Credentials{Username: user, Password: pass},
		&proxyauth.ProxyAuthError{Proxy: proxy, StatusCode: 407, Rejected: true},
		&proxyauth.ProxyError{Proxy: proxy, Op: "dial", Err: errors.New("refused")},
		&proxyauth.AuthError{URL: proxy, StatusCode: 401},
		&proxyauth.StatusError{URL: proxy, StatusCode: 404},
	}
	// Real errors from real failures, with the password in the URL.
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	s := proxyauthtest.NewSOCKS5Proxy(user, secret)
	t.Cleanup(s.Close)
	for _, px := range []string{withUser(t, p.URL, user, pass), withUser(t, s.URL, user, pass), withUser(t, "http://"+closedAddr(t), user, pass)} {
		for _, target := range []string{"http://origin.test/", o.URL} {
			_, err := client(t, proxyauth.Config{Proxies: []string{px}, Base: trusting(o.Certificate())}).Get(target)
			require.Error(t, err)
			values = append(values, err)
		}
	}
	_, err := proxyauth.New(proxyauth.Config{Proxies: []string{"http://" + user + ":" + pass + "/x@proxy:3128"}})
	values = append(values, err)
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, pass) || strings.Contains(out, b64) {
				t.Errorf("fmt.Sprintf(%q, %T) = %q: shows the password", verb, v, out)
			}
		}
	}
}
