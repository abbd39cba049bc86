package proxyauth

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// PoolConfig configures a pool of proxies: which one a request goes to,
// how their health is watched, and when a request moves to another one.
// A pool of one proxy has no health checks: its proxy is always used, and
// is unchecked until it first answers a request, then healthy.
// The zero value means ordered failover with the defaults below.
//
// Health: a proxy starts unchecked and is probed before its first use (or
// when New runs, with ProbeAtStart). Failures of its own in real traffic
// (refused or timed-out dials, TLS failures, a CONNECT unanswered or
// answered 502, 503 or 504, a connection reset) eject it after EjectAfter
// in a row, for EjectionTime times the number of recent ejections (capped
// at MaxEjectionTime, with 10% jitter); after that it comes back only when
// a probe through it passes. A success resets the count. A 407 is not a
// health failure, but a proxy that still refuses credentials after a
// refresh is marked auth-failed and skipped until a probe passes. Probes
// of proxies out of rotation run, at most every ProbeInterval, when a
// request would have used them; they stop when the Transport is closed.
// At most MaxEjectedPercent of the proxies are ejected for failures in
// traffic; when no proxy is in rotation at all, requests try them all in
// order ("panic mode") rather than fail without trying.
//
// Failover: a request moves to the next proxy when its proxy failed before
// the origin could have seen the request (unreachable, TLS failure, CONNECT
// refused or unanswered, SOCKS5 handshake failure, credentials refused
// after refresh). After that point (the connection to the proxy broke
// while a forwarded request was under way) it moves only when the request
// can be sent again (no body, or GetBody) and is idempotent (GET, HEAD,
// OPTIONS, TRACE, PUT, DELETE, or an Idempotency-Key field). Responses,
// whatever their status, are returned, never retried. At most
// MaxProxiesPerRequest proxies are tried, within the request's context.
// When every proxy tried failed, the error is a [*PoolError].
type PoolConfig struct {
	// Proxies lists the proxies with settings of their own, in order of
	// preference, instead of Config.Proxies.
	Proxies []PoolProxy

	// Strategy chooses the proxy for each request. The zero value is
	// Ordered.
	Strategy Strategy

	// MaxProxiesPerRequest bounds the proxies one request tries. 0
	// means 3.
	MaxProxiesPerRequest int

	// Probe is what a probe checks: "" checks that the proxy accepts a
	// connection (and completes TLS, for an https:// proxy); "host:port"
	// opens a tunnel to that canary through the proxy, with its
	// credentials (a SOCKS5 CONNECT for SOCKS5 proxies); an "http://" or
	// "https://" URL is fetched through the proxy with GET, and any
	// answer that the proxy did not make itself counts as a pass. Only
	// the last two check the credentials too.
	Probe string

	// ProbeAtStart probes every proxy in the background when New runs,
	// instead of before its first use.
	ProbeAtStart bool

	// ProbeTimeout bounds one probe. 0 means Config.ProxyTimeout, or 10
	// seconds if that is negative.
	ProbeTimeout time.Duration

	// ProbeInterval is the least time between two probes of a proxy out
	// of rotation. 0 means 10 seconds.
	ProbeInterval time.Duration

	// ProbeConcurrency bounds the probes under way at once. 0 means 4.
	ProbeConcurrency int

	// EjectAfter is how many failures in a row eject a proxy. 0 means 1.
	EjectAfter int

	// EjectionTime is the base time a proxy stays ejected before a probe
	// may bring it back. 0 means 30 seconds.
	EjectionTime time.Duration

	// MaxEjectionTime caps the ejection time. 0 means 5 minutes.
	MaxEjectionTime time.Duration

	// MaxEjectedPercent caps the share of proxies ejected for failures
	// in traffic. 0 means 50. At least one proxy of a pool of two or
	// more may be ejected, and one always stays.
	MaxEjectedPercent int

	// SessionUsername is the username template of a gateway that picks
	// the exit from the username (such as
	// "customer-{user}-sessid-{session}"): the requests of a session
	// (see [WithSession]) send the proxy's credentials with "{user}"
	// replaced by the proxy's username and "{session}" by the session's
	// token, each token on connections of its own. A token is made of
	// the session id (the id when it is 1 to 32 ASCII letters and
	// digits, else 16 hexadecimal digits of its SHA-256), "x", and a
	// number in base 36 that changes each time the session starts or
	// moves, so that the gateway hands a moved session a new exit:
	// "abc123x2kw0f4", then "abc123x2kw0f5". Requests without a session
	// send the username as it is. It must name {session}, and holds no
	// other placeholder. "" means none: a session keeps to one proxy of
	// the pool.
	SessionUsername string

	// SessionTTL ends a session that no request used for this long: its
	// next request starts a new session, on a new exit. 0 means 10
	// minutes.
	SessionTTL time.Duration

	// Banned, if not nil, is called with every response a proxy of the
	// pool returned, and reports that the site blocks that exit for
	// resp's host (a 403 or 429, say, or a header the site sets). It
	// must not read resp.Body, which the caller gets. The proxy is then
	// benched for that host, and only that host, for BanCooldown,
	// doubled for each ban of it there in a row, up to MaxBanCooldown;
	// a session on it moves to another exit. The banned response of an
	// idempotent request that can be sent again (see the failover
	// rules) is retried on another proxy (with SessionUsername, the same
	// gateway under a new session token) within MaxProxiesPerRequest:
	// that is what a scraper would do with it, and the body of a block
	// page is seldom worth having. The last one is returned as it is;
	// so are those of other requests, and, with ReturnBanned, every one.
	// A host for which every proxy is benched still gets the last proxy
	// of the request's turn, rather than no request at all; a request
	// passes over at most 64 benched proxies, then takes them as they
	// come. JSON leaves it out.
	Banned func(resp *http.Response) bool `json:"-"`

	// BanCooldown is how long a banned proxy is benched for the host at
	// its first ban there. 0 means 1 minute.
	BanCooldown time.Duration

	// MaxBanCooldown caps the cooldown of repeated bans. 0 means 1 hour.
	MaxBanCooldown time.Duration

	// ReturnBanned returns banned responses as they are, never retried.
	ReturnBanned bool

	// HedgeAfter: when the proxy being tried has not completed its
	// connection (for a tunnel: its CONNECT answer) within this time, the
	// next proxy is tried in parallel and the first to succeed is used.
	// Only the connection is raced, before the origin can see anything:
	// the request itself is sent once, through the winner. The loser is
	// cancelled; a connection it completes anyway stays idle on its own
	// proxy. Losing a race costs a proxy no health; while its connection
	// is still pending, later requests pass over it, and when that
	// connection fails, with its own ProxyTimeout, the proxy is ejected
	// as for any failure. A tunnel's request that net/http sends again
	// on a new connection, its reused one having broken, races that
	// connection too. The requests of a session (WithSession) are not
	// hedged: a session keeps its exit unless the exit fails. 0 means
	// 500 milliseconds, two round trips to a proxy 200 ms away and some
	// room; negative means never.
	HedgeAfter time.Duration
}

// defaultHedgeAfter is the default of PoolConfig.HedgeAfter.
const defaultHedgeAfter = 500 * time.Millisecond

// PoolProxy is one proxy of a pool with settings of its own.
type PoolProxy struct {
	// URL is the proxy's URL, as in Config.Proxies.
	URL string
	// Credentials, if not nil, supplies this proxy's credentials instead
	// of Config.Credentials; the URL must then carry no userinfo.
	Credentials CredentialsFunc
	// Weight is the proxy's share of requests under RoundRobin and
	// Random, from 1 to 100. 0 means 1.
	Weight int
}

// Strategy chooses the proxy of each request.
type Strategy int

const (
	// Ordered sends every request to the first proxy in rotation: the
	// primary while it is up, then the first fallback, and so on.
	Ordered Strategy = iota
	// RoundRobin takes the proxies in rotation in turn, by weight.
	RoundRobin
	// Random takes a proxy in rotation at random, by weight.
	Random
	// StickyHost keeps each target host on one proxy while that proxy
	// is in rotation, for sites that tie a session to the client's
	// address.
	StickyHost
)

var strategyNames = [...]string{Ordered: "ordered", RoundRobin: "round-robin", Random: "random", StickyHost: "sticky-host"}

// String returns the strategy's name, such as "round-robin".
func (s Strategy) String() string {
	if s >= 0 && int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return "Strategy(" + strconv.Itoa(int(s)) + ")"
}

// ProxyState is the health of a proxy in a pool.
type ProxyState int32

const (
	// StateUnchecked: not probed yet, nor (for the proxy of a pool of
	// one, which is never probed) answered a request.
	StateUnchecked ProxyState = iota
	// StateHealthy: in rotation.
	StateHealthy
	// StateEjected: out of rotation after failures, until a probe passes.
	StateEjected
	// StateAuthFailed: out of rotation because it refused the credentials
	// even after a refresh, until a probe passes.
	StateAuthFailed
)

var stateNames = [...]string{StateUnchecked: "unchecked", StateHealthy: "healthy", StateEjected: "ejected", StateAuthFailed: "auth-failed"}

// String returns the state's name, such as "auth-failed".
func (s ProxyState) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "ProxyState(" + strconv.Itoa(int(s)) + ")"
}

// PoolError reports that no proxy of a pool could serve a request. Errors
// holds the failure of each proxy tried, in order; [errors.As] and
// [errors.Is] look into each.
type PoolError struct {
	// Errors holds the failure of each proxy tried, in the order tried.
	Errors []error
}

// Error lists the failures, each without its "proxyauth: " prefix.
func (e *PoolError) Error() string {
	parts := make([]string, len(e.Errors))
	for i, err := range e.Errors {
		parts[i] = strings.TrimPrefix(err.Error(), "proxyauth: ")
	}
	return secretsOf(e).Bound("proxyauth: no proxy could serve the request ("+strconv.Itoa(len(e.Errors))+" tried): "+
		strings.Join(parts, "; "), maxText)
}

// Unwrap returns Errors.
func (e *PoolError) Unwrap() []error { return e.Errors }

// Pool is the set of proxies of a [Transport] with their health. It is
// safe for concurrent use.
type Pool struct {
	members       []*member
	single        bool            // one proxy, never more: no health checks, no failover
	direct        *http.Transport // for a PAC's DIRECT; nil otherwise
	strategy      Strategy
	maxPerReq     int
	probeTarget   string
	probeTO       time.Duration
	probeEvery    time.Duration
	ejectAfter    int32
	ejectBase     time.Duration
	ejectMax      time.Duration
	maxEjected    int
	maxEjectedPct int
	now           func() time.Time
	obs           *observer
	set           *routeSet // the Transport's

	sessions     *sessions
	tmpl         *sessionTemplate // nil without PoolConfig.SessionUsername
	banned       func(*http.Response) bool
	banBase      time.Duration
	banMax       time.Duration
	returnBanned bool

	hedgeAfter  time.Duration // 0 for never
	dialTimeout time.Duration // Config.ProxyTimeout, as routes take it

	rr      atomic.Uint64
	rot     atomic.Pointer[rotation] // the proxies in rotation
	nextDue atomic.Int64             // UnixNano when the next probe of a proxy out of rotation is due
	// unchecked has bit i set while member i of those New made is
	// unchecked (a state it never comes back to): a request tells
	// whether its proxy needs a probe first without reading the member,
	// which for a large pool is a cache miss. Empty for a PAC's pool.
	unchecked []atomic.Uint64

	mu sync.Mutex // serialises state changes

	sem     chan struct{} // probe concurrency
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // the probe goroutines
	closing sync.Mutex     // orders wg.Add before close's cancel and Wait
}

// rotation is a snapshot of the proxies in rotation.
type rotation struct {
	in     []*member // in order of preference
	idx    []int32   // the index of each member of in; nil when in holds them all, each at its index
	weight []int32   // positions in in, each repeated by weight; nil when every weight is 1
	next   []int32   // for StickyHost, for each member index, the position in in of the first member in rotation at or after it
	panic  bool      // no proxy was in rotation: in holds them all
}

// member is one proxy of a pool, or of the environment's configuration
// (pool nil). It is made in New for each proxy configured, and kept lean:
// what a proxy needs once used (its routes, credential state, statistics,
// probes, the record of its ejections) is made on first use.
type member struct {
	spec   proxySpec
	pool   *Pool // nil under environment configuration
	set    *routeSet
	fn     CredentialsFunc // for the proxy's credentials; nil for none or the URL's
	index  int32
	weight int32

	state       atomic.Int32 // ProxyState
	consecutive atomic.Int32

	live atomic.Pointer[route]   // the route of the proxy's own credentials, while alive
	ext  atomic.Pointer[durable] // made on first use, kept from then on
}

// durable is what a member keeps from its first use on, whatever becomes
// of its routes.
type durable struct {
	auth    *authState // the proxy's own credential state
	stats   memberStats
	probes  singleflight.Group
	probing atomic.Bool

	// Guarded by pool.mu.
	ejections   int
	lastEjected time.Time
	until       time.Time

	mu     sync.Mutex
	idents map[string]*identity // the identities other than the proxy's own, while their routes live

	bans bans // the hosts that block the proxy's exit

	stallUntil atomic.Int64 // UnixNano on the pool's clock while a dial that lost a race is pending
}

// more returns m's durable part, made on first use.
func (m *member) more() *durable {
	if l := m.ext.Load(); l != nil {
		return l
	}
	l := &durable{}
	l.auth = newAuthState(m.spec.url, m.spec.socks(), m.spec.creds, m.fn, m.ownCredentialsChanged)
	l.auth.obs = m.set.obs
	if m.ext.CompareAndSwap(nil, l) {
		return l
	}
	return m.ext.Load()
}

// ownCredentialsChanged is called when the proxy's own credentials
// changed.
func (m *member) ownCredentialsChanged() { m.credentialsChangedFor(nil) }

// credentialsChangedFor retires the connections that id's live route (nil:
// the proxy's own) opened with the old credentials, and for the proxy's
// own, tells the pool. A route released meanwhile is made anew with the
// new ones.
func (m *member) credentialsChangedFor(id *identity) {
	if r := m.slot(id).Load(); r != nil {
		r.renewTransport()
	}
	if id == nil && m.pool != nil {
		m.credentialsChanged()
	}
}

// newMembers returns the members of specs, in one allocation.
func newMembers(set *routeSet, specs []*proxySpec, fns []CredentialsFunc, weights []int) []*member {
	all := make([]member, len(specs))
	out := make([]*member, len(specs))
	for i, s := range specs {
		m := &all[i]
		m.spec, m.set, m.fn, m.index, m.weight = *s, set, fns[i], int32(i), int32(max(weights[i], 1))
		out[i] = m
	}
	return out
}

func newPool(cfg *Config, members []*member, set *routeSet, obs *observer) *Pool {
	pc := cfg.Pool
	p := &Pool{
		set:         set,
		obs:         obs,
		strategy:    pc.Strategy,
		maxPerReq:   orDefault(pc.MaxProxiesPerRequest, 3),
		probeTarget: pc.Probe,
		probeTO:     pc.ProbeTimeout,
		probeEvery:  orDefault(pc.ProbeInterval, 10*time.Second),
		ejectAfter:  int32(orDefault(pc.EjectAfter, 1)),
		ejectBase:   orDefault(pc.EjectionTime, 30*time.Second),
		ejectMax:    orDefault(pc.MaxEjectionTime, 5*time.Minute),
		now:         time.Now,
		sem:         make(chan struct{}, orDefault(pc.ProbeConcurrency, 4)),

		sessions:     newSessions(orDefault(pc.SessionTTL, defaultSessionTTL), pc.SessionUsername != ""),
		banned:       pc.Banned,
		banBase:      orDefault(pc.BanCooldown, time.Minute),
		banMax:       orDefault(pc.MaxBanCooldown, time.Hour),
		returnBanned: pc.ReturnBanned,
	}
	p.tmpl, _ = parseSessionTemplate(pc.SessionUsername) // checked by New
	switch {
	case pc.HedgeAfter == 0:
		p.hedgeAfter = defaultHedgeAfter
	case pc.HedgeAfter > 0:
		p.hedgeAfter = pc.HedgeAfter
	}
	switch p.dialTimeout = cfg.ProxyTimeout; {
	case p.dialTimeout == 0:
		p.dialTimeout = defaultProxyTimeout
	case p.dialTimeout < 0:
		p.dialTimeout = defaultProxyTimeout // no bound: a stalled proxy is passed over for this long
	}
	p.banMax = max(p.banMax, p.banBase)
	if p.probeTO == 0 {
		p.probeTO = cfg.ProxyTimeout
		if p.probeTO <= 0 {
			p.probeTO = defaultProxyTimeout
		}
	}
	n := len(members)
	p.single = n == 1
	p.maxEjectedPct = orDefault(pc.MaxEjectedPercent, 50)
	p.maxEjected = n * p.maxEjectedPct / 100
	p.maxEjected = max(p.maxEjected, min(n-1, 1))
	p.maxEjected = min(p.maxEjected, n-1)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.nextDue.Store(math.MaxInt64)
	set.now = func() time.Time { return p.now() }
	for _, m := range members {
		m.pool = p
	}
	p.members = members
	p.unchecked = make([]atomic.Uint64, (n+63)/64)
	for i := range p.unchecked {
		bits := uint64(math.MaxUint64)
		if rest := n - 64*i; rest < 64 {
			bits = 1<<rest - 1
		}
		p.unchecked[i].Store(bits)
	}
	p.rebuild()
	if pc.ProbeAtStart && n > 1 {
		for _, m := range p.members {
			p.probeAsync(m)
		}
	}
	return p
}

// add makes spec's proxy a member of the pool: a proxy that a PAC script
// named for the first time, with the credentials of fn.
func (p *Pool) add(spec *proxySpec, fn CredentialsFunc) *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := &member{spec: *spec, pool: p, set: p.set, fn: fn, index: int32(len(p.members)), weight: 1}
	p.members = append(p.members, m)
	n := len(p.members)
	p.maxEjected = min(max(n*p.maxEjectedPct/100, min(n-1, 1)), n-1)
	p.rebuild()
	return m
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// rebuild takes a new snapshot of the proxies in rotation. p.mu must be
// held, or p not yet shared.
func (p *Pool) rebuild() {
	rot := &rotation{}
	in, weighted := 0, false
	for _, m := range p.members {
		if inRotation(m) {
			in++
		}
		weighted = weighted || m.weight > 1
	}
	switch in {
	case 0:
		rot.in, rot.panic = p.members, true
	case len(p.members):
		// All of them: the rotation shares the slice, to which add only
		// appends.
		rot.in = p.members
	default:
		rot.in, rot.idx = make([]*member, 0, in), make([]int32, 0, in)
		for _, m := range p.members {
			if inRotation(m) {
				rot.in, rot.idx = append(rot.in, m), append(rot.idx, m.index)
			}
		}
	}
	if weighted {
		for pos, m := range rot.in {
			for range m.weight {
				rot.weight = append(rot.weight, int32(pos))
			}
		}
	}
	if p.strategy == StickyHost {
		rot.next = p.nextInRotation(rot)
	}
	p.rot.Store(rot)
}

// nextInRotation returns rotation.next for rot.
func (p *Pool) nextInRotation(rot *rotation) []int32 {
	next := make([]int32, len(p.members))
	posOf := make([]int32, len(p.members))
	for i := range posOf {
		posOf[i] = -1
	}
	for pos, m := range rot.in {
		posOf[m.index] = int32(pos)
	}
	// Walking backwards, the first member in rotation at or after i is
	// the last one seen; past the end it wraps to the first, at 0.
	var cur int32
	for i := len(p.members) - 1; i >= 0; i-- {
		if posOf[i] >= 0 {
			cur = posOf[i]
		}
		next[i] = cur
	}
	return next
}

// turn returns the position in rot of the k-th turn of a rotating
// strategy.
func (rot *rotation) turn(k uint64) int {
	if rot.weight == nil {
		return int(k % uint64(len(rot.in)))
	}
	return int(rot.weight[k%uint64(len(rot.weight))])
}

// turns returns the number of turns in a round of rot.
func (rot *rotation) turns() int {
	if rot.weight == nil {
		return len(rot.in)
	}
	return len(rot.weight)
}

// start returns the snapshot to pick from and the position of the first
// proxy to try for req.
func (p *Pool) start(req *http.Request, now time.Time) (*rotation, int) {
	if now.UnixNano() >= p.nextDue.Load() {
		p.probeDue()
	}
	rot := p.rot.Load()
	if len(rot.in) == 1 || rot.panic {
		return rot, 0
	}
	switch p.strategy {
	case RoundRobin:
		return rot, rot.turn(p.rr.Add(1) - 1)
	case Random:
		return rot, rot.turn(uint64(rand.IntN(rot.turns())))
	case StickyHost:
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(req.URL.Hostname())))
		return rot, int(rot.next[h.Sum32()%uint32(len(rot.next))])
	}
	return rot, 0
}

// peek returns what start would, without taking a turn of a rotating
// strategy or starting probes: for ProxiesFor.
func (p *Pool) peek(req *http.Request) (*rotation, int) {
	rot := p.rot.Load()
	if len(rot.in) <= 1 || rot.panic {
		return rot, 0
	}
	switch p.strategy {
	case RoundRobin:
		return rot, rot.turn(p.rr.Load())
	case StickyHost:
		h := fnv.New32a()
		h.Write([]byte(strings.ToLower(req.URL.Hostname())))
		return rot, int(rot.next[h.Sum32()%uint32(len(rot.next))])
	}
	return rot, 0 // Ordered; Random's next pick is not known
}

// position returns the position of m in the rotation, or -1.
func (rot *rotation) position(m *member) int {
	if m == nil {
		return -1
	}
	j := int(m.index)
	if rot.idx != nil {
		j, _ = slices.BinarySearch(rot.idx, m.index) // in is in the order of the indexes
	}
	if j < len(rot.in) && rot.in[j] == m {
		return j
	}
	return -1
}

// index returns the index of the member at pos.
func (rot *rotation) index(pos int) int {
	if rot.idx == nil {
		return pos
	}
	return int(rot.idx[pos])
}

// needsProbe reports whether the i-th proxy of seq, m, is to be probed
// before its first use: it is unchecked, in a pool with health checks.
func (p *Pool) needsProbe(seq sequence, i int, m *member) bool {
	if p.single || m == nil {
		return false
	}
	if seq.rot != nil && len(p.unchecked) > 0 {
		j := seq.rot.index((seq.pos + i) % len(seq.rot.in))
		return p.unchecked[j>>6].Load()&(1<<(j&63)) != 0
	}
	return ProxyState(m.state.Load()) == StateUnchecked
}

// checked records that m left the unchecked state. p.mu must be held.
func (p *Pool) checked(m *member) {
	if j := int(m.index); j < 64*len(p.unchecked) {
		p.unchecked[j>>6].And(^(1 << (j & 63)))
	}
}

// roundTrip sends req through the pool's proxies, failing over as the
// rules in PoolConfig allow.
//
// A Proxy-Authorization field that the caller set is for the first proxy
// the request tries, and for the proxy that served the first request of a
// redirect chain, which a redirect tries first while it is in rotation: a
// request that moves on goes without the field, and a 407 to the field is
// the caller's answer, returned as it is and held against no proxy's
// health.
func (p *Pool) roundTrip(req *http.Request) (*http.Response, error) {
	now := p.now()
	sv, err := p.openSession(req, now)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	rot, pos := p.start(req, now)
	_, caller := proxyAuthorization(req.Header)
	dropCaller := false
	switch {
	case caller && req.Response != nil:
		if j := rot.position(firstMember(req)); j >= 0 {
			pos = j
		} else {
			dropCaller = true
		}
	case sv != nil && sv.exit != nil:
		// A session's exit goes first while it is in rotation; out of
		// it, the session moves to the proxy that serves it.
		if j := rot.position(sv.exit); j >= 0 {
			pos = j
		}
	case sv != nil:
		// A new session takes the strategy's pick, passing over the
		// proxies benched for the host.
		if p.banned != nil {
			host, now := banHost(req.URL), now
			for k := 0; k < min(len(rot.in)-1, maxBenchedSkips) && rot.in[pos].benched(host, now); k++ {
				pos = (pos + 1) % len(rot.in)
			}
		}
		p.claimExit(sv, rot.in[pos])
		if j := rot.position(sv.exit); j >= 0 {
			pos = j // another request of the session claimed first
		}
	}
	seq := sequence{rot: rot, pos: pos, n: min(p.maxPerReq, len(rot.in))}
	return p.walk(req, seq, now, rot.panic, caller, dropCaller, sv)
}

// sequence is the proxies a request tries, in order: n of a rotation from
// a position, or a list (a PAC's, where nil stands for a direct
// connection).
type sequence struct {
	rot  *rotation
	pos  int
	list []*member
	n    int
}

func (s sequence) at(i int) *member {
	if s.rot != nil {
		return s.rot.in[(s.pos+i)%len(s.rot.in)]
	}
	return s.list[i]
}

// len returns the number of proxies the sequence could offer, beyond the n
// to try: those benched for the host are passed over.
func (s sequence) len() int {
	if s.rot != nil {
		return len(s.rot.in)
	}
	return len(s.list)
}

// walk sends req through the proxies of seq in turn, failing over as the
// rules in PoolConfig allow, passing over those benched for its host, and
// retrying banned responses as PoolConfig.Banned says. panicked reports
// that no proxy was in rotation; caller that req carries the caller's
// Proxy-Authorization field, and dropCaller that it is for none of them;
// sv is req's session, nil for none.
func (p *Pool) walk(req *http.Request, seq sequence, now time.Time, panicked, caller, dropCaller bool, sv *sessionView) (*http.Response, error) {
	single := p.single
	c := cursor{p: p, req: req, seq: seq, now: now, panicked: panicked, caller: caller, sv: sv,
		n: seq.n, total: seq.len(), gateway: sv != nil && p.tmpl != nil}
	if p.banned != nil {
		c.host = banHost(req.URL)
	}
	if c.gateway {
		c.n = p.maxPerReq // banned responses go again, each under a new session token
	}
	host, gateway := c.host, c.gateway
	var (
		errs     []error
		bodyUsed bool
		// again holds the proxies that lost a race to one that failed
		// after connecting: they had not failed, and are tried again
		// first; fresh, those passed over as stalled, tried last.
		again, fresh []*member
	)
walk:
	for ; c.tried < c.n && (c.i < c.total || len(fresh) > 0) || len(again) > 0; c.i++ {
		var m *member
		retry, stalled := len(again) > 0, false
		switch {
		case retry:
			m, again = again[0], again[1:]
			c.i-- // the sequence stays where it was
		case c.i >= c.total:
			m, fresh = fresh[0], fresh[1:]
			c.i--
			stalled = true
		default:
			if m = seq.at(c.i); c.pass(c.i, m) {
				continue
			}
		}
		if c.tried > 0 {
			p.obs.failover(FailoverInfo{From: urlOf(c.prev), To: urlOf(m), Target: req.URL.Redacted(), Err: errs[len(errs)-1]})
		}
		c.prev = m
		if !retry {
			c.tried++
		}
		racing := m != nil && p.hedgeable(sv) && c.tried < c.n && c.i+1 < c.total
		probe := !retry && !stalled && !panicked && p.needsProbe(seq, c.i, m) && p.ctx.Err() == nil
		if probe && !racing { // a race probes as part of the connection it races
			if err := m.probeNow(req.Context()); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		try := req
		sendsCaller := caller && c.tried == 1 && !dropCaller && m != nil
		if caller && !sendsCaller {
			try = withoutProxyAuth(req)
		}
		if bodyUsed && req.Body != nil && req.Body != http.NoBody {
			body, err := req.GetBody()
			if err != nil {
				errs = append(errs, err)
				break
			}
			if try == req {
				try = req.WithContext(req.Context())
			}
			try.Body = body
		}
		bodyUsed = true
		if m == nil {
			resp, err := p.direct.RoundTrip(try)
			if err == nil {
				resp.Request = req
				return resp, nil
			}
			if !mayFailOverDirect(req, err) {
				return nil, err
			}
			errs = append(errs, err)
			continue
		}
		start := now
		if c.tried > 1 {
			start = p.now()
		}
		var (
			resp *http.Response
			err  error
			r    *route
			lost []*member
			sent = try // the request that went, before its context
		)
		if racing {
			var (
				w      *leg
				failed []*leg
			)
			w, failed, lost = p.hedged(try, m, start, probe, sendsCaller, &c)
			for _, f := range failed {
				errs = append(errs, f.err)
			}
			if w == nil {
				// Every proxy raced failed before connecting.
				last := failed[len(failed)-1]
				if !last.probeFailed && !mayFailOver(req, last.err) {
					return nil, last.err
				}
				continue
			}
			m, r, sent, sendsCaller = w.m, w.r, w.base, w.sendsCaller
			resp, err = w.resp, w.err
			start = w.start
		} else {
			r = p.routeFor(m, sv, start)
			resp, err = r.roundTrip(try)
			p.set.unhold(r)
		}
		m.observe(start, resp, err, single, sendsCaller)
		if err == nil {
			if host != "" && p.banned(resp) {
				p.ban(m, host, resp, start, sv, gateway)
				more := c.tried < c.n && (gateway || p.nextUnbenched(seq, c.i, host, start))
				if more && !p.returnBanned && idempotent(req) && replayable(req) {
					drain(resp.Body, r.timeout)
					errs = append(errs, &StatusError{URL: req.URL, StatusCode: resp.StatusCode})
					if gateway {
						c.i-- // the same gateway, under the session's new token
					}
					continue
				}
			}
			if sv != nil && !gateway {
				p.bindSession(sv, m)
			}
			if sent != req {
				// The Request of the response is the caller's, in the
				// context that names its proxy.
				resp.Request = req.WithContext(resp.Request.Context())
			}
			return resp, nil
		}
		if gateway && healthFailure(err) {
			p.moveSession(sv, m, "failed")
		}
		var pae *ProxyAuthError
		if single || !mayFailOver(req, err) || sendsCaller && errors.As(err, &pae) && pae.StatusCode != 0 {
			return nil, err
		}
		errs = append(errs, err)
		again = append(again, lost...)
	}
	if len(c.late) > 0 && c.tried < c.n && len(errs) > 0 && mayFailOver(req, errs[len(errs)-1]) {
		// The others failed: the proxies passed over as stalled are
		// the last hope.
		fresh, c.late = c.late, nil
		goto walk
	}
	if !bodyUsed {
		closeBody(req)
	}
	if len(errs) == 1 {
		return nil, errs[0]
	}
	return nil, &PoolError{Errors: errs}
}

// cursor is a walk's place in its sequence of proxies. It lives on the
// walk's stack; a race works on a copy, which the walk takes back.
type cursor struct {
	p        *Pool
	req      *http.Request
	seq      sequence
	now      time.Time
	host     string // for bans; "" without PoolConfig.Banned
	gateway  bool   // a session at a gateway (SessionUsername)
	panicked bool   // no proxy was in rotation
	caller   bool   // req carries the caller's Proxy-Authorization
	sv       *sessionView

	n, total int // the proxies to try, and those the sequence offers
	i, tried int // the position, and the proxies tried
	skipped  int // passed over
	prev     *member
	late     []*member // passed over as stalled by a race they lost
}

// pass reports whether the walk passes over m, the i-th of its sequence:
// benched for its host (a session on it moves for the ban), or stalled
// by a race it lost, and not the last hope.
func (c *cursor) pass(i int, m *member) bool {
	if m == nil || c.skipped >= maxBenchedSkips || i == c.total-1 && c.tried == 0 {
		return false
	}
	switch {
	case !c.gateway && c.host != "" && m.benched(c.host, c.now):
		if c.sv != nil && m == c.sv.exit {
			c.p.sessions.markBanned(c.sv.s, m)
		}
	case c.p.hedgeAfter > 0 && m.stalled(c.now):
		c.late = append(c.late, m)
	default:
		return false
	}
	c.skipped++
	return true
}

// next yields the next proxy to race, its request, and whether it needs
// a probe first; nil when there is none (a direct connection is not
// raced).
func (c *cursor) next() (*member, *http.Request, bool) {
	for c.tried < c.n && c.i+1 < c.total {
		m := c.seq.at(c.i + 1)
		if m == nil {
			return nil, nil, false
		}
		c.i++
		if c.pass(c.i, m) {
			continue
		}
		c.tried++
		c.prev = m
		t := c.req
		if c.caller {
			t = withoutProxyAuth(c.req)
		}
		return m, t, !c.panicked && c.p.needsProbe(c.seq, c.i, m) && c.p.ctx.Err() == nil
	}
	return nil, nil, false
}

// replayable reports whether req's body, if any, can be sent again.
func replayable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// urlOf returns m's proxy, or nil for a direct connection.
func urlOf(m *member) *url.URL {
	if m == nil {
		return nil
	}
	return m.spec.url
}

// mayFailOverDirect reports whether req may go to the next entry of a PAC's
// list after a direct connection failed with err: only when the dial
// failed, before anything was sent.
func mayFailOverDirect(req *http.Request, err error) bool {
	var oe *net.OpError
	return req.Context().Err() == nil && replayable(req) && errors.As(err, &oe) && oe.Op == "dial"
}

// mayFailOver reports whether req may go to another proxy after err.
func mayFailOver(req *http.Request, err error) bool {
	if req.Context().Err() != nil {
		return false
	}
	replayable := replayable(req)
	var (
		pae *ProxyAuthError
		pe  *ProxyError
	)
	switch {
	case errors.As(err, &pae):
		return replayable && !errors.Is(err, ErrBodyNotReplayable)
	case errors.As(err, &pe):
		switch pe.Op {
		case "dial", "tls", "connect", "socks", "handshake":
			return replayable // the origin cannot have seen the request
		}
		return replayable && idempotent(req)
	}
	return false // not the proxy's failure: another proxy would not help
}

// idempotent reports whether req may be sent twice, as net/http judges it.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// healthFailure reports whether err is a failure of the proxy itself, as
// passive health checking counts them.
func healthFailure(err error) bool {
	var pe *ProxyError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Op {
	case "dial", "tls", "socks", "forward", "handshake":
		return pe.StatusCode == 0
	case "connect":
		switch pe.StatusCode {
		case 0, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
	}
	return false
}

// observe records the outcome of a request through m, for its health and
// its statistics. caller reports that the request carried the caller's own
// Proxy-Authorization field, whose refusal says nothing of the proxy.
func (m *member) observe(start time.Time, resp *http.Response, err error, single, caller bool) {
	m.more().stats.record(m.pool.now().Sub(start), resp, err)
	if single {
		// No health checks: the proxy is healthy from its first answer on.
		if ProxyState(m.state.Load()) == StateUnchecked && answered(err) {
			m.pool.setIn(m)
		}
		return
	}
	m.judge(err, caller)
}

// judge counts the outcome err (nil for an answer) for m's health.
func (m *member) judge(err error, caller bool) {
	var pae *ProxyAuthError // declared past the return: it costs an allocation
	switch {
	case healthFailure(err):
		if m.consecutive.Add(1) >= m.pool.ejectAfter {
			m.pool.eject(m, true, err)
		}
	case errors.As(err, &pae) && pae.Rejected && pae.StatusCode != 0 && !caller:
		m.pool.setOut(m, StateAuthFailed, err)
	case err == nil || errors.As(err, &pae):
		// The proxy answered.
		m.consecutive.Store(0)
		if ProxyState(m.state.Load()) == StateUnchecked {
			m.pool.setIn(m)
		}
	}
}

// answered reports whether the proxy answered: a response, or a demand
// for credentials.
func answered(err error) bool {
	var pae *ProxyAuthError
	return err == nil || errors.As(err, &pae)
}

// eject takes m out of rotation for failures, unless the cap on ejected
// proxies forbids it (capped applies the cap). cause is the failure.
func (p *Pool) eject(m *member, capped bool, cause error) {
	p.mu.Lock()
	if ProxyState(m.state.Load()) == StateEjected || capped && p.outCountLocked() >= p.maxEjected {
		p.mu.Unlock()
		return
	}
	now := p.now()
	l := m.more()
	if l.lastEjected.IsZero() || now.Sub(l.lastEjected) > 2*p.ejectMax {
		l.ejections = 0 // long healthy: the multiplier starts again
	}
	l.ejections++
	d := min(p.ejectBase*time.Duration(l.ejections), p.ejectMax)
	d = time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
	l.lastEjected = now
	info := p.outLocked(m, StateEjected, now.Add(d), cause)
	p.mu.Unlock()
	p.obs.stateChanged(info)
}

func (p *Pool) outCountLocked() int {
	out := 0
	for _, x := range p.members {
		if s := ProxyState(x.state.Load()); s == StateEjected || s == StateAuthFailed {
			out++
		}
	}
	return out
}

// setOut takes m out of rotation in state s until a probe passes; the
// first probe may come after the probe interval.
func (p *Pool) setOut(m *member, s ProxyState, cause error) {
	p.mu.Lock()
	changed := ProxyState(m.state.Load()) != s
	info := p.outLocked(m, s, p.now().Add(p.probeEvery), cause)
	p.mu.Unlock()
	if changed {
		p.obs.stateChanged(info)
	}
}

func (p *Pool) outLocked(m *member, s ProxyState, until time.Time, cause error) ProxyStateInfo {
	m.state.Store(int32(s))
	p.checked(m)
	m.more().until = until
	if u := until.UnixNano(); u < p.nextDue.Load() {
		p.nextDue.Store(u)
	}
	p.rebuild()
	return ProxyStateInfo{Proxy: m.spec.url, State: s, Until: until, Err: cause}
}

// setIn puts m in rotation.
func (p *Pool) setIn(m *member) {
	p.mu.Lock()
	m.consecutive.Store(0)
	was := ProxyState(m.state.Load())
	if was != StateHealthy {
		m.state.Store(int32(StateHealthy))
		p.checked(m)
		if l := m.ext.Load(); l != nil {
			l.until = time.Time{}
		}
		if was != StateUnchecked {
			p.rebuild() // an unchecked proxy was in rotation already
		}
	}
	p.mu.Unlock()
	if was != StateHealthy && was != StateUnchecked {
		p.obs.stateChanged(ProxyStateInfo{Proxy: m.spec.url, State: StateHealthy})
	}
}

// credentialsChanged readmits m if it was out for refusing the old ones.
func (m *member) credentialsChanged() {
	if ProxyState(m.state.Load()) == StateAuthFailed {
		m.pool.setIn(m)
	}
}

// probeDue starts the probes of the proxies out of rotation whose time
// has come, and sets when the next ones are due.
func (p *Pool) probeDue() {
	p.mu.Lock()
	now := p.now()
	next := int64(math.MaxInt64)
	var due []*member
	for _, m := range p.members {
		if s := ProxyState(m.state.Load()); s != StateEjected && s != StateAuthFailed {
			continue
		}
		l := m.more()
		if !l.until.After(now) {
			due = append(due, m)
			l.until = now.Add(p.probeEvery)
		}
		next = min(next, l.until.UnixNano())
	}
	p.nextDue.Store(next)
	p.mu.Unlock()
	for _, m := range due {
		p.probeAsync(m)
	}
}

// probeAsync probes m in the background, unless a probe of it is under way.
func (p *Pool) probeAsync(m *member) {
	l := m.more()
	if !l.probing.CompareAndSwap(false, true) {
		return
	}
	if !p.spawn(func() {
		defer l.probing.Store(false)
		_ = m.probeShared()
	}) {
		l.probing.Store(false)
	}
}

// spawn runs f in a goroutine that close waits for, unless the pool is
// closed. It reports whether f runs.
func (p *Pool) spawn(f func()) bool {
	p.closing.Lock()
	defer p.closing.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}

// probeNow probes m, sharing a probe under way, and records the result.
// It waits at most as long as ctx allows; the probe goes on without it,
// until it ends or the pool is closed.
func (m *member) probeNow(ctx context.Context) error {
	p := m.pool
	ch := make(chan error, 1)
	if !p.spawn(func() { ch <- m.probeShared() }) {
		return p.ctx.Err()
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// probeShared probes m, or waits for the probe of m under way, and
// records the result. The probe ends when the pool is closed.
func (m *member) probeShared() error {
	p := m.pool
	l := m.more()
	_, err, _ := l.probes.Do("", func() (any, error) {
		select {
		case p.sem <- struct{}{}:
		case <-p.ctx.Done():
			return nil, p.ctx.Err()
		}
		defer func() { <-p.sem }()
		pctx, cancel := context.WithTimeout(p.ctx, p.probeTO)
		defer cancel()
		r := p.set.hold(m, nil, p.now())
		err := r.probe(pctx, p.probeTarget)
		p.set.unhold(r)
		if p.ctx.Err() != nil {
			return nil, err // closed: the result means nothing
		}
		m.stall(time.Time{}) // judged: a race's pending dial, if any, no longer matters
		var pae *ProxyAuthError
		switch {
		case err == nil:
			p.setIn(m)
		case errors.As(err, &pae):
			l.stats.setLastError(err)
			p.setOut(m, StateAuthFailed, err)
		default:
			l.stats.setLastError(err)
			if ProxyState(m.state.Load()) == StateUnchecked {
				p.eject(m, false, err)
			} else {
				p.setOut(m, StateEjected, err)
			}
		}
		return nil, err
	})
	return err
}

// close stops the probes, ending those under way, and waits for every
// probe goroutine, those that requests started included.
func (p *Pool) close() {
	p.closing.Lock()
	p.cancel()
	p.closing.Unlock()
	p.wg.Wait()
}

// Stats returns a snapshot of every proxy of the pool, in order.
func (p *Pool) Stats() []ProxyStats {
	out := make([]ProxyStats, len(p.members))
	p.mu.Lock()
	var unused memberStats
	for i, m := range p.members {
		l := m.ext.Load()
		if l != nil {
			out[i] = l.stats.snapshot()
			out[i].Ejections = l.ejections
		} else {
			out[i] = unused.snapshot()
		}
		if l != nil {
			out[i].BansByHost = l.bans.counts()
			for _, n := range out[i].BansByHost {
				out[i].Bans += n
			}
		}
		out[i].Proxy = m.spec.url.String()
		out[i].State = ProxyState(m.state.Load())
		out[i].ConsecutiveFailures = int(m.consecutive.Load())
		out[i].Stalled = m.stalled(p.now())
		if l != nil && (out[i].State == StateEjected || out[i].State == StateAuthFailed) {
			out[i].OutUntil = l.until
		}
	}
	p.mu.Unlock()
	return out
}
