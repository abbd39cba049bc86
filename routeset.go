package proxyauth

import (
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The routes of a Transport's proxies (each an http.Transport of its own
// or two, with their connections) are made when a request or a probe first
// needs one, and released when idle: configuring 100,000 proxies costs
// their parsing alone, and only the proxies in use hold connections.
//
// What a proxy's requests share beyond one route lives on its member and
// survives a release: its health and statistics, and its credential state
// (the current credentials and their version, the login the proxy
// accepted, what it asked for last, the versions a connection-bound scheme
// refused or accepted). A route made again starts from that state: a
// CredentialsFunc is not asked again, and a proxy that accepted Basic gets
// it at once.
const (
	// maxLiveRoutes bounds the routes alive at once in a Transport. Past
	// it, making a route releases the one least recently used that no
	// request holds.
	maxLiveRoutes = 1024
	// routeIdleTime is how long a route goes without a request before it
	// is released: the IdleConnTimeout of http.DefaultTransport, after
	// which the route would hold no connection anyway. The release comes
	// with the next request to any proxy of the Transport after that time
	// (an idle Transport keeps its routes, whose idle connections Base's
	// IdleConnTimeout closes).
	routeIdleTime = 90 * time.Second
)

// routeSet makes the routes of a Transport's proxies when first held and
// releases them, closing their idle connections, once idle for idle or,
// least recently used first, when more than max are alive. A route that a
// request holds is never released under it; while more than max are held
// at once, more than max are alive, until they are let go. It is safe for
// concurrent use.
type routeSet struct {
	base *http.Transport
	cfg  *Config
	obs  *observer
	now  func() time.Time // the pool's clock, for probes and the environment's requests
	max  int
	idle time.Duration

	mu        sync.Mutex
	live      []*route     // in no order: a route's slot is its position
	nextSweep atomic.Int64 // UnixNano when the route used least recently may have been idle long enough
	over      atomic.Bool  // len(live) > max: a route let go may be released
}

func newRouteSet(base *http.Transport, cfg *Config, obs *observer) *routeSet {
	s := &routeSet{base: base, cfg: cfg, obs: obs, now: time.Now, max: maxLiveRoutes, idle: routeIdleTime}
	s.nextSweep.Store(math.MaxInt64)
	return s
}

// hold returns the live route of m for id (nil for the proxy's own
// credentials), made if there is none, held for the caller until it calls
// unhold: the route is not released before. now is the time of the
// request, which counts as the route's last use. It returns nil only for
// an identity that was released meanwhile (see member.routeAs).
func (s *routeSet) hold(m *member, id *identity, now time.Time) *route {
	t := now.UnixNano()
	if t >= s.nextSweep.Load() {
		s.sweep(t)
	}
	slot := m.slot(id)
	for {
		r := slot.Load()
		if r == nil {
			return s.make(m, id, slot, t)
		}
		if r.refs.Add(1) > 0 {
			if r.used.Load() != t {
				r.used.Store(t)
			}
			return r
		}
		// Released: its slot is cleared, or about to be.
		r.refs.Add(-1)
		slot.CompareAndSwap(r, nil)
	}
}

// unhold lets go of r, held by hold.
func (s *routeSet) unhold(r *route) {
	if r.refs.Add(-1) == 0 && s.over.Load() {
		s.mu.Lock()
		out := s.trimLocked()
		s.mu.Unlock()
		closeAll(out)
	}
}

// make makes the route of m for id, held, and puts it in slot, unless a
// route made meanwhile is there: then that one is held and returned.
func (s *routeSet) make(m *member, id *identity, slot *atomic.Pointer[route], t int64) *route {
	var auth *authState
	if id != nil {
		auth = id.auth
	} else {
		auth = m.more().auth
	}
	r := newRoute(s.base, &m.spec, s.cfg, auth, s.obs)
	r.owner, r.id = m, id
	r.refs.Store(1)
	r.used.Store(t)
	s.mu.Lock()
	for {
		cur := slot.Load()
		if cur == nil {
			break
		}
		if cur.refs.Add(1) > 0 {
			s.mu.Unlock()
			return cur // r, which has no connection yet, is garbage
		}
		cur.refs.Add(-1)
		slot.CompareAndSwap(cur, nil)
	}
	if id != nil && id.gone.Load() {
		s.mu.Unlock()
		return nil
	}
	r.slot = len(s.live)
	s.live = append(s.live, r)
	slot.Store(r)
	if due := t + int64(s.idle); due < s.nextSweep.Load() {
		s.nextSweep.Store(due)
	}
	out := s.trimLocked()
	s.mu.Unlock()
	closeAll(out)
	return r
}

// trimLocked releases the routes least recently used that no request
// holds, while more than max are alive, and returns them. s.mu must be
// held.
func (s *routeSet) trimLocked() []*route {
	var out []*route
	// A route found idle may be held before it is released: the scan is
	// made again, a few times at most.
	for tries := 0; len(s.live) > s.max && tries < 8; {
		var lru *route
		for _, r := range s.live {
			if r.refs.Load() == 0 && (lru == nil || r.used.Load() < lru.used.Load()) {
				lru = r
			}
		}
		if lru == nil {
			break // all held: the next unhold trims
		}
		if !lru.refs.CompareAndSwap(0, releasedRefs) {
			tries++
			continue
		}
		s.removeLocked(lru)
		out = append(out, lru)
	}
	s.over.Store(len(s.live) > s.max)
	return out
}

// sweep releases the routes idle since before t-idle that no request
// holds, and sets when the next may be due.
func (s *routeSet) sweep(t int64) {
	s.mu.Lock()
	if t < s.nextSweep.Load() {
		s.mu.Unlock()
		return // another request swept first
	}
	idle := int64(s.idle)
	next := int64(math.MaxInt64)
	var out []*route
	for i := 0; i < len(s.live); {
		r := s.live[i]
		due := r.used.Load() + idle
		if due <= t && r.refs.CompareAndSwap(0, releasedRefs) {
			s.removeLocked(r) // moves the last one to i
			out = append(out, r)
			continue
		}
		if due <= t {
			due = t + idle // held now: it was used now
		}
		next = min(next, due)
		i++
	}
	s.nextSweep.Store(next)
	s.over.Store(len(s.live) > s.max)
	s.mu.Unlock()
	closeAll(out)
}

// removeLocked takes r, released, out of the live routes and out of its
// slot; an identity goes with its route. s.mu must be held.
func (s *routeSet) removeLocked(r *route) {
	last := s.live[len(s.live)-1]
	s.live[r.slot], last.slot = last, r.slot
	s.live[len(s.live)-1] = nil
	s.live = s.live[:len(s.live)-1]
	r.owner.slot(r.id).CompareAndSwap(r, nil)
	if r.id != nil {
		r.id.gone.Store(true)
		r.owner.forget(r.id)
	}
}

// closeIdle closes the idle connections of every live route. With release,
// it also releases those that no request holds, as a closed Transport
// does: they are made again if used.
func (s *routeSet) closeIdle(release bool) {
	s.mu.Lock()
	live := append([]*route(nil), s.live...)
	if release {
		for _, r := range live {
			if r.refs.CompareAndSwap(0, releasedRefs) {
				s.removeLocked(r)
			}
		}
		s.over.Store(len(s.live) > s.max)
	}
	s.mu.Unlock()
	closeAll(live)
}

// liveCount returns the number of live routes.
func (s *routeSet) liveCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// closeAll closes the idle connections of rs, released routes among them:
// those still in use close as they come back, since nothing asks those
// Transports for a connection any more.
func closeAll(rs []*route) {
	for _, r := range rs {
		r.closeIdle()
	}
}

// releasedRefs is the count of holds of a released route.
const releasedRefs = math.MinInt32
