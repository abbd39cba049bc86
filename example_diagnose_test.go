package proxyauth_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func ExampleDiagnose() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	// The proxy URL carries a stale password.
	u, err := url.Parse(proxy.URL)
	if err != nil {
		log.Fatal(err)
	}
	u.User = url.UserPassword("alice", "old-password")
	tr, err := proxyauth.New(proxyauth.Config{Proxies: []string{u.String()}})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()

	resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
	if err == nil {
		resp.Body.Close()
	}
	d := proxyauth.Diagnose(resp, err)
	fmt.Println(d.Layer)
	fmt.Println(d.Summary)
	fmt.Println("first hint:", d.Hints[0])
	fmt.Println("proxy has userinfo:", d.Proxy.User != nil)
	// Output:
	// proxy-auth
	// the proxy rejected the credentials (407, offers Basic realm="proxyauthtest")
	// first hint: check the username and password
	// proxy has userinfo: false
}
