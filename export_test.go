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
// req.
func Pick(t *Transport, req *http.Request) int {
	rot, pos := t.pool.start(req, t.pool.now())
	return rot.in[pos].index
}

// RefreshPAC fetches t's PAC script again now.
func RefreshPAC(t *Transport) error { return t.pac.refresh(context.Background(), time.Minute) }
