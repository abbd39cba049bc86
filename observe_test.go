package proxyauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// captured collects every log record and hook payload of a run.
type captured struct {
	mu     sync.Mutex
	logs   bytes.Buffer
	events []string
	counts map[string]int
}

func (c *captured) add(name string, v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, fmt.Sprintf("%s %+v %#v", name, v, v))
	c.counts[name]++
}

func (c *captured) config(cfg proxyauth.Config) proxyauth.Config {
	cfg.Logger = slog.New(slog.NewJSONHandler(&lockedWriter{c: c}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Hooks = proxyauth.Hooks{
		AttemptStart:         func(i proxyauth.AttemptInfo) { c.add("attempt-start", i) },
		AttemptEnd:           func(i proxyauth.AttemptInfo) { c.add("attempt-end", i) },
		Challenge:            func(i proxyauth.ChallengeInfo) { c.add("challenge", i) },
		CredentialsRefreshed: func(i proxyauth.RefreshInfo) { c.add("refresh", i) },
		Failover:             func(i proxyauth.FailoverInfo) { c.add("failover", i) },
		ProxyStateChanged:    func(i proxyauth.ProxyStateInfo) { c.add("state", i) },
	}
	return cfg
}

type lockedWriter struct{ c *captured }

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	return w.c.logs.Write(p)
}

// TestObservabilityNeverShowsSecrets runs wrong, then refreshed, Basic and
// Digest credentials through a pool whose primary is dead, capturing all log
// output and hook payloads: they tell what happened and hold no secret.
func TestObservabilityNeverShowsSecrets(t *testing.T) {
	const (
		wrongPass = "wrong-hunter2-pass"
		rightPass = "right-hunter2-pass"
	)
	secrets := []string{wrongPass, rightPass,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + wrongPass)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + rightPass)),
		"Digest username", "response=\\\"", "response=\""}
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			for _, digest := range []bool{false, true} {
				c := &captured{counts: map[string]int{}}
				o := newOrigin(t, tt.tls, nil)
				p := newProxy(t, user, rightPass)
				if digest {
					p = newAuthProxy(t, digestWith("SHA-256"))
					p.SetCredentials(proxyauthtestCreds(user, rightPass))
				}
				var calls atomic.Int32
				cfg := c.config(proxyauth.Config{
					Proxies: []string{"http://" + closedAddr(t), p.URL},
					Base:    trusting(o.Certificate()),
					Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
						if calls.Add(1) == 1 {
							return proxyauth.Credentials{Username: user, Password: wrongPass}, nil
						}
						return proxyauth.Credentials{Username: user, Password: rightPass}, nil
					},
				})
				cl, _ := poolClient(t, cfg, nil)
				for i := 0; i < 2; i++ {
					_, _, err := get(cl, o.URL)
					require.NoError(t, err)
				}
				c.mu.Lock()
				all := c.logs.String() + strings.Join(c.events, "\n")
				counts := c.counts
				c.mu.Unlock()
				for _, s := range secrets {
					assert.NotContains(t, all, s, "digest=%v", digest)
				}
				assert.NotContains(t, strings.ToLower(all), "proxy-authorization")
				assert.Positive(t, counts["attempt-start"])
				assert.Equal(t, counts["attempt-start"], counts["attempt-end"])
				assert.Positive(t, counts["challenge"])
				assert.Equal(t, 2, counts["refresh"], "one call to start, one refresh")
				assert.Equal(t, 1, counts["failover"], "away from the dead primary once")
				assert.Equal(t, 1, counts["state"], "the primary ejected")
				logs := c.logs.String()
				assert.Contains(t, logs, `"msg":"proxyauth: failing over"`)
				assert.Contains(t, logs, `"level":"WARN"`)
				assert.Contains(t, logs, `"rejected":true`)
				assert.Contains(t, logs, `"phase":"`+map[bool]string{true: "CONNECT", false: "plain"}[tt.tls]+`"`)
			}
		})
	}
}

func TestLoggerLevels(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cl := client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Logger: logger})
	_, _, err := get(cl, o.URL)
	require.NoError(t, err)
	assert.Empty(t, buf.String(), "a success logs only at Debug")
	_, err = client(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}, Logger: logger}).Get(o.URL)
	require.Error(t, err)
	assert.Contains(t, buf.String(), "proxy asked for credentials")
	assert.Contains(t, buf.String(), "outcome=proxy-auth")
	assert.NotContains(t, buf.String(), "wrong")
}
