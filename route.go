package proxyauth

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"syscall"
)

// route is the hop to one proxy. It has an http.Transport of its own, so
// that its idle connections, and what happens to them when its credentials
// change, stay its own.
type route struct {
	spec  *proxySpec
	creds *credSource
	rt    *http.Transport
}

type attemptKey struct{}

// attempt carries what one RoundTrip tells its route's hooks, through the
// request's context (net/http keeps the context's values for the dial),
// and what the hooks saw of the CONNECT.
type attempt struct {
	auth      string        // Proxy-Authorization for the proxy hop; "" for none
	socksUser *url.Userinfo // SOCKS5 username and password; nil for none

	// The dial may go on in net/http's goroutine after RoundTrip has
	// returned, hence atomics.
	connectSent     atomic.Bool
	connectAnswered atomic.Bool
}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

func newRoute(base *http.Transport, spec *proxySpec, creds *credSource) *route {
	r := &route{spec: spec, creds: creds}
	t := base.Clone()
	proxyURL := spec.url
	t.Proxy = func(req *http.Request) (*url.URL, error) {
		if a := attemptFrom(req.Context()); a != nil && a.socksUser != nil {
			u := *proxyURL
			u.User = a.socksUser
			return &u, nil
		}
		return proxyURL, nil
	}
	dial := baseDialer(base)
	// Every connection of this Transport goes to the proxy, so every dial
	// failure is the proxy being unreachable.
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &ProxyError{Proxy: proxyURL, Op: "dial", Err: err}
		}
		return c, nil
	}
	t.Dial = nil
	if proxyURL.Scheme == "https" {
		t.DialTLSContext = r.dialTLS(base.TLSClientConfig, t.DialContext)
		t.DialTLS = nil
	}
	t.ProxyConnectHeader = nil
	t.GetProxyConnectHeader = connectHeader(base)
	t.OnProxyConnectResponse = r.onConnectResponse(base.OnProxyConnectResponse)
	r.rt = t
	return r
}

// baseDialer returns the dial function base would use.
func baseDialer(base *http.Transport) func(ctx context.Context, network, addr string) (net.Conn, error) {
	switch {
	case base.DialContext != nil:
		return base.DialContext
	case base.Dial != nil:
		return func(_ context.Context, network, addr string) (net.Conn, error) { return base.Dial(network, addr) }
	}
	var d net.Dialer
	return d.DialContext
}

// dialTLS opens the TLS connection to an https:// proxy. net/http would use
// TLSClientConfig as it is, offering h2 when it lists it, but a proxy that
// picks h2 cannot take a CONNECT; so the proxy is offered http/1.1 alone,
// and the origin, inside the tunnel, still gets the full list.
func (r *route) dialTLS(cfg *tls.Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	cfg.ServerName = r.spec.url.Hostname()
	cfg.NextProtos = []string{"http/1.1"}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, &ProxyError{Proxy: r.spec.url, Op: "tls", Err: err}
		}
		return tc, nil
	}
}

// connectHeader returns the GetProxyConnectHeader hook: the headers that
// base's own hook or ProxyConnectHeader gives, with this attempt's
// credentials on top.
func connectHeader(base *http.Transport) func(ctx context.Context, proxyURL *url.URL, target string) (http.Header, error) {
	get, static := base.GetProxyConnectHeader, base.ProxyConnectHeader
	return func(ctx context.Context, proxyURL *url.URL, target string) (http.Header, error) {
		h := static
		if get != nil {
			var err error
			if h, err = get(ctx, proxyURL, target); err != nil {
				return nil, err
			}
		}
		a := attemptFrom(ctx)
		if a == nil {
			return h, nil
		}
		a.connectSent.Store(true)
		if a.auth != "" {
			h = h.Clone()
			if h == nil {
				h = make(http.Header)
			}
			h.Set("Proxy-Authorization", a.auth)
		}
		return h, nil
	}
}

// onConnectResponse returns the OnProxyConnectResponse hook: base's own
// hook first, then the typed error that keeps the status and headers which
// net/http would otherwise lose.
func (r *route) onConnectResponse(next func(context.Context, *url.URL, *http.Request, *http.Response) error) func(context.Context, *url.URL, *http.Request, *http.Response) error {
	return func(ctx context.Context, proxyURL *url.URL, req *http.Request, resp *http.Response) error {
		if next != nil {
			if err := next(ctx, proxyURL, req, resp); err != nil {
				return err
			}
		}
		if a := attemptFrom(ctx); a != nil {
			a.connectAnswered.Store(true)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusProxyAuthRequired, http.StatusUnauthorized:
			return r.authError(resp, true, req.Header.Get("Proxy-Authorization") != "")
		}
		return &ProxyError{Proxy: r.spec.url, Op: "connect", StatusCode: resp.StatusCode, Header: resp.Header}
	}
}

func (r *route) authError(resp *http.Response, tunnel, sent bool) *ProxyAuthError {
	return &ProxyAuthError{
		Proxy:      r.spec.url,
		StatusCode: resp.StatusCode,
		Challenges: parseChallenges(resp.Header.Values("Proxy-Authenticate")),
		Tunnel:     tunnel,
		Attempts:   1,
		Rejected:   sent,
		Header:     resp.Header,
	}
}

// roundTrip sends req through the proxy. req is the caller's: it is
// cloned, never changed, and the inner Transport closes its body.
func (r *route) roundTrip(req *http.Request) (*http.Response, error) {
	socks := r.spec.socks()
	plain := !socks && req.URL.Scheme == "http"
	tunnel := !socks && !plain
	a := &attempt{}
	callerAuth, callerSet := proxyAuthorization(req.Header)
	if callerAuth != "" && !socks {
		a.auth = callerAuth
	} else {
		c, err := r.creds.get(req.Context())
		if err != nil {
			closeBody(req)
			if req.Context().Err() != nil {
				return nil, err // the caller gave up; that is the error
			}
			return nil, &ProxyAuthError{Proxy: r.spec.url, Tunnel: tunnel, Err: err}
		}
		switch {
		case c == nil:
		case socks:
			a.socksUser = url.UserPassword(c.Username, c.Password)
		default:
			a.auth = basicAuth(c)
		}
	}
	ctx := context.WithValue(req.Context(), attemptKey{}, a)
	var out *http.Request
	if callerSet || plain && a.auth != "" {
		out = req.Clone(ctx)
		if out.Header == nil {
			out.Header = make(http.Header)
		}
		deleteProxyAuthorization(out.Header)
		if plain && a.auth != "" {
			out.Header.Set("Proxy-Authorization", a.auth)
		}
	} else {
		out = req.WithContext(ctx)
	}
	resp, err := r.rt.RoundTrip(out)
	if err != nil {
		return nil, r.failure(err, a, plain)
	}
	// The response must not carry our clone, whose header holds the
	// credentials, back to the caller.
	resp.Request = req
	if plain && (resp.StatusCode == http.StatusProxyAuthRequired ||
		resp.StatusCode == http.StatusUnauthorized && proxyMade(resp.Header)) {
		drain(resp.Body)
		return nil, r.authError(resp, false, a.auth != "")
	}
	return resp, nil
}

// failure turns an error of the inner Transport into the typed error of
// the step that failed, when that step was the proxy's.
func (r *route) failure(err error, a *attempt, plain bool) error {
	var (
		pae *ProxyAuthError
		pe  *ProxyError
	)
	switch {
	case errors.As(err, &pae):
		return pae
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case isSOCKSAuthError(err):
		return &ProxyAuthError{Proxy: r.spec.url, Attempts: 1, Rejected: a.socksUser != nil, Err: err}
	case isSOCKSError(err):
		return &ProxyError{Proxy: r.spec.url, Op: "socks", Err: err}
	case a.connectSent.Load() && !a.connectAnswered.Load() && brokenConn(err):
		return &ProxyError{Proxy: r.spec.url, Op: "connect", Err: err}
	case plain && brokenConn(err):
		return &ProxyError{Proxy: r.spec.url, Op: "forward", Err: err}
	}
	return err
}

// brokenConn reports whether err is a connection that ended or broke.
func brokenConn(err error) bool {
	var oe *net.OpError
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &oe)
}
