package proxyauth

import (
	"context"
	"net/http"
	"time"
)

// SetPoolClock makes the pool of t read the time from now. Call it before
// the first request.
func SetPoolClock(t *Transport, now func() time.Time) { t.pool.now = now }

// WaitForProbes waits until the probes under way in t's pool have ended.
func WaitForProbes(t *Transport) { t.pool.wg.Wait() }

// Pick returns the index of the proxy that t's pool would try first for
// req. It does what a request does before it holds that proxy's route:
// the pick, the look for a Proxy-Authorization field of the caller's, and
// whether the proxy needs a probe first.
func Pick(t *Transport, req *http.Request) int {
	p := t.pool
	rot, pos := p.start(req, p.now())
	_, _ = proxyAuthorization(req.Header)
	seq := sequence{rot: rot, pos: pos, n: min(p.maxPerReq, len(rot.in))}
	_ = !rot.panic && p.needsProbe(seq, 0, seq.at(0))
	return rot.index(pos)
}

// RefreshPAC fetches t's PAC script again now.
func RefreshPAC(t *Transport) error { return t.pac.refresh(context.Background(), time.Minute) }

// MaxLiveRoutes and RouteIdleTime are the bound on live routes and the
// idle time after which a route is released.
const (
	MaxLiveRoutes = maxLiveRoutes
	RouteIdleTime = routeIdleTime
)

// LiveRoutes returns the number of t's live routes.
func LiveRoutes(t *Transport) int { return t.set.liveCount() }

// ReleaseRoutes releases every route of t that no request holds, as an
// idle time or the bound would.
func ReleaseRoutes(t *Transport) { t.set.closeIdle(true) }

// SweepRoutes releases t's routes that have been idle for RouteIdleTime
// by the pool's clock, as the next request would.
func SweepRoutes(t *Transport) { t.set.sweep(t.set.now().UnixNano()) }

// SendAs sends req through proxy i of t's pool as identity, whose
// credentials are the proxy's with the username username(original).
func SendAs(t *Transport, i int, identity string, username func(string) string, req *http.Request) (*http.Response, error) {
	r := t.pool.members[i].routeAs(identity, username, t.pool.now())
	defer t.set.unhold(r)
	return r.roundTrip(req)
}

// Identities returns the number of identities of proxy i of t's pool
// besides its own, while their routes live.
func Identities(t *Transport, i int) int { return t.pool.members[i].identities() }

// HoldRoute holds the route of proxy i of t's pool, made if need be, and
// lets it go, as a request at time now does around its route's work.
func HoldRoute(t *Transport, i int, now time.Time) {
	t.set.unhold(t.set.hold(t.pool.members[i], nil, now))
}
