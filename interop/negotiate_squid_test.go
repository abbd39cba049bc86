package interop_test

// The Negotiate scheme through the Transport, end to end: squid with
// negotiate_kerberos_auth and MIT Kerberos's KDC (StartKDC). Logins from a
// credential cache, a keytab and a password; the errors for a wrong
// password, a missing and an expired ticket; the fall-through to NTLM and
// Basic when Kerberos cannot start; and what connections cost: the tokens
// and requests on the wire (a counting dialer), the requests squid logged
// (access.log) and the tickets the KDC issued (its log). Each main case is
// cross-checked with curl --proxy-negotiate, as a row of the report.
//
// Every Kerberos setting names the test KDC's krb5.conf: /etc/krb5.conf,
// which names internet KDCs, is never read.
//
// Identifiers that are not part of the helpers' API carry an "ns" prefix.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// nsSequential is how many requests go one after the other in a case, and
// nsConcurrent how many at once.
const (
	nsSequential = 5
	nsConcurrent = 30
)

// nsNegotiate are curl's arguments for Negotiate with the ticket at hand.
var nsNegotiate = []string{"--proxy-negotiate", "-U", ":"}

// ---------------------------------------------------------------- the wire

// nsField begins a Proxy-Authorization field in a request head, and
// nsRequestLine ends a request line.
const (
	nsField       = "\r\nProxy-Authorization: "
	nsRequestLine = " HTTP/1.1\r\n"
	nsMaxScheme   = 16 // the longest scheme name read after nsField
)

// nsWire counts the connections a Transport opens to the proxy and what
// it writes on each: request lines, and Proxy-Authorization fields by
// scheme (their values are never kept). Inside a tunnel the bytes are
// TLS, where neither pattern turns up by chance. It is safe for
// concurrent use.
type nsWire struct {
	mu    sync.Mutex
	conns []*nsConnCount
}

// nsConnCount is what one connection carried.
type nsConnCount struct {
	requests int
	fields   map[string]int // scheme -> Proxy-Authorization fields
}

// base returns the settings of o's clients with a dialer that counts.
func (w *nsWire) base(o *origins) *http.Transport {
	b := o.base()
	b.MaxIdleConnsPerHost = nsConcurrent
	var d net.Dialer
	b.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc := &nsConnCount{fields: map[string]int{}}
		w.mu.Lock()
		w.conns = append(w.conns, cc)
		w.mu.Unlock()
		return &nsConn{Conn: c, w: w, count: cc}, nil
	}
	return b
}

// nsConn is a connection whose writes nsWire scans.
type nsConn struct {
	net.Conn
	w     *nsWire
	count *nsConnCount
	mu    sync.Mutex
	tail  []byte // the end of what was written, which may hold the start of a pattern
}

func (c *nsConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	// A pattern is counted in the write that brings its last byte: the
	// tail, kept from the writes before, holds only the start of one.
	old := len(c.tail)
	buf := append(c.tail, p...)
	requests := 0
	nsEach(buf, nsRequestLine, func(i int) {
		if i+len(nsRequestLine) > old {
			requests++
		}
	})
	var schemes []string
	nsEach(buf, nsField, func(i int) {
		k := i + len(nsField)
		sp := bytes.IndexByte(buf[k:min(len(buf), k+nsMaxScheme+1)], ' ')
		if sp > 0 && k+sp+1 > old {
			schemes = append(schemes, string(buf[k:k+sp]))
		}
	})
	c.tail = append([]byte(nil), buf[max(0, len(buf)-len(nsField)-nsMaxScheme):]...)
	c.mu.Unlock()
	c.w.mu.Lock()
	c.count.requests += requests
	for _, s := range schemes {
		c.count.fields[s]++
	}
	c.w.mu.Unlock()
	return c.Conn.Write(p)
}

// nsEach calls f with the index of each occurrence of pat in buf.
func nsEach(buf []byte, pat string, f func(i int)) {
	for off := 0; off < len(buf); {
		j := bytes.Index(buf[off:], []byte(pat))
		if j < 0 {
			return
		}
		f(off + j)
		off += j + 1
	}
}

// nsTally is what a Transport wrote to the proxy.
type nsTally struct {
	Conns    int            // connections opened
	Requests int            // request lines written (CONNECTs and legs included)
	Fields   map[string]int // Proxy-Authorization fields by scheme
	With     map[string]int // connections that carried a field of the scheme
	Most     map[string]int // the most fields of the scheme one connection carried
}

func (w *nsWire) tally() nsTally {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := nsTally{Conns: len(w.conns), Fields: map[string]int{}, With: map[string]int{}, Most: map[string]int{}}
	for _, c := range w.conns {
		t.Requests += c.requests
		for s, n := range c.fields {
			t.Fields[s] += n
			t.With[s]++
			t.Most[s] = max(t.Most[s], n)
		}
	}
	return t
}

// TestNSWire checks the counting itself, on writes split at every byte.
func TestNSWire(t *testing.T) {
	t.Parallel()
	head := "CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\nProxy-Authorization: Negotiate YIIxyz\r\n\r\n" +
		"GET http://x/ HTTP/1.1\r\nHost: x\r\nProxy-Authorization: NTLM TlRM\r\nUser-Agent: y\r\n\r\n" +
		"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, size := range []int{1, 2, 3, 7, 25, len(head)} {
		w := &nsWire{}
		cc := &nsConnCount{fields: map[string]int{}}
		w.conns = append(w.conns, cc)
		c := &nsConn{Conn: nsDiscard{}, w: w, count: cc}
		for i := 0; i < len(head); i += size {
			c.Write([]byte(head[i:min(len(head), i+size)]))
		}
		got := w.tally()
		assert.Equal(t, 3, got.Requests, "writes of %d bytes", size)
		assert.Equal(t, map[string]int{"Negotiate": 1, "NTLM": 1}, got.Fields, "writes of %d bytes", size)
	}
}

// nsDiscard is a connection that takes every write.
type nsDiscard struct{ net.Conn }

func (nsDiscard) Write(p []byte) (int, error) { return len(p), nil }

// ---------------------------------------------------------------- squid and the KDC

// nsLog returns the lines squid logged after from (an accessLogSize) as
// "METHOD STATUS USER", once there are at least n. squid logs a tunnel
// when it closes: close the client's idle connections first. It waits,
// paced by a short ticker, for at most generous.
func nsLog(t testing.TB, sq *Squid, from int64, n int) []string {
	t.Helper()
	deadline := time.NewTimer(generous)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		lines := sq.accessSince(t, from)
		if len(lines) >= n {
			out := make([]string, len(lines))
			for i, l := range lines {
				_, status, _ := strings.Cut(l.Code, "/")
				out[i] = l.Method + " " + status + " " + l.User
			}
			return out
		}
		select {
		case <-deadline.C:
			t.Fatalf("access.log: %d lines, not %d, after %v\n%s", len(lines), n, generous, sq.Log())
		case <-tick.C:
		}
	}
}

// nsRepeat returns n copies of s.
func nsRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// nsKDC is a point in the KDC's log, from which nsKDC.count counts.
type nsKDC struct {
	k    *KDC
	from int
}

// nsMark returns the point the KDC's log has reached, once every request
// made so far is in it.
func nsMark(t testing.TB, k *KDC) nsKDC {
	t.Helper()
	return nsKDC{k: k, from: len(negSettle(t, k))}
}

// count returns how many req ("AS_REQ", "TGS_REQ") the KDC answered with
// outcome ("ISSUE", "PREAUTH_FAILED", ...; "" for any) for principal and
// service since m, once every request made so far is in its log.
func (m nsKDC) count(t testing.TB, req, outcome, principal, service string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(negSettle(t, m.k)[m.from:], "\n") {
		if strings.Contains(l, "): "+req+" (") && (outcome == "" || strings.Contains(l, ": "+outcome+": ")) &&
			strings.Contains(l, " "+principal+" for "+service) {
			n++
		}
	}
	return n
}

// nsTGT is the realm's ticket-granting service.
func nsTGT(k *KDC) string { return "krbtgt/" + k.Realm + "@" + k.Realm }

// nsShortTicket gets a ticket-granting ticket for user that lasts a second
// (kinit -l 1s) into a new cache, and returns the cache and when its
// ticket ends.
func nsShortTicket(t testing.TB, k *KDC, user, password string) (string, time.Time) {
	t.Helper()
	kinit := requireBinary(t, "kinit", "krb5-user")
	cache := filepath.Join(t.TempDir(), "short")
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	cmd := exec.CommandContext(ctx, kinit, "-l", "1s", "-c", "FILE:"+cache, user)
	cmd.Env = k.Env("")
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "kinit -l 1s: %s", k.mask(string(out)))
	cc, err := credentials.LoadCCache(cache)
	require.NoError(t, err)
	tgt, ok := cc.GetEntry(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", cc.DefaultPrincipal.Realm}})
	require.True(t, ok, "the cache holds a ticket-granting ticket")
	require.WithinDuration(t, time.Now(), tgt.EndTime, 5*time.Second, "a ticket for a second")
	return cache, tgt.EndTime
}

// nsUntil waits until the clock has passed end, at most a few seconds: a
// ticket lives by the clock (the Kerberos libraries read it themselves).
func nsUntil(t testing.TB, end time.Time) {
	t.Helper()
	d := time.Until(end) + 10*time.Millisecond
	require.Less(t, d, 5*time.Second)
	if d > 0 {
		wait := time.NewTimer(d)
		defer wait.Stop()
		<-wait.C
	}
}

// ---------------------------------------------------------------- requests

// nsGets sends n GETs to target one after the other and requires each to
// be answered 200.
func nsGets(t testing.TB, cl *http.Client, target string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		resp, err := get(cl, target)
		require.NoError(t, err, "request %d", i)
		require.Equal(t, http.StatusOK, resp.StatusCode, "request %d", i)
	}
}

// nsAtOnce sends n GETs to target at once and returns the error of each,
// nil for a 200.
func nsAtOnce(cl *http.Client, target string, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			resp, err := get(cl, target)
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
			errs[i] = err
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// nsLine is what nsLog gives for a request to a plain (GET) or a TLS
// (CONNECT) target with the status and the user, and nsMethod is the
// method.
func nsLine(tlsOn bool, status int, user string) string {
	return nsMethod(tlsOn) + " " + strconv.Itoa(status) + " " + user
}

func nsMethod(tlsOn bool) string {
	if tlsOn {
		return http.MethodConnect
	}
	return http.MethodGet
}

// nsWant is what squid logs for n requests that are accepted with one
// connection-bound token after a first 407: n forwarded requests on the
// authenticated connection, or the one tunnel that carries them all.
func nsWant(tlsOn bool, user string, n int) []string {
	if tlsOn {
		return []string{"CONNECT 407 -", "CONNECT 200 " + user}
	}
	return append([]string{"GET 407 -"}, nsRepeat("GET 200 "+user, n)...)
}

// nsProxyAuthError requires err to be a *ProxyAuthError and returns it,
// after checking that its text holds no password.
func nsProxyAuthError(t testing.TB, err error, passwords ...string) *proxyauth.ProxyAuthError {
	t.Helper()
	var pae *proxyauth.ProxyAuthError
	require.ErrorAs(t, err, &pae)
	for _, p := range passwords {
		require.NotContains(t, err.Error(), p, "the error holds a password")
	}
	return pae
}

// nsHint requires Diagnose to place err at the proxy-auth layer with want
// in its first hint, the most precise one.
func nsHint(t testing.TB, err error, want string) {
	t.Helper()
	d := nsDiagnose(t, err)
	assert.Equal(t, proxyauth.LayerProxyAuth, d.Layer)
	if assert.NotEmpty(t, d.Hints) {
		assert.Contains(t, d.Hints[0], want)
	}
}

// nsDiagnose records what Diagnose says of err: the test's log shows it.
func nsDiagnose(t testing.TB, err error) proxyauth.Diagnosis {
	t.Helper()
	d := proxyauth.Diagnose(nil, err)
	t.Logf("Diagnose: layer %v, summary %q", d.Layer, d.Summary)
	for _, h := range d.Hints {
		t.Logf("Diagnose hint: %s", h)
	}
	return d
}

// ---------------------------------------------------------------- tests

// TestSquidNegotiateTransport: the Transport logs in from a credential
// cache (with no credentials of its own), the same cache with a password
// at hand (the password is never sent to the KDC), and a keytab. A
// connection costs one token, sent once: the first request is answered
// 407, the next go on the authenticated connection (or through the one
// tunnel) without Proxy-Authorization, and one service ticket serves them
// all. curl, with the same ticket, gets the same answer and the same
// principal logged.
func TestSquidNegotiateTransport(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	k := StartKDC(t, map[string]string{user: secret, "bob": "b0b-pass"})
	sq := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate()})
	sqc := newCorpProxy(t, sq, o, "negotiate")
	bobKT := k.ClientKeytab(t, "bob")
	// Each case has a cache of its own: MIT's clients (curl) add the
	// service tickets they get to the cache, and gokrb5 takes them from
	// there.
	logins := []struct {
		name      string
		krb       func(t *testing.T) proxyauth.Kerberos
		proxy     string
		principal string
		asReqs    int    // logins the KDC issues a ticket-granting ticket for
		unused    string // a principal whose password is at hand and must not go to the KDC
		curlEnv   func(t *testing.T) []string
	}{
		{"ccache", func(t *testing.T) proxyauth.Kerberos {
			return proxyauth.Kerberos{Config: k.Config, CCache: k.Kinit(t, user, secret)}
		}, sq.LocalhostURL(), k.Principal(user), 0, "", func(t *testing.T) []string { return k.Env(k.Kinit(t, user, secret)) }},
		{"ccache+pw", func(t *testing.T) proxyauth.Kerberos {
			return proxyauth.Kerberos{Config: k.Config, CCache: "FILE:" + k.Kinit(t, user, secret)}
		}, withUser(t, sq.LocalhostURL(), "bob", "b0b-pass"), k.Principal(user), 0, k.Principal("bob"),
			func(t *testing.T) []string { return k.Env(k.Kinit(t, user, secret)) }},
		// curl takes a client keytab through MIT's KRB5_CLIENT_KTNAME,
		// getting a ticket into an empty cache of its own.
		{"keytab", func(*testing.T) proxyauth.Kerberos {
			return proxyauth.Kerberos{Config: k.Config, Keytab: bobKT, Principal: "bob"}
		}, sq.LocalhostURL(), k.Principal("bob"), 1, "", func(t *testing.T) []string {
			return append(k.Env(filepath.Join(t.TempDir(), "curl-cc")), "KRB5_CLIENT_KTNAME=FILE:"+bobKT)
		}},
	}
	for _, lg := range logins {
		for _, tt := range targets {
			t.Run(lg.name+"/"+tt.name, func(t *testing.T) {
				count("squid")
				w := &nsWire{}
				cl := newClient(t, proxyauth.Config{Proxies: []string{lg.proxy}, Base: w.base(o),
					Schemes: []proxyauth.Scheme{proxyauth.Negotiate(lg.krb(t))}})
				kdc := nsMark(t, k)
				from := sq.accessLogSize(t)
				nsGets(t, cl, o.url(tt.tls), nsSequential)
				cl.CloseIdleConnections()

				want := nsWant(tt.tls, lg.principal, nsSequential)
				assert.Equal(t, want, nsLog(t, sq, from, len(want)), "what squid logged")
				wire := w.tally()
				if tt.tls {
					assert.Equal(t, 1, wire.Conns, "the 407's connection carries the token: squid keeps it")
				} else {
					assert.Equal(t, 2, wire.Conns, "the 407's connection, then the authenticated one")
				}
				assert.Equal(t, map[string]int{"Negotiate": 1}, wire.Fields, "one token, on one connection")
				assert.Equal(t, len(want), wire.Requests, "requests written to squid")
				assert.Equal(t, 1, kdc.count(t, "TGS_REQ", "ISSUE", lg.principal, k.ServicePrincipal), "service tickets for the proxy")
				assert.Equal(t, lg.asReqs, kdc.count(t, "AS_REQ", "ISSUE", lg.principal, nsTGT(k)), "logins")
				if lg.unused != "" {
					assert.Zero(t, kdc.count(t, "AS_REQ", "", lg.unused, nsTGT(k)), "the password at hand is not used while the cache has a ticket")
				}
				assert.Zero(t, o.leaked(), "Proxy-Authorization reached an origin")

				_, logged := sqc.curl(t, lg.curlEnv(t), sq.LocalhostURL(), tt.tls, 200, lg.principal, nsNegotiate...)
				sqc.addRow(lg.name, tt.tls, 200, "200", logged)
			})
		}
	}
}

// TestSquidNegotiateConcurrent: requests at once all succeed, each
// connection carries one token, and the Transport's one login and one
// service ticket serve them all, whether the proxy has accepted a token
// before (warm) or not (cold).
func TestSquidNegotiateConcurrent(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	k := StartKDC(t, map[string]string{user: secret})
	sq := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate()})
	ccache := k.Kinit(t, user, secret)
	alice := k.Principal(user)
	for _, warm := range []bool{true, false} {
		for _, tt := range targets {
			t.Run(map[bool]string{true: "warm", false: "cold"}[warm]+"/"+tt.name, func(t *testing.T) {
				count("squid")
				w := &nsWire{}
				cl := newClient(t, proxyauth.Config{Proxies: []string{sq.LocalhostURL()}, Base: w.base(o),
					Schemes: []proxyauth.Scheme{proxyauth.Negotiate(proxyauth.Kerberos{Config: k.Config, CCache: ccache})}})
				kdc := nsMark(t, k)
				from := sq.accessLogSize(t)
				if warm {
					nsGets(t, cl, o.url(tt.tls), 1)
				}
				for i, err := range nsAtOnce(cl, o.url(tt.tls), nsConcurrent) {
					require.NoError(t, err, "request %d", i)
				}
				cl.CloseIdleConnections()

				wire := w.tally()
				t.Logf("%d connections, %d requests, Proxy-Authorization fields %v on %v connections", wire.Conns, wire.Requests, wire.Fields, wire.With)
				assert.Equal(t, 1, wire.Most["Negotiate"], "a connection carries one token")
				assert.Equal(t, []string{"Negotiate"}, nsKeys(wire.Fields))
				// Each authenticated connection is a tunnel squid logs, or
				// carries forwarded requests.
				lines := nsLog(t, sq, from, wire.Requests)
				counts := map[string]int{}
				for _, l := range lines {
					counts[l]++
				}
				t.Logf("squid logged %v", counts)
				assert.Len(t, lines, wire.Requests, "squid logged every request written, no other")
				if tt.tls {
					assert.Equal(t, wire.With["Negotiate"], counts["CONNECT 200 "+alice], "a tunnel per authenticated connection")
				} else {
					assert.Equal(t, nsConcurrent+map[bool]int{true: 1, false: 0}[warm], counts["GET 200 "+alice], "every request, as alice")
				}
				assert.Equal(t, len(lines), counts[nsLine(tt.tls, 407, "-")]+counts[nsLine(tt.tls, 200, alice)], "only 407s and alice's 200s: %v", counts)
				assert.Equal(t, 1, kdc.count(t, "TGS_REQ", "ISSUE", alice, k.ServicePrincipal),
					"one service ticket for the Transport's %d tokens", wire.Fields["Negotiate"])
				assert.Zero(t, o.leaked(), "Proxy-Authorization reached an origin")
			})
		}
	}
}

// nsKeys returns the keys of m, sorted.
func nsKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSquidNegotiateEnvironment covers what depends on the environment:
// KRB5CCNAME names the cache when Kerberos.CCache is empty, and, pointed
// at a missing file, leaves a password as the only way to log in. It sets
// KRB5CCNAME, so it does not run in parallel: no other test runs while it
// does. The machine's own cache (/tmp/krb5cc_UID) is never read.
//
// It covers the password logins, a wrong password, a missing and an
// expired ticket, and the fall-through to NTLM and Basic offered with
// Negotiate when Kerberos cannot start.
func TestSquidNegotiateEnvironment(t *testing.T) {
	const (
		wrong     = "wr0ng-pass"
		basicPass = "basic-Pa55" // the Basic password squid knows; the KDC's is secret
	)
	o := newOrigins(t, nil)
	k := StartKDC(t, map[string]string{user: secret})
	neg := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate()})
	negNTLM := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate(), NTLM: true})
	negBasic := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate(), Basic: true, Users: map[string]string{user: basicPass}})
	negc := newCorpProxy(t, neg, o, "negotiate")
	ntlmc := newCorpProxy(t, negNTLM, o, "neg+ntlm")
	basicc := newCorpProxy(t, negBasic, o, "neg+basic")
	missing := filepath.Join(t.TempDir(), "no-ccache")
	t.Setenv("KRB5CCNAME", "FILE:"+missing)
	alice := k.Principal(user)
	// A ticket that has expired by the time the cases that use it run
	// (made now, so that the wait overlaps the cases before them).
	short, shortEnd := nsShortTicket(t, k, user, secret)
	// Each case that uses a cache has one of its own: curl adds the
	// service tickets it gets to the cache it is given, and gokrb5 takes
	// them from there.
	negotiate := func(krb proxyauth.Kerberos) []proxyauth.Scheme {
		krb.Config = k.Config
		return []proxyauth.Scheme{proxyauth.Negotiate(krb)}
	}

	for _, tt := range targets {
		target := o.url(tt.tls)
		t.Run("KRB5CCNAME/"+tt.name, func(t *testing.T) {
			count("squid")
			t.Setenv("KRB5CCNAME", "FILE:"+k.Kinit(t, user, secret))
			w := &nsWire{}
			cl := newClient(t, proxyauth.Config{Proxies: []string{neg.LocalhostURL()}, Base: w.base(o), Schemes: negotiate(proxyauth.Kerberos{})})
			kdc := nsMark(t, k)
			from := neg.accessLogSize(t)
			nsGets(t, cl, target, nsSequential)
			cl.CloseIdleConnections()
			want := nsWant(tt.tls, alice, nsSequential)
			assert.Equal(t, want, nsLog(t, neg, from, len(want)))
			assert.Equal(t, map[string]int{"Negotiate": 1}, w.tally().Fields)
			assert.Equal(t, 1, kdc.count(t, "TGS_REQ", "ISSUE", alice, k.ServicePrincipal))
			assert.Zero(t, kdc.count(t, "AS_REQ", "ISSUE", alice, nsTGT(k)), "the cache's ticket, no login")
			_, logged := negc.curl(t, k.Env(k.Kinit(t, user, secret)), neg.LocalhostURL(), tt.tls, 200, alice, nsNegotiate...)
			negc.addRow("KRB5CCNAME", tt.tls, 200, "200", logged)
		})

		// A password, from the proxy URL or a CredentialsFunc, the
		// principal given with or without its realm: one login and one
		// service ticket for every request. curl's equivalent is kinit
		// with the password, then curl with the ticket.
		for _, pw := range []struct {
			name string
			cfg  func(cfg *proxyauth.Config, calls *atomic.Int32)
		}{
			{"password-url", func(cfg *proxyauth.Config, _ *atomic.Int32) {
				cfg.Proxies = []string{withUser(t, neg.LocalhostURL(), user, secret)}
			}},
			{"password-func", func(cfg *proxyauth.Config, calls *atomic.Int32) {
				cfg.Proxies = []string{neg.LocalhostURL()}
				cfg.Credentials = func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
					calls.Add(1)
					return proxyauth.Credentials{Username: alice, Password: secret}, nil
				}
			}},
		} {
			t.Run(pw.name+"/"+tt.name, func(t *testing.T) {
				count("squid")
				w := &nsWire{}
				var calls atomic.Int32
				cfg := proxyauth.Config{Base: w.base(o), Schemes: negotiate(proxyauth.Kerberos{})}
				pw.cfg(&cfg, &calls)
				cl := newClient(t, cfg)
				kdc := nsMark(t, k)
				from := neg.accessLogSize(t)
				nsGets(t, cl, target, nsSequential)
				cl.CloseIdleConnections()
				want := nsWant(tt.tls, alice, nsSequential)
				assert.Equal(t, want, nsLog(t, neg, from, len(want)))
				wire := w.tally()
				assert.Equal(t, 2-btoi(tt.tls), wire.Conns, "a tunnel's token goes on the connection of its 407")
				assert.Equal(t, map[string]int{"Negotiate": 1}, wire.Fields)
				assert.Equal(t, 1, kdc.count(t, "AS_REQ", "ISSUE", alice, nsTGT(k)), "one login")
				assert.Equal(t, 1, kdc.count(t, "TGS_REQ", "ISSUE", alice, k.ServicePrincipal), "one service ticket")
				if cfg.Credentials != nil {
					assert.Equal(t, int32(1), calls.Load(), "the CredentialsFunc is asked once")
				}
				if pw.name == "password-url" {
					cc := k.Kinit(t, user, secret)
					_, logged := negc.curl(t, k.Env(cc), neg.LocalhostURL(), tt.tls, 200, alice, nsNegotiate...)
					negc.addRow("kinit-pw", tt.tls, 200, "200", logged)
				}
			})
		}

		// A wrong password: the KDC refuses it, and the error says so. No
		// request but the first goes to squid, and the KDC is asked once:
		// a domain locks an account after a few failed logins, so a
		// refused password must not be tried again, neither by the later
		// requests nor by those sent at once.
		t.Run("wrong-password/"+tt.name, func(t *testing.T) {
			count("squid")
			w := &nsWire{}
			cl := newClient(t, proxyauth.Config{Proxies: []string{withUser(t, neg.LocalhostURL(), user, wrong)}, Base: w.base(o),
				Schemes: negotiate(proxyauth.Kerberos{})})
			kdc := nsMark(t, k)
			from := neg.accessLogSize(t)
			for i := 0; i < nsSequential; i++ {
				_, err := get(cl, target)
				pae := nsProxyAuthError(t, err, wrong)
				assert.Contains(t, err.Error(), "Negotiate: password login for alice@PROXYAUTH.TEST: the KDC refused the password")
				assert.ErrorIs(t, err, proxyauth.ErrNoAcceptableScheme)
				assert.False(t, pae.Rejected, "nothing was sent: the KDC refused the password before")
				assert.Equal(t, tt.tls, pae.Tunnel)
				if i == 0 {
					t.Logf("error: %v", err)
					assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
					assert.Equal(t, 1, pae.Attempts)
					require.Len(t, pae.Challenges, 1)
					assert.Equal(t, "Negotiate", pae.Challenges[0].Scheme)
					nsHint(t, err, "the password was refused by the KDC")
				} else {
					assert.Zero(t, pae.StatusCode, "request %d: no request was sent", i)
					if i == 1 {
						nsDiagnose(t, err)
					}
				}
			}
			for i, err := range nsAtOnce(cl, target, nsConcurrent) {
				nsProxyAuthError(t, err, wrong)
				assert.Contains(t, err.Error(), "the KDC refused the password", "request %d at once", i)
			}
			cl.CloseIdleConnections()
			wire := w.tally()
			assert.Equal(t, nsTally{Conns: 1, Requests: 1, Fields: map[string]int{}, With: map[string]int{}, Most: map[string]int{}}, wire,
				"one request without credentials, the one that got the challenge")
			assert.Equal(t, []string{nsLine(tt.tls, 407, "-")}, nsLog(t, neg, from, 1))
			failed := kdc.count(t, "AS_REQ", "PREAUTH_FAILED", alice, nsTGT(k))
			assert.Equal(t, 1, failed, "failed logins the KDC counted against alice for %d requests", nsSequential+nsConcurrent)

			_, err := k.KinitErr(user, wrong)
			require.ErrorContains(t, err, "Password incorrect")
			_, logged := negc.curl(t, k.Env(missing), neg.LocalhostURL(), tt.tls, 407, "-", nsNegotiate...)
			negc.addRow("bad-pw", tt.tls, 407, "407", logged)
		})

		// No ticket and no password: the error says why; no request but
		// the first is sent.
		t.Run("no-ticket/"+tt.name, func(t *testing.T) {
			count("squid")
			w := &nsWire{}
			cl := newClient(t, proxyauth.Config{Proxies: []string{neg.LocalhostURL()}, Base: w.base(o), Schemes: negotiate(proxyauth.Kerberos{})})
			kdc := nsMark(t, k)
			from := neg.accessLogSize(t)
			for i := 0; i < 3; i++ {
				_, err := get(cl, target)
				pae := nsProxyAuthError(t, err)
				assert.Contains(t, err.Error(), "Negotiate: no Kerberos ticket: the credential cache "+missing+" does not exist; no keytab; no password")
				if i == 0 {
					t.Logf("error: %v", err)
					assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
					nsHint(t, err, "no Kerberos ticket: run kinit or set Kerberos.Keytab")
				} else {
					assert.Zero(t, pae.StatusCode, "request %d: no request was sent", i)
				}
			}
			cl.CloseIdleConnections()
			assert.Equal(t, 1, w.tally().Requests)
			assert.Equal(t, []string{nsLine(tt.tls, 407, "-")}, nsLog(t, neg, from, 1))
			assert.Zero(t, kdc.count(t, "AS_REQ", "ISSUE", alice, nsTGT(k))+kdc.count(t, "TGS_REQ", "ISSUE", alice, k.ServicePrincipal), "the KDC was not asked")
			_, logged := negc.curl(t, k.Env(missing), neg.LocalhostURL(), tt.tls, 407, "-", nsNegotiate...)
			negc.addRow("no-tgt", tt.tls, 407, "407", logged)
		})

		// An expired ticket in the cache Kerberos.CCache names.
		t.Run("expired/"+tt.name, func(t *testing.T) {
			count("squid")
			// MIT's clients (curl) take a ticket as valid through the
			// second it ends in; gokrb5 and proxyauth up to the instant.
			nsUntil(t, shortEnd.Add(time.Second))
			w := &nsWire{}
			cl := newClient(t, proxyauth.Config{Proxies: []string{neg.LocalhostURL()}, Base: w.base(o), Schemes: negotiate(proxyauth.Kerberos{CCache: short})})
			kdc := nsMark(t, k)
			from := neg.accessLogSize(t)
			_, err := get(cl, target)
			pae := nsProxyAuthError(t, err)
			t.Logf("error: %v", err)
			assert.Equal(t, http.StatusProxyAuthRequired, pae.StatusCode)
			assert.Contains(t, err.Error(), "Negotiate: no Kerberos ticket: the ticket in the credential cache "+short+" expired at "+
				shortEnd.UTC().Format(time.RFC3339)+"; no keytab; no password")
			nsHint(t, err, "the Kerberos ticket has expired")
			cl.CloseIdleConnections()
			assert.Equal(t, 1, w.tally().Requests)
			assert.Equal(t, []string{nsLine(tt.tls, 407, "-")}, nsLog(t, neg, from, 1))
			assert.Zero(t, kdc.count(t, "TGS_REQ", "", alice, k.ServicePrincipal), "the KDC was not asked")
			_, logged := negc.curl(t, k.Env(short), neg.LocalhostURL(), tt.tls, 407, "-", nsNegotiate...)
			negc.addRow("expired", tt.tls, 407, "407", logged)
		})

		// Fall-through to NTLM: a username of the form DOMAIN\user and no
		// ticket (Kerberos cannot use such a name), or a password the KDC
		// refuses (ntlm_fake_auth takes any). The request succeeds with
		// NTLM, without a Negotiate token on the wire or a request spent
		// on it: the first request's 407, then NTLM's two legs.
		for _, fall := range []struct {
			name, user, pass string
			logged           string // the user squid logs through ntlm_fake_auth
			kdcFailures      int
		}{
			{"no-tgt>ntlm", `CORP\` + user, secret, `CORP\\` + user, 0},
			{"bad-pw>ntlm", user, wrong, user, 1},
		} {
			t.Run(fall.name+"/"+tt.name, func(t *testing.T) {
				count("squid")
				w := &nsWire{}
				cl := newClient(t, proxyauth.Config{Proxies: []string{withUser(t, negNTLM.LocalhostURL(), fall.user, fall.pass)}, Base: w.base(o),
					Schemes: append(negotiate(proxyauth.Kerberos{}), proxyauth.NTLM())})
				kdc := nsMark(t, k)
				from := negNTLM.accessLogSize(t)
				nsGets(t, cl, target, nsSequential)
				cl.CloseIdleConnections()
				want := []string{"GET 407 -", "HEAD 407 -"}
				want = append(want, nsRepeat("GET 200 "+fall.logged, nsSequential)...)
				if tt.tls {
					want = []string{"CONNECT 407 -", "CONNECT 407 -", "CONNECT 200 " + fall.logged}
				}
				assert.Equal(t, want, nsLog(t, negNTLM, from, len(want)))
				wire := w.tally()
				assert.Equal(t, map[string]int{"NTLM": 2}, wire.Fields, "NTLM's two legs, no Negotiate token")
				assert.Equal(t, map[string]int{"NTLM": 1}, wire.With, "on one connection")
				assert.Equal(t, 2-btoi(tt.tls), wire.Conns, "a tunnel's handshake goes on the connection of its 407")
				assert.Equal(t, len(want), wire.Requests)
				assert.Equal(t, fall.kdcFailures, kdc.count(t, "AS_REQ", "PREAUTH_FAILED", alice, nsTGT(k)), "failed logins at the KDC")

				// curl told to use NTLM gets the same; left to choose, it
				// takes Negotiate without a ticket and gives up.
				_, logged := ntlmc.curl(t, nil, negNTLM.URL, tt.tls, 200, corpFakeNTLMUser(map[bool]string{true: "CORP", false: ""}[strings.HasPrefix(fall.user, "CORP")], user),
					"--proxy-ntlm", "-U", fall.user+":"+fall.pass)
				ntlmc.addRow(fall.name, tt.tls, 200, "200", logged+" (proxyauth: "+fall.logged+")")
				if fall.name == "no-tgt>ntlm" {
					_, logged = ntlmc.curl(t, k.Env(missing), negNTLM.LocalhostURL(), tt.tls, 407, "-", "--proxy-anyauth", "-U", fall.user+":"+fall.pass)
					ntlmc.addRow("any-no-tgt", tt.tls, 407, "200", logged+" (proxyauth: "+fall.logged+")")
				}
			})
		}

		// Fall-through to Basic, when the proxy has asked: the Kerberos
		// password is refused by the KDC, the Basic one accepted by squid.
		// The KDC must be asked once, not once per request.
		t.Run("bad-pw>basic/"+tt.name, func(t *testing.T) {
			count("squid")
			w := &nsWire{}
			cl := newClient(t, proxyauth.Config{Proxies: []string{withUser(t, negBasic.LocalhostURL(), user, basicPass)}, Base: w.base(o),
				Schemes: append(negotiate(proxyauth.Kerberos{}), proxyauth.Basic()), WaitForChallenge: true})
			kdc := nsMark(t, k)
			from := negBasic.accessLogSize(t)
			nsGets(t, cl, target, nsSequential)
			cl.CloseIdleConnections()
			want := nsWant(tt.tls, user, nsSequential)
			assert.Equal(t, want, nsLog(t, negBasic, from, len(want)))
			wire := w.tally()
			basics := map[bool]int{false: nsSequential, true: 1}[tt.tls] // with every forwarded request, or the one CONNECT
			assert.Equal(t, map[string]int{"Basic": basics}, wire.Fields, "no Negotiate token")
			assert.Equal(t, len(want), wire.Requests, "no request spent on Negotiate")
			assert.Equal(t, 1, kdc.count(t, "AS_REQ", "PREAUTH_FAILED", alice, nsTGT(k)),
				"failed logins the KDC counted against alice for %d requests", nsSequential)
			_, logged := basicc.curl(t, nil, negBasic.URL, tt.tls, 200, user, "--proxy-basic", "-U", user+":"+basicPass)
			basicc.addRow("bad-pw>basic", tt.tls, 200, "200", logged)
		})

		// Without WaitForChallenge, Basic goes with the first request, as
		// Config documents, although the proxy would take the ticket at
		// hand: squid logs the Basic user, and no token is sent.
		t.Run("basic-before-challenge/"+tt.name, func(t *testing.T) {
			count("squid")
			w := &nsWire{}
			cl := newClient(t, proxyauth.Config{Proxies: []string{withUser(t, negBasic.LocalhostURL(), user, basicPass)}, Base: w.base(o),
				Schemes: append(negotiate(proxyauth.Kerberos{CCache: k.Kinit(t, user, secret)}), proxyauth.Basic())})
			from := negBasic.accessLogSize(t)
			nsGets(t, cl, target, 1)
			cl.CloseIdleConnections()
			assert.Equal(t, []string{nsLine(tt.tls, 200, user)}, nsLog(t, negBasic, from, 1))
			assert.Equal(t, map[string]int{"Basic": 1}, w.tally().Fields)
		})
	}
}
