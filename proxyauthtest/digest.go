package proxyauthtest

// The Digest scheme is implemented here independently of the client side of
// the module, so that a bug in one cannot hide a bug in the other.

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// maxNonces is how many of the most recently issued nonces a Digest
// remembers; older ones are unknown.
const maxNonces = 10000

// maxBody is the largest request body a Proxy buffers to check a Digest
// response with qop=auth-int.
const maxBody = 10 << 20

// digestAlgorithms maps the canonical name of every supported algorithm to
// its hash function (the -sess variants use the same one).
var digestAlgorithms = map[string]func() hash.Hash{
	"MD5":              md5.New,
	"MD5-sess":         md5.New,
	"SHA-256":          sha256.New,
	"SHA-256-sess":     sha256.New,
	"SHA-512-256":      sha512.New512_256,
	"SHA-512-256-sess": sha512.New512_256,
}

// Digest is the Digest scheme (RFC 7616) as an [Authenticator] and a
// [Verifier], with the state that the scheme needs: the nonces it issued and
// the nonce counts already used with each. Create one with [NewDigest].
//
// Challenges issues a fresh nonce on every call and sends one challenge per
// algorithm, all with that nonce, in the form
//
//	Digest realm="...", nonce="...", qop="auth,auth-int", algorithm=SHA-256, opaque="...", userhash=true, charset=UTF-8
//
// where qop is left out when QOP is empty, opaque when Opaque is "", userhash
// unless UserHash is set, and ", stale=true" is appended to the challenges of
// a rejection for a stale nonce.
//
// Verify accepts a request with exactly one Proxy-Authorization field of
// scheme Digest whose parameters are all consistent with the challenge and the
// request: username (or username*, RFC 8187, or with userhash=true the hashed
// username) and response match one of the accepted credentials, realm is the
// realm, nonce is a nonce this Digest issued and has not made stale,
// algorithm is one offered (absent means MD5), uri is exactly the
// request-target as received (r.RequestURI: the authority for CONNECT, the
// absolute URL for plain requests), qop is one offered (or absent when QOP is
// empty, together with nc and cnonce), nc is 8 hexadecimal digits not used
// before with this nonce (in any order), cnonce is present with qop, and
// opaque is Opaque when Opaque is set. For qop=auth-int the body is hashed:
// empty for CONNECT; for a request from a [Proxy], the body the proxy
// buffered; otherwise Verify reads r.Body and replaces it with a reader of the
// same bytes. A request that would be accepted but for a stale nonce is
// rejected with challenges that carry stale=true and a new nonce; any other
// failure, an unknown nonce included, is a plain rejection.
//
// The exported fields must be set before the first use and not changed
// afterwards. The methods are safe for concurrent use.
type Digest struct {
	// Realm is the realm of the challenges; "" means "proxyauthtest".
	Realm string

	// Algorithms lists the algorithms offered, one challenge each, in this
	// order: MD5, MD5-sess, SHA-256, SHA-256-sess, SHA-512-256 or
	// SHA-512-256-sess. nil means ["MD5"].
	Algorithms []string

	// QOP lists the qop values offered: ["auth"], ["auth", "auth-int"] or
	// ["auth-int"]. nil means ["auth"]; an empty non-nil slice means RFC 2069
	// style, without qop, nc or cnonce (which rules out the -sess
	// algorithms).
	QOP []string

	// UserHash makes the challenges carry userhash=true and Verify accept a
	// username hashed as H(username ":" realm) with userhash=true. A plain
	// username is accepted either way.
	UserHash bool

	// Opaque, when not "", is sent in the challenges and must come back
	// unchanged.
	Opaque string

	mu          sync.Mutex
	nonces      map[string]*nonceState
	order       []string // the nonces in the order issued, oldest first
	rotateEvery int
	staleCount  int
}

// nonceState is what a Digest knows about a nonce it issued.
type nonceState struct {
	stale     bool
	used      map[uint32]bool // the nonce counts accepted with this nonce
	successes int
}

// NewDigest returns a [Digest] with the default settings: realm
// "proxyauthtest", algorithm MD5 and qop auth. Its fields may be changed
// before its first use.
func NewDigest() *Digest {
	return &Digest{}
}

// NewDigestProxy returns a started [Proxy] that accepts exactly the given
// credentials with a [Digest] that offers algorithms (none means MD5). The
// Digest is available from [Proxy.Authenticator]. The caller should call
// Close when finished. It panics if an algorithm is not supported.
func NewDigestProxy(username, password string, algorithms ...string) *Proxy {
	d := NewDigest()
	if len(algorithms) > 0 {
		d.Algorithms = algorithms
	}
	d.validate() // before the listener is opened
	p := NewUnstartedProxy(username, password)
	p.Auth = d
	p.Start()
	return p
}

// digestConfig is the effective configuration of a Digest.
type digestConfig struct {
	realm      string
	algorithms []string // canonical names
	qop        []string // lower case
}

// config returns the effective configuration of d. It panics if the
// configuration is invalid.
func (d *Digest) config() digestConfig {
	c := digestConfig{realm: d.Realm, qop: []string{"auth"}, algorithms: []string{"MD5"}}
	if c.realm == "" {
		c.realm = defaultRealm
	}
	if d.Algorithms != nil {
		c.algorithms = make([]string, 0, len(d.Algorithms))
		for _, a := range d.Algorithms {
			name, ok := canonicalAlgorithm(a)
			if !ok {
				panic(fmt.Sprintf("proxyauthtest: Digest: unsupported algorithm %q", a))
			}
			c.algorithms = append(c.algorithms, name)
		}
		if len(c.algorithms) == 0 {
			panic("proxyauthtest: Digest: Algorithms is empty")
		}
	}
	if d.QOP != nil {
		c.qop = make([]string, 0, len(d.QOP))
		for _, q := range d.QOP {
			q = strings.ToLower(q)
			if q != "auth" && q != "auth-int" {
				panic(fmt.Sprintf("proxyauthtest: Digest: unsupported qop %q", q))
			}
			c.qop = append(c.qop, q)
		}
		if len(c.qop) == 0 {
			for _, a := range c.algorithms {
				if strings.HasSuffix(a, "-sess") {
					panic("proxyauthtest: Digest: algorithm " + a + " needs a qop (it hashes the cnonce)")
				}
			}
		}
	}
	return c
}

// canonicalAlgorithm returns the canonical name of algorithm name, in any
// case.
func canonicalAlgorithm(name string) (string, bool) {
	for canon := range digestAlgorithms {
		if strings.EqualFold(canon, name) {
			return canon, true
		}
	}
	return "", false
}

func (d *Digest) validate() { d.config() }

func (d *Digest) schemes() []string { return []string{"Digest"} }

// Challenges returns one challenge per algorithm, all with the same fresh
// nonce.
func (d *Digest) Challenges() []string {
	c := d.config()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.challengesLocked(c, false)
}

// challengesLocked issues a nonce and returns the challenges that carry it.
// d.mu must be held.
func (d *Digest) challengesLocked(c digestConfig, stale bool) []string {
	nonce := d.newNonceLocked()
	var tail strings.Builder
	if d.Opaque != "" {
		tail.WriteString(", opaque=" + quote(d.Opaque))
	}
	if d.UserHash {
		tail.WriteString(", userhash=true")
	}
	tail.WriteString(", charset=UTF-8")
	if stale {
		tail.WriteString(", stale=true")
	}
	head := "Digest realm=" + quote(c.realm) + ", nonce=" + quote(nonce)
	if len(c.qop) > 0 {
		head += ", qop=" + quote(strings.Join(c.qop, ","))
	}
	out := make([]string, len(c.algorithms))
	for i, a := range c.algorithms {
		out[i] = head + ", algorithm=" + a + tail.String()
	}
	return out
}

// newNonceLocked issues a new random nonce, forgetting the oldest one if the
// table is full. d.mu must be held.
func (d *Digest) newNonceLocked() string {
	b := make([]byte, 24)
	rand.Read(b)
	n := base64.StdEncoding.EncodeToString(b)
	d.addNonceLocked(n)
	return n
}

// addNonceLocked makes n a valid nonce. d.mu must be held.
func (d *Digest) addNonceLocked(n string) {
	if d.nonces == nil {
		d.nonces = make(map[string]*nonceState)
	}
	if _, ok := d.nonces[n]; ok {
		return
	}
	d.nonces[n] = &nonceState{}
	d.order = append(d.order, n)
	if len(d.order) > maxNonces {
		drop := len(d.order) - maxNonces
		for _, old := range d.order[:drop] {
			delete(d.nonces, old)
		}
		d.order = append(d.order[:0:0], d.order[drop:]...)
	}
}

// ExpireNonces makes every nonce issued so far stale: the next request with
// one of them that would otherwise be accepted gets a rejection whose
// challenges carry stale=true and a new nonce.
func (d *Digest) ExpireNonces() {
	d.mu.Lock()
	for _, st := range d.nonces {
		st.stale = true
	}
	d.mu.Unlock()
}

// RotateNonceEvery makes a nonce last for n successful requests: the n-th
// success carries Proxy-Authentication-Info: nextnonce="..." with a new
// nonce, and the old nonce is stale from then on. n <= 0 turns rotation off.
func (d *Digest) RotateNonceEvery(n int) {
	d.mu.Lock()
	d.rotateEvery = max(n, 0)
	d.mu.Unlock()
}

// StaleCount returns how many rejections were answered with stale=true.
func (d *Digest) StaleCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.staleCount
}

// Authorized reports whether Verify accepts r.
func (d *Digest) Authorized(r *http.Request, accepted []Credentials) bool {
	return d.Verify(r, accepted).Authorized
}

// Verify checks the Digest credentials of r against accepted and updates the
// nonce state: see [Digest] for the rules.
func (d *Digest) Verify(r *http.Request, accepted []Credentials) Verdict {
	c := d.config()
	values := r.Header.Values("Proxy-Authorization")
	if len(values) != 1 {
		return Verdict{}
	}
	scheme, params, ok := parseCredentials(values[0])
	if !ok || !strings.EqualFold(scheme, "Digest") {
		return Verdict{}
	}
	cr, ok := d.check(c, params, r)
	if !ok {
		return Verdict{}
	}
	var body []byte
	if strings.EqualFold(cr.qop, "auth-int") {
		if body, ok = requestBody(r); !ok {
			return Verdict{}
		}
	}
	match := 0
	for _, a := range accepted {
		match |= cr.matches(a, body)
	}
	if match != 1 {
		return Verdict{}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.nonces[cr.nonce]
	switch {
	case st == nil:
		return Verdict{}
	case st.stale:
		d.staleCount++
		return Verdict{Challenges: d.challengesLocked(c, true)}
	}
	if cr.qop != "" {
		if st.used[cr.nc] {
			return Verdict{}
		}
		if st.used == nil {
			st.used = make(map[uint32]bool)
		}
		st.used[cr.nc] = true
	}
	st.successes++
	v := Verdict{Authorized: true}
	if d.rotateEvery > 0 && st.successes >= d.rotateEvery {
		st.stale = true
		v.Info = "nextnonce=" + quote(d.newNonceLocked())
	}
	return v
}

// needsBody reports whether r carries Digest credentials with qop=auth-int.
func (d *Digest) needsBody(r *http.Request) bool {
	values := r.Header.Values("Proxy-Authorization")
	if len(values) != 1 {
		return false
	}
	scheme, params, ok := parseCredentials(values[0])
	return ok && strings.EqualFold(scheme, "Digest") && strings.EqualFold(params["qop"], "auth-int")
}

// digestResponse is a Digest credentials value whose form has been checked.
type digestResponse struct {
	method, uri      string
	username         string // plain, or hashed when userhash
	userhash         bool
	realm, nonce     string
	algorithm        string // canonical
	newHash          func() hash.Hash
	qop, ncText      string // as received; "" without qop
	nc               uint32
	cnonce, response string
}

// check checks the parameters of a Digest credentials value against the
// configuration and the request, all but the response and the nonce state.
func (d *Digest) check(c digestConfig, p map[string]string, r *http.Request) (*digestResponse, bool) {
	cr := &digestResponse{method: r.Method}

	// The user.
	u, hasU := p["username"]
	ustar, hasStar := p["username*"]
	switch {
	case hasU == hasStar:
		return nil, false // neither, or both (RFC 7616, section 3.4)
	case hasStar:
		var ok bool
		if u, ok = decodeExtValue(ustar); !ok {
			return nil, false
		}
	}
	cr.username = u
	if h, ok := p["userhash"]; ok {
		switch strings.ToLower(h) {
		case "true":
			if !d.UserHash || hasStar {
				return nil, false
			}
			cr.userhash = true
		case "false":
		default:
			return nil, false
		}
	}

	// The challenge it answers.
	var ok bool
	if cr.realm, ok = p["realm"]; !ok || cr.realm != c.realm {
		return nil, false
	}
	if cr.nonce, ok = p["nonce"]; !ok || cr.nonce == "" {
		return nil, false
	}
	alg, ok := p["algorithm"]
	if !ok {
		alg = "MD5"
	}
	if cr.algorithm, ok = canonicalAlgorithm(alg); !ok || !contains(c.algorithms, cr.algorithm) {
		return nil, false
	}
	cr.newHash = digestAlgorithms[cr.algorithm]
	if d.Opaque != "" && p["opaque"] != d.Opaque {
		return nil, false
	}

	// The request.
	if cr.uri, ok = p["uri"]; !ok || cr.uri != r.RequestURI {
		return nil, false
	}

	// qop, nc and cnonce.
	qop, hasQOP := p["qop"]
	nc, hasNC := p["nc"]
	cnonce, hasCnonce := p["cnonce"]
	if len(c.qop) == 0 {
		if hasQOP || hasNC || hasCnonce {
			return nil, false
		}
	} else {
		if !hasQOP || !contains(c.qop, strings.ToLower(qop)) || !hasNC || !hasCnonce || cnonce == "" {
			return nil, false
		}
		n, ok := parseNC(nc)
		if !ok {
			return nil, false
		}
		cr.qop, cr.ncText, cr.nc, cr.cnonce = qop, nc, n, cnonce
	}

	if cr.response, ok = p["response"]; !ok {
		return nil, false
	}
	return cr, true
}

// matches returns 1 if the credentials a produce the user and the response of
// cr, 0 otherwise, in time independent of where they differ.
func (cr *digestResponse) matches(a Credentials, body []byte) int {
	h := func(s string) string {
		f := cr.newHash()
		io.WriteString(f, s)
		return hex.EncodeToString(f.Sum(nil))
	}
	wantUser := a.Username
	if cr.userhash {
		wantUser = h(a.Username + ":" + cr.realm)
	}
	userOK := subtle.ConstantTimeCompare([]byte(wantUser), []byte(cr.username))

	ha1 := h(a.Username + ":" + cr.realm + ":" + a.Password)
	if strings.HasSuffix(cr.algorithm, "-sess") {
		ha1 = h(ha1 + ":" + cr.nonce + ":" + cr.cnonce)
	}
	a2 := cr.method + ":" + cr.uri
	if strings.EqualFold(cr.qop, "auth-int") {
		f := cr.newHash()
		f.Write(body)
		a2 += ":" + hex.EncodeToString(f.Sum(nil))
	}
	ha2 := h(a2)
	var want string
	if cr.qop == "" {
		want = h(ha1 + ":" + cr.nonce + ":" + ha2)
	} else {
		want = h(ha1 + ":" + cr.nonce + ":" + cr.ncText + ":" + cr.cnonce + ":" + cr.qop + ":" + ha2)
	}
	respOK := subtle.ConstantTimeCompare([]byte(want), []byte(cr.response))
	return userOK & respOK
}

// parseNC parses a nonce count: exactly 8 hexadecimal digits, not all zero.
func parseNC(s string) (uint32, bool) {
	if len(s) != 8 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return 0, false
		}
	}
	n, err := strconv.ParseUint(s, 16, 32)
	return uint32(n), err == nil && n != 0
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// bufferedBody is the body of a request that a Proxy read whole before
// checking its credentials.
type bufferedBody struct {
	*bytes.Reader
	data []byte
}

func (*bufferedBody) Close() error { return nil }

// newBufferedBody returns a body that reads data.
func newBufferedBody(data []byte) *bufferedBody {
	return &bufferedBody{Reader: bytes.NewReader(data), data: data}
}

// requestBody returns the body of r for qop=auth-int: empty for CONNECT, the
// bytes a Proxy buffered, or else r.Body read whole (up to maxBody) and
// replaced with a reader of the same bytes.
func requestBody(r *http.Request) ([]byte, bool) {
	if r.Method == http.MethodConnect || r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	if b, ok := r.Body.(*bufferedBody); ok {
		return b.data, true
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body.Close()
	r.Body = newBufferedBody(data)
	return data, err == nil && len(data) <= maxBody
}

// parseCredentials parses a credentials value made of a scheme and
// comma-separated auth-params (RFC 9110, section 11.4): names are returned in
// lower case, values unquoted. It fails on a syntax error, a token68 and a
// parameter given twice.
func parseCredentials(v string) (scheme string, params map[string]string, ok bool) {
	s := strings.TrimLeft(v, " \t")
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	if i == 0 {
		return "", nil, false
	}
	scheme, s = s[:i], s[i:]
	params = make(map[string]string)
	if s != "" && s[0] != ' ' {
		return "", nil, false
	}
	skipSpace := func() {
		for s != "" && (s[0] == ' ' || s[0] == '\t') {
			s = s[1:]
		}
	}
	for {
		// Empty list elements are allowed (RFC 9110, section 5.6.1).
		skipSpace()
		for s != "" && s[0] == ',' {
			s = s[1:]
			skipSpace()
		}
		if s == "" {
			return scheme, params, true
		}
		i := 0
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		if i == 0 {
			return "", nil, false
		}
		name := strings.ToLower(s[:i])
		s = s[i:]
		skipSpace()
		if s == "" || s[0] != '=' {
			return "", nil, false
		}
		s = s[1:]
		skipSpace()
		var value string
		if s != "" && s[0] == '"' {
			var b strings.Builder
			closed := false
			j := 1
			for ; j < len(s); j++ {
				c := s[j]
				if c == '"' {
					closed = true
					break
				}
				if c == '\\' {
					j++
					if j == len(s) {
						break
					}
					c = s[j]
				}
				if c < ' ' && c != '\t' || c == 0x7f {
					return "", nil, false
				}
				b.WriteByte(c)
			}
			if !closed {
				return "", nil, false
			}
			value, s = b.String(), s[j+1:]
		} else {
			j := 0
			for j < len(s) && isTokenChar(s[j]) {
				j++
			}
			if j == 0 {
				return "", nil, false
			}
			value, s = s[:j], s[j:]
		}
		if _, dup := params[name]; dup {
			return "", nil, false
		}
		params[name] = value
		skipSpace()
		if s != "" && s[0] != ',' {
			return "", nil, false
		}
	}
}

// decodeExtValue decodes an RFC 8187 ext-value in the UTF-8 charset:
// UTF-8'language'percent-encoded.
func decodeExtValue(v string) (string, bool) {
	charset, rest, ok := strings.Cut(v, "'")
	if !ok || !strings.EqualFold(charset, "UTF-8") {
		return "", false
	}
	_, enc, ok := strings.Cut(rest, "'") // the language is ignored
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		switch {
		case c == '%':
			if i+2 >= len(enc) || !isHexDigit(enc[i+1]) || !isHexDigit(enc[i+2]) {
				return "", false
			}
			n, _ := strconv.ParseUint(enc[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		case isAttrChar(c):
			b.WriteByte(c)
		default:
			return "", false
		}
	}
	s := b.String()
	return s, utf8.ValidString(s)
}

// isAttrChar reports whether c is an RFC 8187 attr-char.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}
