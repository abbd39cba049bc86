package proxyauth_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// noWait is a retryablehttp.Backoff that does not wait, so that tests
// retry at once.
func noWait(time.Duration, time.Duration, int, *http.Response) time.Duration { return 0 }

// newRetryClient returns NewRetryClient(cfg) with no wait between
// attempts, its Transport closed when the test ends.
func newRetryClient(t *testing.T, cfg proxyauth.Config) *retryablehttp.Client {
	t.Helper()
	rc, err := proxyauth.NewRetryClient(cfg)
	if err != nil {
		t.Fatalf("NewRetryClient: %v", err)
	}
	t.Cleanup(func() { rc.HTTPClient.Transport.(*proxyauth.Transport).Close() })
	rc.Backoff = noWait
	return rc
}

// roundTrip sends one request with an http.Client over a new Transport for
// cfg and returns the response, its body closed, and the error, as
// retryablehttp's CheckRetry would see them.
func roundTrip(t *testing.T, cfg proxyauth.Config, method, target string) (*http.Response, error) {
	t.Helper()
	tr, err := proxyauth.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	req, err := http.NewRequest(method, target, strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if resp != nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return resp, err
}

// connects counts the CONNECT requests a proxy received.
func connects(reqs []proxyauthtest.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Method == http.MethodConnect {
			n++
		}
	}
	return n
}

// TestRetryAuthFailureNotResent is the reason RetryPolicy exists: with
// retryablehttp's DefaultRetryPolicy a proxy that refuses the credentials
// gets them again on every retry; with RetryPolicy the Transport's own
// bounded refresh is the only retry.
func TestRetryAuthFailureNotResent(t *testing.T) {
	o := newOrigin(t, true, nil)
	var calls atomic.Int32
	rotating := func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		n := calls.Add(1)
		return proxyauth.Credentials{Username: user, Password: fmt.Sprintf("wrong-%d", n)}, nil
	}
	cases := []struct {
		name         string
		defaultRetry bool // retryablehttp.DefaultRetryPolicy instead of RetryPolicy
		credentials  proxyauth.CredentialsFunc
		wantConnects int
		wantAttempts int // of the *ProxyAuthError
	}{
		{"DefaultRetryPolicy/fixed credentials", true, nil, 5, 1},
		{"DefaultRetryPolicy/CredentialsFunc", true, rotating, 15, 3},
		{"RetryPolicy/fixed credentials", false, nil, 1, 1},
		{"RetryPolicy/CredentialsFunc", false, rotating, 3, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newProxy(t, user, secret)
			calls.Store(0)
			cfg := proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}, Base: trusting(o.Certificate())}
			if c.credentials != nil {
				cfg.Proxies, cfg.Credentials = []string{p.URL}, c.credentials
			}
			rc := newRetryClient(t, cfg)
			if c.defaultRetry {
				rc.CheckRetry = retryablehttp.DefaultRetryPolicy
			}
			resp, err := rc.Get(o.URL)
			if err == nil {
				resp.Body.Close()
				t.Fatal("Get succeeded with wrong credentials")
			}
			if got := connects(p.Requests()); got != c.wantConnects {
				t.Errorf("proxy received %d CONNECTs, want %d", got, c.wantConnects)
			}
			var pae *proxyauth.ProxyAuthError
			if !errors.As(err, &pae) {
				t.Fatalf("errors.As(%v, *ProxyAuthError) = false, want true", err)
			}
			if pae.StatusCode != http.StatusProxyAuthRequired || !pae.Tunnel || !pae.Rejected || pae.Attempts != c.wantAttempts {
				t.Errorf("ProxyAuthError = {Status %d, Tunnel %t, Rejected %t, Attempts %d}, want {407, true, true, %d}",
					pae.StatusCode, pae.Tunnel, pae.Rejected, pae.Attempts, c.wantAttempts)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error %q shows a password", err)
			}
		})
	}
}

// TestRetryCheckErrorReplacesCause shows why RetryPolicy answers (false,
// nil) for an authentication failure: retryablehttp returns an error from
// CheckRetry instead of the request's error, which would hide the typed
// error from errors.As.
func TestRetryCheckErrorReplacesCause(t *testing.T) {
	o := newOrigin(t, true, nil)
	p := newProxy(t, user, secret)
	cfg := proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}, Base: trusting(o.Certificate())}
	stop := errors.New("not retried")
	for _, c := range []struct {
		name   string
		policy retryablehttp.CheckRetry
		wantAs bool
	}{
		{"RetryPolicy", proxyauth.RetryPolicy, true},
		{"policy returning an error", func(context.Context, *http.Response, error) (bool, error) { return false, stop }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := newRetryClient(t, cfg)
			rc.CheckRetry = c.policy
			_, err := rc.Get(o.URL)
			if err == nil {
				t.Fatal("Get succeeded with wrong credentials")
			}
			var pae *proxyauth.ProxyAuthError
			if got := errors.As(err, &pae); got != c.wantAs {
				t.Errorf("errors.As(%v, *ProxyAuthError) = %t, want %t", err, got, c.wantAs)
			}
			if got := errors.Is(err, proxyauth.ErrProxyAuthRequired); got != c.wantAs {
				t.Errorf("errors.Is(%v, ErrProxyAuthRequired) = %t, want %t", err, got, c.wantAs)
			}
		})
	}
}

// input is what a CheckRetry is called with.
type input struct {
	ctx  context.Context
	resp *http.Response
	err  error
}

func TestRetryPolicy(t *testing.T) {
	plain := newOrigin(t, false, nil)
	secure := newOrigin(t, true, nil)
	trust := func() *http.Transport { return trusting(secure.Certificate()) }
	get := func(t *testing.T, cfg proxyauth.Config, method, target string) input {
		resp, err := roundTrip(t, cfg, method, target)
		return input{context.Background(), resp, err}
	}
	respond := func(method string, code int, header http.Header) input {
		req := httptest.NewRequest(method, "http://origin.test/", nil)
		return input{context.Background(), &http.Response{StatusCode: code, Header: header, Request: req}, nil}
	}
	fail := func(method string, err error) input {
		return input{context.Background(), nil, &url.Error{Op: method, URL: "http://origin.test/", Err: err}}
	}
	proxyURL, _ := url.Parse("http://proxy.test:3128")
	pe := func(op string, code int, err error) *proxyauth.ProxyError {
		return &proxyauth.ProxyError{Proxy: proxyURL, Op: op, StatusCode: code, Err: err}
	}
	pae := &proxyauth.ProxyAuthError{Proxy: proxyURL, StatusCode: 407, Tunnel: true, Attempts: 1, Rejected: true}
	certErr := &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name    string
		in      func(t *testing.T) input
		want    bool
		wantErr func(error) bool // nil: the error must be nil
		backoff time.Duration    // when not 0, DefaultBackoff(1ms, 10ms, 0, resp) must return it
	}{
		// Errors that a Transport returned through an http.Client.
		{name: "real/ProxyAuthError", want: false, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, "wrong")}, Base: trust()}, "GET", secure.URL)
		}},
		{name: "real/ProxyError dial", want: true, in: func(t *testing.T) input {
			return get(t, proxyauth.Config{Proxies: []string{"http://" + closedAddr(t)}}, "POST", secure.URL)
		}},
		{name: "real/ProxyError connect 503", want: true, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			p.SetConnectStatus(http.StatusServiceUnavailable)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trust()}, "POST", secure.URL)
		}},
		{name: "real/ProxyError connect 403", want: false, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			p.SetConnectStatus(http.StatusForbidden)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trust()}, "GET", secure.URL)
		}},
		{name: "real/ProxyError forward GET", want: true, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			p.SetHangUp(true)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, "GET", plain.URL)
		}},
		{name: "real/ProxyError forward POST", want: false, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			p.SetHangUp(true)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, "POST", plain.URL)
		}},
		{name: "real/PoolError of auth errors", want: false, in: func(t *testing.T) input {
			p1, p2 := newProxy(t, user, secret), newProxy(t, user, secret)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p1.URL, user, "wrong"), withUser(t, p2.URL, user, "wrong")},
				Base: trust()}, "GET", secure.URL)
		}},
		{name: "real/PoolError of dial errors", want: true, in: func(t *testing.T) input {
			return get(t, proxyauth.Config{Proxies: []string{"http://" + closedAddr(t), "http://" + closedAddr(t)}}, "POST", secure.URL)
		}},
		{name: "real/untrusted origin certificate", want: false, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, "GET", secure.URL)
		}},
		{name: "real/200", want: false, in: func(t *testing.T) input {
			p := newProxy(t, user, secret)
			return get(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trust()}, "GET", secure.URL)
		}},

		// Constructed errors.
		{name: "ProxyAuthError", want: false, in: func(*testing.T) input { return fail("Get", pae) }},
		{name: "AuthError from a response handler", want: false, in: func(*testing.T) input {
			in := respond("GET", http.StatusUnauthorized, nil)
			in.err = &proxyauth.AuthError{StatusCode: http.StatusUnauthorized}
			return in
		}},
		{name: "ProxyError dial POST", want: true, in: func(*testing.T) input { return fail("Post", pe("dial", 0, syscall.ECONNREFUSED)) }},
		{name: "ProxyError tls", want: true, in: func(*testing.T) input { return fail("Post", pe("tls", 0, io.EOF)) }},
		{name: "ProxyError tls certificate", want: false, in: func(*testing.T) input { return fail("Get", pe("tls", 0, certErr)) }},
		{name: "ProxyError socks", want: true, in: func(*testing.T) input { return fail("Post", pe("socks", 0, io.EOF)) }},
		{name: "ProxyError connect unanswered", want: true, in: func(*testing.T) input { return fail("Post", pe("connect", 0, io.EOF)) }},
		{name: "ProxyError connect 502", want: true, in: func(*testing.T) input { return fail("Post", pe("connect", 502, nil)) }},
		{name: "ProxyError connect 429", want: true, in: func(*testing.T) input { return fail("Post", pe("connect", 429, nil)) }},
		{name: "ProxyError connect 403", want: false, in: func(*testing.T) input { return fail("Get", pe("connect", 403, nil)) }},
		{name: "ProxyError forward GET", want: true, in: func(*testing.T) input { return fail("Get", pe("forward", 0, io.EOF)) }},
		{name: "ProxyError forward DELETE", want: true, in: func(*testing.T) input { return fail("Delete", pe("forward", 0, io.EOF)) }},
		{name: "ProxyError forward POST", want: false, in: func(*testing.T) input { return fail("Post", pe("forward", 0, io.EOF)) }},
		{name: "ProxyError forward PATCH", want: false, in: func(*testing.T) input { return fail("Patch", pe("forward", 0, io.EOF)) }},
		{name: "ProxyError forward, method unknown", want: false, in: func(*testing.T) input {
			return input{context.Background(), nil, pe("forward", 0, io.EOF)}
		}},
		{name: "ProxyError forward 503 from a response handler", want: true, in: func(*testing.T) input {
			in := respond("POST", 503, nil)
			in.err = pe("forward", 503, nil)
			return in
		}},
		{name: "ProxyError forward 502 POST from a response handler", want: false, in: func(*testing.T) input {
			in := respond("POST", 502, nil)
			in.err = pe("forward", 502, nil)
			return in
		}},
		{name: "PoolError of auth errors", want: false, in: func(*testing.T) input {
			return fail("Get", &proxyauth.PoolError{Errors: []error{pae, pae}})
		}},
		{name: "PoolError of auth and dial errors", want: true, in: func(*testing.T) input {
			return fail("Post", &proxyauth.PoolError{Errors: []error{pae, pe("dial", 0, syscall.ECONNREFUSED)}})
		}},
		{name: "PoolError of auth and forward errors, POST", want: false, in: func(*testing.T) input {
			return fail("Post", &proxyauth.PoolError{Errors: []error{pae, pe("forward", 0, io.EOF)}})
		}},
		{name: "PoolError of untyped errors", want: false, in: func(*testing.T) input {
			return fail("Get", &proxyauth.PoolError{Errors: []error{io.EOF, io.EOF}})
		}},
		{name: "StatusError 503 from a response handler", want: true, in: func(*testing.T) input {
			in := respond("POST", 503, nil)
			in.err = &proxyauth.StatusError{StatusCode: 503}
			return in
		}},
		{name: "context canceled", want: false, wantErr: func(err error) bool { return errors.Is(err, context.Canceled) },
			in: func(*testing.T) input {
				in := fail("Get", pe("dial", 0, syscall.ECONNREFUSED))
				in.ctx = canceled
				return in
			}},
		{name: "untyped connection error", want: true, in: func(*testing.T) input { return fail("Post", syscall.ECONNRESET) }},
		{name: "untyped certificate error", want: false, in: func(*testing.T) input { return fail("Get", certErr) }},
		{name: "wrapped certificate error", want: false, in: func(*testing.T) input {
			return fail("Get", fmt.Errorf("handshake: %w", certErr))
		}},
		{name: "too many redirects", want: false, in: func(*testing.T) input {
			return fail("Get", errors.New("stopped after 10 redirects"))
		}},

		// Responses.
		{name: "429", want: true, wantErr: isStatusError(429), in: func(*testing.T) input { return respond("POST", 429, nil) }},
		{name: "503 with Retry-After", want: true, wantErr: isStatusError(503), backoff: 7 * time.Second,
			in: func(*testing.T) input { return respond("POST", 503, http.Header{"Retry-After": {"7"}}) }},
		{name: "503 made by the proxy", want: true, wantErr: isProxyError(503), in: func(*testing.T) input {
			return respond("GET", 503, http.Header{"X-Squid-Error": {"ERR_CONNECT_FAIL 111"}})
		}},
		{name: "502 GET", want: true, wantErr: isStatusError(502), in: func(*testing.T) input { return respond("GET", 502, nil) }},
		{name: "502 POST", want: false, in: func(*testing.T) input { return respond("POST", 502, nil) }},
		{name: "502 POST with Idempotency-Key", want: true, wantErr: isStatusError(502), in: func(*testing.T) input {
			in := respond("POST", 502, nil)
			in.resp.Request.Header.Set("Idempotency-Key", "k1")
			return in
		}},
		{name: "502 GET after a POST's redirect", want: false, in: func(*testing.T) input {
			in := respond("GET", 502, nil)
			post := httptest.NewRequest("POST", "http://origin.test/form", nil)
			in.resp.Request.Response = &http.Response{StatusCode: http.StatusSeeOther, Request: post}
			return in
		}},
		{name: "504 PUT", want: true, wantErr: isStatusError(504), in: func(*testing.T) input { return respond("PUT", 504, nil) }},
		{name: "504 PATCH", want: false, in: func(*testing.T) input { return respond("PATCH", 504, nil) }},
		{name: "500 GET", want: false, in: func(*testing.T) input { return respond("GET", 500, nil) }},
		{name: "200", want: false, in: func(*testing.T) input { return respond("GET", 200, nil) }},
		{name: "401", want: false, in: func(*testing.T) input { return respond("GET", 401, nil) }},
		{name: "404", want: false, in: func(*testing.T) input { return respond("GET", 404, nil) }},
		{name: "407", want: false, in: func(*testing.T) input {
			return respond("GET", 407, http.Header{"Proxy-Authenticate": {"Basic"}})
		}},
		{name: "no response and no error", want: false, in: func(*testing.T) input { return input{context.Background(), nil, nil} }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in(t)
			got, err := proxyauth.RetryPolicy(in.ctx, in.resp, in.err)
			if got != c.want {
				t.Errorf("RetryPolicy(%v, %v) = %t, want %t", status(in.resp), in.err, got, c.want)
			}
			switch {
			case c.wantErr == nil && err != nil:
				t.Errorf("RetryPolicy(%v, %v) error = %v, want nil", status(in.resp), in.err, err)
			case c.wantErr != nil && !c.wantErr(err):
				t.Errorf("RetryPolicy(%v, %v) error = %v, not the one wanted", status(in.resp), in.err, err)
			}
			if c.backoff != 0 {
				if d := retryablehttp.DefaultBackoff(time.Millisecond, 10*time.Millisecond, 0, in.resp); d != c.backoff {
					t.Errorf("DefaultBackoff(1ms, 10ms, 0, %v) = %v, want %v", status(in.resp), d, c.backoff)
				}
			}
		})
	}
}

func status(resp *http.Response) string {
	if resp == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s %d", resp.Request.Method, resp.StatusCode)
}

func isStatusError(code int) func(error) bool {
	return func(err error) bool {
		var se *proxyauth.StatusError
		return errors.As(err, &se) && se.StatusCode == code
	}
}

func isProxyError(code int) func(error) bool {
	return func(err error) bool {
		var pe *proxyauth.ProxyError
		return errors.As(err, &pe) && pe.StatusCode == code
	}
}

// TestRetryPolicyRealErrorsAreTyped checks that the real inputs of
// TestRetryPolicy are what their names say, so that the table tests the
// rules and not an accident.
func TestRetryPolicyRealErrorsAreTyped(t *testing.T) {
	secure := newOrigin(t, true, nil)
	plain := newOrigin(t, false, nil)
	t.Run("forward", func(t *testing.T) {
		p := newProxy(t, user, secret)
		p.SetHangUp(true)
		_, err := roundTrip(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, "POST", plain.URL)
		var pe *proxyauth.ProxyError
		if !errors.As(err, &pe) || pe.Op != "forward" {
			t.Errorf("hang-up on a plain request: %v, want a *ProxyError with Op forward", err)
		}
		var ue *url.Error
		if !errors.As(err, &ue) || ue.Op != "Post" {
			t.Errorf("hang-up on a plain request: %#v, want a *url.Error with Op Post", err)
		}
	})
	t.Run("connect", func(t *testing.T) {
		p := newProxy(t, user, secret)
		p.SetConnectStatus(http.StatusForbidden)
		_, err := roundTrip(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)},
			Base: trusting(secure.Certificate())}, "GET", secure.URL)
		var pe *proxyauth.ProxyError
		if !errors.As(err, &pe) || pe.Op != "connect" || pe.StatusCode != http.StatusForbidden {
			t.Errorf("CONNECT refused: %v, want a *ProxyError with Op connect and status 403", err)
		}
	})
	t.Run("pool of auth errors", func(t *testing.T) {
		p1, p2 := newProxy(t, user, secret), newProxy(t, user, secret)
		_, err := roundTrip(t, proxyauth.Config{Proxies: []string{withUser(t, p1.URL, user, "wrong"), withUser(t, p2.URL, user, "wrong")},
			Base: trusting(secure.Certificate())}, "GET", secure.URL)
		var pool *proxyauth.PoolError
		if !errors.As(err, &pool) || len(pool.Errors) != 2 {
			t.Fatalf("two proxies refusing: %v, want a *PoolError of 2", err)
		}
		for i, cause := range pool.Errors {
			var pae *proxyauth.ProxyAuthError
			if !errors.As(cause, &pae) {
				t.Errorf("PoolError.Errors[%d] = %v, want a *ProxyAuthError", i, cause)
			}
		}
	})
	t.Run("pool of dial errors", func(t *testing.T) {
		_, err := roundTrip(t, proxyauth.Config{Proxies: []string{"http://" + closedAddr(t), "http://" + closedAddr(t)}}, "POST", secure.URL)
		var pool *proxyauth.PoolError
		if !errors.As(err, &pool) || len(pool.Errors) != 2 {
			t.Fatalf("two proxies unreachable: %v, want a *PoolError of 2", err)
		}
		for i, cause := range pool.Errors {
			var pe *proxyauth.ProxyError
			if !errors.As(cause, &pe) || pe.Op != "dial" {
				t.Errorf("PoolError.Errors[%d] = %v, want a *ProxyError with Op dial", i, cause)
			}
		}
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		p := newProxy(t, user, secret)
		_, err := roundTrip(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}, "GET", secure.URL)
		var cve *tls.CertificateVerificationError
		if !errors.As(err, &cve) {
			t.Errorf("untrusted origin: %v, want a *tls.CertificateVerificationError", err)
		}
		if retry, _ := retryablehttp.DefaultRetryPolicy(context.Background(), nil, err); retry {
			t.Errorf("DefaultRetryPolicy(%v) = true, want false", err)
		}
	})
}

// TestRetryFlakyProxy retries a CONNECT that the proxy refuses for now,
// end to end: the third attempt goes through.
func TestRetryFlakyProxy(t *testing.T) {
	o := newOrigin(t, true, nil)
	for _, c := range []struct {
		name         string
		status       int
		wantConnects int
		wantOK       bool
	}{
		{"503 twice", http.StatusServiceUnavailable, 3, true},
		{"403", http.StatusForbidden, 1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newProxy(t, user, secret)
			p.SetConnectStatus(c.status)
			rc := newRetryClient(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}, Base: trusting(o.Certificate())})
			rc.RequestLogHook = func(_ retryablehttp.Logger, _ *http.Request, attempt int) {
				if attempt == 2 {
					p.SetConnectStatus(0)
				}
			}
			resp, err := rc.Post(o.URL, "text/plain", []byte("payload"))
			if got := err == nil; got != c.wantOK {
				t.Fatalf("Post: %v, want success %t", err, c.wantOK)
			}
			if err == nil {
				resp.Body.Close()
			} else if !errors.Is(err, proxyauth.ErrProxyUnavailable) {
				t.Errorf("errors.Is(%v, ErrProxyUnavailable) = false, want true", err)
			}
			if got := connects(p.Requests()); got != c.wantConnects {
				t.Errorf("proxy received %d CONNECTs, want %d", got, c.wantConnects)
			}
		})
	}
}

// TestRetryGivingUpKeepsStatus checks that when the retries of a response
// run out, errors.As finds its status in retryablehttp's error.
func TestRetryGivingUpKeepsStatus(t *testing.T) {
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	p := newProxy(t, user, secret)
	rc := newRetryClient(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	rc.RetryMax = 2
	_, err := rc.Get(o.URL)
	if !isStatusError(http.StatusServiceUnavailable)(err) {
		t.Errorf("Get = %v, want an error holding a *StatusError with status 503", err)
	}
	if n := len(o.received()); n != 3 {
		t.Errorf("origin received %d requests, want 3", n)
	}
}

func TestNewRetryClientSettings(t *testing.T) {
	p := newProxy(t, user, secret)
	rc, err := proxyauth.NewRetryClient(proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.HTTPClient.Transport.(*proxyauth.Transport).Close()
	def := retryablehttp.NewClient()
	fn := func(f any) uintptr { return reflect.ValueOf(f).Pointer() }
	if fn(rc.CheckRetry) != fn(proxyauth.RetryPolicy) {
		t.Error("CheckRetry is not RetryPolicy")
	}
	if fn(rc.Backoff) != fn(retryablehttp.DefaultBackoff) {
		t.Error("Backoff is not DefaultBackoff")
	}
	if rc.RetryMax != def.RetryMax || rc.RetryWaitMin != def.RetryWaitMin || rc.RetryWaitMax != def.RetryWaitMax {
		t.Errorf("RetryMax, RetryWaitMin, RetryWaitMax = %d, %v, %v, want retryablehttp's %d, %v, %v",
			rc.RetryMax, rc.RetryWaitMin, rc.RetryWaitMax, def.RetryMax, def.RetryWaitMin, def.RetryWaitMax)
	}
	if _, ok := rc.HTTPClient.Transport.(*proxyauth.Transport); !ok {
		t.Errorf("HTTPClient.Transport is a %T, want a *proxyauth.Transport", rc.HTTPClient.Transport)
	}
}

func TestNewRetryClientConfigError(t *testing.T) {
	rc, err := proxyauth.NewRetryClient(proxyauth.Config{Proxies: []string{"ftp://proxy.test"}})
	var ce *proxyauth.ConfigError
	if rc != nil || !errors.As(err, &ce) {
		t.Errorf("NewRetryClient(ftp proxy) = %v, %v, want nil and a *ConfigError", rc, err)
	}
	_, direct := proxyauth.New(proxyauth.Config{Proxies: []string{"ftp://proxy.test"}})
	if err == nil || direct == nil || err.Error() != direct.Error() {
		t.Errorf("NewRetryClient error = %v, want New's %v", err, direct)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestNewRetryClientLogging(t *testing.T) {
	var hits atomic.Int32
	o := newOrigin(t, false, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "ok")
	})
	p := newProxy(t, user, secret)
	for _, c := range []struct {
		name string
		log  bool
	}{{"nil Logger", false}, {"slog Logger", true}} {
		t.Run(c.name, func(t *testing.T) {
			hits.Store(0)
			var buf lockedBuffer
			cfg := proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}}
			if c.log {
				cfg.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			rc := newRetryClient(t, cfg)
			if !c.log && rc.Logger != nil {
				t.Fatalf("Logger = %#v, want nil", rc.Logger)
			}
			if c.log && rc.Logger != any(cfg.Logger) {
				t.Fatalf("Logger = %#v, want cfg.Logger", rc.Logger)
			}
			resp, err := rc.Get(o.URL) // a nil *slog.Logger in Logger would panic here
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if hits.Load() != 2 {
				t.Errorf("origin hit %d times, want 2", hits.Load())
			}
			out := buf.String()
			for _, msg := range []string{`msg="performing request"`, `msg="retrying request"`} {
				if got := strings.Contains(out, msg); got != c.log {
					t.Errorf("log has %s: %t, want %t; log:\n%s", msg, got, c.log, out)
				}
			}
			if strings.Contains(out, secret) {
				t.Errorf("log shows the password:\n%s", out)
			}
		})
	}
}

func TestNewRetryClientCloseIdleConnections(t *testing.T) {
	o := newOrigin(t, false, nil)
	p := newProxy(t, user, secret)
	rc := newRetryClient(t, proxyauth.Config{Proxies: []string{withUser(t, p.URL, user, secret)}})
	reused := func() bool {
		t.Helper()
		var got atomic.Bool
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { got.Store(info.Reused) },
		})
		req, err := retryablehttp.NewRequestWithContext(ctx, "GET", o.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := rc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return got.Load()
	}
	for i, want := range []bool{false, true} {
		if got := reused(); got != want {
			t.Errorf("request %d: GotConn Reused = %t, want %t", i+1, got, want)
		}
	}
	rc.HTTPClient.CloseIdleConnections()
	if reused() {
		t.Error("after HTTPClient.CloseIdleConnections: GotConn Reused = true, want false")
	}
}
