package proxyauthtest

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Conn is one client connection to a [Proxy], as a [ConnVerifier] sees it:
// the place for the state of a scheme that authenticates a connection rather
// than a request, such as [NTLM]. The state lives as long as the connection
// and is dropped with it.
//
// A Proxy makes a Conn for every connection it accepts; the zero value is an
// empty state not bound to any connection. Conn is safe for concurrent use.
type Conn struct {
	remote net.Addr

	mu     sync.Mutex
	values map[any]any
}

// RemoteAddr returns the address of the client, or nil for a Conn not made by
// a Proxy.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// Value returns the value stored under key, or nil if there is none.
func (c *Conn) Value(key any) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[key]
}

// SetValue stores v under key, replacing any earlier value; a nil v deletes
// it. Like a context key, key should be of an unexported type of the package
// that uses it, so that schemes cannot clash.
func (c *Conn) SetValue(key, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == nil {
		delete(c.values, key)
		return
	}
	if c.values == nil {
		c.values = make(map[any]any)
	}
	c.values[key] = v
}

// ConnVerifier is an optional extension of [Authenticator] for schemes that
// authenticate a connection rather than a request, in several legs on the
// same connection, such as [NTLM]. A [Proxy] whose Authenticator implements
// ConnVerifier calls VerifyConn instead of Verify or Authorized, with the
// connection the request came on; [Multi] passes it on to those of its
// authenticators that implement ConnVerifier, and consults them also for a
// request without any Proxy-Authorization field (which an authenticated
// connection lets through).
type ConnVerifier interface {
	// VerifyConn checks r, received on conn, against accepted, like
	// [Verifier.Verify], and may read and change the state kept in conn.
	// conn is nil when r did not come through a Proxy; an implementation
	// must then reject r.
	VerifyConn(conn *Conn, r *http.Request, accepted []Credentials) Verdict
}

// connKey is the context key under which a Proxy stores the *Conn of a
// request.
type connKey struct{}

// withConn returns ctx carrying a new Conn for c: the ConnContext of a
// Proxy's server.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &Conn{remote: c.RemoteAddr()})
}

// connOf returns the Conn of a request served by a Proxy, or nil.
func connOf(r *http.Request) *Conn {
	c, _ := r.Context().Value(connKey{}).(*Conn)
	return c
}

// verifyOn applies a to r received on conn: through VerifyConn when a
// implements [ConnVerifier], through Verify when it implements [Verifier],
// through Authorized otherwise.
func verifyOn(a Authenticator, conn *Conn, r *http.Request, accepted []Credentials) Verdict {
	if v, ok := a.(ConnVerifier); ok {
		return v.VerifyConn(conn, r, accepted)
	}
	return verify(a, r, accepted)
}
