package pac

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeResolver answers from a table; no lookup leaves the process. A name
// in block waits until the channel is closed or ctx ends.
type fakeResolver struct {
	mu    sync.Mutex
	addrs map[string][]string
	block map[string]chan struct{}
	calls map[string]int
}

func newFakeResolver(addrs map[string][]string) *fakeResolver {
	return &fakeResolver{addrs: addrs, block: map[string]chan struct{}{}, calls: map[string]int{}}
}

func (r *fakeResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	r.mu.Lock()
	r.calls[host]++
	ch := r.block[host]
	list, ok := r.addrs[host]
	r.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []net.IPAddr
	for _, a := range list {
		out = append(out, net.IPAddr{IP: net.ParseIP(a)})
	}
	return out, nil
}

func (r *fakeResolver) count(host string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[host]
}

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testResolver is the table most tests use.
func testResolver() *fakeResolver {
	return newFakeResolver(map[string][]string{
		"www.example.com":  {"93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"},
		"intranet.corp":    {"10.1.2.3"},
		"v6only.example":   {"2001:db8::1", "2001:db8::2"},
		"proxy.corp":       {"10.0.0.8"},
		"mapped.example":   {"::ffff:192.0.2.7"},
		"xn--bcher-kva.ch": {"192.0.2.55"},
	})
}

// mustCompile compiles src or fails the test.
func mustCompile(t testing.TB, src string, o Options) *Script {
	t.Helper()
	s, err := Compile(src, o)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// asError returns err as *Error or fails the test.
func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *pac.Error", err, err)
	}
	return e
}

// evalScript evaluates the JavaScript expression given as the url argument
// and returns its type and JSON, e.g. `boolean:true`, `string:"1.2.3.4"`,
// `object:null`.
const evalScript = `function FindProxyForURL(url, host) {
	var r = eval(url);
	return typeof r + ":" + JSON.stringify(r);
}`

// generous bounds a test's wait for something that should take far less.
const generous = 30 * time.Second
