package interop_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// TestSquidSoak sends a mix of GETs and POSTs from 16 goroutines through a
// pool of three squids while the credentials rotate twice and one squid is
// stopped for good: every GET succeeds, and every POST arrives whole exactly
// once or gets a typed error and arrives at most once. 1,000 requests; 5,000
// with PROXYAUTH_SOAK=full.
func TestSquidSoak(t *testing.T) {
	n := 1000
	if os.Getenv("PROXYAUTH_SOAK") == "full" {
		n = 5000
	}
	var (
		mu       sync.Mutex
		arrivals = map[string]int{}
		bodies   = map[string]string{}
	)
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			id := r.Header.Get("X-Request-Id")
			mu.Lock()
			arrivals[id]++
			bodies[id] = string(b)
			mu.Unlock()
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(origin.Close)

	users := map[string]string{user: "pass-0"}
	squids := []*Squid{
		StartSquid(t, SquidOptions{Basic: true, Users: users}),
		StartSquid(t, SquidOptions{Basic: true, Users: users}),
		StartSquid(t, SquidOptions{Basic: true, Users: users}),
	}
	var (
		vaultMu  sync.Mutex
		password = "pass-0"
	)
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies:      []string{squids[0].URL, squids[1].URL, squids[2].URL},
		ProxyTimeout: generous,
		Pool:         proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			vaultMu.Lock()
			defer vaultMu.Unlock()
			return proxyauth.Credentials{Username: user, Password: password}, nil
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	cl := &http.Client{Transport: tr}

	type result struct {
		id   string
		post bool
		err  error
	}
	jobs := make(chan int)
	results := make(chan result, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				id := fmt.Sprintf("squid-soak-%d", i)
				var req *http.Request
				post := i%2 == 1
				if post {
					req, _ = http.NewRequest(http.MethodPost, origin.URL+"/post", bytes.NewReader([]byte(strings.Repeat(id, 64))))
				} else {
					req, _ = http.NewRequest(http.MethodGet, origin.URL+"/get", nil)
				}
				req.Header.Set("X-Request-Id", id)
				resp, err := cl.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				results <- result{id, post, err}
			}
		})
	}
	collected := make(chan []result)
	go func() {
		var all []result
		for r := range results {
			all = append(all, r)
		}
		collected <- all
	}()
	stopped := -1
	for i := range n {
		switch i {
		case n / 4, 3 * n / 4: // rotate the password on every squid still running
			vaultMu.Lock()
			password = fmt.Sprintf("pass-%d", i)
			next := password
			vaultMu.Unlock()
			for j, s := range squids {
				if j != stopped {
					s.SetUsers(t, map[string]string{user: next})
				}
			}
		case n / 2: // one squid dies for good
			stopped = 1
			squids[stopped].Stop()
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(results)
	var getOK, postOK, postTyped int
	for _, r := range <-collected {
		mu.Lock()
		got, body := arrivals[r.id], bodies[r.id]
		mu.Unlock()
		switch {
		case r.err == nil && r.post:
			postOK++
			assert.Equal(t, 1, got, "%s: arrivals", r.id)
			assert.Equal(t, strings.Repeat(r.id, 64), body, "%s: body", r.id)
		case r.err == nil:
			getOK++
		case r.post:
			var pe *proxyauth.ProxyError
			var pool *proxyauth.PoolError
			if assert.True(t, errors.As(r.err, &pe) || errors.As(r.err, &pool), "%s: untyped %v", r.id, r.err) {
				postTyped++
			}
			assert.LessOrEqual(t, got, 1, "%s: arrived twice", r.id)
		default:
			t.Errorf("%s: GET failed: %v", r.id, r.err)
		}
	}
	count("squid")
	states := []string{}
	for _, s := range tr.Pool().Stats() {
		states = append(states, s.State.String())
	}
	msg := fmt.Sprintf("squid soak: %d requests, GET ok %d, POST ok %d, POST typed errors %d, pool %v, goroutines %d",
		n, getOK, postOK, postTyped, states, runtime.NumGoroutine())
	t.Log(msg)
	cases.Lock()
	cases.rows = append(cases.rows, msg)
	cases.Unlock()
	assert.Equal(t, n/2, getOK, "every GET succeeded")
}
