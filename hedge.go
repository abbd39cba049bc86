package proxyauth

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Hedged connections (PoolConfig.HedgeAfter). A request whose proxy has
// not connected within HedgeAfter starts on the next proxy too, and takes
// the connection that comes first. Until a connection is handed to the
// request (httptrace's GotConn, which net/http calls before it writes a
// byte of the request, and after the CONNECT's 200 for a tunnel), nothing
// has reached the origin, so racing that phase is safe for any method.
//
// Each proxy tried is a leg of the race, with a context of its own. The
// first leg to be handed a connection wins; the others are cancelled.
// net/http lets a dial go on when its request is cancelled, and pools
// the connection it makes, so a loser's connection, if it comes, stays
// idle on its own proxy. A loser that is handed a connection at the same
// moment closes it rather than write the request a second time.
//
// A loser is not failed for losing. While its dial is still pending,
// later requests pass over the proxy; when that dial ends, with an answer
// or with the proxy's own timeout, the proxy is judged on it as on any
// request's. Legs share the request's body through a gate that lets only
// the winner read or close it.

// errLostRace is the cause of a leg's cancellation when another proxy
// connected first.
var errLostRace = errors.New("proxyauth: another proxy of the pool connected first")

// race is the connection phase of one request, raced across proxies.
type race struct {
	p      *Pool
	req    *http.Request // the caller's
	after  time.Duration
	began  time.Time // the race's start, on the wall clock
	shared *sharedBody

	mu      sync.Mutex
	first   leg     // legs[0]'s storage
	buf     [4]*leg // legs' storage, for most races
	legs    []*leg  // started, in order
	winner  *leg
	pending int       // legs whose round trip has not returned
	ended   chan *leg // the other legs report here; made with the second
	timer   *time.Timer
	over    bool   // decided: no more legs
	cur     cursor // the walk's, whose next proxy a hedge takes
}

// leg is one proxy's part in a race.
type leg struct {
	race        *race
	m           *member
	r           *route
	base        *http.Request // the request the leg sends, which req is in the leg's context
	req         *http.Request
	cancel      context.CancelCauseFunc
	start       time.Time // on the pool's clock, for its statistics
	began       time.Time // on the wall clock
	probe       bool      // the proxy needs a probe first
	probeFailed bool      // and the probe failed: err is its error
	sendsCaller bool      // req carries the caller's Proxy-Authorization
	body        *gatedBody

	resp *http.Response
	err  error
	done bool // the round trip returned; guarded by race.mu

	lost     atomic.Bool  // cancelled: another leg connected first
	dials    atomic.Int32 // connection phases of the leg's dials under way
	reported atomic.Bool  // a lost leg's pending dial was judged
}

// hedgeable reports whether a request may race its connection: hedging
// is on, and the request is not a session's, which keeps its exit unless
// the exit fails.
func (p *Pool) hedgeable(sv *sessionView) bool {
	return p.hedgeAfter > 0 && !p.single && sv == nil
}

// hedged sends try through m, and through each next proxy of the walk's
// cursor c in turn, one more each time HedgeAfter passes without a
// connection, within the bound the walk keeps; c then holds where the
// race left the walk. It returns the leg that decides the request (the winner, or a
// leg whose failure ends the request) and the legs that failed before a
// connection, each observed; w is nil when every leg failed. lost are
// the proxies of the legs that lost to the winner, in order.
func (p *Pool) hedged(try *http.Request, m *member, start time.Time, probe, sendsCaller bool, c *cursor) (w *leg, failed []*leg, lost []*member) {
	rc := &race{p: p, req: c.req, after: p.hedgeAfter, began: time.Now(), cur: *c}
	defer func() { *c = rc.cur }()
	if hasBody(try) {
		rc.shared = &sharedBody{src: try.Body}
	}
	l := &rc.first
	rc.setUp(l, m, try, start, probe)
	l.sendsCaller = sendsCaller
	rc.legs = append(rc.buf[:0], l)
	rc.pending = 1
	l.run()
	for {
		rc.mu.Lock()
		l.done = true
		rc.pending--
		w = rc.decide(l)
		if w != nil || rc.pending == 0 && rc.winner == nil {
			rc.finish(w)
			rc.mu.Unlock()
			break
		}
		ended := rc.ended
		rc.mu.Unlock()
		l = <-ended
	}
	for _, x := range rc.legs {
		if x != w && x.done && !x.lost.Load() && x.err != nil {
			if !x.probeFailed { // a probe records its own outcome
				x.m.observe(x.start, nil, x.err, false, x.sendsCaller)
			}
			failed = append(failed, x)
		}
		if x != w && x.lost.Load() && rc.winner != nil {
			lost = append(lost, x.m)
		}
	}
	p.observeRace(rc, w)
	rc.release(w)
	return w, failed, lost
}

// errRaceOver ends the context of a leg the request no longer needs.
var errRaceOver = errors.New("proxyauth: the request's race of proxies is over")

// release ends the contexts of the legs: all but the winner's now, and
// the winner's, which its response's body needs, once that body is
// closed or read to its end (a context the caller cannot cancel needs
// no ending: nothing holds it).
func (rc *race) release(w *leg) {
	keep := w != nil && w.resp != nil
	for _, x := range rc.legs {
		if x != w || !keep {
			x.cancel(errRaceOver)
		}
	}
	switch {
	case !keep || rc.req.Context().Done() == nil:
	case w.resp.Body == nil || w.resp.Body == http.NoBody:
		w.cancel(errRaceOver)
	default:
		w.resp.Body = releasing(w.resp.Body, func() { w.cancel(errRaceOver) })
	}
}

// releasing returns body, calling done once it is closed or read to its
// end. A body that can be written (a 101 Switching Protocols answer's)
// stays one.
func releasing(body io.ReadCloser, done func()) io.ReadCloser {
	b := releasingBody{ReadCloser: body, done: done}
	if w, ok := body.(io.Writer); ok {
		return &struct {
			*releasingBody
			io.Writer
		}{&b, w}
	}
	return &b
}

type releasingBody struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (b *releasingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.done)
	}
	return n, err
}

func (b *releasingBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.done)
	return err
}

// setUp makes l the leg of try through m, in a context of its own, with
// the request's body behind a gate.
func (rc *race) setUp(l *leg, m *member, try *http.Request, start time.Time, probe bool) {
	ctx, cancel := context.WithCancelCause(try.Context())
	*l = leg{race: rc, m: m, start: start, began: time.Now(), probe: probe, cancel: cancel, base: try}
	l.req = try.WithContext(ctx)
	if rc.shared != nil {
		l.body = &gatedBody{shared: rc.shared, leg: l}
		l.req.Body = l.body
	}
}

// decide returns the leg that decides the race once l has ended: the
// winner once its round trip returned, or l, when its failure before a
// connection ends the request. Called with rc.mu held.
func (rc *race) decide(l *leg) *leg {
	switch {
	case rc.winner != nil:
		if rc.winner.done {
			return rc.winner
		}
	case l.lost.Load():
	case l.err == nil:
		// A response without GotConn (an HTTP/2 connection reused):
		// the request went through l.
		rc.winner = l
		return l
	case l.probeFailed:
		// The walk moves on, as after any failed probe.
	case raceFinal(rc.req, l.err, l.sendsCaller):
		return l
	}
	return nil
}

// raceFinal reports whether a leg's failure before a connection ends the
// request: the caller gave up, the caller's own credentials were refused
// (their answer is the caller's), or the failure is not the proxy's. A
// proxy's failure there never is: the origin saw nothing, whatever the
// method, and the body is untouched.
func raceFinal(req *http.Request, err error, sendsCaller bool) bool {
	if req.Context().Err() != nil {
		return true
	}
	var (
		pae *ProxyAuthError
		pe  *ProxyError
	)
	switch {
	case errors.As(err, &pae):
		return sendsCaller && pae.StatusCode != 0
	case errors.As(err, &pe):
		return false
	}
	return true
}

// finish ends the race with w deciding it: the legs still under way are
// cancelled, and the body is closed when no leg took it. Called with
// rc.mu held.
func (rc *race) finish(w *leg) {
	rc.over = true
	if rc.timer != nil {
		rc.timer.Stop()
	}
	for _, x := range rc.legs {
		if x != w && !x.done {
			x.loses()
		}
	}
	if rc.shared != nil && (rc.winner == nil || !rc.winner.body.taken()) {
		rc.shared.close()
	}
}

// loses cancels l, which has not connected: another leg did, or the race
// ended. A dial of l still under way goes on; until it ends, requests pass
// over the proxy. Called with race.mu held.
func (l *leg) loses() {
	if l.lost.Swap(true) {
		return
	}
	rc := l.race
	if rc.winner != nil {
		l.m.more().stats.racesLost.Add(1)
		if l.dials.Load() > 0 {
			l.m.stall(rc.p.now().Add(max(rc.p.dialTimeout, rc.after)))
		}
	}
	l.cancel(errLostRace)
}

// run sends the leg's request, after a probe if its proxy needs one.
func (l *leg) run() {
	p := l.race.p
	if l.probe {
		// The probe is part of the connection raced: the race's clock
		// runs from its start. If the leg loses, the probe goes on, and
		// judges the proxy when it ends.
		l.dialing()
		err := l.m.probeNow(l.req.Context())
		l.dials.Add(-1)
		if err != nil {
			l.err, l.probeFailed = err, !l.lost.Load()
			return
		}
	}
	r := p.set.hold(l.m, nil, l.start)
	l.r = r
	l.resp, l.err = r.roundTripIn(l.req, l)
	p.set.unhold(r)
}

// dialing starts the race's clock for the next proxy when l, its first
// leg, begins to dial: a request that gets an idle connection never
// needs it.
func (l *leg) dialing() {
	l.dials.Add(1)
	rc := l.race
	if l != &rc.first {
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.timer == nil && !rc.over {
		rc.timer = time.AfterFunc(max(0, rc.after-time.Since(rc.began)), rc.hedge)
	}
}

// hedge starts the next leg, if any, since none has connected in time.
func (rc *race) hedge() {
	rc.mu.Lock()
	if rc.over || rc.winner != nil {
		rc.mu.Unlock()
		return
	}
	m, try, probe := rc.cur.next()
	if m == nil {
		rc.mu.Unlock()
		return
	}
	from := rc.legs[len(rc.legs)-1]
	l := &leg{}
	rc.setUp(l, m, try, rc.p.now(), probe)
	rc.legs = append(rc.legs, l)
	rc.pending++
	if rc.ended == nil {
		rc.ended = make(chan *leg, rc.p.maxPerReq)
	}
	ended := rc.ended
	rc.timer.Reset(rc.after)
	rc.mu.Unlock()
	m.more().stats.hedges.Add(1)
	rc.p.obs.hedge(HedgeInfo{From: from.m.spec.url, To: m.spec.url, Target: rc.req.URL.Redacted(), After: time.Since(from.began)})
	go func() {
		l.run()
		ended <- l
	}()
}

// connected is GotConn for a leg's request: the first leg to be handed
// a connection wins, and the others are cancelled. A leg handed one
// after losing closes it: net/http would write the request on it next.
func (l *leg) connected(conn net.Conn) {
	rc := l.race
	rc.mu.Lock()
	if rc.winner == nil && !l.lost.Load() {
		rc.winner = l
		if rc.timer != nil {
			rc.timer.Stop()
		}
		for _, x := range rc.legs {
			if x != l && !x.done {
				x.loses()
			}
		}
	}
	won := rc.winner == l
	rc.mu.Unlock()
	if !won {
		l.cancel(errLostRace)
		conn.Close()
	}
}

// reconnecting reopens the race that l won, net/http having to connect
// again for its request: the next proxy races the new connection, as it
// would have raced the first. It stays shut when the winner's net/http
// has touched the body, which another leg could then not send whole.
func (l *leg) reconnecting() {
	rc := l.race
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.over || rc.winner != l || l.body != nil && l.body.touched.Load() {
		return
	}
	rc.winner = nil
	if rc.timer == nil {
		rc.timer = time.AfterFunc(rc.after, rc.hedge)
	} else {
		rc.timer.Reset(rc.after)
	}
}

// phaseEnded records the end of the connection phase of one of l's dials:
// err is its failure, nil when the proxy answered. The leg's own round
// trip sees it, unless the leg lost: then it judges the proxy.
func (l *leg) phaseEnded(err error) {
	l.dials.Add(-1)
	if !l.lost.Load() || !l.reported.CompareAndSwap(false, true) {
		return
	}
	m := l.m
	m.stall(time.Time{})
	if err != nil {
		m.more().stats.setLastError(err)
	}
	m.judge(err, false)
}

// observeRace tells the hooks and the log how a race with hedges ended.
func (p *Pool) observeRace(rc *race, w *leg) {
	if len(rc.legs) < 2 {
		return
	}
	var winner *leg
	if w != nil && w == rc.winner {
		winner = w
		if w != &rc.first {
			w.m.more().stats.hedgesWon.Add(1)
		}
	}
	if p.obs == nil {
		return
	}
	i := HedgeInfo{From: rc.first.m.spec.url, To: rc.legs[len(rc.legs)-1].m.spec.url, Target: rc.req.URL.Redacted(),
		After: time.Since(rc.began), Decided: true}
	if winner != nil {
		i.Winner = winner.m.spec.url
	}
	p.obs.hedge(i)
}

// stall makes requests pass over m until until (on the pool's clock), or
// no longer, for a zero until.
func (m *member) stall(until time.Time) {
	var u int64
	if !until.IsZero() {
		u = until.UnixNano()
	}
	m.more().stallUntil.Store(u)
}

// stalled reports whether a dial of m that lost a race is still pending.
func (m *member) stalled(now time.Time) bool {
	l := m.ext.Load()
	return l != nil && now.UnixNano() < l.stallUntil.Load()
}

// proxyConn is a connection to the proxy whose first exchange net/http
// makes itself (a CONNECT, a SOCKS5 handshake). It tells a leg when the
// proxy first answers on it, or fails to; and a tunnel's connection whose
// CONNECT got a 407 that the next attempt answers is kept for that
// attempt rather than closed (see route.onConnectResponse).
type proxyConn struct {
	net.Conn
	r    *route
	l    *leg   // nil outside a race
	op   string // the exchange, for the leg's error: "connect" or "socks"
	seen atomic.Bool
	keep atomic.Bool // park the connection on Close, for the next attempt
}

func (c *proxyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.l != nil && (n > 0 || err != nil) && !c.seen.Swap(true) {
		if n > 0 {
			c.l.phaseEnded(nil)
		} else {
			c.l.phaseEnded(&ProxyError{Proxy: c.r.spec.url, Op: c.op, Err: err})
		}
	}
	return n, err
}

// Close ends the connection phase, if it had not ended, without an
// answer; or parks the connection for the next attempt.
func (c *proxyConn) Close() error {
	if c.l != nil && !c.seen.Swap(true) {
		c.l.dials.Add(-1)
	}
	if c.keep.Swap(false) {
		c.Conn.SetDeadline(time.Time{})
		c.r.keepConn(c.Conn)
		return nil
	}
	return c.Conn.Close()
}

// sharedBody is the request body that the legs of a race share.
type sharedBody struct {
	src    io.ReadCloser
	once   sync.Once
	closed error
}

func (s *sharedBody) close() error {
	s.once.Do(func() { s.closed = s.src.Close() })
	return s.closed
}

// gatedBody is a leg's view of the shared body: only the winner reads or
// closes it. net/http reads a body only after GotConn, so the others never
// try; they close it when their round trip fails, which leaves it to the
// others.
type gatedBody struct {
	shared  *sharedBody
	leg     *leg
	touched atomic.Bool // the winner read or closed it: the body is its own
	early   atomic.Bool // closed before the leg won
}

func (b *gatedBody) winning() bool {
	if b.touched.Load() {
		return true
	}
	if b.early.Load() {
		return false
	}
	rc := b.leg.race
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.winner == b.leg {
		b.touched.Store(true)
		return true
	}
	return false
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.winning() {
		return b.shared.src.Read(p)
	}
	return 0, errLostRace
}

func (b *gatedBody) Close() error {
	if b.winning() {
		return b.shared.close()
	}
	b.early.Store(true)
	return nil
}

// taken reports whether the winner's net/http owns the body: it read or
// closed it, or may still, having not closed it before winning.
func (b *gatedBody) taken() bool {
	return b != nil && !b.early.Load()
}
