package proxyauth

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ProxyStats is a snapshot of one proxy of a [Pool], from [Pool.Stats]. It
// holds no secret: the URL has no userinfo, and errors never show one.
type ProxyStats struct {
	// Proxy is the proxy's URL, without userinfo.
	Proxy string
	// State is the proxy's health.
	State ProxyState
	// Requests counts the requests sent through the proxy, each once
	// however many attempts its authentication took.
	Requests uint64
	// Outcomes counts the requests by the kind of their outcome, as
	// [Classify] tells it.
	Outcomes map[Kind]uint64
	// Statuses counts the requests by status code: the response's, or
	// the proxy's for a failure it answered (407, a CONNECT's 503, ...).
	Statuses map[int]uint64
	// Latency describes how long the requests took until their response
	// header, or their failure.
	Latency LatencyStats
	// ConsecutiveFailures counts the health failures since the last
	// success.
	ConsecutiveFailures int
	// Ejections counts the recent ejections, which lengthen the next one.
	Ejections int
	// OutUntil is when a probe may bring the proxy back, while it is
	// ejected or auth-failed; zero otherwise.
	OutUntil time.Time
	// LastError is the text of the last failure, "" if none: at most
	// 2 KiB, ending in "…(truncated)" when it was cut.
	LastError string
	// Bans counts the responses that PoolConfig.Banned called bans of
	// this proxy: the sum of BansByHost.
	Bans uint64
	// BansByHost counts the same by target host; nil for none. A proxy
	// keeps the counts of its last 4,096 banned hosts.
	BansByHost map[string]uint64
	// Hedges counts the requests this proxy was tried for in parallel,
	// because the proxy before it had not connected within
	// PoolConfig.HedgeAfter; HedgesWon those of them it connected first
	// for, and served.
	Hedges, HedgesWon uint64
	// RacesLost counts the requests that another proxy took while this
	// one was still connecting for them. They are not failures: a
	// connection that then fails counts as one.
	RacesLost uint64
	// Stalled reports that a connection the proxy was making for a
	// request that another proxy took is still pending: requests pass
	// over the proxy until it ends, and it is judged by how it ends.
	Stalled bool
}

// LatencyStats summarises the latencies of a proxy's requests since the
// Transport was made, each measured until the response header or the
// failure. Its zero value means no request yet.
type LatencyStats struct {
	// Count is the number of requests measured since the Transport was
	// made, the same as ProxyStats.Requests.
	Count uint64
	// Mean is the mean latency of those requests; 0 without any.
	Mean time.Duration
	// Max is the longest latency of those requests; 0 without any.
	Max time.Duration
	// Last is the latency of the request that ended last; 0 without any.
	Last time.Duration
}

// memberStats counts the outcomes of one proxy's requests.
type memberStats struct {
	mu        sync.Mutex
	requests  uint64
	outcomes  map[Kind]uint64
	statuses  map[int]uint64
	total     time.Duration
	max, last time.Duration
	lastErr   string

	hedges, hedgesWon, racesLost atomic.Uint64
}

func (s *memberStats) record(d time.Duration, resp *http.Response, err error) {
	kind := Classify(resp, err)
	code := statusOf(resp, err)
	var lastErr string
	if err != nil {
		lastErr = lastError(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.outcomes == nil {
		s.outcomes, s.statuses = map[Kind]uint64{}, map[int]uint64{}
	}
	s.requests++
	s.outcomes[kind]++
	if code != 0 {
		s.statuses[code]++
	}
	s.total += d
	s.last = d
	s.max = max(s.max, d)
	if err != nil {
		s.lastErr = lastErr
	}
}

func (s *memberStats) setLastError(err error) {
	lastErr := lastError(err)
	s.mu.Lock()
	s.lastErr = lastErr
	s.mu.Unlock()
}

// lastError is the text of err kept for LastError: at most maxText bytes,
// with the secrets that err's typed errors know of masked.
func lastError(err error) string {
	return secretsOf(err).Bound(err.Error(), maxText)
}

func (s *memberStats) snapshot() ProxyStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := ProxyStats{
		Requests:  s.requests,
		Outcomes:  make(map[Kind]uint64, len(s.outcomes)),
		Statuses:  make(map[int]uint64, len(s.statuses)),
		Latency:   LatencyStats{Count: s.requests, Max: s.max, Last: s.last},
		LastError: s.lastErr,
		Hedges:    s.hedges.Load(),
		HedgesWon: s.hedgesWon.Load(),
		RacesLost: s.racesLost.Load(),
	}
	for k, v := range s.outcomes {
		out.Outcomes[k] = v
	}
	for k, v := range s.statuses {
		out.Statuses[k] = v
	}
	if s.requests > 0 {
		out.Latency.Mean = s.total / time.Duration(s.requests)
	}
	return out
}

// statusOf returns the status code of an outcome: the response's, or that
// of the proxy's answer a typed error carries; 0 if none.
func statusOf(resp *http.Response, err error) int {
	if resp != nil {
		return resp.StatusCode
	}
	var (
		pae *ProxyAuthError
		pe  *ProxyError
	)
	switch {
	case errors.As(err, &pae):
		return pae.StatusCode
	case errors.As(err, &pe):
		return pe.StatusCode
	}
	return 0
}
