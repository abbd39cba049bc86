package proxyauth_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// The scenario of BenchmarkPrimaryDies.
const (
	// dieDelay is the one-way delay of each proxy's link: 20 ms a round
	// trip.
	dieDelay = 10 * time.Millisecond
	// dieProxyTimeout is Config.ProxyTimeout: the wait for a connection
	// to the dead primary without hedging, instead of the default 10 s.
	dieProxyTimeout = 2 * time.Second
	// dieWorkers send the requests, each one at a time.
	dieWorkers = 4
)

// latencyOutEnv names the environment variable that, when set, names the
// CSV file where BenchmarkPrimaryDies writes every request of its last run
// of each sub-benchmark: scripts/latencychart draws it.
const latencyOutEnv = "PROXYAUTH_LATENCY_OUT"

// dieRun is the last run of a sub-benchmark of BenchmarkPrimaryDies.
type dieRun struct {
	target, mode string // "https", "hedge=on"
	rows         []dieRow
}

// dieRow is one request of a BenchmarkPrimaryDies run.
type dieRow struct {
	seq            int
	start, latency time.Duration // start: since the run began
	proxy          string        // "primary", "secondary", or "" on failure
	primaryDead    bool          // when the request started
	err            error
}

// BenchmarkPrimaryDies sends b.N GETs from 4 workers through a pool of
// two proxyauthtest proxies, Ordered, each behind a relay of 20 ms round
// trip; before request b.N/3 starts (with b.N of at least 3), the
// primary's relay is killed: the connections it carried are closed and
// new ones are accepted and never answered, a host gone dark. With
// hedge=off (PoolConfig.HedgeAfter negative) a request that opens a
// connection to the dead primary waits for ProxyTimeout (2 s here) before
// it fails over; with hedge=on (HedgeAfter 100 ms) the secondary is tried
// in parallel after 100 ms. p50-ms, p99-ms and max-ms are the request
// latencies; slow-reqs counts the requests that took half ProxyTimeout or
// more; hedges is the pool's count of hedged connections. ns/op is the
// run's wall time per request. -benchtime 300x gives the run of
// BENCHMARKS.md; with PROXYAUTH_LATENCY_OUT=FILE every request of the
// last run of each sub-benchmark goes to FILE as CSV, which
// scripts/latencychart draws (scripts/hedgechart does both).
//
// Only https:// targets: for an http:// target the connection to a proxy
// is a TCP dial, which the dark host accepts, and the request's answer is
// then bounded by Base.ResponseHeaderTimeout, not by ProxyTimeout, and
// not raced by hedging.
func BenchmarkPrimaryDies(b *testing.B) {
	o := newBenchOrigins(b)
	const target = "https"
	var runs []dieRun
	for _, hedge := range []struct {
		name  string
		after time.Duration
	}{{"on", 100 * time.Millisecond}, {"off", -1}} {
		run := dieRun{target: target, mode: "hedge=" + hedge.name}
		b.Run("target="+target+"/"+run.mode, func(b *testing.B) {
			// The benchmark framework calls this for each b.N it
			// tries: keep the last.
			run.rows = primaryDies(b, o.url(target), o.base(), hedge.after)
		})
		if run.rows != nil {
			runs = append(runs, run)
		}
	}
	if path := os.Getenv(latencyOutEnv); path != "" {
		if err := writeLatencies(path, runs); err != nil {
			b.Fatal(err)
		}
	}
}

// primaryDies runs the scenario once, with b.N requests, and reports its
// metrics.
func primaryDies(b *testing.B, target string, base *http.Transport, hedgeAfter time.Duration) []dieRow {
	var relays [2]*testnet.Relay
	var proxies []string
	for i := range relays {
		p := proxyauthtest.NewProxy(user, secret)
		b.Cleanup(p.Close)
		relays[i] = testnet.NewRelay(b, p.Addr(), dieDelay)
		proxies = append(proxies, withUser(b, "http://"+relays[i].Addr, user, secret))
	}
	names := map[string]string{relays[0].Addr: "primary", relays[1].Addr: "secondary"}
	tr := newTransport(b, proxyauth.Config{
		Proxies:      proxies,
		Base:         base,
		ProxyTimeout: dieProxyTimeout,
		Pool:         proxyauth.PoolConfig{Strategy: proxyauth.Ordered, HedgeAfter: hedgeAfter},
	})
	cl := &http.Client{Transport: tr}
	// The primary passes its probe and each worker has its tunnel.
	warm(b, cl, target, dieWorkers)

	killAt := -1
	if b.N >= 3 {
		killAt = b.N / 3
	}
	rows := make([]dieRow, b.N)
	var (
		mu   sync.Mutex // orders the kill before every later request
		next int
		dead bool
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	t0 := time.Now()
	for range dieWorkers {
		wg.Go(func() {
			for {
				mu.Lock()
				seq := next
				next++
				if seq == killAt {
					relays[0].Kill()
					dead = true
				}
				primaryDead := dead
				mu.Unlock()
				if seq >= b.N {
					return
				}
				rows[seq] = dieGet(cl, target, t0, names)
				rows[seq].seq, rows[seq].primaryDead = seq, primaryDead
			}
		})
	}
	wg.Wait()
	b.StopTimer()

	lat := make([]time.Duration, 0, len(rows))
	var failed []dieRow
	slow := 0
	for _, r := range rows {
		lat = append(lat, r.latency)
		if r.err != nil {
			failed = append(failed, r)
		}
		if r.latency >= dieProxyTimeout/2 {
			slow++
		}
	}
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	var hedges uint64
	for _, st := range tr.Pool().Stats() {
		hedges += st.Hedges
	}
	b.ReportMetric(float64(hedges), "hedges")
	b.ReportMetric(float64(slow), "slow-reqs")
	if len(failed) > 0 {
		b.Errorf("%d of %d requests failed; the first, request %d: %v", len(failed), b.N, failed[0].seq, failed[0].err)
	}
	return rows
}

// dieGet sends one GET with a generous deadline of its own and says how
// it went.
func dieGet(cl *http.Client, target string, t0 time.Time, names map[string]string) dieRow {
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	start := time.Now()
	r := dieRow{start: start.Sub(t0)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		r.err = err
		return r
	}
	resp, err := cl.Do(req)
	if err == nil {
		if u := proxyauth.ProxyOf(resp); u != nil {
			r.proxy = names[u.Host]
		}
		err = drainOK(resp)
	}
	r.latency, r.err = time.Since(start), err
	return r
}

// drainOK reads and closes resp's body; anything but a 200 is an error.
func drainOK(resp *http.Response) error {
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// writeLatencies writes the runs to path as CSV, in the order of the
// sub-benchmarks, each run's requests in order:
//
//	target,mode,seq,start_ms,latency_ms,proxy,primary,error
//
// mode is "hedge=on" or "hedge=off"; proxy is the proxy that served the
// request ("" if it failed); primary is "up" or "dead" when the request
// started; error is the failure's Kind, "" for none.
func writeLatencies(path string, runs []dieRun) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"target", "mode", "seq", "start_ms", "latency_ms", "proxy", "primary", "error"})
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64) }
	for _, run := range runs {
		for _, r := range run.rows {
			primary, kind := "up", ""
			if r.primaryDead {
				primary = "dead"
			}
			if r.err != nil {
				kind = proxyauth.Classify(nil, r.err).String()
			}
			w.Write([]string{run.target, run.mode, strconv.Itoa(r.seq), ms(r.start), ms(r.latency), r.proxy, primary, kind})
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
