package proxyauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

const (
	ntlmUser = `CORP\alice`
	ntlmPass = "s3cret-ntlm"
)

// legs returns, for each request the proxy received, its method, its
// scheme and its NTLM leg, as "CONNECT NTLM/1".
func legs(p *proxyauthtest.Proxy) []string {
	var out []string
	for _, r := range p.Requests() {
		s := r.Method + " " + r.Scheme
		if r.Leg != 0 {
			s += fmt.Sprintf("/%d", r.Leg)
		}
		out = append(out, strings.TrimSpace(s))
	}
	return out
}

// atOnce runs f n times at once and returns the errors.
func atOnce(n int, f func() error) []error {
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f()
		}()
	}
	wg.Wait()
	return errs
}

// ntlmLegs returns what an NTLM proxy receives for requests of a client
// whose first request goes without credentials: for a tunnel, that CONNECT
// and the two legs; for plain requests, the first, the HEAD leg and the
// request carrying the AUTHENTICATE, then after more requests on the
// authenticated connection.
func ntlmLegs(tunnel bool, after int) []string {
	if tunnel {
		return []string{"CONNECT", "CONNECT NTLM/1", "CONNECT NTLM/3"}
	}
	want := []string{"GET", "HEAD NTLM/1", "GET NTLM/3"}
	for range after {
		want = append(want, "GET")
	}
	return want
}

// TestNTLM sends three requests through a proxy that verifies NTLMv2, with
// the default schemes: the first goes without credentials (Basic does not
// go first with a domain account), and is answered in the two NTLM legs on
// one connection; the later ones go on the authenticated connection
// without any Proxy-Authorization. The origin sees no credentials, and no
// request but the caller's.
func TestNTLM(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(p.Close)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, ntlmUser, ntlmPass)}, Base: trusting(o.Certificate())})
			for i := 0; i < 3; i++ {
				body, resp, err := get(cl, o.URL+"/page")
				require.NoError(t, err, "request %d", i)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, "hello from origin", body)
			}
			want := ntlmLegs(tt.tunnel, 2)
			assert.Equal(t, want, legs(p))
			for _, r := range p.Requests()[len(want)-1:] {
				assert.True(t, r.Authorized, "%s %s", r.Method, r.Target)
			}
			assert.Len(t, o.received(), 3, "the origin got the three requests, no handshake")
			o.assertNoProxyAuth(t, ntlmPass)
		})
	}
}

// TestNTLMOnly lists NTLM alone: nothing goes before the proxy asks, and
// each username form is accepted.
func TestNTLMOnly(t *testing.T) {
	for _, name := range []string{`CORP\alice`, "alice@corp", "alice"} {
		for _, tt := range targets {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				o := newOrigin(t, tt.tls, nil)
				p := proxyauthtest.NewNTLMProxy(`CORP\alice`, ntlmPass)
				t.Cleanup(p.Close)
				p.Authenticator().(*proxyauthtest.NTLM).Domain = "CORP"
				cl := client(t, proxyauth.Config{
					Proxies: []string{withUser(t, p.URL, name, ntlmPass)},
					Schemes: []proxyauth.Scheme{proxyauth.NTLM()},
					Base:    trusting(o.Certificate()),
				})
				_, resp, err := get(cl, o.URL)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				assert.Equal(t, ntlmLegs(tt.tunnel, 0), legs(p))
			})
		}
	}
}

// TestNTLMWrongPassword: the proxy refuses the password; the error is the
// typed one with what the proxy offered, and the password is never sent
// again, neither by this request nor by later ones, nor by 20 sent at
// once.
func TestNTLMWrongPassword(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(p.Close)
			cl := client(t, proxyauth.Config{
				Proxies: []string{withUser(t, p.URL, ntlmUser, "wrong")},
				Schemes: []proxyauth.Scheme{proxyauth.NTLM()},
				Base:    trusting(o.Certificate()),
			})
			errs := atOnce(20, func() error { _, _, err := get(cl, o.URL); return err })
			refused := 0
			for _, err := range errs {
				var pae *proxyauth.ProxyAuthError
				require.ErrorAs(t, err, &pae)
				assert.Equal(t, tt.tunnel, pae.Tunnel)
				if pae.Rejected {
					refused++
					assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
					require.NotEmpty(t, pae.Challenges)
					assert.Equal(t, "NTLM", pae.Challenges[0].Scheme)
				} else {
					assert.ErrorIs(t, err, proxyauth.ErrCredentialsRefused)
				}
				assert.NotContains(t, err.Error(), "wrong")
			}
			assert.Equal(t, 1, refused, "one request had the password refused")
			_, _, err := get(cl, o.URL)
			assert.ErrorIs(t, err, proxyauth.ErrCredentialsRefused)
			authenticates := 0
			for _, l := range legs(p) {
				if strings.HasSuffix(l, "NTLM/3") {
					authenticates++
				}
			}
			assert.Equal(t, 1, authenticates, "AUTHENTICATE messages the proxy got: %v", legs(p))
			assert.Empty(t, o.received())
		})
	}
}

// oldThenNewPassword returns a CredentialsFunc that gives a wrong password
// first and the right one from then on, counting its calls.
func oldThenNewPassword(calls *atomic.Int32) proxyauth.CredentialsFunc {
	return func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		if calls.Add(1) == 1 {
			return proxyauth.Credentials{Username: ntlmUser, Password: "old"}, nil
		}
		return proxyauth.Credentials{Username: ntlmUser, Password: ntlmPass}, nil
	}
}

// refusedAuthenticates counts the AUTHENTICATE messages p refused.
func refusedAuthenticates(p *proxyauthtest.Proxy) int {
	n := 0
	for _, r := range p.Requests() {
		if r.Leg == 3 && !r.Authorized {
			n++
		}
	}
	return n
}

// TestNTLMRefresh: a refused password makes the CredentialsFunc give a
// new one, once for 20 requests sent at once, and all then succeed.
func TestNTLMRefresh(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(p.Close)
			var calls atomic.Int32
			creds := oldThenNewPassword(&calls)
			base := trusting(o.Certificate())
			base.MaxIdleConnsPerHost = 32
			cl := client(t, proxyauth.Config{
				Proxies:     []string{p.URL},
				Credentials: creds,
				Schemes:     []proxyauth.Scheme{proxyauth.NTLM()},
				Base:        base,
			})
			errs := atOnce(20, func() error { _, _, err := get(cl, o.URL); return err })
			for i, err := range errs {
				assert.NoError(t, err, "request %d", i)
			}
			assert.Equal(t, int32(2), calls.Load(), "the credentials function is asked twice: at first, and once after the refusal")
			assert.Equal(t, 1, refusedAuthenticates(p), "the old password went once: %v", legs(p))
			assert.Len(t, o.received(), 20)
		})
	}
}

// TestNTLMRefusedWhileHeld: a request that took the old password before
// the proxy refused it, and reaches the proxy only once the new one was
// accepted, does not send the old one again: it goes with the new one.
func TestNTLMRefusedWhileHeld(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(p.Close)
			var calls atomic.Int32
			creds := oldThenNewPassword(&calls)
			// The request to /late is held after the proxy's first
			// challenge, when it has taken the old password, and before
			// it sends it.
			held, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			hooks := proxyauth.Hooks{AttemptStart: func(i proxyauth.AttemptInfo) {
				if strings.HasSuffix(i.Target, "/late") && i.Attempt == 2 {
					once.Do(func() {
						close(held)
						select {
						case <-release:
						case <-time.After(time.Minute):
						}
					})
				}
			}}
			cl := client(t, proxyauth.Config{
				Proxies:     []string{p.URL},
				Credentials: creds,
				Schemes:     []proxyauth.Scheme{proxyauth.NTLM()},
				Base:        trusting(o.Certificate()),
				Hooks:       hooks,
			})
			late := make(chan error, 1)
			go func() { _, _, err := get(cl, o.URL+"/late"); late <- err }()
			select {
			case <-held:
			case err := <-late:
				t.Fatalf("the request to /late ended before it was held: %v", err)
			}
			// Meanwhile the old password is refused and the new one
			// accepted.
			_, resp, err := get(cl, o.URL+"/now")
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			// The request to /late needs a connection of its own, as
			// when others hold the authenticated ones.
			cl.CloseIdleConnections()
			close(release)
			require.NoError(t, <-late)

			assert.Equal(t, int32(2), calls.Load(), "the credentials function is asked twice")
			assert.Equal(t, 1, refusedAuthenticates(p), "the old password went once: %v", legs(p))
			assert.Len(t, o.received(), 2)
		})
	}
}

// TestNTLMFallthrough: a scheme that cannot start here gives way to the
// next one the proxy offers, without a request being spent on it; when
// none can, the typed error says why each was skipped, and later requests
// are not sent at all.
func TestNTLMFallthrough(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := proxyauthtest.NewUnstartedProxy("bob", "pw")
	p.Auth = proxyauthtest.Multi(&proxyauthtest.NTLM{}, proxyauthtest.Basic{})
	p.Start()
	t.Cleanup(p.Close)
	broken := failingScheme{name: "NTLM", err: errors.New("no ticket here")}

	cl := client(t, proxyauth.Config{
		Proxies:          []string{withUser(t, p.URL, "bob", "pw")},
		Schemes:          []proxyauth.Scheme{broken, proxyauth.Basic()},
		WaitForChallenge: true,
		Base:             trusting(o.Certificate()),
	})
	_, resp, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, []string{"CONNECT", "CONNECT Basic"}, legs(p))

	p.ResetRequests()
	cl = client(t, proxyauth.Config{
		Proxies:          []string{withUser(t, p.URL, "bob", "pw")},
		Schemes:          []proxyauth.Scheme{broken},
		WaitForChallenge: true,
		Base:             trusting(o.Certificate()),
	})
	for i := 0; i < 2; i++ {
		_, _, err = get(cl, o.URL)
		var pae *proxyauth.ProxyAuthError
		require.ErrorAs(t, err, &pae)
		assert.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
		assert.Contains(t, err.Error(), "NTLM: no ticket here")
	}
	assert.Equal(t, []string{"CONNECT"}, legs(p), "only the first request reached the proxy")
}

// failingScheme is a scheme that cannot start, as Negotiate without a
// ticket.
type failingScheme struct {
	name string
	err  error
}

func (s failingScheme) Name() string                   { return s.name }
func (failingScheme) Strength(proxyauth.Challenge) int { return 90 }
func (s failingScheme) Start(c *proxyauth.Challenge, _ proxyauth.Credentials) (proxyauth.Authorizer, error) {
	if c == nil {
		return nil, nil
	}
	return nil, s.err
}

// TestBasicFirstOnlyWithoutDomain: Basic goes before any challenge with a
// plain username, saving a round trip, but not with a "DOMAIN\user" one,
// whose password is a Windows domain account's.
func TestBasicFirstOnlyWithoutDomain(t *testing.T) {
	o := newOrigin(t, false, nil)
	for _, tt := range []struct {
		user string
		want []string
	}{
		{"alice", []string{"GET Basic"}},
		{`CORP\alice`, []string{"GET", "GET Basic"}},
	} {
		t.Run(tt.user, func(t *testing.T) {
			p := newProxy(t, tt.user, secret)
			cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, tt.user, secret)}})
			_, resp, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, tt.want, legs(p))
		})
	}
}
