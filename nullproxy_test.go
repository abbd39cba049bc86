package proxyauth_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"testing"
)

// nullProxy is a proxy and origin in one that does as little as it can,
// so that a benchmark through it measures the client alone: it reads each
// request's header block, answers 407 with a Digest and a Basic challenge
// when the block has no Proxy-Authorization, and otherwise a canned 200
// "ok". A CONNECT that carries credentials gets a 200, then the proxy
// plays the origin inside the tunnel, with TLS, answering every request
// with the same 200. It checks no credentials: benchProxy does that. It
// listens as a hostileProxy does, which answers a connection its own way.
type nullProxy struct {
	URL   string
	TLS   *tls.Config    // the origin's, inside tunnels
	Roots *x509.CertPool // trusts TLS's certificate, which is for 127.0.0.1
}

const (
	nullOK        = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
	nullChallenge = "HTTP/1.1 407 Proxy Authentication Required\r\n" +
		"Proxy-Authenticate: Digest realm=\"null\", nonce=\"0123456789abcdef0123456789abcdef\", qop=\"auth\", algorithm=MD5\r\n" +
		"Proxy-Authenticate: Basic realm=\"null\"\r\nContent-Length: 0\r\n\r\n"
	nullEstablished = "HTTP/1.1 200 Connection established\r\n\r\n"
)

func newNullProxy(b *testing.B) *nullProxy {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	cfg := srv.TLS.Clone()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	srv.Close()
	cfg.NextProtos = []string{"http/1.1"}
	p := &nullProxy{TLS: cfg, Roots: roots}
	p.URL = "http://" + newHostileProxy(b, p.serve).ln.Addr().String()
	return p
}

// head reads one header block, and reports whether it asks for a tunnel
// and whether it carries Proxy-Authorization.
func head(r *bufio.Reader) (connect, auth bool, err error) {
	for first := true; ; first = false {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return false, false, err
		}
		if first {
			connect = bytes.HasPrefix(line, []byte("CONNECT "))
		}
		if len(line) <= 2 {
			return connect, auth, nil
		}
		if len(line) > 20 && bytes.EqualFold(line[:20], []byte("Proxy-Authorization:")) {
			auth = true
		}
	}
}

func (p *nullProxy) serve(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		connect, auth, err := head(r)
		if err != nil {
			return
		}
		switch {
		case !auth:
			if _, err := c.Write([]byte(nullChallenge)); err != nil {
				return
			}
		case connect:
			if _, err := c.Write([]byte(nullEstablished)); err != nil {
				return
			}
			tc := tls.Server(&prefixConn{Conn: c, r: r}, p.TLS)
			tr := bufio.NewReader(tc)
			for {
				if _, _, err := head(tr); err != nil {
					return
				}
				if _, err := tc.Write([]byte(nullOK)); err != nil {
					return
				}
			}
		default:
			if _, err := c.Write([]byte(nullOK)); err != nil {
				return
			}
		}
	}
}

// prefixConn reads what r has buffered before reading from the Conn.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(b []byte) (int, error) { return c.r.Read(b) }
