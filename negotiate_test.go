package proxyauth

// Hermetic tests of the Negotiate scheme: what it does without a KDC, or
// with one that cannot be reached. Its tokens are tested against a real KDC
// in interop/negotiate_test.go.

import (
	"encoding/hex"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/test/testdata"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// negWrite writes a file in a new temp directory.
func negWrite(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, b, 0o600))
	return path
}

// negHex writes the bytes of a gokrb5 test vector.
func negHex(t *testing.T, name, h string) string {
	t.Helper()
	b, err := hex.DecodeString(h)
	require.NoError(t, err)
	return negWrite(t, name, b)
}

// negConf writes a krb5.conf for the realm EXAMPLE.TEST with its KDC at
// kdc, without DNS, over TCP.
func negConf(t *testing.T, kdc string) string {
	t.Helper()
	return negWrite(t, "krb5.conf", []byte(strings.Join([]string{
		"[libdefaults]",
		"  default_realm = EXAMPLE.TEST",
		"  dns_lookup_kdc = false",
		"  dns_lookup_realm = false",
		"  udp_preference_limit = 1",
		"[realms]",
		"  EXAMPLE.TEST = {",
		"    kdc = " + kdc,
		"  }",
		"  TEST.GOKRB5 = {",
		"    kdc = " + kdc,
		"  }",
		"",
	}, "\n")))
}

// negClosedPort returns a loopback address that refuses connections.
func negClosedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// negEnv points KRB5_CONFIG at conf and KRB5CCNAME at a cache that does
// not exist, which it returns.
func negEnv(t *testing.T, conf string) string {
	t.Helper()
	missing := filepath.Join(t.TempDir(), "krb5cc_missing")
	t.Setenv("KRB5_CONFIG", conf)
	t.Setenv("KRB5CCNAME", "FILE:"+missing)
	return missing
}

func negStart(k Kerberos, creds Credentials) (Authorizer, error) {
	return Negotiate(k).Start(&Challenge{Scheme: "Negotiate"}, creds)
}

// asKerberos returns err as a *kerberosError, failing the test if it is
// not one.
func asKerberos(t *testing.T, err error) *kerberosError {
	t.Helper()
	var ke *kerberosError
	require.True(t, errors.As(err, &ke), "%T is a *kerberosError: %v", err, err)
	return ke
}

func TestNegotiateScheme(t *testing.T) {
	s := Negotiate(Kerberos{})
	assert.Equal(t, "Negotiate", s.Name())
	strongest := 0
	for _, alg := range []string{"", "MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"} {
		strongest = max(strongest, Digest().Strength(Challenge{Scheme: "Digest", Params: map[string]string{"nonce": "n", "algorithm": alg}}))
	}
	assert.Equal(t, 51, strongest)
	assert.Equal(t, 60, s.Strength(Challenge{Scheme: "Negotiate"}))
	assert.Greater(t, s.Strength(Challenge{Scheme: "Negotiate"}), strongest, "stronger than every Digest")

	// Before any challenge, nothing is sent, and nothing is looked at:
	// the configuration named here does not exist.
	a, err := Negotiate(Kerberos{Config: "/nonexistent/krb5.conf"}).Start(nil, Credentials{Username: "alice", Password: "pw"})
	assert.NoError(t, err)
	assert.Nil(t, a)
}

func TestNegotiateValidate(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	garbage := negWrite(t, "garbage", []byte("\x07 not a keytab, cache or krb5.conf"))
	badConf := negWrite(t, "krb5.conf", []byte("[libdefaults]\n  ticket_lifetime = forever\n"))
	cc, err := hex.DecodeString(testdata.CCACHE_TEST)
	require.NoError(t, err)
	truncatedCC := negWrite(t, "cc-truncated", cc[:len(cc)/3])
	kt, err := hex.DecodeString(testdata.KEYTAB_TESTUSER1_TEST_GOKRB5)
	require.NoError(t, err)
	truncatedKT := negWrite(t, "kt-truncated", kt[:len(kt)/3])
	goodKT := negWrite(t, "kt", kt)
	goodConf := negConf(t, "127.0.0.1:88")

	cases := []struct {
		name string
		k    Kerberos
		want string // "" for none
	}{
		{"zero", Kerberos{}, ""},
		{"good-files", Kerberos{Config: goodConf, Keytab: goodKT, Principal: "testuser1@TEST.GOKRB5", CCache: negHex(t, "cc", testdata.CCACHE_TEST), SPN: "HTTP/proxy.example.test"}, ""},
		{"FILE-prefix", Kerberos{CCache: "FILE:" + negHex(t, "cc", testdata.CCACHE_TEST)}, ""},
		{"config-missing", Kerberos{Config: missing}, "the Kerberos configuration " + missing + " does not exist"},
		{"config-garbage", Kerberos{Config: badConf}, "the Kerberos configuration " + badConf + " does not parse"},
		{"keytab-missing", Kerberos{Keytab: missing, Principal: "alice"}, "the keytab " + missing + " does not exist"},
		{"keytab-garbage", Kerberos{Keytab: garbage, Principal: "alice"}, "the keytab " + garbage + " does not parse"},
		{"keytab-truncated", Kerberos{Keytab: truncatedKT, Principal: "alice"}, "the keytab " + truncatedKT + " does not parse"},
		{"keytab-without-principal", Kerberos{Keytab: goodKT}, "a keytab needs Kerberos.Principal"},
		{"ccache-missing", Kerberos{CCache: missing}, "the credential cache " + missing + " does not exist"},
		{"ccache-FILE-missing", Kerberos{CCache: "FILE:" + missing}, "the credential cache " + missing + " does not exist"},
		{"ccache-garbage", Kerberos{CCache: garbage}, "the credential cache " + garbage + " does not parse"},
		{"ccache-truncated", Kerberos{CCache: truncatedCC}, "the credential cache " + truncatedCC + " does not parse"},
		{"ccache-keyring", Kerberos{CCache: "KEYRING:persistent:1000"}, "the credential cache KEYRING:persistent:1000 is of type KEYRING: only files (FILE:) are supported"},
		{"spn-with-realm", Kerberos{SPN: "HTTP/proxy@EXAMPLE.TEST"}, `"HTTP/proxy@EXAMPLE.TEST" holds a realm`},
		{"spn-without-service", Kerberos{SPN: "proxy.example.test"}, "is not of the form service/host"},
		{"principal-domain-user", Kerberos{Principal: `CORP\alice`}, `it is of the form DOMAIN\user`},
		{"principal-empty-realm", Kerberos{Principal: "alice@"}, "its realm is empty"},
		{"principal-empty-name", Kerberos{Principal: "@EXAMPLE.TEST"}, "its name is empty"},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.k.validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			ke := asKerberos(t, err)
			assert.Equal(t, kerbConfig, ke.kind)
			assert.NotEmpty(t, ke.hint())
		})
	}
}

// TestNegotiateSkipReasons: with no ticket, keytab or password, the error
// says why each way was not taken.
func TestNegotiateSkipReasons(t *testing.T) {
	conf := negConf(t, negClosedPort(t))
	t.Run("KRB5CCNAME", func(t *testing.T) {
		missing := negEnv(t, conf)
		_, err := negStart(Kerberos{}, Credentials{Username: "alice"})
		require.Error(t, err)
		assert.Equal(t, "no Kerberos ticket: the credential cache "+missing+" does not exist; no keytab; no password", err.Error())
		ke := asKerberos(t, err)
		assert.Equal(t, kerbNoTicket, ke.kind)
		assert.Equal(t, "no Kerberos ticket: run kinit or set Kerberos.Keytab", ke.hint())
	})
	t.Run("KRB5CCNAME-not-a-file", func(t *testing.T) {
		negEnv(t, conf)
		t.Setenv("KRB5CCNAME", "KCM:0")
		_, err := negStart(Kerberos{}, Credentials{})
		require.Error(t, err)
		assert.Equal(t, "no Kerberos ticket: the credential cache KCM:0 is of type KCM: only files (FILE:) are supported; no keytab; no password", err.Error())
	})
	t.Run("password-without-principal", func(t *testing.T) {
		missing := negEnv(t, conf)
		_, err := negStart(Kerberos{}, Credentials{Password: "s3cret-pw"})
		require.Error(t, err)
		assert.Equal(t, "no Kerberos ticket: the credential cache "+missing+" does not exist; no keytab; a password but no principal (Kerberos.Principal and Credentials.Username are empty)", err.Error())
	})
	t.Run("default-cache", func(t *testing.T) {
		negEnv(t, conf)
		os.Unsetenv("KRB5CCNAME") // t.Setenv restores it
		def := "/tmp/krb5cc_" + strconv.Itoa(os.Getuid())
		if _, err := os.Stat(def); err == nil {
			t.Skipf("%s exists on this machine", def)
		}
		_, err := negStart(Kerberos{}, Credentials{})
		require.Error(t, err)
		assert.Equal(t, "no Kerberos ticket: the credential cache "+def+" does not exist; no keytab; no password", err.Error())
	})
	t.Run("expired", func(t *testing.T) {
		negEnv(t, conf)
		// gokrb5's test cache, of 2017: its ticket has long expired.
		cache := negHex(t, "cc", testdata.CCACHE_TEST)
		_, err := negStart(Kerberos{CCache: cache}, Credentials{})
		require.Error(t, err)
		assert.Equal(t, "no Kerberos ticket: the ticket in the credential cache "+cache+" expired at 2017-07-13T05:25:34Z; no keytab; no password", err.Error())
		ke := asKerberos(t, err)
		assert.Equal(t, kerbExpired, ke.kind)
		assert.Contains(t, ke.hint(), "run kinit again")
	})
	t.Run("cache-of-another", func(t *testing.T) {
		negEnv(t, conf)
		cache := negHex(t, "cc", testdata.CCACHE_TEST)
		_, err := negStart(Kerberos{CCache: cache, Principal: "alice"}, Credentials{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the credential cache "+cache+" holds the tickets of testuser1@TEST.GOKRB5, not alice@EXAMPLE.TEST; no keytab; no password")
	})
	t.Run("no-configuration", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "krb5.conf")
		t.Setenv("KRB5_CONFIG", missing)
		_, err := negStart(Kerberos{}, Credentials{Username: "alice", Password: "pw"})
		require.Error(t, err)
		assert.Equal(t, "no Kerberos configuration: KRB5_CONFIG="+missing+": no such file", err.Error())
		assert.Contains(t, asKerberos(t, err).hint(), "set Kerberos.Config or KRB5_CONFIG")
	})
	t.Run("KRB5_CONFIG-list", func(t *testing.T) {
		negEnv(t, "")
		t.Setenv("KRB5_CONFIG", filepath.Join(t.TempDir(), "missing")+":"+conf)
		_, err := negStart(Kerberos{}, Credentials{Username: "alice", Password: "pw"})
		require.Error(t, err)
		assert.Equal(t, kerbUnreachable, asKerberos(t, err).kind, "the second file of the list was read: %v", err)
	})
	t.Run("explicit-config-missing", func(t *testing.T) {
		negEnv(t, conf)
		_, err := negStart(Kerberos{Config: filepath.Join(t.TempDir(), "missing")}, Credentials{Username: "alice", Password: "pw"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "does not exist")
		assert.Equal(t, kerbConfig, asKerberos(t, err).kind)
	})
	t.Run("no-default-realm", func(t *testing.T) {
		negEnv(t, negWrite(t, "krb5.conf", []byte("[libdefaults]\n  dns_lookup_kdc = false\n")))
		_, err := negStart(Kerberos{}, Credentials{Username: "alice", Password: "pw"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), `Kerberos principal "alice": it has no realm, and the Kerberos configuration names no default_realm`)
	})
	t.Run("realm-without-KDC", func(t *testing.T) {
		negEnv(t, conf)
		_, err := negStart(Kerberos{}, Credentials{Username: "alice@OTHER.TEST", Password: "pw"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the Kerberos configuration names no KDC for the realm OTHER.TEST")
		assert.Equal(t, kerbConfig, asKerberos(t, err).kind)
	})
	t.Run("keytab-without-principal", func(t *testing.T) {
		negEnv(t, conf)
		_, err := negStart(Kerberos{Keytab: negHex(t, "kt", testdata.KEYTAB_TESTUSER1_TEST_GOKRB5)}, Credentials{Username: "alice", Password: "pw"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "a keytab needs Kerberos.Principal")
		assert.Equal(t, "set Kerberos.Principal to the principal the keytab holds keys for", asKerberos(t, err).hint())
	})
}

// TestNegotiateKDCUnreachable: a KDC that refuses the connection, for a
// password login and a keytab login.
func TestNegotiateKDCUnreachable(t *testing.T) {
	kdc := negClosedPort(t)
	negEnv(t, negConf(t, kdc))
	const password = "hunter2-Secret"
	for name, start := range map[string]func() (Authorizer, error){
		"password": func() (Authorizer, error) {
			return negStart(Kerberos{}, Credentials{Username: "alice", Password: password})
		},
		"keytab": func() (Authorizer, error) {
			return negStart(Kerberos{Keytab: negHex(t, "kt", testdata.KEYTAB_TESTUSER1_TEST_GOKRB5), Principal: "testuser1@TEST.GOKRB5"}, Credentials{Password: password})
		},
	} {
		t.Run(name, func(t *testing.T) {
			a, err := start()
			require.Error(t, err)
			assert.Nil(t, a)
			assert.NotContains(t, err.Error(), password)
			assert.Contains(t, err.Error(), name+" login for ")
			assert.Contains(t, err.Error(), "cannot be reached")
			assert.Contains(t, err.Error(), "connection refused")
			ke := asKerberos(t, err)
			assert.Equal(t, kerbUnreachable, ke.kind)
			assert.Contains(t, ke.hint(), "the KDC at "+kdc+" (realm ")
			var kerr krberror.Krberror
			assert.True(t, errors.As(err, &kerr), "Unwrap gives gokrb5's error")
		})
	}
}

// TestKerberosErrorKinds: the KDC's errors, in the form gokrb5 gives
// them, are told apart, each with its hint.
func TestKerberosErrorKinds(t *testing.T) {
	kdcErr := func(code int32) error {
		return krberror.Errorf(messages.KRBError{ErrorCode: code}, krberror.KDCError, "AS Exchange Error: kerberos error response from KDC")
	}
	cases := []struct {
		name     string
		password string
		err      error
		kind     kerberosKind
		hint     string
	}{
		{"skew", "pw", kdcErr(errorcode.KRB_AP_ERR_SKEW), kerbSkew, "the clocks of this machine and the KDC differ by more than 5 minutes"},
		{"password", "pw", kdcErr(errorcode.KDC_ERR_PREAUTH_FAILED), kerbPassword, "the password was refused by the KDC"},
		{"keytab", "", kdcErr(errorcode.KDC_ERR_PREAUTH_FAILED), kerbKeytab, "the keytab's key was refused by the KDC"},
		{"unknown-client", "pw", kdcErr(errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN), kerbUnknownClient, "the KDC does not know the client principal"},
		{"unknown-service", "pw", kdcErr(errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN), kerbUnknownService, "the KDC does not know the service principal HTTP/proxy.example.test: set Kerberos.SPN or ask for the proxy's principal to be registered"},
		{"revoked", "pw", kdcErr(errorcode.KDC_ERR_CLIENT_REVOKED), kerbRevoked, "disabled, locked or expired"},
		{"password-expired", "pw", kdcErr(errorcode.KDC_ERR_KEY_EXPIRED), kerbKeyExpired, "the password of the principal has expired"},
		{"unreachable", "pw", krberror.Errorf(errors.New("dial tcp: connection refused"), krberror.NetworkingError, "AS Exchange Error: failed sending AS_REQ to KDC"), kerbUnreachable, "the KDC at 127.0.0.1:88 (realm EXAMPLE.TEST) cannot be reached"},
		{"no-preauth-wrong-password", "pw", krberror.Errorf(errors.New("x"), krberror.DecryptingError, "AS Exchange Error: AS_REP is not valid or client password/keytab incorrect"), kerbPassword, "the password was refused by the KDC"},
		{"other", "pw", errors.New("something else"), kerbOther, "see the KDC's log"},
	}
	cfgPath := negConf(t, "127.0.0.1:88")
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := loadKrb5Conf(cfgPath, "test")
			require.NoError(t, err)
			a := &negotiateAuthorizer{cfg: cfg, how: "the keytab /x", password: tt.password, keytab: tt.password == ""}
			err = a.kdcError("login for alice@EXAMPLE.TEST", "alice@EXAMPLE.TEST", "HTTP/proxy.example.test", tt.err)
			ke := asKerberos(t, err)
			assert.Equal(t, tt.kind, ke.kind, "%v", err)
			assert.Contains(t, ke.hint(), tt.hint)
			assert.True(t, strings.HasPrefix(err.Error(), "login for alice@EXAMPLE.TEST: "), err.Error())
			assert.Equal(t, tt.err, errors.Unwrap(err), "Unwrap gives gokrb5's error")
		})
	}

	// A password that a library's message would hold is masked, there
	// and in what Unwrap returns.
	cfg, err := loadKrb5Conf(cfgPath, "test")
	require.NoError(t, err)
	a := &negotiateAuthorizer{cfg: cfg, how: "the password", password: "Pa55-w0rd"}
	err = a.kdcError("password login for alice@EXAMPLE.TEST", "alice@EXAMPLE.TEST", "", errors.New("cannot derive a key from Pa55-w0rd"))
	assert.NotContains(t, err.Error(), "Pa55-w0rd")
	assert.Contains(t, err.Error(), "cannot derive a key from xxxxx")
	assert.NotContains(t, errors.Unwrap(err).Error(), "Pa55-w0rd")
}

func TestNegotiateHandshakeLegs(t *testing.T) {
	const token = "YIIBhgYGKwYBBQUCoIIBejCCAXagDTALBgkqhkiG9xIBAgKiggFj"
	h := &negotiateHandshake{value: "Negotiate " + token, spn: "HTTP/proxy.example.test"}
	v, last, err := h.Next(nil)
	require.NoError(t, err)
	assert.Equal(t, "Negotiate "+token, v)
	assert.True(t, last)
	_, _, err = h.Next(nil)
	assert.Error(t, err, "one leg only")

	_, _, err = h.Next(&Challenge{Scheme: "Negotiate"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "the proxy refused the Kerberos ticket for HTTP/proxy.example.test")
	assert.Equal(t, kerbRefused, asKerberos(t, err).kind)
	assert.Contains(t, asKerberos(t, err).hint(), "HTTP/proxy.example.test")

	_, _, err = h.Next(&Challenge{Scheme: "Negotiate", Token68: "oRQwEqADCgEBoQsGCSqGSIb3EgECAg=="})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a continuation, which is not supported: Kerberos through SPNEGO completes in one leg")
	assert.NotContains(t, err.Error(), "oRQwEq")
	assert.NotContains(t, err.Error(), token[:12])
	assert.Equal(t, kerbContinuation, asKerberos(t, err).kind)
}

func TestNegotiateAuthorizer(t *testing.T) {
	a := &negotiateAuthorizer{}
	var _ ConnAuthorizer = a
	_, err := a.Authorize(AuthRequest{Method: "GET"})
	assert.Error(t, err, "Authorize is not used for a connection-bound scheme")

	for proxy, want := range map[string]string{
		"http://Proxy.Example.TEST:3128": "HTTP/proxy.example.test",
		"https://proxy.example.test":     "HTTP/proxy.example.test",
		"http://[::1]:3128":              "HTTP/::1",
	} {
		u, err := url.Parse(proxy)
		require.NoError(t, err)
		got, err := a.spn(u)
		require.NoError(t, err)
		assert.Equal(t, want, got, "spn(%s)", proxy)
	}
	_, err = a.spn(nil)
	assert.Error(t, err)
	a.k.SPN = "HTTP/gateway.example.test"
	got, err := a.spn(&url.URL{Scheme: "http", Host: "10.0.0.1:3128"})
	require.NoError(t, err)
	assert.Equal(t, "HTTP/gateway.example.test", got, "Kerberos.SPN wins")
}
