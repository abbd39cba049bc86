package proxyauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// route is the hop to one proxy, for one identity (see identity.go). It
// has an http.Transport of its own, so that its idle connections, and what
// happens to them when its credentials change, stay its own. It is made
// when first used and released when idle (see routeSet); what must
// outlive it, its auth, belongs to the proxy.
type route struct {
	spec        *proxySpec
	auth        *authState
	schemes     schemeSet
	maxAttempts int
	wait        bool // Config.WaitForChallenge
	downgrade   bool // Config.AllowBasicDowngrade

	// template is the proxy's http.Transport as configured; rt is the
	// clone of it in use. A change of credentials retires rt for a new
	// clone: the old one's tunnels were opened with the old credentials,
	// and the proxy would not ask again for them.
	template *http.Transport
	rt       atomic.Pointer[http.Transport]

	// conns are the Transports of connection-bound logins (dial.go),
	// made on first use; connsMu serialises their making.
	conns   atomic.Pointer[connTransports]
	connsMu sync.Mutex

	parked atomic.Pointer[parkedConn] // a probe's connection, for the next dial (probe.go)

	// baseConnectHeader returns the header fields that Base adds to a
	// CONNECT (its ProxyConnectHeader or GetProxyConnectHeader).
	baseConnectHeader func(ctx context.Context, target string) (http.Header, error)

	timeout time.Duration // Config.ProxyTimeout; 0 for none
	obs     *observer

	// What the routeSet keeps of a route it made; nil and zero for the
	// routes of a check.
	owner *member
	id    *identity    // nil for the proxy's own credentials
	refs  atomic.Int32 // requests holding the route; releasedRefs once released
	used  atomic.Int64 // UnixNano of the last hold
	slot  int          // position in the routeSet's live routes; guarded by its mu
}

type attemptKey struct{}

// attempt carries what one request sent to the proxy tells the route's
// hooks, and what the hooks saw of the CONNECT. It is the context of the
// request sent to the inner Transport, over the caller's (net/http keeps
// the context's values for the dial): being the context itself saves the
// allocation of a context.WithValue on every request.
type attempt struct {
	context.Context // the caller's

	lg         *proxyLogin // credentials for the proxy hop; nil for none
	callerAuth string      // a Proxy-Authorization value the caller set; it takes the place of lg
	last       bool        // no attempt follows this one, whatever the answer
	tunnel     bool        // the request goes through a CONNECT tunnel
	uri        string      // a plain request's target, for a connection-bound handshake
	leg        *leg        // the request's part in a race of proxies (hedge.go); nil for none

	conn atomic.Pointer[net.Conn] // the new connection whose CONNECT answer is awaited

	// gotConn is set when net/http hands the request a connection. A
	// request waiting for its own dial may be given another one that
	// became idle meanwhile, so a CONNECT that this attempt sent and that
	// failed says nothing about the request once it had a connection:
	// the failure is then the connection's, and the origin may have seen
	// the request.
	gotConn atomic.Bool
	reused  atomic.Bool            // and that connection had served a request before
	trace   *httptrace.ClientTrace // reports gotConn; nil for a plain request outside a race

	// The dial may go on in net/http's goroutine after RoundTrip has
	// returned, hence atomics.
	connectSent     atomic.Bool
	connectAnswered atomic.Bool
	authInfo        atomic.Pointer[string] // Proxy-Authentication-Info of the CONNECT's 200
	sentAuth        atomic.Pointer[string] // the CONNECT's Proxy-Authorization value, masked in errors

	// served is the response this attempt got, whose Request's context
	// is the attempt, and route the route that sent it: see routeOf.
	served *http.Response
	route  *route
}

// String names the attempt without its fields, some of which are
// credentials: the attempt is the context of a response's Request, which
// a caller may print.
func (a *attempt) String() string { return fmt.Sprint(a.Context) + ".WithValue(proxyauth.attempt)" }

// GoString is String, for %#v.
func (a *attempt) GoString() string { return a.String() }

// getConnection is GetConn: when the request had a connection already,
// net/http is trying it again on a new one, the first having broken
// before an answer (it does so only when the request was not sent, or
// can be sent twice). What the attempt saw of the first connection no
// longer holds, and a race decided by it is open again.
func (a *attempt) getConnection(string) {
	if !a.gotConn.Load() {
		return
	}
	a.gotConn.Store(false)
	a.reused.Store(false)
	a.connectSent.Store(false)
	a.connectAnswered.Store(false)
	if a.leg != nil {
		a.leg.reconnecting()
	}
}

func (a *attempt) gotConnection(i httptrace.GotConnInfo) {
	a.gotConn.Store(true)
	a.reused.Store(i.Reused)
	if a.leg != nil {
		a.leg.connected(i.Conn)
	}
}

// newAttempt returns an attempt sending lg, for the race leg l (nil for
// none). A tunnel's, or a leg's, carries a ClientTrace, in the same
// allocation; a plain request's, which has no use for one, is the
// smaller for it.
func newAttempt(tunnel bool, lg *proxyLogin, l *leg) *attempt {
	if !tunnel && l == nil {
		return &attempt{lg: lg}
	}
	t := &struct {
		a     attempt
		trace httptrace.ClientTrace
	}{}
	t.a.lg, t.a.trace, t.a.leg = lg, &t.trace, l
	return &t.a
}

// Value returns the attempt for attemptKey, and the caller's values
// otherwise.
func (a *attempt) Value(key any) any {
	if key == (attemptKey{}) {
		return a
	}
	return a.Context.Value(key)
}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// proxyAuthorization returns the Proxy-Authorization value for a request to
// the proxy, or "" for none.
func (a *attempt) proxyAuthorization(r AuthRequest) (string, error) {
	if a.callerAuth != "" {
		return a.callerAuth, nil
	}
	if a.lg == nil || a.lg.auth == nil {
		return "", nil
	}
	return a.lg.auth.Authorize(r)
}

// newRoute returns a route to spec's proxy with the credential state auth.
func newRoute(base *http.Transport, spec *proxySpec, cfg *Config, auth *authState, obs *observer) *route {
	r := &route{
		obs:         obs,
		spec:        spec,
		auth:        auth,
		schemes:     schemeSet{schemes: cfg.Schemes, refuseBasic: cfg.RefuseCleartextBasic && spec.url.Scheme == "http"},
		maxAttempts: cfg.MaxAuthAttempts,
		wait:        cfg.WaitForChallenge,
		downgrade:   cfg.AllowBasicDowngrade,
		timeout:     cfg.ProxyTimeout,
	}
	switch {
	case r.timeout == 0:
		r.timeout = defaultProxyTimeout
	case r.timeout < 0:
		r.timeout = 0
	}
	if r.schemes.schemes == nil {
		r.schemes.schemes = defaultSchemes
	}
	if r.maxAttempts == 0 {
		r.maxAttempts = defaultMaxAuthAttempts
	}
	t := base.Clone()
	proxyURL := spec.url
	t.Proxy = func(req *http.Request) (*url.URL, error) {
		// A login's URL carries its credentials: net/http sends them in
		// the SOCKS5 handshake, and for a plain request through an HTTP
		// proxy as Basic, which spares cloning the request to add the
		// field. For a tunnel, GetProxyConnectHeader adds them.
		if a := attemptFrom(req.Context()); a != nil && a.lg != nil && a.lg.proxyURL != nil &&
			(spec.socks() || req.URL.Scheme == "http") {
			return a.lg.proxyURL, nil
		}
		return proxyURL, nil
	}
	dial := baseDialer(base)
	// Every connection of this Transport goes to the proxy, so every dial
	// failure is the proxy being unreachable.
	rawDial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, &ProxyError{Proxy: proxyURL, Op: "dial", Err: err}
		}
		return c, nil
	}
	t.DialContext = r.bounded(rawDial)
	//lint:ignore SA1019 the deprecated field is cleared so that the clone dials only through rawDial, which honours it.
	t.Dial = nil
	if proxyURL.Scheme == "https" {
		t.DialTLSContext = r.bounded(r.dialTLS(base.TLSClientConfig, rawDial))
		//lint:ignore SA1019 the deprecated field is cleared so that TLS to the proxy goes only through dialTLS.
		t.DialTLS = nil
	}
	get, static := base.GetProxyConnectHeader, base.ProxyConnectHeader
	r.baseConnectHeader = func(ctx context.Context, target string) (http.Header, error) {
		if get != nil {
			return get(ctx, proxyURL, target)
		}
		return static, nil
	}
	t.ProxyConnectHeader = nil
	t.GetProxyConnectHeader = r.connectHeader()
	t.OnProxyConnectResponse = r.onConnectResponse(base.OnProxyConnectResponse)
	r.template = t
	r.rt.Store(t.Clone())
	return r
}

// bounded bounds a dial to the proxy, TLS included, by the proxy timeout,
// and, for a tunnel, the wait for the CONNECT's answer too: the
// connection's deadline, set here, is lifted when the answer comes. It
// also tells a race's leg (hedge.go) when its connection phase starts
// and ends.
func (r *route) bounded(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		a := attemptFrom(ctx)
		var l *leg
		if a != nil {
			l = a.leg
		}
		if l != nil {
			l.dialing()
		}
		conn, err := r.dialWithin(ctx, dial, network, addr, a != nil)
		if err != nil {
			if l != nil {
				l.phaseEnded(err)
			}
			return nil, err
		}
		if a == nil || !a.tunnel && !r.spec.socks() {
			if l != nil {
				l.phaseEnded(nil)
			}
			return conn, nil
		}
		if l != nil || a.tunnel {
			// net/http makes the first exchange itself.
			op := "connect"
			if r.spec.socks() {
				op = "socks"
			}
			conn = &proxyConn{Conn: conn, l: l, op: op, r: r}
		}
		if a.tunnel {
			if r.timeout > 0 {
				conn.SetDeadline(time.Now().Add(r.timeout))
			}
			a.conn.Store(&conn)
		}
		return conn, nil
	}
}

// dialWithin dials within the proxy timeout or, for a request's dial,
// takes the connection a probe left; a probe dials anew.
func (r *route) dialWithin(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), network, addr string, request bool) (net.Conn, error) {
	if request {
		if c := r.unpark(); c != nil {
			return c, nil
		}
	}
	if r.timeout == 0 {
		return dial(ctx, network, addr)
	}
	dctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	return dial(dctx, network, addr)
}

// renewTransport puts a new clone of the template in use and closes the
// idle connections of the old one, which also closes those still in use as
// they come back: net/http closes the connections that become idle after
// CloseIdleConnections until the Transport looks for an idle one again,
// and no request uses the old one any more.
func (r *route) renewTransport() {
	old := r.rt.Swap(r.template.Clone())
	old.CloseIdleConnections()
	r.renewConnTransports()
}

// defaultSchemes are the schemes of a nil Config.Schemes, in order of
// preference. Routes share the slice, which nothing changes.
var defaultSchemes = []Scheme{Digest(), NTLM(), Basic()}

// defaultMaxAuthAttempts is the default of Config.MaxAuthAttempts: enough
// for credentials sent at once, another scheme the proxy prefers, and one
// refresh.
const defaultMaxAuthAttempts = 3

// baseDialer returns the dial function base would use.
func baseDialer(base *http.Transport) func(ctx context.Context, network, addr string) (net.Conn, error) {
	switch {
	case base.DialContext != nil:
		return base.DialContext
	//lint:ignore SA1019 a Base that sets only the deprecated Dial must still have it used.
	case base.Dial != nil:
		//lint:ignore SA1019 a Base that sets only the deprecated Dial must still have it used.
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
// Base's own hook or ProxyConnectHeader gives, with this attempt's
// credentials on top.
func (r *route) connectHeader() func(ctx context.Context, proxyURL *url.URL, target string) (http.Header, error) {
	return func(ctx context.Context, _ *url.URL, target string) (http.Header, error) {
		h, err := r.baseConnectHeader(ctx, target)
		if err != nil {
			return nil, err
		}
		a := attemptFrom(ctx)
		if a == nil {
			return h, nil
		}
		a.connectSent.Store(true)
		v, err := a.proxyAuthorization(AuthRequest{Method: http.MethodConnect, URI: target})
		if err != nil {
			return nil, &ProxyAuthError{Proxy: r.spec.url, Tunnel: true, Err: err}
		}
		if v != "" {
			a.recordSent(v)
			h = h.Clone()
			if h == nil {
				h = make(http.Header)
			}
			h.Set("Proxy-Authorization", v)
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
		a := attemptFrom(ctx)
		if a != nil {
			a.connectAnswered.Store(true)
			if c := a.conn.Load(); c != nil {
				(*c).SetDeadline(time.Time{})
			}
			if info := resp.Header.Get("Proxy-Authentication-Info"); info != "" {
				a.authInfo.Store(&info)
			}
		}
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusProxyAuthRequired, http.StatusUnauthorized:
			pae := r.authError(resp, true, req.Header.Get("Proxy-Authorization") != "")
			if a != nil && a.callerAuth == "" && !a.last && (a.lg != nil || len(pae.Challenges) > 0) {
				// The next attempt answers on this connection, if the
				// proxy keeps it: net/http would close it, and the answer
				// would cost a new one, a round trip more.
				if c := a.conn.Load(); c != nil && keepAfter407(*c, resp) {
					(*c).(*proxyConn).keep.Store(true)
				}
			}
			if a != nil && a.lg != nil && a.callerAuth == "" && !a.last {
				// This error may never reach a request: net/http gives a
				// waiting request whichever comes first, its dial or an
				// idle connection, and a tunnel opened with the old
				// credentials still works. So the rejection is acted on
				// here (a refresh, which closes the old tunnels), lest the
				// old tunnels hide it; the request that gets this error
				// then finds the new credentials without another call.
				_, _ = r.nextLogin(ctx, a.lg, pae)
			}
			return pae
		}
		return &ProxyError{Proxy: r.spec.url, Op: "connect", StatusCode: resp.StatusCode, Header: resp.Header}
	}
}

// keepAfter407 reports whether conn, whose CONNECT resp answered 407, can
// carry the next CONNECT: the proxy keeps it, and the 407's body, which
// must come with its header, is read within a second.
func keepAfter407(conn net.Conn, resp *http.Response) bool {
	pc, ok := conn.(*proxyConn)
	if !ok {
		return false
	}
	pc.SetReadDeadline(time.Now().Add(time.Second))
	defer pc.SetReadDeadline(time.Time{})
	return drained(resp)
}

// authError is the error for the proxy's own 407 (or 401) in resp. It is
// also where the route learns what the proxy asks for.
func (r *route) authError(resp *http.Response, tunnel, sent bool) *ProxyAuthError {
	pae := &ProxyAuthError{
		Proxy:      r.spec.url,
		StatusCode: resp.StatusCode,
		Challenges: parseChallenges(resp.Header.Values("Proxy-Authenticate")),
		Tunnel:     tunnel,
		Rejected:   sent,
		Header:     resp.Header,
	}
	if len(pae.Challenges) > 0 {
		o := &offer{challenges: pae.Challenges}
		o.scheme, _, _ = r.schemes.choose(pae.Challenges)
		r.auth.offer.Store(o)
	}
	return pae
}

// roundTrip sends req through the proxy, answering the proxy's 407s within
// the bound of attempts: with the scheme it prefers, a new Digest nonce, or
// refreshed credentials. req is the caller's: it is cloned, never changed;
// the inner Transport closes its body, and resends use GetBody.
func (r *route) roundTrip(req *http.Request) (*http.Response, error) {
	return r.roundTripIn(req, nil)
}

// roundTripIn is roundTrip for l, a leg of a race (nil for none).
func (r *route) roundTripIn(req *http.Request, l *leg) (*http.Response, error) {
	socks := r.spec.socks()
	tunnel := !socks && req.URL.Scheme != "http"
	callerAuth, callerSet := proxyAuthorization(req.Header)
	a := newAttempt(tunnel, nil, l)
	if callerAuth != "" && !socks {
		// The caller chose the credentials for this request: send them,
		// and leave any 407 to the caller.
		a.callerAuth = callerAuth
	} else {
		lg, err := r.firstLogin(req.Context())
		if err != nil {
			closeBody(req)
			return nil, r.credentialsError(err, tunnel, 0)
		}
		a.lg = lg
	}
	for n := 1; ; n++ {
		a.last = n >= r.maxAttempts
		var start time.Time
		if r.obs != nil {
			start = time.Now()
			r.obs.attemptStart(r.attemptInfo(req, a, n))
		}
		settle, err := r.trial(req.Context(), a)
		if err != nil {
			closeBody(req)
			return nil, r.credentialsError(err, tunnel, n-1)
		}
		resp, pae, err := r.send(req, a, n, callerSet)
		settle(resp != nil, pae)
		if r.obs != nil {
			r.observeEnd(req, a, n, start, resp, pae, err)
		}
		if err != nil {
			return nil, err
		}
		if pae == nil {
			if a.lg != nil {
				r.auth.keep(r.nextNonce(a, resp))
			}
			return resp, nil
		}
		pae.Attempts = n
		if n >= r.maxAttempts || a.callerAuth != "" || pae.Err != nil && a.connAuth() != nil {
			// A connection-bound handshake with a cause failed short of
			// an answer to the credentials: it would fail again.
			return nil, pae
		}
		// Even when this request cannot be resent, the answer is worth
		// having: the next requests use it.
		prev := a.lg
		if a.connAuth() != nil && !pae.Rejected {
			// The proxy forgot the login of the connection: the
			// credentials were not refused, and go again on a new one.
			prev = nil
		}
		next, err := r.nextLogin(req.Context(), prev, pae)
		switch {
		case err != nil:
			pae.Err = err
			return nil, pae
		case next == nil:
			return nil, pae // nothing else to try
		case req.Body != nil && req.Body != http.NoBody && req.GetBody == nil:
			pae.Err = ErrBodyNotReplayable
			return nil, pae
		}
		a = newAttempt(tunnel, next, l)
	}
}

// attemptInfo describes attempt n of req, for the observer.
func (r *route) attemptInfo(req *http.Request, a *attempt, n int) AttemptInfo {
	i := AttemptInfo{Proxy: r.spec.url, Method: req.Method, Target: req.URL.Redacted(), Phase: "CONNECT", Attempt: n}
	switch {
	case r.spec.socks():
		i.Phase = "socks"
	case req.URL.Scheme == "http":
		i.Phase = "plain"
	}
	if a.lg != nil && a.lg.scheme != nil {
		i.Scheme = a.lg.scheme.Name()
	}
	return i
}

// observeEnd tells the observer how attempt n ended.
func (r *route) observeEnd(req *http.Request, a *attempt, n int, start time.Time, resp *http.Response, pae *ProxyAuthError, err error) {
	i := r.attemptInfo(req, a, n)
	i.Duration = time.Since(start)
	switch {
	case resp != nil:
		i.StatusCode = resp.StatusCode
	case pae != nil:
		i.StatusCode, i.Err = pae.StatusCode, pae
	default:
		i.StatusCode, i.Err = statusOf(nil, err), err
	}
	r.obs.attemptEnd(i)
	if pae != nil {
		r.obs.challenge(ChallengeInfo{Proxy: r.spec.url, Phase: i.Phase, Attempt: n, StatusCode: pae.StatusCode,
			Challenges: pae.Challenges, Rejected: pae.Rejected})
	}
}

// failsOver reports whether the route's proxy is one of a pool that
// checks health and fails over.
func (r *route) failsOver() bool {
	return r.owner != nil && r.owner.pool != nil && !r.owner.pool.single
}

// hasBody reports whether req has a body to send.
func hasBody(req *http.Request) bool {
	return req.Body != nil && req.Body != http.NoBody
}

// send makes attempt n. A 407 (or a 401 the proxy made, or a SOCKS5
// refusal) comes back as pae; any other failure as err.
func (r *route) send(req *http.Request, a *attempt, n int, callerSet bool) (*http.Response, *ProxyAuthError, error) {
	socks := r.spec.socks()
	plain := !socks && req.URL.Scheme == "http"
	a.tunnel = !socks && !plain
	a.Context = req.Context()
	var ctx context.Context = a
	ca := a.connAuth()
	switch {
	case a.tunnel, a.leg != nil:
		a.trace.GotConn = a.gotConnection
		if a.tunnel && r.failsOver() {
			// What net/http's retry of a tunnel's request on a new
			// connection does tells a race, and the pool's health
			// (getConnection): only there is it worth the hook's
			// allocations. A plain request's retry needs no telling:
			// its dial's failure is typed as it happens.
			a.trace.GetConn = a.getConnection
		}
		ctx = httptrace.WithClientTrace(ctx, a.trace)
	case ca != nil && plain:
		// Whether the request carries the handshake's last leg, or goes
		// on a connection authenticated before, tells a refusal of the
		// credentials from a proxy that forgot a connection's login.
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: a.gotConnection})
	}
	// A Basic login's credentials go in the proxy URL (see the Proxy
	// hook), unless the caller's own field takes their place.
	viaURL := plain && a.callerAuth == "" && a.lg != nil && a.lg.proxyURL != nil
	var header string
	if plain && !viaURL && ca == nil {
		var err error
		header, err = a.proxyAuthorization(AuthRequest{
			Method: req.Method, URI: requestTarget(req),
			HasBody: hasBody(req), GetBody: req.GetBody,
		})
		if err != nil {
			if n == 1 {
				closeBody(req)
			}
			return nil, nil, &ProxyAuthError{Proxy: r.spec.url, Attempts: n - 1, Err: err}
		}
	}
	out := req.WithContext(ctx)
	if callerSet || header != "" {
		out.Header = headerWith(req.Header, header)
	}
	if n > 1 && hasBody(req) {
		body, err := req.GetBody()
		if err != nil {
			return nil, nil, &ProxyAuthError{Proxy: r.spec.url, Attempts: n - 1, Err: err}
		}
		out.Body = body
	}
	rt := r.rt.Load()
	if ca != nil {
		if plain {
			a.uri = requestTarget(req)
		}
		rt = r.connTransport(a.tunnel)
	}
	resp, err := rt.RoundTrip(out)
	if err != nil {
		var pae *ProxyAuthError
		switch {
		case errors.As(err, &pae) && pae.StatusCode != 0:
			r.seal(pae, a, header)
			return nil, pae, nil
		case isSOCKSAuthError(err):
			return nil, &ProxyAuthError{Proxy: r.spec.url, Rejected: a.lg != nil, Err: err}, nil
		}
		return nil, nil, r.seal(r.failure(req.Context(), err, a, plain), a, header)
	}
	// The response's Request is the caller's request as sent, in a
	// context that holds this attempt, for ProxyOf: our clone itself
	// when its header is the caller's, which costs nothing more, and a
	// copy of the caller's request otherwise, so that no credential of
	// ours comes back.
	if callerSet || header != "" {
		resp.Request = req.WithContext(ctx)
	} else {
		resp.Request = out
	}
	a.served, a.route = resp, r
	if plain && (resp.StatusCode == http.StatusProxyAuthRequired ||
		resp.StatusCode == http.StatusUnauthorized && proxyMade(resp.Header)) {
		pae := r.authError(resp, false, header != "" || viaURL || ca != nil && !a.reused.Load())
		r.seal(pae, a, header)
		// A proxy may answer a request before it has read the body, and
		// then leave the connection unread: squid 5 does so with a body
		// of 64 KiB or more, until its idle timeout two minutes later.
		// So no resend goes on the connection of a 407 to a request with
		// a body.
		// Nor does anything go on a connection whose authentication the
		// proxy refused.
		switch {
		case !hasBody(req) && ca == nil:
			drain(resp.Body, r.timeout) // and the connection is kept
		case resp.Body == http.NoBody:
			// net/http put the connection back in its pool before
			// handing over an answer without a body: closing the idle
			// connections (the route's others too, in this rare case)
			// closes it.
			rt.CloseIdleConnections()
		default:
			// Closed unread, the body makes net/http close the
			// connection rather than pool it.
			resp.Body.Close()
		}
		return nil, pae, nil
	}
	return resp, nil, nil
}

// firstLogin returns the credentials to send with a request before the
// proxy has asked: the login it accepted last (renewed with the current
// credentials if they changed since), or, unless the configuration says to
// wait for a challenge, a new one of a scheme that needs no challenge. nil
// means none.
//
// The accepted login counts only while the proxy's last challenge asks
// for its scheme: a proxy that accepted Basic and has since asked for
// Digest alone gets no more Basic.
func (r *route) firstLogin(ctx context.Context) (*proxyLogin, error) {
	acc := r.auth.accepted.Load()
	cur := r.auth.current()
	off := r.auth.offer.Load()
	if acc != nil && off != nil && acc.scheme != nil &&
		(off.scheme == nil || !strings.EqualFold(off.scheme.Name(), acc.scheme.Name())) {
		acc = nil
	}
	if acc != nil && (cur != nil && acc.version == cur.version || cur == nil && acc.version == 0) {
		return acc, nil
	}
	if cur != nil {
		var challenges []Challenge
		if off != nil {
			challenges = off.challenges
		}
		var err error
		if cur, err = r.unrefused(ctx, cur, challenges); err != nil {
			return nil, err
		}
	}
	wait := r.wait && off == nil // WaitForChallenge holds until the proxy has asked
	if cur == nil {
		if wait && !r.spec.socks() {
			return nil, nil
		}
		var err error
		if cur, err = r.auth.credentials(ctx, nil, 0, false); err != nil {
			return nil, err
		}
		if cur == nil {
			if off == nil || r.spec.socks() {
				return nil, nil
			}
			// No credentials: a scheme with credentials of its own (a
			// Kerberos ticket) may still answer.
			return r.preemptive(&versioned{}, off)
		}
	}
	switch {
	case r.spec.socks():
		return r.withURL(&proxyLogin{version: cur.version, creds: cur.creds}), nil
	case acc != nil:
		// The credentials changed since the proxy accepted acc: answer
		// the same challenge with the new ones.
		if s, err := r.start(acc.scheme, acc.challenge, cur); err == nil && s != nil {
			return s, nil
		}
	case wait:
		return nil, nil
	}
	return r.preemptive(cur, off)
}

// unrefused returns cur, or, when a connection-bound scheme refused cur,
// the credentials the CredentialsFunc gives instead (one call for all the
// requests that find cur refused), before anything is sent; with fixed
// credentials, or the same ones again, errRefusedBefore.
func (r *route) unrefused(ctx context.Context, cur *versioned, challenges []Challenge) (*versioned, error) {
	if !r.auth.refused(cur.version) {
		return cur, nil
	}
	if r.auth.fn == nil {
		return nil, errRefusedBefore
	}
	next, err := r.auth.credentials(ctx, challenges, cur.version, true)
	switch {
	case err != nil:
		return nil, err
	case next.version == cur.version || next.creds == cur.creds:
		return nil, errRefusedBefore
	}
	return next, nil
}

// preemptive returns a login to send before the proxy has asked, or
// nil. Before the proxy's first challenge that is the first allowed scheme
// that needs no challenge (Basic, by default). After it, it is the scheme
// that answers the proxy's last challenge best, so that a proxy that asked
// for Digest alone is never sent Basic (Digest, which needs a fresh nonce,
// cannot answer first: the request goes without). A connection-bound
// scheme (NTLM, Negotiate) answers the last challenge again on each new
// connection; one that cannot start here gives way to the next offered.
func (r *route) preemptive(cur *versioned, off *offer) (*proxyLogin, error) {
	if off == nil {
		scheme, auth, err := r.schemes.preemptive(cur.creds)
		if err != nil || auth == nil {
			return nil, err
		}
		return r.withURL(&proxyLogin{version: cur.version, creds: cur.creds, scheme: scheme, auth: auth}), nil
	}
	cands, err := r.schemes.ranked(off.challenges)
	if err != nil {
		return nil, nil // the request goes without, and gets the error
	}
	var skipped []error
	for _, c := range cands {
		if r.downgradeError(c.scheme) != nil {
			break
		}
		if cur.version == 0 && !ownCredentials(c.scheme) {
			continue
		}
		auth, err := c.scheme.Start(nil, cur.creds)
		if err == nil && auth == nil {
			auth, err = c.scheme.Start(c.challenge, cur.creds)
			if _, bound := auth.(ConnAuthorizer); err == nil && !bound {
				break // it needs a challenge of its own
			}
		}
		if err == nil && auth != nil {
			return r.withURL(&proxyLogin{version: cur.version, creds: cur.creds, scheme: c.scheme, challenge: c.challenge, auth: auth}), nil
		}
		if err != nil {
			skipped = append(skipped, fmt.Errorf("%s: %w", c.scheme.Name(), err))
		}
	}
	return nil, skippedError(skipped)
}

// ownCredentials reports whether s can start without the Transport's
// credentials: Negotiate logs in from a credential cache or a keytab.
func ownCredentials(s Scheme) bool {
	_, ok := s.(negotiateScheme)
	return ok
}

// skippedError is the error when no offered scheme could start, saying
// why each could not; nil when none was tried.
func skippedError(skipped []error) error {
	if len(skipped) == 0 {
		return nil
	}
	return fmt.Errorf("%w: no offered scheme could start: %w", ErrNoAcceptableScheme, errors.Join(skipped...))
}

// downgradeError returns the error for answering the proxy with s when
// that is a downgrade: Basic, after the proxy accepted a stronger scheme,
// unless Config.AllowBasicDowngrade allows it. nil means s may be used.
func (r *route) downgradeError(s Scheme) error {
	if r.downgrade || !isBasic(s) || !r.auth.beyondBasic.Load() {
		return nil
	}
	return fmt.Errorf("%w: %w (it would send the password in clear; a man in the middle may be asking for it; "+
		"set Config.AllowBasicDowngrade if the proxy was reconfigured)", ErrNoAcceptableScheme, ErrSchemeDowngrade)
}

// start returns a login of scheme answering c with cur.
func (r *route) start(scheme Scheme, c *Challenge, cur *versioned) (*proxyLogin, error) {
	if r.auth.refused(cur.version) {
		return nil, errRefusedBefore
	}
	auth, err := scheme.Start(c, cur.creds)
	if err != nil || auth == nil {
		return nil, err
	}
	return r.withURL(&proxyLogin{version: cur.version, creds: cur.creds, scheme: scheme, challenge: c, auth: auth}), nil
}

// withURL sets the proxy URL with s's credentials in it, for a SOCKS5
// login or a Basic one, and returns s.
func (r *route) withURL(s *proxyLogin) *proxyLogin {
	if _, basic := s.scheme.(basicScheme); basic || r.spec.socks() {
		u := *r.spec.url
		u.User = url.UserPassword(s.creds.Username, s.creds.Password)
		s.proxyURL = &u
	}
	return s
}

// nextLogin returns the credentials to answer a 407 with, given what the
// refused attempt sent (prev, nil for nothing): the same credentials
// answering a new nonce when the old one merely expired, the same ones in
// a scheme the proxy prefers, or refreshed ones when the proxy refused
// those of the scheme it asked for. nil means there is nothing new to try.
//
// The strongest offered scheme is used; one that cannot even start here
// (Negotiate without a ticket, say) gives way to the next, and when none
// can, the error says why each could not.
func (r *route) nextLogin(ctx context.Context, prev *proxyLogin, pae *ProxyAuthError) (*proxyLogin, error) {
	if prev != nil && prev.auth != nil {
		if rn, ok := prev.auth.(renewer); ok {
			for i, c := range pae.Challenges {
				if !strings.EqualFold(c.Scheme, prev.scheme.Name()) {
					continue
				}
				if auth, ok := rn.renew(c); ok {
					return &proxyLogin{version: prev.version, creds: prev.creds, scheme: prev.scheme,
						challenge: &pae.Challenges[i], auth: auth}, nil
				}
			}
		}
	}
	var seen uint64
	if prev != nil {
		seen = prev.version
	}
	if r.spec.socks() {
		cur, err := r.auth.credentials(ctx, pae.Challenges, seen, prev != nil)
		switch {
		case err != nil:
			return nil, err
		case cur == nil, prev != nil && cur.version == seen:
			return nil, nil
		case prev != nil && cur.creds == prev.creds:
			return nil, errSameCredentials
		}
		return r.withURL(&proxyLogin{version: cur.version, creds: cur.creds}), nil
	}
	cands, err := r.schemes.ranked(pae.Challenges)
	if err != nil {
		return nil, err
	}
	var skipped []error
	for _, c := range cands {
		if err := r.downgradeError(c.scheme); err != nil {
			if len(skipped) > 0 {
				err = fmt.Errorf("%w; before it, %w", err, skippedError(skipped))
			}
			return nil, err
		}
		// Credentials sent in another scheme than the one the proxy
		// prefers were not refused as such: they get a second chance.
		rejected := prev != nil && strings.EqualFold(prev.scheme.Name(), c.scheme.Name())
		cur, err := r.auth.credentials(ctx, pae.Challenges, seen, rejected)
		switch {
		case err != nil:
			return nil, err
		case cur == nil && !ownCredentials(c.scheme):
			continue
		case cur == nil:
			cur = &versioned{} // none: the scheme logs in on its own
		case !rejected:
			if cur, err = r.unrefused(ctx, cur, pae.Challenges); err != nil {
				return nil, err
			}
		}
		switch {
		case rejected && cur.version == seen:
			return nil, nil // fixed credentials: there are no others
		case rejected && cur.creds == prev.creds:
			return nil, errSameCredentials
		}
		lg, err := r.start(c.scheme, c.challenge, cur)
		switch {
		case errors.Is(err, errRefusedBefore):
			return nil, err
		case err != nil:
			skipped = append(skipped, fmt.Errorf("%s: %w", c.scheme.Name(), err))
			continue
		}
		return lg, nil
	}
	return nil, skippedError(skipped)
}

// nextNonce returns the login to keep after a success: the one sent, or
// its successor when the proxy named the next Digest nonce in a
// Proxy-Authentication-Info field. For a tunnel only the CONNECT's answer
// counts: the response is the origin's, which must not steer the proxy's
// nonces.
func (r *route) nextNonce(a *attempt, resp *http.Response) *proxyLogin {
	var info string
	switch p := a.authInfo.Load(); {
	case p != nil:
		info = *p
	case !a.tunnel && !r.spec.socks():
		info = resp.Header.Get("Proxy-Authentication-Info")
	}
	if info == "" {
		return a.lg
	}
	if nx, ok := a.lg.auth.(nexter); ok {
		if auth, ok := nx.next(info); ok {
			s := *a.lg
			s.auth = auth
			return &s
		}
	}
	return a.lg
}

// credentialsError is the error for credentials that could not be had.
func (r *route) credentialsError(err error, tunnel bool, attempts int) error {
	return &ProxyAuthError{Proxy: r.spec.url, Tunnel: tunnel, Attempts: attempts, Err: err}
}

// requestTarget returns the request-target that net/http writes for a
// request to a proxy (Request.write): the absolute URL, with the host in
// Punycode and without an IPv6 zone. Digest signs it, so it must be the
// same to the byte.
func requestTarget(req *http.Request) string {
	if req.URL.Opaque != "" {
		return req.URL.RequestURI()
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	if h, err := httpguts.PunycodeHostPort(host); err == nil {
		host = h
	}
	return req.URL.Scheme + "://" + removeZone(host) + req.URL.RequestURI()
}

// removeZone removes the zone of an IPv6 literal, as net/http does.
func removeZone(host string) string {
	if !strings.HasPrefix(host, "[") {
		return host
	}
	i := strings.LastIndex(host, "]")
	if i < 0 {
		return host
	}
	j := strings.LastIndex(host[:i], "%")
	if j < 0 {
		return host
	}
	return host[:j] + host[i:]
}

// failure turns an error of the inner Transport into the typed error of
// the step that failed, when that step was the proxy's.
func (r *route) failure(ctx context.Context, err error, a *attempt, plain bool) error {
	var (
		pae *ProxyAuthError
		pe  *ProxyError
	)
	switch {
	case errors.As(err, &pae):
		return pae
	case errors.As(err, &pe):
		return pe
	case ctx.Err() != nil:
		return err // the caller gave up: that is the error
	case isSOCKSError(err):
		return &ProxyError{Proxy: r.spec.url, Op: "socks", Err: err}
	case a.connectSent.Load() && !a.connectAnswered.Load() && !a.gotConn.Load():
		// Whatever went wrong between the CONNECT and its answer (a
		// broken connection, a timeout, an answer that is not HTTP) went
		// wrong at the proxy.
		return &ProxyError{Proxy: r.spec.url, Op: "connect", Err: err}
	case plain && (brokenConn(err) || badAnswer(err)):
		return &ProxyError{Proxy: r.spec.url, Op: "forward", Err: err}
	case !plain && (brokenConn(err) || badAnswer(err)):
		// The connection through the proxy broke while the request was
		// in it: the proxy or the origin may have closed it.
		return &ProxyError{Proxy: r.spec.url, Op: "tunnel", Err: err}
	}
	return err
}

// brokenConn reports whether err is a connection that ended, broke or
// timed out (such as Base.ResponseHeaderTimeout running out).
func brokenConn(err error) bool {
	var (
		oe *net.OpError
		ne net.Error
	)
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.As(err, &oe) || errors.As(err, &ne) && ne.Timeout()
}
