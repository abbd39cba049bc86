package proxyauthtest_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func ExampleNewNTLMProxy() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello from the origin")
	}))
	defer origin.Close()

	proxy := proxyauthtest.NewNTLMProxy(`CORP\alice`, "s3cret")
	defer proxy.Close()

	// NTLM authenticates a connection: every leg goes on this one.
	conn, err := net.Dial("tcp", proxy.Addr())
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	send := func(auth string) *http.Response {
		req, _ := http.NewRequest("GET", origin.URL, nil)
		if auth != "" {
			req.Header.Set("Proxy-Authorization", auth)
		}
		if err := req.WriteProxy(conn); err != nil {
			log.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, strings.TrimSpace(string(body)))
		return resp
	}

	negotiate, _ := ntlmssp.NewNegotiateMessage("", "")
	resp := send("NTLM " + base64.StdEncoding.EncodeToString(negotiate))
	challenge, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(resp.Header.Get("Proxy-Authenticate"), "NTLM "))
	authenticate, err := ntlmssp.NewAuthenticateMessage(challenge, `CORP\alice`, "s3cret", nil)
	if err != nil {
		log.Fatal(err)
	}
	send("NTLM " + base64.StdEncoding.EncodeToString(authenticate))
	send("") // the connection is authenticated

	for _, r := range proxy.Requests() {
		fmt.Printf("scheme=%q leg=%d authorized=%v status=%d\n", r.Scheme, r.Leg, r.Authorized, r.Status)
	}
	// Output:
	// 407 Proxy Authentication Required proxyauthtest: proxy authentication required
	// 200 OK hello from the origin
	// 200 OK hello from the origin
	// scheme="NTLM" leg=1 authorized=false status=407
	// scheme="NTLM" leg=3 authorized=true status=200
	// scheme="" leg=0 authorized=true status=200
}
