package proxyauth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/net/proxy"
)

// probe checks that the proxy works, as PoolConfig.Probe describes: it
// returns nil, a *ProxyError (unreachable, or a failure status of the
// proxy's own), a *ProxyAuthError (credentials refused), or another error
// (the probe target could not be reached through the proxy).
// Its error never shows what was sent to the proxy.
func (r *route) probe(ctx context.Context, target string) error {
	switch {
	case target == "":
		conn, err := r.dialProxy(ctx)
		if err != nil {
			return err
		}
		r.park(conn)
		return nil
	case strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://"):
		return r.probeGet(ctx, target)
	case r.spec.socks():
		return r.probeSOCKS(ctx, target)
	}
	return r.seal(r.probeConnect(ctx, target), nil, "")
}

// parkedFor is how long a parked connection waits for the route's next
// dial.
const parkedFor = 5 * time.Second

// parkedConn is a connection to the proxy kept for the route's next dial:
// a probe's, or one whose CONNECT got a 407.
type parkedConn struct {
	conn net.Conn
	at   time.Time
	kept bool // the proxy has just answered on it: it is open
}

// park keeps conn, a connect-only probe's TCP connection to the proxy, for
// the route's next dial: a probe before a proxy's first use then costs
// that request no round trip, its connection being the probe's. A TLS
// connection (to an https:// proxy) is closed instead: whether it is
// still open cannot be told without reading what the server may have sent
// after the handshake.
func (r *route) park(conn net.Conn) {
	if _, ok := conn.(*net.TCPConn); !ok {
		conn.Close()
		return
	}
	if old := r.parked.Swap(&parkedConn{conn: conn, at: time.Now()}); old != nil {
		old.conn.Close()
	}
}

// keepConn keeps conn, a connection to the proxy whose CONNECT got a 407
// that the next attempt answers, for the route's next dial.
func (r *route) keepConn(conn net.Conn) {
	if old := r.parked.Swap(&parkedConn{conn: conn, at: time.Now(), kept: true}); old != nil {
		old.conn.Close()
	}
}

// unpark returns the parked connection if it is fresh and still open,
// or nil.
func (r *route) unpark() net.Conn {
	pc := r.parked.Swap(nil)
	if pc == nil {
		return nil
	}
	if time.Since(pc.at) > parkedFor || !pc.kept && !open(pc.conn) {
		pc.conn.Close()
		return nil
	}
	return pc.conn
}

// open reports whether the proxy has neither closed conn nor sent on it:
// a read that must return at once finds nothing to read.
func open(conn net.Conn) bool {
	var b [1]byte
	conn.SetReadDeadline(time.Now())
	_, err := conn.Read(b[:])
	var ne net.Error
	ok := errors.As(err, &ne) && ne.Timeout()
	conn.SetReadDeadline(time.Time{})
	return ok
}

// dialProxy opens a connection to the proxy as the Transport would: TCP,
// and TLS for an https:// proxy.
func (r *route) dialProxy(ctx context.Context) (net.Conn, error) {
	addr := proxyAddr(r.spec)
	if r.template.DialTLSContext != nil {
		return r.template.DialTLSContext(ctx, "tcp", addr)
	}
	return r.template.DialContext(ctx, "tcp", addr)
}

// proxyAddr returns the proxy's host:port, with the scheme's default port.
func proxyAddr(spec *proxySpec) string {
	if spec.url.Port() != "" {
		return spec.url.Host
	}
	port := map[string]string{"http": "80", "https": "443", "socks5": "1080", "socks5h": "1080"}[spec.url.Scheme]
	return net.JoinHostPort(spec.url.Hostname(), port)
}

// probeGet fetches target through the proxy; any answer the proxy did not
// make itself passes.
func (r *route) probeGet(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := r.roundTrip(req)
	if err != nil {
		return err
	}
	drain(resp.Body, r.timeout)
	if resp.StatusCode >= 500 && proxyMade(resp.Header) {
		return &ProxyError{Proxy: r.spec.url, Op: "forward", StatusCode: resp.StatusCode, Header: resp.Header}
	}
	return nil
}

// probeConnect opens a tunnel to target through the proxy, answering its
// 407s as a request would, and closes it. It is written out rather than
// done through the route's http.Transport because net/http offers no way
// to open a tunnel without speaking HTTP inside it.
func (r *route) probeConnect(ctx context.Context, target string) error {
	lg, err := r.firstLogin(ctx)
	if err != nil {
		return &ProxyAuthError{Proxy: r.spec.url, Tunnel: true, Err: err}
	}
	for n := 1; ; n++ {
		pae, err := r.connectAttempt(ctx, target, &lg)
		if pae == nil {
			return err
		}
		pae.Attempts = n
		if n >= r.maxAttempts {
			return pae
		}
		next, err := r.nextLogin(ctx, lg, pae)
		if err != nil || next == nil {
			pae.Err = err
			return pae
		}
		lg = next
	}
}

// connectAttempt opens a tunnel to target with *lg and closes it. It
// returns the proxy's 407 (or 401) as pae, to be answered, and any other
// outcome as err (nil for an open tunnel). A connection-bound login goes
// through the dial path of requests, and its trial (see route.trial),
// which may replace *lg.
func (r *route) connectAttempt(ctx context.Context, target string, lg **proxyLogin) (*ProxyAuthError, error) {
	a := &attempt{lg: *lg}
	if a.connAuth() == nil {
		resp, sent, err := r.connectOnce(ctx, target, *lg)
		switch {
		case err != nil:
			return nil, err
		case resp.StatusCode == http.StatusOK:
			if *lg != nil {
				r.auth.keep(*lg)
			}
			return nil, nil
		case resp.StatusCode == http.StatusProxyAuthRequired, resp.StatusCode == http.StatusUnauthorized:
			return r.authError(resp, true, sent), nil
		}
		return nil, &ProxyError{Proxy: r.spec.url, Op: "connect", StatusCode: resp.StatusCode, Header: resp.Header}
	}
	settle, err := r.trial(ctx, a)
	if err != nil {
		return nil, &ProxyAuthError{Proxy: r.spec.url, Tunnel: true, Err: err}
	}
	*lg = a.lg
	conn, err := r.openTunnel(ctx, target, a)
	var pae *ProxyAuthError
	if err == nil {
		settle(true, nil)
		r.auth.keep(a.lg)
		return nil, conn.Close()
	}
	if errors.As(err, &pae) && pae.StatusCode != 0 {
		settle(false, pae)
		if pae.Err == nil {
			return pae, nil
		}
	} else {
		settle(false, nil)
	}
	return nil, err
}

// connectOnce sends one CONNECT and reads its answer.
func (r *route) connectOnce(ctx context.Context, target string, lg *proxyLogin) (*http.Response, bool, error) {
	conn, err := r.dialProxy(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	// A deadline does not see a cancellation: closing the connection ends
	// the wait for an answer when the pool is closed.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	req := &http.Request{Method: http.MethodConnect, URL: nil, Host: target, Header: http.Header{}}
	a := &attempt{lg: lg}
	auth, err := a.proxyAuthorization(AuthRequest{Method: http.MethodConnect, URI: target})
	if err != nil {
		return nil, false, &ProxyAuthError{Proxy: r.spec.url, Tunnel: true, Err: err}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", target, target)
	if auth != "" {
		b.WriteString("Proxy-Authorization: " + auth + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return nil, false, &ProxyError{Proxy: r.spec.url, Op: "connect", Err: ctxOr(ctx, err)}
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return nil, false, r.seal(&ProxyError{Proxy: r.spec.url, Op: "connect", Err: ctxOr(ctx, err)}, a, auth)
	}
	resp.Body.Close()
	return resp, auth != "", nil
}

// ctxOr returns ctx's error once ctx has ended, which then explains err
// (a closed connection), and err otherwise.
func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// probeSOCKS opens a SOCKS5 connection to target through the proxy with
// its credentials, and closes it.
func (r *route) probeSOCKS(ctx context.Context, target string) error {
	lg, err := r.firstLogin(ctx)
	if err != nil {
		return &ProxyAuthError{Proxy: r.spec.url, Err: err}
	}
	var auth *proxy.Auth
	if lg != nil {
		auth = &proxy.Auth{User: lg.creds.Username, Password: lg.creds.Password}
	}
	d, err := proxy.SOCKS5("tcp", proxyAddr(r.spec), auth, contextDialer(r.template.DialContext))
	if err != nil {
		return err
	}
	conn, err := d.(proxy.ContextDialer).DialContext(ctx, "tcp", target)
	switch {
	case err == nil:
		return conn.Close()
	case isSOCKSAuthError(err):
		return &ProxyAuthError{Proxy: r.spec.url, Rejected: auth != nil, Err: err}
	}
	var pe *ProxyError
	if errors.As(err, &pe) {
		return pe
	}
	return &ProxyError{Proxy: r.spec.url, Op: "socks", Err: err}
}

// contextDialer adapts a dial function to golang.org/x/net/proxy.
type contextDialer func(ctx context.Context, network, addr string) (net.Conn, error)

func (d contextDialer) Dial(network, addr string) (net.Conn, error) {
	return d(context.Background(), network, addr)
}

func (d contextDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	return d(ctx, network, addr)
}

// defaultProxyTimeout is the default of Config.ProxyTimeout.
const defaultProxyTimeout = 10 * time.Second
