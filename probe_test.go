package proxyauth_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/proxyauth/proxyauth"
)

// silentProxy is a proxy that takes connections and never answers; until
// it is made silent, it hangs up on each at once. Once silent, it reports
// each connection on probing when the client has sent its first bytes,
// and on ended when the client has closed it.
type silentProxy struct {
	*hostileProxy
	silent atomic.Bool
}

func newSilentProxy(t *testing.T, probing, ended chan<- struct{}) *silentProxy {
	p := &silentProxy{}
	p.hostileProxy = newHostileProxy(t, func(c net.Conn) {
		if !p.silent.Load() {
			return
		}
		if _, err := c.Read(make([]byte, 1)); err != nil {
			return
		}
		probing <- struct{}{}
		_, _ = io.Copy(io.Discard, c)
		ended <- struct{}{}
	})
	return p
}

// connTracker dials as the Transport's Base and counts the connections
// it opened and those closed since.
type connTracker struct {
	opened, closed atomic.Int32
}

func (ct *connTracker) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	ct.opened.Add(1)
	return &trackedConn{Conn: c, ct: ct}, nil
}

type trackedConn struct {
	net.Conn
	ct   *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.ct.closed.Add(1) })
	return c.Conn.Close()
}

// wait receives n times from ch, failing the test after generous.
func wait(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	timeout := time.After(generous)
	for i := 0; i < n; i++ {
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%s: %d of %d after %v", what, i, n, generous)
		}
	}
}

// TestCloseEndsProbes: Transport.Close ends every probe under way against
// proxies that never answer, whoever started it, and returns only once
// each has ended, its goroutines gone and its connection closed. The
// probe timeout is an hour: only Close can end these probes.
func TestCloseEndsProbes(t *testing.T) {
	probes := []struct {
		name   string
		scheme string // of the proxies
		probe  string
	}{
		{"CONNECT canary", "http", "canary.test:443"},
		{"GET", "http", "http://canary.test/health"},
		{"SOCKS5 canary", "socks5", "canary.test:443"},
		{"TLS to the proxy", "https", ""},
	}
	starts := []struct {
		name    string
		atStart bool
		tries   int // MaxProxiesPerRequest
		want    int // probes expected under way
		// start starts the probes of tr; stop, if not nil, ends what it
		// started after Close.
		start func(t *testing.T, tr *proxyauth.Transport, proxies []*silentProxy, clock *fakeClock) (stop func())
	}{
		{name: "at New", atStart: true, tries: 1, want: 2},
		{name: "when due", tries: 2, want: 2, start: func(t *testing.T, tr *proxyauth.Transport, proxies []*silentProxy, clock *fakeClock) func() {
			// Both proxies fail their first probes and are ejected;
			// silent, they are due for probes again an hour later.
			_, err := (&http.Client{Transport: tr}).Get("http://example.com/")
			require.Error(t, err)
			proxyauth.WaitForProbes(tr)
			require.Equal(t, []proxyauth.ProxyState{proxyauth.StateEjected, proxyauth.StateEjected}, statesOf(tr))
			for _, p := range proxies {
				p.silent.Store(true)
			}
			clock.Advance(time.Hour)
			req, err := http.NewRequest(http.MethodGet, "http://example.com/", nil)
			require.NoError(t, err)
			proxyauth.Pick(tr, req)
			return nil
		}},
		{name: "before first use", tries: 1, want: 1, start: func(t *testing.T, tr *proxyauth.Transport, proxies []*silentProxy, _ *fakeClock) func() {
			for _, p := range proxies {
				p.silent.Store(true)
			}
			// The request's own context stays alive throughout.
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://example.com/", nil)
				resp, err := tr.RoundTrip(req)
				if err == nil {
					resp.Body.Close()
				}
				done <- err
			}()
			return func() {
				select {
				case err := <-done:
					assert.Error(t, err, "the request's proxy was never probed")
				case <-time.After(generous):
					t.Errorf("the request is still waiting for its probe %v after Close", generous)
				}
				cancel()
			}
		}},
	}
	for _, pr := range probes {
		for _, st := range starts {
			t.Run(pr.name+"/"+st.name, func(t *testing.T) {
				// Room for every connection, lest a handler block.
				probing, ended := make(chan struct{}, 16), make(chan struct{}, 16)
				proxies := []*silentProxy{newSilentProxy(t, probing, ended), newSilentProxy(t, probing, ended)}
				var urls []string
				for _, p := range proxies {
					urls = append(urls, strings.Replace(p.URL, "http:", pr.scheme+":", 1))
					p.silent.Store(st.atStart)
				}
				var ct connTracker
				ignore := goleak.IgnoreCurrent()
				tr, err := proxyauth.New(proxyauth.Config{
					Proxies:      urls,
					ProxyTimeout: time.Hour,
					Base:         &http.Transport{DialContext: ct.dial},
					Pool: proxyauth.PoolConfig{
						Probe:                pr.probe,
						ProbeAtStart:         st.atStart,
						ProbeTimeout:         time.Hour,
						MaxProxiesPerRequest: st.tries,
					},
				})
				require.NoError(t, err)
				clock := newFakeClock()
				var stop func()
				if st.start != nil {
					proxyauth.SetPoolClock(tr, clock.Now)
					stop = st.start(t, tr, proxies, clock)
				}
				wait(t, probing, st.want, "probes under way")

				closed := make(chan struct{})
				go func() {
					tr.Close()
					close(closed)
				}()
				wait(t, closed, 1, "Close returned")
				assert.Equal(t, ct.opened.Load(), ct.closed.Load(), "connections closed when Close returned, of %d opened", ct.opened.Load())
				if stop != nil {
					stop()
				}
				wait(t, ended, st.want, "probe connections the proxies saw closed")
				goleak.VerifyNone(t, ignore)
			})
		}
	}
}

// TestCloseDoesNotWaitForCredentials: a probe waiting for the
// CredentialsFunc stops waiting when the Transport is closed; the call,
// which is never cancelled, runs on to its end.
func TestCloseDoesNotWaitForCredentials(t *testing.T) {
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	entered, release := make(chan struct{}, 2), make(chan struct{})
	var returned sync.WaitGroup
	returned.Add(2)
	ignore := goleak.IgnoreCurrent()
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{a.URL, b.URL},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			defer returned.Done()
			entered <- struct{}{}
			<-release
			return proxyauth.Credentials{Username: user, Password: secret}, nil
		},
		Pool: proxyauth.PoolConfig{Probe: "canary.test:443", ProbeAtStart: true, ProbeTimeout: time.Hour},
	})
	require.NoError(t, err)
	wait(t, entered, 2, "probes calling the credentials function")
	closed := make(chan struct{})
	go func() {
		tr.Close()
		close(closed)
	}()
	wait(t, closed, 1, "Close returned while the credentials function was still running")
	close(release)
	returned.Wait()
	goleak.VerifyNone(t, ignore)
}
