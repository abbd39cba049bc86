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

// schemesReceived lists the scheme of every request the proxy received,
// "" for one without credentials.
func schemesReceived(p *proxyauthtest.Proxy) []string {
	var out []string
	for _, r := range p.Requests() {
		out = append(out, r.Scheme)
	}
	return out
}

// A proxy that asked for Digest alone never gets Basic again: not with a
// wrong or rotated password, not with refreshed credentials.
func TestNoBasicAfterDigestOnlyChallenge(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				name string
				cfg  func(p *proxyauthtest.Proxy, calls *atomic.Int32) proxyauth.Config
			}{
				{"wrong password", func(p *proxyauthtest.Proxy, _ *atomic.Int32) proxyauth.Config {
					return proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}}
				}},
				{"callback refreshing wrong passwords", func(p *proxyauthtest.Proxy, calls *atomic.Int32) proxyauth.Config {
					return proxyauth.Config{Proxies: []string{p.URL}, Credentials: wrongEachTime(calls)}
				}},
			} {
				t.Run(c.name, func(t *testing.T) {
					o := newOrigin(t, tt.tls, nil)
					p := newAuthProxy(t, digestWith("SHA-256"))
					var calls atomic.Int32
					cfg := c.cfg(p, &calls)
					cfg.Base = trusting(o.Certificate())
					cl := client(t, cfg)
					for i := 0; i < 3; i++ {
						_, _, err := get(cl, o.URL)
						var pae *proxyauth.ProxyAuthError
						require.ErrorAs(t, err, &pae, "request %d", i)
						assert.True(t, pae.Rejected)
					}
					got := schemesReceived(p)
					require.NotEmpty(t, got)
					assert.Equal(t, "Basic", got[0], "before any challenge, Basic goes at once")
					digests := 0
					for i, s := range got[1:] {
						assert.NotEqual(t, "Basic", s, "request %d to the proxy, after it asked for Digest only: %v", i+1, got)
						if s == "Digest" {
							digests++
						}
					}
					assert.GreaterOrEqual(t, digests, 3, "each call answered the challenge with Digest: %v", got)
					o.assertNoProxyAuth(t, "wrong")
				})
			}
		})
	}
}

// A proxy that accepted Basic and then asks for Digest alone gets no more
// Basic, even though Basic was what it accepted last.
func TestNoBasicOnceProxySwitchesToDigest(t *testing.T) {
	o := newOrigin(t, false, nil)
	sw := &switchAuth{d: digestWith("SHA-256")}
	sw.basic.Store(true)
	p := newAuthProxy(t, sw)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong-for-digest")}})
	p.SetCredentials(proxyauthtestCreds(user, "wrong-for-digest"))
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	p.SetCredentials(proxyauthtestCreds(user, secret)) // the password changed, and the proxy wants Digest now
	sw.basic.Store(false)
	p.ResetRequests()
	for i := 0; i < 3; i++ {
		_, _, err := get(cl, o.URL)
		require.ErrorIs(t, err, proxyauth.ErrProxyAuthRequired)
	}
	got := schemesReceived(p)
	require.NotEmpty(t, got)
	assert.Equal(t, "Basic", got[0], "the session it had accepted")
	for i, s := range got[1:] {
		assert.NotEqual(t, "Basic", s, "request %d to the proxy after it asked for Digest only: %v", i+1, got)
	}
}

// switchAuth asks for Basic while basic is set, and for Digest otherwise.
type switchAuth struct {
	basic atomic.Bool
	d     *proxyauthtest.Digest
}

func (s *switchAuth) Challenges() []string {
	if s.basic.Load() {
		return proxyauthtest.Basic{}.Challenges()
	}
	return s.d.Challenges()
}

func (s *switchAuth) Authorized(r *http.Request, accepted []proxyauthtest.Credentials) bool {
	return s.Verify(r, accepted).Authorized
}

func (s *switchAuth) Verify(r *http.Request, accepted []proxyauthtest.Credentials) proxyauthtest.Verdict {
	if s.basic.Load() {
		return proxyauthtest.Verdict{Authorized: proxyauthtest.Basic{}.Authorized(r, accepted)}
	}
	return s.d.Verify(r, accepted)
}

// A proxy that accepted Digest and then asks for Basic is refused by
// default, without Basic ever reaching it; AllowBasicDowngrade lets it.
func TestBasicDowngradeRefused(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			for _, allow := range []bool{false, true} {
				name := "refused"
				if allow {
					name = "allowed"
				}
				t.Run(name, func(t *testing.T) {
					o := newOrigin(t, tt.tls, nil)
					sw := &switchAuth{d: digestWith("SHA-256")}
					p := newAuthProxy(t, sw)
					cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
						AllowBasicDowngrade: allow, Base: trusting(o.Certificate())})
					_, _, err := get(cl, o.URL)
					require.NoError(t, err)
					require.Equal(t, "Digest", p.Requests()[len(p.Requests())-1].Scheme)

					sw.basic.Store(true)
					p.ResetRequests()
					for i := 0; i < 2; i++ {
						cl.CloseIdleConnections() // a new CONNECT for https
						_, _, err = get(cl, o.URL)
						if allow {
							require.NoError(t, err, "request %d", i)
							continue
						}
						var pae *proxyauth.ProxyAuthError
						require.ErrorAs(t, err, &pae, "request %d", i)
						assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
						assert.ErrorIs(t, err, proxyauth.ErrSchemeDowngrade)
						assert.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
						assert.Contains(t, err.Error(), "AllowBasicDowngrade")
						assert.NotContains(t, err.Error(), secret)
						d := proxyauth.Diagnose(nil, err)
						assert.Equal(t, proxyauth.LayerProxyAuth, d.Layer)
						assert.Contains(t, d.Summary, "downgrade")
						assert.Contains(t, strings.Join(d.Hints, "\n"), "AllowBasicDowngrade")
					}
					got := schemesReceived(p)
					if allow {
						assert.Contains(t, got, "Basic")
						return
					}
					assert.NotContains(t, got, "Basic", "Basic reached a proxy that had accepted Digest: %v", got)
				})
			}
		})
	}
}

// An origin inside a tunnel cannot steer the proxy's Digest nonce: only
// the CONNECT's answer counts.
func TestOriginCannotSteerProxyNonce(t *testing.T) {
	o := newOrigin(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authentication-Info", `nextnonce="chosen-by-the-origin"`)
		w.Write([]byte("hello from origin"))
	})
	p := newAuthProxy(t, digestWith("SHA-256"))
	var rejected atomic.Int32
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, WaitForChallenge: true, Base: trusting(o.Certificate()),
		Credentials: func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			if r.Rejected {
				rejected.Add(1)
			}
			return proxyauth.Credentials{Username: user, Password: secret}, nil
		}})
	for i := 0; i < 3; i++ {
		body, _, err := get(cl, o.URL)
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, "hello from origin", body)
		cl.CloseIdleConnections() // a new CONNECT each time
	}
	assert.Zero(t, rejected.Load(), "the callback was told the proxy rejected credentials")
	reqs := p.Requests()
	require.Len(t, reqs, 4, "a challenge, then three CONNECTs answered with the proxy's nonce")
	for i, r := range reqs[1:] {
		assert.True(t, r.Authorized, "CONNECT %d", i+1)
		for _, v := range r.ProxyAuthorization {
			assert.False(t, strings.Contains(v, "chosen-by-the-origin"), "CONNECT %d used the origin's nonce", i+1)
		}
	}
}
