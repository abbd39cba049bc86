package proxyauth_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// benchProxy is a forward proxy cut down to what the benchmarks need, so
// that the proxy's own work is small and the client's share of a request
// shows. It checks credentials with a proxyauthtest Authenticator, the same
// checks as proxyauthtest.Proxy, but serves each client connection on one
// goroutine with one upstream connection of its own, and records nothing
// but counts. proxyauthtest.Proxy, built for tests, records every request
// and forwards through an http.Transport, which would make the proxy the
// bottleneck.
type benchProxy struct {
	URL string

	l     net.Listener
	auth  proxyauthtest.Authenticator
	creds atomic.Pointer[[]proxyauthtest.Credentials]

	Rejected   atomic.Int64 // 407s sent
	Authorized atomic.Int64 // requests whose credentials were accepted

	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// newBenchProxy starts a benchProxy on a loopback port that accepts
// user/password through auth (nil means Basic).
func newBenchProxy(tb testing.TB, auth proxyauthtest.Authenticator, user, password string) *benchProxy {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if auth == nil {
		auth = proxyauthtest.Basic{}
	}
	p := &benchProxy{URL: "http://" + l.Addr().String(), l: l, auth: auth, conns: map[net.Conn]struct{}{}}
	p.SetCredentials(user, password)
	p.wg.Go(p.serve)
	tb.Cleanup(p.Close)
	return p
}

// SetCredentials replaces the credentials the proxy accepts.
func (p *benchProxy) SetCredentials(user, password string) {
	p.creds.Store(&[]proxyauthtest.Credentials{{Username: user, Password: password}})
}

// Close stops the proxy and closes every connection, and waits for its
// goroutines to end.
func (p *benchProxy) Close() {
	p.l.Close()
	p.mu.Lock()
	p.done = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// track records c as open, or closes it when the proxy is closed.
func (p *benchProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *benchProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *benchProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			continue
		}
		p.wg.Go(func() {
			defer p.untrack(c)
			p.serveConn(c)
		})
	}
}

// serveConn serves the requests of one client connection: plain requests
// are forwarded over one upstream connection, kept for as long as the
// client's, and a CONNECT turns the connection into a tunnel.
func (p *benchProxy) serveConn(c net.Conn) {
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	var (
		up       net.Conn
		upHost   string
		upr      *bufio.Reader
		upw      *bufio.Writer
		tunnelTo net.Conn
	)
	defer func() {
		if up != nil {
			p.untrack(up)
		}
	}()
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		v := verify(p.auth, req, *p.creds.Load())
		if !v.Authorized {
			p.Rejected.Add(1)
			io.Copy(io.Discard, req.Body)
			ch := v.Challenges
			if ch == nil {
				ch = p.auth.Challenges()
			}
			bw.WriteString("HTTP/1.1 407 Proxy Authentication Required\r\n")
			for _, h := range ch {
				bw.WriteString("Proxy-Authenticate: " + h + "\r\n")
			}
			bw.WriteString("Content-Length: 0\r\n\r\n")
			if bw.Flush() != nil {
				return
			}
			continue
		}
		p.Authorized.Add(1)
		if req.Method == http.MethodConnect {
			if tunnelTo, err = net.Dial("tcp", req.RequestURI); err != nil || !p.track(tunnelTo) {
				bw.WriteString("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				bw.Flush()
				return
			}
			bw.WriteString("HTTP/1.1 200 Connection established\r\n")
			if v.Info != "" {
				bw.WriteString("Proxy-Authentication-Info: " + v.Info + "\r\n")
			}
			bw.WriteString("\r\n")
			if bw.Flush() != nil {
				p.untrack(tunnelTo)
				return
			}
			p.wg.Go(func() {
				io.Copy(tunnelTo, br) // br holds what the client sent after the CONNECT
				tunnelTo.(*net.TCPConn).CloseWrite()
			})
			io.Copy(c, tunnelTo)
			p.untrack(tunnelTo)
			return
		}
		if up == nil || upHost != req.URL.Host {
			if up != nil {
				p.untrack(up)
			}
			if up, err = net.Dial("tcp", req.URL.Host); err != nil || !p.track(up) {
				up = nil
				bw.WriteString("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
				bw.Flush()
				return
			}
			upHost, upr, upw = req.URL.Host, bufio.NewReader(up), bufio.NewWriter(up)
		}
		req.Header.Del("Proxy-Authorization")
		if req.Write(upw) != nil || upw.Flush() != nil {
			return
		}
		resp, err := http.ReadResponse(upr, req)
		if err != nil {
			return
		}
		if v.Info != "" {
			resp.Header.Set("Proxy-Authentication-Info", v.Info)
		}
		err = resp.Write(bw)
		resp.Body.Close()
		if err != nil || bw.Flush() != nil {
			return
		}
	}
}

// verify applies a to r as proxyauthtest.Proxy does: through Verify when a
// is a Verifier.
func verify(a proxyauthtest.Authenticator, r *http.Request, accepted []proxyauthtest.Credentials) proxyauthtest.Verdict {
	if v, ok := a.(proxyauthtest.Verifier); ok {
		return v.Verify(r, accepted)
	}
	return proxyauthtest.Verdict{Authorized: a.Authorized(r, accepted)}
}
