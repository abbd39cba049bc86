package proxyauthtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// via is the Via field value the proxy adds to every response it sends.
const via = "1.1 proxyauthtest"

// established is the status line of the answer to a CONNECT request whose
// tunnel is open.
const established = "HTTP/1.1 200 Connection established\r\n"

// Proxy is an HTTP forward proxy listening on a loopback address that demands
// proxy authentication, for use in tests. It forwards absolute-form requests
// ("GET http://host/path") and opens tunnels for CONNECT requests, over plain
// HTTP ([Proxy.Start]) or HTTPS ([Proxy.StartTLS]), and records every request
// it receives.
//
// The exported fields must not be changed once the proxy has started, except
// as noted. The methods are safe for concurrent use while the proxy serves,
// except Start and StartTLS, which must be called once, before any request.
type Proxy struct {
	// URL is the base URL of the proxy, "http://127.0.0.1:PORT" after Start
	// and "https://127.0.0.1:PORT" after StartTLS. It is set by Start and
	// StartTLS and must not be changed.
	URL string

	// Listener is the listener the proxy serves on. NewUnstartedProxy sets it
	// to a loopback listener; it may be replaced before Start or StartTLS, and
	// StartTLS wraps it in a TLS listener.
	Listener net.Listener

	// TLS is the TLS configuration of a proxy started with StartTLS, which
	// sets it (like httptest.Server.TLS). It may be set before StartTLS to
	// provide certificates or other settings; StartTLS uses a clone whose
	// NextProtos is always exactly ["http/1.1"], because a proxy that
	// negotiates HTTP/2 breaks CONNECT for HTTP/1 clients. It must not be
	// changed after StartTLS.
	TLS *tls.Config

	// DialContext dials the targets the proxy forwards to, for plain requests
	// and for CONNECT tunnels. If nil, a net.Dialer is used. Tests set it to
	// map made-up host names (such as "origin.test:80") to loopback servers.
	// It may be set only before Start or StartTLS.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Realm is the realm sent in the Basic challenge when Auth is nil; ""
	// means "proxyauthtest". It may be set only before Start or StartTLS.
	Realm string

	// Auth checks credentials and produces challenges. If nil, Basic with
	// Realm is used. When it implements [ConnVerifier], the proxy calls
	// VerifyConn with the request's connection; otherwise, when it
	// implements [Verifier], Verify; otherwise Authorized. It may be set only
	// before Start or StartTLS.
	Auth Authenticator

	srv       *httptest.Server
	ctx       context.Context // canceled by Close; the base of every request context
	cancel    context.CancelFunc
	auth      Authenticator   // Auth or its default, set by Start
	dial      dialFunc        // DialContext or its default, set by Start
	transport *http.Transport // forwards plain requests, set by Start
	t         tracker
	closeOnce sync.Once

	mu            sync.Mutex
	started       bool
	creds         []Credentials
	rejectNext    int
	authStatus    int // 0 means 407
	connectStatus int
	hangUp        bool
	requests      []*Request
}

// Request is the record of one request received by a [Proxy].
type Request struct {
	// Method is the request's method: "CONNECT", "GET", ...
	Method string
	// Target is the request target as received: an absolute URL for
	// plain requests, host:port for CONNECT.
	Target string
	// ProxyAuthorization holds every Proxy-Authorization value received,
	// as received; nil if there was none.
	ProxyAuthorization []string
	// Scheme is the scheme of the first Proxy-Authorization value
	// ("Basic", "Digest", ...: canonical case for the well-known
	// schemes); "" if there was none.
	Scheme string
	// Authorized reports that the credentials were accepted, or that the
	// request came without credentials on a connection that a scheme such
	// as [NTLM] had authenticated; false if the proxy hung up before
	// checking them.
	Authorized bool
	// Leg is, for a scheme that authenticates a connection in several legs
	// ([NTLM]), the leg of the handshake the request carried: 1 for a
	// NEGOTIATE message, 3 for an AUTHENTICATE message (see
	// [Verdict.Leg]). 0 means none, as for a request that passed on an
	// already authenticated connection.
	Leg int
	// Status is the status the proxy answered with: for a forwarded
	// request, the origin's status; for an opened tunnel, 200; 0 if it
	// hung up.
	Status int
}

// NewProxy returns a started [Proxy] that accepts exactly the given
// credentials. The caller should call Close when finished.
func NewProxy(username, password string) *Proxy {
	p := NewUnstartedProxy(username, password)
	p.Start()
	return p
}

// NewTLSProxy returns a [Proxy] started with StartTLS that accepts exactly the
// given credentials. The caller should call Close when finished.
func NewTLSProxy(username, password string) *Proxy {
	p := NewUnstartedProxy(username, password)
	p.StartTLS()
	return p
}

// NewUnstartedProxy returns a new [Proxy] that accepts exactly the given
// credentials but is not started, so that its fields can be set first. The
// caller should call Start or StartTLS, and then Close when finished (Close
// also releases the listener of a proxy that never started).
func NewUnstartedProxy(username, password string) *Proxy {
	p := &Proxy{creds: []Credentials{{Username: username, Password: password}}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(p.serve))
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.srv.Config.BaseContext = func(net.Listener) context.Context { return p.ctx }
	p.srv.Config.ConnState = p.connState
	p.srv.Config.ConnContext = withConn
	// A non-nil empty map disables HTTP/2 on the server.
	p.srv.Config.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	p.Listener = p.srv.Listener
	return p
}

// Start starts the proxy on plain HTTP. It panics if the proxy has already
// been started or closed.
func (p *Proxy) Start() {
	p.prepare()
	p.srv.Start()
	p.URL = p.srv.URL
	p.Listener = p.srv.Listener
}

// StartTLS starts the proxy on HTTPS, with a certificate for 127.0.0.1, ::1
// and example.com unless TLS provides one, and sets TLS. Clients must trust
// [Proxy.Certificate]. It panics if the proxy has already been started or
// closed.
func (p *Proxy) StartTLS() {
	p.prepare()
	cfg := new(tls.Config)
	if p.TLS != nil {
		cfg = p.TLS.Clone()
	}
	cfg.NextProtos = []string{"http/1.1"}
	p.srv.TLS = cfg
	p.srv.StartTLS()
	p.TLS = p.srv.TLS
	p.URL = p.srv.URL
	p.Listener = p.srv.Listener
}

// prepare checks that the proxy can start and resolves the fields that may
// only be set before the start.
func (p *Proxy) prepare() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		panic("proxyauthtest: Proxy already started")
	}
	if p.ctx.Err() != nil {
		panic("proxyauthtest: Proxy started after Close")
	}
	p.started = true
	if p.Listener != p.srv.Listener {
		p.srv.Listener.Close() // replaced by the caller
		p.srv.Listener = p.Listener
	}
	p.auth = p.Auth
	if p.auth == nil {
		p.auth = Basic{Realm: p.Realm}
	}
	if v, ok := p.auth.(validator); ok {
		v.validate() // panics on a bad Digest configuration
	}
	p.dial = orDefaultDial(p.DialContext)
	p.transport = &http.Transport{
		Proxy:              nil,
		DialContext:        p.dial,
		DisableCompression: true, // pass bodies through unchanged
	}
}

// Close shuts the proxy down: it closes the listener, every client
// connection and every open tunnel, and waits for all of the proxy's
// goroutines to finish. Requests in flight fail. Close may be called more
// than once and concurrently with requests in flight.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		// Close the connections before canceling the requests, so that no
		// client sees a response caused by the cancellation.
		p.t.shutdown()
		p.cancel()
		p.Listener.Close() // in case it was replaced and the proxy never started
		p.srv.Close()
		p.t.wait()
		if p.transport != nil {
			p.transport.CloseIdleConnections()
		}
	})
}

// Authenticator returns the Authenticator in use: Auth, or the Basic
// authenticator used when Auth is nil. It returns nil before Start or
// StartTLS. Tests use it to reach the [Digest] of a proxy made by
// [NewDigestProxy].
func (p *Proxy) Authenticator() Authenticator {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.auth
}

// Certificate returns the certificate of a proxy started with StartTLS, or
// nil if it was started with Start or not started.
func (p *Proxy) Certificate() *x509.Certificate {
	return p.srv.Certificate()
}

// Addr returns the address the proxy listens on, as host:port.
func (p *Proxy) Addr() string {
	return p.Listener.Addr().String()
}

// SetCredentials replaces the set of accepted credentials. An empty set
// rejects every request.
func (p *Proxy) SetCredentials(creds ...Credentials) {
	p.mu.Lock()
	p.creds = slices.Clone(creds)
	p.mu.Unlock()
}

// AddCredentials adds to the set of accepted credentials.
func (p *Proxy) AddCredentials(creds ...Credentials) {
	p.mu.Lock()
	p.creds = append(p.creds, creds...)
	p.mu.Unlock()
}

// RejectNext makes the next n requests that need authentication get a
// rejection even when their credentials are valid. It replaces any count set
// earlier; n <= 0 cancels it.
func (p *Proxy) RejectNext(n int) {
	p.mu.Lock()
	p.rejectNext = max(n, 0)
	p.mu.Unlock()
}

// SetAuthStatus sets the status of a rejection: 407 (the default) or, for
// example, 401 to mimic a misconfigured proxy. The Proxy-Authenticate
// challenges are sent whatever the status. Code 0 restores the default. It
// panics if code is not 0 or in the range 200 to 599.
func (p *Proxy) SetAuthStatus(code int) {
	checkStatus("SetAuthStatus", code)
	p.mu.Lock()
	p.authStatus = code
	p.mu.Unlock()
}

// SetConnectStatus makes the proxy answer every authorized CONNECT request
// with status code (for example 403, 502 or 503) instead of opening the
// tunnel. Code 0 restores normal behaviour. It panics if code is not 0 or in
// the range 200 to 599.
func (p *Proxy) SetConnectStatus(code int) {
	checkStatus("SetConnectStatus", code)
	p.mu.Lock()
	p.connectStatus = code
	p.mu.Unlock()
}

// SetHangUp sets hang-up mode: while on, the proxy records every request and
// then closes the client connection without answering.
func (p *Proxy) SetHangUp(on bool) {
	p.mu.Lock()
	p.hangUp = on
	p.mu.Unlock()
}

// Requests returns a copy of the records of every request received so far, in
// the order received. A record is complete once its client has received the
// response status line.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.requests))
	for i, r := range p.requests {
		out[i] = *r
		out[i].ProxyAuthorization = slices.Clone(r.ProxyAuthorization)
	}
	return out
}

// ResetRequests forgets every request recorded so far, so that Requests
// returns only those received after it: call it between the steps of a
// test that checks what each step sent. A request received before the
// call is forgotten even if it is still in progress. It is safe to call
// concurrently with requests.
func (p *Proxy) ResetRequests() {
	p.mu.Lock()
	p.requests = nil
	p.mu.Unlock()
}

// checkStatus panics if code is not an acceptable argument of the setter
// named method.
func checkStatus(method string, code int) {
	if code != 0 && (code < 200 || code > 599) {
		panic(fmt.Sprintf("proxyauthtest: %s: invalid status code %d", method, code))
	}
}

// connState tracks the client connections of the HTTP server so that Close
// can close them even while they carry a request.
func (p *Proxy) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		p.t.track(c) // closes c if the proxy is closed
	case http.StateHijacked, http.StateClosed:
		p.t.untrack(c)
	}
}

// serve handles every request the proxy receives.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	if !p.t.begin() {
		// Closed: hang up without an answer, as a proxy that went away
		// does, rather than answer a client that Close is cutting off.
		panic(http.ErrAbortHandler)
	}
	defer p.t.end()

	rec := p.record(r)
	p.mu.Lock()
	hangUp := p.hangUp
	p.mu.Unlock()
	if hangUp {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return
		}
		panic(http.ErrAbortHandler) // closes the connection without answering
	}

	if r.Method != http.MethodConnect && r.Body != nil && r.Body != http.NoBody {
		if b, ok := p.auth.(bodyReader); ok && b.needsBody(r) {
			// Digest with qop=auth-int hashes the body: read it whole now,
			// and forward the same bytes later.
			data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
			switch {
			case err != nil:
				w.Header().Set("Connection", "close")
				p.respond(w, rec, http.StatusBadRequest, "proxyauthtest: cannot read the request body: "+err.Error())
				return
			case len(data) > maxBody:
				w.Header().Set("Connection", "close")
				p.respond(w, rec, http.StatusRequestEntityTooLarge,
					fmt.Sprintf("proxyauthtest: request body larger than %d bytes", maxBody))
				return
			}
			r.Body = newBufferedBody(data)
		}
	}

	v := p.authorize(r)
	p.update(rec, func(rec *Request) { rec.Authorized, rec.Leg = v.Authorized, v.Leg })
	if !v.Authorized {
		p.reject(w, rec, v.Challenges)
		return
	}
	if v.Info != "" {
		// Sent with whatever answer follows, and kept by forward.
		w.Header().Set("Proxy-Authentication-Info", v.Info)
	}

	switch {
	case r.Method == http.MethodConnect:
		p.connect(w, r, rec, v.Info)
	case r.URL.IsAbs():
		p.forward(w, r, rec)
	default:
		p.respond(w, rec, http.StatusBadRequest,
			"proxyauthtest: this is a proxy; it accepts only absolute-form requests and CONNECT")
	}
}

// record appends a record of r to the request log and returns it.
func (p *Proxy) record(r *http.Request) *Request {
	rec := &Request{
		Method:             r.Method,
		Target:             r.RequestURI,
		ProxyAuthorization: slices.Clone(r.Header.Values("Proxy-Authorization")),
	}
	if len(rec.ProxyAuthorization) > 0 {
		rec.Scheme = authScheme(rec.ProxyAuthorization[0])
	}
	p.mu.Lock()
	p.requests = append(p.requests, rec)
	p.mu.Unlock()
	return rec
}

// update changes a record under the lock.
func (p *Proxy) update(rec *Request, f func(*Request)) {
	p.mu.Lock()
	f(rec)
	p.mu.Unlock()
}

// authorize applies RejectNext and then the Authenticator, through
// VerifyConn or Verify when it implements them.
func (p *Proxy) authorize(r *http.Request) Verdict {
	p.mu.Lock()
	if p.rejectNext > 0 {
		p.rejectNext--
		p.mu.Unlock()
		return Verdict{}
	}
	creds := slices.Clone(p.creds)
	p.mu.Unlock()
	return verifyOn(p.auth, connOf(r), r, creds)
}

// reject answers with the authentication status and challenges, or the
// Authenticator's challenges if challenges is nil.
func (p *Proxy) reject(w http.ResponseWriter, rec *Request, challenges []string) {
	p.mu.Lock()
	code := p.authStatus
	p.mu.Unlock()
	if code == 0 {
		code = http.StatusProxyAuthRequired
	}
	if challenges == nil {
		challenges = p.auth.Challenges()
	}
	for _, c := range challenges {
		w.Header().Add("Proxy-Authenticate", c)
	}
	p.respond(w, rec, code, "proxyauthtest: "+strings.ToLower(http.StatusText(code)))
}

// respond answers with code and a short text body, and records code. The
// connection stays open for further requests.
func (p *Proxy) respond(w http.ResponseWriter, rec *Request, code int, msg string) {
	body := msg + "\n"
	h := w.Header()
	h.Add("Via", via)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	p.update(rec, func(rec *Request) { rec.Status = code })
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// connect opens a tunnel for an authorized CONNECT request. info, if not
// empty, is sent as Proxy-Authentication-Info with the 200.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request, rec *Request, info string) {
	p.mu.Lock()
	code := p.connectStatus
	p.mu.Unlock()
	if code != 0 {
		p.respond(w, rec, code, "proxyauthtest: "+strings.ToLower(http.StatusText(code)))
		return
	}
	if _, _, err := net.SplitHostPort(r.Host); err != nil {
		p.respond(w, rec, http.StatusBadRequest, "proxyauthtest: CONNECT target is not host:port")
		return
	}
	up, err := p.dial(r.Context(), "tcp", r.Host)
	if err != nil {
		p.respond(w, rec, http.StatusBadGateway, "proxyauthtest: bad gateway: "+err.Error())
		return
	}
	if !p.t.track(up) {
		panic(http.ErrAbortHandler) // closed meanwhile: hang up, as above
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		p.t.closeConn(up)
		p.respond(w, rec, http.StatusInternalServerError, "proxyauthtest: cannot take over the connection")
		return
	}
	if !p.t.track(conn) {
		p.t.closeConn(up)
		return
	}
	p.update(rec, func(rec *Request) { rec.Status = http.StatusOK })
	answer := established
	if info != "" {
		answer += "Proxy-Authentication-Info: " + info + "\r\n"
	}
	if _, err := io.WriteString(conn, answer+"\r\n"); err != nil {
		p.t.closeConn(conn)
		p.t.closeConn(up)
		return
	}
	// brw.Reader may hold bytes the client sent right after the request.
	p.t.pipe(conn, brw.Reader, up)
}

// forward forwards an authorized absolute-form request to its target and
// streams the response back.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rec *Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Host = "" // use out.URL.Host
	out.Close = false
	if r.ContentLength == 0 {
		out.Body = nil
	}
	removeHopByHop(out.Header)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // keep the Transport from adding its own
	}

	resp, err := p.transport.RoundTrip(out)
	if err != nil {
		p.respond(w, rec, http.StatusBadGateway, "proxyauthtest: bad gateway: "+err.Error())
		return
	}
	defer resp.Body.Close()

	removeHopByHop(resp.Header)
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = v
	}
	h.Add("Via", via)
	p.update(rec, func(rec *Request) { rec.Status = resp.StatusCode })
	w.WriteHeader(resp.StatusCode)

	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if err != nil {
			break
		}
	}
	for k, v := range resp.Trailer {
		h[http.TrailerPrefix+k] = v
	}
}

// removeHopByHop deletes the hop-by-hop fields from h: those named in
// Connection and the standard ones, including Proxy-Authorization, which must
// never reach the origin, and Proxy-Authenticate and
// Proxy-Authentication-Info, which are meant for the proxy's client only.
func removeHopByHop(h http.Header) {
	for _, f := range h.Values("Connection") {
		for name := range strings.SplitSeq(f, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range [...]string{
		"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authentication-Info", "Proxy-Authorization",
		"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
	} {
		h.Del(name)
	}
}
