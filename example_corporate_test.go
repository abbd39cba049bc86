package proxyauth_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// An NTLM proxy, as corporate networks run: NTLM is among the default
// schemes, so the proxy URL with a domain account is all it takes. The
// first CONNECT goes without credentials (a domain account's password is
// not sent as Basic before the proxy asks for it); the tunnel is then
// authenticated once, in two legs on its connection, and the second
// request goes through the same tunnel with nothing to add.
func ExampleNTLM() {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello through an NTLM tunnel")
	}))
	defer origin.Close()
	proxy := proxyauthtest.NewNTLMProxy(`CORP\alice`, "s3cret")
	defer proxy.Close()

	roots := x509.NewCertPool()
	roots.AddCert(origin.Certificate())
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxyURL(proxy, `CORP\alice`, "s3cret")},
		Base:    &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for i := 0; i < 2; i++ {
		resp, err := client.Get(origin.URL)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, "-", string(body))
	}
	for _, r := range proxy.Requests() {
		fmt.Printf("proxy got %s, %q leg %d: %d\n", r.Method, r.Scheme, r.Leg, r.Status)
	}
	// Output:
	// 200 OK - hello through an NTLM tunnel
	// 200 OK - hello through an NTLM tunnel
	// proxy got CONNECT, "" leg 0: 407
	// proxy got CONNECT, "NTLM" leg 1: 407
	// proxy got CONNECT, "NTLM" leg 3: 200
}

// Kerberos through a proxy that offers Negotiate: the ticket comes from the
// cache that kinit wrote, or from a keytab for services; the proxy is named
// by the host of its service principal (HTTP/proxy.corp.example), not by an
// IP address. NTLM and Basic stay allowed as fallbacks for a machine without
// a ticket. (This example is compiled, not run: it needs a Kerberos realm;
// ./interop runs the same against a real KDC and squid.)
func ExampleNegotiate() {
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{"http://proxy.corp.example:3128"},
		Schemes: []proxyauth.Scheme{
			proxyauth.Negotiate(proxyauth.Kerberos{
				// Config, CCache: "" reads $KRB5_CONFIG and $KRB5CCNAME, as kinit does.
				Keytab:    "", // or "/etc/proxy-client.keytab" with Principal "svc-crawler@CORP.EXAMPLE"
				Principal: "",
			}),
			proxyauth.NTLM(),
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://intranet.corp.example/")
	if err != nil {
		// No ticket and no NTLM either: the error says why each scheme
		// was skipped, and Diagnose hints at kinit.
		fmt.Println(proxyauth.Diagnose(nil, err))
		return
	}
	resp.Body.Close()
}
