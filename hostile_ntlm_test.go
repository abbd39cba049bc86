package proxyauth_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// ntlmChallengeB64 is a CHALLENGE message as squid's ntlm_fake_auth sends
// it, in base64.
var ntlmChallengeB64 = func() string {
	b, err := hex.DecodeString("4e544c4d535350000200000009000900aeaaaaaa01b288a076d62323916eea3a0000000000003a00574f524b47524f5550")
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}()

// ntlmLeg returns the NTLM message type of req's Proxy-Authorization, 0
// for none.
func ntlmLeg(req *http.Request) int {
	tok, ok := strings.CutPrefix(req.Header.Get("Proxy-Authorization"), "NTLM ")
	if !ok {
		return 0
	}
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(b) < 12 {
		return -1
	}
	return int(b[8])
}

// hostileNTLM is a proxy that asks for NTLM and answers the NEGOTIATE
// message with onNegotiate; it reports on done when each connection the
// client opened for the handshake has been closed by the client.
func hostileNTLM(t *testing.T, onNegotiate func(c net.Conn, br *bufio.Reader)) (*hostileProxy, <-chan struct{}) {
	done := make(chan struct{}, 16)
	p := newHostileProxy(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if ntlmLeg(req) == 1 {
				onNegotiate(c, br)
				holdOpen(br)
				done <- struct{}{}
				return
			}
			if _, err := io.WriteString(c, status407+"Proxy-Authenticate: NTLM\r\nContent-Length: 0\r\n\r\n"); err != nil {
				return
			}
		}
	})
	return p, done
}

// write407 answers with a 407 whose head has the given extra lines.
func write407(c net.Conn, lines ...string) {
	_, _ = io.WriteString(c, status407+strings.Join(lines, "\r\n")+"\r\n\r\n")
}

// TestHostileNTLMHandshake: a proxy that misbehaves in the middle of an
// NTLM handshake gets a typed error, bounded by ProxyTimeout or the
// request's context, and the connection of the handshake is closed.
func TestHostileNTLMHandshake(t *testing.T) {
	cases := []struct {
		name        string
		onNegotiate func(c net.Conn, br *bufio.Reader)
		timeout     time.Duration // Config.ProxyTimeout; 0: generous
		check       func(t *testing.T, err error, tunnel bool, op string)
	}{
		{"stall after NEGOTIATE", func(net.Conn, *bufio.Reader) {}, hostileTimeout,
			func(t *testing.T, err error, _ bool, op string) {
				pe := requireProxyError(t, err, op)
				assert.True(t, isTimeout(pe.Err), "a timeout: %v", err)
			}},
		{"close after the challenge", func(c net.Conn, _ *bufio.Reader) {
			write407(c, "Proxy-Authenticate: NTLM "+ntlmChallengeB64, "Connection: close", "Content-Length: 0")
		}, 0, func(t *testing.T, err error, tunnel bool, _ string) {
			pae := requireProxyAuthError(t, err, tunnel)
			assert.ErrorContains(t, pae, "closed the connection in the middle of the handshake")
		}},
		{"chunked challenge", func(c net.Conn, _ *bufio.Reader) {
			write407(c, "Proxy-Authenticate: NTLM "+ntlmChallengeB64, "Transfer-Encoding: chunked")
		}, 0, func(t *testing.T, err error, tunnel bool, _ string) {
			pae := requireProxyAuthError(t, err, tunnel)
			assert.ErrorContains(t, pae, "closed the connection in the middle of the handshake")
		}},
		{"no challenge", func(c net.Conn, _ *bufio.Reader) {
			write407(c, "Proxy-Authenticate: NTLM", "Content-Length: 0")
		}, 0, func(t *testing.T, err error, tunnel bool, _ string) {
			pae := requireProxyAuthError(t, err, tunnel)
			assert.False(t, pae.Rejected)
			assert.ErrorContains(t, pae, "did not answer the NTLM handshake with a challenge")
		}},
		{"garbage challenge", func(c net.Conn, _ *bufio.Reader) {
			write407(c, "Proxy-Authenticate: NTLM AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Content-Length: 0")
		}, 0, func(t *testing.T, err error, tunnel bool, _ string) {
			pae := requireProxyAuthError(t, err, tunnel)
			assert.ErrorContains(t, pae, "not an NTLM CHALLENGE message")
		}},
		{"not HTTP", func(c net.Conn, _ *bufio.Reader) {
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n")
		}, 0, func(t *testing.T, err error, _ bool, op string) {
			requireProxyError(t, err, op)
		}},
	}
	for _, tt := range hostileTargets {
		for _, c := range cases {
			t.Run(tt.name+"/"+c.name, func(t *testing.T) {
				p, done := hostileNTLM(t, c.onNegotiate)
				cfg := hostileConfig(p.URL)
				cfg.Schemes = []proxyauth.Scheme{proxyauth.NTLM()}
				if c.timeout != 0 {
					cfg.ProxyTimeout = c.timeout
				}
				r := hostileGet(hostileClient(t, cfg), tt.url)
				require.Error(t, r.err)
				op := "handshake"
				if tt.tunnel {
					op = "connect"
				}
				c.check(t, r.err, tt.tunnel, op)
				checkNoSecret(t, r.err)
				checkBounded(t, r, cfg.ProxyTimeout)
				select {
				case <-done:
				case <-time.After(generous):
					t.Fatal("the connection of the handshake was not closed")
				}
			})
		}
	}
}

// TestHostileNTLMCancel: a request cancelled in the middle of the
// handshake returns at once with its context's error, and closes the
// connection.
func TestHostileNTLMCancel(t *testing.T) {
	for _, tt := range hostileTargets {
		t.Run(tt.name, func(t *testing.T) {
			negotiated := make(chan struct{}, 1)
			p, done := hostileNTLM(t, func(net.Conn, *bufio.Reader) { negotiated <- struct{}{} })
			cfg := hostileConfig(p.URL)
			cfg.Schemes = []proxyauth.Scheme{proxyauth.NTLM()}
			cl := hostileClient(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				select {
				case <-negotiated:
					cancel()
				case <-time.After(generous):
				}
			}()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, tt.url, nil)
			_, err := cl.Do(req)
			cancel()
			require.Error(t, err)
			assert.True(t, errors.Is(err, context.Canceled), "%v", err)
			select {
			case <-done:
			case <-time.After(generous):
				t.Fatal("the connection of the handshake was not closed")
			}
		})
	}
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestNTLMHandshakeFailover: a proxy that breaks off the handshake has
// not seen the request, so even a POST moves to the next proxy, and the
// origin gets it once.
func TestNTLMHandshakeFailover(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			bad, _ := hostileNTLM(t, func(c net.Conn, _ *bufio.Reader) { _, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2\r\n") })
			good := proxyauthtest.NewNTLMProxy(ntlmUser, ntlmPass)
			t.Cleanup(good.Close)
			cl, _ := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, bad.URL, ntlmUser, ntlmPass), withUser(t, good.URL, ntlmUser, ntlmPass)},
				Schemes: []proxyauth.Scheme{proxyauth.NTLM()},
				Base:    trusting(o.Certificate()),
			}, nil)
			resp, err := cl.Post(o.URL, "text/plain", strings.NewReader("order #1"))
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Len(t, o.received(), 1)
		})
	}
}
