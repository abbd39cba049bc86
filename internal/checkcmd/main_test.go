package checkcmd

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runBound bounds every run of Main in the tests.
const runBound = 2 * time.Minute

// outcome is what a run of Main gave.
type outcome struct {
	code           int
	stdout, stderr string
}

// syncBuffer is a bytes.Buffer safe for the progress ticker and Main to
// write at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// vars returns a Getenv of the given variables.
func vars(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

// runMain runs Main with args; env's Stdout and Stderr are replaced by
// buffers.
func runMain(t testing.TB, env Env, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	var stdout, stderr syncBuffer
	env.Stdout, env.Stderr = &stdout, &stderr
	code := Main(ctx, args, env)
	if ctx.Err() != nil {
		t.Fatalf("Main(%q) ran out of its %v", args, runBound)
	}
	return outcome{code, stdout.String(), stderr.String()}
}

// openAuth admits every request without credentials.
type openAuth struct{}

func (openAuth) Challenges() []string                                       { return nil }
func (openAuth) Authorized(*http.Request, []proxyauthtest.Credentials) bool { return true }

// noChallenge refuses every request with a 407 that offers nothing, as a
// proxy that admits clients by their address does.
type noChallenge struct{}

func (noChallenge) Challenges() []string                                       { return nil }
func (noChallenge) Authorized(*http.Request, []proxyauthtest.Credentials) bool { return false }

// newProxy starts a proxy with auth (nil: Basic for user/pass), on TLS when
// tlsOn.
func newProxy(t testing.TB, auth proxyauthtest.Authenticator, user, pass string, tlsOn bool) *proxyauthtest.Proxy {
	t.Helper()
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = auth
	if tlsOn {
		p.StartTLS()
	} else {
		p.Start()
	}
	t.Cleanup(p.Close)
	return p
}

// openProxy starts a proxy that asks for no credentials.
func openProxy(t testing.TB) *proxyauthtest.Proxy {
	t.Helper()
	return newProxy(t, openAuth{}, "", "", false)
}

// newOrigin starts an origin that answers 200, with TLS when tlsOn.
func newOrigin(t testing.TB, tlsOn bool) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/private" {
			w.Header().Set("WWW-Authenticate", `Basic realm="origin"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "hello")
	})
	var s *httptest.Server
	if tlsOn {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// caFile writes the certificate of the httptest servers (one for all of
// them, TLS proxies included) as PEM and returns its path.
func caFile(t testing.TB, s *httptest.Server) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeFile writes a file of the test's and returns its path.
func writeFile(t testing.TB, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// lines returns the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// unsetProxyEnv clears the proxy variables of the environment for the
// test.
func unsetProxyEnv(t *testing.T) {
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "REQUEST_METHOD"} {
		t.Setenv(k, "")
	}
}
