package proxyauth_test

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// wireLog checks Basic credentials as proxyauthtest.Basic does, and
// records the username of each request and the client address it came
// from, which tells the connections apart.
type wireLog struct {
	proxyauthtest.Basic
	mu   sync.Mutex
	seen []wireEntry
}

type wireEntry struct{ user, from string }

func (w *wireLog) Authorized(r *http.Request, accepted []proxyauthtest.Credentials) bool {
	asAuth := &http.Request{Header: http.Header{"Authorization": r.Header.Values("Proxy-Authorization")}}
	u, _, _ := asAuth.BasicAuth()
	w.mu.Lock()
	w.seen = append(w.seen, wireEntry{u, r.RemoteAddr})
	w.mu.Unlock()
	return w.Basic.Authorized(r, accepted)
}

// connections returns, for each username seen, the client addresses its
// requests came from, and how many requests it sent.
func (w *wireLog) connections() (map[string]map[string]bool, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	from, count := map[string]map[string]bool{}, map[string]int{}
	for _, e := range w.seen {
		if from[e.user] == nil {
			from[e.user] = map[string]bool{}
		}
		from[e.user][e.from] = true
		count[e.user]++
	}
	return from, count
}

// session names a gateway session in the username, as providers do.
func session(id string) func(string) string {
	return func(u string) string { return u + "-session-" + id }
}

// TestIdentitiesHaveRoutesOfTheirOwn sends requests as two identities and
// as the proxy's own through one proxy: each carries its own username on
// the wire and has connections of its own; a CredentialsFunc is asked once
// for all; released with their routes, the identities are made again
// without asking it.
func TestIdentitiesHaveRoutesOfTheirOwn(t *testing.T) {
	for _, tt := range targets {
		for _, viaFunc := range []bool{false, true} {
			name := tt.name + "/credentials-in-url"
			if viaFunc {
				name = tt.name + "/credentials-func"
			}
			t.Run(name, func(t *testing.T) {
				o := newOrigin(t, tt.tls, nil)
				log := &wireLog{}
				p := proxyauthtest.NewUnstartedProxy(user, secret)
				p.Auth = log
				p.Start()
				t.Cleanup(p.Close)
				p.AddCredentials(proxyauthtestCreds(user+"-session-a", secret), proxyauthtestCreds(user+"-session-b", secret))
				v := &vault{password: secret}
				cfg := proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())}
				if viaFunc {
					cfg.Proxies, cfg.Credentials = []string{p.URL}, v.credentials
				}
				_, tr := poolClient(t, cfg, nil)
				send := func(id string) {
					t.Helper()
					req, err := http.NewRequest(http.MethodGet, o.URL, nil)
					require.NoError(t, err)
					resp, err := proxyauth.SendAs(tr, 0, id, session(id), req)
					require.NoError(t, err, "as %q", id)
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					require.Equal(t, http.StatusOK, resp.StatusCode, "as %q", id)
				}
				for range 2 {
					send("a")
					send("b")
					send("")
				}
				assert.Equal(t, 2, proxyauth.Identities(tr, 0))
				assert.Equal(t, 3, proxyauth.LiveRoutes(tr))

				from, count := log.connections()
				names := []string{user, user + "-session-a", user + "-session-b"}
				require.Len(t, from, 3, "usernames on the wire: %v", count)
				all := map[string]bool{}
				for _, u := range names {
					want := 2 // one request to the proxy each
					if tt.tunnel {
						want = 1 // one tunnel, reused
					}
					assert.Equal(t, want, count[u], "requests with username %s", u)
					assert.Len(t, from[u], 1, "username %s came on one connection, reused", u)
					for a := range from[u] {
						all[a] = true
					}
				}
				assert.Len(t, all, 3, "no two identities shared a connection")

				proxyauth.ReleaseRoutes(tr)
				assert.Equal(t, 0, proxyauth.Identities(tr, 0), "an identity goes with its route")
				send("a")
				from, _ = log.connections()
				assert.Len(t, from[user+"-session-a"], 2, "made again, on a new connection")
				if viaFunc {
					assert.Equal(t, 1, v.count(), "the CredentialsFunc is asked once for the proxy, not per identity")
				}
			})
		}
	}
}

// TestIdentityRefusedRefreshesTheProxysCredentials has the proxy refuse an
// identity's credentials: the CredentialsFunc is asked once for new ones,
// which the identity and the proxy's own requests then use.
func TestIdentityRefusedRefreshesTheProxysCredentials(t *testing.T) {
	o := newOrigin(t, false, nil)
	log := &wireLog{}
	p := proxyauthtest.NewUnstartedProxy(user, secret)
	p.Auth = log
	p.Start()
	t.Cleanup(p.Close)
	p.AddCredentials(proxyauthtestCreds(user+"-session-a", secret))
	v := &vault{password: secret}
	_, tr := poolClient(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials}, nil)
	send := func(id string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, o.URL, nil)
		require.NoError(t, err)
		resp, err := proxyauth.SendAs(tr, 0, id, session(id), req)
		require.NoError(t, err, "as %q", id)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	require.Equal(t, http.StatusOK, send("a").StatusCode)
	v.rotate(p, "next")
	p.AddCredentials(proxyauthtestCreds(user+"-session-a", "next"))
	assert.Equal(t, http.StatusOK, send("a").StatusCode, "the refused identity got the proxy's new credentials")
	assert.Equal(t, 2, v.count(), "asked once at first, once after the refusal")
	assert.Equal(t, http.StatusOK, send("").StatusCode, "the proxy's own requests use them too")
	assert.Equal(t, 2, v.count())
	_, count := log.connections()
	assert.Equal(t, 3, count[user+"-session-a"], "sent, refused, sent again")
	assert.Equal(t, 1, count[user], "the proxy's own credentials were not refused first: they were new")
}

// TestIdentitiesReleasedDuringRequests releases the routes over and over
// while goroutines send as three identities: every request succeeds with
// its identity's credentials, and the CredentialsFunc is asked once.
func TestIdentitiesReleasedDuringRequests(t *testing.T) {
	const workers, each = 4, 30
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		p.AddCredentials(proxyauthtestCreds(session(id)(user), secret))
	}
	v := &vault{password: secret}
	_, tr := poolClient(t, proxyauth.Config{Proxies: []string{p.URL}, Credentials: v.credentials}, nil)
	stop, released := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(released)
		for n := 0; n < 10_000_000; n++ {
			select {
			case <-stop:
				return
			default:
				proxyauth.ReleaseRoutes(tr)
			}
		}
		<-stop
	}()
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := ids[(w+i)%len(ids)]
				req, err := http.NewRequest(http.MethodGet, o.URL, nil)
				if err != nil {
					errs <- err
					return
				}
				resp, err := proxyauth.SendAs(tr, 0, id, session(id), req)
				if err != nil {
					errs <- err
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("as %q: status %s", id, resp.Status)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-released
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, 1, v.count())
	for i, r := range p.Requests() {
		if !r.Authorized {
			t.Errorf("request %d was refused", i)
		}
	}
}
