package proxyauth

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bans are the hosts for which one proxy is benched, with the number of
// its recent bans there, which lengthens the next cooldown.
type bans struct {
	hosts  atomic.Int32 // len(byHost), read without the lock
	mu     sync.Mutex
	byHost map[string]*ban
}

type ban struct {
	count int
	last  time.Time
	until time.Time
	total uint64
}

// benched reports whether host is benched at now.
func (b *bans) benched(host string, now time.Time) bool {
	if b == nil || b.hosts.Load() == 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	x := b.byHost[host]
	return x != nil && now.Before(x.until)
}

// add records a ban for host at now and returns when it ends, base times
// 2^(n-1) for the n-th ban in a row (a ban counts in a row when it comes
// within 2*max of the previous one) capped at max, and the bans of host so
// far.
func (b *bans) add(host string, now time.Time, base, max time.Duration) (time.Time, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	x := b.entryLocked(host, now)
	if !x.last.IsZero() && now.Sub(x.last) > 2*max {
		x.count = 0
	}
	x.count++
	x.total++
	d := base
	for i := 1; i < x.count && d < max; i++ {
		d *= 2
	}
	x.last, x.until = now, now.Add(min(d, max))
	return x.until, x.total
}

// count records a ban for host that benches nothing (a gateway's), and
// returns now and the bans of host so far.
func (b *bans) count(host string, now time.Time) (time.Time, uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	x := b.entryLocked(host, now)
	x.total++
	x.last = now
	return now, x.total
}

// entryLocked returns the entry of host, made if there is none.
func (b *bans) entryLocked(host string, now time.Time) *ban {
	if b.byHost == nil {
		b.byHost = map[string]*ban{}
	}
	x := b.byHost[host]
	if x == nil {
		if len(b.byHost) >= maxBannedHosts {
			b.dropOldestLocked(now)
		}
		x = &ban{}
		b.byHost[host] = x
		b.hosts.Store(int32(len(b.byHost)))
	}
	return x
}

// maxBannedHosts bounds the hosts one proxy keeps bans for.
const maxBannedHosts = 4096

// dropOldestLocked makes room: it drops the bans that have ended, or, if
// none has, the one that ends first.
func (b *bans) dropOldestLocked(now time.Time) {
	var first string
	for h, x := range b.byHost {
		if !now.Before(x.until) {
			delete(b.byHost, h)
			continue
		}
		if first == "" || x.until.Before(b.byHost[first].until) {
			first = h
		}
	}
	if len(b.byHost) >= maxBannedHosts {
		delete(b.byHost, first)
	}
	b.hosts.Store(int32(len(b.byHost)))
}

// counts returns the number of bans by host.
func (b *bans) counts() map[string]uint64 {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.byHost) == 0 {
		return nil
	}
	out := make(map[string]uint64, len(b.byHost))
	for h, x := range b.byHost {
		out[h] = x.total
	}
	return out
}

// ban records that the site of host blocked m's exit, as resp shows, and
// moves sv (if any) on: behind a gateway, to a new token at once; else to
// whichever proxy serves it next, which bindSession reports.
func (p *Pool) ban(m *member, host string, resp *http.Response, now time.Time, sv *sessionView, gateway bool) {
	l := m.more()
	var until time.Time
	var total uint64
	if gateway {
		// The gateway is not benched: its exits are the sessions'.
		until, total = l.bans.count(host, now)
	} else {
		until, total = l.bans.add(host, now, p.banBase, p.banMax)
	}
	p.obs.banned(BanInfo{Proxy: m.spec.url, Host: host, Until: until, Bans: total, StatusCode: resp.StatusCode})
	if sv == nil {
		return
	}
	if gateway {
		p.moveSession(sv, m, "banned")
		return
	}
	p.sessions.markBanned(sv.s, m)
}

// maxBenchedSkips bounds the proxies benched for its host that a request
// passes over: past that many (a host that banned most of a large pool),
// it takes the next ones as they come, rather than scan the pool.
const maxBenchedSkips = 64

// nextUnbenched reports whether a proxy after position i of seq is not
// benched for host: somewhere a banned request could go again.
func (p *Pool) nextUnbenched(seq sequence, i int, host string, now time.Time) bool {
	for j := i + 1; j < min(seq.len(), i+1+maxBenchedSkips); j++ {
		if m := seq.at(j); m == nil || !m.benched(host, now) {
			return true
		}
	}
	return false
}

// benched reports whether m is benched for host at now.
func (m *member) benched(host string, now time.Time) bool {
	l := m.ext.Load()
	return l != nil && l.bans.benched(host, now)
}

// banHost returns the host that bans are recorded for: u's host name, in
// lower case.
func banHost(u *url.URL) string {
	return strings.ToLower(u.Hostname())
}
