// Command quickstart shows proxyauth on an embedded authenticating proxy and
// two local origins, one plain and one TLS; it needs no setup and no network
// beyond loopback:
//
//	go run ./examples/quickstart
//
// It exits 0 when every step behaves as described, 1 otherwise.
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func main() {
	log.SetFlags(0)
	if err := run(); err != nil {
		log.Println("quickstart failed:", err)
		os.Exit(1)
	}
}

func run() error {
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/private" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		fmt.Fprintf(w, "hello from the %s origin", scheme)
	})
	plain := httptest.NewServer(handler)
	defer plain.Close()
	secure := httptest.NewTLSServer(handler)
	defer secure.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()
	fmt.Println("proxy  ", proxy.URL, "(wants Basic credentials alice:s3cret)")
	fmt.Println("origins", plain.URL, "and", secure.URL)

	// secure.Client() trusts the TLS origin's certificate; Wrap keeps its
	// settings and adds the proxy.
	newClient := func(proxyURL string) (*http.Client, error) {
		return proxyauth.Wrap(secure.Client(), proxyauth.Config{Proxies: []string{proxyURL}})
	}

	fmt.Println("\n1. No credentials: the proxy answers 407, for both kinds of target.")
	noCreds, err := newClient(proxy.URL)
	if err != nil {
		return err
	}
	defer noCreds.CloseIdleConnections()
	for _, target := range []string{plain.URL, secure.URL} {
		_, err := noCreds.Get(target)
		var pae *proxyauth.ProxyAuthError
		if !errors.As(err, &pae) {
			return fmt.Errorf("GET %s: got %v, want a *proxyauth.ProxyAuthError", target, err)
		}
		fmt.Printf("   GET %-26s -> *ProxyAuthError: status %d, tunnel %t, challenges %v\n",
			target, pae.StatusCode, pae.Tunnel, pae.Challenges)
		fmt.Printf("   %-30s    %s\n", "", pae)
	}

	fmt.Println("\n2. With credentials: the proxy lets both through.")
	u, err := url.Parse(proxy.URL)
	if err != nil {
		return err
	}
	u.User = url.UserPassword("alice", "s3cret")
	withCreds, err := newClient(u.String())
	if err != nil {
		return err
	}
	defer withCreds.CloseIdleConnections()
	proxy.ResetRequests() // forget step 1's requests: list only this step's below
	for _, target := range []string{plain.URL, secure.URL} {
		resp, err := withCreds.Get(target)
		if err != nil {
			return fmt.Errorf("GET %s: %w", target, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s, %v", target, resp.Status, err)
		}
		fmt.Printf("   GET %-26s -> %s: %q\n", target, resp.Status, body)
	}
	seen := proxy.Requests()
	for _, r := range seen {
		fmt.Printf("   the proxy saw %-7s %-26s authorized %t\n", r.Method, r.Target, r.Authorized)
	}
	if len(seen) != 2 || !seen[0].Authorized || !seen[1].Authorized {
		return fmt.Errorf("the proxy saw %d requests in step 2, want 2, both authorized", len(seen))
	}

	fmt.Println("\n3. The origin's own 401 is a response, and Classify tells it from the proxy's.")
	resp, err := withCreds.Get(secure.URL + "/private")
	if err != nil {
		return err
	}
	resp.Body.Close()
	kind := proxyauth.Classify(resp, nil)
	if kind != proxyauth.KindOriginAuth {
		return fmt.Errorf("proxyauth.Classify = %v, want %v", kind, proxyauth.KindOriginAuth)
	}
	fmt.Printf("   GET %s/private -> %s; Classify: %s\n", secure.URL, resp.Status, kind)
	fmt.Printf("   CheckResponse: %v\n", proxyauth.CheckResponse(resp))
	fmt.Println("\nquickstart: all steps behaved as described")
	return nil
}
