package proxyauth

// What a session costs a pool: the heap a live one keeps, and what finding
// and binding it adds to a request. bench_session_test.go measures the
// same through whole requests.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// sessionPool returns the pool of a Transport of two proxies that are
// never dialed.
func sessionPool(tb testing.TB) *Pool {
	tb.Helper()
	tr, err := New(Config{Proxies: []string{"http://u:p@10.0.0.1:3128", "http://u:p@10.0.0.2:3128"},
		Pool: PoolConfig{Strategy: RoundRobin}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tr.Close() })
	return tr.pool
}

// sessionRequest returns a GET whose context carries the session id.
func sessionRequest(id string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
	return req.WithContext(WithSession(context.Background(), id))
}

// sessionHeapOf returns the heap that n live sessions of p keep, per
// session: HeapAlloc after a collection, less what it was before. Each is
// made as the pool's requests make them, by openSession and bindSession,
// with ids such as "user-12345" (which the sessions keep) and one request
// for all, whose context alone changes.
func sessionHeapOf(p *Pool, n int) float64 {
	base := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
	now := time.Now()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		req := base.WithContext(WithSession(context.Background(), "user-"+strconv.Itoa(i)))
		sv, err := p.openSession(req, now)
		if err != nil || sv == nil {
			panic("no session for " + strconv.Itoa(i))
		}
		p.bindSession(sv, p.members[i%len(p.members)])
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(p)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestSessionHeap checks that 100,000 live sessions keep at most 200 bytes
// of heap each, their ids included. The least of three measurements
// counts, each in a pool of its own, so that another test's garbage does
// not.
func TestSessionHeap(t *testing.T) {
	const n, limit = 100000, 200
	best := -1.0
	for range 3 {
		p := sessionPool(t)
		per := sessionHeapOf(p, n)
		if live := p.sessions.live(); live != n {
			t.Fatalf("%d live sessions, want %d", live, n)
		}
		if best < 0 || per < best {
			best = per
		}
		if best <= limit {
			break
		}
	}
	t.Logf("%d live sessions: %.0f B/session", n, best)
	if best > limit {
		t.Errorf("%d live sessions keep %.0f bytes of heap each, want at most %d", n, best, limit)
	}
}

// BenchmarkSessionLookup measures what a session adds to a request once it
// exists: openSession (the id from the context, the session from its
// shard, its exit) and bindSession after the response, on one session
// (run=seq) and on one per goroutine (run=parallel). session=none is what
// every request pays without a session: the look into its context.
func BenchmarkSessionLookup(b *testing.B) {
	p := sessionPool(b)
	now := time.Now()
	m := p.members[0]
	b.Run("session=none/run=seq", func(b *testing.B) {
		req := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
		b.ReportAllocs()
		for b.Loop() {
			if sv, err := p.openSession(req, now); sv != nil || err != nil {
				b.Fatal("a session without WithSession")
			}
		}
	})
	lookup := func(b *testing.B, req *http.Request) {
		sv, err := p.openSession(req, now)
		if sv == nil || err != nil {
			b.Error("no session:", err) // not Fatal: RunParallel's goroutines call it too
			return
		}
		p.bindSession(sv, m)
	}
	b.Run("session=live/run=seq", func(b *testing.B) {
		req := sessionRequest("user-12345")
		lookup(b, req) // bound once: the benchmark measures a live session
		b.ReportAllocs()
		for b.Loop() {
			lookup(b, req)
		}
	})
	b.Run("session=live/run=parallel", func(b *testing.B) {
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := sessionRequest("user-" + strconv.FormatInt(next.Add(1), 10))
			lookup(b, req)
			for pb.Next() {
				lookup(b, req)
			}
		})
	})
}
