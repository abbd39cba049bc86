package proxyauth_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// proxyURL returns the URL of p with the given credentials in it.
func proxyURL(p *proxyauthtest.Proxy, user, pass string) string {
	u, err := url.Parse(p.URL)
	if err != nil {
		log.Fatal(err)
	}
	u.User = url.UserPassword(user, pass)
	return u.String()
}

func ExampleNew() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello through the proxy")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxyURL(proxy, "alice", "s3cret")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, "-", string(body))
	// Output: 200 OK - hello through the proxy
}

func ExampleNew_credentialsFunc() {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello over a tunnel")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxy.URL},
		Credentials: func(ctx context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			// Look the credentials up in a vault, a file, the environment...
			fmt.Println("credentials asked for", r.Proxy.Scheme, "proxy")
			return proxyauth.Credentials{Username: "alice", Password: "s3cret"}, nil
		},
		// Base carries the TLS settings: here, trust in the test origin.
		Base: origin.Client().Transport.(*http.Transport),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, "-", string(body))
	// Output:
	// credentials asked for http proxy
	// 200 OK - hello over a tunnel
}

func ExampleWrap() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	existing := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	c, err := proxyauth.Wrap(existing, proxyauth.Config{
		Proxies: []string{proxyURL(proxy, "alice", "s3cret")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseIdleConnections()
	resp, err := c.Get(origin.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "timeout kept:", c.Timeout)
	fmt.Println("requests the proxy saw:", len(proxy.Requests()))
	// Output:
	// 200 OK timeout kept: 10s
	// requests the proxy saw: 1
}

func ExampleProxyAuthError() {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	for _, target := range []string{"http://example.test/", origin.URL} {
		c, err := proxyauth.Wrap(origin.Client(), proxyauth.Config{
			Proxies: []string{proxyURL(proxy, "alice", "wrong")},
		})
		if err != nil {
			log.Fatal(err)
		}
		_, err = c.Get(target)
		var pae *proxyauth.ProxyAuthError
		if errors.As(err, &pae) {
			fmt.Printf("status %d, tunnel %t, rejected %t, offers %v\n",
				pae.StatusCode, pae.Tunnel, pae.Rejected, pae.Challenges)
		}
		c.CloseIdleConnections()
	}
	// Output:
	// status 407, tunnel false, rejected true, offers [Basic realm="proxyauthtest"]
	// status 407, tunnel true, rejected true, offers [Basic realm="proxyauthtest"]
}

func ExampleClassify() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "s3cret")
	defer proxy.Close()

	for _, pass := range []string{"wrong", "s3cret"} {
		c, err := proxyauth.Wrap(nil, proxyauth.Config{Proxies: []string{proxyURL(proxy, "alice", pass)}})
		if err != nil {
			log.Fatal(err)
		}
		resp, err := c.Get(origin.URL)
		fmt.Println(proxyauth.Classify(resp, err))
		var ae *proxyauth.AuthError
		if errors.As(proxyauth.CheckResponse(resp), &ae) {
			fmt.Println(ae.StatusCode, ae.Challenges)
		}
		if err == nil {
			resp.Body.Close()
		}
		c.CloseIdleConnections()
	}
	// Output:
	// proxy-auth
	// origin-auth
	// 401 [Bearer realm="api"]
}

func ExampleCredentialsFunc_refresh() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewProxy("alice", "password-2") // rotated: "password-1" no longer works
	defer proxy.Close()

	passwords := []string{"password-1", "password-2"} // what a vault would hand out over time
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxy.URL},
		Credentials: func(ctx context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			fmt.Printf("credentials asked for: rejected %t, challenges %v\n", r.Rejected, r.Challenges)
			pass := passwords[0]
			passwords = passwords[1:]
			return proxyauth.Credentials{Username: "alice", Password: pass}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	for i := 0; i < 2; i++ {
		resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	// Output:
	// credentials asked for: rejected false, challenges []
	// credentials asked for: rejected true, challenges [Basic realm="proxyauthtest"]
	// 200 OK
	// 200 OK
}

func ExampleDigest() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	// A proxy that offers Digest with SHA-256 and with MD5.
	proxy := proxyauthtest.NewDigestProxy("alice", "s3cret", "SHA-256", "MD5")
	defer proxy.Close()

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies:          []string{proxyURL(proxy, "alice", "s3cret")},
		Schemes:          []proxyauth.Scheme{proxyauth.Digest()}, // never Basic
		WaitForChallenge: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	for i := 0; i < 2; i++ {
		resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	for _, r := range proxy.Requests() {
		auth := "none"
		if len(r.ProxyAuthorization) > 0 {
			auth = r.Scheme
			if strings.Contains(r.ProxyAuthorization[0], "algorithm=SHA-256") {
				auth += " SHA-256"
			}
		}
		fmt.Println(r.Status, "credentials:", auth)
	}
	// Output:
	// 407 credentials: none
	// 200 credentials: Digest SHA-256
	// 200 credentials: Digest SHA-256
}

func ExamplePool() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	fallback := proxyauthtest.NewProxy("alice", "s3cret")
	defer fallback.Close()
	dead := proxyauthtest.NewProxy("alice", "s3cret")
	dead.Close() // the primary is down: its port refuses connections

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxyURL(dead, "alice", "s3cret"), proxyURL(fallback, "alice", "s3cret")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	for i := 0; i < 3; i++ {
		resp, err := (&http.Client{Transport: tr}).Get(origin.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}
	for i, st := range tr.Pool().Stats() {
		fmt.Printf("proxy %d: %s, %d requests\n", i, st.State, st.Requests)
	}
	// Output:
	// 200 OK
	// 200 OK
	// 200 OK
	// proxy 0: ejected, 0 requests
	// proxy 1: healthy, 3 requests
}
