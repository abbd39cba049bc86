package proxyauth_test

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func ExampleRetryPolicy() {
	// An origin that is busy twice, then answers.
	var hits atomic.Int32
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0") // DefaultBackoff waits as long as this asks
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello at last")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{proxyURL(proxy, "alice", "s3cret")}})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{Transport: tr}
	rc.CheckRetry = proxyauth.RetryPolicy
	rc.Logger = nil // retryablehttp logs to standard error by default
	rc.RetryWaitMin, rc.RetryWaitMax = time.Millisecond, 10*time.Millisecond
	rc.RequestLogHook = func(_ retryablehttp.Logger, r *http.Request, retry int) {
		fmt.Printf("attempt %d: %s %s\n", retry+1, r.Method, r.URL.Path)
	}
	rc.ResponseLogHook = func(_ retryablehttp.Logger, resp *http.Response) {
		fmt.Println("  answered", resp.Status)
	}

	resp, err := rc.Get(origin.URL + "/items")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	fmt.Println("requests the proxy forwarded:", len(proxy.Requests()))
	// Output:
	// attempt 1: GET /items
	//   answered 503 Service Unavailable
	// attempt 2: GET /items
	//   answered 503 Service Unavailable
	// attempt 3: GET /items
	//   answered 200 OK
	// hello at last
	// requests the proxy forwarded: 3
}

func ExampleNewRetryClient() {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	rc, err := proxyauth.NewRetryClient(proxyauth.Config{
		Proxies: []string{proxyURL(proxy, "alice", "an-old-password")},
		Base:    origin.Client().Transport.(*http.Transport), // trusts the test origin
	})
	if err != nil {
		log.Fatal(err)
	}
	defer rc.HTTPClient.Transport.(*proxyauth.Transport).Close()

	_, err = rc.Get(origin.URL)
	var pae *proxyauth.ProxyAuthError
	if errors.As(err, &pae) {
		fmt.Println("proxy answered", pae.StatusCode, "to CONNECT:", pae.Tunnel, "- credentials rejected:", pae.Rejected)
	}
	// Refused credentials are not a passing fault: they are not sent again.
	fmt.Println("CONNECTs the proxy received:", len(proxy.Requests()))
	// Output:
	// proxy answered 407 to CONNECT: true - credentials rejected: true
	// CONNECTs the proxy received: 1
}
