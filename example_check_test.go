package proxyauth_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// A crawler checks its proxies before it starts, and stops with the
// diagnosis of each when none works, rather than failing a million
// requests one by one.
func ExampleTransport_Check() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	// The first proxy gets a stale password; the second is not running.
	stale, err := url.Parse(proxy.URL)
	if err != nil {
		log.Fatal(err)
	}
	stale.User = url.UserPassword("alice", "old-password")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	stopped := "http://" + l.Addr().String()
	l.Close()

	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{stale.String(), stopped}})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results := tr.Check(ctx, origin.URL)
	working := 0
	for _, r := range results {
		if r.OK {
			working++
		}
	}
	if working == 0 {
		fmt.Println("no proxy works; not starting:")
		for i, r := range results {
			fmt.Printf("proxy %d: %s: %s\n", i+1, r.Diagnosis.Layer, r.Diagnosis.Summary)
			fmt.Printf("  hint: %s\n", r.Diagnosis.Hints[0])
		}
		return
	}
	fmt.Println("crawling through", working, "proxies")
	// Output:
	// no proxy works; not starting:
	// proxy 1: proxy-auth: the proxy rejected the credentials (407, after 2 attempts, offers Basic realm="proxyauthtest")
	//   hint: check the username and password
	// proxy 2: network: the proxy's address refused the connection
	//   hint: check the proxy's host and port
}
