package interop_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// largePOSTTimeout bounds each POST of these tests. squid 5.7 answers a
// POST of 64 KiB or more with a keep-alive 407 before it has read the
// body, and then leaves that connection unread until its idle timeout, two
// minutes later: a resend on that connection hangs. A passing POST takes
// well under a second here.
const largePOSTTimeout = 30 * time.Second

// bodyOrigin records the SHA-256 of every request body it receives, by
// path, and answers with the hex digest.
type bodyOrigin struct {
	*origins
	mu     sync.Mutex
	bodies map[string][]string // path -> digests, in the order received
}

func newBodyOrigin(t *testing.T) *bodyOrigin {
	o := &bodyOrigin{bodies: map[string][]string{}}
	o.origins = newOrigins(t, func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		_, err := io.Copy(h, r.Body)
		sum := hex.EncodeToString(h.Sum(nil))
		if err != nil {
			sum = "read error: " + err.Error()
		}
		o.mu.Lock()
		o.bodies[r.URL.Path] = append(o.bodies[r.URL.Path], sum)
		o.mu.Unlock()
		io.WriteString(w, sum)
	})
	return o
}

// received returns the digests of the bodies received at path.
func (o *bodyOrigin) received(path string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.bodies[path]...)
}

// postRecord is what one POST through proxyauth showed: the status of each
// attempt at the proxy, and for each connection net/http handed it,
// whether it was reused.
type postRecord struct {
	mu       sync.Mutex
	statuses []int
	reused   []bool
}

func (p *postRecord) hooks() proxyauth.Hooks {
	return proxyauth.Hooks{AttemptEnd: func(i proxyauth.AttemptInfo) {
		p.mu.Lock()
		p.statuses = append(p.statuses, i.StatusCode)
		p.mu.Unlock()
	}}
}

func (p *postRecord) reset() {
	p.mu.Lock()
	p.statuses, p.reused = nil, nil
	p.mu.Unlock()
}

func (p *postRecord) snapshot() (statuses []int, reused []bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]int(nil), p.statuses...), append([]bool(nil), p.reused...)
}

// post sends body to target with cl, bounded by largePOSTTimeout, and
// checks what the caller sees: a 200 whose body is the origin's digest of
// what it received, which must be body's.
func (p *postRecord) post(t *testing.T, cl *http.Client, target string, body []byte, expect bool, squidLog func() string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), largePOSTTimeout)
	defer cancel()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		p.mu.Lock()
		p.reused = append(p.reused, i.Reused)
		p.mu.Unlock()
	}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/octet-stream")
	if expect {
		req.Header.Set("Expect", "100-continue")
	}
	start := time.Now()
	resp, err := cl.Do(req)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no answer to a POST of %d bytes within %v: a resend went on a connection squid no longer reads? (%v)\n%s",
			len(body), largePOSTTimeout, err, squidLog())
	}
	require.NoError(t, err, squidLog())
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s\n%s", got, squidLog())
	want := sha256.Sum256(body)
	assert.Equal(t, hex.EncodeToString(want[:]), string(got), "the origin's digest of the body it received")
	t.Logf("POST of %d bytes: %v", len(body), time.Since(start).Round(time.Millisecond))
}

func randomBody(t *testing.T, n int) []byte {
	b := make([]byte, n)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return b
}

// TestSquidLargePOST sends POSTs of 256 KiB and 1 MiB through squid, with
// Basic and with Digest, with credentials at once and after waiting for
// the challenge, with and without Expect: 100-continue, to http:// and
// https:// targets, each with a new Transport. Each must reach the origin
// exactly once, intact, and no attempt may go on a connection that was
// used before: the only connection used before is one whose request squid
// answered with a 407, and for a plain request with a body that is one
// squid may have stopped reading.
func TestSquidLargePOST(t *testing.T) {
	o := newBodyOrigin(t)
	squids := []struct {
		scheme string
		sq     *Squid
	}{
		{"Basic", StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{user: secret}})},
		{"Digest", StartSquid(t, SquidOptions{Digest: true, Users: map[string]string{user: secret}})},
	}
	for _, s := range squids {
		for _, wait := range []bool{false, true} {
			for _, size := range []int{256 << 10, 1 << 20} {
				for _, expect := range []bool{false, true} {
					for _, tt := range targets {
						name := fmt.Sprintf("%s/wait=%v/%dKiB/expect=%v/%s", s.scheme, wait, size>>10, expect, tt.name)
						t.Run(name, func(t *testing.T) {
							t.Parallel()
							count("squid")
							var rec postRecord
							base := o.base()
							if expect {
								// net/http sends Expect: 100-continue only
								// with a timeout to wait for the 100.
								base.ExpectContinueTimeout = 5 * time.Second
							}
							cl := newClient(t, proxyauth.Config{
								Proxies:          []string{withUser(t, s.sq.URL, user, secret)},
								Base:             base,
								WaitForChallenge: wait,
								Hooks:            rec.hooks(),
							})
							path := "/" + strings.ReplaceAll(name, "=", "-")
							body := randomBody(t, size)
							rec.post(t, cl, o.url(tt.tls)+path, body, expect, s.sq.Log)

							statuses, reused := rec.snapshot()
							digest := sha256.Sum256(body)
							assert.Equal(t, []string{hex.EncodeToString(digest[:])}, o.received(path),
								"the origin receives the body exactly once")
							// Basic at once needs no 407; anything else
							// is answered after one (Basic to a Digest
							// squid is refused).
							if wait || s.scheme == "Digest" {
								assert.Equal(t, []int{http.StatusProxyAuthRequired, http.StatusOK}, statuses,
									"statuses of the attempts at squid")
							} else {
								assert.Equal(t, []int{http.StatusOK}, statuses, "statuses of the attempts at squid")
							}
							for i, r := range reused {
								assert.False(t, r, "connection %d of %d was reused (statuses %v)", i+1, len(reused), statuses)
							}
						})
					}
				}
			}
		}
	}
}

// TestSquidDigestNonceExpiresBeforeLargePOST lets squid's Digest nonce
// expire between POSTs of 256 KiB on a kept-alive connection, with the
// default configuration. A request with the expired nonce is refused
// (squid 5.7 accepts the first one and refuses the next), and the resend
// with a new nonce must go on a new connection and reach the origin once.
func TestSquidDigestNonceExpiresBeforeLargePOST(t *testing.T) {
	t.Parallel()
	count("squid")
	o := newBodyOrigin(t)
	const lifetime = time.Second
	sq := StartSquid(t, SquidOptions{Digest: true, DigestNonceMaxDuration: lifetime, Users: map[string]string{user: secret}})
	var rec postRecord
	cl := newClient(t, proxyauth.Config{Proxies: []string{withUser(t, sq.URL, user, secret)}, Base: o.base(), Hooks: rec.hooks()})

	// The session: Basic at once is refused, Digest accepted.
	rec.post(t, cl, o.plain.URL+"/first", randomBody(t, 256<<10), false, sq.Log)
	statuses, _ := rec.snapshot()
	require.Equal(t, []int{http.StatusProxyAuthRequired, http.StatusOK}, statuses)
	issued := time.Now() // the nonce in use was issued before this

	// squid has no clock to inject: this waits for its clock to pass the
	// nonce's lifetime, counted in whole seconds (see
	// SquidOptions.DigestNonceMaxDuration). It synchronises with nothing.
	wait := time.NewTimer(time.Until(issued.Add(2*lifetime + 100*time.Millisecond)))
	<-wait.C

	resent := 0
	for i := range 3 {
		rec.reset()
		path := fmt.Sprintf("/after-expiry-%d", i)
		body := randomBody(t, 256<<10)
		rec.post(t, cl, o.plain.URL+path, body, false, sq.Log)
		statuses, reused := rec.snapshot()
		digest := sha256.Sum256(body)
		assert.Equal(t, []string{hex.EncodeToString(digest[:])}, o.received(path), "the origin receives the body exactly once")
		require.NotEmpty(t, statuses)
		require.Len(t, reused, len(statuses), "one connection per attempt")
		if len(statuses) == 1 {
			require.Equal(t, []int{http.StatusOK}, statuses)
			continue
		}
		resent++
		require.Equal(t, []int{http.StatusProxyAuthRequired, http.StatusOK}, statuses, "statuses of the attempts at squid")
		assert.True(t, reused[0], "the refused POST went on the kept-alive connection")
		assert.False(t, reused[1], "the resend after the 407 went on the connection squid answered it on")
	}
	assert.NotZero(t, resent, "no POST after the nonce's expiry was refused: the case tests nothing\n%s", sq.Log())
}
