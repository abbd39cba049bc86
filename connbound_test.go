package proxyauth_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// negotiateOnly is a proxy's authenticator that offers Negotiate and
// accepts nothing: what the Transport does when it cannot even start
// Kerberos is the point.
type negotiateOnly struct{}

func (negotiateOnly) Challenges() []string                                       { return []string{"Negotiate"} }
func (negotiateOnly) Authorized(*http.Request, []proxyauthtest.Credentials) bool { return false }

// noTicket returns Kerberos settings for a realm whose KDC refuses
// connections, with no credential cache: Negotiate cannot start.
func noTicket(t *testing.T) proxyauth.Kerberos {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	kdc := l.Addr().String()
	require.NoError(t, l.Close())
	dir := t.TempDir()
	conf := filepath.Join(dir, "krb5.conf")
	require.NoError(t, os.WriteFile(conf, []byte("[libdefaults]\n  default_realm = EXAMPLE.TEST\n  dns_lookup_kdc = false\n"+
		"  udp_preference_limit = 1\n[realms]\n  EXAMPLE.TEST = {\n    kdc = "+kdc+"\n  }\n"), 0o600))
	t.Setenv("KRB5CCNAME", "FILE:"+filepath.Join(dir, "krb5cc_missing"))
	return proxyauth.Kerberos{Config: conf}
}

// TestNegotiateFallsThroughToNTLM: a proxy offers Negotiate and NTLM;
// without a Kerberos ticket the request answers NTLM at once, without a
// request spent on Negotiate.
func TestNegotiateFallsThroughToNTLM(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewUnstartedProxy(ntlmUser, ntlmPass)
			p.Auth = proxyauthtest.Multi(negotiateOnly{}, &proxyauthtest.NTLM{})
			p.Start()
			t.Cleanup(p.Close)
			cl := client(t, proxyauth.Config{
				Proxies: []string{withUser(t, p.URL, ntlmUser, ntlmPass)},
				Schemes: []proxyauth.Scheme{proxyauth.Negotiate(noTicket(t)), proxyauth.NTLM()},
				Base:    trusting(o.Certificate()),
			})
			for i := 0; i < 2; i++ {
				_, resp, err := get(cl, o.URL)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			assert.Equal(t, ntlmLegs(tt.tunnel, 1), legs(p))
		})
	}
}

// TestNegotiateNoTicketDiagnose: with Negotiate alone and no ticket, the
// typed error says why, Diagnose hints at kinit, and a later request is
// not sent at all.
func TestNegotiateNoTicketDiagnose(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := proxyauthtest.NewUnstartedProxy(user, "pw")
	p.Auth = negotiateOnly{}
	p.Start()
	t.Cleanup(p.Close)
	cl := client(t, proxyauth.Config{
		Proxies: []string{p.URL},
		Schemes: []proxyauth.Scheme{proxyauth.Negotiate(noTicket(t))},
		Base:    trusting(o.Certificate()),
	})
	for i := 0; i < 2; i++ {
		_, _, err := get(cl, o.URL)
		var pae *proxyauth.ProxyAuthError
		require.ErrorAs(t, err, &pae)
		assert.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
		assert.Contains(t, err.Error(), "no Kerberos ticket")
		d := proxyauth.Diagnose(nil, err)
		assert.Equal(t, proxyauth.LayerProxyAuth, d.Layer)
		require.NotEmpty(t, d.Hints)
		assert.Equal(t, "no Kerberos ticket: run kinit or set Kerberos.Keytab", d.Hints[0], d.String())
	}
	assert.Equal(t, []string{"CONNECT"}, legs(p), "the second request was not sent")
}

// TestNTLMDiagnose: a refused NTLM password, and the request after it
// that is not sent, each get the hints that fit.
func TestNTLMDiagnose(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
	t.Cleanup(p.Close)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, ntlmUser, "wrong")}, Schemes: []proxyauth.Scheme{proxyauth.NTLM()}})
	_, _, err := get(cl, o.URL)
	d := proxyauth.Diagnose(nil, err)
	assert.Contains(t, d.Summary, "rejected the credentials", d.String())
	assert.Contains(t, strings.Join(d.Hints, "\n"), `DOMAIN\user`)
	_, _, err = get(cl, o.URL)
	d = proxyauth.Diagnose(nil, err)
	assert.Contains(t, d.Summary, "not sent", d.String())
	assert.Contains(t, strings.Join(d.Hints, "\n"), "locks after a few failed logins")
	assert.NotContains(t, d.String(), "wrong")
}

// TestNTLMNotBuiltInHint: a proxy that wants NTLM, with Schemes leaving
// it out, gets the hint to add it.
func TestNTLMNotBuiltInHint(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
	t.Cleanup(p.Close)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, ntlmUser, ntlmPass)}, Schemes: []proxyauth.Scheme{proxyauth.Digest()}})
	_, _, err := get(cl, o.URL)
	require.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
	d := proxyauth.Diagnose(nil, err)
	assert.Contains(t, strings.Join(d.Hints, "\n"), "proxyauth.NTLM()", d.String())
}

// TestNTLMPoolProbe: probes speak NTLM too: the proxy with the wrong
// password fails its probe as auth-failed, the right one is healthy, and
// requests fail over to it without going to the other.
func TestNTLMPoolProbe(t *testing.T) {
	o := newOrigin(t, true, nil)
	canary := newOrigin(t, false, nil)
	for _, probe := range []string{canary.Listener.Addr().String(), canary.URL + "/health"} {
		t.Run(probe, func(t *testing.T) {
			bad := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(bad.Close)
			good := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(good.Close)
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, bad.URL, ntlmUser, "wrong"), withUser(t, good.URL, ntlmUser, ntlmPass)},
				Schemes: []proxyauth.Scheme{proxyauth.NTLM()},
				Pool:    proxyauth.PoolConfig{Probe: probe, ProbeAtStart: true},
				Base:    trusting(o.Certificate()),
			}, nil)
			proxyauth.WaitForProbes(tr)
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateAuthFailed, proxyauth.StateHealthy}, statesOf(tr))
			_, resp, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			authenticates := 0
			for _, r := range bad.Requests() {
				if r.Leg == 3 {
					authenticates++
				}
			}
			assert.Equal(t, 1, authenticates, "the wrong password went to the proxy once, in the probe")
		})
	}
}

// TestNTLMForgottenLogin: a proxy that asks again on a connection it had
// authenticated has not refused the credentials: the request goes again,
// on a new connection with a new handshake, and the password is not
// marked as refused.
func TestNTLMForgottenLogin(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
	t.Cleanup(p.Close)
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, ntlmUser, ntlmPass)}, Schemes: []proxyauth.Scheme{proxyauth.NTLM()}})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	p.ResetRequests()
	p.RejectNext(1)
	for i := 0; i < 2; i++ {
		_, resp, err := get(cl, o.URL)
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	assert.Equal(t, ntlmLegs(false, 1), legs(p))
}

// TestNTLMObservabilityNeverShowsSecrets runs a refused NTLM password, a
// refreshed one and a request that is not sent through the logs and hooks:
// they name the scheme, and hold neither password nor any NTLM message.
func TestNTLMObservabilityNeverShowsSecrets(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(p.Close)
			var calls atomic.Int32
			c := &captured{counts: map[string]int{}}
			cl := client(t, c.config(proxyauth.Config{
				Proxies: []string{p.URL},
				Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
					if calls.Add(1) == 1 {
						return proxyauth.Credentials{Username: ntlmUser, Password: "old-secret"}, nil
					}
					return proxyauth.Credentials{Username: ntlmUser, Password: ntlmPass}, nil
				},
				Base: trusting(o.Certificate()),
			}))
			for i := 0; i < 2; i++ {
				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			all := c.logs.String() + strings.Join(c.events, "\n")
			assert.Contains(t, all, "NTLM")
			for _, secret := range []string{ntlmPass, "old-secret", "TlRMTVNTUA"} {
				assert.NotContains(t, all, secret)
			}
			assert.Positive(t, c.counts["challenge"])
		})
	}
}

// TestNTLMThroughTLSProxy: NTLM to an https:// proxy, whose connection is
// TLS before the legs start.
func TestNTLMThroughTLSProxy(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewUnstartedProxy(ntlmUser, ntlmPass)
			p.Auth = &proxyauthtest.NTLM{}
			p.StartTLS()
			t.Cleanup(p.Close)
			require.True(t, strings.HasPrefix(p.URL, "https://"))
			cl := client(t, proxyauth.Config{
				Proxies: []string{withUser(t, p.URL, ntlmUser, ntlmPass)},
				Schemes: []proxyauth.Scheme{proxyauth.NTLM()},
				Base:    trusting(o.Certificate(), p.Certificate()),
			})
			for i := 0; i < 2; i++ {
				_, resp, err := get(cl, o.URL)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			}
			assert.Equal(t, ntlmLegs(tt.tunnel, 1), legs(p))
		})
	}
}
