package proxyauth_test

// What a large pool costs before its first request: New's heap and time
// per proxy, and the pick of a request's proxy, which must not grow with
// the pool.

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
)

// manyProxies returns n distinct proxy URLs, each with a username and
// password, as a provider's list gives them. None is ever dialed.
func manyProxies(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "http://user-" + strconv.Itoa(i) + ":pass@10." + strconv.Itoa(i>>16&255) + "." +
			strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255) + ":3128"
	}
	return out
}

// heapOf returns the heap that the Transport make returns keeps alive:
// HeapAlloc after a collection, less what it was before.
func heapOf(tb testing.TB, make func() *proxyauth.Transport) uint64 {
	tb.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tr := make()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tr)
	tr.Close()
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// BenchmarkNew measures New with pools of 10,000 and 100,000 proxies: its
// time per proxy (ns/proxy, which must not grow with the pool) and the heap
// the Transport keeps per proxy (B/proxy).
func BenchmarkNew(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		proxies := manyProxies(n)
		cfg := proxyauth.Config{Proxies: proxies, Pool: proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin}}
		b.Run("proxies="+strconv.Itoa(n), func(b *testing.B) {
			mem := heapOf(b, func() *proxyauth.Transport {
				tr, err := proxyauth.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				return tr
			})
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				tr, err := proxyauth.New(cfg)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				tr.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/proxy")
			b.ReportMetric(float64(mem)/float64(n), "B/proxy")
		})
	}
}

// BenchmarkPick measures choosing the first proxy of a request, with each
// strategy, from 10 to 100,000 proxies: it must stay under 100 ns and flat.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		proxies := manyProxies(n)
		for _, s := range []proxyauth.Strategy{proxyauth.Ordered, proxyauth.RoundRobin, proxyauth.Random, proxyauth.StickyHost} {
			tr := newTransport(b, proxyauth.Config{Proxies: proxies, Pool: proxyauth.PoolConfig{Strategy: s}})
			req := httptest.NewRequest(http.MethodGet, "http://shop.example/", nil)
			b.Run("strategy="+s.String()+"/proxies="+strconv.Itoa(n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					proxyauth.Pick(tr, req)
				}
			})
		}
	}
}

// TestNewHeapPerProxy checks that a pool of 100,000 proxies costs its
// parsing alone, at most 300 bytes of heap per proxy, before any request.
func TestNewHeapPerProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a pool of 100,000 proxies")
	}
	const n = 100000
	cfg := proxyauth.Config{Proxies: manyProxies(n)}
	start := time.Now()
	mem := heapOf(t, func() *proxyauth.Transport {
		tr, err := proxyauth.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
	t.Logf("New with %d proxies: %.0f B/proxy (%v with the collections)", n, float64(mem)/n, time.Since(start))
	if per := float64(mem) / n; per > 300 {
		t.Errorf("New with %d proxies keeps %.0f bytes of heap per proxy, want at most 300", n, per)
	}
}

// BenchmarkHoldRoute measures what a request adds to the pick to reach its
// proxy's live route: holding it and letting it go (the request has read
// the clock already), from 10 to 100,000 proxies.
func BenchmarkHoldRoute(b *testing.B) {
	for _, n := range []int{10, 1000, 100000} {
		tr := newTransport(b, proxyauth.Config{Proxies: manyProxies(n)})
		now := time.Now()
		proxyauth.HoldRoute(tr, 0, now) // made once: the benchmark measures a live route
		b.Run("proxies="+strconv.Itoa(n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				proxyauth.HoldRoute(tr, 0, now)
			}
		})
	}
}
