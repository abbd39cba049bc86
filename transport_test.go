package proxyauth_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

const (
	user   = "alice"
	secret = "s3cret-Pa55"
)

// targets are the two kinds of target: credentials travel on the
// forwarded request for http:// and on the CONNECT for https://.
var targets = []struct {
	name   string
	tls    bool
	tunnel bool
}{
	{"http", false, false},
	{"https", true, true},
}

func TestCredentialsReachProxyOnly(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, user, secret)
			cases := []struct {
				name string
				cfg  proxyauth.Config
			}{
				{"url userinfo", proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}},
				{"credentials func", proxyauth.Config{Proxies: []string{p.URL},
					Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
						return proxyauth.Credentials{Username: user, Password: secret}, nil
					}}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p.ResetRequests()
					c.cfg.Base = trusting(o.Certificate())
					cl := client(t, c.cfg)
					for i := 0; i < 2; i++ {
						body, resp, err := get(cl, o.URL+"/x")
						require.NoError(t, err)
						assert.Equal(t, http.StatusOK, resp.StatusCode)
						assert.Equal(t, "hello from origin", body)
					}
					o.assertNoProxyAuth(t, secret)
					reqs := p.Requests()
					require.NotEmpty(t, reqs)
					for _, r := range reqs {
						assert.Equal(t, []string{basic(user, secret)}, r.ProxyAuthorization,
							"%s %s: Proxy-Authorization received", r.Method, r.Target)
						assert.True(t, r.Authorized)
					}
					if tt.tunnel {
						// The second request rides the tunnel the first opened.
						require.Len(t, reqs, 1)
						assert.Equal(t, "CONNECT", reqs[0].Method)
						assert.Equal(t, strings.TrimPrefix(o.URL, "https://"), reqs[0].Target)
					} else {
						require.Len(t, reqs, 2)
						assert.Equal(t, "GET", reqs[0].Method)
						assert.Equal(t, o.URL+"/x", reqs[0].Target)
					}
				})
			}
		})
	}
}

func TestCredentialsFuncCalledOnceWithProxyWithoutUserinfo(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	var calls atomic.Int32
	var got proxyauth.CredentialsRequest
	cl := client(t, proxyauth.Config{
		Proxies: []string{p.URL},
		Base:    trusting(o.Certificate()),
		Credentials: func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			calls.Add(1)
			got = r
			return proxyauth.Credentials{Username: user, Password: secret}, nil
		},
	})
	for i := 0; i < 3; i++ {
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
	}
	assert.Equal(t, int32(1), calls.Load(), "callback calls")
	assert.Equal(t, p.URL, got.Proxy.String())
	assert.Empty(t, got.Challenges)
	assert.False(t, got.Rejected)
}

func TestProxyAuthErrorSameForHTTPAndHTTPS(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, user, secret)
			cases := []struct {
				name     string
				proxy    string
				rejected bool
			}{
				{"missing credentials", p.URL, false},
				{"wrong password", withUser(t, p.URL, user, "wrong-"+secret), true},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p.ResetRequests()
					cl := client(t, proxyauth.Config{Proxies: []string{c.proxy}, Base: trusting(o.Certificate())})
					resp, err := cl.Get(o.URL)
					require.Error(t, err)
					assert.Nil(t, resp)
					var ue *url.Error
					require.ErrorAs(t, err, &ue, "http.Client wraps the error")
					var pae *proxyauth.ProxyAuthError
					require.ErrorAs(t, err, &pae)
					assert.ErrorIs(t, err, proxyauth.ErrProxyAuthRequired)
					assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
					assert.Equal(t, tt.tunnel, pae.Tunnel)
					assert.Equal(t, 1, pae.Attempts)
					assert.Equal(t, c.rejected, pae.Rejected)
					assert.Equal(t, p.URL, pae.Proxy.String())
					require.Len(t, pae.Challenges, 1)
					assert.Equal(t, "Basic", pae.Challenges[0].Scheme)
					assert.Equal(t, "proxyauthtest", pae.Challenges[0].Params["realm"])
					assert.Equal(t, "1.1 proxyauthtest", pae.Header.Get("Via"), "the proxy's header fields are kept")
					assert.Equal(t, proxyauth.KindProxyAuth, proxyauth.Classify(nil, err))
					assert.NotContains(t, err.Error(), secret)
					assert.Len(t, p.Requests(), 1)
					assert.Empty(t, o.received(), "nothing reached the origin")
				})
			}
		})
	}
}

func TestCallerProxyAuthorizationMovesToProxyHop(t *testing.T) {
	const callerValue = "Basic Y2FsbGVyOnNlY3JldA==" // caller:secret
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, "caller", "secret")
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())})
			req, err := http.NewRequest(http.MethodGet, o.URL, nil)
			require.NoError(t, err)
			req.Header.Set("Proxy-Authorization", callerValue)
			resp, err := cl.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			o.assertNoProxyAuth(t, "Y2FsbGVyOnNlY3JldA")
			reqs := p.Requests()
			require.Len(t, reqs, 1)
			assert.Equal(t, []string{callerValue}, reqs[0].ProxyAuthorization, "one value, the caller's")
			assert.Equal(t, []string{callerValue}, req.Header.Values("Proxy-Authorization"), "caller's request unchanged")
		})
	}
}

// TestRequestUnchangedAndBodyClosed sends a request with a body down every
// path: success, 407, callback failure and unreachable proxy.
func TestRequestUnchangedAndBodyClosed(t *testing.T) {
	echo := func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	}
	failing := func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		return proxyauth.Credentials{}, errors.New("vault sealed")
	}
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, echo)
			p := newProxy(t, user, secret)
			cases := []struct {
				name    string
				cfg     proxyauth.Config
				wantErr bool
			}{
				{"success", proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, false},
				{"407", proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}}, true},
				{"credentials error", proxyauth.Config{Proxies: []string{p.URL}, Credentials: failing}, true},
				{"unreachable", proxyauth.Config{Proxies: []string{"http://" + closedAddr(t)}}, true},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					c.cfg.Base = trusting(o.Certificate())
					tr, err := proxyauth.New(c.cfg)
					require.NoError(t, err)
					t.Cleanup(tr.CloseIdleConnections)
					body := &trackedBody{Reader: strings.NewReader("payload")}
					req, err := http.NewRequest(http.MethodPost, o.URL+"/echo", body)
					require.NoError(t, err)
					req.Header.Set("X-Custom", "1")
					req.Header.Set("Proxy-Authorization", basic(user, "wrong"))
					if c.name == "success" {
						req.Header.Del("Proxy-Authorization")
					}
					before := req.Clone(context.Background())
					resp, err := tr.RoundTrip(req)
					if c.wantErr {
						require.Error(t, err)
						assert.Nil(t, resp)
					} else {
						require.NoError(t, err)
						b, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						assert.Equal(t, "payload", string(b))
						// resp.Request is the caller's request as sent, in a
						// context that names the proxy (ProxyOf).
						assert.Same(t, req.URL, resp.Request.URL)
						assert.Equal(t, req.Method, resp.Request.Method)
						assert.Equal(t, req.Header, resp.Request.Header)
						assert.NotNil(t, proxyauth.ProxyOf(resp))
					}
					assert.Equal(t, int32(1), body.closes.Load(), "request body closes")
					assert.Equal(t, before.Header, req.Header)
					assert.Equal(t, before.URL, req.URL)
					assert.Equal(t, before.Method, req.Method)
					assert.Equal(t, before.Host, req.Host)
				})
			}
		})
	}
}

func TestMixedSignals401FromProxy(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, user, secret)
			p.SetAuthStatus(http.StatusUnauthorized)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}, Base: trusting(o.Certificate())})
			_, err := cl.Get(o.URL)
			var pae *proxyauth.ProxyAuthError
			require.ErrorAs(t, err, &pae)
			assert.Equal(t, http.StatusUnauthorized, pae.StatusCode)
			assert.Equal(t, tt.tunnel, pae.Tunnel)
			assert.True(t, pae.Rejected)
			assert.Contains(t, err.Error(), "401 Unauthorized instead of 407")
			assert.Equal(t, proxyauth.KindProxyAuth, proxyauth.Classify(nil, err))
			assert.Empty(t, o.received())
		})
	}
}

func TestOrigin401PassesThrough(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="api", error="invalid_token"`)
				w.WriteHeader(http.StatusUnauthorized)
			})
			p := newProxy(t, user, secret)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())})
			resp, err := cl.Get(o.URL + "/private")
			require.NoError(t, err, "an origin's 401 is a response")
			resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, proxyauth.KindOriginAuth, proxyauth.Classify(resp, nil))
			err = proxyauth.CheckResponse(resp)
			var ae *proxyauth.AuthError
			require.ErrorAs(t, err, &ae)
			assert.ErrorIs(t, err, proxyauth.ErrUnauthorized)
			assert.Equal(t, o.URL+"/private", ae.URL.String())
			require.Len(t, ae.Challenges, 1)
			assert.Equal(t, "Bearer", ae.Challenges[0].Scheme)
			assert.Equal(t, "invalid_token", ae.Challenges[0].Params["error"])
			o.assertNoProxyAuth(t, secret)
		})
	}
}

func TestProxyUnreachable(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			proxy := withUser(t, "http://"+closedAddr(t), user, secret)
			cl := client(t, proxyauth.Config{Proxies: []string{proxy}, Base: trusting(o.Certificate())})
			_, err := cl.Get(o.URL)
			var pe *proxyauth.ProxyError
			require.ErrorAs(t, err, &pe)
			assert.ErrorIs(t, err, proxyauth.ErrProxyUnavailable)
			assert.Equal(t, "dial", pe.Op)
			assert.Zero(t, pe.StatusCode)
			assert.Nil(t, pe.Proxy.User)
			assert.Equal(t, proxyauth.KindProxyUnavailable, proxyauth.Classify(nil, err))
			assert.NotContains(t, err.Error(), secret)
			assert.Contains(t, err.Error(), "cannot reach proxy")
		})
	}
}

func TestProxyNameDoesNotResolve(t *testing.T) {
	// A resolver whose name server (on loopback) refuses: a real DNS
	// failure that sends nothing off this machine.
	dead := closedAddr(t)
	base := trusting()
	base.DialContext = (&netDialer{resolverAt: dead}).DialContext
	cl := client(t, proxyauth.Config{Proxies: []string{"http://proxy.test:3128"}, Base: base})
	_, err := cl.Get("http://origin.test/")
	var pe *proxyauth.ProxyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "dial", pe.Op)
	assert.Equal(t, "http://proxy.test:3128", pe.Proxy.String())
}

func TestConnectFailureStatus(t *testing.T) {
	o := newOrigin(t, true, nil)
	for _, code := range []int{http.StatusForbidden, http.StatusBadGateway, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			p := newProxy(t, user, secret)
			p.SetConnectStatus(code)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())})
			_, err := cl.Get(o.URL)
			var pe *proxyauth.ProxyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, "connect", pe.Op)
			assert.Equal(t, code, pe.StatusCode)
			assert.Equal(t, "1.1 proxyauthtest", pe.Header.Get("Via"))
			want := proxyauth.KindProxyUnavailable
			if code == http.StatusForbidden {
				want = proxyauth.KindForbidden
			}
			assert.Equal(t, want, proxyauth.Classify(nil, err))
		})
	}
}

func TestProxyHangsUp(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tls    bool
		wantOp string
	}{{"http", false, "forward"}, {"https", true, "connect"}} {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, user, secret)
			p.SetHangUp(true)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())})
			_, err := cl.Get(o.URL)
			var pe *proxyauth.ProxyError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tt.wantOp, pe.Op)
			assert.Equal(t, proxyauth.KindProxyUnavailable, proxyauth.Classify(nil, err))
		})
	}
}

func TestHTTPSProxy(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewUnstartedProxy(user, secret)
			var offered atomic.Value
			p.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				offered.Store(append([]string(nil), h.SupportedProtos...))
				return nil, nil
			}}
			p.StartTLS()
			t.Cleanup(p.Close)
			base := trusting(o.Certificate(), p.Certificate())
			base.TLSClientConfig.NextProtos = []string{"h2", "http/1.1"}
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: base})
			body, _, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, "hello from origin", body)
			assert.Equal(t, []string{"http/1.1"}, offered.Load(), "ALPN offered to the proxy")
			assert.Equal(t, []string{basic(user, secret)}, p.Requests()[0].ProxyAuthorization)
			o.assertNoProxyAuth(t, secret)
		})
	}
}

func TestHTTPSProxyUntrusted(t *testing.T) {
	p := proxyauthtest.NewTLSProxy(user, secret)
	t.Cleanup(p.Close)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: &http.Transport{}})
	_, err := cl.Get("http://origin.test/")
	var pe *proxyauth.ProxyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "tls", pe.Op)
	assert.Contains(t, err.Error(), "TLS handshake with proxy")
}

func TestSOCKS5(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			s := proxyauthtest.NewSOCKS5Proxy(user, secret)
			t.Cleanup(s.Close)
			cases := []struct {
				name     string
				proxy    string
				wantErr  bool
				rejected bool
			}{
				{"right credentials", withUser(t, s.URL, user, secret), false, false},
				{"wrong password", withUser(t, s.URL, user, "wrong-"+secret), true, true},
				{"no credentials", s.URL, true, false},
				{"socks5h", withUser(t, strings.Replace(s.URL, "socks5:", "socks5h:", 1), user, secret), false, false},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					cl := client(t, proxyauth.Config{Proxies: []string{c.proxy}, Base: trusting(o.Certificate())})
					req, err := http.NewRequest(http.MethodGet, o.URL, nil)
					require.NoError(t, err)
					req.Header.Set("Proxy-Authorization", basic(user, secret))
					resp, err := cl.Do(req)
					if !c.wantErr {
						require.NoError(t, err)
						resp.Body.Close()
						assert.Equal(t, http.StatusOK, resp.StatusCode)
						o.assertNoProxyAuth(t, secret)
						return
					}
					var pae *proxyauth.ProxyAuthError
					require.ErrorAs(t, err, &pae)
					assert.Zero(t, pae.StatusCode, "SOCKS5 has no status codes")
					assert.Equal(t, c.rejected, pae.Rejected)
					assert.Equal(t, 1, pae.Attempts)
					assert.NotContains(t, err.Error(), secret)
					assert.Contains(t, err.Error(), "SOCKS5 proxy")
				})
			}
			reqs := s.Requests()
			require.NotEmpty(t, reqs)
			assert.Equal(t, user, reqs[0].Username)
			assert.True(t, reqs[0].Authorized)
		})
	}
}

func TestSpecialCharacterPasswords(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			for _, pass := range []string{"p@ss", "pa:ss", "100%", "pa#ss", "pa/ss", "pässwörd-日本", "a b?c&d=e", `q"u\o'te`, "%41%zz"} {
				t.Run(pass, func(t *testing.T) {
					p := newProxy(t, "us er+x", pass)
					cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, "us er+x", pass)}, Base: trusting(o.Certificate())})
					_, _, err := get(cl, o.URL)
					require.NoError(t, err)
					assert.Equal(t, []string{basic("us er+x", pass)}, p.Requests()[0].ProxyAuthorization)
				})
			}
		})
	}
}

func TestWrap(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	redirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	orig := &http.Client{Transport: trusting(o.Certificate()), Timeout: 7 * time.Second, Jar: jar, CheckRedirect: redirect}
	wrapped, err := proxyauth.Wrap(orig, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	require.NoError(t, err)
	t.Cleanup(wrapped.CloseIdleConnections)
	assert.Equal(t, orig.Timeout, wrapped.Timeout)
	assert.Same(t, jar, wrapped.Jar)
	assert.Equal(t, reflect.ValueOf(redirect).Pointer(), reflect.ValueOf(wrapped.CheckRedirect).Pointer())
	assert.IsType(t, &http.Transport{}, orig.Transport, "the original client is unchanged")
	// The client's transport trusts the TLS origin; the wrapped client
	// reaches it, so it took the settings.
	body, _, err := get(wrapped, o.URL)
	require.NoError(t, err)
	assert.Equal(t, "hello from origin", body)
	assert.Len(t, p.Requests(), 1)
}

func TestWrapRejectsOtherRoundTrippers(t *testing.T) {
	type custom struct{ http.RoundTripper }
	_, err := proxyauth.Wrap(&http.Client{Transport: custom{}}, proxyauth.Config{Proxies: []string{"http://127.0.0.1:3128"}})
	var ce *proxyauth.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "Client.Transport", ce.Field)
	assert.Contains(t, err.Error(), "not an *http.Transport")
	assert.Contains(t, err.Error(), "CONNECT")
}

func TestBaseHooksChained(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	base := trusting(o.Certificate())
	var sawHeader, sawStatus atomic.Value
	base.GetProxyConnectHeader = func(context.Context, *url.URL, string) (http.Header, error) {
		return http.Header{"X-Trace": {"abc"}, "Proxy-Authorization": {"Basic stale"}}, nil
	}
	base.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, req *http.Request, resp *http.Response) error {
		sawHeader.Store(req.Header.Get("X-Trace"))
		sawStatus.Store(resp.StatusCode)
		return nil
	}
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: base})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, "abc", sawHeader.Load())
	assert.Equal(t, http.StatusOK, sawStatus.Load())
	assert.Equal(t, []string{basic(user, secret)}, p.Requests()[0].ProxyAuthorization, "credentials override the base header")
	assert.Nil(t, base.Proxy, "Base not mutated")
}

func TestCloseIdleConnections(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	reused := func() bool {
		var r bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { r = i.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, o.URL, nil)
		resp, err := cl.Do(req)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return r
	}
	reused()
	assert.True(t, reused(), "second request reuses the connection")
	cl.CloseIdleConnections()
	assert.False(t, reused(), "after CloseIdleConnections a new connection is dialed")
}

func TestCredentialsFuncError(t *testing.T) {
	p := newProxy(t, user, secret)
	sealed := errors.New("vault sealed")
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			cl := client(t, proxyauth.Config{
				Proxies: []string{p.URL},
				Base:    trusting(o.Certificate()),
				Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
					return proxyauth.Credentials{}, sealed
				},
			})
			_, err := cl.Get(o.URL)
			var pae *proxyauth.ProxyAuthError
			require.ErrorAs(t, err, &pae)
			assert.ErrorIs(t, err, sealed, "the callback's error is the cause")
			assert.Zero(t, pae.StatusCode)
			assert.Zero(t, pae.Attempts, "nothing was sent")
			assert.Equal(t, tt.tunnel, pae.Tunnel)
			assert.Contains(t, err.Error(), "vault sealed")
			assert.Empty(t, p.Requests())
		})
	}
}

func TestCredentialsFuncBadCredentials(t *testing.T) {
	p := newProxy(t, user, secret)
	cl := client(t, proxyauth.Config{
		Proxies: []string{p.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			return proxyauth.Credentials{Username: "a:b", Password: secret}, nil
		},
	})
	_, err := cl.Get("http://origin.test/")
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.Contains(t, err.Error(), "colon")
	assert.NotContains(t, err.Error(), secret)
	assert.Empty(t, p.Requests())
}

func TestCredentialsFuncSharedByConcurrentRequests(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls atomic.Int32
		tr, err := proxyauth.New(proxyauth.Config{
			Proxies: []string{p.URL},
			Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
				calls.Add(1)
				<-release
				return proxyauth.Credentials{Username: user, Password: secret}, nil
			},
		})
		require.NoError(t, err)
		cl := &http.Client{Transport: tr}
		const n = 20
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			go func() {
				_, _, err := get(cl, o.URL)
				errs <- err
			}()
		}
		synctest.Wait() // every request is now waiting for the credentials
		assert.Equal(t, int32(1), calls.Load(), "callback calls while %d requests wait", n)
		close(release)
		for i := 0; i < n; i++ {
			assert.NoError(t, <-errs)
		}
		assert.Equal(t, int32(1), calls.Load())
		assert.Len(t, p.Requests(), n)
		tr.CloseIdleConnections()
	})
}

func TestCanceledWhileWaitingForCredentials(t *testing.T) {
	p := newProxy(t, user, secret)
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	entered := make(chan struct{}, 1)
	cl := client(t, proxyauth.Config{
		Proxies: []string{p.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			entered <- struct{}{}
			<-release
			return proxyauth.Credentials{}, errors.New("released")
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://origin.test/", nil)
	require.NoError(t, err)
	go func() {
		<-entered
		cancel()
	}()
	_, err = cl.Do(req)
	assert.ErrorIs(t, err, context.Canceled)
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae, "the credentials could not be had")
	assert.Zero(t, pae.Attempts)
	assert.Empty(t, p.Requests())
}

func TestZeroTransport(t *testing.T) {
	var tr proxyauth.Transport
	body := &trackedBody{Reader: strings.NewReader("x")}
	req, err := http.NewRequest(http.MethodPost, "http://origin.test/", body)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	assert.ErrorContains(t, err, "without New")
	assert.Equal(t, int32(1), body.closes.Load())
}

func TestProxyDialTimeout(t *testing.T) {
	base := trusting()
	base.DialContext = (&net.Dialer{Timeout: time.Nanosecond}).DialContext
	cl := client(t, proxyauth.Config{Proxies: []string{"http://" + closedAddr(t)}, Base: base})
	_, err := cl.Get("http://origin.test/")
	var pe *proxyauth.ProxyError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "dial", pe.Op)
	var ne net.Error
	require.ErrorAs(t, pe.Err, &ne)
	assert.True(t, ne.Timeout(), "the cause is a timeout: %v", pe.Err)
	assert.Equal(t, proxyauth.KindProxyUnavailable, proxyauth.Classify(nil, err))
}
