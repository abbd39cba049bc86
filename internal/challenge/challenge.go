// Package challenge parses HTTP authentication challenges as sent in
// Proxy-Authenticate and WWW-Authenticate header fields (RFC 9110, section
// 11).
//
// The scanner is hand-written: net/http has no challenge parser, and no
// maintained Go library handles RFC 9110 challenge lists correctly, where a
// comma separates both auth-params and whole challenges and a challenge may
// carry a token68 instead of params.
package challenge

import (
	"fmt"
	"strconv"
	"strings"
)

// maxSnippet is how many bytes of the input an error message may quote.
const maxSnippet = 16

// Limits on what Parse reads from hostile input. Real proxies and servers
// send a handful of challenges with a handful of params each (squid: Basic
// and Digest with four params; RFC 7616 Digest: at most nine), so these are
// far above anything legitimate while keeping the result, and the work done
// on it, small.
const (
	// maxChallenges bounds the challenges returned, counted across all
	// fields. Parsing stops at the first list element beyond it.
	maxChallenges = 64
	// maxParams bounds the auth-params read into one challenge, counting
	// every auth-param list element (valid, duplicate or malformed). Params
	// beyond it are scanned, so that a following challenge is still found,
	// but neither stored nor unescaped.
	maxParams = 64
)

var (
	errTooManyChallenges = "more than " + strconv.Itoa(maxChallenges) + " challenges, ignoring the rest"
	errTooManyParams     = "more than " + strconv.Itoa(maxParams) + " auth-params in a challenge, ignoring the rest of them"
)

// Challenge is one parsed challenge.
type Challenge struct {
	// Scheme is the auth-scheme, in canonical case for the known schemes
	// ("Basic", "Digest", "NTLM", "Negotiate", "Bearer") and as received
	// for others.
	Scheme string
	// Params holds the auth-params, keys lower-cased, values unquoted
	// (backslash escapes removed); nil when there are none.
	Params map[string]string
	// Token68 is the token68 form (e.g. NTLM/Negotiate blobs); "" when
	// absent.
	Token68 string
}

// Parse parses every challenge in every field value (a header may be
// repeated, and one field may hold several comma-separated challenges). It is
// best effort: it returns every challenge it could parse, plus a non-nil error
// describing the first problem (in input order). The error quotes at most a
// few bytes of the input.
//
// Parse bounds its work on hostile input. It returns at most 64 challenges,
// counted across all fields; at the first list element after the 64th
// challenge it reports an error and ignores the rest of the input. It reads
// at most 64 auth-params into one challenge; later auth-params of that
// challenge are skipped with an error, and parsing goes on with the next
// challenge. Time is linear in the total length of the fields, and what Parse
// allocates is bounded by the challenges and params it returns, never by the
// input it skips: values are substrings of the fields except quoted-strings
// with backslash escapes, which are copied.
func Parse(fields []string) ([]Challenge, error) {
	var out []Challenge
	var p parser
	for i, f := range fields {
		p.s, p.field = f, i
		out = p.parse(out)
		if p.stop {
			break
		}
	}
	return out, p.err
}

// Canonical returns the canonical spelling of a scheme name if it matches one
// of the known schemes (Basic, Digest, NTLM, Negotiate, Bearer) ignoring ASCII
// case, or the name unchanged.
func Canonical(scheme string) string {
	for _, k := range [...]string{"Basic", "Digest", "NTLM", "Negotiate", "Bearer"} {
		if asciiEqualFold(scheme, k) {
			return k
		}
	}
	return scheme
}

// parser scans field values one after another and remembers the first error
// across all of them, so that garbage in many fields costs one error value.
type parser struct {
	s     string // the field being parsed
	field int    // its index, for error messages
	err   error  // the first error
	stop  bool   // the challenge limit was reached
}

func (p *parser) fail(pos int, msg string) {
	if p.err != nil {
		return
	}
	if pos >= len(p.s) {
		p.err = fmt.Errorf("challenge: field %d, offset %d: %s at end of input", p.field, pos, msg)
		return
	}
	snip := p.s[pos:]
	if len(snip) > maxSnippet {
		snip = snip[:maxSnippet]
	}
	p.err = fmt.Errorf("challenge: field %d, offset %d: %s near %q", p.field, pos, msg, snip)
}

// parse appends the challenges of the field to out.
func (p *parser) parse(out []Challenge) []Challenge {
	s := p.s
	i := 0
	for {
		i = skipSeps(s, i)
		if i >= len(s) {
			return out
		}
		if len(out) >= maxChallenges {
			p.fail(i, errTooManyChallenges)
			p.stop = true
			return out
		}
		start := i
		i = skipToken(s, i)
		if i == start {
			p.fail(i, "expected auth-scheme")
			i = skipElement(s, i)
			continue
		}
		j := skipOWS(s, i)
		if j < len(s) && s[j] == '=' {
			// "realm=x" or "Basic = x": a token68 cannot start with "=",
			// so this is an auth-param with no auth-scheme before it.
			p.fail(start, "expected auth-scheme before auth-param")
			i = skipElement(s, j)
			continue
		}
		c := Challenge{Scheme: Canonical(s[start:i])}
		switch {
		case j >= len(s) || s[j] == ',': // a bare scheme
			i = j
		case j == i:
			p.fail(i, "expected whitespace after auth-scheme")
			i = skipElement(s, i)
			continue
		default:
			i = p.parseRest(&c, j)
		}
		out = append(out, c)
	}
}

// parseRest fills c from the token68 or auth-param list starting at i, and
// returns where the next challenge may start.
func (p *parser) parseRest(c *Challenge, i int) int {
	s := p.s
	if end, ok := token68(c.Scheme, s, i); ok {
		c.Token68 = s[i:end]
		return end
	}
	for n := 1; ; n++ {
		if n == maxParams+1 {
			p.fail(i, errTooManyParams)
		}
		i = skipOWS(s, p.param(c, i, n <= maxParams))
		if i < len(s) && s[i] != ',' {
			p.fail(i, "expected ','")
			if looksLikeParam(s, i) {
				continue // best effort: treat the missing comma as present
			}
			i = skipElement(s, i)
		}
		// After a comma, a token followed by "=" continues this challenge;
		// anything else starts the next one.
		i = skipSeps(s, i)
		if i >= len(s) || !looksLikeParam(s, i) {
			return i
		}
	}
}

// param parses one auth-param at i and returns the position after it. It
// stores the param in c only if keep is set. On error it skips to the end of
// the list element.
func (p *parser) param(c *Challenge, i int, keep bool) int {
	s := p.s
	start := i
	i = skipToken(s, i)
	if i == start {
		p.fail(i, "expected auth-param")
		return skipElement(s, i)
	}
	name := s[start:i]
	i = skipOWS(s, i)
	if i >= len(s) || s[i] != '=' {
		p.fail(i, "expected '=' after auth-param name")
		return skipElement(s, i)
	}
	i = skipOWS(s, i+1)
	var val string
	var esc bool
	if i < len(s) && s[i] == '"' {
		v, e, end, ok := p.quoted(i)
		if !ok {
			return end
		}
		val, esc, i = v, e, end
	} else {
		vs := i
		i = skipToken(s, i)
		if i == vs {
			p.fail(i, "expected auth-param value")
			return skipElement(s, i)
		}
		if i < len(s) && s[i] != ',' && s[i] != ' ' && s[i] != '\t' {
			// The token stops at a byte that cannot end it: storing
			// the part before would hand out a truncated value.
			p.fail(i, "invalid byte in auth-param value")
			return skipElement(s, i)
		}
		val = s[vs:i]
	}
	if !keep {
		return i
	}
	if hasParam(c.Params, name) {
		p.fail(start, "duplicate auth-param")
		return i
	}
	if esc {
		val = unescape(val)
	}
	if c.Params == nil {
		c.Params = make(map[string]string)
	}
	c.Params[strings.ToLower(name)] = val // tokens are ASCII
	return i
}

// hasParam reports whether m holds name, ignoring ASCII case. The keys of m
// are lower case. It does not allocate.
func hasParam(m map[string]string, name string) bool {
	if _, ok := m[name]; ok || !hasUpper(name) {
		return ok
	}
	for k := range m {
		if asciiEqualFold(k, name) {
			return true
		}
	}
	return false
}

// quoted scans the quoted-string whose opening quote is at i. It returns its
// content without the quotes and still escaped, whether the content holds a
// backslash escape, the position after the closing quote (or the end of
// input) and whether the string was valid.
func (p *parser) quoted(i int) (string, bool, int, bool) {
	s := p.s
	bad, esc := -1, false
	for j := i + 1; j < len(s); j++ {
		switch c := s[j]; {
		case c == '"':
			if bad >= 0 {
				p.fail(bad, "invalid byte in quoted-string")
				return "", false, j + 1, false
			}
			return s[i+1 : j], esc, j + 1, true
		case c == '\\':
			esc = true
			j++
			if j < len(s) && !isQuotedPair(s[j]) && bad < 0 {
				bad = j
			}
		case !isQDText(c) && bad < 0:
			bad = j
		}
	}
	p.fail(i, "unterminated quoted-string")
	return "", false, len(s), false
}

// token68 reports whether a token68 starts at i and is the only thing in its
// list element, and returns its end. For schemes whose specifications allow
// only auth-params, "name=" is read as a param missing its value instead.
func token68(scheme, s string, i int) (int, bool) {
	j := i
	for j < len(s) && isToken68(s[j]) {
		j++
	}
	if j == i {
		return 0, false
	}
	k := j
	for k < len(s) && s[k] == '=' {
		k++
	}
	if e := skipOWS(s, k); e < len(s) && s[e] != ',' {
		return 0, false
	}
	if k-j == 1 && skipToken(s, i) == j && (scheme == "Basic" || scheme == "Digest" || scheme == "Bearer") {
		return 0, false
	}
	return k, true
}

// looksLikeParam reports whether an auth-param (token BWS "=") starts at i.
func looksLikeParam(s string, i int) bool {
	j := skipToken(s, i)
	if j == i {
		return false
	}
	j = skipOWS(s, j)
	return j < len(s) && s[j] == '='
}

// skipElement returns the position of the next comma outside a quoted string
// at or after i, or len(s).
func skipElement(s string, i int) int {
	in := false
	for ; i < len(s); i++ {
		switch s[i] {
		case '"':
			in = !in
		case '\\':
			if in {
				i++
			}
		case ',':
			if !in {
				return i
			}
		}
	}
	return len(s)
}

func unescape(q string) string {
	var b strings.Builder
	b.Grow(len(q))
	for i := 0; i < len(q); i++ {
		if q[i] == '\\' && i+1 < len(q) {
			i++
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func skipOWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	return i
}

// skipSeps skips whitespace and empty list elements.
func skipSeps(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == ',') {
		i++
	}
	return i
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func skipToken(s string, i int) int {
	for i < len(s) && isTChar(s[i]) {
		i++
	}
	return i
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Byte classes, as tables: the scanner consults them for every input byte.
var tchar, token68char = byteClass("!#$%&'*+-.^_`|~"), byteClass("-._~+/")

// byteClass returns the set of ASCII letters and digits plus extra.
func byteClass(extra string) (set [256]bool) {
	for c := range set {
		set[c] = isAlnum(byte(c)) || strings.IndexByte(extra, byte(c)) >= 0
	}
	return set
}

// isTChar reports whether c is an RFC 9110 tchar.
func isTChar(c byte) bool { return tchar[c] }

// isToken68 reports whether c may appear in a token68 before its "=" padding.
func isToken68(c byte) bool { return token68char[c] }

// isQDText reports whether c may appear unescaped in a quoted-string
// (HTAB, SP, VCHAR except '"' and '\\', obs-text).
func isQDText(c byte) bool {
	return c == '\t' || c >= 0x20 && c != 0x7f && c != '"' && c != '\\'
}

// isQuotedPair reports whether c may follow a backslash in a quoted-string.
func isQuotedPair(c byte) bool {
	return c == '\t' || c >= 0x20 && c != 0x7f
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
