package proxyauth_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

var digestAlgorithms = []string{"MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"}

// newAuthProxy starts a proxy with the given authenticator that accepts
// user/secret.
func newAuthProxy(t *testing.T, auth proxyauthtest.Authenticator) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewUnstartedProxy(user, secret)
	p.Auth = auth
	p.Start()
	t.Cleanup(p.Close)
	return p
}

func digestWith(algorithms ...string) *proxyauthtest.Digest {
	d := proxyauthtest.NewDigest()
	d.Algorithms = algorithms
	return d
}

func TestDigestEachAlgorithm(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			for _, alg := range digestAlgorithms {
				t.Run(alg, func(t *testing.T) {
					o := newOrigin(t, tt.tls, nil)
					p := newAuthProxy(t, digestWith(alg))
					cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
						WaitForChallenge: true, Base: trusting(o.Certificate())})
					for i := 0; i < 3; i++ {
						body, _, err := get(cl, o.URL+"/path?q=1")
						require.NoError(t, err, "request %d", i)
						assert.Equal(t, "hello from origin", body)
						cl.CloseIdleConnections() // a new CONNECT each time for https
					}
					reqs := p.Requests()
					require.Len(t, reqs, 4, "a challenge, then Digest sent at once with the accepted nonce")
					assert.Empty(t, reqs[0].ProxyAuthorization)
					for _, r := range reqs[1:] {
						assert.True(t, r.Authorized)
						assert.Equal(t, "Digest", r.Scheme)
						require.Len(t, r.ProxyAuthorization, 1)
						assert.Contains(t, r.ProxyAuthorization[0], "algorithm="+alg)
						assert.NotContains(t, r.ProxyAuthorization[0], secret)
					}
					assert.Contains(t, reqs[3].ProxyAuthorization[0], "nc=00000003")
					o.assertNoProxyAuth(t, secret)
				})
			}
		})
	}
}

func TestDigestAfterPreemptiveBasic(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newAuthProxy(t, digestWith("SHA-256"))
	var calls atomic.Int32
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			calls.Add(1)
			return proxyauth.Credentials{Username: user, Password: secret}, nil
		}})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	reqs := p.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "Basic", reqs[0].Scheme, "Basic is sent before any challenge by default")
	assert.Equal(t, "Digest", reqs[1].Scheme, "the same credentials answer the Digest challenge")
	assert.Equal(t, int32(1), calls.Load(), "a change of scheme is no rejection")
}

func TestDigestStaleNonceWithoutCallback(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			d := digestWith("SHA-256")
			p := newAuthProxy(t, d)
			v := &vault{password: secret}
			cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials,
				WaitForChallenge: true, Base: trusting(o.Certificate())})
			_, _, err := get(cl, o.URL)
			require.NoError(t, err)
			cl.CloseIdleConnections()
			d.ExpireNonces()
			_, _, err = get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, 1, d.StaleCount(), "the proxy answered stale=true once")
			assert.Equal(t, 1, v.count(), "a stale nonce needs no callback")
		})
	}
}

func TestDigestNextNonce(t *testing.T) {
	o := newOrigin(t, false, nil)
	d := digestWith("SHA-256")
	d.RotateNonceEvery(2)
	p := newAuthProxy(t, d)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, WaitForChallenge: true})
	for i := 0; i < 6; i++ {
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
	}
	reqs := p.Requests()
	assert.Len(t, reqs, 7, "only the first request needed a challenge")
	assert.Zero(t, d.StaleCount(), "the next nonce was taken up before the old one went stale")
}

func TestDigestConcurrentUseOfOneNonce(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newAuthProxy(t, digestWith("SHA-256"))
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, WaitForChallenge: true})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	const n = 50
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() {
			_, _, err := get(cl, o.URL)
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		assert.NoError(t, <-errs)
	}
	assert.Len(t, p.Requests(), n+2, "no nonce count was used twice")
}

func TestStrongestSchemeChosen(t *testing.T) {
	tests := []struct {
		name    string
		auth    proxyauthtest.Authenticator
		schemes []proxyauth.Scheme
		want    string
	}{
		{"Digest over Basic", proxyauthtest.Multi(proxyauthtest.Basic{}, digestWith("MD5")), nil, "algorithm=MD5"},
		{"SHA-256 over MD5", proxyauthtest.Multi(proxyauthtest.Basic{}, digestWith("MD5", "SHA-256")), nil, "algorithm=SHA-256"},
		{"SHA-512-256 first", digestWith("SHA-512-256", "SHA-256", "MD5"), nil, "algorithm=SHA-512-256"},
		{"allow-list keeps Basic", proxyauthtest.Multi(proxyauthtest.Basic{}, digestWith("SHA-256")), []proxyauth.Scheme{proxyauth.Basic()}, "Basic "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, true, nil)
			p := newAuthProxy(t, tt.auth)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, WaitForChallenge: true,
				Schemes: tt.schemes, Base: trusting(o.Certificate())})
			_, _, err := get(cl, o.URL)
			require.NoError(t, err)
			reqs := p.Requests()
			require.Len(t, reqs, 2)
			require.Len(t, reqs[1].ProxyAuthorization, 1)
			assert.Contains(t, reqs[1].ProxyAuthorization[0], tt.want)
		})
	}
}

func TestNoAcceptableScheme(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newAuthProxy(t, digestWith("SHA-256"))
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Schemes: []proxyauth.Scheme{proxyauth.Basic()}})
	_, err := cl.Get(o.URL)
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
	assert.Contains(t, err.Error(), "the proxy offers Digest; allowed: Basic")
}

func TestRefuseCleartextBasic(t *testing.T) {
	o := newOrigin(t, true, nil)
	t.Run("plain proxy offering only Basic", func(t *testing.T) {
		p := newProxy(t, user, secret)
		cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, RefuseCleartextBasic: true,
			Base: trusting(o.Certificate())})
		_, err := cl.Get(o.URL)
		var pae *proxyauth.ProxyAuthError
		require.ErrorAs(t, err, &pae)
		assert.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
		assert.Contains(t, err.Error(), "password in clear")
		assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
		assert.False(t, pae.Rejected)
		for _, r := range p.Requests() {
			assert.Empty(t, r.ProxyAuthorization, "no Basic credentials were sent")
		}
	})
	t.Run("plain proxy offering Digest too", func(t *testing.T) {
		p := newAuthProxy(t, proxyauthtest.Multi(proxyauthtest.Basic{}, digestWith("MD5")))
		cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, RefuseCleartextBasic: true,
			Base: trusting(o.Certificate())})
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
		for _, r := range p.Requests() {
			assert.NotEqual(t, "Basic", r.Scheme)
		}
	})
	t.Run("TLS proxy", func(t *testing.T) {
		p := proxyauthtest.NewTLSProxy(user, secret)
		t.Cleanup(p.Close)
		cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, RefuseCleartextBasic: true,
			Base: trusting(o.Certificate(), p.Certificate())})
		_, _, err := get(cl, o.URL)
		require.NoError(t, err, "Basic inside TLS to the proxy is allowed")
	})
}

// bearerAuth is a proxy that takes a Bearer token.
type bearerAuth struct{ token string }

func (b bearerAuth) Challenges() []string { return []string{`Bearer realm="tokens"`} }
func (b bearerAuth) Authorized(r *http.Request, _ []proxyauthtest.Credentials) bool {
	return r.Header.Get("Proxy-Authorization") == "Bearer "+b.token
}

func TestBearerScheme(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newAuthProxy(t, bearerAuth{token: "tok.en-123"})
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Schemes: []proxyauth.Scheme{proxyauth.Bearer()},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			return proxyauth.Credentials{Password: "tok.en-123"}, nil
		}, Base: trusting(o.Certificate())})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	reqs := p.Requests()
	require.Len(t, reqs, 1, "the token is sent at once")
	assert.Equal(t, []string{"Bearer tok.en-123"}, reqs[0].ProxyAuthorization)
	o.assertNoProxyAuth(t, "tok.en-123")
}

// vendorScheme is a scheme of the user's own, through the public interface.
type vendorScheme struct{}

func (vendorScheme) Name() string                     { return "X-Vendor" }
func (vendorScheme) Strength(proxyauth.Challenge) int { return 5 }
func (vendorScheme) Start(c *proxyauth.Challenge, creds proxyauth.Credentials) (proxyauth.Authorizer, error) {
	if c == nil {
		return nil, nil
	}
	return vendorAuthorizer(c.Params["seed"] + ":" + creds.Password), nil
}

type vendorAuthorizer string

func (v vendorAuthorizer) Authorize(r proxyauth.AuthRequest) (string, error) {
	return "X-Vendor " + strings.ToLower(r.Method) + "/" + string(v), nil
}

type vendorAuth struct{}

func (vendorAuth) Challenges() []string { return []string{`X-Vendor seed="s1"`} }
func (vendorAuth) Authorized(r *http.Request, _ []proxyauthtest.Credentials) bool {
	return r.Header.Get("Proxy-Authorization") == "X-Vendor "+strings.ToLower(r.Method)+"/s1:"+secret
}

func TestCustomScheme(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newAuthProxy(t, vendorAuth{})
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Schemes: []proxyauth.Scheme{vendorScheme{}, proxyauth.Basic()}, Base: trusting(o.Certificate())})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	reqs := p.Requests()
	require.Len(t, reqs, 2, "Basic first, then the vendor scheme the proxy asked for")
	assert.Equal(t, []string{"X-Vendor connect/s1:" + secret}, reqs[1].ProxyAuthorization)
}

func TestSchemesConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		schemes []proxyauth.Scheme
		want    string
	}{
		{"empty", []proxyauth.Scheme{}, "empty"},
		{"nil entry", []proxyauth.Scheme{nil}, "Schemes[0]"},
		{"duplicate", []proxyauth.Scheme{proxyauth.Basic(), proxyauth.Basic()}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := proxyauth.New(proxyauth.Config{Proxies: []string{"http://proxy.test:3128"}, Schemes: tt.schemes})
			var ce *proxyauth.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	_, err := proxyauth.New(proxyauth.Config{Proxies: []string{"http://proxy.test:3128"}, MaxAuthAttempts: -1})
	var ce *proxyauth.ConfigError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "MaxAuthAttempts", ce.Field)
}

func TestSOCKS5Refresh(t *testing.T) {
	o := newOrigin(t, true, nil)
	s := proxyauthtest.NewSOCKS5Proxy(user, "new")
	t.Cleanup(s.Close)
	var calls atomic.Int32
	cl := client(t, proxyauth.Config{Proxies: []string{s.URL}, Credentials: oldThenNew(&calls), Base: trusting(o.Certificate())})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, int32(2), calls.Load())
	reqs := s.Requests()
	require.Len(t, reqs, 2)
	assert.False(t, reqs[0].Authorized)
	assert.True(t, reqs[1].Authorized)
}

func TestDigestVariants(t *testing.T) {
	variants := []struct {
		name string
		set  func(d *proxyauthtest.Digest)
		want string // in the Proxy-Authorization the proxy accepted
	}{
		{"auth-int only", func(d *proxyauthtest.Digest) { d.QOP = []string{"auth-int"} }, "qop=auth-int"},
		{"auth and auth-int offered", func(d *proxyauthtest.Digest) { d.QOP = []string{"auth", "auth-int"} }, "qop=auth,"},
		{"RFC 2069, no qop", func(d *proxyauthtest.Digest) { d.QOP = []string{} }, `response="`},
		{"userhash", func(d *proxyauthtest.Digest) { d.UserHash = true }, "userhash=true"},
		{"opaque", func(d *proxyauthtest.Digest) { d.Opaque = "op/aq+ue=" }, `opaque="op/aq+ue="`},
	}
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			for _, v := range variants {
				t.Run(v.name, func(t *testing.T) {
					o, bodies := recordingOrigin(t, tt.tls)
					d := digestWith("SHA-256")
					v.set(d)
					p := newAuthProxy(t, d)
					cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
						WaitForChallenge: true, Base: trusting(o.Certificate())})
					resp, err := cl.Post(o.URL+"/up", "text/plain", strings.NewReader("body bytes"))
					require.NoError(t, err)
					resp.Body.Close()
					assert.Equal(t, http.StatusOK, resp.StatusCode)
					assert.Equal(t, []string{"body bytes"}, bodies())
					reqs := p.Requests()
					require.Len(t, reqs, 2)
					assert.Contains(t, reqs[1].ProxyAuthorization[0], v.want)
					if v.name == "RFC 2069, no qop" {
						assert.NotContains(t, reqs[1].ProxyAuthorization[0], "nc=")
					}
					if v.name == "userhash" {
						assert.NotContains(t, reqs[1].ProxyAuthorization[0], `username="`+user+`"`)
					}
				})
			}
		})
	}
}

func TestDigestAuthIntNeedsReplayableBody(t *testing.T) {
	o, bodies := recordingOrigin(t, false)
	d := digestWith("SHA-256")
	d.QOP = []string{"auth-int"}
	p := newAuthProxy(t, d)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, WaitForChallenge: true})
	_, _, err := get(cl, o.URL) // learn the challenge
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, o.URL, onceReader{strings.NewReader("stream")})
	require.NoError(t, err)
	_, err = cl.Do(req)
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.Contains(t, err.Error(), "auth-int")
	assert.Equal(t, []string{""}, bodies(), "only the GET reached the origin")
}
