package proxyauthtest

import (
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// defaultRealm is the realm used when none is configured.
const defaultRealm = "proxyauthtest"

// Credentials is a username and password pair that a proxy accepts. Either
// may be empty.
type Credentials struct {
	Username, Password string
}

// Authenticator is a proxy authentication scheme: it produces the challenges
// sent with a rejection and checks the credentials of a request. It is
// pluggable so that schemes other than Basic (such as Digest) can be added.
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
