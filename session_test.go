package proxyauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// sessionGet gets target in session id (none for "") and returns the
// response's status, body and proxy.
func sessionGet(t *testing.T, cl *http.Client, id, target string) (int, string, string) {
	t.Helper()
	ctx := context.Background()
	if id != "" {
		ctx = proxyauth.WithSession(ctx, id)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	require.NoError(t, err)
	resp, err := cl.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	proxy := "DIRECT"
	if u := proxyauth.ProxyOf(resp); u != nil {
		proxy = u.String()
	}
	return resp.StatusCode, string(body), proxy
}

// sessionEvents collects the SessionMoved and Ban hooks.
type sessionEvents struct {
	mu    sync.Mutex
	moves []proxyauth.SessionInfo
	bans  []proxyauth.BanInfo
}

func (e *sessionEvents) hooks() proxyauth.Hooks {
	return proxyauth.Hooks{
		SessionMoved: func(i proxyauth.SessionInfo) { e.mu.Lock(); e.moves = append(e.moves, i); e.mu.Unlock() },
		Ban:          func(i proxyauth.BanInfo) { e.mu.Lock(); e.bans = append(e.bans, i); e.mu.Unlock() },
	}
}

func (e *sessionEvents) moved() []proxyauth.SessionInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]proxyauth.SessionInfo(nil), e.moves...)
}

func (e *sessionEvents) banned() []proxyauth.BanInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]proxyauth.BanInfo(nil), e.bans...)
}

// atOnceInSessions runs each requests of sessions sessions at once, the
// sessions named prefix0, prefix1, ..., and returns what get said of each,
// by session, with the count of each answer.
func atOnceInSessions(sessions, each int, prefix string, get func(id string) string) map[string]map[string]int {
	var (
		mu  sync.Mutex
		got = map[string]map[string]int{}
		wg  sync.WaitGroup
	)
	for s := range sessions {
		for range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := prefix + strconv.Itoa(s)
				v := get(id)
				mu.Lock()
				defer mu.Unlock()
				if got[id] == nil {
					got[id] = map[string]int{}
				}
				got[id][v]++
			}()
		}
	}
	wg.Wait()
	return got
}

// Requests of one session keep to one proxy, however many run at once;
// requests without a session keep the strategy.
func TestSessionsStickToAProxy(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		o := newOrigin(t, tlsOn, nil)
		var proxies []string
		for range 4 {
			proxies = append(proxies, newProxy(t, user, secret).URL)
		}
		cl := client(t, proxyauth.Config{Proxies: proxies, Credentials: fixedCreds(user, secret), Base: trusting(o.Certificate()),
			Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin}})
		got := atOnceInSessions(6, 10, "flow", func(id string) string {
			code, _, proxy := sessionGet(t, cl, id, o.URL)
			assert.Equal(t, http.StatusOK, code)
			return proxy
		})
		used := map[string]bool{}
		for id, byProxy := range got {
			assert.Len(t, byProxy, 1, "session %s went through %v", id, byProxy)
			for p := range byProxy {
				used[p] = true
			}
		}
		assert.Greater(t, len(used), 1, "the sessions spread over the proxies")
		// Without a session, round robin goes on.
		seen := map[string]bool{}
		for range 4 {
			_, _, proxy := sessionGet(t, cl, "", o.URL)
			seen[proxy] = true
		}
		assert.Len(t, seen, 4)
	}
}

func gatewayClient(t *testing.T, g *gateway, o *exitOrigin, pc proxyauth.PoolConfig, hooks proxyauth.Hooks) (*http.Client, *proxyauth.Transport) {
	t.Helper()
	pc.SessionUsername = "{user}-sessid-{session}"
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{withUser(t, g.URL, "customer-"+g.user, g.pass)},
		Base: trusting(o.Certificate()), Pool: pc, Hooks: hooks})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr}, tr
}

// Through a gateway, a session's username names its token: each session
// keeps its exit, and requests without a session rotate.
func TestSessionsThroughAGateway(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		g := newGateway(t, "alice", secret)
		o := newExitOrigin(t, tlsOn)
		cl, _ := gatewayClient(t, g, o, proxyauth.PoolConfig{}, proxyauth.Hooks{})
		got := atOnceInSessions(5, 8, "user-", func(id string) string {
			code, body, proxy := sessionGet(t, cl, id, o.URL)
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, g.URL, proxy)
			return body
		})
		exits := map[string]bool{}
		for id, bodies := range got {
			assert.Len(t, bodies, 1, "session %s had exits %v", id, bodies)
			for b := range bodies {
				assert.False(t, exits[b], "two sessions shared %s", b)
				exits[b] = true
			}
		}
		assert.Len(t, exits, 5)
		// The gateway saw one token per session, each "<id base>x<n>".
		tokens := map[string]bool{}
		for _, tok := range g.sessionTokens() {
			tokens[tok] = true
		}
		assert.Len(t, tokens, 5)
		for tok := range tokens {
			assert.Regexp(t, `^user-\d`+"|"+`^[0-9a-f]{16}x[0-9a-z]+$`, tok)
		}
		// Without a session, the plain username: a new exit each time.
		// (A tunnel stays on the exit that opened it: each request goes
		// on a new connection here.)
		_, b1, _ := sessionGet(t, cl, "", o.URL)
		cl.CloseIdleConnections()
		_, b2, _ := sessionGet(t, cl, "", o.URL)
		assert.NotEqual(t, b1, b2)
	}
}

// A banned exit moves the session behind a gateway to a new token, and the
// banned GET is retried there: the caller gets the page.
func TestSessionMovesOnBanBehindAGateway(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		g := newGateway(t, "alice", secret)
		o := newExitOrigin(t, tlsOn)
		var ev sessionEvents
		cl, tr := gatewayClient(t, g, o, proxyauth.PoolConfig{
			Banned: func(resp *http.Response) bool { return resp.StatusCode == http.StatusForbidden },
		}, ev.hooks())
		_, first, _ := sessionGet(t, cl, "s1", o.URL)
		var exit int
		_, err := fmt.Sscanf(first, "exit %d", &exit)
		require.NoError(t, err)
		o.ban("127.0.0.1", exit)

		code, body, _ := sessionGet(t, cl, "s1", o.URL)
		assert.Equal(t, http.StatusOK, code, "retried on a new exit")
		assert.NotEqual(t, first, body)
		_, again, _ := sessionGet(t, cl, "s1", o.URL)
		assert.Equal(t, body, again, "the session keeps its new exit")

		moves := ev.moved()
		require.Len(t, moves, 1)
		assert.Equal(t, "s1", moves[0].ID)
		assert.Equal(t, "banned", moves[0].Reason)
		assert.Equal(t, 1, moves[0].Moves)
		bans := ev.banned()
		require.Len(t, bans, 1)
		assert.Equal(t, "127.0.0.1", bans[0].Host)
		assert.Equal(t, http.StatusForbidden, bans[0].StatusCode)
		st := tr.Pool().Stats()[0]
		assert.Equal(t, uint64(1), st.Bans)
		assert.Equal(t, map[string]uint64{"127.0.0.1": 1}, st.BansByHost)
		// Four requests reached the origin: the first, the banned one, its
		// retry and the last.
		assert.Len(t, o.exits(), 4)
	}
}

// A session expires after SessionTTL unused: its next request starts a
// new session on a new exit.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	g := newGateway(t, "alice", secret)
	o := newExitOrigin(t, false)
	var ev sessionEvents
	cl, tr := gatewayClient(t, g, o, proxyauth.PoolConfig{SessionTTL: time.Minute}, ev.hooks())
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	proxyauth.SetPoolClock(tr, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	_, first, _ := sessionGet(t, cl, "s1", o.URL)
	advance(59 * time.Second)
	_, same, _ := sessionGet(t, cl, "s1", o.URL)
	assert.Equal(t, first, same, "used within the TTL")
	advance(61 * time.Second)
	_, fresh, _ := sessionGet(t, cl, "s1", o.URL)
	assert.NotEqual(t, first, fresh, "a new exit after the TTL unused")
	moves := ev.moved()
	require.Len(t, moves, 1)
	assert.Equal(t, "expired", moves[0].Reason)
	assert.Equal(t, g.URL, moves[0].From.String())
}

// In a pool, a session whose proxy fails moves to the one that served the
// request, and stays there.
func TestSessionMovesOnFailure(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	var ev sessionEvents
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{a.URL, b.URL}, Credentials: fixedCreds(user, secret),
		Base: trusting(o.Certificate()), Hooks: ev.hooks()})
	require.NoError(t, err)
	defer tr.Close()
	cl := &http.Client{Transport: tr}
	_, _, first := sessionGet(t, cl, "s1", o.URL)
	require.Equal(t, a.URL, first)
	a.Close()
	tr.CloseIdleConnections()
	_, _, moved := sessionGet(t, cl, "s1", o.URL)
	assert.Equal(t, b.URL, moved)
	moves := ev.moved()
	require.Len(t, moves, 1)
	assert.Equal(t, proxyauth.SessionInfo{ID: "s1", From: moves[0].From, To: moves[0].To, Reason: "failed", Moves: 1}, moves[0])
	assert.Equal(t, a.URL, moves[0].From.String())
	assert.Equal(t, b.URL, moves[0].To.String())
	_, _, stays := sessionGet(t, cl, "s1", o.URL)
	assert.Equal(t, b.URL, stays)
}

// A ban benches a proxy for the host that banned it, and no other, for a
// cooldown that doubles with bans in a row; a session on it moves.
func TestBansBenchPerHost(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, nil)
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	m := map[string]string{"shop.test:80": hostOf(t, o.URL), "blog.test:80": hostOf(t, o.URL)}
	a.Close()
	a = newMappedProxy(t, m)
	b.Close()
	b = newMappedProxy(t, m)
	var ev sessionEvents
	var banning sync.Mutex
	banA := true
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{a.URL, b.URL}, Credentials: fixedCreds(user, secret),
		Hooks: ev.hooks(), Pool: proxyauth.PoolConfig{
			BanCooldown: time.Minute, MaxBanCooldown: 3 * time.Minute,
			Banned: func(resp *http.Response) bool {
				banning.Lock()
				defer banning.Unlock()
				p := proxyauth.ProxyOf(resp)
				return banA && p != nil && p.String() == a.URL && resp.Request.URL.Hostname() == "shop.test"
			}}})
	require.NoError(t, err)
	defer tr.Close()
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	proxyauth.SetPoolClock(tr, func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	cl := &http.Client{Transport: tr}

	// Ordered: a serves first; shop.test bans it, and the GET is retried
	// through b.
	_, _, p := sessionGet(t, cl, "s1", "http://shop.test/")
	assert.Equal(t, b.URL, p)
	bans := ev.banned()
	require.Len(t, bans, 1)
	assert.Equal(t, a.URL, bans[0].Proxy.String())
	assert.Equal(t, "shop.test", bans[0].Host)
	assert.Equal(t, time.Minute, bans[0].Until.Sub(now))
	// The session was on a when it was banned: it moved to b.
	moves := ev.moved()
	require.Len(t, moves, 1)
	assert.Equal(t, "banned", moves[0].Reason)
	assert.Equal(t, a.URL, moves[0].From.String())
	assert.Equal(t, b.URL, moves[0].To.String())
	_, _, p = sessionGet(t, cl, "s1", "http://shop.test/")
	assert.Equal(t, b.URL, p)

	// Other hosts keep using a.
	_, _, p = sessionGet(t, cl, "", "http://blog.test/")
	assert.Equal(t, a.URL, p)
	// shop.test goes to b until the cooldown ends, then to a again.
	_, _, p = sessionGet(t, cl, "", "http://shop.test/")
	assert.Equal(t, b.URL, p)
	advance(time.Minute)
	_, _, p = sessionGet(t, cl, "", "http://shop.test/") // banned again: 2 minutes
	assert.Equal(t, b.URL, p)
	bans = ev.banned()
	require.Len(t, bans, 2)
	assert.Equal(t, 2*time.Minute, bans[1].Until.Sub(now))
	assert.Equal(t, uint64(2), bans[1].Bans)
	advance(2 * time.Minute)
	banning.Lock()
	banA = false
	banning.Unlock()
	_, _, p = sessionGet(t, cl, "", "http://shop.test/")
	assert.Equal(t, a.URL, p, "back after the cooldown")

	st := tr.Pool().Stats()
	assert.Equal(t, uint64(2), st[0].Bans)
	assert.Equal(t, map[string]uint64{"shop.test": 2}, st[0].BansByHost)
	assert.Zero(t, st[1].Bans)
}

// A session moves off an exit banned for its host.
func TestSessionMovesOffABannedProxy(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, nil)
	a, b := newProxy(t, user, secret), newProxy(t, user, secret)
	var ev sessionEvents
	var ban sync.Mutex
	banned := ""
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{a.URL, b.URL}, Credentials: fixedCreds(user, secret),
		Hooks: ev.hooks(), Pool: proxyauth.PoolConfig{Banned: func(resp *http.Response) bool {
			ban.Lock()
			defer ban.Unlock()
			return proxyauth.ProxyOf(resp).String() == banned
		}}})
	require.NoError(t, err)
	defer tr.Close()
	cl := &http.Client{Transport: tr}
	_, _, p := sessionGet(t, cl, "s1", o.URL)
	require.Equal(t, a.URL, p)
	ban.Lock()
	banned = a.URL
	ban.Unlock()
	_, _, p = sessionGet(t, cl, "s1", o.URL)
	assert.Equal(t, b.URL, p)
	moves := ev.moved()
	require.Len(t, moves, 1)
	assert.Equal(t, "banned", moves[0].Reason)
}

// The retry rule: a banned response is retried only for an idempotent
// request that can be sent again, within MaxProxiesPerRequest, and never
// with ReturnBanned; otherwise it is returned as it is.
func TestBannedResponsesReturned(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, "slow down")
	})
	var proxies []string
	for range 4 {
		proxies = append(proxies, newProxy(t, user, secret).URL)
	}
	always := func(resp *http.Response) bool { return resp.StatusCode == http.StatusTooManyRequests }
	for _, c := range []struct {
		name     string
		pc       proxyauth.PoolConfig
		method   string
		body     io.Reader
		attempts int
	}{
		{"GET, retried within MaxProxiesPerRequest", proxyauth.PoolConfig{Banned: always, MaxProxiesPerRequest: 3}, http.MethodGet, nil, 3},
		{"POST, not idempotent", proxyauth.PoolConfig{Banned: always}, http.MethodPost, strings.NewReader("x"), 1},
		{"ReturnBanned", proxyauth.PoolConfig{Banned: always, ReturnBanned: true}, http.MethodGet, nil, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ev sessionEvents
			tr, err := proxyauth.New(proxyauth.Config{Proxies: proxies, Credentials: fixedCreds(user, secret), Pool: c.pc, Hooks: ev.hooks()})
			require.NoError(t, err)
			defer tr.Close()
			req, err := http.NewRequest(c.method, o.URL, c.body)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the last banned response, as it is")
			assert.Equal(t, "slow down", string(body))
			assert.Len(t, ev.banned(), c.attempts)
		})
	}
}

func TestSessionBadInput(t *testing.T) {
	t.Parallel()
	p := newProxy(t, user, secret)
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	require.NoError(t, err)
	defer tr.Close()
	for _, id := range []string{"", strings.Repeat("x", 257)} {
		req, err := http.NewRequestWithContext(proxyauth.WithSession(context.Background(), id), http.MethodGet, "http://origin.test/", nil)
		require.NoError(t, err)
		_, err = tr.RoundTrip(req)
		var ce *proxyauth.ConfigError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, "WithSession", ce.Field)
	}
	assert.Empty(t, p.Requests(), "nothing was sent")

	for _, c := range []struct {
		cfg   proxyauth.Config
		field string
	}{
		{proxyauth.Config{Proxies: []string{p.URL}, Pool: proxyauth.PoolConfig{SessionUsername: "{user}-static"}}, "Pool.SessionUsername"},
		{proxyauth.Config{Proxies: []string{p.URL}, Pool: proxyauth.PoolConfig{SessionTTL: -time.Second}}, "Pool.SessionTTL"},
		{proxyauth.Config{Proxies: []string{p.URL}, Pool: proxyauth.PoolConfig{BanCooldown: time.Hour, MaxBanCooldown: time.Minute}}, "Pool.MaxBanCooldown"},
	} {
		_, err := proxyauth.New(c.cfg)
		var ce *proxyauth.ConfigError
		require.ErrorAs(t, err, &ce, c.field)
		assert.Equal(t, c.field, ce.Field)
	}
}

func TestSessionWithEnvironment(t *testing.T) {
	p := newMappedProxy(t, map[string]string{})
	t.Setenv("HTTP_PROXY", p.URL)
	t.Setenv("HTTPS_PROXY", "")
	_, err := proxyauth.New(proxyauth.Config{Pool: proxyauth.PoolConfig{Banned: func(*http.Response) bool { return true }}})
	var ce *proxyauth.ConfigError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, "Pool.Banned", ce.Field)
}

// A session whose exit another request got banned for a host moves off it
// for that ban when it asks that host.
func TestSessionMovesOffAnExitBannedByAnother(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, nil)
	m := map[string]string{"shop.test:80": hostOf(t, o.URL), "news.test:80": hostOf(t, o.URL)}
	a, b := newMappedProxy(t, m), newMappedProxy(t, m)
	var ev sessionEvents
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{a.URL, b.URL}, Credentials: fixedCreds(user, secret),
		Hooks: ev.hooks(), Pool: proxyauth.PoolConfig{ReturnBanned: true, Banned: func(resp *http.Response) bool {
			return proxyauth.ProxyOf(resp).String() == a.URL && resp.Request.URL.Hostname() == "shop.test"
		}}})
	require.NoError(t, err)
	defer tr.Close()
	cl := &http.Client{Transport: tr}
	_, _, p := sessionGet(t, cl, "s1", "http://news.test/")
	require.Equal(t, a.URL, p)
	_, _, p = sessionGet(t, cl, "", "http://shop.test/") // banned, returned as it is
	require.Equal(t, a.URL, p)
	_, _, p = sessionGet(t, cl, "s1", "http://shop.test/")
	assert.Equal(t, b.URL, p, "the session passes over its exit, benched for shop.test")
	moves := ev.moved()
	require.Len(t, moves, 1)
	assert.Equal(t, "banned", moves[0].Reason)
}
