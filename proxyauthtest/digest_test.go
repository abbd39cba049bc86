package proxyauthtest_test

import (
	"bufio"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// The Digest client below is written for the tests alone, independently of
// both the server in this package and the client in the module.

// digestHash returns the lower-case hex digest of s with the hash of
// algorithm (a -sess variant uses the hash of its base).
func digestHash(algorithm, s string) string {
	switch strings.TrimSuffix(algorithm, "-sess") {
	case "MD5":
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	case "SHA-256":
		sum := sha256.Sum256([]byte(s))
		return hex.EncodeToString(sum[:])
	case "SHA-512-256":
		sum := sha512.Sum512_256([]byte(s))
		return hex.EncodeToString(sum[:])
	}
	panic("test: unknown algorithm " + algorithm)
}

// challengeParam matches one auth-param of a challenge.
var challengeParam = regexp.MustCompile(`([A-Za-z0-9_*-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))`)

// parseChallenge returns the parameters of a Digest challenge, names in
// lower case.
func parseChallenge(t *testing.T, v string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(v, "Digest ")
	if !ok {
		t.Fatalf("not a Digest challenge: %q", v)
	}
	params := make(map[string]string)
	for _, m := range challengeParam.FindAllStringSubmatch(rest, -1) {
		value := m[3]
		if value == "" {
			value = regexp.MustCompile(`\\(.)`).ReplaceAllString(m[2], "$1")
		}
		params[strings.ToLower(m[1])] = value
	}
	return params
}

// digestField is one auth-param of the credentials a digestClient sends.
type digestField struct {
	name, value string
	quoted      bool
}

// digestClient computes Digest credentials for one challenge.
type digestClient struct {
	user, pass string
	challenge  map[string]string // from parseChallenge
	qop        string            // "" for RFC 2069 style
	nc         int               // the last nonce count used
	cnonce     string
	userhash   bool // send the hashed username with userhash=true
	star       bool // send username* (RFC 8187)
}

// newDigestClient returns a client for the challenge, with qop auth if the
// challenge offers a qop.
func newDigestClient(t *testing.T, user, pass, challenge string) *digestClient {
	t.Helper()
	c := &digestClient{user: user, pass: pass, challenge: parseChallenge(t, challenge), cnonce: "c/n+once=="}
	if c.challenge["qop"] != "" {
		c.qop = "auth"
	}
	return c
}

// fields returns the credentials for a request, with the next nonce count.
func (c *digestClient) fields(method, uri string, body []byte) []digestField {
	alg := c.challenge["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	realm, nonce := c.challenge["realm"], c.challenge["nonce"]
	h := func(s string) string { return digestHash(alg, s) }
	ha1 := h(c.user + ":" + realm + ":" + c.pass)
	if strings.HasSuffix(alg, "-sess") {
		ha1 = h(ha1 + ":" + nonce + ":" + c.cnonce)
	}
	a2 := method + ":" + uri
	if c.qop == "auth-int" {
		a2 += ":" + h(string(body))
	}
	c.nc++
	nc := fmt.Sprintf("%08x", c.nc)
	var response string
	if c.qop == "" {
		response = h(ha1 + ":" + nonce + ":" + h(a2))
	} else {
		response = h(ha1 + ":" + nonce + ":" + nc + ":" + c.cnonce + ":" + c.qop + ":" + h(a2))
	}

	var fs []digestField
	switch {
	case c.userhash:
		fs = append(fs, digestField{"username", h(c.user + ":" + realm), true})
	case c.star:
		var enc strings.Builder
		for _, b := range []byte(c.user) {
			if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' {
				enc.WriteByte(b)
			} else {
				fmt.Fprintf(&enc, "%%%02X", b)
			}
		}
		fs = append(fs, digestField{"username*", "UTF-8''" + enc.String(), false})
	default:
		fs = append(fs, digestField{"username", c.user, true})
	}
	fs = append(fs,
		digestField{"realm", realm, true},
		digestField{"nonce", nonce, true},
		digestField{"uri", uri, true},
		digestField{"algorithm", alg, false})
	if c.qop != "" {
		fs = append(fs,
			digestField{"qop", c.qop, false},
			digestField{"nc", nc, false},
			digestField{"cnonce", c.cnonce, true})
	}
	fs = append(fs, digestField{"response", response, true})
	if op, ok := c.challenge["opaque"]; ok {
		fs = append(fs, digestField{"opaque", op, true})
	}
	if c.userhash {
		fs = append(fs, digestField{"userhash", "true", false})
	}
	return fs
}

// authorization returns the Proxy-Authorization value for a request.
func (c *digestClient) authorization(method, uri string, body []byte) string {
	return digestHeader(c.fields(method, uri, body))
}

// digestHeader formats credentials.
func digestHeader(fs []digestField) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		v := f.value
		if f.quoted {
			v = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v) + `"`
		}
		parts[i] = f.name + "=" + v
	}
	return "Digest " + strings.Join(parts, ", ")
}

// setField returns fs with the field name set to value (added if absent), or
// removed if value is "<none>".
func setField(fs []digestField, name, value string) []digestField {
	for i, f := range fs {
		if f.name == name {
			if value == "<none>" {
				return append(fs[:i:i], fs[i+1:]...)
			}
			fs[i].value = value
			return fs
		}
	}
	if value == "<none>" {
		return fs
	}
	return append(fs, digestField{name, value, true})
}

// rawReq is a request written by hand to a proxy.
type rawReq struct {
	method, target string
	auth           []string // Proxy-Authorization values
	body           string
	chunked        bool
}

// rawProxy is a connection to a proxy on which requests are written by hand.
type rawProxy struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialProxy(t *testing.T, p *proxyauthtest.Proxy) *rawProxy {
	t.Helper()
	conn, br := dialRaw(t, p.Addr())
	return &rawProxy{t, conn, br}
}

// write sends q.
func (rp *rawProxy) write(q rawReq) {
	rp.t.Helper()
	host := q.target
	if q.method != "CONNECT" {
		host = hostOf(rp.t, q.target)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", q.method, q.target, host)
	for _, a := range q.auth {
		fmt.Fprintf(&b, "Proxy-Authorization: %s\r\n", a)
	}
	switch {
	case q.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for chunk := range strings.SplitSeq(q.body, "|") {
			if chunk != "" {
				fmt.Fprintf(&b, "%x\r\n%s\r\n", len(chunk), chunk)
			}
		}
		b.WriteString("0\r\n\r\n")
	case q.body != "" || q.method == "POST":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(q.body), q.body)
	default:
		b.WriteString("\r\n")
	}
	if _, err := io.WriteString(rp.conn, b.String()); err != nil {
		rp.t.Fatal(err)
	}
}

// do sends q and returns the response with its body read, except for a
// successful CONNECT, whose connection then is the tunnel.
func (rp *rawProxy) do(q rawReq) (*http.Response, string) {
	rp.t.Helper()
	rp.write(q)
	resp, err := http.ReadResponse(rp.br, &http.Request{Method: q.method})
	if err != nil {
		rp.t.Fatal(err)
	}
	if q.method == "CONNECT" && resp.StatusCode == http.StatusOK {
		return resp, ""
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		rp.t.Fatal(err)
	}
	return resp, string(body)
}

// throughTunnel checks that the connection is a tunnel to an echo origin.
func (rp *rawProxy) throughTunnel() {
	rp.t.Helper()
	io.WriteString(rp.conn, "GET /tunnelled HTTP/1.1\r\nHost: origin.test\r\n\r\n")
	resp, err := http.ReadResponse(rp.br, nil)
	if err != nil {
		rp.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "hello /tunnelled" {
		rp.t.Errorf("through the tunnel: %d %q", resp.StatusCode, body)
	}
}

// challenges sends a request without credentials and returns the challenges
// of the rejection.
func (rp *rawProxy) challenges(target string) []string {
	rp.t.Helper()
	resp, _ := rp.do(rawReq{method: "GET", target: target})
	if resp.StatusCode != http.StatusProxyAuthRequired {
		rp.t.Fatalf("status %d without credentials, want 407", resp.StatusCode)
	}
	return resp.Header.Values("Proxy-Authenticate")
}

// newDigestTestProxy starts a proxy for user and pass whose Auth is a Digest
// changed by configure, and returns both.
func newDigestTestProxy(t *testing.T, configure func(*proxyauthtest.Digest)) (*proxyauthtest.Proxy, *proxyauthtest.Digest) {
	t.Helper()
	d := proxyauthtest.NewDigest()
	if configure != nil {
		configure(d)
	}
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = d
	p.Start()
	t.Cleanup(p.Close)
	return p, d
}

// lastRequest returns the last request p recorded.
func lastRequest(t *testing.T, p *proxyauthtest.Proxy) proxyauthtest.Request {
	t.Helper()
	reqs := p.Requests()
	if len(reqs) == 0 {
		t.Fatal("no request recorded")
	}
	return reqs[len(reqs)-1]
}

var allAlgorithms = []string{"MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"}

func TestDigestEachAlgorithm(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/a"
	authority := hostOf(t, origin.URL)
	for _, alg := range allAlgorithms {
		for _, mode := range []string{"plain", "CONNECT"} {
			t.Run(alg+"/"+mode, func(t *testing.T) {
				p := proxyauthtest.NewDigestProxy(user, pass, alg)
				t.Cleanup(p.Close)
				rp := dialProxy(t, p)
				chs := rp.challenges(target)
				if len(chs) != 1 {
					t.Fatalf("challenges %q, want one", chs)
				}
				params := parseChallenge(t, chs[0])
				want := map[string]string{"realm": "proxyauthtest", "nonce": params["nonce"], "qop": "auth", "algorithm": alg, "charset": "UTF-8"}
				if !reflect.DeepEqual(params, want) || params["nonce"] == "" {
					t.Errorf("challenge params %q, want %q", params, want)
				}
				c := newDigestClient(t, user, pass, chs[0])

				if mode == "plain" {
					for i := range 2 { // nc 1 and 2
						resp, body := rp.do(rawReq{method: "GET", target: target, auth: []string{c.authorization("GET", target, nil)}})
						if resp.StatusCode != 200 || body != "hello /a" {
							t.Fatalf("request %d: %d %q", i+1, resp.StatusCode, body)
						}
						if got := resp.Header.Values("Proxy-Authentication-Info"); got != nil {
							t.Errorf("Proxy-Authentication-Info %q without rotation", got)
						}
					}
				} else {
					rp.write(rawReq{method: "CONNECT", target: authority, auth: []string{c.authorization("CONNECT", authority, nil)}})
					line, err := rp.br.ReadString('\n')
					if err != nil || line != "HTTP/1.1 200 Connection established\r\n" {
						t.Fatalf("CONNECT answer %q, %v", line, err)
					}
					if end, _ := rp.br.ReadString('\n'); end != "\r\n" {
						t.Fatalf("CONNECT answer continues with %q", end)
					}
					rp.throughTunnel()
				}

				reqs := p.Requests()
				if reqs[0].Scheme != "" || reqs[0].Authorized || reqs[1].Scheme != "Digest" || !reqs[1].Authorized {
					t.Errorf("Requests() = %+v", reqs)
				}
			})
		}
	}
}

func TestDigestChallengeFormat(t *testing.T) {
	tests := []struct {
		name      string
		configure func(*proxyauthtest.Digest)
		want      []string // with the nonce replaced by N
	}{
		{"default", nil, []string{`Digest realm="proxyauthtest", nonce="N", qop="auth", algorithm=MD5, charset=UTF-8`}},
		{"everything", func(d *proxyauthtest.Digest) {
			d.Realm = `corp "x"`
			d.Algorithms = []string{"SHA-256", "MD5"}
			d.QOP = []string{"auth", "auth-int"}
			d.UserHash = true
			d.Opaque = "op/aque"
		}, []string{
			`Digest realm="corp \"x\"", nonce="N", qop="auth,auth-int", algorithm=SHA-256, opaque="op/aque", userhash=true, charset=UTF-8`,
			`Digest realm="corp \"x\"", nonce="N", qop="auth,auth-int", algorithm=MD5, opaque="op/aque", userhash=true, charset=UTF-8`,
		}},
		{"auth-int only", func(d *proxyauthtest.Digest) { d.QOP = []string{"auth-int"} },
			[]string{`Digest realm="proxyauthtest", nonce="N", qop="auth-int", algorithm=MD5, charset=UTF-8`}},
		{"RFC 2069", func(d *proxyauthtest.Digest) { d.QOP = []string{} },
			[]string{`Digest realm="proxyauthtest", nonce="N", algorithm=MD5, charset=UTF-8`}},
	}
	nonceRE := regexp.MustCompile(`nonce="([^"]*)"`)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := proxyauthtest.NewDigest()
			if tt.configure != nil {
				tt.configure(d)
			}
			seen := map[string]bool{}
			for range 3 {
				got := d.Challenges()
				nonce := nonceRE.FindStringSubmatch(got[0])[1]
				if seen[nonce] {
					t.Errorf("nonce %q issued twice", nonce)
				}
				seen[nonce] = true
				if raw, err := base64.StdEncoding.DecodeString(nonce); err != nil || len(raw) < 16 {
					t.Errorf("nonce %q is not base64 of 16 bytes or more", nonce)
				}
				var norm []string
				for _, c := range got {
					if n := nonceRE.FindStringSubmatch(c)[1]; n != nonce {
						t.Errorf("challenges of one call with different nonces: %q", got)
					}
					norm = append(norm, nonceRE.ReplaceAllString(c, `nonce="N"`))
				}
				if !reflect.DeepEqual(norm, tt.want) {
					t.Errorf("Challenges() = %q, want %q", norm, tt.want)
				}
			}
		})
	}
}

func TestDigestRejections(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/r"
	tests := []struct {
		name      string
		configure func(*proxyauthtest.Digest)
		client    func(*digestClient) // changes the client before it computes
		fields    func([]digestField) []digestField
		auth      func(valid string) []string // the values sent, from the valid one
		wantOK    bool
	}{
		{name: "valid", wantOK: true},
		{name: "valid with opaque", configure: func(d *proxyauthtest.Digest) { d.Opaque = "x" }, wantOK: true},
		{name: "valid with lower-case scheme and odd spacing", wantOK: true,
			auth: func(v string) []string {
				return []string{"digest  " + strings.ReplaceAll(v[len("Digest "):], ", ", " ,  ")}
			}},
		{name: "wrong password", client: func(c *digestClient) { c.pass = "wrong" }},
		{name: "wrong username", client: func(c *digestClient) { c.user = "bob" }},
		{name: "wrong realm", client: func(c *digestClient) { c.challenge["realm"] = "other" }},
		{name: "unknown nonce", client: func(c *digestClient) { c.challenge["nonce"] = "bm90IGEgbm9uY2Ugb2YgdGhpcyBwcm94eQ==" }},
		{name: "uri in origin-form", fields: func(fs []digestField) []digestField { return setField(fs, "uri", "/r") }},
		{name: "algorithm not offered", client: func(c *digestClient) { c.challenge["algorithm"] = "SHA-256" }},
		{name: "unknown algorithm", fields: func(fs []digestField) []digestField { return setField(fs, "algorithm", "SHA-1") }},
		{name: "qop not offered", client: func(c *digestClient) { c.qop = "auth-int" }},
		{name: "no qop", client: func(c *digestClient) { c.qop = "" }},
		{name: "nc too short", fields: func(fs []digestField) []digestField { return setField(fs, "nc", "0000001") }},
		{name: "nc not hex", fields: func(fs []digestField) []digestField { return setField(fs, "nc", "0000000g") }},
		{name: "nc zero", client: func(c *digestClient) { c.nc = -1 }},
		{name: "no nc", fields: func(fs []digestField) []digestField { return setField(fs, "nc", "<none>") }},
		{name: "no cnonce", fields: func(fs []digestField) []digestField { return setField(fs, "cnonce", "<none>") }},
		{name: "no response", fields: func(fs []digestField) []digestField { return setField(fs, "response", "<none>") }},
		{name: "upper-case response", fields: func(fs []digestField) []digestField {
			for i := range fs {
				if fs[i].name == "response" {
					fs[i].value = strings.ToUpper(fs[i].value)
				}
			}
			return fs
		}},
		{name: "opaque mismatch", configure: func(d *proxyauthtest.Digest) { d.Opaque = "x" },
			client: func(c *digestClient) { c.challenge["opaque"] = "y" }},
		{name: "opaque missing", configure: func(d *proxyauthtest.Digest) { d.Opaque = "x" },
			client: func(c *digestClient) { delete(c.challenge, "opaque") }},
		{name: "userhash not advertised", client: func(c *digestClient) { c.userhash = true }},
		{name: "username and username*", fields: func(fs []digestField) []digestField {
			return append(fs, digestField{"username*", "UTF-8''" + user, false})
		}},
		{name: "parameter twice", fields: func(fs []digestField) []digestField {
			return append(fs, digestField{"realm", "proxyauthtest", true})
		}},
		{name: "two fields", auth: func(v string) []string { return []string{v, v} }},
		{name: "Basic", auth: func(string) []string { return []string{basic(user, pass)} }},
		{name: "unquoted nonce with a slash", auth: func(v string) []string {
			return []string{regexp.MustCompile(`nonce="([^"]*)"`).ReplaceAllString(v, "nonce=$1")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, d := newDigestTestProxy(t, tt.configure)
			rp := dialProxy(t, p)
			var chs []string
			for {
				// The "unquoted nonce" case needs a nonce with a '/'.
				chs = rp.challenges(target)
				if tt.name != "unquoted nonce with a slash" || strings.Contains(chs[0], "/") {
					break
				}
			}
			c := newDigestClient(t, user, pass, chs[0])
			if tt.client != nil {
				tt.client(c)
			}
			fs := c.fields("GET", target, nil)
			if tt.fields != nil {
				fs = tt.fields(fs)
			}
			auth := []string{digestHeader(fs)}
			if tt.auth != nil {
				auth = tt.auth(auth[0])
			}
			resp, _ := rp.do(rawReq{method: "GET", target: target, auth: auth})
			rec := lastRequest(t, p)
			if tt.wantOK {
				if resp.StatusCode != 200 || !rec.Authorized {
					t.Fatalf("status %d, want 200", resp.StatusCode)
				}
				return
			}
			if resp.StatusCode != http.StatusProxyAuthRequired || rec.Authorized {
				t.Fatalf("status %d, want 407", resp.StatusCode)
			}
			got := resp.Header.Values("Proxy-Authenticate")
			if len(got) != 1 || strings.Contains(got[0], "stale") || got[0] == chs[0] {
				t.Errorf("challenges %q, want one fresh challenge without stale", got)
			}
			if n := d.StaleCount(); n != 0 {
				t.Errorf("StaleCount() = %d, want 0", n)
			}
		})
	}
}

func TestDigestNonceCount(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/n"
	p, _ := newDigestTestProxy(t, nil)
	rp := dialProxy(t, p)
	c := newDigestClient(t, user, pass, rp.challenges(target)[0])
	steps := []struct {
		nc   int
		want int
	}{
		{1, 200}, {1, 407}, {3, 200}, {2, 200}, {3, 407}, {4, 200}, {2, 407},
	}
	for _, s := range steps {
		t.Run(strconv.Itoa(s.nc), func(t *testing.T) {
			c.nc = s.nc - 1
			resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{c.authorization("GET", target, nil)}})
			if resp.StatusCode != s.want {
				t.Errorf("nc %d: status %d, want %d", s.nc, resp.StatusCode, s.want)
			}
			if strings.Contains(resp.Header.Get("Proxy-Authenticate"), "stale") {
				t.Error("a replay is answered with stale=true")
			}
		})
	}
}

func TestDigestExpireNonces(t *testing.T) {
	origin := newTLSOrigin(t)
	authority := hostOf(t, origin.URL)
	plainOrigin := newOrigin(t)
	for _, mode := range []string{"plain", "CONNECT"} {
		t.Run(mode, func(t *testing.T) {
			p := proxyauthtest.NewDigestProxy(user, pass, "SHA-256")
			t.Cleanup(p.Close)
			d := p.Authenticator().(*proxyauthtest.Digest)
			method, target := "GET", plainOrigin.URL+"/e"
			if mode == "CONNECT" {
				method, target = "CONNECT", authority
			}
			try := func(c *digestClient) *http.Response {
				rp := dialProxy(t, p)
				resp, _ := rp.do(rawReq{method: method, target: target, auth: []string{c.authorization(method, target, nil)}})
				return resp
			}
			c := newDigestClient(t, user, pass, dialProxy(t, p).challenges(plainOrigin.URL)[0])
			if resp := try(c); resp.StatusCode != 200 {
				t.Fatalf("first request: %d", resp.StatusCode)
			}

			d.ExpireNonces()
			wrong := *c
			wrong.pass = "wrong"
			resp := try(&wrong)
			if resp.StatusCode != 407 || strings.Contains(resp.Header.Get("Proxy-Authenticate"), "stale") || d.StaleCount() != 0 {
				t.Fatalf("wrong password with an expired nonce: %d %q, StaleCount %d, want 407 without stale",
					resp.StatusCode, resp.Header.Values("Proxy-Authenticate"), d.StaleCount())
			}

			resp = try(c)
			chs := resp.Header.Values("Proxy-Authenticate")
			if resp.StatusCode != 407 || len(chs) != 1 || !strings.HasSuffix(chs[0], ", stale=true") {
				t.Fatalf("expired nonce: %d %q, want 407 with stale=true", resp.StatusCode, chs)
			}
			if n := d.StaleCount(); n != 1 {
				t.Errorf("StaleCount() = %d, want 1", n)
			}
			params := parseChallenge(t, chs[0])
			if params["nonce"] == c.challenge["nonce"] || params["stale"] != "true" || params["algorithm"] != "SHA-256" {
				t.Errorf("stale challenge %q", chs[0])
			}

			fresh := newDigestClient(t, user, pass, chs[0])
			if resp := try(fresh); resp.StatusCode != 200 {
				t.Errorf("with the new nonce: %d", resp.StatusCode)
			}
		})
	}
}

func TestDigestRotateNonce(t *testing.T) {
	// The origin sends a Proxy-Authentication-Info of its own, which must
	// not reach the client.
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Proxy-Authentication-Info", `nextnonce="from-origin"`)
		io.WriteString(w, "hello "+r.URL.Path)
	}))
	t.Cleanup(origin.Close)
	tunnelled := newOrigin(t)
	authority := hostOf(t, tunnelled.URL)
	nextRE := regexp.MustCompile(`^nextnonce="([^"]+)"$`)

	t.Run("plain", func(t *testing.T) {
		target := origin.URL + "/r"
		p, d := newDigestTestProxy(t, nil)
		d.RotateNonceEvery(2)
		rp := dialProxy(t, p)
		c := newDigestClient(t, user, pass, rp.challenges(target)[0])
		get := func(c *digestClient) *http.Response {
			resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{c.authorization("GET", target, nil)}})
			return resp
		}
		if resp := get(c); resp.StatusCode != 200 || resp.Header.Values("Proxy-Authentication-Info") != nil {
			t.Fatalf("first: %d %q", resp.StatusCode, resp.Header.Values("Proxy-Authentication-Info"))
		}
		resp := get(c)
		info := resp.Header.Values("Proxy-Authentication-Info")
		if resp.StatusCode != 200 || len(info) != 1 || !nextRE.MatchString(info[0]) {
			t.Fatalf("second: %d %q, want 200 with a nextnonce", resp.StatusCode, info)
		}
		next := nextRE.FindStringSubmatch(info[0])[1]
		if resp := get(c); resp.StatusCode != 407 || !strings.Contains(resp.Header.Get("Proxy-Authenticate"), "stale=true") {
			t.Errorf("old nonce after rotation: %d %q, want 407 stale", resp.StatusCode, resp.Header.Get("Proxy-Authenticate"))
		}
		c.challenge["nonce"], c.nc = next, 0
		if resp := get(c); resp.StatusCode != 200 {
			t.Errorf("nextnonce: %d", resp.StatusCode)
		}
		d.RotateNonceEvery(0)
		if resp := get(c); resp.StatusCode != 200 || resp.Header.Values("Proxy-Authentication-Info") != nil {
			t.Errorf("rotation off: %d %q", resp.StatusCode, resp.Header.Values("Proxy-Authentication-Info"))
		}
	})

	t.Run("CONNECT", func(t *testing.T) {
		p := proxyauthtest.NewDigestProxy(user, pass)
		t.Cleanup(p.Close)
		d := p.Authenticator().(*proxyauthtest.Digest)
		d.RotateNonceEvery(2)
		c := newDigestClient(t, user, pass, dialProxy(t, p).challenges(origin.URL)[0])
		var answers []string
		for range 2 {
			rp := dialProxy(t, p)
			rp.write(rawReq{method: "CONNECT", target: authority, auth: []string{c.authorization("CONNECT", authority, nil)}})
			var answer string
			for !strings.HasSuffix(answer, "\r\n\r\n") {
				line, err := rp.br.ReadString('\n')
				if err != nil {
					t.Fatalf("after %q: %v", answer, err)
				}
				answer += line
			}
			answers = append(answers, answer)
			rp.throughTunnel()
		}
		if answers[0] != "HTTP/1.1 200 Connection established\r\n\r\n" {
			t.Errorf("first answer %q", answers[0])
		}
		m := regexp.MustCompile(`^HTTP/1\.1 200 Connection established\r\nProxy-Authentication-Info: nextnonce="([^"]+)"\r\n\r\n$`).
			FindStringSubmatch(answers[1])
		if m == nil {
			t.Fatalf("second answer %q, want the established line with a nextnonce", answers[1])
		}
		c.challenge["nonce"], c.nc = m[1], 0
		rp := dialProxy(t, p)
		if resp, _ := rp.do(rawReq{method: "CONNECT", target: authority, auth: []string{c.authorization("CONNECT", authority, nil)}}); resp.StatusCode != 200 {
			t.Errorf("CONNECT with the nextnonce: %d", resp.StatusCode)
		}
	})
}

func TestDigestAuthInt(t *testing.T) {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Origin-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("X-Origin-Transfer-Encoding", strings.Join(r.TransferEncoding, ","))
		w.Write(body)
	}))
	t.Cleanup(origin.Close)
	target := origin.URL + "/post"
	tunnelled := newOrigin(t)
	authority := hostOf(t, tunnelled.URL)

	tests := []struct {
		name       string
		qop        []string
		method     string
		body       string // chunks separated by | when chunked
		chunked    bool
		hashedBody *string // the body the client hashes, if not body
		wantStatus int
		wantCL     string
		wantTE     string
	}{
		{name: "Content-Length", qop: []string{"auth-int"}, method: "POST", body: "pay\x00load\xff\r\n", wantStatus: 200, wantCL: "11"},
		{name: "chunked", qop: []string{"auth", "auth-int"}, method: "POST", body: "pay|load", chunked: true, wantStatus: 200, wantCL: "-1", wantTE: "chunked"},
		{name: "empty POST", qop: []string{"auth-int"}, method: "POST", body: "", wantStatus: 200, wantCL: "0"},
		{name: "GET without body", qop: []string{"auth-int"}, method: "GET", wantStatus: 200, wantCL: "0"},
		{name: "other body hashed", qop: []string{"auth-int"}, method: "POST", body: "payload", hashedBody: ptr("paYload"), wantStatus: 407},
		{name: "empty body hashed", qop: []string{"auth-int"}, method: "POST", body: "payload", hashedBody: ptr(""), wantStatus: 407},
		{name: "CONNECT", qop: []string{"auth-int"}, method: "CONNECT", wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newDigestTestProxy(t, func(d *proxyauthtest.Digest) {
				d.QOP = tt.qop
				d.Algorithms = []string{"SHA-256"}
			})
			rp := dialProxy(t, p)
			c := newDigestClient(t, user, pass, rp.challenges(target)[0])
			c.qop = "auth-int"
			hashed := strings.ReplaceAll(tt.body, "|", "")
			if tt.hashedBody != nil {
				hashed = *tt.hashedBody
			}
			tgt := target
			if tt.method == "CONNECT" {
				tgt = authority
			}
			q := rawReq{method: tt.method, target: tgt, body: tt.body, chunked: tt.chunked,
				auth: []string{c.authorization(tt.method, tgt, []byte(hashed))}}
			resp, body := rp.do(q)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				return
			}
			if tt.method == "CONNECT" {
				rp.throughTunnel()
				return
			}
			if want := strings.ReplaceAll(tt.body, "|", ""); body != want {
				t.Errorf("origin received %q, want %q", body, want)
			}
			if got := resp.Header.Get("X-Origin-Content-Length"); got != tt.wantCL {
				t.Errorf("origin Content-Length %s, want %s", got, tt.wantCL)
			}
			if got := resp.Header.Get("X-Origin-Transfer-Encoding"); got != tt.wantTE {
				t.Errorf("origin Transfer-Encoding %q, want %q", got, tt.wantTE)
			}
			// The connection still works.
			resp, _ = rp.do(rawReq{method: "GET", target: target, auth: []string{c.authorization("GET", target, nil)}})
			if resp.StatusCode != 200 {
				t.Errorf("next request on the connection: %d", resp.StatusCode)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestDigestAuthIntBodyTooLarge(t *testing.T) {
	origin := newOrigin(t)
	p, _ := newDigestTestProxy(t, func(d *proxyauthtest.Digest) { d.QOP = []string{"auth-int"} })
	rp := dialProxy(t, p)
	c := newDigestClient(t, user, pass, rp.challenges(origin.URL)[0])
	c.qop = "auth-int"
	body := strings.Repeat("x", 10<<20+1)
	resp, _ := rp.do(rawReq{method: "POST", target: origin.URL, body: body,
		auth: []string{c.authorization("POST", origin.URL, []byte(body))}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
	if rec := lastRequest(t, p); rec.Status != 413 || rec.Authorized {
		t.Errorf("recorded %+v", rec)
	}
}

func TestDigestRFC2069(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/old"
	authority := hostOf(t, origin.URL)
	p, _ := newDigestTestProxy(t, func(d *proxyauthtest.Digest) { d.QOP = []string{} })
	ch := dialProxy(t, p).challenges(target)[0]
	if strings.Contains(ch, "qop") {
		t.Errorf("challenge %q has a qop", ch)
	}
	tests := []struct {
		name    string
		method  string
		qop     string
		fields  func([]digestField) []digestField
		wantOK  bool
		repeats int
	}{
		{"plain", "GET", "", nil, true, 3}, // without nc the nonce may be reused
		{"CONNECT", "CONNECT", "", nil, true, 2},
		{"with qop", "GET", "auth", nil, false, 1},
		{"with nc and cnonce", "GET", "", func(fs []digestField) []digestField {
			return append(fs, digestField{"nc", "00000001", false}, digestField{"cnonce", "x", true})
		}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newDigestClient(t, user, pass, ch)
			c.qop = tt.qop
			tgt := target
			if tt.method == "CONNECT" {
				tgt = authority
			}
			for i := range tt.repeats {
				rp := dialProxy(t, p)
				fs := c.fields(tt.method, tgt, nil)
				if tt.fields != nil {
					fs = tt.fields(fs)
				}
				resp, _ := rp.do(rawReq{method: tt.method, target: tgt, auth: []string{digestHeader(fs)}})
				if (resp.StatusCode == 200) != tt.wantOK {
					t.Errorf("request %d: status %d", i+1, resp.StatusCode)
				}
			}
		})
	}
}

func TestDigestUserHash(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/u"
	const utf8User = "J\u00e4s\u00f8n Doe"
	p, _ := newDigestTestProxy(t, func(d *proxyauthtest.Digest) {
		d.UserHash = true
		d.Algorithms = []string{"SHA-512-256"}
	})
	p.AddCredentials(proxyauthtest.Credentials{Username: utf8User, Password: "Secret, or not?"})
	rp := dialProxy(t, p)
	ch := rp.challenges(target)[0]
	if !strings.Contains(ch, ", userhash=true,") {
		t.Fatalf("challenge %q without userhash=true", ch)
	}
	tests := []struct {
		name, user, pass string
		userhash, star   bool
		want             int
	}{
		{"hashed", user, pass, true, false, 200},
		{"hashed UTF-8", utf8User, "Secret, or not?", true, false, 200},
		{"plain username", user, pass, false, false, 200},
		{"username*", utf8User, "Secret, or not?", false, true, 200},
		{"hashed, wrong password", user, "wrong", true, false, 407},
		{"hashed, unknown user", "bob", pass, true, false, 407},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newDigestClient(t, tt.user, tt.pass, ch)
			c.userhash, c.star = tt.userhash, tt.star
			c.nc = i // one nonce for all: a distinct nc each
			resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{c.authorization("GET", target, nil)}})
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestMultiBasicDigest(t *testing.T) {
	origin := newOrigin(t)
	secure := newTLSOrigin(t)
	target := origin.URL + "/m"
	d := proxyauthtest.NewDigest()
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = proxyauthtest.Multi(proxyauthtest.Basic{}, d)
	p.Start()
	t.Cleanup(p.Close)
	if _, ok := p.Authenticator().(proxyauthtest.Verifier); !ok {
		t.Error("Multi does not implement Verifier")
	}

	rp := dialProxy(t, p)
	chs := rp.challenges(target)
	if len(chs) != 2 || chs[0] != `Basic realm="proxyauthtest"` || !strings.HasPrefix(chs[1], "Digest ") {
		t.Fatalf("challenges %q, want Basic then Digest", chs)
	}
	c := newDigestClient(t, user, pass, chs[1])
	tests := []struct {
		name       string
		auth       func() string
		want       int
		wantScheme string
		stale      bool
	}{
		{"Basic", func() string { return basic(user, pass) }, 200, "Basic", false},
		{"Digest", func() string { return c.authorization("GET", target, nil) }, 200, "Digest", false},
		{"Basic wrong", func() string { return basic(user, "wrong") }, 407, "Basic", false},
		{"Digest wrong", func() string { w := *c; w.pass = "wrong"; return w.authorization("GET", target, nil) }, 407, "Digest", false},
		{"Digest stale", func() string { d.ExpireNonces(); return c.authorization("GET", target, nil) }, 407, "Digest", true},
		{"Bearer", func() string { return "Bearer " + pass }, 407, "Bearer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{tt.auth()}})
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
			}
			if rec := lastRequest(t, p); rec.Scheme != tt.wantScheme || rec.Authorized != (tt.want == 200) {
				t.Errorf("recorded %+v", rec)
			}
			if tt.want == 200 {
				return
			}
			got := resp.Header.Values("Proxy-Authenticate")
			if len(got) != 2 || got[0] != `Basic realm="proxyauthtest"` || !strings.HasPrefix(got[1], "Digest ") ||
				strings.HasSuffix(got[1], "stale=true") != tt.stale {
				t.Errorf("challenges %q (stale wanted: %v)", got, tt.stale)
			}
		})
	}
	if n := d.StaleCount(); n != 1 {
		t.Errorf("StaleCount() = %d, want 1", n)
	}

	// A real client that speaks only Basic gets through, plain and CONNECT.
	cl := newClient(t, withUser(t, p.URL, user, pass), trust(secure.Certificate()))
	for _, u := range []string{origin.URL + "/x", secure.URL + "/x"} {
		if resp, body, err := get(cl, u); err != nil || resp.StatusCode != 200 || body != "hello /x" {
			t.Errorf("%s through Multi with Basic: %v %v %q", u, resp, err, body)
		}
	}
}

func TestMultiOrder(t *testing.T) {
	tests := []struct {
		name    string
		auths   []proxyauthtest.Authenticator
		schemes []string
	}{
		{"Digest first", []proxyauthtest.Authenticator{proxyauthtest.NewDigest(), proxyauthtest.Basic{}}, []string{"Digest", "Basic"}},
		{"two Digests", []proxyauthtest.Authenticator{
			&proxyauthtest.Digest{Algorithms: []string{"SHA-256", "MD5"}},
			&proxyauthtest.Digest{Realm: "second"},
		}, []string{"Digest", "Digest", "Digest"}},
		{"custom", []proxyauthtest.Authenticator{tokenAuth{}, proxyauthtest.Basic{}}, []string{"Bearer", "Basic", "Basic"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var schemes []string
			for _, c := range proxyauthtest.Multi(tt.auths...).Challenges() {
				s, _, _ := strings.Cut(c, " ")
				schemes = append(schemes, s)
			}
			if !reflect.DeepEqual(schemes, tt.schemes) {
				t.Errorf("schemes %q, want %q", schemes, tt.schemes)
			}
		})
	}
}

func TestMultiCustomAuthenticator(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = proxyauthtest.Multi(proxyauthtest.NewDigest(), tokenAuth{})
	p.Start()
	t.Cleanup(p.Close)
	rp := dialProxy(t, p)
	for _, tt := range []struct {
		auth string
		want int
	}{{"Bearer " + pass, 200}, {"Bearer x", 407}} {
		if resp, _ := rp.do(rawReq{method: "GET", target: origin.URL, auth: []string{tt.auth}}); resp.StatusCode != tt.want {
			t.Errorf("%q: status %d, want %d", tt.auth, resp.StatusCode, tt.want)
		}
	}
}

func TestProxyAuthenticator(t *testing.T) {
	unstarted := proxyauthtest.NewUnstartedProxy(user, pass)
	t.Cleanup(unstarted.Close)
	if a := unstarted.Authenticator(); a != nil {
		t.Errorf("Authenticator() before Start = %v, want nil", a)
	}
	basicProxy := proxyauthtest.NewProxy(user, pass)
	t.Cleanup(basicProxy.Close)
	if a, ok := basicProxy.Authenticator().(proxyauthtest.Basic); !ok || a.Realm != "" {
		t.Errorf("Authenticator() of NewProxy = %#v", basicProxy.Authenticator())
	}
	dp := proxyauthtest.NewDigestProxy(user, pass, "SHA-256", "MD5")
	t.Cleanup(dp.Close)
	d, ok := dp.Authenticator().(*proxyauthtest.Digest)
	if !ok || !reflect.DeepEqual(d.Algorithms, []string{"SHA-256", "MD5"}) {
		t.Errorf("Authenticator() of NewDigestProxy = %#v", dp.Authenticator())
	}
	chs := dialProxy(t, dp).challenges("http://origin.test/")
	if len(chs) != 2 || !strings.Contains(chs[0], "algorithm=SHA-256") || !strings.Contains(chs[1], "algorithm=MD5") {
		t.Errorf("challenges %q", chs)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("NewDigestProxy with an unknown algorithm did not panic")
			}
		}()
		p := proxyauthtest.NewDigestProxy(user, pass, "SHA-1")
		p.Close()
	}()
}

// TestDigestWithRejectNext checks that RejectNext sends a Digest challenge
// with a fresh nonce, not stale.
func TestDigestWithRejectNext(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewDigestProxy(user, pass)
	t.Cleanup(p.Close)
	rp := dialProxy(t, p)
	c := newDigestClient(t, user, pass, rp.challenges(origin.URL)[0])
	p.RejectNext(1)
	resp, _ := rp.do(rawReq{method: "GET", target: origin.URL, auth: []string{c.authorization("GET", origin.URL, nil)}})
	if got := resp.Header.Values("Proxy-Authenticate"); resp.StatusCode != 407 || len(got) != 1 || strings.Contains(got[0], "stale") {
		t.Errorf("RejectNext: %d %q", resp.StatusCode, got)
	}
	resp, _ = rp.do(rawReq{method: "GET", target: origin.URL, auth: []string{c.authorization("GET", origin.URL, nil)}})
	if resp.StatusCode != 200 {
		t.Errorf("after RejectNext: %d", resp.StatusCode)
	}
}
