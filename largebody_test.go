package proxyauth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// largeBody is a request body over the 64 KiB from which squid 5 leaves
// the connection of a 407 unread, and under the 256 KiB that net/http's
// server reads of a body its handler left, to keep the connection open.
var largeBody = bytes.Repeat([]byte("0123456789abcdef"), 8<<10) // 128 KiB

// digestOf is the hex SHA-256 of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// reuseTrace records, for each connection net/http hands a request sent
// with its context, whether it was reused.
type reuseTrace struct {
	mu     sync.Mutex
	reused []bool
}

func (r *reuseTrace) context(ctx context.Context) context.Context {
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		r.mu.Lock()
		r.reused = append(r.reused, i.Reused)
		r.mu.Unlock()
	}})
}

func (r *reuseTrace) list() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.reused...)
}

// postLarge POSTs largeBody to target with cl and returns the answer's
// body, bounded by hostileGuard.
func postLarge(t *testing.T, cl *http.Client, target string, tr *reuseTrace) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileGuard)
	defer cancel()
	req, err := http.NewRequestWithContext(tr.context(ctx), http.MethodPost, target, bytes.NewReader(largeBody))
	require.NoError(t, err)
	resp, err := cl.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// TestResendAfter407ToBodyOnNewConnection: a proxy that, like squid 5,
// answers a request with a large body with a keep-alive 407 before reading
// the body, and then never answers on that connection again. The resend
// must go on a new connection, whether the 407 had a body of its own (then
// net/http would keep the connection once that body is read) or none (then
// net/http pools the connection before the caller sees the 407).
func TestResendAfter407ToBodyOnNewConnection(t *testing.T) {
	for _, tt := range []struct{ name, body string }{
		{"407 with a body", "access denied\n"},
		{"407 without a body", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var bodies atomic.Int32
			var got sync.Map // digest -> true, of the bodies the proxy accepted
			p := newHostileProxy(t, eachRequest(func(c net.Conn, br *bufio.Reader, req *http.Request) bool {
				if !strings.HasPrefix(req.Header.Get("Proxy-Authorization"), "Digest ") {
					fmt.Fprintf(c, status407+"Proxy-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"\r\n"+
						"Content-Length: %d\r\n\r\n%s", len(tt.body), tt.body)
					holdOpen(br) // never reads a request as such again
					return false
				}
				// Accepts any Digest response: what is tested is where it
				// is sent, not what it says.
				b, err := io.ReadAll(req.Body)
				if err != nil {
					return false
				}
				bodies.Add(1)
				got.Store(digestOf(b), true)
				sum := digestOf(b)
				_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(sum), sum)
				return err == nil
			}))
			cfg := hostileConfig(p.URL)
			// A resend on the silent connection fails when the wait for
			// its answer runs out: generous, for a loaded machine.
			cfg.ProxyTimeout, cfg.Base.ResponseHeaderTimeout = 5*time.Second, 5*time.Second
			cfg.WaitForChallenge = true
			cl := hostileClient(t, cfg)
			var trace reuseTrace
			resp, body, err := postLarge(t, cl, "http://example.com/upload", &trace)
			require.NoError(t, err, "the resend went on the connection the proxy no longer answers?")
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, digestOf(largeBody), body, "the proxy's digest of the body it accepted")
			assert.Equal(t, int32(1), bodies.Load(), "bodies accepted")
			assert.Equal(t, int32(2), p.conns.Load(), "connections: one for the 407, a new one for the resend")
			assert.Equal(t, []bool{false, false}, trace.list(), "GotConnInfo.Reused of each attempt")
		})
	}
}

// TestDigestStaleNonceLargePOSTOnNewConnection: a nonce that went stale
// before a POST with a body. The resend with the new nonce goes on a new
// connection, and the origin gets the body once.
func TestDigestStaleNonceLargePOSTOnNewConnection(t *testing.T) {
	var mu sync.Mutex
	var received []string
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			mu.Lock()
			received = append(received, digestOf(b))
			mu.Unlock()
		}
		io.WriteString(w, digestOf(b))
	})
	d := digestWith("SHA-256")
	p := newAuthProxy(t, d)
	var attempts []int
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
		Hooks: proxyauth.Hooks{AttemptEnd: func(i proxyauth.AttemptInfo) { attempts = append(attempts, i.StatusCode) }}})

	_, _, err := get(cl, o.URL) // the Digest session, on a kept-alive connection
	require.NoError(t, err)
	d.ExpireNonces()
	attempts = nil

	var trace reuseTrace
	resp, body, err := postLarge(t, cl, o.URL, &trace)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, digestOf(largeBody), body)
	assert.Equal(t, 1, d.StaleCount(), "the proxy answered stale=true once")
	assert.Equal(t, []int{http.StatusProxyAuthRequired, http.StatusOK}, attempts, "statuses of the attempts")
	assert.Equal(t, []bool{true, false}, trace.list(),
		"GotConnInfo.Reused: the kept-alive connection for the stale nonce, a new one for the resend")
	mu.Lock()
	assert.Equal(t, []string{digestOf(largeBody)}, received, "the origin receives the body exactly once")
	mu.Unlock()
}
