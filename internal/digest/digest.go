// Package digest implements the client side of HTTP Digest authentication
// (RFC 7616, and RFC 2069 servers that offer no qop) for answering proxy
// challenges.
//
// A caller parses a challenge's auth-params with [ParseChallenge], picks the
// strongest of several Digest challenges with [Strength], creates a [Session]
// for the chosen challenge and the user's credentials with [NewSession], and
// calls [Session.Authorize] for every request to get the value of its
// Proxy-Authorization (or Authorization) field. When the server sends a new
// nonce (a stale=true challenge, or a nextnonce in Authentication-Info, see
// [NextNonce]), [Session.WithNonce] gives a session for it.
//
// A Session never stores the password: it keeps only H(username:realm:password),
// so its errors cannot quote the password (they may wrap errors from the
// caller's getBody or Options.Rand).
package digest

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"sync"
	"sync/atomic"
)

// Challenge is a Digest challenge's parameters.
type Challenge struct {
	// Realm is the realm parameter; "" when absent.
	Realm string
	// Nonce is the nonce parameter.
	Nonce string
	// Opaque is the opaque parameter, returned as it is; "" when absent.
	Opaque string
	// Algorithm is the algorithm as received; "" when absent (which
	// means MD5).
	Algorithm string
	// QOP lists the offered qop values, lower-cased, e.g. ["auth",
	// "auth-int"]; nil when the server sent no qop (RFC 2069).
	QOP []string
	// Stale reports stale=true: the nonce expired, the credentials did
	// not fail.
	Stale bool
	// UserHash reports userhash=true: the username is sent hashed.
	UserHash bool
	// Charset is "UTF-8" when the server sent charset=UTF-8, else "".
	Charset string
}

// clone returns a copy of c that shares no memory with it.
func (c *Challenge) clone() Challenge {
	d := *c
	if c.QOP != nil {
		d.QOP = append([]string{}, c.QOP...)
	}
	return d
}

// ParseChallenge builds a Challenge from auth-params (keys already
// lower-cased, values unquoted, as a parser gives them). It returns an error
// when the nonce is missing, when the algorithm is not supported, when a qop
// parameter offers neither auth nor auth-int, or when the realm, nonce or
// opaque contains a character that cannot be sent back in a quoted-string.
// Error messages start with "digest: ".
func ParseChallenge(params map[string]string) (*Challenge, error) {
	c := &Challenge{
		Realm:     params["realm"],
		Nonce:     params["nonce"],
		Opaque:    params["opaque"],
		Algorithm: params["algorithm"],
		Stale:     asciiEqualFold(params["stale"], "true"),
		UserHash:  asciiEqualFold(params["userhash"], "true"),
	}
	if asciiEqualFold(params["charset"], "UTF-8") {
		c.Charset = "UTF-8"
	}
	if q, ok := params["qop"]; ok {
		c.QOP = []string{}
		for _, v := range strings.Split(q, ",") {
			v = asciiLower(strings.Trim(v, " \t"))
			if v != "" {
				c.QOP = append(c.QOP, v)
			}
		}
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// validate checks what a Session needs from a challenge.
func (c *Challenge) validate() error {
	if c.Nonce == "" {
		return errors.New("digest: the challenge has no nonce")
	}
	if _, _, ok := algorithmHash(c.Algorithm); !ok {
		return fmt.Errorf("digest: unsupported algorithm %q", truncate(c.Algorithm))
	}
	if c.QOP != nil {
		auth, authInt := offers(c.QOP)
		if !auth && !authInt {
			return fmt.Errorf("digest: the challenge offers qop %q, which has neither auth nor auth-int", truncate(strings.Join(c.QOP, ",")))
		}
	}
	for _, f := range [...]struct{ name, v string }{{"realm", c.Realm}, {"nonce", c.Nonce}, {"opaque", c.Opaque}} {
		if !quotable(f.v) {
			return fmt.Errorf("digest: the challenge's %s contains a character that cannot be sent in a quoted-string", f.name)
		}
	}
	return nil
}

// offers reports whether qop lists auth and auth-int.
func offers(qop []string) (auth, authInt bool) {
	for _, q := range qop {
		switch asciiLower(q) {
		case "auth":
			auth = true
		case "auth-int":
			authInt = true
		}
	}
	return auth, authInt
}

// Strength ranks an algorithm for choosing among several Digest challenges:
// higher is stronger. MD5 is 30, MD5-sess 31, SHA-256 40, SHA-256-sess 41,
// SHA-512-256 50 and SHA-512-256-sess 51; an unsupported algorithm is -1. The
// name is matched ignoring ASCII case, and "" counts as MD5.
func Strength(algorithm string) int {
	switch asciiLower(algorithm) {
	case "", "md5":
		return 30
	case "md5-sess":
		return 31
	case "sha-256":
		return 40
	case "sha-256-sess":
		return 41
	case "sha-512-256":
		return 50
	case "sha-512-256-sess":
		return 51
	}
	return -1
}

// algorithmHash returns the hash function of an algorithm and whether it is
// a -sess variant.
func algorithmHash(algorithm string) (newHash func() hash.Hash, sess, ok bool) {
	switch asciiLower(algorithm) {
	case "", "md5":
		return md5.New, false, true
	case "md5-sess":
		return md5.New, true, true
	case "sha-256":
		return sha256.New, false, true
	case "sha-256-sess":
		return sha256.New, true, true
	case "sha-512-256":
		return sha512.New512_256, false, true
	case "sha-512-256-sess":
		return sha512.New512_256, true, true
	}
	return nil, false, false
}

// Options tunes a Session; the zero value is the production setting.
type Options struct {
	// Rand is the source of cnonce bytes; nil means crypto/rand.Reader
	// (tests use a fixed reader).
	Rand io.Reader
}

// cnonceFunc appends a new client nonce to dst.
type cnonceFunc func(dst []byte) ([]byte, error)

// cnonceBytes is how many random bytes a cnonce carries.
const cnonceBytes = 16

// randCnonce returns a cnonceFunc reading from r, or nil for crypto/rand
// when r is nil. Reads from a caller's reader are serialized, since it need
// not be safe for concurrent use.
func randCnonce(r io.Reader) cnonceFunc {
	if r == nil {
		return nil
	}
	var mu sync.Mutex
	return func(dst []byte) ([]byte, error) {
		var b [cnonceBytes]byte
		mu.Lock()
		err := readFull(r, b[:])
		mu.Unlock()
		if err != nil {
			return dst, fmt.Errorf("digest: generating a cnonce: %w", err)
		}
		return hex.AppendEncode(dst, b[:]), nil
	}
}

// appendCnonce appends a new client nonce to dst. crypto/rand is called
// directly rather than through a cnonceFunc, so that dst can stay on the
// caller's stack.
func (s *Session) appendCnonce(dst []byte) ([]byte, error) {
	if s.gen != nil {
		return s.gen(dst)
	}
	var b [cnonceBytes]byte
	rand.Read(b[:]) // never fails: it crashes the program rather than return weak bytes
	return hex.AppendEncode(dst, b[:]), nil
}

// newCnonce returns a new client nonce as a string.
func (s *Session) newCnonce() (string, error) {
	var buf [2 * cnonceBytes]byte
	b, err := s.appendCnonce(buf[:0])
	return string(b), err
}

// readFull is io.ReadFull that gives up on a reader that keeps returning no
// bytes and no error, instead of looping forever.
func readFull(r io.Reader, b []byte) error {
	empty := 0
	for len(b) > 0 {
		n, err := r.Read(b)
		if n < 0 || n > len(b) {
			return errors.New("invalid read count")
		}
		b = b[n:]
		if len(b) == 0 {
			return nil
		}
		if err != nil {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
		if n == 0 {
			if empty++; empty >= 100 {
				return io.ErrNoProgress
			}
		} else {
			empty = 0
		}
	}
	return nil
}

// Session answers requests for one nonce with one username/password. It is
// safe for concurrent use: every Authorize call takes the next nonce count
// (nc) atomically, so concurrent requests never reuse an nc.
type Session struct {
	c            Challenge
	newHash      func() hash.Hash
	sess         bool       // a -sess algorithm
	auth         bool       // qop=auth offered
	authInt      bool       // qop=auth-int offered
	username     string     // as sent: the userhash, or the name itself
	usernameStar bool       // send username*= (RFC 8187) instead of username=
	secret       string     // hex H(username:realm:password)
	ha1          string     // hex HA1 for the current nonce
	cnonce       string     // the session's cnonce for -sess algorithms
	gen          cnonceFunc // cnonce source
	nc           atomic.Uint64

	// Set by prepare: the header value up to `uri=`, from the uri to the
	// response value, and after the cnonce; and the response hash's input
	// up to the nc.
	head, mid, tail string
	respPrefix      string
	kind            hashKind
	bad             string // a parameter that cannot be sent (a nonce from Authentication-Info); "" if none
}

// NewSession returns a Session answering challenge c with the given
// credentials. It fails if c is not a usable challenge (see ParseChallenge),
// if a -sess algorithm comes without qop, if the username holds control
// characters and the challenge neither announces charset=UTF-8 nor asks for
// userhash, or if no cnonce can be generated. The password may be anything;
// the session does not keep it.
func NewSession(c *Challenge, username, password string, opt Options) (*Session, error) {
	return newSession(c, username, password, randCnonce(opt.Rand))
}

// newSession is NewSession with an explicit cnonce source.
func newSession(c *Challenge, username, password string, gen cnonceFunc) (*Session, error) {
	if c == nil {
		return nil, errors.New("digest: no challenge")
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	newHash, sess, _ := algorithmHash(c.Algorithm)
	s := &Session{c: c.clone(), newHash: newHash, sess: sess, gen: gen}
	s.auth, s.authInt = offers(c.QOP)
	if c.QOP == nil && sess {
		return nil, fmt.Errorf("digest: algorithm %s needs a qop, which the challenge does not offer", c.Algorithm)
	}
	switch {
	case c.UserHash:
		s.username = s.h(username + ":" + c.Realm)
	case quotableASCII(username):
		s.username = username
	case asciiEqualFold(c.Charset, "UTF-8"):
		// RFC 7616, section 4 and RFC 8187: username*=UTF-8''...
		s.username = username
		s.usernameStar = true
	case quotable(username):
		// No charset announced: send the raw UTF-8 bytes as obs-text.
		s.username = username
	default:
		return nil, errors.New("digest: the username contains control characters and the challenge does not announce charset=UTF-8")
	}
	s.secret = s.h(username + ":" + c.Realm + ":" + password)
	s.ha1 = s.secret
	if sess {
		cn, err := s.newCnonce()
		if err != nil {
			return nil, err
		}
		s.cnonce = cn
		s.ha1 = s.h(s.secret + ":" + c.Nonce + ":" + cn)
	}
	s.prepare()
	return s, nil
}

// prepare computes the parts of every answer that do not change from one
// request to the next: the header's fixed parameters and the start of the
// response's hash input. Authorize then works in buffers of its own, which
// keeps it to one allocation, the header value.
func (s *Session) prepare() {
	w := headerWriter{}
	w.b.WriteString("Digest ")
	if s.usernameStar {
		w.name("username*")
		w.b.WriteString("UTF-8''")
		w.b.WriteString(encodeRFC8187(s.username))
	} else {
		w.quoted("username", s.username)
	}
	w.quoted("realm", s.c.Realm)
	w.quoted("nonce", s.c.Nonce)
	w.name("uri")
	s.head, s.bad = w.b.String(), w.bad

	w = headerWriter{first: true}
	if s.c.Algorithm != "" {
		w.token("algorithm", s.c.Algorithm)
	}
	w.name("response")
	s.mid = w.b.String()

	w = headerWriter{first: true}
	if s.c.Opaque != "" {
		w.quoted("opaque", s.c.Opaque)
	}
	if s.c.UserHash {
		w.token("userhash", "true")
	}
	s.tail = w.b.String()
	if s.bad == "" {
		s.bad = w.bad
	}
	s.respPrefix = s.ha1 + ":" + s.c.Nonce + ":"
	s.kind = kindOf(s.c.Algorithm)
}

// hashKind names the hash of an algorithm, for appendSum.
type hashKind uint8

const (
	hashMD5 hashKind = iota
	hashSHA256
	hashSHA512_256
)

func kindOf(algorithm string) hashKind {
	switch strings.TrimSuffix(asciiLower(algorithm), "-sess") {
	case "sha-256":
		return hashSHA256
	case "sha-512-256":
		return hashSHA512_256
	}
	return hashMD5
}

// appendSum appends the lower-case hex hash of data to dst. The one-shot
// sums of the standard library allocate nothing, where a hash.Hash would.
func appendSum(k hashKind, dst, data []byte) []byte {
	switch k {
	case hashSHA256:
		h := sha256.Sum256(data)
		return hex.AppendEncode(dst, h[:])
	case hashSHA512_256:
		h := sha512.Sum512_256(data)
		return hex.AppendEncode(dst, h[:])
	}
	h := md5.Sum(data)
	return hex.AppendEncode(dst, h[:])
}

// h returns the lower-case hex digest of v.
func (s *Session) h(v string) string {
	d := s.newHash()
	io.WriteString(d, v)
	return hex.EncodeToString(d.Sum(nil))
}

// Authorize returns the value of a Proxy-Authorization (or Authorization)
// field answering the challenge for a request. method is e.g. "GET" or
// "CONNECT"; uri is the request-target exactly as sent (absolute URL for a
// proxied plain request, host:port for CONNECT). getBody returns a fresh copy
// of the body for qop=auth-int; it is nil when the request has no body (then
// the body hash is of the empty string) or when the body cannot be replayed
// (hasBody reports which). Authorize prefers qop=auth when the server offers
// it, and fails if the server offers only auth-int and the body cannot be
// read again.
func (s *Session) Authorize(method, uri string, hasBody bool, getBody func() (io.ReadCloser, error)) (string, error) {
	if s == nil || s.newHash == nil {
		return "", errors.New("digest: nil Session")
	}
	var qop, bodyHash string
	switch {
	case s.c.QOP == nil:
		// RFC 2069: no qop, nc or cnonce.
	case s.auth:
		qop = "auth"
	case s.authInt:
		qop = "auth-int"
		var err error
		if bodyHash, err = s.hashBody(hasBody, getBody); err != nil {
			return "", err
		}
	default:
		return "", errors.New("digest: the challenge offers neither qop=auth nor qop=auth-int")
	}

	bad := s.bad
	if bad == "" && !quotable(uri) {
		bad = "uri"
	}
	if bad != "" {
		return "", fmt.Errorf("digest: the %s contains a character that cannot be sent in a quoted-string", bad)
	}
	var (
		buf      [256]byte // the hash inputs, reused; a longer one spills to the heap
		ha2, res [2 * sha256.Size]byte
		ncBuf    [8]byte
		cnBuf    [2 * cnonceBytes]byte
	)
	in := append(buf[:0], method...)
	in = append(in, ':')
	in = append(in, uri...)
	if qop == "auth-int" {
		in = append(in, ':')
		in = append(in, bodyHash...)
	}
	h2 := appendSum(s.kind, ha2[:0], in)

	var nc, cnonce []byte
	in = append(in[:0], s.respPrefix...)
	if qop != "" {
		n := s.nc.Add(1)
		if n > 0xffffffff {
			return "", errors.New("digest: the nonce count is exhausted; a new nonce is needed")
		}
		nc = appendNC(ncBuf[:0], uint32(n))
		if s.sess {
			cnonce = append(cnBuf[:0], s.cnonce...)
		} else {
			var err error
			if cnonce, err = s.appendCnonce(cnBuf[:0]); err != nil {
				return "", err
			}
		}
		in = append(in, nc...)
		in = append(in, ':')
		in = append(in, cnonce...)
		in = append(in, ':')
		in = append(in, qop...)
		in = append(in, ':')
	}
	in = append(in, h2...)
	response := appendSum(s.kind, res[:0], in)

	var b strings.Builder
	b.Grow(len(s.head) + len(uri) + quoteCount(uri) + len(s.mid) + len(response) + len(qop) + len(cnonce) + len(s.tail) + 32)
	b.WriteString(s.head)
	writeQuoted(&b, uri)
	b.WriteString(s.mid)
	b.WriteByte('"')
	b.Write(response)
	b.WriteByte('"')
	if qop != "" {
		b.WriteString(", qop=")
		b.WriteString(qop)
		b.WriteString(", nc=")
		b.Write(nc)
		b.WriteString(", cnonce=\"")
		b.Write(cnonce)
		b.WriteByte('"')
	}
	b.WriteString(s.tail)
	return b.String(), nil
}

// appendNC appends n as the eight lower-case hex digits of an nc.
func appendNC(dst []byte, n uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, digits[n>>uint(shift)&0xf])
	}
	return dst
}

// quoteCount returns how many bytes of v need a backslash in a
// quoted-string.
func quoteCount(v string) int {
	return strings.Count(v, `"`) + strings.Count(v, `\`)
}

// hashBody returns the hex hash of the request body for qop=auth-int.
func (s *Session) hashBody(hasBody bool, getBody func() (io.ReadCloser, error)) (string, error) {
	if !hasBody {
		return s.h(""), nil
	}
	if getBody == nil {
		return "", errors.New("digest: the proxy accepts only qop=auth-int, which needs a body that can be read again")
	}
	rc, err := getBody()
	if err != nil {
		return "", fmt.Errorf("digest: getting the request body for qop=auth-int: %w", err)
	}
	d := s.newHash()
	if rc == nil {
		return hex.EncodeToString(d.Sum(nil)), nil
	}
	_, err = io.Copy(d, rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("digest: reading the request body for qop=auth-int: %w", err)
	}
	return hex.EncodeToString(d.Sum(nil)), nil
}

// WithNonce returns a new Session for the same credentials and challenge
// parameters but a new nonce (a stale=true challenge, or a nextnonce), with
// the nonce count starting again at 1. The receiver is unchanged. For a -sess
// algorithm the new session gets a new cnonce when one can be generated, and
// keeps the old one otherwise.
func (s *Session) WithNonce(nonce string) *Session {
	if s == nil {
		return nil
	}
	n := &Session{
		c:            s.c.clone(),
		newHash:      s.newHash,
		sess:         s.sess,
		auth:         s.auth,
		authInt:      s.authInt,
		username:     s.username,
		usernameStar: s.usernameStar,
		secret:       s.secret,
		ha1:          s.secret,
		cnonce:       s.cnonce,
		gen:          s.gen,
	}
	n.c.Nonce = nonce
	if n.sess {
		if cn, err := n.newCnonce(); err == nil {
			n.cnonce = cn
		}
		n.ha1 = n.h(n.secret + ":" + nonce + ":" + n.cnonce)
	}
	n.prepare()
	return n
}

// Challenge returns the challenge the session answers (a copy).
func (s *Session) Challenge() Challenge {
	if s == nil {
		return Challenge{}
	}
	return s.c.clone()
}

// headerWriter builds a credentials field value and remembers the first
// parameter whose value cannot be sent.
type headerWriter struct {
	b     strings.Builder
	first bool
	bad   string
}

// name writes the separator and n=.
func (w *headerWriter) name(n string) {
	if w.first {
		w.b.WriteString(", ")
	}
	w.first = true
	w.b.WriteString(n)
	w.b.WriteByte('=')
}

// quoted writes n="v" with '"' and '\' escaped.
func (w *headerWriter) quoted(n, v string) {
	if !quotable(v) && w.bad == "" {
		w.bad = n
	}
	w.name(n)
	writeQuoted(&w.b, v)
}

// writeQuoted writes v as a quoted-string, with '"' and '\' escaped.
func writeQuoted(b *strings.Builder, v string) {
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}

// token writes n=v unquoted.
func (w *headerWriter) token(n, v string) {
	w.name(n)
	w.b.WriteString(v)
}

// quotable reports whether v can be sent in a quoted-string (RFC 9110,
// section 5.6.4): HTAB, SP, visible ASCII and obs-text, with '"' and '\'
// escaped.
func quotable(v string) bool {
	for i := 0; i < len(v); i++ {
		if !isQDTextOrEscapable(v[i]) {
			return false
		}
	}
	return true
}

// quotableASCII is quotable without obs-text: HTAB, SP and visible ASCII.
func quotableASCII(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c >= 0x80 || !isQDTextOrEscapable(c) {
			return false
		}
	}
	return true
}

// isQDTextOrEscapable reports whether c may appear in a quoted-string, as
// qdtext or in a quoted-pair.
func isQDTextOrEscapable(c byte) bool {
	return c == '\t' || (c >= ' ' && c != 0x7f)
}

// encodeRFC8187 percent-encodes v as an RFC 8187 value-chars.
func encodeRFC8187(v string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isAttrChar(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&0xf])
	}
	return b.String()
}

// isAttrChar reports whether c is an RFC 8187 attr-char.
func isAttrChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$&+-.^_`|~", c) >= 0
}

// NextNonce extracts nextnonce from an Authentication-Info /
// Proxy-Authentication-Info field value, or returns "" if there is none. The
// value is a comma-separated list of auth-params whose values are tokens or
// quoted-strings with backslash escapes; a malformed element is skipped, and
// a malformed nextnonce yields "".
func NextNonce(authInfo string) string {
	s := authInfo
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && isTChar(s[i]) {
			i++
		}
		key := s[start:i]
		i = skipOWS(s, i)
		if key == "" || i >= len(s) || s[i] != '=' {
			i = skipElement(s, i)
			continue
		}
		i = skipOWS(s, i+1)
		var val string
		valid := true
		if i < len(s) && s[i] == '"' {
			val, i, valid = readQuoted(s, i)
		} else {
			st := i
			for i < len(s) && isTChar(s[i]) {
				i++
			}
			val = s[st:i]
		}
		i = skipOWS(s, i)
		if i < len(s) && s[i] != ',' {
			valid = false
			i = skipElement(s, i)
		}
		if asciiEqualFold(key, "nextnonce") {
			if !valid {
				return ""
			}
			return val
		}
	}
	return ""
}

// readQuoted reads the quoted-string starting at s[i] == '"' and returns its
// unescaped value and the index after it. ok is false for an unterminated
// string or one with characters a quoted-string cannot hold; the index is then
// where scanning should resume.
func readQuoted(s string, i int) (string, int, bool) {
	var b strings.Builder
	ok := true
	for i++; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, ok
		case c == '\\':
			if i+1 >= len(s) {
				return "", len(s), false
			}
			i++
			c = s[i]
		}
		if !isQDTextOrEscapable(c) {
			ok = false
		}
		b.WriteByte(c)
	}
	return "", len(s), false
}

// skipElement advances past the rest of a list element, to the next comma
// outside a quoted-string or the end of s.
func skipElement(s string, i int) int {
	for i < len(s) && s[i] != ',' {
		if s[i] == '"' {
			_, i, _ = readQuoted(s, i)
			continue
		}
		i++
	}
	return i
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// isTChar reports whether c is an RFC 9110 tchar.
func isTChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// asciiLower lower-cases ASCII letters only, so that no Unicode case folding
// can turn a non-ASCII value into a known name.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

func asciiEqualFold(a, b string) bool {
	return len(a) == len(b) && asciiLower(a) == asciiLower(b)
}

// truncate shortens a server-sent value for an error message.
func truncate(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
