package proxyauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// vault hands out the current password of a rotating proxy account and
// counts how often it was asked.
type vault struct {
	mu       sync.Mutex
	password string
	calls    int
	requests []proxyauth.CredentialsRequest
}

func (v *vault) rotate(p *proxyauthtest.Proxy, password string) {
	v.mu.Lock()
	v.password = password
	v.mu.Unlock()
	p.SetCredentials(proxyauthtest.Credentials{Username: user, Password: password})
}

func (v *vault) credentials(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.calls++
	v.requests = append(v.requests, r)
	return proxyauth.Credentials{Username: user, Password: v.password}, nil
}

func (v *vault) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls
}

// TestRotationUnderLoad rotates the proxy's password three times while 200
// goroutines send requests through one Transport: every request succeeds,
// and the credentials callback runs once at the start and once per
// rotation.
func TestRotationUnderLoad(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, user, "pass-0")
			v := &vault{password: "pass-0"}
			base := trusting(o.Certificate())
			if !tt.tunnel {
				// Every plain request carries the credentials, so
				// connections can be kept; a tunnel is authenticated
				// once, so the https case needs new tunnels to see a
				// rotation, which net/http's default of 2 idle
				// connections per host gives.
				base.MaxIdleConnsPerHost = 256
			}
			cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials, Base: base})
			const (
				workers   = 200
				each      = 5
				total     = workers * each
				rotations = 3
			)
			done := make(chan error, total)
			for w := 0; w < workers; w++ {
				go func() {
					for i := 0; i < each; i++ {
						_, resp, err := get(cl, o.URL)
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %s", resp.Status)
						}
						done <- err
					}
				}()
			}
			// Rotate after each quarter of the requests has completed:
			// more than the 200 that can be in flight, so requests start
			// between two rotations and see each one.
			failures := 0
			for i := 1; i <= total; i++ {
				if err := <-done; err != nil {
					failures++
					t.Errorf("request %d: %v", i, err)
				}
				if i%(total/(rotations+1)) == 0 && i < total {
					v.rotate(p, "pass-"+strconv.Itoa(i))
				}
			}
			assert.Zero(t, failures)
			assert.Equal(t, 1+rotations, v.count(), "callback calls: one to start, one per rotation")
			v.mu.Lock()
			for i, r := range v.requests {
				assert.Equal(t, i > 0, r.Rejected, "call %d: Rejected", i)
				if i > 0 {
					require.NotEmpty(t, r.Challenges, "call %d: the proxy's challenges", i)
					assert.Equal(t, "Basic", r.Challenges[0].Scheme)
				}
			}
			v.mu.Unlock()
		})
	}
}

// wrongEachTime returns new wrong credentials on every call.
func wrongEachTime(calls *atomic.Int32) proxyauth.CredentialsFunc {
	return func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		n := calls.Add(1)
		return proxyauth.Credentials{Username: user, Password: "wrong-" + strconv.Itoa(int(n))}, nil
	}
}

func TestWrongCredentialsBoundedAttempts(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			cases := []struct {
				name      string
				max       int
				fixed     bool
				wantSent  int
				wantCalls int32
			}{
				{"default bound", 0, false, 3, 3},
				{"bound 5", 5, false, 5, 5},
				{"bound 1", 1, false, 1, 1},
				{"fixed credentials are not resent", 5, true, 1, 0},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					p := newProxy(t, user, secret)
					var calls atomic.Int32
					cfg := proxyauth.Config{Proxies: []string{p.URL}, MaxAuthAttempts: c.max, Base: trusting(o.Certificate())}
					if c.fixed {
						cfg.Proxies[0] = withUser(t, p.URL, user, "wrong")
					} else {
						cfg.Credentials = wrongEachTime(&calls)
					}
					_, err := client(t, cfg).Get(o.URL)
					var pae *proxyauth.ProxyAuthError
					require.ErrorAs(t, err, &pae)
					assert.Equal(t, c.wantSent, pae.Attempts)
					assert.Len(t, p.Requests(), c.wantSent, "requests the proxy received")
					assert.Equal(t, c.wantCalls, calls.Load())
					assert.True(t, pae.Rejected)
					assert.Equal(t, tt.tunnel, pae.Tunnel)
					assert.Empty(t, o.received())
				})
			}
		})
	}
}

func TestRefreshReturningSameCredentialsStops(t *testing.T) {
	p := newProxy(t, user, secret)
	var calls atomic.Int32
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, MaxAuthAttempts: 5,
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			calls.Add(1)
			return proxyauth.Credentials{Username: user, Password: "always-wrong"}, nil
		}})
	_, err := cl.Get("http://origin.test/")
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.Equal(t, 1, pae.Attempts, "the same credentials are not sent twice")
	assert.Equal(t, int32(2), calls.Load())
	assert.Len(t, p.Requests(), 1)
	assert.Contains(t, err.Error(), "returned the credentials the proxy had just rejected")
}

func TestCallbackErrorDuringRefresh(t *testing.T) {
	p := newProxy(t, user, secret)
	var calls atomic.Int32
	locked := errors.New("account locked")
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			if calls.Add(1) > 1 {
				return proxyauth.Credentials{}, locked
			}
			return proxyauth.Credentials{Username: user, Password: "wrong"}, nil
		}})
	_, err := cl.Get("http://origin.test/")
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.ErrorIs(t, err, locked)
	assert.Equal(t, 1, pae.Attempts)
	assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
}

func TestContextEndsDuringRefresh(t *testing.T) {
	p := newProxy(t, user, secret)
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var calls atomic.Int32
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			if calls.Add(1) > 1 {
				cancel() // the caller gives up while the refresh runs
				<-release
			}
			return proxyauth.Credentials{Username: user, Password: "wrong"}, nil
		}})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://origin.test/", nil)
	require.NoError(t, err)
	_, err = cl.Do(req)
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, pae.Attempts)
}

// recordingOrigin answers with the body it received and records every body.
func recordingOrigin(t *testing.T, tlsOn bool) (*origin, func() []string) {
	var mu sync.Mutex
	var bodies []string
	o := newOrigin(t, tlsOn, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Write(b)
	})
	return o, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), bodies...)
	}
}

// oldThenNew answers "old" on its first call and "new" after.
func oldThenNew(calls *atomic.Int32) proxyauth.CredentialsFunc {
	return func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		if calls.Add(1) == 1 {
			return proxyauth.Credentials{Username: user, Password: "old"}, nil
		}
		return proxyauth.Credentials{Username: user, Password: "new"}, nil
	}
}

func TestPOSTBodyArrivesOnceAfterRefresh(t *testing.T) {
	payload := strings.Repeat("0123456789abcdef", 64<<10/16) // 64 KiB
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o, bodies := recordingOrigin(t, tt.tls)
			p := newProxy(t, user, "new")
			var calls atomic.Int32
			tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{p.URL}, Credentials: oldThenNew(&calls), Base: trusting(o.Certificate())})
			require.NoError(t, err)
			t.Cleanup(tr.CloseIdleConnections)
			req, err := http.NewRequest(http.MethodPost, o.URL+"/upload", strings.NewReader(payload))
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.True(t, bytes.Equal([]byte(payload), got), "echoed body")
			assert.Equal(t, []string{payload}, bodies(), "the origin received the body whole, once")
			assert.Equal(t, int32(2), calls.Load())
			assert.Len(t, p.Requests(), 2)
		})
	}
}

// onceReader is a body that can be read only once: http.NewRequest sets no
// GetBody for it.
type onceReader struct{ io.Reader }

func TestNonReplayableBody(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o, bodies := recordingOrigin(t, tt.tls)
			p := newProxy(t, user, "new")
			var calls atomic.Int32
			cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: wrongEachTime(&calls), Base: trusting(o.Certificate())})
			body := &trackedBody{Reader: strings.NewReader("precious stream")}
			req, err := http.NewRequest(http.MethodPost, o.URL, onceReader{body})
			require.NoError(t, err)
			req.Body = body
			require.Nil(t, req.GetBody)
			_, err = cl.Do(req)
			var pae *proxyauth.ProxyAuthError
			require.ErrorAs(t, err, &pae)
			assert.ErrorIs(t, err, proxyauth.ErrBodyNotReplayable)
			assert.Contains(t, err.Error(), "GetBody is nil")
			assert.Equal(t, 1, pae.Attempts)
			assert.Len(t, p.Requests(), 1, "nothing was resent")
			assert.Empty(t, bodies(), "the origin saw nothing")
			assert.Equal(t, int32(1), body.closes.Load())
		})
	}
}

func TestCredentialsCachedAndSentAtOnce(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	v := &vault{password: secret}
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials})
	for i := 0; i < 3; i++ {
		_, _, err := get(cl, o.URL)
		require.NoError(t, err)
	}
	assert.Equal(t, 1, v.count())
	reqs := p.Requests()
	require.Len(t, reqs, 3, "no request needed a second attempt")
	for _, r := range reqs {
		assert.True(t, r.Authorized)
	}
	assert.Empty(t, v.requests[0].Challenges, "asked before any challenge")
}

func TestWaitForChallenge(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newProxy(t, user, secret)
			v := &vault{password: secret}
			cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials,
				WaitForChallenge: true, Base: trusting(o.Certificate())})
			for i := 0; i < 2; i++ {
				_, _, err := get(cl, o.URL)
				require.NoError(t, err)
				cl.CloseIdleConnections() // a new CONNECT for https
			}
			reqs := p.Requests()
			require.Len(t, reqs, 3, "one unauthenticated request, then credentials each time")
			assert.Empty(t, reqs[0].ProxyAuthorization, "nothing sent before the challenge")
			assert.Equal(t, []string{basic(user, secret)}, reqs[1].ProxyAuthorization)
			assert.Equal(t, []string{basic(user, secret)}, reqs[2].ProxyAuthorization, "accepted credentials are sent at once")
			require.Equal(t, 1, v.count())
			assert.False(t, v.requests[0].Rejected)
			require.Len(t, v.requests[0].Challenges, 1)
			assert.Equal(t, "proxyauthtest", v.requests[0].Challenges[0].Params["realm"])
		})
	}
}

// gotConn does a GET and reports whether it reused an idle connection.
func gotConn(t *testing.T, cl *http.Client, target string) (reused bool) {
	t.Helper()
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	require.NoError(t, err)
	resp, err := cl.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return reused
}

// TestCredentialChangeClosesIdleTunnels: a tunnel opened with the old
// credentials is not reused after they changed, so the next request proves
// the new ones on a new CONNECT.
func TestCredentialChangeClosesIdleTunnels(t *testing.T) {
	o := newOrigin(t, false, nil)
	so := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	v := &vault{password: secret}
	cl := client(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials, Base: trusting(so.Certificate())})
	gotConn(t, cl, so.URL)
	require.True(t, gotConn(t, cl, so.URL), "the tunnel is reused while nothing changes")
	v.rotate(p, "rotated")
	gotConn(t, cl, o.URL) // 407, refresh, success
	require.Equal(t, 2, v.count())
	p.ResetRequests()
	assert.False(t, gotConn(t, cl, so.URL), "the old tunnel was closed")
	reqs := p.Requests()
	require.Len(t, reqs, 1)
	assert.Equal(t, "CONNECT", reqs[0].Method)
	assert.Equal(t, []string{basic(user, "rotated")}, reqs[0].ProxyAuthorization)
}

// TestCredentialChangeLeavesOtherProxiesAlone uses two proxies from the
// environment: a refresh for the http:// one leaves the idle tunnel
// through the https:// one in place.
func TestCredentialChangeLeavesOtherProxiesAlone(t *testing.T) {
	o := newOrigin(t, false, nil)
	so := newOrigin(t, true, nil)
	m := map[string]string{"origin.test:80": o.Listener.Addr().String(), "secure.test:443": so.Listener.Addr().String()}
	plainProxy, tunnelProxy := newMappedProxy(t, m), newMappedProxy(t, m)
	clearProxyEnv(t)
	t.Setenv("HTTP_PROXY", plainProxy.URL)
	t.Setenv("HTTPS_PROXY", tunnelProxy.URL)
	v := &vault{password: secret}
	base := trusting(so.Certificate())
	base.TLSClientConfig.ServerName = "example.com"
	cl := client(t, proxyauth.Config{Credentials: v.credentials, Base: base})
	gotConn(t, cl, "http://origin.test/")
	gotConn(t, cl, "https://secure.test/")
	v.rotate(plainProxy, "rotated")
	gotConn(t, cl, "http://origin.test/") // 407, refresh, success
	assert.Equal(t, 3, v.count(), "one call per proxy, one refresh")
	assert.True(t, gotConn(t, cl, "https://secure.test/"), "the other proxy's tunnel is still idle")
}
