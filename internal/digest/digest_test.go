package digest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
)

// fixedCnonce is a cnonce source that always returns cn.
func fixedCnonce(cn string) cnonceFunc {
	return func(dst []byte) ([]byte, error) { return append(dst, cn...), nil }
}

// hx hashes s with the named algorithm's hash, independently of the package.
func hx(t testing.TB, algorithm, s string) string {
	t.Helper()
	var sum []byte
	switch strings.TrimSuffix(strings.ToLower(algorithm), "-sess") {
	case "", "md5":
		b := md5.Sum([]byte(s))
		sum = b[:]
	case "sha-256":
		b := sha256.Sum256([]byte(s))
		sum = b[:]
	case "sha-512-256":
		b := sha512.Sum512_256([]byte(s))
		sum = b[:]
	default:
		t.Fatalf("hx: unknown algorithm %q", algorithm)
	}
	return hex.EncodeToString(sum)
}

// parseDigest splits a header value this package produced into its params.
func parseDigest(t testing.TB, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "Digest ")
	if !ok {
		t.Fatalf("header %q does not start with %q", h, "Digest ")
	}
	m := map[string]string{}
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 || eq+1 >= len(rest) {
			t.Fatalf("malformed header %q", h)
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var val string
		if rest[0] == '"' {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' {
					i++
					if i >= len(rest) {
						t.Fatalf("malformed header %q", h)
					}
				}
				b.WriteByte(rest[i])
			}
			if i >= len(rest) {
				t.Fatalf("unterminated quoted-string in %q", h)
			}
			val = b.String()
			rest = rest[i+1:]
		} else {
			j := strings.IndexByte(rest, ',')
			if j < 0 {
				j = len(rest)
			}
			val = rest[:j]
			rest = rest[j:]
		}
		if _, dup := m[key]; dup {
			t.Fatalf("duplicate param %q in %q", key, h)
		}
		m[key] = val
		if rest != "" {
			var ok bool
			if rest, ok = strings.CutPrefix(rest, ", "); !ok {
				t.Fatalf("malformed header %q", h)
			}
		}
	}
	return m
}

func mustParse(t testing.TB, params map[string]string) *Challenge {
	t.Helper()
	c, err := ParseChallenge(params)
	if err != nil {
		t.Fatalf("ParseChallenge(%v) error: %v", params, err)
	}
	return c
}

const (
	rfc7616Nonce  = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
	rfc7616Opaque = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
	rfc7616Cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
)

func TestRFCExamples(t *testing.T) {
	tests := []struct {
		name      string
		params    map[string]string
		user      string
		pass      string
		cnonce    string
		uri       string
		want      string
		wantResp  string
		wantUname string
	}{
		{
			name: "RFC 7616 3.9.1 MD5",
			params: map[string]string{"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "MD5",
				"nonce": rfc7616Nonce, "opaque": rfc7616Opaque},
			user: "Mufasa", pass: "Circle of Life", cnonce: rfc7616Cnonce, uri: "/dir/index.html",
			want: `Digest username="Mufasa", realm="http-auth@example.org", nonce="` + rfc7616Nonce +
				`", uri="/dir/index.html", algorithm=MD5, response="8ca523f5e9506fed4657c9700eebdbec", qop=auth, nc=00000001, cnonce="` +
				rfc7616Cnonce + `", opaque="` + rfc7616Opaque + `"`,
			wantResp: "8ca523f5e9506fed4657c9700eebdbec", wantUname: "Mufasa",
		},
		{
			name: "RFC 7616 3.9.1 SHA-256",
			params: map[string]string{"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "SHA-256",
				"nonce": rfc7616Nonce, "opaque": rfc7616Opaque},
			user: "Mufasa", pass: "Circle of Life", cnonce: rfc7616Cnonce, uri: "/dir/index.html",
			want: `Digest username="Mufasa", realm="http-auth@example.org", nonce="` + rfc7616Nonce +
				`", uri="/dir/index.html", algorithm=SHA-256, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", qop=auth, nc=00000001, cnonce="` +
				rfc7616Cnonce + `", opaque="` + rfc7616Opaque + `"`,
			wantResp: "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", wantUname: "Mufasa",
		},
		{
			name: "RFC 2617 3.5",
			params: map[string]string{"realm": "testrealm@host.com", "qop": "auth,auth-int",
				"nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "opaque": "5ccc069c403ebaf9f0171e9517f40e41"},
			user: "Mufasa", pass: "Circle Of Life", cnonce: "0a4f113b", uri: "/dir/index.html",
			want: `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", ` +
				`response="6629fae49393a05397450978507c4ef1", qop=auth, nc=00000001, cnonce="0a4f113b", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
			wantResp: "6629fae49393a05397450978507c4ef1", wantUname: "Mufasa",
		},
		{
			name: "RFC 7616 3.9.2 userhash SHA-512-256",
			params: map[string]string{"realm": "api@example.org", "qop": "auth", "algorithm": "SHA-512-256",
				"nonce": "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "opaque": "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS",
				"charset": "UTF-8", "userhash": "true"},
			// The example's request-target is /doe.json. The RFC's printed
			// userhash (488869...) and response (ae66e6...) came from a draft
			// SHA-512/256 implementation and cannot be reproduced with the
			// standard one; these are the corrected values of RFC errata
			// 4897, which several independent implementations agree on.
			user: "J\u00e4s\u00f8n Doe", pass: "Secret, or not?", cnonce: "NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", uri: "/doe.json",
			want: `Digest username="793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b", realm="api@example.org", ` +
				`nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", uri="/doe.json", algorithm=SHA-512-256, ` +
				`response="3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5", qop=auth, nc=00000001, ` +
				`cnonce="NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v", opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", userhash=true`,
			wantResp:  "3798d4131c277846293534c3edc11bd8a5e4cdcbff78b05db9d95eeb1cec68a5",
			wantUname: "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newSession(mustParse(t, tt.params), tt.user, tt.pass, fixedCnonce(tt.cnonce))
			if err != nil {
				t.Fatalf("newSession error: %v", err)
			}
			got, err := s.Authorize("GET", tt.uri, false, nil)
			if err != nil {
				t.Fatalf("Authorize error: %v", err)
			}
			p := parseDigest(t, got)
			if p["response"] != tt.wantResp {
				t.Errorf("Authorize(GET, %q) response = %q, want %q", tt.uri, p["response"], tt.wantResp)
			}
			if p["username"] != tt.wantUname {
				t.Errorf("Authorize(GET, %q) username = %q, want %q", tt.uri, p["username"], tt.wantUname)
			}
			if got != tt.want {
				t.Errorf("Authorize(GET, %q) =\n%q, want\n%q", tt.uri, got, tt.want)
			}
		})
	}
}

// seqReader returns the bytes 1, 2, 3, ... and fails after limit bytes.
type seqReader struct {
	next  byte
	limit int
}

func (r *seqReader) Read(p []byte) (int, error) {
	if r.limit <= 0 {
		return 0, errors.New("seqReader exhausted")
	}
	n := min(len(p), r.limit)
	for i := range n {
		r.next++
		p[i] = r.next
	}
	r.limit -= n
	return n, nil
}

func TestSess(t *testing.T) {
	for _, alg := range []string{"MD5-sess", "SHA-256-sess", "sha-512-256-SESS"} {
		t.Run(alg, func(t *testing.T) {
			const user, pass, realm, nonce = "alice", "correct horse", "proxy", "n0nce"
			c := mustParse(t, map[string]string{"realm": realm, "nonce": nonce, "qop": "auth", "algorithm": alg})
			// Exactly one cnonce's worth of bytes: any second read fails.
			s, err := NewSession(c, user, pass, Options{Rand: &seqReader{limit: cnonceBytes}})
			if err != nil {
				t.Fatalf("NewSession error: %v", err)
			}
			wantCnonce := hex.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
			ha1 := hx(t, alg, hx(t, alg, user+":"+realm+":"+pass)+":"+nonce+":"+wantCnonce)
			for i, nc := range []string{"00000001", "00000002", "00000003"} {
				uri := "http://example.com/" + strings.Repeat("x", i)
				got, err := s.Authorize("GET", uri, false, nil)
				if err != nil {
					t.Fatalf("Authorize #%d error: %v", i+1, err)
				}
				p := parseDigest(t, got)
				if p["cnonce"] != wantCnonce {
					t.Errorf("Authorize #%d cnonce = %q, want %q", i+1, p["cnonce"], wantCnonce)
				}
				if p["algorithm"] != alg {
					t.Errorf("Authorize #%d algorithm = %q, want %q", i+1, p["algorithm"], alg)
				}
				want := hx(t, alg, ha1+":"+nonce+":"+nc+":"+wantCnonce+":auth:"+hx(t, alg, "GET:"+uri))
				if p["response"] != want {
					t.Errorf("Authorize #%d = %q, want response %q", i+1, got, want)
				}
			}

			// WithNonce with a working Rand: a new cnonce and HA1 for the new nonce.
			s2, err := NewSession(c, user, pass, Options{Rand: &seqReader{limit: 2 * cnonceBytes}})
			if err != nil {
				t.Fatalf("NewSession error: %v", err)
			}
			n := s2.WithNonce("fresh")
			wantCnonce2 := hex.EncodeToString([]byte{17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32})
			// WithNonce with an exhausted Rand keeps the session's cnonce.
			n1 := s.WithNonce("fresh")
			for _, tc := range []struct {
				name   string
				s      *Session
				cnonce string
			}{{"new cnonce", n, wantCnonce2}, {"kept cnonce", n1, wantCnonce}} {
				got, err := tc.s.Authorize("CONNECT", "example.com:443", false, nil)
				if err != nil {
					t.Fatalf("%s: Authorize error: %v", tc.name, err)
				}
				p := parseDigest(t, got)
				ha1 := hx(t, alg, hx(t, alg, user+":"+realm+":"+pass)+":fresh:"+tc.cnonce)
				want := hx(t, alg, ha1+":fresh:00000001:"+tc.cnonce+":auth:"+hx(t, alg, "CONNECT:example.com:443"))
				if p["cnonce"] != tc.cnonce || p["nonce"] != "fresh" || p["nc"] != "00000001" || p["response"] != want {
					t.Errorf("%s: Authorize(CONNECT, example.com:443) = %q, want cnonce %q, nonce fresh, nc 00000001, response %q",
						tc.name, got, tc.cnonce, want)
				}
			}
		})
	}
}

func TestNonSessFreshCnonce(t *testing.T) {
	c := mustParse(t, map[string]string{"realm": "r", "nonce": "n", "qop": "auth", "algorithm": "SHA-256"})
	s, err := NewSession(c, "u", "p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 5 {
		got, err := s.Authorize("GET", "/", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := parseDigest(t, got)
		cn := p["cnonce"]
		if len(cn) != 2*cnonceBytes || strings.Trim(cn, "0123456789abcdef") != "" {
			t.Errorf("cnonce = %q, want %d lower-case hex digits", cn, 2*cnonceBytes)
		}
		if seen[cn] {
			t.Errorf("cnonce %q reused", cn)
		}
		seen[cn] = true
		want := hx(t, "SHA-256", hx(t, "SHA-256", "u:r:p")+":n:"+p["nc"]+":"+cn+":auth:"+hx(t, "SHA-256", "GET:/"))
		if p["response"] != want {
			t.Errorf("Authorize(GET, /) = %q, want response %q", got, want)
		}
	}
}

// trackBody is a request body that records whether it was closed.
type trackBody struct {
	io.Reader
	closed *bool
}

func (b trackBody) Close() error { *b.closed = true; return nil }

func TestAuthInt(t *testing.T) {
	const user, pass, realm, nonce, uri = "bob", "hunter2!", "r", "abc", "http://example.com/upload"
	body := "field=value&other=\x00\xff"
	tests := []struct {
		name      string
		alg       string
		qop       string
		hasBody   bool
		body      *string // nil: getBody is nil
		wantQOP   string
		wantBody  string // body hashed into HA2 for auth-int
		wantErr   string
		wantClose bool
	}{
		{name: "replayable body", alg: "MD5", qop: "auth-int", hasBody: true, body: &body, wantQOP: "auth-int", wantBody: body, wantClose: true},
		{name: "replayable body sha-256", alg: "SHA-256", qop: "auth-int", hasBody: true, body: &body, wantQOP: "auth-int", wantBody: body, wantClose: true},
		{name: "no body", alg: "SHA-512-256", qop: "auth-int", hasBody: false, wantQOP: "auth-int", wantBody: ""},
		{name: "empty replayable body", alg: "MD5", qop: "auth-int", hasBody: true, body: new(string), wantQOP: "auth-int", wantBody: "", wantClose: true},
		{name: "body not replayable", alg: "MD5", qop: "auth-int", hasBody: true,
			wantErr: "digest: the proxy accepts only qop=auth-int, which needs a body that can be read again"},
		{name: "auth preferred", alg: "MD5", qop: "auth-int, auth", hasBody: true, body: &body, wantQOP: "auth"},
		{name: "auth preferred without replay", alg: "MD5", qop: "auth-int,auth", hasBody: true, wantQOP: "auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, map[string]string{"realm": realm, "nonce": nonce, "qop": tt.qop, "algorithm": tt.alg})
			s, err := newSession(c, user, pass, fixedCnonce("cn"))
			if err != nil {
				t.Fatal(err)
			}
			closed, calls := false, 0
			var getBody func() (io.ReadCloser, error)
			if tt.body != nil {
				getBody = func() (io.ReadCloser, error) {
					calls++
					return trackBody{strings.NewReader(*tt.body), &closed}, nil
				}
			}
			got, err := s.Authorize("POST", uri, tt.hasBody, getBody)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("Authorize(POST, %q) = %q, %v; want error %q", uri, got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize(POST, %q) error: %v", uri, err)
			}
			p := parseDigest(t, got)
			if p["qop"] != tt.wantQOP {
				t.Errorf("Authorize(POST, %q) = %q, want qop %s", uri, got, tt.wantQOP)
			}
			a2 := "POST:" + uri
			if tt.wantQOP == "auth-int" {
				a2 += ":" + hx(t, tt.alg, tt.wantBody)
			}
			want := hx(t, tt.alg, hx(t, tt.alg, user+":"+realm+":"+pass)+":"+nonce+":00000001:cn:"+tt.wantQOP+":"+hx(t, tt.alg, a2))
			if p["response"] != want {
				t.Errorf("Authorize(POST, %q) = %q, want response %q", uri, got, want)
			}
			if closed != tt.wantClose {
				t.Errorf("body closed = %v, want %v", closed, tt.wantClose)
			}
			if tt.wantQOP == "auth" && calls != 0 {
				t.Errorf("getBody called %d times for qop=auth, want 0", calls)
			}
		})
	}

	t.Run("getBody error", func(t *testing.T) {
		c := mustParse(t, map[string]string{"realm": realm, "nonce": nonce, "qop": "auth-int"})
		s, err := NewSession(c, user, pass, Options{})
		if err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		_, err = s.Authorize("POST", uri, true, func() (io.ReadCloser, error) { return nil, boom })
		if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "digest: ") {
			t.Errorf("Authorize with failing getBody error = %v, want a digest: error wrapping %v", err, boom)
		}
	})
}

func TestRFC2069(t *testing.T) {
	const user, pass, realm, nonce, uri = "Mufasa", "CircleOfLife", "testrealm@host.com", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "/dir/index.html"
	for _, alg := range []string{"", "MD5", "SHA-256"} {
		t.Run("algorithm="+alg, func(t *testing.T) {
			params := map[string]string{"realm": realm, "nonce": nonce, "opaque": "5ccc069c403ebaf9f0171e9517f40e41"}
			if alg != "" {
				params["algorithm"] = alg
			}
			c := mustParse(t, params)
			if c.QOP != nil {
				t.Fatalf("ParseChallenge without qop: QOP = %#v, want nil", c.QOP)
			}
			s, err := NewSession(c, user, pass, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				got, err := s.Authorize("GET", uri, true, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp := hx(t, alg, hx(t, alg, user+":"+realm+":"+pass)+":"+nonce+":"+hx(t, alg, "GET:"+uri))
				algParam := ""
				if alg != "" {
					algParam = "algorithm=" + alg + ", "
				}
				want := `Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", ` +
					algParam + `response="` + resp + `", opaque="5ccc069c403ebaf9f0171e9517f40e41"`
				if got != want {
					t.Errorf("Authorize(GET, %q) = %q, want %q", uri, got, want)
				}
			}
		})
	}
	t.Run("sess without qop", func(t *testing.T) {
		c := mustParse(t, map[string]string{"realm": realm, "nonce": nonce, "algorithm": "MD5-sess"})
		if _, err := NewSession(c, user, pass, Options{}); err == nil || !strings.HasPrefix(err.Error(), "digest: ") {
			t.Errorf("NewSession(MD5-sess without qop) error = %v, want a digest: error", err)
		}
	})
}

func TestNonceCount(t *testing.T) {
	c := mustParse(t, map[string]string{"realm": "r", "nonce": "n1", "qop": "auth"})
	s, err := NewSession(c, "u", "p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	nc := func(s *Session) string {
		t.Helper()
		h, err := s.Authorize("GET", "/", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		return parseDigest(t, h)["nc"]
	}
	for _, want := range []string{"00000001", "00000002", "00000003"} {
		if got := nc(s); got != want {
			t.Errorf("Authorize(...) nc = %q, want %q", got, want)
		}
	}

	t.Run("WithNonce", func(t *testing.T) {
		n := s.WithNonce("n2")
		if got := n.Challenge().Nonce; got != "n2" {
			t.Errorf("WithNonce(n2).Challenge().Nonce = %q, want %q", got, "n2")
		}
		if got := s.Challenge().Nonce; got != "n1" {
			t.Errorf("original Challenge().Nonce = %q, want %q", got, "n1")
		}
		for _, want := range []string{"00000001", "00000002"} {
			if got := nc(n); got != want {
				t.Errorf("new session nc = %q, want %q", got, want)
			}
		}
		if got := nc(s); got != "00000004" {
			t.Errorf("original session nc = %q, want %q", got, "00000004")
		}
		h, err := n.Authorize("GET", "/x", false, nil)
		if err != nil {
			t.Fatal(err)
		}
		p := parseDigest(t, h)
		want := hx(t, "", hx(t, "", "u:r:p")+":n2:"+p["nc"]+":"+p["cnonce"]+":auth:"+hx(t, "", "GET:/x"))
		if p["nonce"] != "n2" || p["response"] != want {
			t.Errorf("WithNonce(n2).Authorize(GET, /x) = %q, want nonce n2 and response %q", h, want)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		s, err := NewSession(c, "u", "p", Options{Rand: &seqReader{limit: 1 << 30}})
		if err != nil {
			t.Fatal(err)
		}
		const goroutines, calls = 50, 20
		var (
			mu   sync.Mutex
			seen = map[string]int{}
			wg   sync.WaitGroup
		)
		for range goroutines {
			wg.Go(func() {
				for range calls {
					h, err := s.Authorize("GET", "/", false, nil)
					if err != nil {
						t.Error(err)
						return
					}
					i := strings.Index(h, "nc=")
					if i < 0 || i+11 > len(h) {
						t.Errorf("no nc in %q", h)
						return
					}
					mu.Lock()
					seen[h[i+3:i+11]]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != goroutines*calls {
			t.Errorf("%d distinct nc values, want %d", len(seen), goroutines*calls)
		}
		for v, n := range seen {
			if n != 1 {
				t.Errorf("nc %s used %d times", v, n)
			}
		}
		if seen["00000001"] != 1 || seen["000003e8"] != 1 {
			t.Errorf("nc values do not cover 00000001..000003e8")
		}
	})
}

func TestParseChallenge(t *testing.T) {
	tests := []struct {
		name   string
		params map[string]string
		want   Challenge
	}{
		{"minimal", map[string]string{"nonce": "n"}, Challenge{Nonce: "n"}},
		{"full", map[string]string{"realm": "r", "nonce": "n", "opaque": "o", "algorithm": "sha-256-Sess",
			"qop": " Auth , AUTH-INT,,token", "stale": "TRUE", "userhash": "True", "charset": "utf-8", "domain": "/x"},
			Challenge{Realm: "r", Nonce: "n", Opaque: "o", Algorithm: "sha-256-Sess", QOP: []string{"auth", "auth-int", "token"},
				Stale: true, UserHash: true, Charset: "UTF-8"}},
		{"false flags", map[string]string{"nonce": "n", "qop": "auth-int", "stale": "false", "userhash": "no", "charset": "ISO-8859-1"},
			Challenge{Nonce: "n", QOP: []string{"auth-int"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenge(tt.params)
			if err != nil {
				t.Fatalf("ParseChallenge(%v) error: %v", tt.params, err)
			}
			if got.Realm != tt.want.Realm || got.Nonce != tt.want.Nonce || got.Opaque != tt.want.Opaque ||
				got.Algorithm != tt.want.Algorithm || strings.Join(got.QOP, "|") != strings.Join(tt.want.QOP, "|") ||
				(got.QOP == nil) != (tt.want.QOP == nil) || got.Stale != tt.want.Stale || got.UserHash != tt.want.UserHash ||
				got.Charset != tt.want.Charset {
				t.Errorf("ParseChallenge(%v) = %#v, want %#v", tt.params, *got, tt.want)
			}
		})
	}

	errTests := []struct {
		name   string
		params map[string]string
		want   string // substring of the error
	}{
		{"nil params", nil, "nonce"},
		{"no nonce", map[string]string{"realm": "r"}, "nonce"},
		{"empty nonce", map[string]string{"realm": "r", "nonce": ""}, "nonce"},
		{"unsupported algorithm", map[string]string{"nonce": "n", "algorithm": "SHA-1"}, "algorithm"},
		{"unicode fold algorithm", map[string]string{"nonce": "n", "algorithm": "SHA-256-\u017fe\u017f\u017f"}, "algorithm"},
		{"qop without auth", map[string]string{"nonce": "n", "qop": "auth-conf"}, "qop"},
		{"empty qop", map[string]string{"nonce": "n", "qop": ""}, "qop"},
		{"control char in nonce", map[string]string{"nonce": "n\r\nX-Evil: 1"}, "nonce"},
		{"control char in realm", map[string]string{"nonce": "n", "realm": "r\x00"}, "realm"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChallenge(tt.params)
			if err == nil {
				t.Fatalf("ParseChallenge(%v) = %#v, want an error", tt.params, got)
			}
			if !strings.HasPrefix(err.Error(), "digest: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseChallenge(%v) error = %q, want a \"digest: \" error mentioning %q", tt.params, err, tt.want)
			}
		})
	}
}

func TestStrength(t *testing.T) {
	tests := []struct {
		alg  string
		want int
	}{
		{"", 30}, {"MD5", 30}, {"md5", 30}, {"MD5-sess", 31}, {"MD5-SESS", 31},
		{"SHA-256", 40}, {"sha-256", 40}, {"SHA-256-sess", 41},
		{"SHA-512-256", 50}, {"SHA-512-256-sess", 51}, {"sha-512-256-SESS", 51},
		{"SHA-1", -1}, {"SHA-512", -1}, {"token", -1}, {" MD5", -1}, {"MD5-\u017f\u017fess", -1},
	}
	for _, tt := range tests {
		t.Run(tt.alg, func(t *testing.T) {
			if got := Strength(tt.alg); got != tt.want {
				t.Errorf("Strength(%q) = %d, want %d", tt.alg, got, tt.want)
			}
		})
	}
}

func TestNextNonce(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"quoted", `nextnonce="abc123"`, "abc123"},
		{"token", `nextnonce=abc123`, "abc123"},
		{"escaped", `nextnonce="a\"b\\c"`, `a"b\c`},
		{"absent", `qop=auth, rspauth="xyz", cnonce="c", nc=00000001`, ""},
		{"empty", ``, ""},
		{"around", `qop=auth, rspauth="d2f1", nextnonce="n/2+x==", cnonce="0a4f113b", nc=00000001`, "n/2+x=="},
		{"case-insensitive key", `NextNonce="N"`, "N"},
		{"whitespace", " \t,  nextnonce =  \"sp ace\"  , nc=1", "sp ace"},
		{"inside another quoted value", `rspauth="x, nextnonce=\"evil\"", nextnonce="good"`, "good"},
		{"inside another value only", `rspauth="nextnonce=evil"`, ""},
		{"comma in quoted", `nextnonce="a,b"`, "a,b"},
		{"prefix key", `xnextnonce="no", nextnoncex="no"`, ""},
		{"after malformed element", `garbage "q,x", =bad, foo bar, nextnonce=ok`, "ok"},
		{"first wins", `nextnonce=one, nextnonce=two`, "one"},
		{"unterminated", `nextnonce="abc`, ""},
		{"trailing backslash", `nextnonce="abc\`, ""},
		{"trailing garbage", `nextnonce="abc"def`, ""},
		{"control char", "nextnonce=\"a\x01b\"", ""},
		{"empty value", `nextnonce=, qop=auth`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextNonce(tt.in); got != tt.want {
				t.Errorf("NextNonce(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestUsername(t *testing.T) {
	const realm = "api@example.org"
	tests := []struct {
		name     string
		user     string
		charset  string
		userhash bool
		want     string // the username parameter as it appears in the header
		wantErr  bool
	}{
		{"ascii", "Mufasa", "UTF-8", false, `username="Mufasa"`, false},
		{"escaped", `a"b\c`, "", false, `username="a\"b\\c"`, false},
		{"non-ascii utf-8", "J\u00e4s\u00f8n Doe", "UTF-8", false, `username*=UTF-8''J%C3%A4s%C3%B8n%20Doe`, false},
		{"non-ascii raw", "J\u00e4s\u00f8n Doe", "", false, "username=\"J\u00e4s\u00f8n Doe\"", false},
		{"control utf-8", "a\nb\"%", "UTF-8", false, `username*=UTF-8''a%0Ab%22%25`, false},
		{"control without charset", "a\r\nb", "", false, "", true},
		{"tab is quotable", "a\tb", "", false, "username=\"a\tb\"", false},
		{"userhash non-ascii", "J\u00e4s\u00f8n Doe", "UTF-8", true,
			`username="` + hx(t, "SHA-256", "J\u00e4s\u00f8n Doe:"+realm) + `"`, false},
		{"userhash control", "a\r\nb", "", true, `username="` + hx(t, "SHA-256", "a\r\nb:"+realm) + `"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			params := map[string]string{"realm": realm, "nonce": "n", "qop": "auth", "algorithm": "SHA-256"}
			if tt.charset != "" {
				params["charset"] = tt.charset
			}
			if tt.userhash {
				params["userhash"] = "true"
			}
			s, err := NewSession(mustParse(t, params), tt.user, "pw", Options{})
			if tt.wantErr {
				if err == nil || !strings.HasPrefix(err.Error(), "digest: ") {
					t.Fatalf("NewSession(user %q) error = %v, want a digest: error", tt.user, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Authorize("GET", "/", false, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got, "Digest "+tt.want+", realm=") {
				t.Errorf("Authorize(...) = %q, want it to start with %q", got, "Digest "+tt.want+", realm=")
			}
			if strings.HasSuffix(got, "userhash=true") != tt.userhash {
				t.Errorf("Authorize(...) = %q, want userhash=true: %v", got, tt.userhash)
			}
			// HA1 always uses the real username.
			p := parseDigest(t, got)
			want := hx(t, "SHA-256", hx(t, "SHA-256", tt.user+":"+realm+":pw")+":n:00000001:"+p["cnonce"]+":auth:"+hx(t, "SHA-256", "GET:/"))
			if p["response"] != want {
				t.Errorf("Authorize(...) = %q, want response %q", got, want)
			}
		})
	}
}

func TestHeaderParams(t *testing.T) {
	tests := []struct {
		name    string
		params  map[string]string
		present []string
		absent  []string
		want    map[string]string
	}{
		{"opaque echoed", map[string]string{"nonce": "n", "qop": "auth", "opaque": `o"p\q`},
			[]string{"opaque"}, nil, map[string]string{"opaque": `o"p\q`}},
		{"no opaque, no algorithm", map[string]string{"nonce": "n", "qop": "auth"},
			nil, []string{"opaque", "algorithm", "userhash"}, nil},
		{"algorithm as received", map[string]string{"nonce": "n", "qop": "auth", "algorithm": "sha-256"},
			[]string{"algorithm"}, nil, map[string]string{"algorithm": "sha-256"}},
		{"stale ignored", map[string]string{"nonce": "n", "qop": "auth", "stale": "true"},
			nil, []string{"stale"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSession(mustParse(t, tt.params), "u", "p", Options{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Authorize("GET", `http://h/a"b`, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := parseDigest(t, got)
			for _, k := range tt.present {
				if _, ok := p[k]; !ok {
					t.Errorf("Authorize(...) = %q, want a %s param", got, k)
				}
			}
			for _, k := range tt.absent {
				if _, ok := p[k]; ok {
					t.Errorf("Authorize(...) = %q, want no %s param", got, k)
				}
			}
			for k, v := range tt.want {
				if p[k] != v {
					t.Errorf("Authorize(...) %s = %q, want %q", k, p[k], v)
				}
			}
			if p["uri"] != `http://h/a"b` {
				t.Errorf("Authorize(...) uri = %q, want %q", p["uri"], `http://h/a"b`)
			}
			if strings.Contains(got, `algorithm="`) || strings.Contains(got, `qop="`) || strings.Contains(got, `nc="`) {
				t.Errorf("Authorize(...) = %q, want algorithm, qop and nc unquoted", got)
			}
		})
	}
}

func TestChallengeCopy(t *testing.T) {
	c := mustParse(t, map[string]string{"realm": "r", "nonce": "n", "qop": "auth,auth-int"})
	s, err := NewSession(c, "u", "p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	c.QOP[0] = "changed"
	c.Nonce = "changed"
	got := s.Challenge()
	if got.Nonce != "n" || got.QOP[0] != "auth" {
		t.Errorf("Challenge() = %#v after changing the caller's challenge, want the original", got)
	}
	got.QOP[0] = "again"
	if again := s.Challenge(); again.QOP[0] != "auth" {
		t.Errorf("Challenge() = %#v after changing a returned copy, want the original", again)
	}
}

// errReader always fails.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// stuckReader returns no bytes and no error forever.
type stuckReader struct{}

func (stuckReader) Read([]byte) (int, error) { return 0, nil }

func TestErrors(t *testing.T) {
	const pass = "s3cr3t-Pa55w0rd"
	ok := map[string]string{"realm": "r", "nonce": "n", "qop": "auth"}
	authInt := map[string]string{"realm": "r", "nonce": "n", "qop": "auth-int"}
	sess := map[string]string{"realm": "r", "nonce": "n", "qop": "auth", "algorithm": "MD5-sess"}
	noQOPSess := map[string]string{"realm": "r", "nonce": "n", "algorithm": "SHA-256-sess"}
	tests := []struct {
		name string
		run  func() error
	}{
		{"nil challenge", func() error { _, err := NewSession(nil, "u", pass, Options{}); return err }},
		{"bad hand-built challenge", func() error {
			_, err := NewSession(&Challenge{Realm: "r", Algorithm: "SHA-256"}, "u", pass, Options{})
			return err
		}},
		{"sess without qop", func() error { _, err := NewSession(mustParse(t, noQOPSess), "u", pass, Options{}); return err }},
		{"control username", func() error { _, err := NewSession(mustParse(t, ok), "u\n", pass, Options{}); return err }},
		{"sess rand failure", func() error {
			_, err := NewSession(mustParse(t, sess), "u", pass, Options{Rand: errReader{}})
			return err
		}},
		{"sess stuck rand", func() error {
			_, err := NewSession(mustParse(t, sess), "u", pass, Options{Rand: stuckReader{}})
			return err
		}},
		{"cnonce rand failure", func() error {
			s, err := NewSession(mustParse(t, ok), "u", pass, Options{Rand: errReader{}})
			if err != nil {
				return errors.New("unexpected NewSession error: " + err.Error())
			}
			_, err = s.Authorize("GET", "/", false, nil)
			return err
		}},
		{"auth-int not replayable", func() error {
			s, err := NewSession(mustParse(t, authInt), "u", pass, Options{})
			if err != nil {
				return errors.New("unexpected NewSession error: " + err.Error())
			}
			_, err = s.Authorize("PUT", "/", true, nil)
			return err
		}},
		{"body read failure", func() error {
			s, err := NewSession(mustParse(t, authInt), "u", pass, Options{})
			if err != nil {
				return errors.New("unexpected NewSession error: " + err.Error())
			}
			_, err = s.Authorize("PUT", "/", true, func() (io.ReadCloser, error) { return io.NopCloser(errReader{}), nil })
			return err
		}},
		{"uri with CRLF", func() error {
			s, err := NewSession(mustParse(t, ok), "u", pass, Options{})
			if err != nil {
				return errors.New("unexpected NewSession error: " + err.Error())
			}
			_, err = s.Authorize("GET", "/\r\nX: y", false, nil)
			return err
		}},
		{"WithNonce with CRLF", func() error {
			s, err := NewSession(mustParse(t, ok), "u", pass, Options{})
			if err != nil {
				return errors.New("unexpected NewSession error: " + err.Error())
			}
			_, err = s.WithNonce("n\r\n").Authorize("GET", "/", false, nil)
			return err
		}},
		{"nil session", func() error { _, err := (*Session)(nil).Authorize("GET", "/", false, nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil {
				t.Fatal("got no error, want one")
			}
			if !strings.HasPrefix(err.Error(), "digest: ") {
				t.Errorf("error = %q, want prefix %q", err, "digest: ")
			}
			if strings.Contains(err.Error(), pass) {
				t.Errorf("error = %q contains the password", err)
			}
		})
	}
	if (*Session)(nil).WithNonce("x") != nil {
		t.Error("(*Session)(nil).WithNonce(x) != nil")
	}
}

// zeroReader returns zero bytes forever, so sessions built from it get the
// same cnonces.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func FuzzAuthorize(f *testing.F) {
	f.Add("http-auth@example.org", rfc7616Nonce, rfc7616Opaque, "MD5", "auth, auth-int", "", "",
		"Mufasa", "Circle of Life", "GET", "/dir/index.html", []byte(nil), false, false)
	f.Add("api@example.org", "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "", "SHA-512-256", "auth", "true", "UTF-8",
		"J\u00e4s\u00f8n Doe", "Secret, or not?", "GET", "/doc/index.html", []byte(nil), false, false)
	f.Add("r", "n", "", "SHA-256-sess", "auth-int", "", "", "u", "password", "POST", "http://x/y", []byte("body"), true, true)
	f.Add("r", "n", "o", "", "", "", "", "u\n", "password", "CONNECT", "x:443", []byte{}, true, false)
	f.Add("r\"\\", "n", "", "md5-sess", "auth-int", "", "utf-8", "\xff\x00", "12345678", "PUT", "/\r\n", []byte("x"), false, true)
	f.Fuzz(func(t *testing.T, realm, nonce, opaque, algorithm, qop, userhash, charset, username, password, method, uri string,
		body []byte, hasBody, replayable bool) {
		params := map[string]string{"realm": realm, "nonce": nonce}
		for k, v := range map[string]string{"opaque": opaque, "algorithm": algorithm, "qop": qop, "userhash": userhash, "charset": charset} {
			if v != "" {
				params[k] = v
			}
		}
		c, err := ParseChallenge(params)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "digest: ") {
				t.Fatalf("ParseChallenge error %q lacks the digest: prefix", err)
			}
			return
		}
		var getBody func() (io.ReadCloser, error)
		if replayable {
			getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		authorize := func(password string) (string, error) {
			s, err := NewSession(c, username, password, Options{Rand: zeroReader{}})
			if err != nil {
				return "", err
			}
			return s.Authorize(method, uri, hasBody, getBody)
		}
		h, err := authorize(password)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "digest: ") {
				t.Fatalf("error %q lacks the digest: prefix", err)
			}
			if len(password) >= 8 && strings.Contains(err.Error(), password) {
				t.Fatalf("error %q contains the password", err)
			}
			return
		}
		if !strings.HasPrefix(h, "Digest ") {
			t.Fatalf("Authorize(...) = %q, want prefix %q", h, "Digest ")
		}
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Fatalf("Authorize(...) = %q contains CR, LF or NUL", h)
		}
		// The password may influence only the response value: the same
		// request with another password must give the same header apart
		// from it. So the password can appear in the header only where
		// another input (or a hex digest) put it.
		other := password + "-other"
		h2, err := authorize(other)
		if err != nil {
			t.Fatalf("Authorize with another password failed: %v", err)
		}
		masked, resp := maskResponse(t, h)
		masked2, _ := maskResponse(t, h2)
		if masked != masked2 {
			t.Fatalf("headers for two passwords differ outside response:\n%q\n%q", h, h2)
		}
		if strings.Trim(resp, "0123456789abcdef") != "" {
			t.Fatalf("response %q is not lower-case hex", resp)
		}
		if len(password) >= 8 && !strings.Contains(masked, password) && outsideResponse(h, password) {
			t.Fatalf("Authorize(...) = %q contains the password %q", h, password)
		}
	})
}

// maskResponse returns h with the response value blanked, and that value.
func maskResponse(t *testing.T, h string) (string, string) {
	t.Helper()
	const key = `, response="`
	i := strings.Index(h, key)
	if i < 0 {
		t.Fatalf("no response in %q", h)
	}
	j := strings.IndexByte(h[i+len(key):], '"')
	if j < 0 {
		t.Fatalf("unterminated response in %q", h)
	}
	return h[:i+len(key)] + h[i+len(key)+j:], h[i+len(key) : i+len(key)+j]
}

// outsideResponse reports whether pw occurs in h somewhere that does not
// overlap the response value (where a digest could spell it by chance).
func outsideResponse(h, pw string) bool {
	const key = `, response="`
	rs := strings.Index(h, key) + len(key)
	re := rs + strings.IndexByte(h[rs:], '"')
	for i := 0; i+len(pw) <= len(h); i++ {
		if strings.HasPrefix(h[i:], pw) && (i+len(pw) <= rs || i >= re) {
			return true
		}
	}
	return false
}
