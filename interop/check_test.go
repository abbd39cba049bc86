package interop_test

// Transport.Check against real proxies: what a user sees of each (the
// CheckResult fields) and what squid logged of the check's requests.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
)

// ckWrong is the wrong password of these tests.
const ckWrong = "not-" + secret

// ckTimeout is the CheckOptions.Timeout of the checks that must time out:
// a few seconds, so that the file stays short; nothing asserts how long a
// check took.
const ckTimeout = 3 * time.Second

// ckTransport returns a Transport for proxies (tried in that order),
// trusting o's TLS origin, closed in t.Cleanup. ProxyTimeout is generous,
// so that only a check's own timeout can end it early.
func ckTransport(t *testing.T, o *origins, proxies ...string) *proxyauth.Transport {
	t.Helper()
	tr, err := proxyauth.New(proxyauth.Config{Proxies: proxies, Base: o.base(), ProxyTimeout: generous})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	return tr
}

// ckCheck runs Check of target with the defaults and returns its one
// result.
func ckCheck(t *testing.T, tr *proxyauth.Transport, target string) proxyauth.CheckResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
	defer cancel()
	rs := tr.Check(ctx, target)
	require.Len(t, rs, 1)
	require.NotNil(t, rs[0].Proxy, "a check that could not start: %v", rs[0].Diagnosis)
	return rs[0]
}

// ckWant is what a user should see of one proxy's check.
type ckWant struct {
	ok           bool
	layer        proxyauth.Layer
	kind         proxyauth.Kind
	scheme       string
	status       int // the target's status; 0 when it was not reached
	authRequired bool
	offered      []string // nil for none
	connected    bool     // a TCP connection to the proxy was made
	summary      []string // words the Summary holds
	hints        []string // words some Hint holds
}

// ckAssert checks r, the result for the proxy at proxyURL (without
// userinfo), against want, and that no password shows in it.
func ckAssert(t *testing.T, r proxyauth.CheckResult, proxyURL string, want ckWant) {
	t.Helper()
	d := r.Diagnosis
	require.NotNil(t, r.Proxy)
	assert.Equal(t, proxyURL, r.Proxy.String(), "Proxy, without userinfo")
	require.NotNil(t, d.Proxy, "Diagnosis.Proxy")
	assert.Equal(t, proxyURL, d.Proxy.String(), "Diagnosis.Proxy")
	assert.False(t, r.Direct)
	assert.Equal(t, want.ok, r.OK, "OK: %v", d)
	assert.Equal(t, want.layer, d.Layer, "Layer: %v", d)
	assert.Equal(t, want.kind, d.Kind, "Kind: %v", d)
	assert.Equal(t, want.scheme, r.Scheme, "Scheme: %v", d)
	assert.Equal(t, want.status, r.StatusCode, "StatusCode: %v", d)
	assert.Equal(t, want.authRequired, r.AuthRequired, "AuthRequired: %v", d)
	assert.Equal(t, want.offered, r.Offered, "Offered: %v", d)
	if want.status != 0 {
		assert.Positive(t, r.Latency, "Latency of a check that reached the target")
	} else {
		assert.Zero(t, r.Latency, "Latency of a check that did not reach the target")
	}
	if want.connected {
		u, err := url.Parse(proxyURL)
		require.NoError(t, err)
		assert.Equal(t, u.Host, r.Addr, "Addr: the proxy's")
		assert.Positive(t, r.Connect)
	} else {
		assert.Empty(t, r.Addr, "Addr when no TCP connection was made")
		assert.Zero(t, r.Connect)
	}
	for _, w := range want.summary {
		assert.Contains(t, d.Summary, w, "Summary")
	}
	hints := strings.Join(d.Hints, "\n")
	for _, w := range want.hints {
		assert.Contains(t, hints, w, "Hints: %q", d.Hints)
	}
	if want.ok {
		assert.Equal(t, proxyauth.LayerNone, d.Layer)
	}
	all := fmt.Sprintf("%+v %v", r, d)
	for _, pw := range []string{secret, ckWrong} {
		assert.NotContains(t, all, pw, "a password in the result")
	}
}

// ckLogOf returns what squid logged for method after from (an
// accessLogSize) as "METHOD STATUS USER", once there are n such lines: the
// log of one of the checks that run at once on a squid, each for a target
// of its own scheme.
func ckLogOf(t *testing.T, sq *Squid, from int64, method string, n int) []string {
	t.Helper()
	var out []string
	for _, l := range ntWaitAccess(t, sq, from, n, func(l corpAccess) bool { return l.Method == method }) {
		_, status, _ := strings.Cut(l.Code, "/")
		out = append(out, l.Method+" "+status+" "+l.User)
	}
	return out
}

// ckMethod is what squid logs for the check of a target: a GET for http://,
// a CONNECT for https://.
func ckMethod(tlsOn bool) string {
	if tlsOn {
		return "CONNECT"
	}
	return "GET"
}

func TestCheckSquidBasic(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{user: secret}})
	for _, tt := range targets {
		t.Run(tt.name+"/right", func(t *testing.T) {
			from := sq.accessLogSize(t)
			r := ckCheck(t, ckTransport(t, o, withUser(t, sq.URL, user, secret)), o.url(tt.tls))
			ckAssert(t, r, sq.URL, ckWant{ok: true, kind: proxyauth.KindOK, scheme: "Basic", status: http.StatusOK,
				authRequired: true, offered: []string{"Basic"}, connected: true,
				summary: []string{"200", "accepted Basic credentials"}})
			assert.Empty(t, r.Diagnosis.Hints)
			// The first request went without credentials: the check waits
			// for the challenge, to learn what the proxy wants.
			m := ckMethod(tt.tls)
			assert.Equal(t, []string{m + " 407 -", m + " 200 " + user}, nsLog(t, sq, from, 2))
		})
		t.Run(tt.name+"/wrong", func(t *testing.T) {
			from := sq.accessLogSize(t)
			r := ckCheck(t, ckTransport(t, o, withUser(t, sq.URL, user, ckWrong)), o.url(tt.tls))
			ckAssert(t, r, sq.URL, ckWant{layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
				authRequired: true, offered: []string{"Basic"}, connected: true,
				summary: []string{"rejected the credentials", "407", realm},
				hints:   []string{"check the username and password"}})
			// One try with the wrong password, not three: a fixed
			// password's refusal is final.
			m := ckMethod(tt.tls)
			assert.Equal(t, []string{m + " 407 -", m + " 407 " + user}, nsLog(t, sq, from, 2))
		})
	}
	assert.Zero(t, o.leaked(), "Proxy-Authorization reached an origin")
}

func TestCheckSquidDigest(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	// After the parallel subtests.
	t.Cleanup(func() { assert.Zero(t, o.leaked(), "Proxy-Authorization reached an origin") })
	users := map[string]string{user: secret}
	for _, c := range []struct {
		name    string
		opts    SquidOptions
		offered []string
	}{
		{"digest", SquidOptions{Digest: true, Users: users}, []string{"Digest"}},
		// squid offers Digest first, Basic second; the strongest is used.
		{"digest+basic", SquidOptions{Basic: true, Digest: true, Users: users}, []string{"Digest", "Basic"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			sq := StartSquid(t, c.opts)
			for _, tt := range targets {
				t.Run(tt.name, func(t *testing.T) {
					from := sq.accessLogSize(t)
					r := ckCheck(t, ckTransport(t, o, withUser(t, sq.URL, user, secret)), o.url(tt.tls))
					ckAssert(t, r, sq.URL, ckWant{ok: true, kind: proxyauth.KindOK, scheme: "Digest", status: http.StatusOK,
						authRequired: true, offered: c.offered, connected: true,
						summary: []string{"200", "accepted Digest credentials"}})
					m := ckMethod(tt.tls)
					assert.Equal(t, []string{m + " 407 -", m + " 200 " + user}, nsLog(t, sq, from, 2))
				})
			}
		})
	}
}

// A target that squid's ACL forbids: squid answers 403 before it asks
// for credentials, and the check reports the proxy's refusal, not the
// origin's status.
func TestCheckSquidACLDenied(t *testing.T) {
	t.Parallel()
	denied := newOrigins(t, nil)
	t.Cleanup(func() { assert.Zero(t, denied.leaked()) })
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := denied.url(tt.tls)
			u, err := url.Parse(target)
			require.NoError(t, err)
			sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{user: secret}, DenyTarget: u.Host})
			from := sq.accessLogSize(t)
			r := ckCheck(t, ckTransport(t, denied, withUser(t, sq.URL, user, secret)), target)
			summary := []string{"403", "ERR_ACCESS_DENIED", "answered 403 Forbidden itself"}
			if tt.tls {
				summary[2] = "refused the CONNECT with 403"
			}
			ckAssert(t, r, sq.URL, ckWant{layer: proxyauth.LayerProxy, kind: proxyauth.KindForbidden, connected: true,
				summary: summary, hints: []string{"ACL forbids this target"}})
			assert.Equal(t, []string{ckMethod(tt.tls) + " 403 -"}, nsLog(t, sq, from, 1), "denied before any credentials")
		})
	}
}

func TestCheckSquidStopped(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{user: secret}})
	tr := ckTransport(t, o, withUser(t, sq.URL, user, secret))
	ckAssert(t, ckCheck(t, tr, o.url(false)), sq.URL, ckWant{ok: true, kind: proxyauth.KindOK, scheme: "Basic",
		status: http.StatusOK, authRequired: true, offered: []string{"Basic"}, connected: true})
	sq.Stop()
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			ckAssert(t, ckCheck(t, tr, o.url(tt.tls)), sq.URL, ckWant{layer: proxyauth.LayerNetwork,
				kind: proxyauth.KindProxyUnavailable, summary: []string{"refused the connection"},
				hints: []string{"check that the proxy is running"}})
		})
	}
}

// An origin that answers 401 through squid: every layer of the proxy
// passed, and squid's credentials never reached the origin.
func TestCheckOriginAuth(t *testing.T) {
	t.Parallel()
	var (
		requests atomic.Int32
		withAuth atomic.Int32 // requests that carried an Authorization
	)
	o := newOrigins(t, func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Header.Get("Authorization") != "" {
			withAuth.Add(1)
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="site"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{user: secret}})
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			from := sq.accessLogSize(t)
			before := requests.Load()
			r := ckCheck(t, ckTransport(t, o, withUser(t, sq.URL, user, secret)), o.url(tt.tls))
			ckAssert(t, r, sq.URL, ckWant{layer: proxyauth.LayerOriginAuth, kind: proxyauth.KindOriginAuth,
				scheme: "Basic", status: http.StatusUnauthorized, authRequired: true, offered: []string{"Basic"},
				connected: true, summary: []string{"origin", "401", `realm="site"`},
				hints: []string{"never reach the origin"}})
			assert.Equal(t, int32(1), requests.Load()-before, "the origin got the check's one request")
			m, status := ckMethod(tt.tls), "401"
			if tt.tls {
				status = "200" // the tunnel; the 401 went through it
			}
			assert.Equal(t, []string{m + " 407 -", m + " " + status + " " + user}, nsLog(t, sq, from, 2))
		})
	}
	assert.Zero(t, o.leaked(), "Proxy-Authorization reached the origin")
	assert.Zero(t, withAuth.Load(), "the check sent the origin credentials")
}

func TestCheckTinyproxy(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	tp := StartTinyproxy(t, user, secret)
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			r := ckCheck(t, ckTransport(t, o, withUser(t, tp.URL, user, secret)), o.url(tt.tls))
			ckAssert(t, r, tp.URL, ckWant{ok: true, kind: proxyauth.KindOK, scheme: "Basic", status: http.StatusOK,
				authRequired: true, offered: []string{"Basic"}, connected: true,
				summary: []string{"200", "accepted Basic credentials"}})
		})
	}
	// tinyproxy answers a wrong password with a 401 that repeats the realm
	// of its 407 (to a plain request; to a CONNECT it is a 401 all the
	// same): the proxy refused, and the target was not reached.
	for _, tt := range targets {
		t.Run(tt.name+"/wrong", func(t *testing.T) {
			r := ckCheck(t, ckTransport(t, o, withUser(t, tp.URL, user, ckWrong)), o.url(tt.tls))
			ckAssert(t, r, tp.URL, ckWant{layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
				authRequired: true, offered: []string{"Basic"}, connected: true,
				summary: []string{"mixed signals", "401"},
				hints:   []string{"tinyproxy answer 401 for a wrong password"}})
		})
	}
	assert.Zero(t, o.leaked(), "Proxy-Authorization reached an origin")
}

func TestCheckMicrosocks(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	ms := StartMicrosocks(t, user, secret)
	for _, tt := range targets {
		t.Run(tt.name+"/right", func(t *testing.T) {
			r := ckCheck(t, ckTransport(t, o, withUser(t, ms.URL, user, secret)), o.url(tt.tls))
			ckAssert(t, r, ms.URL, ckWant{ok: true, kind: proxyauth.KindOK, scheme: "username/password",
				status: http.StatusOK, authRequired: true, connected: true,
				summary: []string{"200", "SOCKS5 proxy, which accepted the username and password"}})
		})
		t.Run(tt.name+"/wrong", func(t *testing.T) {
			r := ckCheck(t, ckTransport(t, o, withUser(t, ms.URL, user, ckWrong)), o.url(tt.tls))
			ckAssert(t, r, ms.URL, ckWant{layer: proxyauth.LayerProxyAuth, kind: proxyauth.KindProxyAuth,
				authRequired: true, connected: true,
				summary: []string{"SOCKS5 proxy rejected the username and password"},
				hints:   []string{"check the username and password"}})
		})
	}
	assert.Zero(t, o.leaked())
}

// A list of two black holes and a healthy squid: each proxy is judged
// alone, so all three come back, in the configured order, the black holes
// within the check's timeout, and the squid OK with no request of the
// others failed over to it.
func TestCheckBlackHoles(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{user: secret}})
	t.Cleanup(func() { assert.Zero(t, o.leaked()) })
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hole, silent := "http://"+testnet.Unreachable(t), testnet.NewSilent(t, nil)
			quiet := "http://" + silent.Addr
			tr := ckTransport(t, o, withUser(t, hole, user, secret), withUser(t, quiet, user, secret), withUser(t, sq.URL, user, secret))
			var (
				mu    sync.Mutex
				calls = map[int]proxyauth.CheckResult{}
			)
			from := sq.accessLogSize(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
			defer cancel()
			rs, err := tr.CheckWith(ctx, o.url(tt.tls), proxyauth.CheckOptions{Timeout: ckTimeout,
				OnResult: func(i int, r proxyauth.CheckResult) {
					mu.Lock()
					defer mu.Unlock()
					_, twice := calls[i]
					assert.False(t, twice, "OnResult called twice for %d", i)
					calls[i] = r
				}})
			require.NoError(t, err)
			require.Len(t, rs, 3)
			within := "within " + ckTimeout.String()

			ckAssert(t, rs[0], hole, ckWant{layer: proxyauth.LayerNetwork, kind: proxyauth.KindProxyUnavailable,
				summary: []string{"no TCP connection to the proxy", within}, hints: []string{"black hole"}})

			summary := "no answer to the request " + within + ": the proxy took it"
			if tt.tls {
				summary = "the proxy did not answer the CONNECT " + within
			}
			ckAssert(t, rs[1], quiet, ckWant{layer: proxyauth.LayerProxy, kind: proxyauth.KindProxyUnavailable,
				connected: true, summary: []string{summary}, hints: []string{"overloaded or hung"}})
			assert.Equal(t, 1, silent.Accepted(), "connections to the silent proxy")

			ckAssert(t, rs[2], sq.URL, ckWant{ok: true, kind: proxyauth.KindOK, scheme: "Basic", status: http.StatusOK,
				authRequired: true, offered: []string{"Basic"}, connected: true})
			m := ckMethod(tt.tls)
			assert.Equal(t, []string{m + " 407 -", m + " 200 " + user}, ckLogOf(t, sq, from, m, 2),
				"squid got its own check only")

			mu.Lock()
			defer mu.Unlock()
			require.Len(t, calls, 3)
			for i, r := range rs {
				assert.Equal(t, r.Proxy, calls[i].Proxy, "OnResult(%d)", i)
				assert.Equal(t, r.Diagnosis.Summary, calls[i].Diagnosis.Summary, "OnResult(%d)", i)
			}
		})
	}
}
