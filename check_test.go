package proxyauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// checkTimeout bounds each check where nothing under test stalls: long
// enough for a starved machine.
const checkTimeout = generous

// stallTimeout is the check timeout where something stalls on purpose:
// each such test waits it out once.
const stallTimeout = 3 * time.Second

// checkAll makes a Transport for cfg and checks target through it.
func checkAll(t *testing.T, cfg proxyauth.Config, target string, opts proxyauth.CheckOptions) []proxyauth.CheckResult {
	t.Helper()
	tr, err := proxyauth.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	if opts.Timeout == 0 {
		opts.Timeout = checkTimeout
	}
	results, err := tr.CheckWith(context.Background(), target, opts)
	require.NoError(t, err)
	return results
}

// checkOne checks target through the one proxy of cfg.
func checkOne(t *testing.T, cfg proxyauth.Config, target string, timeout time.Duration) proxyauth.CheckResult {
	t.Helper()
	results := checkAll(t, cfg, target, proxyauth.CheckOptions{Timeout: timeout})
	require.Len(t, results, 1)
	return results[0]
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	i := strings.Index(raw, "://")
	require.GreaterOrEqual(t, i, 0, raw)
	return raw[i+3:]
}

func TestCheckAcceptedCredentials(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			t.Parallel()
			o := newOrigin(t, tlsOn, nil)
			p := newProxy(t, user, secret)
			r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
				Base: trusting(o.Certificate())}, o.URL, 0)

			assert.True(t, r.OK, "%v", r.Diagnosis)
			assert.Equal(t, proxyauth.LayerNone, r.Diagnosis.Layer)
			assert.Contains(t, r.Diagnosis.Summary, "200 OK")
			assert.Contains(t, r.Diagnosis.Summary, "accepted Basic")
			assert.Equal(t, p.URL, r.Proxy.String())
			assert.False(t, r.Direct)
			assert.Equal(t, "Basic", r.Scheme)
			assert.Equal(t, http.StatusOK, r.StatusCode)
			assert.Positive(t, r.Latency)
			assert.Equal(t, hostOf(t, p.URL), r.Addr)
			assert.Positive(t, r.Connect)
			assert.True(t, r.AuthRequired)
			assert.Equal(t, []string{"Basic"}, r.Offered)

			// The check waits for the proxy's challenge: its first request
			// carries no credentials, the second Basic ones.
			reqs := p.Requests()
			require.Len(t, reqs, 2)
			assert.Empty(t, reqs[0].ProxyAuthorization)
			assert.Equal(t, []string{basic(user, secret)}, reqs[1].ProxyAuthorization)
			assert.True(t, reqs[1].Authorized)
			o.assertNoProxyAuth(t, secret)
			assert.Len(t, o.received(), 1)
		})
	}
}

func TestCheckStrongestScheme(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := newAuthProxy(t, proxyauthtest.Multi(proxyauthtest.NewDigest(), proxyauthtest.Basic{}))
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.True(t, r.OK, "%v", r.Diagnosis)
	assert.Equal(t, "Digest", r.Scheme)
	assert.Equal(t, []string{"Digest", "Basic"}, r.Offered)
	for _, req := range p.Requests() {
		for _, v := range req.ProxyAuthorization {
			assert.False(t, strings.HasPrefix(v, "Basic "), "Basic sent to a proxy that offers Digest")
		}
	}
}

func TestCheckNTLM(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := proxyauthtest.NewNTLMProxy(user, secret)
	t.Cleanup(p.Close)
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.True(t, r.OK, "%v", r.Diagnosis)
	assert.Equal(t, "NTLM", r.Scheme)
	assert.Equal(t, []string{"NTLM"}, r.Offered)
}

func TestCheckRejectedCredentials(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong-"+secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.False(t, r.OK)
	assert.Equal(t, proxyauth.LayerProxyAuth, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "rejected the credentials")
	assert.Contains(t, strings.Join(r.Diagnosis.Hints, "\n"), "check the username and password")
	assert.Equal(t, p.URL, r.Diagnosis.Proxy.String())
	assert.Empty(t, r.Scheme)
	assert.Zero(t, r.StatusCode)
	assert.Zero(t, r.Latency)
	assert.True(t, r.AuthRequired)
	assert.Empty(t, o.received(), "nothing reached the origin")
}

func TestCheckMissingCredentials(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	r := checkOne(t, proxyauth.Config{Proxies: []string{p.URL}, Base: trusting(o.Certificate())}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxyAuth, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "none were sent")
	assert.Equal(t, []string{"Basic"}, r.Offered)
}

// allowListAuth admits nobody and offers no challenge: a proxy that admits
// clients by their address, and not this one.
type allowListAuth struct{}

func (allowListAuth) Challenges() []string                                       { return nil }
func (allowListAuth) Authorized(*http.Request, []proxyauthtest.Credentials) bool { return false }

func TestCheckProxyNeedsNoCredentials(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := newAuthProxy(t, openAuth{})
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.True(t, r.OK, "%v", r.Diagnosis)
	assert.Contains(t, r.Diagnosis.Summary, "asked for no credentials")
	assert.Contains(t, strings.Join(r.Diagnosis.Hints, "\n"), "IP address")
	assert.Empty(t, r.Scheme)
	assert.False(t, r.AuthRequired)
	assert.Empty(t, r.Offered)
	// A proxy that never asked never got the credentials.
	reqs := p.Requests()
	require.Len(t, reqs, 1)
	assert.Empty(t, reqs[0].ProxyAuthorization)
}

func TestCheckRejectionWithoutChallenge(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := newAuthProxy(t, allowListAuth{})
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxyAuth, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "no challenge")
	require.NotEmpty(t, r.Diagnosis.Hints)
	assert.Contains(t, r.Diagnosis.Hints[0], "source IP")
	assert.True(t, r.AuthRequired)
	assert.Empty(t, r.Offered)
	// Without a challenge there is nothing to answer: the credentials
	// stay here.
	for _, req := range p.Requests() {
		assert.Empty(t, req.ProxyAuthorization)
	}
}

func TestCheckMixedSignals(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	p.SetAuthStatus(http.StatusUnauthorized)
	r := checkOne(t, proxyauth.Config{Proxies: []string{p.URL}}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxyAuth, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "mixed signals")
	assert.Zero(t, r.StatusCode, "the 401 is the proxy's, not the target's")
}

func TestCheckOriginAuth(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		w.WriteHeader(http.StatusUnauthorized)
	})
	p := newProxy(t, user, secret)
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.False(t, r.OK)
	assert.Equal(t, proxyauth.LayerOriginAuth, r.Diagnosis.Layer)
	assert.Equal(t, http.StatusUnauthorized, r.StatusCode)
	assert.Equal(t, "Basic", r.Scheme, "the proxy layers passed")
	assert.Positive(t, r.Latency)
}

func TestCheckProxyDenies(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	p.SetConnectStatus(http.StatusForbidden)
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate())}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxy, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "403")
	assert.Zero(t, r.StatusCode)
	assert.True(t, r.AuthRequired)
	assert.Empty(t, o.received())
}

func TestCheckUntrustedTLSProxy(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, false, nil)
	p := proxyauthtest.NewTLSProxy(user, secret)
	t.Cleanup(p.Close)
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxy, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "certificate")
	assert.Equal(t, hostOf(t, p.URL), r.Addr, "the TCP connection was made")
	assert.Empty(t, p.Requests(), "nothing was sent over the untrusted connection")
}

func TestCheckTrustedTLSProxy(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := proxyauthtest.NewTLSProxy(user, secret)
	t.Cleanup(p.Close)
	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Base: trusting(o.Certificate(), p.Certificate())}, o.URL, 0)
	assert.True(t, r.OK, "%v", r.Diagnosis)
	assert.Equal(t, "Basic", r.Scheme)
}

func TestCheckSOCKS5(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	p := proxyauthtest.NewSOCKS5Proxy(user, secret)
	t.Cleanup(p.Close)
	base := trusting(o.Certificate())

	r := checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: base}, o.URL, 0)
	assert.True(t, r.OK, "%v", r.Diagnosis)
	assert.Equal(t, "username/password", r.Scheme)
	assert.True(t, r.AuthRequired)
	assert.Contains(t, r.Diagnosis.Summary, "SOCKS5")

	r = checkOne(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}, Base: base}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxyAuth, r.Diagnosis.Layer)
	assert.True(t, r.AuthRequired)
	assert.Empty(t, r.Scheme)

	r = checkOne(t, proxyauth.Config{Proxies: []string{p.URL}, Base: base}, o.URL, 0)
	assert.Equal(t, proxyauth.LayerProxyAuth, r.Diagnosis.Layer)
	assert.True(t, r.AuthRequired, "the proxy refused a client without credentials")
}

func TestCheckStalls(t *testing.T) {
	t.Parallel()
	silentTLS := blackHole(t) // a "target" that takes the tunnel and never shakes hands
	slow := make(chan struct{})
	t.Cleanup(func() { close(slow) })
	o := newOrigin(t, true, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-slow:
		case <-r.Context().Done():
		}
	})
	p := newProxy(t, user, secret)
	good := withUser(t, p.URL, user, secret)
	for _, c := range []struct {
		name, proxy, target string
		layer               proxyauth.Layer
		summary             string
	}{
		{"network", "http://" + testnet.Unreachable(t), "https://origin.test/", proxyauth.LayerNetwork, "no TCP connection to the proxy within 3s"},
		{"CONNECT unanswered", "http://" + blackHole(t), "https://origin.test/", proxyauth.LayerProxy, "did not answer the CONNECT within 3s"},
		{"plain unanswered", "http://" + blackHole(t), "http://origin.test/", proxyauth.LayerProxy, "no answer to the request within 3s"},
		{"target TLS", good, "https://" + silentTLS + "/", proxyauth.LayerTLS, "TLS handshake with the target did not finish within 3s"},
		{"target silent", good, o.URL, proxyauth.LayerOrigin, "the target did not answer within 3s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := checkOne(t, proxyauth.Config{Proxies: []string{c.proxy}, Base: trusting(o.Certificate())}, c.target, stallTimeout)
			assert.False(t, r.OK)
			assert.Equal(t, c.layer, r.Diagnosis.Layer, "%v", r.Diagnosis)
			assert.Contains(t, r.Diagnosis.Summary, c.summary)
			assert.NotEmpty(t, r.Diagnosis.Hints)
			assert.Zero(t, r.StatusCode)
			if c.proxy == good {
				assert.Equal(t, "Basic", r.Scheme, "the proxy took the credentials: the stall was beyond it")
			} else {
				assert.Empty(t, r.Scheme)
			}
		})
	}
}

func TestCheckRefused(t *testing.T) {
	t.Parallel()
	r := checkOne(t, proxyauth.Config{Proxies: []string{"http://" + closedAddr(t)}}, "https://origin.test/", 0)
	assert.Equal(t, proxyauth.LayerNetwork, r.Diagnosis.Layer)
	assert.Contains(t, r.Diagnosis.Summary, "refused")
	assert.Empty(t, r.Addr)
	assert.Zero(t, r.Connect)
	// The proxy came from Config.Proxies: no hint sends the reader to the
	// environment.
	assert.NotContains(t, strings.Join(r.Diagnosis.Hints, "\n"), "environment")
}

func TestCheckEnvironmentProxyRefused(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://"+closedAddr(t))
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "")
	tr, err := proxyauth.New(proxyauth.Config{})
	require.NoError(t, err)
	defer tr.Close()
	results := tr.Check(context.Background(), "https://origin.test/")
	require.Len(t, results, 1)
	assert.Equal(t, proxyauth.LayerNetwork, results[0].Diagnosis.Layer)
	assert.Contains(t, results[0].Diagnosis.Hints, "the proxy comes from the environment (HTTPS_PROXY): check that variable")
}

func TestCheckPoolJudgesEachAlone(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	bad := newProxy(t, user, secret)
	good := newProxy(t, user, secret)
	closed := "http://" + closedAddr(t)
	tr, err := proxyauth.New(proxyauth.Config{Base: trusting(o.Certificate()), Proxies: []string{
		withUser(t, bad.URL, user, "wrong"), closed, withUser(t, good.URL, user, secret)}})
	require.NoError(t, err)
	defer tr.Close()
	results := tr.Check(context.Background(), o.URL)
	require.Len(t, results, 3)
	assert.Equal(t, bad.URL, results[0].Proxy.String())
	assert.Equal(t, proxyauth.LayerProxyAuth, results[0].Diagnosis.Layer)
	assert.Equal(t, closed, results[1].Proxy.String())
	assert.Equal(t, proxyauth.LayerNetwork, results[1].Diagnosis.Layer)
	assert.Equal(t, good.URL, results[2].Proxy.String())
	assert.True(t, results[2].OK, "%v", results[2].Diagnosis)
	assert.Len(t, o.received(), 1, "only the good proxy reached the origin: no failover")

	// The checks leave the pool's health and statistics alone.
	for _, s := range tr.Pool().Stats() {
		assert.Equal(t, proxyauth.StateUnchecked, s.State, s.Proxy)
		assert.Zero(t, s.Requests, s.Proxy)
	}
}

func TestCheckPAC(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	good := newProxy(t, user, secret)
	bad := newProxy(t, user, secret)
	script := fmt.Sprintf(`function FindProxyForURL(url, host) {
		return "PROXY %s; PROXY %s; DIRECT";
	}`, hostOf(t, good.URL), hostOf(t, bad.URL))
	file := filepath.Join(t.TempDir(), "proxy.pac")
	require.NoError(t, os.WriteFile(file, []byte(script), 0o600))
	fn := func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		if r.Proxy.Host == hostOf(t, bad.URL) {
			return proxyauth.Credentials{Username: user, Password: "wrong"}, nil
		}
		return proxyauth.Credentials{Username: user, Password: secret}, nil
	}
	results := checkAll(t, proxyauth.Config{PAC: file, Credentials: fn, Base: trusting(o.Certificate())}, o.URL, proxyauth.CheckOptions{})
	require.Len(t, results, 3)
	assert.True(t, results[0].OK, "%v", results[0].Diagnosis)
	assert.Equal(t, good.URL, results[0].Proxy.String())
	assert.Equal(t, proxyauth.LayerProxyAuth, results[1].Diagnosis.Layer)
	// The CredentialsFunc was asked again on the refusal and gave the same
	// refused credentials.
	assert.Contains(t, results[1].Diagnosis.Summary, "had just rejected")
	assert.True(t, results[2].Direct)
	assert.Nil(t, results[2].Proxy)
	assert.True(t, results[2].OK, "%v", results[2].Diagnosis)
	assert.Contains(t, results[2].Diagnosis.Summary, "reached directly")
	assert.Equal(t, hostOf(t, o.URL), results[2].Addr)
	assert.Len(t, o.received(), 2)
}

func TestCheckPACFailure(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "proxy.pac")
	require.NoError(t, os.WriteFile(file, []byte(`function FindProxyForURL(url, host) { throw "nope"; }`), 0o600))
	tr, err := proxyauth.New(proxyauth.Config{PAC: file})
	require.NoError(t, err)
	defer tr.Close()
	_, err = tr.CheckWith(context.Background(), "https://origin.test/", proxyauth.CheckOptions{})
	var pe *proxyauth.PACError
	require.ErrorAs(t, err, &pe)
	results := tr.Check(context.Background(), "https://origin.test/")
	require.Len(t, results, 1)
	assert.False(t, results[0].OK)
	assert.False(t, results[0].Direct)
	assert.Nil(t, results[0].Proxy)
	assert.Equal(t, proxyauth.LayerProxy, results[0].Diagnosis.Layer)
	assert.Contains(t, results[0].Diagnosis.Summary, "PAC")
}

func TestCheckEnvironment(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newMappedProxy(t, map[string]string{"origin.test:443": hostOf(t, o.URL)})
	t.Setenv("HTTPS_PROXY", withUser(t, p.URL, user, secret))
	t.Setenv("HTTP_PROXY", "")
	t.Setenv("NO_PROXY", "direct.test")
	base := trusting(o.Certificate())
	base.DialContext = dialMap(map[string]string{"direct.test:443": hostOf(t, o.URL)})
	base.TLSClientConfig.ServerName = "example.com" // the name in httptest's certificate
	tr, err := proxyauth.New(proxyauth.Config{Base: base})
	require.NoError(t, err)
	defer tr.Close()

	results := tr.Check(context.Background(), "https://origin.test/")
	require.Len(t, results, 1)
	assert.Equal(t, p.URL, results[0].Proxy.String())
	assert.True(t, results[0].OK, "%v", results[0].Diagnosis)

	results = tr.Check(context.Background(), "https://direct.test/")
	require.Len(t, results, 1)
	assert.True(t, results[0].Direct)
	assert.True(t, results[0].OK, "%v", results[0].Diagnosis)
	assert.Empty(t, results[0].Scheme)
}

func TestCheckDirectFailure(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://proxy.test:3128")
	t.Setenv("NO_PROXY", "127.0.0.1")
	tr, err := proxyauth.New(proxyauth.Config{})
	require.NoError(t, err)
	defer tr.Close()
	results := tr.Check(context.Background(), "https://"+closedAddr(t)+"/")
	require.Len(t, results, 1)
	assert.True(t, results[0].Direct)
	assert.Equal(t, proxyauth.LayerNetwork, results[0].Diagnosis.Layer)
	assert.Contains(t, results[0].Diagnosis.Summary, "directly")
}

func TestCheckBadInput(t *testing.T) {
	t.Parallel()
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{"http://127.0.0.1:3128"}})
	require.NoError(t, err)
	defer tr.Close()
	for _, c := range []struct {
		target string
		opts   proxyauth.CheckOptions
		field  string
	}{
		{"example.com", proxyauth.CheckOptions{}, "target"},
		{"ftp://example.com/", proxyauth.CheckOptions{}, "target"},
		{"https://user:hunter2@/", proxyauth.CheckOptions{}, "target"},
		{"https://example.com/", proxyauth.CheckOptions{Timeout: -1}, "CheckOptions.Timeout"},
		{"https://example.com/", proxyauth.CheckOptions{Concurrency: -2}, "CheckOptions.Concurrency"},
	} {
		_, err := tr.CheckWith(context.Background(), c.target, c.opts)
		var ce *proxyauth.ConfigError
		require.ErrorAs(t, err, &ce, c.target)
		assert.Equal(t, c.field, ce.Field)
		assert.NotContains(t, err.Error(), "hunter2")
	}
	results := tr.Check(context.Background(), "https://user:hunter2@/")
	require.Len(t, results, 1)
	assert.False(t, results[0].OK)
	assert.Contains(t, results[0].Diagnosis.Summary, "configuration: target")
	assert.NotContains(t, fmt.Sprintf("%+v", results), "hunter2")
}

func TestCheckConcurrencyAndCancel(t *testing.T) {
	t.Parallel()
	accepted := make(chan struct{}, 16)
	var count atomic.Int32
	var proxies []string
	for range 5 {
		proxies = append(proxies, "http://"+testnet.NewSilent(t, func() {
			count.Add(1)
			accepted <- struct{}{}
		}).Addr)
	}
	tr, err := proxyauth.New(proxyauth.Config{Proxies: proxies, ProxyTimeout: -1})
	require.NoError(t, err)
	defer tr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		calls   atomic.Int32
		inside  atomic.Int32
		overlap atomic.Bool
		seen    = map[int]bool{}
	)
	go func() {
		// Two checks hold a connection each; then the caller gives up.
		for range 2 {
			select {
			case <-accepted:
			case <-time.After(generous):
			}
		}
		cancel()
	}()
	results, err := tr.CheckWith(ctx, "https://origin.test/", proxyauth.CheckOptions{Concurrency: 2, Timeout: generous,
		OnResult: func(i int, r proxyauth.CheckResult) {
			if inside.Add(1) > 1 {
				overlap.Store(true)
			}
			defer inside.Add(-1)
			calls.Add(1)
			seen[i] = true // unsynchronised on purpose: the race detector checks that calls are serialised
		}})
	require.NoError(t, err)
	require.Len(t, results, 5)
	assert.Equal(t, int32(2), count.Load(), "at most Concurrency proxies were connected to")
	assert.Equal(t, int32(5), calls.Load())
	assert.Len(t, seen, 5)
	assert.False(t, overlap.Load(), "OnResult calls overlapped")
	notChecked := 0
	for i, r := range results {
		assert.False(t, r.OK)
		assert.Equal(t, proxies[i], r.Proxy.String())
		assert.Equal(t, proxyauth.LayerNone, r.Diagnosis.Layer, "%v", r.Diagnosis)
		assert.Contains(t, r.Diagnosis.Summary, "cancel")
		if strings.HasPrefix(r.Diagnosis.Summary, "not checked") {
			notChecked++
		}
	}
	assert.Equal(t, 3, notChecked)
}

func TestCheckTellsHooksAndLogsNoSecret(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, true, nil)
	good := newProxy(t, user, secret)
	bad := newProxy(t, user, secret)
	var logs bytes.Buffer
	var attempts atomic.Int32
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{withUser(t, good.URL, user, secret), withUser(t, bad.URL, user, "x"+secret)},
		Base:    trusting(o.Certificate()),
		Logger:  slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hooks:   proxyauth.Hooks{AttemptEnd: func(proxyauth.AttemptInfo) { attempts.Add(1) }},
	})
	require.NoError(t, err)
	defer tr.Close()
	results := tr.Check(context.Background(), o.URL)
	require.Len(t, results, 2)
	assert.True(t, results[0].OK)
	assert.False(t, results[1].OK)
	assert.Equal(t, int32(4), attempts.Load(), "two attempts at each proxy, told to the Hooks")
	assert.Contains(t, logs.String(), "proxy asked for credentials")

	js, err := json.Marshal(results)
	require.NoError(t, err)
	var texts []string
	for _, r := range results {
		texts = append(texts, fmt.Sprintf("%v|%+v|%#v|%s", r, r, r, r.Diagnosis))
	}
	for _, out := range []string{logs.String(), string(js), strings.Join(texts, "\n")} {
		for _, s := range []string{secret, strings.TrimPrefix(basic(user, secret), "Basic "),
			strings.TrimPrefix(basic(user, "x"+secret), "Basic ")} {
			assert.NotContains(t, out, s)
		}
	}
}

func TestCheckWithoutNew(t *testing.T) {
	var tr proxyauth.Transport
	_, err := tr.CheckWith(context.Background(), "https://example.com/", proxyauth.CheckOptions{})
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
	results := tr.Check(context.Background(), "https://example.com/")
	require.Len(t, results, 1)
	assert.False(t, results[0].OK)
}
