package proxyauthtest_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

const (
	user = "alice"
	pass = "s3cret"
)

func TestForwardPlain(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	if !strings.HasPrefix(p.URL, "http://127.0.0.1:") && !strings.HasPrefix(p.URL, "http://[::1]:") {
		t.Errorf("URL = %q, want http://<loopback>:PORT", p.URL)
	}
	if got := "http://" + p.Addr(); got != p.URL {
		t.Errorf("Addr() = %q, does not match URL %q", p.Addr(), p.URL)
	}
	if p.Certificate() != nil {
		t.Error("Certificate() is not nil for a plain proxy")
	}

	c := newClient(t, withUser(t, p.URL, user, pass))
	resp, body, err := get(c, origin.URL+"/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body != "hello /path" {
		t.Fatalf("got %d %q, want 200 %q", resp.StatusCode, body, "hello /path")
	}
	if got := resp.Header.Values("Via"); !reflect.DeepEqual(got, []string{"1.1 proxyauthtest"}) {
		t.Errorf("Via = %q, want [1.1 proxyauthtest]", got)
	}
	if got := resp.Header.Get("X-Origin-Proxy-Authorization"); got != "0" {
		t.Errorf("origin received %s Proxy-Authorization fields, want 0", got)
	}
	if got := resp.Header.Get("X-Origin-Request-URI"); got != "/path?q=1" {
		t.Errorf("origin request URI = %q, want /path?q=1", got)
	}

	want := []proxyauthtest.Request{{
		Method:             "GET",
		Target:             origin.URL + "/path?q=1",
		ProxyAuthorization: []string{basic(user, pass)},
		Scheme:             "Basic",
		Authorized:         true,
		Status:             http.StatusOK,
	}}
	if got := p.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("Requests() = %+v, want %+v", got, want)
	}
}

func TestForwardRemovesHopByHopFields(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	conn, br := dialRaw(t, p.Addr())
	host := hostOf(t, origin.URL)
	req := "GET " + origin.URL + "/hop HTTP/1.1\r\n" +
		"Host: " + host + "\r\n" +
		"Proxy-Authorization: " + basic(user, pass) + "\r\n" +
		"Connection: keep-alive, X-Hop\r\n" +
		"X-Hop: secret\r\n" +
		"Proxy-Connection: keep-alive\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Te: trailers\r\n" +
		"Trailer: X-Trailer\r\n" +
		"Upgrade: example/1\r\n" +
		"User-Agent: raw-test\r\n" +
		"X-End-To-End: kept\r\n" +
		"\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", resp.StatusCode)
	}
	// Accept-Encoding is added by the proxy's Transport, which asks for gzip
	// only if the client did not say; DisableCompression keeps it out.
	if got, want := resp.Header.Get("X-Origin-Header-Names"), "User-Agent,X-End-To-End"; got != want {
		t.Errorf("origin received fields %q, want %q", got, want)
	}
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name   string
		header []string // Proxy-Authorization values sent
		scheme string   // the Scheme recorded
	}{
		{"no credentials", nil, ""},
		{"wrong password", []string{basic(user, "wrong")}, "Basic"},
		{"wrong username", []string{basic("bob", pass)}, "Basic"},
		{"other scheme", []string{"Bearer " + pass}, "Bearer"},
		{"bad base64", []string{"Basic !!!"}, "Basic"},
		{"no colon", []string{"Basic " + "YWxpY2U="}, "Basic"},
		{"valid twice", []string{basic(user, pass), basic(user, pass)}, "Basic"},
		{"lower-case scheme", []string{"basic !!!"}, "Basic"},
		{"unknown scheme kept as received", []string{"X-Custom abc"}, "X-Custom"},
	}
	origin := newOrigin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxyauthtest.NewProxy(user, pass)
			t.Cleanup(p.Close)
			c := newClient(t, withUser(t, p.URL, "", ""))
			req, err := http.NewRequest("GET", origin.URL+"/x", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tt.header {
				req.Header.Add("Proxy-Authorization", v)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			checkRejection(t, resp, body, http.StatusProxyAuthRequired)
			want := []proxyauthtest.Request{{
				Method:             "GET",
				Target:             origin.URL + "/x",
				ProxyAuthorization: tt.header,
				Scheme:             tt.scheme,
				Status:             http.StatusProxyAuthRequired,
			}}
			if got := p.Requests(); !reflect.DeepEqual(got, want) {
				t.Errorf("Requests() = %+v, want %+v", got, want)
			}
		})
	}
}

// checkRejection checks that resp is a rejection with status code.
func checkRejection(t *testing.T, resp *http.Response, body []byte, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Errorf("status %d, want %d", resp.StatusCode, code)
	}
	if got := resp.Header.Values("Proxy-Authenticate"); !reflect.DeepEqual(got, []string{`Basic realm="proxyauthtest"`}) {
		t.Errorf("Proxy-Authenticate = %q", got)
	}
	if got := resp.Header.Get("Via"); got != "1.1 proxyauthtest" {
		t.Errorf("Via = %q", got)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain") {
		t.Errorf("Content-Type = %q, want text/plain", got)
	}
	if resp.ContentLength != int64(len(body)) || len(body) == 0 {
		t.Errorf("Content-Length %d, body %q", resp.ContentLength, body)
	}
}

func TestSetAuthStatus(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)
	c := newClient(t, withUser(t, p.URL, user, "wrong"))

	for _, tt := range []struct {
		set, want int
	}{
		{http.StatusUnauthorized, http.StatusUnauthorized},
		{http.StatusForbidden, http.StatusForbidden},
		{0, http.StatusProxyAuthRequired},
	} {
		t.Run(strconv.Itoa(tt.set), func(t *testing.T) {
			p.SetAuthStatus(tt.set)
			resp, body, err := get(c, origin.URL)
			if err != nil {
				t.Fatal(err)
			}
			checkRejection(t, resp, []byte(body), tt.want)
		})
	}
}

func TestSetStatusPanicsOnInvalidCode(t *testing.T) {
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	t.Cleanup(p.Close)
	for name, f := range map[string]func(int){
		"SetAuthStatus":    p.SetAuthStatus,
		"SetConnectStatus": p.SetConnectStatus,
	} {
		for _, code := range []int{-1, 100, 199, 600} {
			t.Run(name+"/"+strconv.Itoa(code), func(t *testing.T) {
				defer func() {
					if recover() == nil {
						t.Errorf("%s(%d) did not panic", name, code)
					}
				}()
				f(code)
			})
		}
	}
}

func TestRealmAndCustomAuthenticator(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*proxyauthtest.Proxy)
		want      []string
	}{
		{"default", func(*proxyauthtest.Proxy) {}, []string{`Basic realm="proxyauthtest"`}},
		{"realm", func(p *proxyauthtest.Proxy) { p.Realm = "corp" }, []string{`Basic realm="corp"`}},
		{"realm needing escapes", func(p *proxyauthtest.Proxy) { p.Realm = `a"b\c` }, []string{`Basic realm="a\"b\\c"`}},
		{"Auth wins over Realm", func(p *proxyauthtest.Proxy) {
			p.Realm = "ignored"
			p.Auth = proxyauthtest.Basic{Realm: "explicit"}
		}, []string{`Basic realm="explicit"`}},
		{"several challenges", func(p *proxyauthtest.Proxy) { p.Auth = tokenAuth{} },
			[]string{`Bearer realm="x"`, `Basic realm="y"`}},
	}
	origin := newOrigin(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxyauthtest.NewUnstartedProxy(user, pass)
			tt.configure(p)
			p.Start()
			t.Cleanup(p.Close)
			resp, _, err := get(newClient(t, withUser(t, p.URL, "", "")), origin.URL)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusProxyAuthRequired {
				t.Errorf("status %d, want 407", resp.StatusCode)
			}
			if got := resp.Header.Values("Proxy-Authenticate"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Proxy-Authenticate = %q, want %q", got, tt.want)
			}
		})
	}
}

// tokenAuth accepts "Bearer <password>" for any accepted credentials.
type tokenAuth struct{}

func (tokenAuth) Challenges() []string { return []string{`Bearer realm="x"`, `Basic realm="y"`} }

func (tokenAuth) Authorized(r *http.Request, accepted []proxyauthtest.Credentials) bool {
	for _, c := range accepted {
		if r.Header.Get("Proxy-Authorization") == "Bearer "+c.Password {
			return true
		}
	}
	return false
}

func TestCustomAuthenticatorAccepts(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = tokenAuth{}
	p.Start()
	t.Cleanup(p.Close)
	c := newClient(t, withUser(t, p.URL, "", ""), func(tr *http.Transport) {
		tr.ProxyConnectHeader = http.Header{"Proxy-Authorization": {"Bearer " + pass}}
	})
	req, _ := http.NewRequest("GET", origin.URL, nil)
	req.Header.Set("Proxy-Authorization", "Bearer "+pass)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}

func TestBasicAuthorized(t *testing.T) {
	accepted := []proxyauthtest.Credentials{{Username: "alice", Password: "a:b"}, {Username: "", Password: ""}}
	tests := []struct {
		name   string
		values []string
		want   bool
	}{
		{"valid", []string{basic("alice", "a:b")}, true},
		{"empty credentials accepted", []string{basic("", "")}, true},
		{"lower-case scheme", []string{"basic " + basic("alice", "a:b")[len("Basic "):]}, true},
		{"extra spaces", []string{"Basic    " + basic("alice", "a:b")[len("Basic "):]}, true},
		{"wrong password", []string{basic("alice", "a")}, false},
		{"username only", []string{"Basic YWxpY2U="}, false},
		{"not base64", []string{"Basic %%%"}, false},
		{"no token", []string{"Basic"}, false},
		{"absent", nil, false},
		{"twice", []string{basic("alice", "a:b"), basic("alice", "a:b")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("CONNECT", "example.com:443", nil)
			for _, v := range tt.values {
				r.Header.Add("Proxy-Authorization", v)
			}
			if got := (proxyauthtest.Basic{}).Authorized(r, accepted); got != tt.want {
				t.Errorf("Authorized = %v, want %v", got, tt.want)
			}
			if (proxyauthtest.Basic{}).Authorized(r, nil) {
				t.Error("Authorized with no accepted credentials")
			}
		})
	}
}

func TestConnect(t *testing.T) {
	origin := newTLSOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	c := newClient(t, withUser(t, p.URL, user, pass), trust(origin.Certificate()))
	resp, body, err := get(c, origin.URL+"/secure")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body != "hello /secure" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Via"); got != "" {
		t.Errorf("a tunnelled response has Via %q", got)
	}
	if got := resp.Header.Get("X-Origin-Proxy-Authorization"); got != "0" {
		t.Errorf("origin received %s Proxy-Authorization fields, want 0", got)
	}
	want := []proxyauthtest.Request{{
		Method:             "CONNECT",
		Target:             hostOf(t, origin.URL),
		ProxyAuthorization: []string{basic(user, pass)},
		Scheme:             "Basic",
		Authorized:         true,
		Status:             http.StatusOK,
	}}
	if got := p.Requests(); !reflect.DeepEqual(got, want) {
		t.Errorf("Requests() = %+v, want %+v", got, want)
	}
}

// connectObserver records what Transport.OnProxyConnectResponse sees.
type connectObserver struct {
	mu        sync.Mutex
	statuses  []int
	challenge []string
}

func (o *connectObserver) configure(tr *http.Transport) {
	tr.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, _ *http.Request, res *http.Response) error {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.statuses = append(o.statuses, res.StatusCode)
		o.challenge = res.Header.Values("Proxy-Authenticate")
		return nil
	}
}

func (o *connectObserver) seen() ([]int, []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.statuses, o.challenge
}

func TestConnectRejected(t *testing.T) {
	origin := newTLSOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	tests := []struct {
		name       string
		user, pass string
	}{
		{"wrong password", user, "wrong"},
		{"no credentials", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.ResetRequests()
			var o connectObserver
			c := newClient(t, withUser(t, p.URL, tt.user, tt.pass), trust(origin.Certificate()), o.configure)
			_, _, err := get(c, origin.URL)
			if err == nil || !strings.Contains(err.Error(), "Proxy Authentication Required") {
				t.Fatalf("err = %v, want a Proxy Authentication Required error", err)
			}
			statuses, challenge := o.seen()
			if !reflect.DeepEqual(statuses, []int{http.StatusProxyAuthRequired}) {
				t.Errorf("CONNECT statuses %v, want [407]", statuses)
			}
			if !reflect.DeepEqual(challenge, []string{`Basic realm="proxyauthtest"`}) {
				t.Errorf("Proxy-Authenticate = %q", challenge)
			}
			reqs := p.Requests()
			if len(reqs) != 1 || reqs[0].Method != "CONNECT" || reqs[0].Authorized || reqs[0].Status != 407 {
				t.Errorf("Requests() = %+v", reqs)
			}
		})
	}
}

func TestRawConnectionReuse(t *testing.T) {
	origin := newOrigin(t)
	host := hostOf(t, origin.URL)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)
	conn, br := dialRaw(t, p.Addr())
	auth := "Proxy-Authorization: " + basic(user, pass) + "\r\n"

	// Every exchange happens on the same connection, in order.
	steps := []struct {
		name       string
		req        string
		method     string
		wantStatus int
		wantBody   string // checked if not ""
	}{
		{"plain without credentials", "GET " + origin.URL + "/a HTTP/1.1\r\nHost: " + host + "\r\n\r\n", "GET", 407, ""},
		{"plain with credentials", "GET " + origin.URL + "/a HTTP/1.1\r\nHost: " + host + "\r\n" + auth + "\r\n", "GET", 200, "hello /a"},
		{"origin-form", "GET /a HTTP/1.1\r\nHost: " + host + "\r\n" + auth + "\r\n", "GET", 400, ""},
		{"CONNECT without credentials", "CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n", "CONNECT", 407, ""},
		{"CONNECT with credentials", "CONNECT " + host + " HTTP/1.1\r\nHost: " + host + "\r\n" + auth + "\r\n", "CONNECT", 200, ""},
		{"request in the tunnel", "GET /b HTTP/1.1\r\nHost: " + host + "\r\n\r\n", "GET", 200, "hello /b"},
	}
	for _, s := range steps {
		if _, err := io.WriteString(conn, s.req); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: s.method})
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if resp.StatusCode != s.wantStatus {
			t.Errorf("%s: status %d, want %d", s.name, resp.StatusCode, s.wantStatus)
		}
		if s.method == "CONNECT" && resp.StatusCode == 200 {
			if resp.Status != "200 Connection established" {
				t.Errorf("%s: status line %q", s.name, resp.Status)
			}
			continue // the rest of the stream is the tunnel
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if s.wantBody != "" && string(body) != s.wantBody {
			t.Errorf("%s: body %q, want %q", s.name, body, s.wantBody)
		}
		if resp.Close {
			t.Errorf("%s: the proxy closes the connection", s.name)
		}
	}
	if got := len(p.Requests()); got != 5 {
		t.Errorf("%d requests recorded, want 5 (the tunnelled one is not seen)", got)
	}
}

func TestSetCredentials(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewProxy("a", "1")
	t.Cleanup(p.Close)
	try := func(u, pw string) int {
		t.Helper()
		resp, _, err := get(newClient(t, withUser(t, p.URL, u, pw)), origin.URL)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	steps := []struct {
		name   string
		change func()
		want   map[string]int // "user:pass" -> status
	}{
		{"initial", func() {}, map[string]int{"a:1": 200, "b:2": 407}},
		{"rotated", func() { p.SetCredentials(proxyauthtest.Credentials{Username: "b", Password: "2"}) },
			map[string]int{"a:1": 407, "b:2": 200}},
		{"added", func() { p.AddCredentials(proxyauthtest.Credentials{Username: "c", Password: "3"}) },
			map[string]int{"a:1": 407, "b:2": 200, "c:3": 200}},
		{"emptied", func() { p.SetCredentials() },
			map[string]int{"a:1": 407, "b:2": 407, "c:3": 407}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change()
			for creds, want := range s.want {
				u, pw, _ := strings.Cut(creds, ":")
				if got := try(u, pw); got != want {
					t.Errorf("%s: status %d, want %d", creds, got, want)
				}
			}
		})
	}
}

func TestRejectNext(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)
	c := newClient(t, withUser(t, p.URL, user, pass))

	p.RejectNext(2)
	var got []int
	for range 3 {
		resp, _, err := get(c, origin.URL)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, resp.StatusCode)
	}
	if want := []int{407, 407, 200}; !reflect.DeepEqual(got, want) {
		t.Errorf("statuses %v, want %v", got, want)
	}
	var authorized []bool
	for _, r := range p.Requests() {
		authorized = append(authorized, r.Authorized)
	}
	if want := []bool{false, false, true}; !reflect.DeepEqual(authorized, want) {
		t.Errorf("Authorized %v, want %v", authorized, want)
	}

	p.RejectNext(5)
	p.RejectNext(0) // cancels
	if resp, _, err := get(c, origin.URL); err != nil || resp.StatusCode != 200 {
		t.Errorf("after RejectNext(0): %v, %v", resp, err)
	}
}

func TestSetConnectStatus(t *testing.T) {
	origin := newTLSOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	for _, code := range []int{403, 502, 503} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p.ResetRequests()
			p.SetConnectStatus(code)
			var o connectObserver
			c := newClient(t, withUser(t, p.URL, user, pass), trust(origin.Certificate()), o.configure)
			_, _, err := get(c, origin.URL)
			if err == nil || !strings.Contains(err.Error(), http.StatusText(code)) {
				t.Errorf("err = %v, want one with %q", err, http.StatusText(code))
			}
			if statuses, _ := o.seen(); !reflect.DeepEqual(statuses, []int{code}) {
				t.Errorf("CONNECT statuses %v, want [%d]", statuses, code)
			}
			reqs := p.Requests()
			if len(reqs) != 1 || !reqs[0].Authorized || reqs[0].Status != code {
				t.Errorf("Requests() = %+v", reqs)
			}
		})
	}

	p.SetConnectStatus(0)
	c := newClient(t, withUser(t, p.URL, user, pass), trust(origin.Certificate()))
	if resp, _, err := get(c, origin.URL); err != nil || resp.StatusCode != 200 {
		t.Errorf("after SetConnectStatus(0): %v, %v", resp, err)
	}
}

func TestSetHangUp(t *testing.T) {
	plain, secure := newOrigin(t), newTLSOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	tests := []struct {
		name, target, method, wantTarget string
	}{
		{"plain", plain.URL, "GET", plain.URL + "/"},
		{"CONNECT", secure.URL, "CONNECT", hostOf(t, secure.URL)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.ResetRequests()
			p.SetHangUp(true)
			// A fresh client: the Transport retries a request that fails on a
			// reused connection, which would record it twice.
			c := newClient(t, withUser(t, p.URL, user, pass), trust(secure.Certificate()))
			if _, _, err := get(c, tt.target); err == nil {
				t.Fatal("no error from a proxy that hangs up")
			}
			want := []proxyauthtest.Request{{
				Method:             tt.method,
				Target:             tt.wantTarget,
				ProxyAuthorization: []string{basic(user, pass)},
				Scheme:             "Basic",
			}}
			if got := p.Requests(); !reflect.DeepEqual(got, want) {
				t.Errorf("Requests() = %+v, want %+v", got, want)
			}

			p.SetHangUp(false)
			if resp, _, err := get(c, tt.target); err != nil || resp.StatusCode != 200 {
				t.Errorf("after SetHangUp(false): %v, %v", resp, err)
			}
		})
	}
}

func TestDialContext(t *testing.T) {
	plain, secure := newOrigin(t), newTLSOrigin(t)
	hosts := map[string]string{
		"origin.test:80":  hostOf(t, plain.URL),
		"secure.test:443": hostOf(t, secure.URL),
	}
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		real, ok := hosts[addr]
		if !ok {
			return nil, errors.New("no such test host " + addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, real)
	}
	p.Start()
	t.Cleanup(p.Close)

	c := newClient(t, withUser(t, p.URL, user, pass), trust(secure.Certificate()), func(tr *http.Transport) {
		tr.TLSClientConfig.ServerName = "example.com" // a name in the httptest certificate
	})
	tests := []struct {
		name, target string
		wantStatus   int
		wantBody     string
		wantErr      bool
	}{
		{"plain", "http://origin.test/hello", 200, "hello /hello", false},
		{"CONNECT", "https://secure.test/hello", 200, "hello /hello", false},
		{"plain dial failure", "http://unknown.test/", 502, "", false},
		{"CONNECT dial failure", "https://unknown.test/", 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body, err := get(c, tt.target)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "Bad Gateway") {
					t.Errorf("err = %v, want a Bad Gateway error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantBody != "" && body != tt.wantBody {
				t.Errorf("body %q, want %q", body, tt.wantBody)
			}
			if resp.Header.Get("Via") == "" && strings.HasPrefix(tt.target, "http:") {
				t.Error("no Via")
			}
		})
	}
	var statuses []int
	for _, r := range p.Requests() {
		statuses = append(statuses, r.Status)
	}
	if want := []int{200, 200, 502, 502}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("recorded statuses %v, want %v", statuses, want)
	}
}

func TestTLSProxy(t *testing.T) {
	plain, secure := newOrigin(t), newTLSOrigin(t)
	p := proxyauthtest.NewTLSProxy(user, pass)
	t.Cleanup(p.Close)
	if !strings.HasPrefix(p.URL, "https://") {
		t.Errorf("URL = %q, want https://", p.URL)
	}
	if p.Certificate() == nil || p.TLS == nil {
		t.Fatal("no certificate or TLS config after StartTLS")
	}

	for _, target := range []string{plain.URL, secure.URL} {
		t.Run(target[:strings.Index(target, ":")], func(t *testing.T) {
			p.ResetRequests()
			c := newClient(t, withUser(t, p.URL, user, pass), trust(p.Certificate(), secure.Certificate()))
			resp, body, err := get(c, target+"/tls")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 200 || body != "hello /tls" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			if reqs := p.Requests(); len(reqs) != 1 || !reqs[0].Authorized || reqs[0].Status != 200 {
				t.Errorf("Requests() = %+v", reqs)
			}
			bad := newClient(t, withUser(t, p.URL, user, "wrong"), trust(p.Certificate(), secure.Certificate()))
			resp, _, err = get(bad, target)
			if err == nil && resp.StatusCode != http.StatusProxyAuthRequired {
				t.Errorf("wrong password: status %d", resp.StatusCode)
			}
		})
	}
}

func TestTLSProxyOffersOnlyHTTP1(t *testing.T) {
	tests := []struct {
		name string
		cfg  *tls.Config
	}{
		{"default", nil},
		{"TLS with h2 set before StartTLS", &tls.Config{NextProtos: []string{"h2", "http/1.1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxyauthtest.NewUnstartedProxy(user, pass)
			p.TLS = tt.cfg
			p.StartTLS()
			t.Cleanup(p.Close)
			if !reflect.DeepEqual(p.TLS.NextProtos, []string{"http/1.1"}) {
				t.Errorf("TLS.NextProtos = %q", p.TLS.NextProtos)
			}
			pool := x509.NewCertPool()
			pool.AddCert(p.Certificate())
			conn, err := tls.Dial("tcp", p.Addr(), &tls.Config{RootCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().NegotiatedProtocol; got != "http/1.1" {
				t.Errorf("negotiated %q, want http/1.1", got)
			}
		})
	}
}

func TestRequestsIsACopy(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)
	if _, _, err := get(newClient(t, withUser(t, p.URL, user, pass)), origin.URL); err != nil {
		t.Fatal(err)
	}
	reqs := p.Requests()
	reqs[0].ProxyAuthorization[0] = "changed"
	reqs[0].Status = 1
	if again := p.Requests(); again[0].ProxyAuthorization[0] == "changed" || again[0].Status == 1 {
		t.Error("changing the result of Requests changed the log")
	}
	p.ResetRequests()
	if got := p.Requests(); len(got) != 0 {
		t.Errorf("after ResetRequests: %+v", got)
	}
}

func TestStartTwicePanics(t *testing.T) {
	tests := []struct {
		name  string
		start func(*proxyauthtest.Proxy)
	}{
		{"Start", (*proxyauthtest.Proxy).Start},
		{"StartTLS", (*proxyauthtest.Proxy).StartTLS},
		{"after Close", func(p *proxyauthtest.Proxy) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxyauthtest.NewUnstartedProxy(user, pass)
			t.Cleanup(p.Close)
			if tt.name == "after Close" {
				p.Close()
			} else {
				tt.start(p)
			}
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			p.Start()
		})
	}
}

func TestCloseUnstarted(t *testing.T) {
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	addr := p.Addr()
	p.Close()
	p.Close()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("the listener of an unstarted proxy is still open after Close")
	}
}

func TestCloseEndsTunnelsAndRequests(t *testing.T) {
	plain := newOrigin(t)
	arrived := make(chan struct{})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) }) // runs before slow.Close

	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)

	// An open tunnel.
	host := hostOf(t, plain.URL)
	conn, br := dialRaw(t, p.Addr())
	io.WriteString(conn, "CONNECT "+host+" HTTP/1.1\r\nHost: "+host+"\r\nProxy-Authorization: "+basic(user, pass)+"\r\n\r\n")
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}

	// An idle keep-alive connection.
	idle, idleBR := dialRaw(t, p.Addr())
	io.WriteString(idle, "GET "+plain.URL+" HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	if resp, err := http.ReadResponse(idleBR, nil); err != nil || resp.StatusCode != 407 {
		t.Fatalf("idle: %v %v", resp, err)
	} else {
		io.Copy(io.Discard, resp.Body)
	}

	// A request in flight.
	errc := make(chan error, 1)
	proxyURL := withUser(t, p.URL, user, pass)
	go func() {
		tr := &http.Transport{Proxy: http.ProxyURL(proxyURL)}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(slow.URL)
		if err == nil {
			resp.Body.Close()
			err = errors.New("status " + resp.Status)
		}
		errc <- err
	}()
	<-arrived

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(p.Close)
	}
	wg.Wait()

	if err := <-errc; err == nil || strings.HasPrefix(err.Error(), "status") {
		t.Errorf("request in flight: err = %v, want a connection error", err)
	}
	for name, r := range map[string]*bufio.Reader{"tunnel": br, "idle": idleBR} {
		if n, err := r.Read(make([]byte, 1)); err == nil {
			t.Errorf("%s connection still open after Close (read %d bytes)", name, n)
		}
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Error("listener still open after Close")
	}
}

func TestForwardRequestBody(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Origin-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("Trailer", "X-Checksum")
		w.WriteHeader(http.StatusCreated)
		w.Write(body)
		w.Header().Set("X-Checksum", strconv.Itoa(len(body)))
	}))
	t.Cleanup(origin.Close)
	p := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(p.Close)
	c := newClient(t, withUser(t, p.URL, user, pass))

	tests := []struct {
		name   string
		body   io.Reader
		wantCL string
	}{
		{"Content-Length", strings.NewReader("payload"), "7"},
		{"chunked", io.MultiReader(strings.NewReader("pay"), strings.NewReader("load")), "-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := c.Post(origin.URL, "text/plain", tt.body)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusCreated || string(body) != "payload" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Origin-Content-Length"); got != tt.wantCL {
				t.Errorf("origin saw Content-Length %s, want %s", got, tt.wantCL)
			}
			if got := resp.Trailer.Get("X-Checksum"); got != "7" {
				t.Errorf("trailer X-Checksum = %q, want 7", got)
			}
		})
	}
	if reqs := p.Requests(); len(reqs) != 2 || reqs[0].Status != http.StatusCreated {
		t.Errorf("Requests() = %+v", reqs)
	}
}
