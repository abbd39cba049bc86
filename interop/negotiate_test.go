package interop_test

// The Negotiate scheme's Kerberos side against MIT Kerberos's KDC: the
// tokens it makes from a credential cache, a keytab and a password, each
// verified by gokrb5's service side with the proxy's keytab, as squid's
// helper would, and the errors it gives for what goes wrong, with what the
// KDC logged. No proxy takes part: the connection-bound dial path is not
// part of these tests.
//
// Identifiers that are not part of the helpers' API carry a "neg" prefix.

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// negProxy is the proxy the tokens are for: its host makes the service
// principal HTTP/localhost. Nothing listens there.
const negProxy = "http://localhost:3128"

// negStart starts a Negotiate session as the Transport does once a proxy
// has challenged.
func negStart(t testing.TB, k proxyauth.Kerberos, creds proxyauth.Credentials) (proxyauth.ConnAuthorizer, error) {
	t.Helper()
	a, err := proxyauth.Negotiate(k).Start(&proxyauth.Challenge{Scheme: "Negotiate"}, creds)
	if err != nil {
		require.Nil(t, a)
		return nil, err
	}
	ca, ok := a.(proxyauth.ConnAuthorizer)
	require.True(t, ok, "Negotiate's Authorizer is a ConnAuthorizer: %T", a)
	return ca, nil
}

// negToken runs the handshake of one connection to proxy and returns the
// value of its only leg.
func negToken(ctx context.Context, t testing.TB, a proxyauth.ConnAuthorizer, proxy string) (string, error) {
	t.Helper()
	u, err := url.Parse(proxy)
	require.NoError(t, err)
	hs, err := a.Handshake(ctx, proxyauth.AuthRequest{Method: "CONNECT", URI: "127.0.0.1:443", Proxy: u})
	if err != nil {
		return "", err
	}
	v, last, err := hs.Next(nil)
	require.NoError(t, err)
	assert.True(t, last, "Kerberos through SPNEGO is one leg")
	require.True(t, strings.HasPrefix(v, "Negotiate "), "the value is a Negotiate token (not shown)")
	return v, nil
}

// negAccept verifies a Proxy-Authorization value with the service keytab,
// as squid's negotiate_kerberos_auth does, and returns the client
// principal the ticket names.
func negAccept(t testing.TB, k *KDC, value string) (string, error) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(value, "Negotiate "))
	require.NoError(t, err)
	kt, err := keytab.Load(k.ServiceKeytab)
	require.NoError(t, err)
	var tok spnego.SPNEGOToken
	require.NoError(t, tok.Unmarshal(b))
	svc := spnego.SPNEGOService(kt, service.DecodePAC(false), service.KeytabPrincipal(strings.TrimSuffix(k.ServicePrincipal, "@"+k.Realm)))
	ok, ctx, status := svc.AcceptSecContext(&tok)
	if !ok {
		return "", status
	}
	id, _ := ctx.Value("github.com/jcmturner/gokrb5/v8/ctxCredentials").(*credentials.Credentials)
	require.NotNil(t, id, "the accepted context names the client")
	return id.UserName() + "@" + id.Domain(), nil
}

// negSettle returns the KDC's log once it holds every request made so far:
// krb5kdc handles one request after the other and logs each after it has
// answered it, so the log is complete once it shows the answer to one more
// request, a kinit for an unknown principal, made now.
func negSettle(t testing.TB, k *KDC) string {
	t.Helper()
	marker := fmt.Sprintf("settle-%d", negMarkers.Add(1))
	_, err := k.KinitErr(marker, "x")
	require.ErrorContains(t, err, "not found in Kerberos database")
	require.NoError(t, k.proc.out.waitFor(marker+"@"+k.Realm+" for krbtgt/", 0, k.proc.exited, generous), "the KDC logged %s", marker)
	return k.Log()
}

var negMarkers atomic.Int64

// negMissing is a credential cache that does not exist, so that no test
// depends on the machine's default cache.
func negMissing(t testing.TB) string { return filepath.Join(t.TempDir(), "no-ccache") }

func TestNegotiateToken(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret, "bob": "b0b-pass"})
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	cases := []struct {
		name  string
		k     proxyauth.Kerberos
		creds proxyauth.Credentials
		want  string
	}{
		{"ccache", proxyauth.Kerberos{Config: k.Config, CCache: k.Kinit(t, user, secret)}, proxyauth.Credentials{}, k.Principal(user)},
		{"ccache-FILE-prefix", proxyauth.Kerberos{Config: k.Config, CCache: "FILE:" + k.Kinit(t, "bob", "b0b-pass")}, proxyauth.Credentials{}, k.Principal("bob")},
		// The cache is used before the password, which is never sent to the KDC.
		{"ccache-before-password", proxyauth.Kerberos{Config: k.Config, CCache: k.KinitKeytab(t, "bob")}, proxyauth.Credentials{Username: user, Password: "not-used"}, k.Principal("bob")},
		{"keytab", proxyauth.Kerberos{Config: k.Config, Keytab: k.ClientKeytab(t, "bob"), Principal: "bob"}, proxyauth.Credentials{}, k.Principal("bob")},
		{"keytab-with-realm", proxyauth.Kerberos{Config: k.Config, Keytab: k.ClientKeytab(t, user), Principal: k.Principal(user)}, proxyauth.Credentials{}, k.Principal(user)},
		{"password-username", proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t)}, proxyauth.Credentials{Username: user, Password: secret}, k.Principal(user)},
		{"password-username-realm", proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t)}, proxyauth.Credentials{Username: "bob@" + k.Realm, Password: "b0b-pass"}, k.Principal("bob")},
		{"password-principal", proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t), Principal: "bob"}, proxyauth.Credentials{Username: "ignored", Password: "b0b-pass"}, k.Principal("bob")},
		{"explicit-SPN", proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t), SPN: "HTTP/localhost"}, proxyauth.Credentials{Username: user, Password: secret}, k.Principal(user)},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			a, err := negStart(t, tt.k, tt.creds)
			require.NoError(t, err)
			proxy := negProxy
			if tt.k.SPN != "" {
				proxy = "http://127.0.0.1:3128" // the SPN, not the host, names the principal
			}
			v, err := negToken(ctx, t, a, proxy)
			require.NoError(t, err)
			got, err := negAccept(t, k, v)
			require.NoError(t, err, "the proxy's keytab accepts the token")
			assert.Equal(t, tt.want, got, "the client principal the ticket names")
		})
	}
	log := negSettle(t, k)
	assert.Contains(t, log, "alice@PROXYAUTH.TEST for HTTP/localhost@PROXYAUTH.TEST", "a service ticket for the proxy")
	assert.Contains(t, log, "bob@PROXYAUTH.TEST for HTTP/localhost@PROXYAUTH.TEST", "a service ticket for the proxy")
}

// TestNegotiateTicketReuse: one login and one service ticket serve every
// connection, each with an authenticator of its own, which the proxy's
// replay cache would otherwise refuse.
func TestNegotiateTicketReuse(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret})
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	a, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t)}, proxyauth.Credentials{Username: user, Password: secret})
	require.NoError(t, err)

	const conns = 8
	values := make([]string, conns)
	var wg sync.WaitGroup
	for i := range values {
		wg.Go(func() {
			v, err := negToken(ctx, t, a, negProxy)
			assert.NoError(t, err)
			values[i] = v
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, v := range values {
		require.NotEmpty(t, v)
		assert.False(t, seen[v], "each connection has a token of its own")
		seen[v] = true
		got, err := negAccept(t, k, v)
		require.NoError(t, err)
		assert.Equal(t, k.Principal(user), got)
	}
	// The same token a second time is a replay.
	_, err = negAccept(t, k, values[0])
	require.Error(t, err)
	assert.Contains(t, err.Error(), "replay", "gokrb5's service refuses a replayed authenticator")

	log := negSettle(t, k)
	issued := func(req, service string) (n int) {
		for _, l := range strings.Split(log, "\n") {
			if strings.Contains(l, req+" ") && strings.Contains(l, ": ISSUE: ") && strings.HasSuffix(l, "alice@PROXYAUTH.TEST for "+service) {
				n++
			}
		}
		return n
	}
	assert.Equal(t, 1, issued("AS_REQ", "krbtgt/PROXYAUTH.TEST@PROXYAUTH.TEST"), "one login:\n%s", log)
	assert.Equal(t, 1, issued("TGS_REQ", "HTTP/localhost@PROXYAUTH.TEST"), "one service ticket for %d connections:\n%s", conns, log)
}

func TestNegotiateLoginErrors(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret, "bob": "b0b-pass"})
	missing := negMissing(t)
	cases := []struct {
		name   string
		k      proxyauth.Kerberos
		creds  proxyauth.Credentials
		want   []string
		kdcLog string // what the KDC logged for it, if it was asked
	}{
		{"wrong-password", proxyauth.Kerberos{Config: k.Config, CCache: missing}, proxyauth.Credentials{Username: user, Password: "wr0ng-pass"},
			[]string{"password login for alice@PROXYAUTH.TEST: the KDC refused the password", "KDC_ERR_PREAUTH_FAILED"}, "PREAUTH_FAILED"},
		{"unknown-principal", proxyauth.Kerberos{Config: k.Config, CCache: missing}, proxyauth.Credentials{Username: "nobody", Password: "x-pass"},
			[]string{"password login for nobody@PROXYAUTH.TEST: the KDC does not know the principal", "KDC_ERR_C_PRINCIPAL_UNKNOWN"}, "CLIENT_NOT_FOUND"},
		{"keytab-of-another", proxyauth.Kerberos{Config: k.Config, Keytab: k.ClientKeytab(t, "bob"), Principal: user},
			proxyauth.Credentials{}, []string{"keytab login for alice@PROXYAUTH.TEST", k.ClientKeytab(t, "bob") + " holds no key for alice@PROXYAUTH.TEST"}, ""},
		{"keytab-without-principal", proxyauth.Kerberos{Config: k.Config, Keytab: k.ClientKeytab(t, "bob")},
			proxyauth.Credentials{Username: "bob"}, []string{"Kerberos.Keytab: a keytab needs Kerberos.Principal"}, ""},
		{"no-ticket", proxyauth.Kerberos{Config: k.Config, CCache: missing}, proxyauth.Credentials{Username: user},
			[]string{"no Kerberos ticket: the credential cache " + missing + " does not exist; no keytab; no password"}, ""},
		{"cache-of-another", proxyauth.Kerberos{Config: k.Config, CCache: k.Kinit(t, "bob", "b0b-pass"), Principal: user}, proxyauth.Credentials{},
			[]string{"holds the tickets of bob@PROXYAUTH.TEST, not alice@PROXYAUTH.TEST; no keytab; no password"}, ""},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			_, err := negStart(t, tt.k, tt.creds)
			require.Error(t, err)
			t.Logf("error: %v", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			if tt.creds.Password != "" {
				assert.NotContains(t, err.Error(), tt.creds.Password)
			}
			if tt.kdcLog != "" {
				assert.Contains(t, negSettle(t, k), tt.kdcLog, "the KDC refused it")
			}
		})
	}
}

// TestNegotiateExpiredTicket: a credential cache whose ticket expired is
// not used: a password, if there is one, logs in instead.
func TestNegotiateExpiredTicket(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret})
	cache, end := nsShortTicket(t, k, user, secret)
	nsUntil(t, end)
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()

	_, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: cache}, proxyauth.Credentials{Username: user})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no Kerberos ticket: the ticket in the credential cache "+cache+" expired at "+end.UTC().Format(time.RFC3339)+"; no keytab; no password")

	a, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: cache}, proxyauth.Credentials{Username: user, Password: secret})
	require.NoError(t, err, "the password logs in instead")
	v, err := negToken(ctx, t, a, negProxy)
	require.NoError(t, err)
	got, err := negAccept(t, k, v)
	require.NoError(t, err)
	assert.Equal(t, k.Principal(user), got)
}

// TestNegotiateCacheWrittenAgain: a session over a credential cache takes
// up the tickets that kinit writes into it later.
func TestNegotiateCacheWrittenAgain(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret, "bob": "b0b-pass"})
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	cache := filepath.Join(t.TempDir(), "cc")
	copyFile := func(from string) {
		b, err := os.ReadFile(from)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(cache+".new", b, 0o600))
		require.NoError(t, os.Rename(cache+".new", cache))
	}
	copyFile(k.Kinit(t, user, secret))
	a, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: cache}, proxyauth.Credentials{})
	require.NoError(t, err)
	v, err := negToken(ctx, t, a, negProxy)
	require.NoError(t, err)
	got, err := negAccept(t, k, v)
	require.NoError(t, err)
	assert.Equal(t, k.Principal(user), got)

	copyFile(k.Kinit(t, "bob", "b0b-pass"))
	v, err = negToken(ctx, t, a, negProxy)
	require.NoError(t, err)
	got, err = negAccept(t, k, v)
	require.NoError(t, err)
	assert.Equal(t, k.Principal("bob"), got, "the ticket kinit wrote since")
}

func TestNegotiateServiceErrors(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret})
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	a, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: k.Kinit(t, user, secret)}, proxyauth.Credentials{})
	require.NoError(t, err)

	// Addressed by its address, the proxy is HTTP/127.0.0.1, which the
	// realm does not have.
	_, err = negToken(ctx, t, a, "http://127.0.0.1:3128")
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.Contains(t, err.Error(), "Kerberos service ticket for HTTP/127.0.0.1 (alice@PROXYAUTH.TEST): the KDC does not know the service principal HTTP/127.0.0.1")
	assert.Contains(t, err.Error(), "KDC_ERR_S_PRINCIPAL_UNKNOWN")
	assert.Contains(t, negSettle(t, k), "alice@PROXYAUTH.TEST for HTTP/127.0.0.1@PROXYAUTH.TEST, Server not found in Kerberos database")

	// A handshake with an SPN the proxy's keytab accepts still works on
	// the same session.
	v, err := negToken(ctx, t, a, "http://LocalHost:3128")
	require.NoError(t, err, "the host is lower-cased into the SPN")
	_, err = negAccept(t, k, v)
	require.NoError(t, err)
}

// TestNegotiateKDCUnreachable: with the KDC gone, a password login says
// where it tried.
func TestNegotiateKDCUnreachable(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret})
	k.Stop()
	_, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t)}, proxyauth.Credentials{Username: user, Password: secret})
	require.Error(t, err)
	t.Logf("error: %v", err)
	assert.Contains(t, err.Error(), "password login for alice@PROXYAUTH.TEST: the KDC "+k.Addr+" (realm PROXYAUTH.TEST) cannot be reached")
	assert.Contains(t, err.Error(), "connection refused")
	assert.NotContains(t, err.Error(), secret)
}

// TestNegotiateHandshakeContext: a KDC that accepts the connection and
// never answers holds a handshake only as long as its context.
func TestNegotiateHandshakeContext(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{user: secret})
	cache := k.Kinit(t, user, secret)

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := silent.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		silent.Close()
		select {
		case c := <-accepted:
			c.Close()
		default:
		}
	})
	conf, err := os.ReadFile(k.Config)
	require.NoError(t, err)
	mute := filepath.Join(t.TempDir(), "krb5.conf")
	require.NoError(t, os.WriteFile(mute, []byte(strings.ReplaceAll(string(conf), k.Addr, silent.Addr().String())), 0o600))

	a, err := negStart(t, proxyauth.Kerberos{Config: mute, CCache: cache}, proxyauth.Credentials{})
	require.NoError(t, err, "the cache's ticket needs no KDC")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err = negToken(ctx, t, a, negProxy)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(begin), 4*time.Second, "not gokrb5's 5-second deadline")
	select {
	case c := <-accepted:
		accepted <- c
	case <-time.After(generous):
		t.Fatal("the KDC was asked")
	}
}

// TestNegotiateRenewalGoroutine: gokrb5 renews the ticket of a password
// login in a goroutine of its own; it ends with the session. Not
// parallel: it counts goroutines.
func TestNegotiateRenewalGoroutine(t *testing.T) {
	k := StartKDC(t, map[string]string{user: secret})
	renewers := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return strings.Count(string(buf), "created by github.com/jcmturner/gokrb5/v8/client.(*Client).enableAutoSessionRenewal ")
	}
	before := renewers()
	func() {
		a, err := negStart(t, proxyauth.Kerberos{Config: k.Config, CCache: negMissing(t)}, proxyauth.Credentials{Username: user, Password: secret})
		require.NoError(t, err)
		require.Equal(t, before+1, renewers(), "the login's renewal goroutine")
		runtime.KeepAlive(a)
	}()
	// The session is unreachable now; a collection runs its cleanup.
	deadline := time.Now().Add(generous)
	for i := 0; i < 10000 && renewers() > before && time.Now().Before(deadline); i++ {
		runtime.GC()
		runtime.Gosched()
	}
	assert.Equal(t, before, renewers(), "the renewal goroutine ended with the session")
}
