package proxyauth

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The dial path of schemes that authenticate a connection rather than a
// request (see ConnAuthorizer). net/http closes a connection on any
// answer to a CONNECT but 200, and offers no way to pin a request to a
// connection, so such a login's requests go through http.Transports of
// the route's own, made on first use, whose dials run the handshake:
//
//   - for a tunnel, a Transport without a proxy, whose dial opens the
//     connection to the proxy, sends the CONNECT legs on it, and hands
//     net/http the open tunnel as if it were a connection to the target;
//   - for a plain http:// request, a Transport with the proxy, whose dial
//     sends the legs before the last as HEAD requests for the target and
//     returns a connection that writes the last leg's value into the
//     first request net/http writes on it.
//
// Either way the connection is authenticated once, and the later
// requests on it carry no Proxy-Authorization.

// connTransports are a route's Transports for connection-bound logins.
type connTransports struct {
	tunnel *http.Transport // no proxy: the dial opens the tunnel
	plain  *http.Transport // through the proxy: the dial authenticates
}

// maxLegs bounds a handshake: NTLM has two legs, Kerberos one.
const maxLegs = 4

// connAuth returns the ConnAuthorizer of a's login, or nil when a's
// requests go the usual way.
func (a *attempt) connAuth() ConnAuthorizer {
	if a.callerAuth != "" || a.lg == nil {
		return nil
	}
	ca, _ := a.lg.auth.(ConnAuthorizer)
	return ca
}

// trial admits a's request. A connection-bound login whose credentials
// the proxy has not accepted yet is tried by one request at a time, the
// others waiting for its outcome: those credentials are an account's, and
// a domain locks an account after a few failed logins, so wrong ones are
// sent once, not by every request under way. Once they are accepted,
// requests go in parallel; once refused, they are not sent again: a
// waiting request then takes credentials the CredentialsFunc gives anew
// (one call for all), or fails with ErrCredentialsRefused.
//
// settle, which must be called with the outcome of the request, ends the
// trial.
func (r *route) trial(ctx context.Context, a *attempt) (settle func(ok bool, pae *ProxyAuthError), err error) {
	for tries := 0; ; tries++ {
		if a.connAuth() == nil || r.auth.proven(a.lg.version) {
			return noSettle, nil
		}
		select {
		case r.auth.trials <- struct{}{}:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		v := a.lg.version
		switch {
		case r.auth.proven(v):
			<-r.auth.trials // accepted while this request waited
			return noSettle, nil
		case !r.auth.refused(v):
			return func(ok bool, pae *ProxyAuthError) {
				switch {
				case ok:
					raise(&r.auth.provenVersion, v)
				case pae != nil && pae.Rejected:
					r.auth.refuse(v)
				}
				<-r.auth.trials
			}, nil
		}
		<-r.auth.trials
		if tries > 0 {
			return nil, errRefusedBefore
		}
		// A request before this one had these credentials refused.
		lg, err := r.firstLogin(ctx)
		switch {
		case err != nil:
			return nil, err
		case lg == nil || lg.version == v:
			return nil, errRefusedBefore
		}
		a.lg = lg
	}
}

func noSettle(bool, *ProxyAuthError) {}

// connTransport returns the Transport for a connection-bound login's
// request, made on first use.
func (r *route) connTransport(tunnel bool) *http.Transport {
	ct := r.conns.Load()
	if ct == nil {
		ct = r.newConnTransports()
	}
	if tunnel {
		return ct.tunnel
	}
	return ct.plain
}

func (r *route) newConnTransports() *connTransports {
	r.connsMu.Lock()
	defer r.connsMu.Unlock()
	if ct := r.conns.Load(); ct != nil {
		return ct
	}
	tunnel := r.template.Clone()
	tunnel.Proxy = nil
	tunnel.GetProxyConnectHeader = nil
	tunnel.OnProxyConnectResponse = nil
	tunnel.DialContext = r.dialTunnel
	tunnel.DialTLSContext = nil // net/http speaks TLS to the target itself
	plain := r.template.Clone()
	plain.DialContext = r.authenticated(r.template.DialContext)
	if r.template.DialTLSContext != nil {
		plain.DialTLSContext = r.authenticated(r.template.DialTLSContext)
	}
	ct := &connTransports{tunnel: tunnel, plain: plain}
	r.conns.Store(ct)
	return ct
}

// closeIdle closes the idle connections of every Transport of the route.
func (r *route) closeIdle() {
	if pc := r.parked.Swap(nil); pc != nil {
		pc.conn.Close()
	}
	r.rt.Load().CloseIdleConnections()
	if ct := r.conns.Load(); ct != nil {
		ct.tunnel.CloseIdleConnections()
		ct.plain.CloseIdleConnections()
	}
}

// renewConnTransports retires the connection-bound Transports, whose
// connections were authenticated with the old credentials.
func (r *route) renewConnTransports() {
	r.connsMu.Lock()
	old := r.conns.Swap(nil)
	r.connsMu.Unlock()
	if old != nil {
		old.tunnel.CloseIdleConnections()
		old.plain.CloseIdleConnections()
	}
}

// dialTunnel opens a tunnel to addr through the proxy for the login of
// the attempt in ctx.
func (r *route) dialTunnel(ctx context.Context, _, addr string) (net.Conn, error) {
	a := attemptFrom(ctx)
	if a == nil || a.connAuth() == nil {
		return nil, errors.New("proxyauth: a tunnel dial without a connection-bound login")
	}
	return r.openTunnel(ctx, addr, a)
}

// openTunnel opens a tunnel to target with a's connection-bound login.
func (r *route) openTunnel(ctx context.Context, target string, a *attempt) (net.Conn, error) {
	hs, err := a.connAuth().Handshake(ctx, AuthRequest{Method: http.MethodConnect, URI: target, Proxy: r.spec.url})
	if err != nil {
		return nil, &ProxyAuthError{Proxy: r.spec.url, Tunnel: true, Err: err}
	}
	conn, err := r.dialProxy(ctx)
	if err != nil {
		return nil, err
	}
	h, err := r.baseConnectHeader(ctx, target)
	if err != nil {
		conn.Close()
		return nil, err
	}
	leg := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: target}, Host: target, Header: h.Clone()}
	if leg.Header == nil {
		leg.Header = make(http.Header)
	}
	_, br, err := r.handshake(ctx, conn, a, hs, leg, true)
	if err != nil {
		conn.Close()
		return nil, err
	}
	if br.Buffered() > 0 {
		// The proxy sent bytes of the tunnel with its 200: they are the
		// target's, and must not be lost.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// authenticated wraps the dial of a Transport through the proxy for plain
// requests: the connection it returns is authenticated with the login
// of the attempt in ctx, or will be by the first request written on it.
func (r *route) authenticated(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		a := attemptFrom(ctx)
		if a == nil || a.connAuth() == nil {
			return nil, errors.New("proxyauth: a plain dial without a connection-bound login")
		}
		target := a.uri
		hs, err := a.connAuth().Handshake(ctx, AuthRequest{Method: http.MethodHead, URI: target, Proxy: r.spec.url})
		if err != nil {
			return nil, &ProxyAuthError{Proxy: r.spec.url, Err: err}
		}
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		u, err := url.Parse(target)
		if err != nil {
			conn.Close()
			return nil, err
		}
		leg := &http.Request{Method: http.MethodHead, URL: u, Host: u.Host, Header: make(http.Header)}
		last, _, err := r.handshake(ctx, conn, a, hs, leg, false)
		if err != nil {
			conn.Close()
			return nil, err
		}
		if last == "" {
			return conn, nil
		}
		return &authConn{Conn: conn, field: []byte("Proxy-Authorization: " + last + "\r\n")}, nil
	}
}

// handshake runs hs on conn, each leg being leg with the leg's value in
// its Proxy-Authorization. For a tunnel it returns once the proxy
// accepted the CONNECT, with the reader that holds what followed its
// answer. For a plain request it returns the value of the last leg, to go
// with the request itself, or "" when the proxy let a leg through
// without asking for more.
//
// It is bounded by the proxy timeout, and ends when ctx ends, or the
// context of the request that made the attempt: net/http lets a dial go on
// when its request is cancelled, but a handshake is the request's own.
func (r *route) handshake(ctx context.Context, conn net.Conn, a *attempt, hs Handshake, leg *http.Request, tunnel bool) (last string, br *bufio.Reader, err error) {
	if r.timeout > 0 {
		conn.SetDeadline(time.Now().Add(r.timeout))
	}
	interrupt := func() { conn.SetDeadline(time.Unix(1, 0)) }
	stop := context.AfterFunc(ctx, interrupt)
	caller := a.Context
	if caller == nil {
		caller = ctx
	}
	stopCaller := context.AfterFunc(caller, interrupt)
	ended := func(err error) error {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case caller.Err() != nil:
			return caller.Err()
		}
		return err
	}
	defer func() {
		stopped := stop()
		stopped = stopCaller() && stopped
		if !stopped && err == nil {
			err = ended(nil)
		}
		if err == nil {
			conn.SetDeadline(time.Time{})
		}
	}()
	op := "handshake"
	if tunnel {
		op = "connect"
	}
	br = bufio.NewReader(conn)
	var (
		c    *Challenge
		prev *ProxyAuthError // the 407 that c comes from
	)
	for n := 1; n <= maxLegs; n++ {
		v, isLast, err := hs.Next(c)
		if err != nil {
			if prev == nil {
				prev = &ProxyAuthError{Proxy: r.spec.url, Tunnel: tunnel}
			}
			prev.Err = err
			return "", nil, r.seal(prev, a, "")
		}
		a.recordSent(v)
		if isLast && !tunnel {
			return v, br, nil
		}
		leg.Header.Set("Proxy-Authorization", v)
		if tunnel {
			err = leg.Write(conn)
		} else {
			err = leg.WriteProxy(conn)
		}
		if err != nil {
			return "", nil, r.seal(&ProxyError{Proxy: r.spec.url, Op: op, Err: ended(err)}, a, v)
		}
		resp, err := http.ReadResponse(br, leg)
		if err != nil {
			return "", nil, r.seal(&ProxyError{Proxy: r.spec.url, Op: op, Err: ended(err)}, a, v)
		}
		switch {
		case resp.StatusCode == http.StatusProxyAuthRequired ||
			resp.StatusCode == http.StatusUnauthorized && proxyMade(resp.Header):
			prev = r.authError(resp, tunnel, isLast)
			c = nextLeg(prev.Challenges, a.lg.scheme.Name())
			if isLast || c == nil {
				// The body is left unread: the connection is closed.
				if !isLast {
					prev.Err = errors.New("the proxy did not answer the " + a.lg.scheme.Name() + " handshake with a challenge")
				}
				return "", nil, r.seal(prev, a, v)
			}
			if !drained(resp) {
				prev.Err = errHandshakeClosed
				return "", nil, r.seal(prev, a, v)
			}
		case tunnel && resp.StatusCode == http.StatusOK:
			return "", br, nil
		case tunnel:
			return "", nil, &ProxyError{Proxy: r.spec.url, Op: op, StatusCode: resp.StatusCode, Header: resp.Header}
		default:
			// The proxy let a plain leg through: the connection needs no
			// more, if the proxy keeps it.
			if !drained(resp) {
				return "", nil, &ProxyError{Proxy: r.spec.url, Op: op, Err: errHandshakeClosed}
			}
			return "", br, nil
		}
	}
	return "", nil, r.seal(&ProxyAuthError{Proxy: r.spec.url, Tunnel: tunnel,
		Err: errors.New("the proxy's handshake did not end within " + strconv.Itoa(maxLegs) + " legs")}, a, "")
}

// errHandshakeClosed is the cause when a proxy closes the connection in
// the middle of a connection-bound handshake.
var errHandshakeClosed = errors.New("the proxy closed the connection in the middle of the handshake: " +
	"NTLM and Negotiate need it kept open (squid: auth_param ntlm keep_alive on)")

// nextLeg returns the challenge of scheme that carries a token for the
// next leg, or nil.
func nextLeg(cs []Challenge, scheme string) *Challenge {
	for i := range cs {
		if strings.EqualFold(cs[i].Scheme, scheme) && cs[i].Token68 != "" {
			return &cs[i]
		}
	}
	return nil
}

// drained reads the rest of a leg's answer so that the connection can
// carry the next, and reports whether it can: the answer has a length,
// is not too large, and the proxy keeps the connection. An answer that
// cannot be drained is left unread (closing its body would read it all):
// its connection is closed.
func drained(resp *http.Response) bool {
	const limit = 64 << 10
	if resp.Close || resp.ContentLength < 0 || resp.ContentLength > limit {
		return false
	}
	_, err := io.Copy(io.Discard, resp.Body)
	return err == nil
}

// bufferedConn is a connection with bytes already read from it.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) {
	if c.r.Buffered() > 0 {
		return c.r.Read(p)
	}
	return c.Conn.Read(p)
}

// authConn writes the last leg of a handshake into the first request
// written on it, right after its request line: net/http writes a request
// from its first line on, from one goroutine at a time.
type authConn struct {
	net.Conn
	mu    sync.Mutex
	field []byte // the header field; nil once written
	line  []byte // the request line, while its end has not been written
}

func (c *authConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.field == nil {
		return c.Conn.Write(p)
	}
	i := bytes.IndexByte(p, '\n')
	if i < 0 {
		c.line = append(c.line, p...)
		return len(p), nil
	}
	out := make([]byte, 0, len(c.line)+len(p)+len(c.field))
	out = append(out, c.line...)
	out = append(out, p[:i+1]...)
	out = append(out, c.field...)
	out = append(out, p[i+1:]...)
	c.field, c.line = nil, nil
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
