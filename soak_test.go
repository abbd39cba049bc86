package proxyauth_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// Size of TestSoak. By default it sends soakDefaultN requests within
// soakDefaultBound, so that `go test -race ./...` stays quick. With the
// environment variable PROXYAUTH_SOAK=full it sends soakFullN requests
// within soakFullBound; CI sets it in a separate run without -race:
//
//	PROXYAUTH_SOAK=full go test -count=1 -run TestSoak -v .
const (
	soakDefaultN     = 2_000
	soakDefaultBound = 2 * time.Minute
	soakFullN        = 100_000
	soakFullBound    = 10 * time.Minute

	soakWorkers  = 64
	soakIDHeader = "X-Request-Id"
)

// The four kinds of request of the soak, taken in turn.
const (
	soakGetHTTP = iota
	soakGetHTTPS
	soakPostHTTP
	soakPostHTTPS
)

var soakKindNames = [...]string{"GET http", "GET https", "POST http", "POST https"}

// Client-side outcomes of one request.
const (
	soakPending  uint8 = iota // not sent (the run was cut short)
	soakOK                    // 200 with the expected body
	soakTypedErr              // a typed error a POST may get
	soakBad                   // anything else: a violation, recorded in the log
)

func soakKind(i int) int     { return i % 4 }
func soakIsPost(i int) bool  { k := soakKind(i); return k == soakPostHTTP || k == soakPostHTTPS }
func soakID(i int) string    { return "soak-" + strconv.Itoa(i) }
func soakWant(i int) string  { return "ok " + soakID(i) }
func soakBodySize(i int) int { return 2048 + (i%5)*1024 } // 2 to 6 KiB

// soakBody is the body of POST i: its id repeated, so that a body cut,
// shifted or swapped with another request's shows in a byte comparison.
func soakBody(i int) []byte {
	unit := []byte(soakID(i) + ";")
	n := soakBodySize(i)
	return bytes.Repeat(unit, n/len(unit)+1)[:n]
}

// soakParseID returns the request number of id, if it is one of the run.
func soakParseID(id string, n int) (int, bool) {
	s, ok := strings.CutPrefix(id, "soak-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	return i, err == nil && i >= 0 && i < n
}

// soakLog collects violations: the count by category, and the first few of
// each in full.
type soakLog struct {
	mu    sync.Mutex
	n     int
	by    map[string]int
	first []string
}

func (l *soakLog) add(category, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.by == nil {
		l.by = map[string]int{}
	}
	l.by[category]++
	if l.by[category] <= 3 { // a few examples of each
		l.first = append(l.first, category+": "+fmt.Sprintf(format, args...))
	}
}

func (l *soakLog) categories() string {
	var out []string
	for _, c := range slices.Sorted(maps.Keys(l.by)) {
		out = append(out, fmt.Sprintf("%d × %s", l.by[c], c))
	}
	return strings.Join(out, "\n\t")
}

// soakOrigin is the handler of both origins: it checks every body byte for
// byte and counts the arrivals of each request id.
type soakOrigin struct {
	arrivals  []atomic.Int32 // by request number, complete requests only
	truncated atomic.Int64   // POST bodies cut short: the handler saw a read error
	bad       *soakLog
}

func (o *soakOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get(soakIDHeader)
	i, ok := soakParseID(id, len(o.arrivals))
	if !ok {
		o.bad.add("origin: unknown request id", "%s %s with id %q", r.Method, r.URL, id)
		http.Error(w, "unknown id", http.StatusBadRequest)
		return
	}
	if want := soakIsPost(i); want != (r.Method == http.MethodPost) {
		o.bad.add("origin: wrong method", "%s for %s", r.Method, id)
		http.Error(w, "wrong method", http.StatusBadRequest)
		return
	}
	got, err := io.ReadAll(r.Body)
	if err != nil {
		// Cut while arriving (a proxy killed while forwarding it): not
		// a request that arrived, and no handler would act on it.
		o.truncated.Add(1)
		return
	}
	var want []byte
	if r.Method == http.MethodPost {
		want = soakBody(i)
	}
	if !bytes.Equal(got, want) {
		o.bad.add("origin: "+r.Method+" body altered", "%s: got %d bytes, want the %d sent (first difference at %d)",
			id, len(got), len(want), soakFirstDiff(got, want))
		http.Error(w, "corrupt body", http.StatusBadRequest)
		return
	}
	o.arrivals[i].Add(1)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, soakWant(i))
}

func soakFirstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// soakStartOrigin starts an origin server for h, quiet about the broken
// connections the faults cause.
func soakStartOrigin(tlsOn bool, h http.Handler) *httptest.Server {
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsOn {
		s.StartTLS()
	} else {
		s.Start()
	}
	return s
}

// soakProxies is the set of three proxies and the faults done to them. Only
// the fault goroutine uses it while the load runs.
type soakProxies struct {
	t        *testing.T
	ctx      context.Context
	v        *vault
	addrs    []string
	cur      []*proxyauthtest.Proxy
	gen      []int // restarts of each proxy so far; 0 for the first instance
	served   []int // requests the current instance of each proxy has received
	down     int   // the proxy killed and not yet restarted; -1 for none
	password string

	start    time.Time
	timeline []string // what the faults did, when

	kills, waitedForReadmission, restarts, rotations, listenRetries int
	restartedUsed, restartedUnused                                  int // restarted instances that did and did not serve traffic
}

func newSoakProxies(ctx context.Context, t *testing.T, v *vault, n int) *soakProxies {
	s := &soakProxies{t: t, ctx: ctx, v: v, down: -1, password: v.password, start: time.Now(),
		gen: make([]int, n), served: make([]int, n)}
	for range n {
		p := proxyauthtest.NewUnstartedProxy(user, s.password)
		p.Start()
		t.Cleanup(p.Close)
		s.cur = append(s.cur, p)
		s.addrs = append(s.addrs, p.Addr())
	}
	return s
}

// account adds what the current instance of proxy i received to served,
// and forgets its records, so that the proxy's log does not grow with the
// run (the heap is measured).
func (s *soakProxies) account(i int) {
	s.served[i] += len(s.cur[i].Requests())
	s.cur[i].ResetRequests()
}

// kill closes proxy i.
func (s *soakProxies) kill(i int) {
	s.account(i)
	if s.gen[i] > 0 {
		if s.served[i] > 0 {
			s.restartedUsed++
		} else {
			s.restartedUnused++
		}
	}
	t0 := time.Since(s.start)
	s.cur[i].Close()
	s.down = i
	s.kills++
	s.note("kill proxy %d (%s) from %v", i, s.addrs[i], t0)
}

// restart starts a new proxy on the address of the one that is down, with
// the current password.
func (s *soakProxies) restart() {
	if s.down < 0 {
		return
	}
	i := s.down
	l, err := s.listen(s.addrs[i])
	if err != nil {
		// It stays down; the next restart event tries again.
		s.t.Errorf("restarting proxy %d on %s: %v", i, s.addrs[i], err)
		return
	}
	p := proxyauthtest.NewUnstartedProxy(user, s.password)
	p.Listener = l // Start closes the one NewUnstartedProxy made
	p.Start()
	s.t.Cleanup(p.Close)
	if p.Addr() != s.addrs[i] {
		s.t.Errorf("restarted proxy %d listens on %s, want %s", i, p.Addr(), s.addrs[i])
	}
	s.cur[i], s.served[i], s.down = p, 0, -1
	s.gen[i]++
	s.restarts++
	s.note("restarted proxy %d", i)
}

// listen listens on addr again. The port was released by Close, but an
// outgoing connection may have been given it as its local port meanwhile:
// then a few retries, with a short backoff, wait for it to go.
func (s *soakProxies) listen(addr string) (net.Listener, error) {
	for try := 1; ; try++ {
		l, err := net.Listen("tcp", addr)
		if err == nil || try == 20 {
			return l, err
		}
		s.listenRetries++
		select {
		case <-s.ctx.Done():
			return nil, s.ctx.Err()
		case <-time.After(time.Duration(try) * 10 * time.Millisecond):
		}
	}
}

// rotate gives every proxy and the vault a new password. The vault comes
// first: a proxy that refuses the old password then always finds the new
// one in the vault, whereas the other order would let a refresh fetch the
// old password again, which the Transport (rightly) never resends.
func (s *soakProxies) rotate(k int) {
	pw := "soak-pass-" + strconv.Itoa(k)
	s.v.mu.Lock()
	s.v.password = pw
	s.v.mu.Unlock()
	s.password = pw
	for _, p := range s.cur { // a proxy that is down is restarted with it
		p.SetCredentials(proxyauthtest.Credentials{Username: user, Password: pw})
	}
	s.rotations++
	s.note("rotated the password")
}

func (s *soakProxies) note(format string, args ...any) {
	s.timeline = append(s.timeline, fmt.Sprintf("%7.1fms ", float64(time.Since(s.start).Microseconds())/1000)+fmt.Sprintf(format, args...))
}

// closeAll closes the current instances, counting their traffic first.
func (s *soakProxies) closeAll() {
	for i, p := range s.cur {
		if i == s.down {
			continue
		}
		s.account(i)
		if s.gen[i] > 0 {
			if s.served[i] > 0 {
				s.restartedUsed++
			} else {
				s.restartedUnused++
			}
		}
		p.Close()
	}
}

func soakCountFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func soakHeapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestSoak sends N requests (soakDefaultN; soakFullN with
// PROXYAUTH_SOAK=full) from 64 goroutines through a round-robin pool of
// three authenticating proxies to a plain and a TLS origin, GETs and POSTs
// of a few KiB in turn, while faults driven by the count of completed
// requests hit the proxies: every N/20, one proxy is killed (Close) and,
// N/40 later, restarted on the same address (one at a time, as the clients
// see it: see the fault goroutine); every N/5 the password is rotated in
// the vault and on every proxy.
//
// Every GET must succeed: it is idempotent and replayable, so failover
// covers a proxy killed under it. Every POST must either reach the origin
// whole exactly once and get its 200, or get a typed error (*PoolError, or
// *ProxyError: Op "forward" for an http:// target, whatever Op the
// Transport gives a broken tunnel for an https:// one) with the origin
// having received it at most once; and when the error says that the
// origin cannot have seen the request (dial, tls, connect, socks, 407), it
// must not have. No POST arrives twice; every body that arrives is
// compared byte for byte. Afterwards no goroutine is left (goleak), the
// file descriptors are back to their count before, and the heap in use at
// the end is within twice that at a quarter of the run.
func TestSoak(t *testing.T) {
	n, bound := soakDefaultN, soakDefaultBound
	if os.Getenv("PROXYAUTH_SOAK") == "full" {
		n, bound = soakFullN, soakFullBound
	}
	if d, ok := t.Deadline(); ok && time.Until(d)-30*time.Second < bound {
		bound = max(time.Until(d)-30*time.Second, time.Second) // fail here, before go test's own timeout panics
	}
	var (
		kEvery   = max(n/20, 4) // kill one proxy; restart it half-way to the next kill
		rotEvery = max(n/5, 4)  // rotate the credentials
	)

	ignore := goleak.IgnoreCurrent()
	fdsBefore, goroutinesBefore := soakCountFDs(t), runtime.NumGoroutine()
	heapBefore := soakHeapInuse()
	start := time.Now()

	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()

	bad := &soakLog{}
	o := &soakOrigin{arrivals: make([]atomic.Int32, n), bad: bad}
	plain := soakStartOrigin(false, o)
	t.Cleanup(plain.Close)
	secure := soakStartOrigin(true, o)
	t.Cleanup(secure.Close)

	v := &vault{password: "soak-pass-0"}
	px := newSoakProxies(ctx, t, v, 3)
	var proxyURLs []string
	for _, p := range px.cur {
		proxyURLs = append(proxyURLs, p.URL)
	}

	var (
		ejected, readmitted, authFailed, failovers atomic.Int64
		postFailMu                                 sync.Mutex
		postFailovers                              = map[string][]string{} // the errors each POST failed over after, by target
	)
	base := trusting(secure.Certificate())
	// The proxies refuse or break connections when killed, never stall:
	// every timeout here is for peers that answer.
	base.ResponseHeaderTimeout = generous
	base.TLSHandshakeTimeout = generous
	base.MaxIdleConnsPerHost = soakWorkers // keep connections: no churn through ephemeral ports
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies:      proxyURLs,
		Credentials:  v.credentials,
		ProxyTimeout: generous,
		Base:         base,
		Pool: proxyauth.PoolConfig{
			Strategy:        proxyauth.RoundRobin,
			EjectionTime:    50 * time.Millisecond,
			MaxEjectionTime: 100 * time.Millisecond,
			ProbeInterval:   50 * time.Millisecond,
		},
		Hooks: proxyauth.Hooks{
			Failover: func(fi proxyauth.FailoverInfo) {
				failovers.Add(1)
				if strings.Contains(fi.Target, "/post?") {
					postFailMu.Lock()
					postFailovers[fi.Target] = append(postFailovers[fi.Target], soakErrKind(fi.Err)+": "+fi.Err.Error())
					postFailMu.Unlock()
				}
			},
			ProxyStateChanged: func(i proxyauth.ProxyStateInfo) {
				switch i.State {
				case proxyauth.StateEjected:
					ejected.Add(1)
				case proxyauth.StateHealthy:
					readmitted.Add(1)
				case proxyauth.StateAuthFailed:
					authFailed.Add(1)
				}
			},
		},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}

	// The faults, driven by the count of completed requests: each
	// completion wakes the fault goroutine, which compares the count with
	// its plan. One proxy at a time, as the clients see it: a proxy is
	// killed only once the previous victim is back in rotation (readmitted
	// after a probe) and every request in flight started after that, so
	// that no request ever meets two proxies out; the victim is restarted
	// kEvery/2 completions after its kill.
	var (
		done     atomic.Int64
		inflight = make([]atomic.Int64, soakWorkers) // when each worker's request in flight started (UnixNano), 0 if none
		wake     = make(chan struct{}, 1)
		loadDone = make(chan struct{})
		heap25   uint64
		faults   sync.WaitGroup
	)
	startedAfter := func(t0 int64) bool {
		for w := range inflight {
			if s := inflight[w].Load(); s != 0 && s <= t0 {
				return false
			}
		}
		return true
	}
	faults.Go(func() {
		nextKill, restartAt, nextRot, last, waiting := kEvery, 0, rotEvery/2+kEvery/4, -1, false
		var back int64 // when the last victim was seen back in rotation; 0 if not yet
		for {
			finished := false
			select {
			case <-wake:
			case <-loadDone:
				finished = true
			}
			d := int(done.Load())
			if px.down >= 0 && (d >= restartAt || finished) {
				px.restart()
			}
			if !finished && px.down < 0 && d >= nextKill && d+kEvery/2 < n {
				if last >= 0 && back == 0 && tr.Pool().Stats()[last].State == proxyauth.StateHealthy {
					back = time.Now().UnixNano()
				}
				if last < 0 || back != 0 && startedAfter(back) {
					last = px.kills % len(px.cur)
					px.kill(last)
					restartAt, nextKill, waiting, back = d+kEvery/2, d+kEvery, false, 0
				} else if !waiting {
					waiting = true
					px.waitedForReadmission++
				}
			}
			if !finished && d >= nextRot {
				px.rotate(d/rotEvery + 1)
				nextRot += rotEvery
			}
			if heap25 == 0 && d >= n/4 {
				heap25 = soakHeapInuse()
			}
			for i := range px.cur { // bound the proxies' request logs
				if i != px.down {
					px.account(i)
				}
			}
			if finished {
				return
			}
		}
	})

	outcome := make([]uint8, n)
	errs := make([]error, n) // the error of each request that got one
	var (
		errMu    sync.Mutex
		errKinds = map[string]int{} // typed errors of POSTs, by kind
		next     atomic.Int64
		workers  sync.WaitGroup
	)
	targets := [...]string{plain.URL, secure.URL, plain.URL, secure.URL}
	one := func(i int) uint8 {
		id, kind := soakID(i), soakKind(i)
		name := soakKindNames[kind]
		method, target, body := http.MethodGet, targets[kind]+"/get?id="+id, io.Reader(nil)
		if soakIsPost(i) {
			method, target, body = http.MethodPost, targets[kind]+"/post?id="+id, bytes.NewReader(soakBody(i))
		}
		req, err := http.NewRequestWithContext(ctx, method, target, body) // GetBody set for POSTs
		if err != nil {
			bad.add(name+": NewRequest", "%s: %v", id, err)
			return soakBad
		}
		req.Header.Set(soakIDHeader, id)
		t0 := time.Since(px.start)
		resp, err := client.Do(req)
		if err != nil {
			errs[i] = err
			id += fmt.Sprintf(" (%.1fms to %.1fms)", float64(t0.Microseconds())/1000, float64(time.Since(px.start).Microseconds())/1000)
			k := soakErrKind(err)
			switch {
			case ctx.Err() != nil:
				bad.add(name+": cut by the run's deadline", "%s: %v", id, err)
				return soakBad
			case !soakIsPost(i):
				bad.add(name+" failed: "+k, "%s: %v", id, err)
				return soakBad
			case !strings.HasPrefix(k, "PoolError") && !strings.HasPrefix(k, "ProxyError"):
				bad.add(name+" got an error that is not typed: "+k, "%s: %v", id, err)
				return soakBad
			}
			errMu.Lock()
			errKinds[name+": "+k]++
			errMu.Unlock()
			return soakTypedErr
		}
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case rerr != nil:
			bad.add(name+": response body cut", "%s: status %d: %v", id, resp.StatusCode, rerr)
			return soakBad
		case resp.StatusCode == http.StatusServiceUnavailable && bytes.HasPrefix(got, []byte("proxyauthtest: proxy closed")):
			bad.add(name+`: 503 "proxy closed" from a proxy being closed (proxyauthtest.Proxy.Close)`, "%s: %q", id, got)
			return soakBad
		case resp.StatusCode != http.StatusOK || string(got) != soakWant(i):
			bad.add(name+": unexpected response "+strconv.Itoa(resp.StatusCode), "%s: Via %q, body %.80q, want 200 %q",
				id, resp.Header.Get("Via"), got, soakWant(i))
			return soakBad
		}
		return soakOK
	}
	for w := range soakWorkers {
		workers.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				inflight[w].Store(time.Now().UnixNano())
				outcome[i] = one(i)
				inflight[w].Store(0)
				done.Add(1)
				select {
				case wake <- struct{}{}:
				default: // it is awake already
				}
			}
		})
	}
	workers.Wait()
	close(loadDone)
	faults.Wait()
	loadTime := time.Since(start)
	deadlineHit := ctx.Err() != nil
	heap100 := soakHeapInuse()
	stats := tr.Pool().Stats()

	// Shut everything down before counting arrivals: the handler of a
	// request whose client already failed may still be running.
	tr.Close()
	px.closeAll()
	plain.Close()
	secure.Close()

	var getOK, postOK, postErr, postErrArrived, pending, doubles int
	for i := range n {
		a, name, id := int(o.arrivals[i].Load()), soakKindNames[soakKind(i)], soakID(i)
		if a > 1 && soakIsPost(i) {
			doubles++
			postFailMu.Lock()
			via := postFailovers[targets[soakKind(i)]+"/post?id="+id]
			postFailMu.Unlock()
			bad.add(name+" arrived at the origin more than once", "%s arrived %d times; the client got %s; "+
				"the request failed over after %q", id, a, soakOutcome(outcome[i], errs[i]), via)
		}
		// (Only for POSTs: net/http itself resends a GET once when a reused
		// connection breaks, and reports only the second attempt's error.)
		if soakIsPost(i) && errs[i] != nil && a > 0 && soakPreOrigin(errs[i]) {
			bad.add(name+": the error says the origin cannot have seen the request, but it did",
				"%s arrived %d times; the client got %v", id, a, errs[i])
		}
		switch outcome[i] {
		case soakPending:
			pending++
		case soakOK:
			if !soakIsPost(i) {
				getOK++
				break
			}
			postOK++
			if a != 1 {
				bad.add(name+": 200 without exactly one arrival", "%s: the client got 200, the origin received it %d times", id, a)
			}
		case soakTypedErr:
			postErr++
			postErrArrived += a
		}
	}

	leakErr := goleak.Find(ignore) // retries until the goroutines of the closed connections are gone
	leaked := 0
	if leakErr != nil {
		leaked = max(strings.Count(leakErr.Error(), "Goroutine "), 1)
	}
	goroutinesAfter := runtime.NumGoroutine()
	// net/http's TCP-to-TCP copies (the proxies' tunnels) splice through
	// pipes that the runtime caches in a sync.Pool and closes only when a
	// GC drops them: collect them before counting.
	fdsAfter := soakCountFDs(t)
	for try := 0; try < 10 && fdsAfter > fdsBefore; try++ {
		runtime.GC()
		runtime.Gosched()
		fdsAfter = soakCountFDs(t)
	}
	socketsAfter := len(soakOpenFDs(true))

	// The report.
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(errKinds)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, errKinds[k]))
	}
	if len(kinds) == 0 {
		kinds = []string{"none"}
	}
	summary := fmt.Sprintf("soak: %d requests in %v, GET ok %d, POST ok %d, POST typed errors %d by kind [%s] "+
		"(of which reached the origin once %d), POST bodies cut on arrival %d, violations %d, "+
		"leaked goroutines %d (goroutines %d before, %d after), fds before/after %d/%d (sockets after %d), "+
		"heap in use before/25%%/100%% %.1f/%.1f/%.1f MiB",
		n, loadTime.Round(time.Millisecond), getOK, postOK, postErr, strings.Join(kinds, ", "),
		postErrArrived, o.truncated.Load(), bad.n,
		leaked, goroutinesBefore, goroutinesAfter, fdsBefore, fdsAfter, socketsAfter,
		soakMiB(heapBefore), soakMiB(heap25), soakMiB(heap100))
	faultLine := fmt.Sprintf("soak: faults: %d kills (%d waited for the previous victim's readmission), %d restarts on the same address "+
		"(%d listen retries), %d credential rotations (vault asked %d times); pool: %d ejections, %d readmissions "+
		"after a probe, %d auth-failed, %d failovers; restarted instances that served traffic again %d of %d",
		px.kills, px.waitedForReadmission, px.restarts, px.listenRetries, px.rotations, v.count(),
		ejected.Load(), readmitted.Load(), authFailed.Load(), failovers.Load(),
		px.restartedUsed, px.restartedUsed+px.restartedUnused)
	lines := []string{summary, faultLine}
	for _, st := range stats {
		lines = append(lines, fmt.Sprintf("soak: proxy %s: %s, %d requests, outcomes %v, statuses %v, ejections %d, last error %q",
			st.Proxy, st.State, st.Requests, st.Outcomes, st.Statuses, st.Ejections, st.LastError))
	}
	if bad.n > 0 {
		lines = append(lines, "soak: violations by category:\n\t"+bad.categories())
		if testing.Verbose() {
			lines = append(lines, "soak: faults, from the start of the run:\n\t"+strings.Join(px.timeline, "\n\t"))
		}
	}
	for _, l := range lines {
		t.Log(l)
		fmt.Println(l)
	}

	// The verdict.
	if deadlineHit {
		t.Errorf("the run hit its %v bound after %d of %d requests", bound, done.Load(), n)
	}
	if pending > 0 && !deadlineHit {
		t.Errorf("%d requests were never sent", pending)
	}
	if bad.n > 0 {
		t.Errorf("%d violations (%d POSTs arrived more than once); examples:\n\t%s",
			bad.n, doubles, strings.Join(bad.first, "\n\t"))
	}
	if leakErr != nil {
		t.Errorf("goroutines left after closing everything: %v", leakErr)
	}
	if fdsBefore >= 0 && fdsAfter > fdsBefore+3 {
		t.Errorf("file descriptors: %d before, %d after closing everything: %q", fdsBefore, fdsAfter, soakOpenFDs(false))
	}
	// Flat-ish: the proxies' request logs are reset as the run goes and
	// the per-request bookkeeping is allocated up front, so what would
	// grow from a quarter to the end of the run is the Transport's.
	if limit := 2*heap25 + 4<<20; heap100 > limit {
		t.Errorf("heap in use grew from %.1f MiB at 25%% of the run to %.1f MiB at the end (limit %.1f MiB)",
			soakMiB(heap25), soakMiB(heap100), soakMiB(limit))
	}
	if px.kills < 3 || px.restarts < px.kills || px.rotations == 0 { // each proxy killed at least once
		t.Errorf("faults did not run: %d kills, %d restarts, %d rotations", px.kills, px.restarts, px.rotations)
	}
	if px.restartedUsed == 0 {
		t.Errorf("no restarted proxy was readmitted and used again (%d restarted instances)", px.restartedUnused)
	}
}

// soakOutcome describes the client's outcome of a request.
func soakOutcome(o uint8, err error) string {
	switch {
	case err != nil:
		return soakErrKind(err) + ": " + err.Error()
	case o == soakOK:
		return "200"
	case o == soakPending:
		return "nothing: never sent"
	}
	return "a bad response"
}

// soakPreOrigin reports whether err says that the origin cannot have seen
// the request: every proxy tried failed before forwarding it.
func soakPreOrigin(err error) bool {
	var (
		poolErr *proxyauth.PoolError
		pe      *proxyauth.ProxyError
		pae     *proxyauth.ProxyAuthError
	)
	switch {
	case errors.As(err, &poolErr):
		for _, e := range poolErr.Errors {
			if !soakPreOrigin(e) {
				return false
			}
		}
		return len(poolErr.Errors) > 0
	case errors.As(err, &pe):
		switch pe.Op {
		case "dial", "tls", "connect", "socks":
			return true
		}
	case errors.As(err, &pae):
		return true
	}
	return false
}

// soakErrKind names the type of err that matters for the soak's rules.
func soakErrKind(err error) string {
	var (
		poolErr *proxyauth.PoolError
		pe      *proxyauth.ProxyError
		pae     *proxyauth.ProxyAuthError
		ue      *url.Error
	)
	switch {
	case errors.As(err, &poolErr):
		return "PoolError"
	case errors.As(err, &pe):
		return "ProxyError/" + pe.Op
	case errors.As(err, &pae):
		return "ProxyAuthError"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	case errors.As(err, &ue):
		return fmt.Sprintf("untyped %T", ue.Err)
	}
	return fmt.Sprintf("untyped %T", err)
}

func soakMiB(b uint64) float64 { return float64(b) / (1 << 20) }

// soakOpenFDs describes the file descriptors of the process (only its
// sockets, if socketsOnly), TCP sockets as local->remote address and state.
func soakOpenFDs(socketsOnly bool) []string {
	byInode := map[string]string{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			byInode[fs[9]] = soakHexAddr(fs[1]) + "->" + soakHexAddr(fs[2]) + " st" + fs[3]
		}
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	var out []string
	for _, e := range ents {
		l, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err != nil {
			continue
		}
		ino, isSocket := strings.CutPrefix(l, "socket:[")
		if socketsOnly && !isSocket {
			continue
		}
		if isSocket {
			ino = strings.TrimSuffix(ino, "]")
			if d, ok := byInode[ino]; ok {
				l = d
			}
		}
		out = append(out, l)
	}
	return out
}

func soakHexAddr(s string) string {
	host, port, ok := strings.Cut(s, ":")
	if !ok || len(host) != 8 {
		return s
	}
	b, _ := strconv.ParseUint(host, 16, 32)
	p, _ := strconv.ParseUint(port, 16, 16)
	return fmt.Sprintf("%d.%d.%d.%d:%d", byte(b), byte(b>>8), byte(b>>16), byte(b>>24), p)
}
