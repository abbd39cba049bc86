package proxyauthtest

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
)

// defaultRealm is the realm used when none is configured.
const defaultRealm = "proxyauthtest"

// Credentials is a username and password pair that a proxy accepts. Either
// may be empty.
type Credentials struct {
	// Username is the username the client must send.
	Username string
	// Password is the password the client must send with Username.
	Password string
}

// Authenticator is a proxy authentication scheme: it produces the challenges
// sent with a rejection and checks the credentials of a request. The package
// provides [Basic], [Digest], [NTLM] and [Multi]; other schemes can be
// plugged in. An Authenticator that needs to answer more than yes or no (a
// stale nonce, a next nonce) also implements [Verifier]; one that
// authenticates a connection rather than a request (NTLM) implements
// [ConnVerifier].
//
// A [Proxy] calls an Authenticator from several goroutines at once, so an
// implementation must be safe for concurrent use.
type Authenticator interface {
	// Challenges returns the Proxy-Authenticate field values sent with a
	// rejection, one field per value.
	Challenges() []string

	// Authorized reports whether r (a request as received by the proxy; for
	// CONNECT r.Method is "CONNECT" and r.RequestURI the authority) carries
	// valid credentials for one of accepted. It must not modify r.
	Authorized(r *http.Request, accepted []Credentials) bool
}

// Verifier is an optional extension of [Authenticator] for stateful schemes
// such as [Digest]. A [Proxy] whose Authenticator implements Verifier calls
// Verify instead of Authorized.
type Verifier interface {
	// Verify checks r against accepted, like Authorized. On success Info, if
	// not empty, is sent as the Proxy-Authentication-Info field of the
	// proxy's own answer (the 200 to a CONNECT) or added to the forwarded
	// response. On failure Challenges, if not nil, replaces Challenges() in
	// the rejection ([Digest] uses it to send stale=true).
	Verify(r *http.Request, accepted []Credentials) Verdict
}

// Verdict is the outcome of [Verifier.Verify]. It is a plain value.
type Verdict struct {
	// Authorized reports that the credentials were accepted.
	Authorized bool
	// Challenges are, on failure, the Proxy-Authenticate values to send
	// instead of Challenges(); nil means Challenges().
	Challenges []string
	// Info is, on success, the Proxy-Authentication-Info value to send;
	// "" means none.
	Info string
	// Leg is, for a scheme that authenticates a connection in several
	// legs, the leg of the handshake the request carried, recorded in
	// [Request.Leg]: for [NTLM], the type of the message, 1 for a NEGOTIATE
	// and 3 for an AUTHENTICATE (2 for a CHALLENGE, which no client should
	// send). 0 means none (no such message).
	Leg int
}

// verify applies a to r: through Verify when a implements [Verifier], through
// Authorized otherwise.
func verify(a Authenticator, r *http.Request, accepted []Credentials) Verdict {
	if v, ok := a.(Verifier); ok {
		return v.Verify(r, accepted)
	}
	return Verdict{Authorized: a.Authorized(r, accepted)}
}

// schemer is implemented by the Authenticators of this package, which know
// which schemes they accept without issuing a challenge.
type schemer interface {
	schemes() []string
}

// bodyReader is implemented by Authenticators that must read the body of a
// plain request to check it (Digest with qop=auth-int). needsBody reports
// whether r is such a request as far as its fields tell.
type bodyReader interface {
	needsBody(r *http.Request) bool
}

// validator is implemented by Authenticators whose configuration can be
// checked when a Proxy starts; validate panics on a bad configuration.
type validator interface {
	validate()
}

// Multi offers the challenges of every authenticator, in order, and accepts a
// request that any of them accepts (a proxy such as squid configured with
// Basic and Digest together).
//
// A request goes to the authenticators whose scheme is the scheme of its
// Proxy-Authorization field (compared without regard to case), so that
// Verify with its stale challenges and next nonces works through Multi; an
// authenticator not from this package, whose schemes Multi cannot know, is
// always consulted, and so is every [ConnVerifier] (such as [NTLM]) for a
// request without any Proxy-Authorization field, which its connection may
// have authenticated. The result implements [Verifier] and [ConnVerifier]; on
// a rejection where one authenticator supplied its own challenges (a stale
// Digest nonce, an NTLM CHALLENGE message), the challenges sent are those, in
// place, with every other authenticator's Challenges().
//
// The result is safe for concurrent use when the authenticators are.
func Multi(auths ...Authenticator) Authenticator {
	return multi(slices.Clone(auths))
}

// multi is the Authenticator returned by Multi.
type multi []Authenticator

// Challenges returns the challenges of every authenticator, in order.
func (m multi) Challenges() []string {
	var out []string
	for _, a := range m {
		out = append(out, a.Challenges()...)
	}
	return out
}

// Authorized reports whether one of the authenticators accepts r.
func (m multi) Authorized(r *http.Request, accepted []Credentials) bool {
	return m.Verify(r, accepted).Authorized
}

// Verify is VerifyConn with the connection of r if a [Proxy] received it,
// nil otherwise.
func (m multi) Verify(r *http.Request, accepted []Credentials) Verdict {
	return m.VerifyConn(connOf(r), r, accepted)
}

// VerifyConn routes r to the authenticators of its scheme and returns the
// verdict of the first that accepts it.
func (m multi) VerifyConn(conn *Conn, r *http.Request, accepted []Credentials) Verdict {
	scheme := singleScheme(r)
	bare := len(r.Header.Values("Proxy-Authorization")) == 0
	own := make([][]string, len(m))
	replaced := false
	leg := 0
	for i, a := range m {
		_, byConn := a.(ConnVerifier)
		if !handles(a, scheme) && !(bare && byConn) {
			continue
		}
		v := verifyOn(a, conn, r, accepted)
		if v.Authorized {
			return Verdict{Authorized: true, Info: v.Info, Leg: v.Leg}
		}
		if leg == 0 {
			leg = v.Leg
		}
		if v.Challenges != nil {
			own[i], replaced = v.Challenges, true
		}
	}
	if !replaced {
		return Verdict{Leg: leg}
	}
	out := []string{}
	for i, a := range m {
		if own[i] != nil {
			out = append(out, own[i]...)
		} else {
			out = append(out, a.Challenges()...)
		}
	}
	return Verdict{Challenges: out, Leg: leg}
}

func (m multi) schemes() []string {
	var out []string
	for _, a := range m {
		s, ok := a.(schemer)
		if !ok {
			return nil // unknown: consult always
		}
		out = append(out, s.schemes()...)
	}
	return out
}

func (m multi) needsBody(r *http.Request) bool {
	scheme := singleScheme(r)
	for _, a := range m {
		if b, ok := a.(bodyReader); ok && handles(a, scheme) && b.needsBody(r) {
			return true
		}
	}
	return false
}

func (m multi) validate() {
	for _, a := range m {
		if v, ok := a.(validator); ok {
			v.validate()
		}
	}
}

// handles reports whether a is to be consulted for a request whose single
// Proxy-Authorization field has the given scheme ("" when there is no such
// field or several).
func handles(a Authenticator, scheme string) bool {
	s, ok := a.(schemer)
	if !ok {
		return true
	}
	known := s.schemes()
	if known == nil {
		return true
	}
	if scheme == "" {
		return false
	}
	for _, k := range known {
		if strings.EqualFold(k, scheme) {
			return true
		}
	}
	return false
}

// singleScheme returns the scheme of the Proxy-Authorization field of r, or
// "" unless r has exactly one such field.
func singleScheme(r *http.Request) string {
	values := r.Header.Values("Proxy-Authorization")
	if len(values) != 1 {
		return ""
	}
	return authScheme(values[0])
}

// authScheme returns the scheme of a credentials value, in canonical case if
// it is a well-known scheme and as received otherwise, or "" if v has none.
func authScheme(v string) string {
	v = strings.TrimLeft(v, " \t")
	end := 0
	for end < len(v) && isTokenChar(v[end]) {
		end++
	}
	scheme := v[:end]
	for _, known := range [...]string{
		"Basic", "Bearer", "Concealed", "Digest", "DPoP", "GNAP", "HOBA", "Mutual",
		"Negotiate", "NTLM", "OAuth", "PrivateToken", "SCRAM-SHA-1", "SCRAM-SHA-256", "vapid",
	} {
		if strings.EqualFold(scheme, known) {
			return known
		}
	}
	return scheme
}

// isTokenChar reports whether c may appear in an RFC 9110 token.
func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// Basic is the Basic scheme (RFC 7617) as an [Authenticator]. Realm "" means
// "proxyauthtest".
//
// Authorized accepts a request that carries exactly one Proxy-Authorization
// field whose value is "Basic" (any case) followed by the base64 encoding of
// "username:password" for one of the accepted credentials. A request with
// several Proxy-Authorization fields is rejected: the field is a singleton
// (RFC 9110, section 11.7.2), so such a request is ambiguous.
//
// Basic is safe for concurrent use.
type Basic struct {
	// Realm is the realm of the challenge; "" means "proxyauthtest".
	Realm string
}

// Challenges returns the single challenge `Basic realm="..."`, with the realm
// written as a quoted-string.
func (b Basic) Challenges() []string {
	realm := b.Realm
	if realm == "" {
		realm = defaultRealm
	}
	return []string{"Basic realm=" + quote(realm)}
}

// Authorized reports whether r carries exactly one Proxy-Authorization field
// with Basic credentials that match one of accepted.
func (b Basic) Authorized(r *http.Request, accepted []Credentials) bool {
	values := r.Header.Values("Proxy-Authorization")
	if len(values) != 1 {
		return false
	}
	user, pass, ok := parseBasic(values[0])
	if !ok {
		return false
	}
	return credentialsMatch(accepted, user, pass)
}

func (Basic) schemes() []string { return []string{"Basic"} }

// parseBasic decodes the value of an Authorization or Proxy-Authorization
// field that holds Basic credentials.
func parseBasic(v string) (user, pass string, ok bool) {
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", false
	}
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimLeft(rest, " "))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(decoded), ":")
}

// credentialsMatch reports whether user and pass equal one of accepted. Each
// comparison takes time independent of where the strings differ.
func credentialsMatch(accepted []Credentials, user, pass string) bool {
	match := 0
	for _, c := range accepted {
		u := subtle.ConstantTimeCompare([]byte(c.Username), []byte(user))
		p := subtle.ConstantTimeCompare([]byte(c.Password), []byte(pass))
		match |= u & p
	}
	return match == 1
}

// quote returns s as an RFC 9110 quoted-string.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
