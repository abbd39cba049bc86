package proxyauthtest

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// rfcDigest returns a Digest configured like the examples of RFC 7616,
// section 3.9.1, that accepts the example's nonce.
func rfcDigest(algorithms ...string) *Digest {
	d := NewDigest()
	d.Realm = "http-auth@example.org"
	d.Algorithms = algorithms
	d.QOP = []string{"auth", "auth-int"}
	d.Opaque = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
	d.mu.Lock()
	d.addNonceLocked("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v")
	d.mu.Unlock()
	return d
}

// rfcAuthorization returns the credentials of RFC 7616, section 3.9.1, with
// the given algorithm and response, and the line breaks of the RFC's layout
// turned into spaces.
func rfcAuthorization(algorithm, response string) string {
	return strings.ReplaceAll(`Digest username="Mufasa",
       realm="http-auth@example.org",
       uri="/dir/index.html",
       algorithm=`+algorithm+`,
       nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
       nc=00000001,
       cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
       qop=auth,
       response="`+response+`",
       opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`, "\n", " ")
}

func TestDigestRFC7616Vectors(t *testing.T) {
	mufasa := []Credentials{{Username: "Mufasa", Password: "Circle of Life"}}
	tests := []struct {
		name      string
		digest    func() *Digest
		method    string
		uri       string
		header    string
		accepted  []Credentials
		wantValid bool
	}{
		{
			name:   "3.9.1 MD5",
			digest: func() *Digest { return rfcDigest("SHA-256", "MD5") },
			method: "GET", uri: "/dir/index.html",
			header:   rfcAuthorization("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
			accepted: mufasa, wantValid: true,
		},
		{
			name:   "3.9.1 SHA-256",
			digest: func() *Digest { return rfcDigest("SHA-256", "MD5") },
			method: "GET", uri: "/dir/index.html",
			header:   rfcAuthorization("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
			accepted: mufasa, wantValid: true,
		},
		{
			name:   "3.9.1 MD5 with the algorithm left out",
			digest: func() *Digest { return rfcDigest("MD5") },
			method: "GET", uri: "/dir/index.html",
			header:   strings.Replace(rfcAuthorization("MD5", "8ca523f5e9506fed4657c9700eebdbec"), "algorithm=MD5,", "", 1),
			accepted: mufasa, wantValid: true,
		},
		{
			name:   "3.9.1 SHA-256 not offered",
			digest: func() *Digest { return rfcDigest("MD5") },
			method: "GET", uri: "/dir/index.html",
			header:   rfcAuthorization("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
			accepted: mufasa,
		},
		{
			name:   "3.9.1 wrong password",
			digest: func() *Digest { return rfcDigest("MD5") },
			method: "GET", uri: "/dir/index.html",
			header:   rfcAuthorization("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
			accepted: []Credentials{{Username: "Mufasa", Password: "Circle of life"}},
		},
		{
			name:   "3.9.1 other method",
			digest: func() *Digest { return rfcDigest("MD5") },
			method: "HEAD", uri: "/dir/index.html",
			header:   rfcAuthorization("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
			accepted: mufasa,
		},
		{
			name:   "3.9.1 other request-target",
			digest: func() *Digest { return rfcDigest("MD5") },
			method: "GET", uri: "/dir/index.htm",
			header:   rfcAuthorization("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
			accepted: mufasa,
		},
		{
			name:   "3.9.1 upper-case response",
			digest: func() *Digest { return rfcDigest("MD5") },
			method: "GET", uri: "/dir/index.html",
			header:   rfcAuthorization("MD5", "8CA523F5E9506FED4657C9700EEBDBEC"),
			accepted: mufasa,
		},
		{
			// RFC 7616, section 3.9.2, with the username hash and response
			// of erratum 4897 (those printed in the RFC are wrong).
			name: "3.9.2 SHA-512-256 userhash",
			digest: func() *Digest {
				d := NewDigest()
				d.Realm = "api@example.org"
				d.Algorithms = []string{"SHA-512-256"}
				d.UserHash = true
				d.Opaque = "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS"
				d.mu.Lock()
				d.addNonceLocked("5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK")
				d.mu.Unlock()
				return d
			},
			method: "GET", uri: "/doe.json",
			header: `Digest username="793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b", ` +
				`realm="api@example.org", uri="/doe.json", algorithm=SHA-512-256, ` +
				`nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", nc=00000001, ` +
				`cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", qop=auth, ` +
				`response="3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", ` +
				`opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", userhash=true`,
			accepted:  []Credentials{{Username: "J\u00e4s\u00f8n Doe", Password: "Secret, or not?"}},
			wantValid: true,
		},
		{
			name: "3.9.2 SHA-512-256 username*",
			digest: func() *Digest {
				d := NewDigest()
				d.Realm = "api@example.org"
				d.Algorithms = []string{"SHA-512-256"}
				d.mu.Lock()
				d.addNonceLocked("5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK")
				d.mu.Unlock()
				return d
			},
			method: "GET", uri: "/doe.json",
			header: `Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, ` +
				`realm="api@example.org", uri="/doe.json", algorithm=SHA-512-256, ` +
				`nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", nc=00000001, ` +
				`cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", qop=auth, ` +
				`response="3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", ` +
				`opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", userhash=false`,
			accepted:  []Credentials{{Username: "J\u00e4s\u00f8n Doe", Password: "Secret, or not?"}},
			wantValid: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.digest()
			r := httptest.NewRequest(tt.method, tt.uri, nil)
			r.Header.Set("Proxy-Authorization", tt.header)
			v := d.Verify(r, tt.accepted)
			if v.Authorized != tt.wantValid {
				t.Fatalf("Verify = %+v, want Authorized %v", v, tt.wantValid)
			}
			if v.Challenges != nil || v.Info != "" {
				t.Errorf("Verify = %+v, want no challenges and no info", v)
			}
			if tt.wantValid {
				// The same nonce count again is a replay.
				if v := d.Verify(r, tt.accepted); v.Authorized {
					t.Error("the same nc was accepted twice")
				}
			}
		})
	}
}

func TestParseCredentials(t *testing.T) {
	tests := []struct {
		in     string
		scheme string
		params map[string]string // nil: a syntax error
	}{
		{`Digest a=b`, "Digest", map[string]string{"a": "b"}},
		{`Digest`, "Digest", map[string]string{}},
		{`digest A="x, y", b=c`, "digest", map[string]string{"a": "x, y", "b": "c"}},
		{`Digest a="q\"uo\\te\d", b = "" ,, c=1,`, "Digest", map[string]string{"a": `q"uo\ted`, "b": "", "c": "1"}},
		{`Digest  nonce="a/b+c==", nc=00000001`, "Digest", map[string]string{"nonce": "a/b+c==", "nc": "00000001"}},
		{`Digest a="unterminated`, "", nil},
		{`Digest a="ends in backslash\`, "", nil},
		{`Digest a=b c=d`, "", nil},
		{`Digest a=b, a=c`, "", nil},
		{`Digest a=b, A="c"`, "", nil},
		{`Digest a`, "", nil},
		{`Digest =b`, "", nil},
		{`Digest a=`, "", nil},
		{`Digest a=b/c`, "", nil},
		{`Digest dG9rZW42OA==`, "", nil},
		{"Digest a=\"x\x01y\"", "", nil},
		{`Digest,a=b`, "", nil},
		{``, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			scheme, params, ok := parseCredentials(tt.in)
			if ok != (tt.params != nil) {
				t.Fatalf("ok = %v, params %q", ok, params)
			}
			if ok && (scheme != tt.scheme || !reflect.DeepEqual(params, tt.params)) {
				t.Errorf("got %q %q, want %q %q", scheme, params, tt.scheme, tt.params)
			}
		})
	}
}

func TestDecodeExtValue(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"UTF-8''J%C3%A4s%C3%B8n%20Doe", "J\u00e4s\u00f8n Doe", true},
		{"utf-8'en'abc", "abc", true},
		{"UTF-8''", "", true},
		{"ISO-8859-1''abc", "", false},
		{"UTF-8'abc", "", false},
		{"UTF-8''%C3", "", false},  // not UTF-8
		{"UTF-8''%4", "", false},   // truncated
		{"UTF-8''%zz", "", false},  // not hex
		{"UTF-8''a b", "", false},  // not an attr-char
		{"UTF-8''a%2", "", false},  // truncated at the end
		{"UTF-8''%41%", "", false}, // truncated at the end
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := decodeExtValue(tt.in)
			if ok != tt.ok || ok && got != tt.want {
				t.Errorf("got %q, %v, want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestDigestNonceTableIsBounded(t *testing.T) {
	d := NewDigest()
	first := nonceOf(t, d.Challenges()[0])
	for range maxNonces {
		d.Challenges()
	}
	d.mu.Lock()
	n, m := len(d.nonces), len(d.order)
	_, kept := d.nonces[first]
	d.mu.Unlock()
	if n != maxNonces || m != maxNonces {
		t.Errorf("%d nonces in the table, %d in the order, want %d", n, m, maxNonces)
	}
	if kept {
		t.Error("the oldest nonce was kept")
	}
}

// nonceOf returns the nonce of a challenge made by Digest.
func nonceOf(t *testing.T, challenge string) string {
	t.Helper()
	_, params, ok := parseCredentials(challenge)
	if !ok || params["nonce"] == "" {
		t.Fatalf("bad challenge %q", challenge)
	}
	return params["nonce"]
}

func TestDigestConfigPanics(t *testing.T) {
	tests := []struct {
		name string
		d    *Digest
	}{
		{"unknown algorithm", &Digest{Algorithms: []string{"SHA-1"}}},
		{"empty algorithms", &Digest{Algorithms: []string{}}},
		{"unknown qop", &Digest{QOP: []string{"auth-conf"}}},
		{"-sess without qop", &Digest{Algorithms: []string{"MD5", "SHA-256-sess"}, QOP: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			func() {
				defer func() {
					if recover() == nil {
						t.Error("Challenges did not panic")
					}
				}()
				tt.d.Challenges()
			}()
			p := NewUnstartedProxy("u", "p")
			defer p.Close()
			p.Auth = Multi(Basic{}, tt.d)
			defer func() {
				if recover() == nil {
					t.Error("Start did not panic")
				}
			}()
			p.Start()
		})
	}
}

func TestDigestAlgorithmNamesAnyCase(t *testing.T) {
	d := &Digest{Algorithms: []string{"sha-256", "md5-SESS"}, QOP: []string{"AUTH"}}
	got := d.Challenges()
	if len(got) != 2 || !strings.Contains(got[0], "algorithm=SHA-256,") ||
		!strings.Contains(got[1], "algorithm=MD5-sess,") || !strings.Contains(got[0], `qop="auth"`) {
		t.Errorf("Challenges() = %q", got)
	}
}

// TestDigestVerifyReadsBody checks auth-int on a request that does not come
// from a Proxy: Verify reads the body and leaves the same bytes in r.Body.
func TestDigestVerifyReadsBody(t *testing.T) {
	d := &Digest{QOP: []string{"auth-int"}}
	nonce := nonceOf(t, d.Challenges()[0])
	body := "a body"
	h := func(s string) string { return md5Hex(s) }
	ha1 := h("u:proxyauthtest:p")
	ha2 := h("POST:http://x.test/:" + h(body))
	resp := h(ha1 + ":" + nonce + ":00000001:c:auth-int:" + ha2)
	r := httptest.NewRequest("POST", "http://x.test/", strings.NewReader(body))
	r.Header.Set("Proxy-Authorization", fmt.Sprintf(
		`Digest username="u", realm="proxyauthtest", nonce=%q, uri="http://x.test/", qop=auth-int, nc=00000001, cnonce="c", response=%q`,
		nonce, resp))
	if !d.Authorized(r, []Credentials{{"u", "p"}}) {
		t.Fatal("not authorized")
	}
	if got, _ := io.ReadAll(r.Body); string(got) != body {
		t.Errorf("body after Verify = %q, want %q", got, body)
	}
}

func TestDigestConcurrentUse(t *testing.T) {
	d := &Digest{Algorithms: []string{"SHA-256"}}
	nonce := nonceOf(t, d.Challenges()[0])
	accepted := []Credentials{{"u", "p"}}
	const n = 64
	results := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			nc := fmt.Sprintf("%08x", i%(n/2)+1) // every nc twice
			r := httptest.NewRequest("CONNECT", "x.test:443", nil)
			ha1 := sha256Hex("u:proxyauthtest:p")
			ha2 := sha256Hex("CONNECT:x.test:443")
			resp := sha256Hex(ha1 + ":" + nonce + ":" + nc + ":c:auth:" + ha2)
			r.Header.Set("Proxy-Authorization", fmt.Sprintf(
				`Digest username="u", realm="proxyauthtest", nonce=%q, uri="x.test:443", algorithm=SHA-256, qop=auth, nc=%s, cnonce="c", response=%q`,
				nonce, nc, resp))
			results[i] = d.Verify(r, accepted).Authorized
			d.Challenges()
		})
	}
	wg.Wait()
	ok := 0
	for _, r := range results {
		if r {
			ok++
		}
	}
	if ok != n/2 {
		t.Errorf("%d requests accepted, want %d (each nc once)", ok, n/2)
	}
}

func TestMultiRouting(t *testing.T) {
	d := NewDigest()
	m := Multi(Basic{Realm: "b"}, d).(Verifier)
	accepted := []Credentials{{"u", "p"}}
	r := httptest.NewRequest("GET", "http://x.test/", nil)
	r.Header.Set("Proxy-Authorization", "Basic dTpw") // u:p
	if v := m.Verify(r, accepted); !v.Authorized {
		t.Errorf("Basic through Multi: %+v", v)
	}
	r.Header.Set("Proxy-Authorization", `Digest username="u"`)
	if v := m.Verify(r, accepted); v.Authorized || v.Challenges != nil {
		t.Errorf("bad Digest through Multi: %+v", v)
	}
	if got := len(m.(Authenticator).Challenges()); got != 2 {
		t.Errorf("%d challenges, want 2", got)
	}
	if got := (Multi()).Challenges(); got != nil {
		t.Errorf("empty Multi challenges %q", got)
	}
	if !m.(bodyReader).needsBody(withHeader("Digest qop=auth-int")) ||
		m.(bodyReader).needsBody(withHeader("Digest qop=auth")) ||
		m.(bodyReader).needsBody(withHeader("Basic qop=auth-int")) {
		t.Error("needsBody through Multi")
	}
}

func withHeader(v string) *http.Request {
	r := httptest.NewRequest("POST", "http://x.test/", nil)
	r.Header.Set("Proxy-Authorization", v)
	return r
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
