package proxyauthtest_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func ExampleNewProxy() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the origin")
	}))
	defer origin.Close()

	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	fetch := func(proxyURL *url.URL) {
		tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.Status)
		if resp.StatusCode == http.StatusProxyAuthRequired {
			fmt.Println("  challenge:", resp.Header.Get("Proxy-Authenticate"))
		} else {
			fmt.Println("  body:", string(body))
		}
	}

	proxyURL, err := url.Parse(proxy.URL)
	if err != nil {
		log.Fatal(err)
	}
	fetch(proxyURL) // no credentials
	proxyURL.User = url.UserPassword("alice", "s3cret")
	fetch(proxyURL)

	for _, r := range proxy.Requests() {
		fmt.Printf("%s authorized=%v status=%d credentials sent=%d\n",
			r.Method, r.Authorized, r.Status, len(r.ProxyAuthorization))
	}
	// Output:
	// 407 Proxy Authentication Required
	//   challenge: Basic realm="proxyauthtest"
	// 200 OK
	//   body: hello from the origin
	// GET authorized=false status=407 credentials sent=0
	// GET authorized=true status=200 credentials sent=1
}

func ExampleNewSOCKS5Proxy() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the origin")
	}))
	defer origin.Close()

	proxy := proxyauthtest.NewSOCKS5Proxy("alice", "s3cret")
	defer proxy.Close()

	fetch := func(username, password string) {
		proxyURL, err := url.Parse(proxy.URL)
		if err != nil {
			log.Fatal(err)
		}
		proxyURL.User = url.UserPassword(username, password)
		tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
		if err != nil {
			fmt.Println("error: the proxy refused the credentials")
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.Status, string(body))
	}
	fetch("alice", "wrong")
	fetch("alice", "s3cret")

	for _, r := range proxy.Requests() {
		fmt.Printf("user=%s authorized=%v target set=%v\n", r.Username, r.Authorized, r.Target != "")
	}
	// Output:
	// error: the proxy refused the credentials
	// 200 OK hello from the origin
	// user=alice authorized=false target set=false
	// user=alice authorized=true target set=true
}
