package proxyauth_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// A corporate PAC script: intranet hosts directly, the rest through the
// proxy, with DIRECT as the last resort. ProxiesFor shows the list each
// URL gets, which is what to look at when a URL goes where it should not.
func ExampleTransport_ProxiesFor() {
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()
	script := `function FindProxyForURL(url, host) {
		if (isPlainHostName(host) || dnsDomainIs(host, ".corp.example")) return "DIRECT";
		return "PROXY ` + proxy.Addr() + `; DIRECT";
	}`
	pacServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
		fmt.Fprint(w, script)
	}))
	defer pacServer.Close()

	tr, err := proxyauth.New(proxyauth.Config{
		PAC: pacServer.URL + "/proxy.pac",
		// One function for every proxy the script names; r.Proxy says which.
		Credentials: func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			return proxyauth.Credentials{Username: "alice", Password: "s3cret"}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close() // stops the script's refresh
	for _, target := range []string{"https://www.example.com/", "http://wiki.corp.example/", "http://intranet/"} {
		req, _ := http.NewRequest(http.MethodGet, target, nil)
		list, err := tr.ProxiesFor(req)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(target, " ->")
		for _, p := range list {
			if p == nil {
				fmt.Print(" DIRECT")
			} else {
				fmt.Print(" proxy")
			}
		}
		fmt.Println()
	}
	// Output:
	// https://www.example.com/ -> proxy DIRECT
	// http://wiki.corp.example/ -> DIRECT
	// http://intranet/ -> DIRECT
}
