package pac

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingScript counts its evaluations through alert and answers with the
// host, or throws for the host "fail".
func countingScript(t *testing.T, evals *atomic.Int32, o Options) *Script {
	t.Helper()
	o.Alert = func(string) { evals.Add(1) }
	return mustCompile(t, `function FindProxyForURL(url, host) {
		alert("eval");
		if (host == "fail") throw new Error("no");
		if (host == "slow") dnsResolve("slow.example");
		return "PROXY " + host + ":1";
	}`, o)
}

func TestCacheTTL(t *testing.T) {
	var evals atomic.Int32
	clk := &clock{t: summer}
	c := NewCache(countingScript(t, &evals, Options{}), CacheOptions{TTL: 10 * time.Second, Now: clk.Now})
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if got, err := c.FindProxy(ctx, "https://a/", "a"); got != "PROXY a:1" || err != nil {
			t.Fatalf("FindProxy = %q, %v", got, err)
		}
	}
	if n := evals.Load(); n != 1 {
		t.Errorf("%d evaluations within the TTL, want 1", n)
	}
	clk.Add(9 * time.Second)
	c.FindProxy(ctx, "https://a/", "a")
	if n := evals.Load(); n != 1 {
		t.Errorf("%d evaluations just before the TTL, want 1", n)
	}
	clk.Add(time.Second)
	c.FindProxy(ctx, "https://a/", "a")
	if n := evals.Load(); n != 2 {
		t.Errorf("%d evaluations at the TTL, want 2", n)
	}
	// The key is the exact arguments: another URL of the same host is
	// evaluated again.
	c.FindProxy(ctx, "https://a:8443/", "a")
	if n := evals.Load(); n != 3 {
		t.Errorf("%d evaluations after another URL, want 3", n)
	}
}

func TestCacheDefaults(t *testing.T) {
	c := NewCache(mustCompile(t, evalScript, Options{}), CacheOptions{})
	if c.ttl != 30*time.Second || c.max != 4096 || c.now == nil {
		t.Errorf("defaults: ttl %v, max %d", c.ttl, c.max)
	}
}

func TestCacheErrorsNotCached(t *testing.T) {
	var evals atomic.Int32
	c := NewCache(countingScript(t, &evals, Options{}), CacheOptions{})
	for i := 0; i < 2; i++ {
		_, err := c.FindProxy(context.Background(), "https://fail/", "fail")
		if e := asError(t, err); e.Kind != KindThrow {
			t.Fatalf("error %v", e)
		}
	}
	if n := evals.Load(); n != 2 {
		t.Errorf("%d evaluations of a failing script, want 2 (errors are not cached)", n)
	}
}

func TestCacheBound(t *testing.T) {
	var evals atomic.Int32
	clk := &clock{t: summer}
	c := NewCache(countingScript(t, &evals, Options{}), CacheOptions{MaxEntries: 3, TTL: time.Minute, Now: clk.Now})
	for i := 0; i < 10; i++ {
		h := "h" + strconv.Itoa(i)
		if _, err := c.FindProxy(context.Background(), "https://"+h+"/", h); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > 3 {
			t.Fatalf("%d entries after %d inserts, want at most 3", n, i+1)
		}
	}
	// Expired entries are the first to go.
	clk.Add(time.Hour)
	c.FindProxy(context.Background(), "https://x/", "x")
	if n := c.Len(); n != 1 {
		t.Errorf("%d entries after an insert with all others expired, want 1", n)
	}
}

// Concurrent callers of one key share one evaluation; a caller whose
// context ends stops waiting.
func TestCacheShared(t *testing.T) {
	var evals atomic.Int32
	r := testResolver()
	gate := make(chan struct{})
	r.block["slow.example"] = gate
	called := make(chan struct{})
	c := NewCache(countingScript(t, &evals, Options{Resolver: &signalResolver{r, called}}), CacheOptions{})

	ctx, cancel := context.WithCancel(context.Background())
	canceled := make(chan error, 1)
	go func() {
		_, err := c.FindProxy(ctx, "https://slow/", "slow")
		canceled <- err
	}()
	<-called
	cancel()
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Errorf("a canceled waiter: %v, want context.Canceled", err)
	}

	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := c.FindProxy(context.Background(), "https://slow/", "slow"); got != "PROXY slow:1" || err != nil {
				t.Errorf("FindProxy = %q, %v", got, err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	if n := evals.Load(); n != 1 {
		t.Errorf("%d evaluations for 9 callers of one key, want 1", n)
	}
}

func TestCacheConcurrent(t *testing.T) {
	s := mustCompile(t, corporatePAC, Options{Resolver: testResolver()})
	c := NewCache(s, CacheOptions{MaxEntries: 4})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				for _, k := range corporateCases {
					if got, err := c.FindProxy(context.Background(), k.url, k.host); got != k.want || err != nil {
						t.Errorf("FindProxy(%s) = %q, %v", k.url, got, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
