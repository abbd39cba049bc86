// Command retryable shows go-retryablehttp with proxyauth.RetryPolicy against
// an embedded authenticating proxy that misbehaves on cue, and a local TLS
// origin; it needs no setup and no network beyond loopback:
//
//	go run ./examples/retryable
//
// It shows three things: a CONNECT the proxy refuses for now (503) is
// retried until it goes through; a forwarded request the proxy hangs up on
// is retried for GET but not for POST, which the origin may have acted on;
// and credentials the proxy refuses are not sent again, where
// retryablehttp's DefaultRetryPolicy would send them on every retry. The
// proxy recovers when a RequestLogHook sees the third attempt start, so the
// run is the same every time. It exits 0 when every step behaves as
// described, 1 otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func main() {
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Println("retryable failed:", err)
		os.Exit(1)
	}
}

func run() error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the origin")
	})
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	plain := httptest.NewServer(handler)
	defer plain.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()
	fmt.Println("proxy  ", proxy.URL, "(wants Basic credentials alice:s3cret)")
	fmt.Println("origins", secure.URL, "and", plain.URL)

	// newClient returns a retrying client through the proxy with the given
	// password, with waits of milliseconds instead of seconds, that prints
	// each attempt and RetryPolicy's verdict on it. heal, if not nil, is
	// called when the third attempt starts.
	newClient := func(password string, heal func()) (*retryablehttp.Client, error) {
		u, err := url.Parse(proxy.URL)
		if err != nil {
			return nil, err
		}
		u.User = url.UserPassword("alice", password)
		rc, err := proxyauth.NewRetryClient(proxyauth.Config{
			Proxies: []string{u.String()},
			Base:    secure.Client().Transport.(*http.Transport), // trusts the TLS origin
		})
		if err != nil {
			return nil, err
		}
		rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, 5*time.Millisecond
		rc.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, retry int) {
			if retry == 2 && heal != nil {
				heal()
			}
			fmt.Printf("   attempt %d: %s to the %s origin\n", retry+1, r.Method, r.URL.Scheme)
		}
		rc.CheckRetry = verbose(rc.CheckRetry)
		return rc, nil
	}
	closeClient := func(rc *retryablehttp.Client) { rc.HTTPClient.Transport.(*proxyauth.Transport).Close() }

	fmt.Println("\n1. The proxy refuses the CONNECT with 503 twice, then recovers: retried until it goes through.")
	proxy.SetConnectStatus(http.StatusServiceUnavailable)
	rc, err := newClient("s3cret", func() { proxy.SetConnectStatus(0) })
	if err != nil {
		return err
	}
	defer closeClient(rc)
	resp, err := rc.Post(secure.URL, "text/plain", []byte("an order"))
	if err != nil {
		return fmt.Errorf("POST through a flaky proxy: %w", err)
	}
	resp.Body.Close()
	fmt.Println("   ->", resp.Status, "(the POST is safe to resend: the origin saw nothing until the tunnel opened)")
	if n := count(proxy, http.MethodConnect); n != 3 {
		return fmt.Errorf("the proxy received %d CONNECTs, want 3", n)
	}

	fmt.Println("\n2. The proxy hangs up on a forwarded http:// request: GET is retried, POST is not.")
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		proxy.ResetRequests()
		proxy.SetHangUp(true)
		rc, err := newClient("s3cret", func() { proxy.SetHangUp(false) })
		if err != nil {
			return err
		}
		defer closeClient(rc)
		req, err := retryablehttp.NewRequest(method, plain.URL, nil)
		if err != nil {
			return err
		}
		resp, err := rc.Do(req)
		proxy.SetHangUp(false)
		switch {
		case method == http.MethodGet && err != nil:
			return fmt.Errorf("GET through a proxy that hangs up twice: %w", err)
		case method == http.MethodGet:
			resp.Body.Close()
			fmt.Println("   ->", resp.Status)
		case err == nil:
			resp.Body.Close()
			return errors.New("POST through a proxy that hangs up: retried, want one attempt")
		case !errors.Is(err, proxyauth.ErrProxyUnavailable):
			return fmt.Errorf("POST through a proxy that hangs up: %v, want a *proxyauth.ProxyError", err)
		default:
			fmt.Println("   -> *ProxyError: the origin may have received the POST, so it is not sent twice")
		}
	}

	fmt.Println("\n3. Wrong credentials: how many CONNECTs does the proxy receive?")
	for _, c := range []struct {
		name   string
		policy retryablehttp.CheckRetry
		want   int
	}{
		{"retryablehttp.DefaultRetryPolicy", retryablehttp.DefaultRetryPolicy, 5},
		{"proxyauth.RetryPolicy", proxyauth.RetryPolicy, 1},
	} {
		proxy.ResetRequests()
		rc, err := newClient("an-old-password", nil)
		if err != nil {
			return err
		}
		defer closeClient(rc)
		rc.CheckRetry = c.policy
		rc.RequestLogHook = nil
		_, err = rc.Get(secure.URL)
		var pae *proxyauth.ProxyAuthError
		if !errors.As(err, &pae) {
			return fmt.Errorf("GET with wrong credentials (%s): %v, want a *proxyauth.ProxyAuthError", c.name, err)
		}
		n := count(proxy, http.MethodConnect)
		fmt.Printf("   %-33s %d CONNECT(s), then *ProxyAuthError (status %d)\n", c.name+":", n, pae.StatusCode)
		if n != c.want {
			return fmt.Errorf("%s: the proxy received %d CONNECTs, want %d", c.name, n, c.want)
		}
	}

	fmt.Println("\nretryable: all steps behaved as described")
	return nil
}

// verbose returns a CheckRetry that prints what policy decides about each
// attempt.
func verbose(policy retryablehttp.CheckRetry) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		retry, perr := policy(ctx, resp, err)
		var (
			pe  *proxyauth.ProxyError
			pae *proxyauth.ProxyAuthError
		)
		outcome := ""
		switch {
		case errors.As(err, &pe) && pe.StatusCode != 0:
			outcome = fmt.Sprintf("*ProxyError, op %s, status %d", pe.Op, pe.StatusCode)
		case errors.As(err, &pe):
			outcome = fmt.Sprintf("*ProxyError, op %s, no answer", pe.Op)
		case errors.As(err, &pae):
			outcome = fmt.Sprintf("*ProxyAuthError, status %d", pae.StatusCode)
		case err != nil:
			outcome = "error"
		default:
			outcome = resp.Status
		}
		fmt.Printf("      %s; retry: %t\n", outcome, retry)
		return retry, perr
	}
}

// count returns how many requests with method the proxy received.
func count(proxy *proxyauthtest.Proxy, method string) int {
	n := 0
	for _, r := range proxy.Requests() {
		if r.Method == method {
			n++
		}
	}
	return n
}
