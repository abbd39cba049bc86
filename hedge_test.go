package proxyauth_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// hedgeAfter is the HedgeAfter of these tests, and hedgeTimeout the
// ProxyTimeout: a black hole is judged only when that runs out.
const (
	hedgeAfter   = 100 * time.Millisecond
	hedgeTimeout = 3 * time.Second
)

// hedgeEvents records what the Hooks of a hedged pool report.
type hedgeEvents struct {
	mu      sync.Mutex
	hedges  []proxyauth.HedgeInfo
	ejected chan proxyauth.ProxyStateInfo
}

func newHedgeEvents() *hedgeEvents {
	return &hedgeEvents{ejected: make(chan proxyauth.ProxyStateInfo, 16)}
}

func (e *hedgeEvents) hooks() proxyauth.Hooks {
	return proxyauth.Hooks{
		Hedge: func(i proxyauth.HedgeInfo) {
			e.mu.Lock()
			e.hedges = append(e.hedges, i)
			e.mu.Unlock()
		},
		ProxyStateChanged: func(i proxyauth.ProxyStateInfo) {
			if i.State == proxyauth.StateEjected {
				e.ejected <- i
			}
		},
	}
}

func (e *hedgeEvents) all() []proxyauth.HedgeInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]proxyauth.HedgeInfo(nil), e.hedges...)
}

// TestHedgeBlackHoledPrimary: a primary that never completes its
// connection costs the first request HedgeAfter, not ProxyTimeout, and
// the next ones nothing; the origin sees each request once; the black
// hole loses no health for the race, and is ejected when its own dial
// times out.
func TestHedgeBlackHoledPrimary(t *testing.T) {
	cases := []struct {
		name   string
		tls    bool
		proxy  func(t *testing.T) string
		reason string // in the ejection's error
	}{
		{"https target, CONNECT never answered", true, func(t *testing.T) string { return "http://" + blackHole(t) }, "CONNECT"},
		{"http target, TLS to the proxy never answered", false, func(t *testing.T) string { return "https://" + blackHole(t) }, "TLS handshake"},
		{"http target, no TCP connection", false, func(t *testing.T) string { return "http://" + testnet.Unreachable(t) }, "timeout"},
		{"https target, no TCP connection", true, func(t *testing.T) string { return "http://" + testnet.Unreachable(t) }, "timeout"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, tt.tls, nil)
			fallback := newProxy(t, user, secret)
			hole := tt.proxy(t)
			ev := newHedgeEvents()
			start := time.Now()
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies:      []string{withUser(t, hole, user, secret), withUser(t, fallback.URL, user, secret)},
				Base:         trusting(o.Certificate()),
				ProxyTimeout: hedgeTimeout,
				Pool:         proxyauth.PoolConfig{HedgeAfter: hedgeAfter},
				Hooks:        ev.hooks(),
			}, nil)

			body, resp, err := get(cl, o.URL)
			took := time.Since(start)
			require.NoError(t, err)
			assert.Equal(t, "hello from origin", body)
			assert.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String(), "the fallback won the race")
			assert.GreaterOrEqual(t, took, hedgeAfter, "the fallback starts only after HedgeAfter")
			assert.Less(t, took, hedgeTimeout, "the request did not wait for the black hole's timeout")

			st := tr.Pool().Stats()
			assert.NotEqual(t, proxyauth.StateEjected, st[0].State, "losing a race is no failure")
			assert.Equal(t, uint64(1), st[0].RacesLost)
			assert.Equal(t, uint64(1), st[1].Hedges)
			assert.Equal(t, uint64(1), st[1].HedgesWon)
			hs := ev.all()
			require.Len(t, hs, 2, "the hedge, then its outcome")
			assert.False(t, hs[0].Decided)
			assert.Equal(t, fallback.URL, hs[0].To.String())
			assert.GreaterOrEqual(t, hs[0].After, hedgeAfter)
			assert.True(t, hs[1].Decided)
			assert.Equal(t, fallback.URL, hs[1].Winner.String())

			// The black hole's dial is still pending: the next requests go
			// straight to the fallback, without a race.
			for i := 0; i < 3; i++ {
				_, resp, err := get(cl, o.URL)
				require.NoError(t, err)
				assert.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String())
			}
			assert.Len(t, ev.all(), 2, "no more races while the black hole's dial is pending")
			assert.Len(t, o.received(), 4, "the origin received each request once")

			select {
			case info := <-ev.ejected:
				assert.Equal(t, strings.TrimPrefix(hole, "http://"), strings.TrimPrefix(info.Proxy.String(), "http://"))
				assert.GreaterOrEqual(t, time.Since(start), hedgeTimeout, "ejected when its own timeout ran out, not before")
				require.Error(t, info.Err)
				assert.Contains(t, info.Err.Error(), tt.reason)
			case <-time.After(hedgeTimeout + time.Minute):
				t.Fatal("the black hole was never ejected")
			}
			st = tr.Pool().Stats()
			assert.Equal(t, proxyauth.StateEjected, st[0].State)
			assert.Equal(t, uint64(0), st[0].Requests, "the black hole served no request")
			assert.Equal(t, uint64(4), st[1].Requests)
		})
	}
}

// TestHedgeSlowPrimaryKeepsHealth: a primary that connects after the
// fallback won keeps its health, and the connection it completed stays
// idle on it, for the next request.
func TestHedgeSlowPrimaryKeepsHealth(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, tt.tls, nil)
			primary := proxyauthtest.NewUnstartedProxy(user, secret)
			scheme := "http://"
			if tt.tunnel {
				primary.Start() // a tunnel races the CONNECT, whose answer the front holds
			} else {
				// A plain request races the dial and TLS to the proxy:
				// the front holds the proxy's side of the handshake.
				primary.StartTLS()
				scheme = "https://"
			}
			t.Cleanup(primary.Close)
			// A probe's connection (TCP only) carries the tunnel's CONNECT
			// after it; a TLS one is closed, and the request dials its own.
			held := 1
			if !tt.tunnel {
				held = 2
			}
			front := newHeldFront(t, primary.Addr(), held, true)
			fallback := newProxy(t, user, secret)
			ev := newHedgeEvents()
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies:      []string{withUser(t, scheme+front.addr, user, secret), withUser(t, fallback.URL, user, secret)},
				Base:         trusting(o.Certificate(), primary.Certificate()),
				ProxyTimeout: time.Minute,
				Pool:         proxyauth.PoolConfig{HedgeAfter: hedgeAfter},
				Hooks:        ev.hooks(),
			}, nil)

			_, resp, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String(), "the fallback won the race")
			for _, r := range primary.Requests() {
				assert.Equal(t, http.MethodConnect, r.Method, "the primary forwarded nothing")
			}
			st := tr.Pool().Stats()
			assert.True(t, st[0].Stalled, "the primary's connection is pending")
			assert.Equal(t, uint64(1), st[0].RacesLost)

			front.release() // the primary answers, late
			require.Eventually(t, func() bool { return !tr.Pool().Stats()[0].Stalled }, time.Minute, 5*time.Millisecond,
				"the primary's late answer ends its stall")
			st = tr.Pool().Stats()
			assert.Equal(t, proxyauth.StateHealthy, st[0].State)
			assert.Equal(t, 0, st[0].ConsecutiveFailures)
			assert.Equal(t, 0, st[0].Ejections)
			assert.Empty(t, st[0].LastError)

			_, resp, err = get(cl, o.URL)
			require.NoError(t, err)
			// The front never answers on a third connection: the request
			// was served on the one completed after losing.
			assert.Equal(t, front.addr, proxyauth.ProxyOf(resp).Host, "the primary serves again")
			assert.Len(t, ev.all(), 2, "the second request needed no race")
			assert.Len(t, o.received(), 2, "the origin received each request once")
		})
	}
}

// TestHedgePostSentOnce: a POST whose body cannot be sent again races
// its connection through plain http:// proxies and reaches the origin
// once, whole, whichever proxy wins; HedgeAfter is so short that both
// legs are under way at once.
func TestHedgePostSentOnce(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []string
	)
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		io.WriteString(w, "stored")
	})
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	ev := newHedgeEvents()
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies: []string{withUser(t, a.URL, user, secret), withUser(t, b.URL, user, secret)},
		Pool:    proxyauth.PoolConfig{HedgeAfter: time.Nanosecond},
		Hooks:   ev.hooks(),
	}, nil)
	const n = 40
	want := make([]string, 0, n)
	for i := 0; i < n; i++ {
		payload := strings.Repeat(string(rune('a'+i%26)), 1000+i)
		want = append(want, payload)
		// An io.Reader that is not a *bytes.Reader: no GetBody.
		req, err := http.NewRequest(http.MethodPost, o.URL, io.MultiReader(strings.NewReader(payload)))
		require.NoError(t, err)
		require.Nil(t, req.GetBody)
		if i%2 == 1 {
			cl.CloseIdleConnections() // every other request dials anew, and races
		}
		resp, err := cl.Do(req)
		require.NoError(t, err, "request %d", i)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, "stored", string(got))
	}
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, bodies, "each POST reached the origin once, whole, in order")
	assert.Equal(t, n, len(a.Requests())+len(b.Requests()), "each went through one proxy")
	assert.NotEmpty(t, ev.all(), "requests raced")
	st := tr.Pool().Stats()
	assert.Equal(t, uint64(n), st[0].Requests+st[1].Requests)
}

// TestHedgeWithinMaxProxies: a request races at most
// MaxProxiesPerRequest proxies, and fails with every one's error when
// none connects.
func TestHedgeWithinMaxProxies(t *testing.T) {
	o := newOrigin(t, true, nil)
	live := newProxy(t, user, secret)
	ev := newHedgeEvents()
	cl, _ := poolClient(t, proxyauth.Config{
		Proxies: []string{
			withUser(t, "http://"+blackHole(t), user, secret), withUser(t, "http://"+blackHole(t), user, secret),
			withUser(t, live.URL, user, secret),
		},
		Base:         trusting(o.Certificate()),
		ProxyTimeout: time.Second,
		Pool:         proxyauth.PoolConfig{HedgeAfter: hedgeAfter, MaxProxiesPerRequest: 2, MaxEjectedPercent: 100},
		Hooks:        ev.hooks(),
	}, nil)
	_, _, err := get(cl, o.URL)
	var pe *proxyauth.PoolError
	require.ErrorAs(t, err, &pe)
	assert.Len(t, pe.Errors, 2, "two proxies raced, both failed")
	for _, e := range pe.Errors {
		var perr *proxyauth.ProxyError
		require.ErrorAs(t, e, &perr)
		assert.Equal(t, "connect", perr.Op)
	}
	assert.Empty(t, live.Requests(), "the third proxy is beyond MaxProxiesPerRequest")
	assert.Empty(t, o.received())
	hs := ev.all()
	require.Len(t, hs, 2)
	assert.True(t, hs[1].Decided)
	assert.Nil(t, hs[1].Winner, "none connected")
}

// TestHedgeDisabled: with a negative HedgeAfter a black-holed primary
// costs the whole ProxyTimeout, as without hedging, and nothing races.
func TestHedgeDisabled(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	fallback := newProxy(t, user, secret)
	ev := newHedgeEvents()
	timeout := expiring // the fallback must answer within it too
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies:      []string{withUser(t, "http://"+blackHole(t), user, secret), withUser(t, fallback.URL, user, secret)},
		Base:         trusting(o.Certificate()),
		ProxyTimeout: timeout,
		Pool:         proxyauth.PoolConfig{HedgeAfter: -1},
		Hooks:        ev.hooks(),
	}, nil)
	start := time.Now()
	_, resp, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), timeout, "the primary's whole timeout")
	assert.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String())
	assert.Equal(t, proxyauth.StateEjected, statesOf(tr)[0], "ejected by the request itself")
	assert.Empty(t, ev.all(), "nothing raced")
	st := tr.Pool().Stats()
	assert.Zero(t, st[0].RacesLost+st[1].Hedges)
}

// TestHedgeLogs: the log says what was raced and who won, and holds no
// secret.
func TestHedgeLogs(t *testing.T) {
	o := newOrigin(t, true, nil)
	fallback := newProxy(t, user, secret)
	var buf lockedBuffer
	cl, _ := poolClient(t, proxyauth.Config{
		Proxies:      []string{withUser(t, "http://"+blackHole(t), user, secret), withUser(t, fallback.URL, user, secret)},
		Base:         trusting(o.Certificate()),
		ProxyTimeout: time.Minute,
		Pool:         proxyauth.PoolConfig{HedgeAfter: hedgeAfter},
		Logger:       slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}, nil)
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	out := buf.String()
	assert.Contains(t, out, `"msg":"proxyauth: hedging"`)
	assert.Contains(t, out, `"msg":"proxyauth: hedge decided"`)
	assert.Contains(t, out, `"winner":"`+fallback.URL+`"`)
	assert.NotContains(t, out, secret)
	assert.NotContains(t, out, `"level":"WARN","msg":"proxyauth: attempt done"`, "losing a race is no warning")
}

// TestHedgeRetryOnNewConnection: a request whose reused tunnel breaks
// before its answer is sent again by net/http on a new connection; when
// the proxy has gone dark, that connection is raced too. Without hedging
// the CONNECT that goes unanswered counts against the proxy's health.
func TestHedgeRetryOnNewConnection(t *testing.T) {
	for _, hedge := range []bool{true, false} {
		name := map[bool]string{true: "hedged", false: "not hedged"}[hedge]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, true, nil)
			primary := newProxy(t, user, secret)
			front := newDyingFront(t, primary.Addr())
			fallback := newProxy(t, user, secret)
			ev := newHedgeEvents()
			after, timeout := hedgeAfter, time.Minute
			if !hedge {
				after, timeout = -1, expiring // the fallback must answer within it too
			}
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies:      []string{withUser(t, "http://"+front.addr, user, secret), withUser(t, fallback.URL, user, secret)},
				Base:         trusting(o.Certificate()),
				ProxyTimeout: timeout,
				Pool:         proxyauth.PoolConfig{HedgeAfter: after},
				Hooks:        ev.hooks(),
			}, nil)
			_, resp, err := get(cl, o.URL)
			require.NoError(t, err)
			require.Equal(t, front.addr, proxyauth.ProxyOf(resp).Host)

			close(front.die) // the tunnel breaks on the next request; new connections get no answer
			_, resp, err = get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String(), "served by the fallback")
			assert.Len(t, o.received(), 2, "the origin received each request once")
			st := tr.Pool().Stats()
			if hedge {
				hs := ev.all()
				require.Len(t, hs, 2, "the new connection was raced")
				assert.Equal(t, fallback.URL, hs[1].Winner.String())
				assert.Equal(t, uint64(1), st[0].RacesLost)
				assert.NotEqual(t, proxyauth.StateEjected, st[0].State, "not failed for losing")
				return
			}
			assert.Empty(t, ev.all())
			assert.Equal(t, proxyauth.StateEjected, st[0].State, "the unanswered CONNECT is the proxy's failure")
			assert.Contains(t, st[0].LastError, "did not answer the CONNECT")
		})
	}
}

// TestHedgeStalledIsLastHope: a proxy passed over because its pending
// connection lost a race is still tried when every other proxy fails.
func TestHedgeStalledIsLastHope(t *testing.T) {
	o := newOrigin(t, true, nil)
	primary := newProxy(t, user, secret)
	front := newHeldFront(t, primary.Addr(), 1, false) // its first connection answers late, the others at once
	fallback := newProxy(t, user, secret)
	cl, tr := poolClient(t, proxyauth.Config{
		Proxies:      []string{withUser(t, "http://"+front.addr, user, secret), withUser(t, fallback.URL, user, secret)},
		Base:         trusting(o.Certificate()),
		ProxyTimeout: time.Minute,
		Pool:         proxyauth.PoolConfig{HedgeAfter: hedgeAfter},
	}, nil)
	_, resp, err := get(cl, o.URL)
	require.NoError(t, err)
	require.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String(), "the fallback won the race")
	require.True(t, tr.Pool().Stats()[0].Stalled)

	fallback.Close() // the fallback goes down, its tunnel with it
	_, resp, err = get(cl, o.URL)
	require.NoError(t, err, "the stalled primary is the last hope")
	assert.Equal(t, front.addr, proxyauth.ProxyOf(resp).Host)
	st := tr.Pool().Stats()
	assert.Equal(t, uint64(1), st[0].Requests)
	assert.NotEmpty(t, st[1].LastError, "the fallback failed first")
}

// front is a TCP front to a proxy, for tests that make the proxy late or
// dark: it accepts connections, dials the proxy for each, and lets pipe
// carry the bytes of the n-th (from 1) until either side closes, or never
// is closed, at cleanup, when it closes them all.
type front struct {
	addr string
}

func newFront(t *testing.T, target string, pipe func(n int, client, proxy net.Conn, never <-chan struct{})) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	never := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for n := 1; ; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Go(func() { pipe(n, c, up, never) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		close(never)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &front{addr: ln.Addr().String()}
}

// heldFront is a front that passes the connections before the held one
// as they are, holds the proxy's bytes on the held one until release is
// closed (a proxy that answers late), and on the later ones for good
// when laterDark, else passes them too.
type heldFront struct {
	*front
	release func() // the proxy's bytes on the held connection go
}

func newHeldFront(t *testing.T, target string, held int, laterDark bool) *heldFront {
	t.Helper()
	release := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	releaseNow := func() { once.Do(func() { close(release) }) }
	f := newFront(t, target, func(n int, c, up net.Conn, never <-chan struct{}) {
		done := make(chan struct{})
		go func() {
			defer close(done)
			io.Copy(up, c)
			up.Close()
		}()
		switch {
		case n == held:
			select {
			case <-release:
			case <-never:
			}
		case n > held && laterDark:
			<-never
		}
		io.Copy(c, up)
		c.Close()
		<-done
	})
	return &heldFront{front: f, release: releaseNow}
}

// dyingFront is a front that passes its first connection (a probe's,
// which then carries the tunnel) until die is closed; then it closes it
// when the client next writes on it, and never answers on later
// connections: a proxy gone dark under a kept-alive tunnel.
type dyingFront struct {
	*front
	die chan struct{}
}

func newDyingFront(t *testing.T, target string) *dyingFront {
	t.Helper()
	die := make(chan struct{})
	f := newFront(t, target, func(n int, c, up net.Conn, never <-chan struct{}) {
		done := make(chan struct{})
		go func() { // client to proxy
			defer close(done)
			defer up.Close()
			buf := make([]byte, 32<<10)
			for {
				k, err := c.Read(buf)
				if k > 0 {
					select {
					case <-die:
						if n == 1 {
							c.Close() // the tunnel breaks under the request
							return
						}
					default:
					}
					if _, err := up.Write(buf[:k]); err != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		if n > 1 {
			<-never
		}
		io.Copy(c, up)
		c.Close()
		<-done
	})
	return &dyingFront{front: f, die: die}
}

// TestHedgeCallerCredentialsStayWithTheFirstProxy: a Proxy-Authorization
// field the caller set is for the first proxy the request tries; the
// proxy raced in parallel gets its own credentials, never the caller's.
func TestHedgeCallerCredentialsStayWithTheFirstProxy(t *testing.T) {
	for _, tt := range []struct {
		name, hole string
		tls        bool
	}{
		{"https target", "http://" + "%s", true},
		{"http target", "https://" + "%s", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			fallback := newProxy(t, "bob", "fallback-pw")
			hole := blackHole(t)
			cl, _ := poolClient(t, proxyauth.Config{
				Proxies:      []string{strings.Replace(tt.hole, "%s", hole, 1), withUser(t, fallback.URL, "bob", "fallback-pw")},
				Base:         trusting(o.Certificate()),
				ProxyTimeout: time.Minute,
				Pool:         proxyauth.PoolConfig{HedgeAfter: hedgeAfter},
			}, nil)
			const callers = "Basic Y2FsbGVyOmNhbGxlci1wdw==" // caller:caller-pw
			req, err := http.NewRequest(http.MethodGet, o.URL, nil)
			require.NoError(t, err)
			req.Header.Set("Proxy-Authorization", callers)
			resp, err := cl.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, fallback.URL, proxyauth.ProxyOf(resp).String(), "the raced fallback served")
			require.NotEmpty(t, fallback.Requests())
			for _, r := range fallback.Requests() {
				assert.NotContains(t, r.ProxyAuthorization, callers, "the caller's field went to the first proxy only")
				assert.True(t, r.Authorized, "the fallback got its own credentials")
			}
			o.assertNoProxyAuth(t, "caller-pw", "fallback-pw")
		})
	}
}
