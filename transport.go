package proxyauth

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/proxyauth/proxyauth/internal/redact"
)

// Transport is an [http.RoundTripper] that sends requests through an
// authenticating proxy and reports every failure as a typed error. Make one
// with [New] or [Wrap]; the zero value is not usable. It is safe for
// concurrent use.
//
// For an http:// target, the request goes to the proxy with the
// credentials in one Proxy-Authorization field. For an https:// target,
// the credentials travel on the CONNECT that opens the tunnel and never
// inside it. A Proxy-Authorization field that the caller set on a request
// is used instead of the configured credentials for the proxy hop, and
// never reaches the origin: it is dropped on a direct route and for SOCKS5
// proxies. It is for the proxy it is first sent to alone: a request that
// fails over to another proxy goes on without it, and so does a redirect
// (which http.Client makes with the field copied) that another proxy than
// the first request's would carry; a 407 to it is returned as it is. A
// tunnel already open is reused without a new CONNECT.
//
// A 407 from the proxy is returned as a [*ProxyAuthError], for http:// and
// https:// targets alike, with its body drained and closed; so is a 401
// that the proxy made (it carries Proxy-Authenticate or X-Squid-Error) and
// any 401 to a CONNECT. A 401 from the origin is returned as the response
// it is. The caller's request is never changed, and its body is closed on
// every path.
//
// Each proxy has connections of its own (an http.Transport per proxy),
// made when it is first used: New costs the parsing of the proxies alone.
// A proxy unused for 90 seconds, or, beyond 1,024 proxies in use at once,
// the one used least recently, has its connections closed and made again
// when next used; its health, statistics and credentials (those a
// CredentialsFunc gave, the scheme the proxy accepted) are kept.
type Transport struct {
	pac    *pacSource      // with Config.PAC; nil otherwise
	pool   *Pool           // the proxies of Config.Proxies or Config.Pool, or those a PAC named; nil with environment configuration
	env    *envConfig      // nil with a pool
	envm   []*member       // the environment's proxies, one or two; nil with a pool
	set    *routeSet       // the live routes of every proxy
	direct *http.Transport // for targets the environment sends directly; nil with a pool
	check  *checkSetup
}

// New returns a Transport for cfg. Every problem with cfg is reported here,
// as a [*ConfigError], rather than at the first request. With
// PoolConfig.ProbeAtStart, New starts probing the proxies in the
// background; [Transport.Close] stops that.
func New(cfg Config) (*Transport, error) {
	base := cfg.Base
	if base == nil {
		dt, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, &ConfigError{Field: "Base", Reason: fmt.Sprintf(
				"nil, and http.DefaultTransport is a %T rather than an *http.Transport to take settings from", http.DefaultTransport)}
		}
		base = dt
	}
	if err := checkAuthConfig(&cfg); err != nil {
		return nil, err
	}
	if err := checkPoolConfig(&cfg); err != nil {
		return nil, err
	}
	t := &Transport{}
	obs := newObserver(&cfg)
	t.check = newCheckSetup(base, &cfg, obs)
	var (
		specs   []*proxySpec
		fns     []CredentialsFunc
		weights []int
		field   func(i int) string // where specs[i] came from, for messages
	)
	switch {
	case cfg.PAC != "" && (len(cfg.Proxies) > 0 || len(cfg.Pool.Proxies) > 0):
		return nil, &ConfigError{Field: "PAC", Value: redact.Raw(cfg.PAC),
			Reason: "set together with Proxies or Pool.Proxies: give the proxies one way"}
	case cfg.PAC != "":
		return newPACTransport(&cfg, base, obs)
	case len(cfg.Proxies) == 0 && len(cfg.Pool.Proxies) == 0 && (cfg.Pool.SessionUsername != "" || cfg.Pool.Banned != nil):
		field := "Pool.SessionUsername"
		if cfg.Pool.SessionUsername == "" {
			field = "Pool.Banned"
		}
		return nil, &ConfigError{Field: field, Reason: "set without a pool: it needs the proxies in Config.Proxies, Pool.Proxies or a PAC script, not the environment's"}
	case len(cfg.Proxies) == 0 && len(cfg.Pool.Proxies) == 0:
		env, err := fromEnvironment()
		if err != nil {
			return nil, err
		}
		t.env = env
		for _, s := range []*proxySpec{env.http, env.https} {
			if s != nil && (len(specs) == 0 || specs[0] != s) {
				specs, fns, weights = append(specs, s), append(fns, cfg.Credentials), append(weights, 1)
			}
		}
		field = func(i int) string { return env.field(specs[i]) }
		t.direct = base.Clone()
		t.direct.Proxy = nil
	case len(cfg.Proxies) > 0:
		field = func(i int) string { return "Proxies[" + strconv.Itoa(i) + "]" }
		specs, fns, weights = make([]*proxySpec, len(cfg.Proxies)), make([]CredentialsFunc, len(cfg.Proxies)), make([]int, len(cfg.Proxies))
		for i, raw := range cfg.Proxies {
			spec, err := parseProxy(field(i), raw)
			if err != nil {
				return nil, err
			}
			specs[i], fns[i], weights[i] = spec, cfg.Credentials, 1
		}
	default:
		field = func(i int) string { return "Pool.Proxies[" + strconv.Itoa(i) + "].URL" }
		for i, pp := range cfg.Pool.Proxies {
			spec, err := parseProxy(field(i), pp.URL)
			if err != nil {
				return nil, err
			}
			fn := pp.Credentials
			if fn == nil {
				fn = cfg.Credentials
			}
			specs, fns, weights = append(specs, spec), append(fns, fn), append(weights, pp.Weight)
		}
	}
	// A proxy's URL without userinfo is its scheme and host.
	type key struct{ scheme, host string }
	var seen map[key]int
	if t.env == nil {
		seen = make(map[key]int, len(specs))
	}
	basic := basicAllowed(&cfg)
	for i, s := range specs {
		if fns[i] != nil && s.creds != nil {
			return nil, &ConfigError{Field: field(i), Value: "xxxxx@" + s.url.Host,
				Reason: "has a username and password while a CredentialsFunc is set for it; give the credentials one way"}
		}
		if s.creds != nil && !s.socks() && basic && strings.Contains(s.creds.Username, ":") {
			return nil, &ConfigError{Field: field(i), Value: "xxxxx@" + s.url.Host,
				Reason: "the username contains a colon, which Basic authentication cannot carry; " +
					"leave Basic out of Config.Schemes to send it with Digest"}
		}
		if seen != nil {
			k := key{s.url.Scheme, s.url.Host}
			if first, dup := seen[k]; dup {
				return nil, &ConfigError{Field: field(i), Value: s.url.String(), Reason: "the same proxy as " + field(first)}
			}
			seen[k] = i
		}
	}
	t.set = newRouteSet(base, &cfg, obs)
	members := newMembers(t.set, specs, fns, weights)
	if t.env != nil {
		t.envm = members
		return t, nil
	}
	t.pool = newPool(&cfg, members, t.set, obs)
	return t, nil
}

// newPACTransport returns the Transport for cfg.PAC: a pool without
// members, to which each proxy the script names is added when first
// named.
func newPACTransport(cfg *Config, base *http.Transport, obs *observer) (*Transport, error) {
	t := &Transport{check: newCheckSetup(base, cfg, obs), set: newRouteSet(base, cfg, obs)}
	t.direct = base.Clone()
	t.direct.Proxy = nil
	t.pool = newPool(cfg, nil, t.set, obs)
	t.pool.direct = t.direct
	src, err := newPACSource(cfg, base, obs)
	if err != nil {
		t.pool.close()
		return nil, err
	}
	src.pool = t.pool
	t.pac = src
	return t, nil
}

// Wrap returns a copy of c whose Transport is a [Transport] for cfg; c
// itself is not changed. The copy keeps c's Timeout, Jar and CheckRedirect.
// c's Transport must be an [*http.Transport], which becomes cfg.Base, or
// nil for [http.DefaultTransport]: the credentials for https:// targets
// travel on the CONNECT, which only an *http.Transport's hooks can reach.
// A nil c stands for a zero [http.Client].
func Wrap(c *http.Client, cfg Config) (*http.Client, error) {
	var out http.Client
	if c != nil {
		out = *c
	}
	switch rt := out.Transport.(type) {
	case nil:
	case *http.Transport:
		if cfg.Base != nil && cfg.Base != rt {
			return nil, &ConfigError{Field: "Base",
				Reason: "set, and the client has an *http.Transport of its own; give one of them"}
		}
		cfg.Base = rt
	case *Transport:
		return nil, &ConfigError{Field: "Client.Transport", Reason: "is a *proxyauth.Transport already"}
	default:
		return nil, &ConfigError{Field: "Client.Transport", Value: fmt.Sprintf("%T", rt),
			Reason: "is not an *http.Transport: credentials for https:// targets travel on the CONNECT, which only " +
				"an *http.Transport's GetProxyConnectHeader and OnProxyConnectResponse hooks reach; " +
				"pass the *http.Transport it wraps as Config.Base and layer it over the result instead"}
	}
	t, err := New(cfg)
	if err != nil {
		return nil, err
	}
	out.Transport = t
	return &out, nil
}

// RoundTrip implements [http.RoundTripper].
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL == nil {
		closeBody(req)
		return nil, errors.New("proxyauth: nil Request.URL")
	}
	if t.pool == nil && t.env == nil {
		closeBody(req)
		return nil, errors.New("proxyauth: Transport used without New; make it with New or Wrap")
	}
	if t.pac != nil {
		return t.pac.roundTrip(req)
	}
	if t.pool != nil {
		return t.pool.roundTrip(req)
	}
	if id, ok := sessionOf(req.Context()); ok {
		// The environment names one proxy per scheme: a session has
		// nothing to choose, but its id is checked all the same.
		if err := checkSessionID(id); err != nil {
			closeBody(req)
			return nil, err
		}
	}
	m, err := t.memberFor(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if m == nil {
		return t.direct.RoundTrip(withoutProxyAuth(req))
	}
	r := t.set.hold(m, nil, t.set.now())
	defer t.set.unhold(r)
	if _, ok := proxyAuthorization(req.Header); !ok {
		return r.roundTrip(req)
	}
	send := req
	if req.Response != nil && firstMember(req) != m {
		send = withoutProxyAuth(req) // meant for the proxy of the redirect's first request
	}
	resp, err := r.roundTrip(send)
	if err == nil && send != req {
		resp.Request = req.WithContext(resp.Request.Context())
	}
	return resp, err
}

// memberFor returns the proxy for req under environment configuration, or
// nil for a direct connection.
func (t *Transport) memberFor(req *http.Request) (*member, error) {
	spec, err := t.env.specFor(req.URL)
	if err != nil {
		return nil, fmt.Errorf("proxyauth: choosing a proxy for %s: %w", redact.String(req.URL), err)
	}
	if spec == nil {
		return nil, nil
	}
	for _, m := range t.envm {
		if m.spec.url == spec.url {
			return m, nil
		}
	}
	return nil, nil
}

// CloseIdleConnections closes the idle connections of every proxy and of
// direct routes. It does not interrupt connections in use.
func (t *Transport) CloseIdleConnections() {
	if t.set != nil {
		t.set.closeIdle(false)
	}
	if t.direct != nil {
		t.direct.CloseIdleConnections()
	}
}

// Pool returns the Transport's pool of proxies, or nil when the proxies
// come from the environment.
func (t *Transport) Pool() *Pool { return t.pool }

// Close stops the pool's probes: it ends those under way, closing their
// connections, and returns once every one has ended, including those that
// requests started. A probe waiting for the CredentialsFunc stops waiting;
// the call itself, which is not cancelled (see [CredentialsFunc]), runs on
// to its end. With Config.PAC it also stops the script's refresh, whose
// goroutine runs until then: close a PAC Transport when done with it. Then
// Close closes the idle connections and releases each proxy's
// http.Transport, made again if the proxy is used. It always returns nil.
// A Transport that is closed still serves requests, without new probes or
// refreshes.
func (t *Transport) Close() error {
	if t.pac != nil {
		t.pac.close()
	}
	if t.pool != nil {
		t.pool.close()
	}
	if t.set != nil {
		t.set.closeIdle(true)
	}
	if t.direct != nil {
		t.direct.CloseIdleConnections()
	}
	return nil
}

// withoutProxyAuth returns req, or a copy of it without the
// Proxy-Authorization field, which must not reach a server that is not a
// proxy.
func withoutProxyAuth(req *http.Request) *http.Request {
	if _, ok := proxyAuthorization(req.Header); !ok {
		return req
	}
	out := req.WithContext(req.Context())
	out.Header = headerWith(req.Header, "")
	return out
}

// ProxyOf returns the proxy that served resp, without userinfo; nil for a
// direct connection or a response that a Transport did not return.
//
// It works for every configuration (fixed proxies, a pool, the
// environment, a PAC script), after failover too, and for the response of
// each redirect that http.Client follows. It reads the context of
// resp.Request, which the Transport sets to the request as it was sent to
// the proxy: a shallow copy of the caller's request (the same URL, header
// and context values). That copy is the one net/http was given, so it
// costs nothing, except for a plain http:// request whose credentials
// travel in its header (Digest, Bearer): then the header net/http sent is
// not the caller's, and the copy is one allocation more.
func ProxyOf(resp *http.Response) *url.URL {
	if r := routeOf(resp); r != nil {
		return r.spec.url
	}
	return nil
}

// routeOf returns the route that served resp, or nil. The attempt in
// resp.Request's context must be resp's own: a caller may make a request
// in the context of an older response's request.
func routeOf(resp *http.Response) *route {
	if resp == nil || resp.Request == nil {
		return nil
	}
	if a := attemptFrom(resp.Request.Context()); a != nil && a.served == resp {
		return a.route
	}
	return nil
}

// firstMember returns the proxy that served the first request of the
// redirect chain that req continues: a caller's Proxy-Authorization field,
// which http.Client copies onto each redirect, is for that proxy alone.
// nil means the first request went directly, or not through this
// Transport.
func firstMember(req *http.Request) *member {
	var first *http.Response
	for i := 0; i < 64 && req.Response != nil && req.Response.Request != nil; i++ {
		first = req.Response
		req = first.Request
	}
	if r := routeOf(first); r != nil {
		return r.owner
	}
	return nil
}

// proxyAuthorization returns the first Proxy-Authorization value of h. It
// also finds keys that were stored without canonical case, which net/http
// would send as they are.
func proxyAuthorization(h http.Header) (string, bool) {
	for k, v := range h {
		if isProxyAuthorization(k) {
			if len(v) > 0 {
				return v[0], true
			}
			return "", true
		}
	}
	return "", false
}

// headerWith returns a new header with h's fields but Proxy-Authorization,
// whatever the case of its keys, and with Proxy-Authorization v unless v
// is "". The value slices are h's own: neither net/http nor proxyauth
// changes them, and the caller may not while the request is in flight.
// This is what Request.Clone and Header.Set would do, in fewer
// allocations: it runs for every request with a per-request field.
func headerWith(h http.Header, v string) http.Header {
	out := make(http.Header, len(h)+1)
	for k, vv := range h {
		if !isProxyAuthorization(k) {
			out[k] = vv
		}
	}
	if v != "" {
		out["Proxy-Authorization"] = []string{v}
	}
	return out
}

// isProxyAuthorization reports whether a proxy would read the header key
// k as Proxy-Authorization: the same bytes but for ASCII case. (Unicode
// folding would also match keys that net/http refuses to send.) The
// length is compared first: this runs for every key of every request.
func isProxyAuthorization(k string) bool {
	const name = "proxy-authorization"
	if len(k) != len(name) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := k[i]; c != name[i] && !('A' <= c && c <= 'Z' && c+'a'-'A' == name[i]) {
			return false
		}
	}
	return true
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// ProxiesFor returns, in order, the proxies req would try (without
// userinfo); a nil entry is a direct connection. It serves every
// configuration: the proxies of a pool in the order its strategy and
// their health give for req (a pool's health can change before req is
// sent), the proxy the environment names for req's URL (nil for a target
// it sends directly), and the list the PAC script returns for req (which
// evaluates it, or takes its cached answer). At most
// PoolConfig.MaxProxiesPerRequest are tried of a pool's or a PAC's; the
// list holds them all. It sends nothing.
func (t *Transport) ProxiesFor(req *http.Request) ([]*url.URL, error) {
	if req == nil || req.URL == nil {
		return nil, errors.New("proxyauth: ProxiesFor needs a request with a URL")
	}
	switch {
	case t.pac != nil:
		list, err := t.pac.list(req)
		if err != nil {
			return nil, err
		}
		out := make([]*url.URL, len(list))
		for i, m := range list {
			out[i] = urlOf(m)
		}
		return out, nil
	case t.pool != nil:
		rot, pos := t.pool.peek(req)
		out := make([]*url.URL, len(rot.in))
		for i := range rot.in {
			out[i] = rot.in[(pos+i)%len(rot.in)].spec.url
		}
		return out, nil
	case t.env != nil:
		m, err := t.memberFor(req)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return []*url.URL{nil}, nil
		}
		return []*url.URL{m.spec.url}, nil
	}
	return nil, errors.New("proxyauth: Transport used without New; make it with New or Wrap")
}
