package proxyauthtest_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// echoHandler answers "hello <path>" and reports in response header fields
// what it received, so that tests can check what the proxy forwarded without
// sharing state with the handler goroutine.
func echoHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		names := make([]string, 0, len(r.Header))
		for k := range r.Header {
			names = append(names, k)
		}
		slices.Sort(names)
		w.Header().Set("X-Origin-Header-Names", strings.Join(names, ","))
		w.Header().Set("X-Origin-Proxy-Authorization", strconv.Itoa(len(r.Header.Values("Proxy-Authorization"))))
		w.Header().Set("X-Origin-Host", r.Host)
		w.Header().Set("X-Origin-Request-URI", r.RequestURI)
		fmt.Fprintf(w, "hello %s", r.URL.Path)
	})
}

// newOrigin starts a plain HTTP origin server closed at the end of the test.
func newOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(echoHandler())
	t.Cleanup(srv.Close)
	return srv
}

// newTLSOrigin starts an HTTPS origin server closed at the end of the test.
func newTLSOrigin(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(echoHandler())
	t.Cleanup(srv.Close)
	return srv
}

// withUser returns raw parsed as a URL, with userinfo user:pass unless user
// and pass are both empty.
func withUser(t *testing.T, raw, user, pass string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" || pass != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u
}

// newClient returns a client that uses proxy, with its Transport adjusted by
// configure. Its idle connections are closed at the end of the test.
func newClient(t *testing.T, proxy *url.URL, configure ...func(*http.Transport)) *http.Client {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(proxy)}
	for _, f := range configure {
		f(tr)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// trust makes a Transport trust certs and offer only HTTP/1.1.
func trust(certs ...*x509.Certificate) func(*http.Transport) {
	return func(tr *http.Transport) {
		pool := x509.NewCertPool()
		for _, c := range certs {
			pool.AddCert(c)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}}
	}
}

// get fetches target with c and returns the response with its body read.
func get(c *http.Client, target string) (*http.Response, string, error) {
	resp, err := c.Get(target)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// basic returns the value of a Proxy-Authorization field with Basic
// credentials.
func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// dialRaw connects to addr; the connection is closed at the end of the test.
func dialRaw(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// hostOf returns the host:port of a server URL.
func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}
