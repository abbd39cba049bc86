package proxyauth

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/proxyauth/proxyauth/internal/redact"
)

// CheckResult is what [Transport.Check] found of one proxy, from the
// network layer up. It holds no password or Proxy-Authorization value.
type CheckResult struct {
	// Proxy is the proxy checked, without userinfo; nil when the check
	// went directly (Direct), or when no proxy could be chosen for the
	// target (the Diagnosis says why).
	Proxy *url.URL
	// Direct reports that the PAC script or the environment sends the
	// target directly, so the check connected to it without a proxy.
	Direct bool
	// OK reports that every layer passed: the proxy was reached, took
	// the credentials it asked for (if any), and the target answered
	// with a status below 400.
	OK bool
	// Diagnosis says which layer failed, with hints (see [Diagnose]);
	// its Layer is LayerNone when OK, and its Summary then says what
	// passed.
	Diagnosis Diagnosis
	// Scheme is the authentication scheme the proxy accepted ("Basic",
	// "Digest", "NTLM", "Negotiate", "Bearer", or "username/password"
	// for SOCKS5); "" when it needed none, or when no credentials got
	// through.
	Scheme string
	// StatusCode is the target's status, when the target was reached; 0
	// otherwise (a proxy's own 403 or 502 is in the Diagnosis).
	StatusCode int
	// Latency is the time from the start of the check to the target's
	// response header, authentication legs included; 0 when the target
	// was not reached.
	Latency time.Duration

	// Addr is the address the check connected to, as IP and port: the
	// proxy's, or the target's when Direct; "" when no TCP connection
	// was made.
	Addr string
	// Connect is the time the first TCP connection took; 0 when none
	// was made.
	Connect time.Duration
	// AuthRequired reports that the proxy asked for credentials: a 407,
	// a 401 it made, or a SOCKS5 proxy that admits no client without
	// them.
	AuthRequired bool
	// Offered lists the schemes the proxy's challenges offered, in its
	// order and each once ("Digest", "Basic"); nil when it offered none.
	Offered []string
}

// CheckOptions tunes [Transport.CheckWith]. The zero value is what
// [Transport.Check] uses.
type CheckOptions struct {
	// Timeout bounds the check of each proxy, from the name resolution
	// to the target's response header. 0 means 30 seconds. The proxy
	// phase is also bounded by Config.ProxyTimeout, as for requests.
	Timeout time.Duration
	// Concurrency is how many proxies are checked at once. 0 means 16.
	Concurrency int
	// OnResult, if not nil, is called with each result as soon as it is
	// known, with its index in the list CheckWith returns. Calls come
	// one at a time, in the order the checks end.
	OnResult func(i int, r CheckResult)
}

const (
	defaultCheckTimeout     = 30 * time.Second
	defaultCheckConcurrency = 16
)

// Check tries every proxy of the Transport (for PAC or the environment:
// those that target would use) with one request to target, and reports
// each from the network layer up. It never fails over: each proxy is
// judged alone.
//
// Each check is a GET of target (an absolute http:// or https:// URL) on
// connections of its own, so that an idle connection or an open tunnel of
// the Transport does not hide a failure, and it sends no credentials until
// the proxy asks for them, so that the result says whether the proxy
// wants any and which schemes it offers. Credentials go to the proxy only,
// as with requests, and a check leaves the pool's health and statistics
// alone. The results are in the order of [Transport.ProxiesFor] for a PAC
// or the environment, and of the configuration otherwise.
//
// Check uses the defaults of [CheckOptions]. When no check can start (a
// target that is not an http:// or https:// URL, a PAC script that fails
// for it), it returns one result, with Proxy nil and the Diagnosis of
// that failure.
func (t *Transport) Check(ctx context.Context, target string) []CheckResult {
	results, err := t.CheckWith(ctx, target, CheckOptions{})
	if err != nil {
		return []CheckResult{{Diagnosis: Diagnose(nil, err)}}
	}
	return results
}

// CheckWith is [Transport.Check] with options. Its error reports that no
// check could start: a [*ConfigError] for a bad target or options, or the
// failure to learn the proxies for target (a [*PACError], say).
func (t *Transport) CheckWith(ctx context.Context, target string, opts CheckOptions) ([]CheckResult, error) {
	if t.check == nil {
		return nil, errors.New("proxyauth: Transport used without New; make it with New or Wrap")
	}
	u, err := checkTarget(target)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.Timeout < 0:
		return nil, &ConfigError{Field: "CheckOptions.Timeout", Value: opts.Timeout.String(), Reason: "is negative"}
	case opts.Concurrency < 0:
		return nil, &ConfigError{Field: "CheckOptions.Concurrency", Value: strconv.Itoa(opts.Concurrency), Reason: "is negative"}
	}
	timeout := orDefault(opts.Timeout, defaultCheckTimeout)
	hops, err := t.checkHops(ctx, u)
	if err != nil {
		return nil, err
	}
	results := make([]CheckResult, len(hops))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex // serialises OnResult
		slot = make(chan struct{}, orDefault(opts.Concurrency, defaultCheckConcurrency))
	)
	done := func(i int, r CheckResult) {
		results[i] = r
		if opts.OnResult != nil {
			mu.Lock()
			defer mu.Unlock()
			opts.OnResult(i, r)
		}
	}
	for i, hop := range hops {
		select {
		case slot <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			// Every proxy gets its result, those never tried too.
			r := hop.result()
			r.Diagnosis = Diagnose(nil, ctx.Err())
			r.Diagnosis.Summary = "not checked: " + r.Diagnosis.Summary
			r.Diagnosis.Proxy = r.Proxy
			done(i, r)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slot }()
			done(i, t.checkOne(ctx, u, hop, timeout))
		}()
	}
	wg.Wait()
	return results, nil
}

// checkTarget parses the target of a check.
func checkTarget(target string) (*url.URL, error) {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ConfigError{Field: "target", Value: redact.Raw(target),
			Reason: "is not an absolute http:// or https:// URL (such as https://example.com/)"}
	}
	return u, nil
}

// checkSetup is what a check needs to make routes of its own.
type checkSetup struct {
	base *http.Transport
	cfg  Config // the Transport's, with WaitForChallenge set
	obs  *observer
}

func newCheckSetup(base *http.Transport, cfg *Config, obs *observer) *checkSetup {
	s := &checkSetup{base: base, cfg: *cfg, obs: obs}
	s.cfg.WaitForChallenge = true
	return s
}

// checkHop is one hop to check: a proxy with its credentials, or a direct
// connection (spec nil).
type checkHop struct {
	spec *proxySpec
	fn   CredentialsFunc
}

func (h checkHop) result() CheckResult {
	if h.spec == nil {
		return CheckResult{Direct: true}
	}
	return CheckResult{Proxy: h.spec.url}
}

// credentials reports whether the hop has credentials to give.
func (h checkHop) credentials() bool {
	return h.spec != nil && (h.spec.creds != nil || h.fn != nil)
}

// checkHops returns the hops that a request to u would use: all the
// proxies of a pool, in their configured order; those that a PAC script
// or the environment names for u.
func (t *Transport) checkHops(ctx context.Context, u *url.URL) ([]checkHop, error) {
	req := (&http.Request{Method: http.MethodGet, URL: u, Host: u.Host, Header: http.Header{}}).WithContext(ctx)
	var members []*member
	switch {
	case t.pac != nil:
		list, err := t.pac.list(req)
		if err != nil {
			return nil, err
		}
		members = list
	case t.env != nil:
		m, err := t.memberFor(req)
		if err != nil {
			return nil, err
		}
		members = []*member{m}
	default:
		members = t.pool.members // fixed once New returned
	}
	hops := make([]checkHop, len(members))
	for i, m := range members {
		if m != nil {
			hops[i] = checkHop{spec: &m.spec, fn: m.fn}
		}
	}
	return hops, nil
}

// checkOne checks one hop.
func (t *Transport) checkOne(parent context.Context, target *url.URL, hop checkHop, timeout time.Duration) CheckResult {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	rec := &checkRecord{}
	res := hop.result()
	ctx = httptrace.WithClientTrace(ctx, rec.trace())
	socksOpen := true
	if hop.spec != nil && hop.spec.socks() {
		socksOpen = t.socksGreeting(ctx, hop.spec, rec)
	}
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target.String(), nil)
	if err != nil {
		res.Diagnosis = Diagnose(nil, err)
		return res
	}
	var resp *http.Response
	if hop.spec == nil {
		direct := t.check.base.Clone()
		direct.Proxy = nil
		defer direct.CloseIdleConnections()
		resp, err = direct.RoundTrip(req)
	} else {
		obs := t.check.obs.plus(rec.hooks())
		var r *route
		auth := newAuthState(hop.spec.url, hop.spec.socks(), hop.spec.creds, hop.fn, func() { r.renewTransport() })
		auth.obs = obs
		r = newRoute(t.check.base, hop.spec, &t.check.cfg, auth, obs)
		defer r.closeIdle()
		resp, err = r.roundTrip(req)
	}
	latency := time.Since(start)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	res.Addr, res.Connect = rec.addr, rec.connect
	res.AuthRequired, res.Offered = rec.authRequired || !socksOpen, rec.offered
	if err != nil {
		res.Diagnosis = Diagnose(nil, err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
			res.Diagnosis = rec.timedOut(hop, target, timeout)
		} else if hop.spec == nil && !rec.connected && res.Diagnosis.Layer == LayerNone {
			res.Diagnosis = directDialFailure(target, err)
		}
	} else {
		resp.Body.Close()
		res.Diagnosis = Diagnose(resp, nil)
		if res.Diagnosis.Layer == LayerOriginAuth && rec.scheme != "" && rec.proxyRealm(resp) {
			// Some proxies (tinyproxy) answer a wrong password with a
			// 401 that repeats their own 407's challenge: that 401 is
			// theirs, and the target was not reached.
			res.Diagnosis = Diagnose(nil, &ProxyAuthError{Proxy: hop.spec.url, StatusCode: resp.StatusCode,
				Challenges: parseChallenges(resp.Header.Values("Www-Authenticate")), Rejected: true, Header: resp.Header})
			rec.scheme = ""
		}
	}
	if res.Diagnosis.Proxy == nil {
		res.Diagnosis.Proxy = res.Proxy
	}
	if t.env == nil {
		// The Transport knows where its proxies came from.
		res.Diagnosis.Hints = slices.DeleteFunc(res.Diagnosis.Hints, func(h string) bool { return h == maybeEnvHint })
	}
	switch res.Diagnosis.Layer {
	case LayerNone:
		if err != nil {
			break
		}
		res.OK = true
		res.Diagnosis.Summary, res.Diagnosis.Hints = okSummary(resp.StatusCode, hop, rec, socksOpen)
		fallthrough
	case LayerTLS, LayerOrigin, LayerOriginAuth:
		// Every layer of the proxy passed.
		res.Scheme = rec.scheme
		if hop.spec != nil && hop.spec.socks() && !socksOpen {
			res.Scheme = "username/password"
		}
		if resp != nil {
			res.StatusCode, res.Latency = resp.StatusCode, latency
		}
	}
	return res
}

// okSummary says what passed.
func okSummary(code int, hop checkHop, rec *checkRecord, socksOpen bool) (string, []string) {
	s := "the target answered " + status(code)
	switch {
	case hop.spec == nil:
		return s + ", reached directly", nil
	case hop.spec.socks() && !socksOpen:
		return s + " through the SOCKS5 proxy, which accepted the username and password", nil
	case rec.scheme != "":
		return s + " through the proxy, which accepted " + rec.scheme + " credentials", nil
	}
	s += " through the proxy, which asked for no credentials"
	if hop.credentials() {
		return s, []string{"credentials are configured but the proxy never asked for them: it may admit this machine by its IP address, and then it never checks them"}
	}
	return s, nil
}

// directDialFailure diagnoses a direct connection to the target that
// could not be made.
func directDialFailure(target *url.URL, err error) Diagnosis {
	return Diagnosis{Layer: LayerNetwork, Kind: KindOther,
		Summary: "cannot connect to the target " + target.Host + " directly: " + causeText(err),
		Hints:   []string{"the check went directly, as the PAC script or the environment (NO_PROXY) says: check the target's host and port, and this machine's route to it"}}
}

// checkRecord collects what a check saw on the way.
type checkRecord struct {
	mu sync.Mutex

	addr       string
	connect    time.Duration
	dialing    time.Time // the ConnectStart of the connection being made
	dnsPending bool
	connected  bool // the last connection started was made
	tlsStarted bool // on it, a TLS handshake with the target began
	tlsDone    bool
	wrote      bool // a request was written on it

	authRequired bool
	offered      []string
	realms       []string // of the proxy's challenges
	scheme       string   // of the last attempt the proxy did not refuse
}

func (c *checkRecord) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		DNSStart: func(httptrace.DNSStartInfo) { c.set(func() { c.dnsPending = true }) },
		DNSDone:  func(httptrace.DNSDoneInfo) { c.set(func() { c.dnsPending = false }) },
		ConnectStart: func(string, string) {
			c.set(func() {
				c.dialing, c.connected, c.tlsStarted, c.tlsDone, c.wrote = time.Now(), false, false, false, false
			})
		},
		ConnectDone: func(_, addr string, err error) {
			c.set(func() {
				if err != nil {
					return
				}
				c.connected = true
				if c.addr == "" {
					c.addr, c.connect = addr, time.Since(c.dialing)
				}
			})
		},
		TLSHandshakeStart: func() { c.set(func() { c.tlsStarted = true }) },
		TLSHandshakeDone: func(_ tls.ConnectionState, err error) {
			c.set(func() { c.tlsDone = err == nil })
		},
		WroteRequest: func(httptrace.WroteRequestInfo) { c.set(func() { c.wrote = true }) },
	}
}

func (c *checkRecord) set(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

// hooks returns the Hooks that record the proxy's challenges and the
// scheme it accepted.
func (c *checkRecord) hooks() Hooks {
	return Hooks{
		AttemptEnd: func(i AttemptInfo) {
			// An attempt the proxy did not refuse: it took the
			// credentials, whatever happened beyond it.
			var pae *ProxyAuthError
			if !errors.As(i.Err, &pae) && i.StatusCode != http.StatusProxyAuthRequired {
				c.set(func() { c.scheme = i.Scheme })
			}
		},
		Challenge: func(i ChallengeInfo) {
			c.set(func() {
				c.authRequired = true
				for _, ch := range i.Challenges {
					if name := canonicalScheme(ch.Scheme); !containsFold(c.offered, name) {
						c.offered = append(c.offered, name)
					}
					if realm := ch.Params["realm"]; realm != "" {
						c.realms = append(c.realms, realm)
					}
				}
			})
		},
	}
}

// proxyRealm reports whether the origin's 401 resp asks for a realm that
// the proxy's own challenges named: the 401 is then the proxy's.
func (c *checkRecord) proxyRealm(resp *http.Response) bool {
	if resp.Request == nil || resp.Request.URL.Scheme != "http" {
		return false // inside a tunnel, only the origin speaks
	}
	for _, ch := range parseChallenges(resp.Header.Values("Www-Authenticate")) {
		if realm := ch.Params["realm"]; realm != "" && slices.Contains(c.realms, realm) {
			return true
		}
	}
	return false
}

// canonicalScheme spells a scheme the proxy named as this package does
// ("Digest" for "digest"), and keeps others as they are, bounded.
func canonicalScheme(s string) string {
	for _, known := range [...]string{"Basic", "Digest", "NTLM", "Negotiate", "Bearer"} {
		if strings.EqualFold(s, known) {
			return known
		}
	}
	return redact.Truncate(s, 40)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// timedOut diagnoses a check that ran out of its time, by how far it got.
func (c *checkRecord) timedOut(hop checkHop, target *url.URL, timeout time.Duration) Diagnosis {
	within := " within " + timeout.String()
	raise := "the check's timeout (" + timeout.String() + ") bounds this wait: raise it only for a slow link"
	tunnel := target.Scheme == "https"
	d := Diagnosis{Proxy: redactedURL(hop)}
	who := "the proxy"
	if hop.spec == nil {
		who = "the target " + target.Host
	}
	switch {
	case c.dnsPending:
		d.Layer = LayerNetwork
		d.Summary = "resolving the host name of " + who + " did not finish" + within
		d.Hints = []string{"the DNS servers are slow or do not answer: check this machine's resolver configuration (/etc/resolv.conf, VPN)", raise}
	case !c.connected:
		d.Layer = LayerNetwork
		d.Summary = "no TCP connection to " + who + within + ": nothing answered at its address"
		d.Hints = []string{
			"a firewall may drop the packets, or the address leads nowhere (a black hole): check the host and port and the route to it",
			raise,
		}
	case hop.spec == nil && tunnel && !c.tlsStarted:
		d.Layer = LayerTLS
		d.Summary = "the TLS handshake with the target did not start" + within
	case hop.spec != nil && tunnel && !c.tlsStarted:
		d.Layer = LayerProxy
		switch {
		case hop.spec.socks():
			d.Summary = "the SOCKS5 proxy did not finish its handshake" + within
		case hop.spec.url.Scheme == "https":
			d.Summary = "the proxy did not finish the TLS handshake and answer the CONNECT" + within
		default:
			d.Summary = "the proxy did not answer the CONNECT" + within
		}
		d.Hints = []string{
			"the proxy accepted the connection and then said nothing: it may be overloaded or hung, or the port may not be a proxy's",
			"the proxy may be waiting on a slow authentication helper or upstream: check its logs",
			raise,
		}
	case tunnel && !c.tlsDone:
		d.Layer = LayerTLS
		d.Summary = "the TLS handshake with the target did not finish" + within
		d.Hints = []string{"the tunnel was open, so the proxy passed: the target, or something behind the proxy, stalled the handshake", raise}
	case tunnel || hop.spec == nil:
		d.Layer = LayerOrigin
		d.Summary = "the target did not answer" + within
		d.Hints = []string{"everything up to the target worked: the target is slow or hung", raise}
	default:
		d.Layer = LayerProxy
		d.Summary = "no answer to the request" + within + ": the proxy took it, but neither it nor the target behind it answered"
		d.Hints = []string{
			"the target may be slow: check it through another proxy or directly",
			"the proxy may be overloaded or hung: check its logs",
			raise,
		}
	}
	if hop.spec != nil && d.Layer == LayerNetwork {
		d.Hints = append(d.Hints, envHint(hop.spec.url))
	}
	// The Kind that Classify gives a proxy's dial or CONNECT that timed
	// out; a stall beyond the proxy, or of a direct connection, is no
	// proxy's.
	d.Kind = KindOther
	if hop.spec != nil && (d.Layer == LayerNetwork || d.Layer == LayerProxy) {
		d.Kind = KindProxyUnavailable
	}
	return d
}

func redactedURL(hop checkHop) *url.URL {
	if hop.spec == nil {
		return nil
	}
	return hop.spec.url
}

// socksGreeting asks the SOCKS5 proxy whether it admits a client without
// credentials: it offers only the "no authentication" method (RFC 1928)
// and reads the method chosen. It returns false when the proxy wants
// credentials. golang.org/x/net/proxy offers its methods together and does
// not say which the proxy chose, hence these few bytes by hand. A proxy
// that cannot be reached or does not answer as SOCKS5 counts as open: the
// check that follows reports it.
func (t *Transport) socksGreeting(ctx context.Context, spec *proxySpec, rec *checkRecord) bool {
	conn, err := baseDialer(t.check.base)(ctx, "tcp", proxyAddr(spec))
	if err != nil {
		return true
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	if _, err := conn.Write([]byte{5, 1, 0}); err != nil {
		return true
	}
	var reply [2]byte
	if _, err := io.ReadFull(bufio.NewReader(conn), reply[:]); err != nil || reply[0] != 5 {
		return true
	}
	if reply[1] == 0 {
		return true
	}
	return false
}

// plus returns an observer that tells o's Logger and Hooks what it tells,
// and extra's AttemptEnd and Challenge too.
func (o *observer) plus(extra Hooks) *observer {
	out := &observer{hooks: extra}
	if o == nil {
		return out
	}
	out.log = o.log
	user := o.hooks
	out.hooks.AttemptStart, out.hooks.CredentialsRefreshed = user.AttemptStart, user.CredentialsRefreshed
	out.hooks.Failover, out.hooks.ProxyStateChanged = user.Failover, user.ProxyStateChanged
	out.hooks.SessionMoved, out.hooks.Ban = user.SessionMoved, user.Ban
	if f, g := user.AttemptEnd, extra.AttemptEnd; f != nil {
		out.hooks.AttemptEnd = func(i AttemptInfo) { f(i); g(i) }
	}
	if f, g := user.Challenge, extra.Challenge; f != nil {
		out.hooks.Challenge = func(i ChallengeInfo) { f(i); g(i) }
	}
	return out
}
