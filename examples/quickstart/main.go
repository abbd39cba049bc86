// Command quickstart shows proxyauth on an embedded authenticating proxy and
// two local origins, one plain and one TLS; it needs no setup and no network
// beyond loopback:
//
//	go run ./examples/quickstart
//
// It exits 0 when every step behaves as described, 1 otherwise.
package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/checkcmd"
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

	fmt.Println("\n4. proxycheck judges each proxy alone, from the network layer up: here the proxy above,")
	fmt.Println("   one that knows bob but not alice, and one that is not running.")
	if err := proxycheck(proxy.URL, secure); err != nil {
		return err
	}
	fmt.Println("\nquickstart: all steps behaved as described")
	return nil
}

// proxycheck runs the proxycheck command (cmd/proxycheck) on three
// proxies, with alice's password in $PROXYCHECK_PASSWORD as a person would
// give it.
func proxycheck(good string, secure *httptest.Server) error {
	bobs := proxyauthtest.NewProxy("bob", "bobs-password")
	defer bobs.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	stopped := "http://" + l.Addr().String()
	l.Close()
	// The command trusts the TLS origin's certificate through -cacert.
	dir, err := os.MkdirTemp("", "quickstart")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cacert := filepath.Join(dir, "origin.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: secure.Certificate().Raw})
	if err := os.WriteFile(cacert, pemBytes, 0o600); err != nil {
		return err
	}
	args := []string{"-user", "alice", "-timeout", "10s", "-cacert", cacert, "-target", secure.URL, good, bobs.URL, stopped}
	fmt.Printf("   $ PROXYCHECK_PASSWORD=xxxxx proxycheck %s\n", strings.Join(args, " "))
	var out bytes.Buffer
	code := checkcmd.Main(context.Background(), args, checkcmd.Env{
		Stdout: &out, Stderr: &out,
		Getenv: func(name string) string {
			if name == "PROXYCHECK_PASSWORD" {
				return "s3cret"
			}
			return ""
		},
	})
	for _, line := range strings.Split(strings.TrimRight(out.String(), "\n"), "\n") {
		fmt.Println("   " + line)
	}
	fmt.Printf("   exit status %d: at least one proxy failed\n", code)
	text := out.String()
	if code != checkcmd.ExitFailed || !strings.Contains(text, "1 ok, 2 failed") ||
		!strings.Contains(text, "rejected the credentials") || !strings.Contains(text, "refused the connection") {
		return fmt.Errorf("proxycheck exited %d with the output above; want 1, with alice refused by bob's proxy and the stopped one refusing connections", code)
	}
	if strings.Contains(text, "s3cret") {
		return errors.New("proxycheck printed the password")
	}
	return nil
}
