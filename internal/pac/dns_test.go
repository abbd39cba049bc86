package pac

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"
)

const resolveScript = `function FindProxyForURL(url, host) { return String(dnsResolve(host)); }`

func TestDNSCache(t *testing.T) {
	r := testResolver()
	clk := &clock{t: summer}
	s := mustCompile(t, resolveScript, Options{Resolver: r, Now: clk.Now, DNSCacheTTL: time.Minute})
	find := func(host string) string {
		t.Helper()
		got, err := s.FindProxy(context.Background(), "", host)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	for i := 0; i < 3; i++ {
		if got := find("www.example.com"); got != "93.184.216.34" {
			t.Fatalf("dnsResolve = %q", got)
		}
		if got := find("nosuch.example"); got != "null" {
			t.Fatalf("dnsResolve(nosuch) = %q", got)
		}
	}
	if a, b := r.count("www.example.com"), r.count("nosuch.example"); a != 1 || b != 1 {
		t.Errorf("lookups within the TTL: %d and %d, want 1 each (failures cached too)", a, b)
	}
	clk.Add(time.Minute)
	find("www.example.com")
	find("nosuch.example")
	if a, b := r.count("www.example.com"), r.count("nosuch.example"); a != 2 || b != 2 {
		t.Errorf("lookups after the TTL: %d and %d, want 2 each", a, b)
	}
	// IP literals and names that are not DNS names are never looked up.
	for _, h := range []string{"10.1.1.1", "::1", "[::1]", "bad name", "a..b", ""} {
		find(h)
		if n := r.count(h); n != 0 {
			t.Errorf("%q was looked up %d times", h, n)
		}
	}
	if got := find("\u00e9.example"); got != "null" || r.count("xn--9ca.example") != 1 {
		t.Errorf("an IDN name: %q, looked up as punycode %d times", got, r.count("xn--9ca.example"))
	}
}

func TestDNSCacheDisabled(t *testing.T) {
	r := testResolver()
	s := mustCompile(t, resolveScript, Options{Resolver: r, DNSCacheTTL: -1})
	for i := 0; i < 3; i++ {
		if _, err := s.FindProxy(context.Background(), "", "www.example.com"); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.count("www.example.com"); n != 3 {
		t.Errorf("lookups with the cache off: %d, want 3", n)
	}
}

func TestDNSCacheBound(t *testing.T) {
	d := newDNSCache(withDefaults(Options{}))
	for i := 0; i < maxDNSEntries+100; i++ {
		d.store(string(rune('a'+i%26))+string(rune(i)), nil)
	}
	if n := len(d.entries); n > maxDNSEntries {
		t.Errorf("%d entries, want at most %d", n, maxDNSEntries)
	}
}

// A lookup is bounded by LookupTimeout and does not count against
// CallTimeout; once LookupBudget is spent, lookups fail at once.
func TestLookupBounds(t *testing.T) {
	r := testResolver()
	for _, h := range []string{"slow1.example", "slow2.example", "slow3.example", "slow4.example"} {
		r.block[h] = make(chan struct{}) // never closed: each lookup times out
	}
	s := mustCompile(t, `function FindProxyForURL(url, host) {
		var n = 0;
		if (dnsResolve("slow1.example") === null) n++;
		if (dnsResolve("slow2.example") === null) n++;
		if (dnsResolve("slow3.example") === null) n++;
		if (dnsResolve("slow4.example") === null) n++;
		return "PROXY n" + n + ":1";
	}`, Options{Resolver: r, CallTimeout: 200 * time.Millisecond, LookupTimeout: 600 * time.Millisecond, LookupBudget: 1500 * time.Millisecond})
	start := time.Now()
	got, err := s.FindProxy(context.Background(), "", "")
	if err != nil || got != "PROXY n4:1" {
		t.Fatalf("FindProxy = %q, %v; want PROXY n4:1 (lookups time out, the call does not)", got, err)
	}
	if d := time.Since(start); d < 1500*time.Millisecond || d > generous {
		t.Errorf("took %v, want about the lookup budget (1.5s)", d)
	}
	asked := r.count("slow1.example") + r.count("slow2.example") + r.count("slow3.example") + r.count("slow4.example")
	if asked != 3 {
		t.Errorf("%d lookups started, want 3 (600+600+300ms of the 1.5s budget)", asked)
	}
}

func TestLookupCanceled(t *testing.T) {
	r := testResolver()
	r.block["slow.example"] = make(chan struct{})
	called := make(chan struct{})
	s := mustCompile(t, resolveScript, Options{Resolver: &signalResolver{r, called}, LookupTimeout: time.Hour, LookupBudget: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-called
		cancel()
	}()
	_, err := s.FindProxy(ctx, "", "slow.example")
	if e := asError(t, err); e.Kind != KindCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled during a lookup: %v", err)
	}
}

// signalResolver closes called at its first lookup.
type signalResolver struct {
	*fakeResolver
	called chan struct{}
}

func (r *signalResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	select {
	case <-r.called:
	default:
		close(r.called)
	}
	return r.fakeResolver.LookupIPAddr(ctx, host)
}

// Concurrent calls that need the same name share one lookup.
func TestLookupShared(t *testing.T) {
	r := testResolver()
	gate := make(chan struct{})
	r.block["www.example.com"] = gate
	called := make(chan struct{})
	s := mustCompile(t, resolveScript, Options{Resolver: &signalResolver{r, called}})
	var wg sync.WaitGroup
	results := make(chan string, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, _ := s.FindProxy(context.Background(), "", "www.example.com")
			results <- got
		}()
	}
	<-called
	close(gate)
	wg.Wait()
	close(results)
	for got := range results {
		if got != "93.184.216.34" {
			t.Errorf("a caller got %q", got)
		}
	}
	if n := r.count("www.example.com"); n != 1 {
		t.Errorf("%d lookups, want 1", n)
	}
}

func TestLookupsPerCallBound(t *testing.T) {
	names := map[string][]string{}
	for i := 0; i < 100; i++ {
		names["n"+strconv.Itoa(i)+".example"] = []string{"192.0.2.1"}
	}
	r := newFakeResolver(names)
	s := mustCompile(t, `function FindProxyForURL(url, host) {
		var ok = 0;
		for (var i = 0; i < 100; i++) if (dnsResolve("n" + i + ".example")) ok++;
		return "PROXY ok" + ok + ":1";
	}`, Options{Resolver: r})
	got, err := s.FindProxy(context.Background(), "", "")
	if err != nil || got != "PROXY ok64:1" {
		t.Errorf("FindProxy = %q, %v; want 64 names resolved", got, err)
	}
	total := 0
	for n := range names {
		total += r.count(n)
	}
	if total != maxLookupsPerCall {
		t.Errorf("%d lookups, want %d", total, maxLookupsPerCall)
	}
}
