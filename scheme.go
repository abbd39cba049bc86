package proxyauth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/proxyauth/proxyauth/internal/digest"
)

// Scheme is a proxy authentication scheme. The built-in ones are [Basic],
// [Digest] and [Bearer]; implement Scheme to add another, such as a
// vendor's token scheme, and list it in Config.Schemes. Implementations
// must be safe for concurrent use.
type Scheme interface {
	// Name returns the scheme's name as it appears in challenges, such
	// as "Basic". Challenges match it without regard to case.
	Name() string

	// Strength rates how well answering c protects the credentials:
	// when a proxy offers several challenges, the Transport answers the
	// one with the highest strength. A negative value means the scheme
	// cannot answer c. The built-in schemes rate Basic 10, Bearer 20,
	// NTLM 25, Digest 30 (MD5) to 51 (SHA-512-256-sess) and Negotiate 60.
	Strength(c Challenge) int

	// Start returns an Authorizer that answers c with creds. c is nil
	// when the Transport would send credentials before any challenge; a
	// scheme that cannot do that returns nil and no error.
	Start(c *Challenge, creds Credentials) (Authorizer, error)
}

// Authorizer makes the Proxy-Authorization values of one authentication
// login: one challenge answered with one set of credentials. It must be
// safe for concurrent use, since requests share the login of their proxy.
type Authorizer interface {
	// Authorize returns the Proxy-Authorization value for a request.
	Authorize(r AuthRequest) (string, error)
}

// AuthRequest describes a request to the proxy that an [Authorizer]
// answers.
type AuthRequest struct {
	// Method is the request's method, "CONNECT" for a tunnel.
	Method string
	// URI is the request-target as sent to the proxy: an absolute URL
	// for a forwarded request, host:port for a CONNECT.
	URI string
	// HasBody reports that the request has a body.
	HasBody bool
	// GetBody returns a new copy of the body; nil when the body cannot
	// be read again, or there is none.
	GetBody func() (io.ReadCloser, error)
	// Proxy is the proxy the request goes to, without userinfo.
	Proxy *url.URL
}

// ConnAuthorizer is the Authorizer of a scheme that authenticates a
// connection rather than a request, such as [NTLM] and [Negotiate]. For
// its logins the Transport opens the connections to the proxy itself
// and runs a [Handshake] on each before net/http uses it: for a tunnel,
// the CONNECT legs, after which net/http gets the open tunnel; for a
// plain http:// request, the legs before the last, whose value goes with
// the request itself. Later requests on an authenticated connection carry
// no Proxy-Authorization. Authorize is not called for it.
type ConnAuthorizer interface {
	Authorizer
	// Handshake begins the authentication of one new connection to the
	// proxy, for r: the CONNECT, or the first request on the connection.
	Handshake(ctx context.Context, r AuthRequest) (Handshake, error)
}

// Handshake is the authentication of one connection, in legs: each sends
// a Proxy-Authorization value, and the proxy answers with a 407 whose
// challenge leads to the next leg, or accepts, or refuses.
type Handshake interface {
	// Next returns the Proxy-Authorization value of the next leg. c is
	// the proxy's challenge for the scheme in its answer to the previous
	// leg, with the token in Token68; it is nil for the first leg. last
	// reports that the proxy is to accept or refuse this value rather
	// than answer it with another challenge.
	Next(c *Challenge) (value string, last bool, err error)
}

// Basic returns the Basic scheme (RFC 7617). It sends the password, merely
// encoded, with every request: see Config.RefuseCleartextBasic. It can
// send credentials before any challenge.
func Basic() Scheme { return basicScheme{} }

type basicScheme struct{}

func (basicScheme) Name() string           { return "Basic" }
func (basicScheme) Strength(Challenge) int { return 10 }

func (basicScheme) Start(_ *Challenge, c Credentials) (Authorizer, error) {
	if name, _, colon := strings.Cut(c.Username, ":"); colon {
		// What follows the colon is often the password, given as
		// "user:password" in the username: it is not quoted.
		return nil, fmt.Errorf("username %q contains a colon, which Basic authentication cannot carry", name+":xxxxx")
	}
	return fixedAuthorizer("Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))), nil
}

// fixedAuthorizer sends the same value with every request.
type fixedAuthorizer string

func (a fixedAuthorizer) Authorize(AuthRequest) (string, error) { return string(a), nil }

// Bearer returns the Bearer scheme (RFC 6750) for proxies that take a
// token: the token is Credentials.Password, and Username is ignored. It
// is built on the public [Scheme] interface alone, as a model for
// schemes of your own. It can send the token before any challenge.
func Bearer() Scheme { return bearerScheme{} }

type bearerScheme struct{}

func (bearerScheme) Name() string           { return "Bearer" }
func (bearerScheme) Strength(Challenge) int { return 20 }

func (bearerScheme) Start(_ *Challenge, c Credentials) (Authorizer, error) {
	if c.Password == "" {
		return nil, errors.New("the Bearer scheme needs a token in Credentials.Password")
	}
	if !isToken68(c.Password) {
		return nil, errors.New("the Bearer token is not a valid token68 (RFC 6750 section 2.1)")
	}
	return fixedAuthorizer("Bearer " + c.Password), nil
}

func isToken68(s string) bool {
	s = strings.TrimRight(s, "=")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("-._~+/", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// Digest returns the Digest scheme (RFC 7616): MD5, MD5-sess, SHA-256,
// SHA-256-sess, SHA-512-256 and SHA-512-256-sess, with qop auth (auth-int
// when the proxy offers nothing else and the body can be read again), or
// without qop for RFC 2069 proxies; userhash, opaque and stale nonces are
// handled. The password itself is never sent. It needs a challenge
// first; once a proxy has accepted an answer, later requests reuse the
// nonce with the next nonce count, saving the round trip.
func Digest() Scheme { return digestScheme{} }

type digestScheme struct{}

func (digestScheme) Name() string { return "Digest" }

func (digestScheme) Strength(c Challenge) int {
	if c.Params["nonce"] == "" {
		return -1
	}
	return digest.Strength(c.Params["algorithm"])
}

func (digestScheme) Start(c *Challenge, creds Credentials) (Authorizer, error) {
	if c == nil {
		return nil, nil
	}
	dc, err := digest.ParseChallenge(c.Params)
	if err != nil {
		return nil, err
	}
	s, err := digest.NewSession(dc, creds.Username, creds.Password, digest.Options{})
	if err != nil {
		return nil, err
	}
	return digestAuthorizer{s}, nil
}

type digestAuthorizer struct{ s *digest.Session }

func (a digestAuthorizer) Authorize(r AuthRequest) (string, error) {
	return a.s.Authorize(r.Method, r.URI, r.HasBody, r.GetBody)
}

// renew answers a stale=true challenge: the credentials were right, only
// the nonce expired, so the same credentials answer the new nonce.
func (a digestAuthorizer) renew(c Challenge) (Authorizer, bool) {
	if !strings.EqualFold(c.Params["stale"], "true") || c.Params["nonce"] == "" {
		return nil, false
	}
	return digestAuthorizer{a.s.WithNonce(c.Params["nonce"])}, true
}

// next takes up the nextnonce of a Proxy-Authentication-Info field.
func (a digestAuthorizer) next(authInfo string) (Authorizer, bool) {
	n := digest.NextNonce(authInfo)
	if n == "" || n == a.s.Challenge().Nonce {
		return nil, false
	}
	return digestAuthorizer{a.s.WithNonce(n)}, true
}

// renewer and nexter are what the built-in Digest adds to Authorizer.
type (
	renewer interface {
		renew(c Challenge) (Authorizer, bool)
	}
	nexter interface {
		next(authInfo string) (Authorizer, bool)
	}
)

// schemeSet is the compiled Config.Schemes and RefuseCleartextBasic for
// one proxy.
type schemeSet struct {
	schemes     []Scheme
	refuseBasic bool // Basic is refused to this proxy
}

// allowed reports whether s may be used with this proxy.
func (ss *schemeSet) allowed(s Scheme) bool {
	return !(ss.refuseBasic && isBasic(s))
}

// isBasic reports whether s is Basic, which sends the password itself.
func isBasic(s Scheme) bool { return strings.EqualFold(s.Name(), "Basic") }

// preemptive returns the first allowed scheme that can send credentials
// before any challenge, with its Authorizer; nil when there is none.
// Basic does not go first with a username written "DOMAIN\user": that is
// a Windows domain account, most likely for NTLM, whose password must not
// travel in clear to a proxy that did not ask for Basic.
func (ss *schemeSet) preemptive(c Credentials) (Scheme, Authorizer, error) {
	for _, s := range ss.schemes {
		if !ss.allowed(s) || isBasic(s) && strings.Contains(c.Username, `\`) {
			continue
		}
		a, err := s.Start(nil, c)
		if err != nil || a != nil {
			return s, a, err
		}
	}
	return nil, nil, nil
}

// candidate is an allowed scheme and the challenge it would answer.
type candidate struct {
	scheme    Scheme
	challenge *Challenge
	strength  int
}

// ranked returns the allowed answers to the challenges, the strongest
// first, each scheme once (with the challenge it answers best); or
// ErrNoAcceptableScheme when there is none.
func (ss *schemeSet) ranked(cs []Challenge) ([]candidate, error) {
	var (
		out     []candidate
		refused bool
	)
	for _, s := range ss.schemes {
		best := candidate{strength: -1}
		for i := range cs {
			if !strings.EqualFold(s.Name(), cs[i].Scheme) {
				continue
			}
			if !ss.allowed(s) {
				refused = true
				continue
			}
			if r := s.Strength(cs[i]); r > best.strength {
				best = candidate{scheme: s, challenge: &cs[i], strength: r}
			}
		}
		if best.scheme != nil {
			out = append(out, best)
		}
	}
	if len(out) > 0 {
		// Stable: of equal strengths, the scheme listed first.
		slices.SortStableFunc(out, func(a, b candidate) int { return b.strength - a.strength })
		return out, nil
	}
	names := make([]string, len(ss.schemes))
	for i, s := range ss.schemes {
		names[i] = s.Name()
	}
	err := fmt.Errorf("%w: the proxy offers %s; allowed: %s", ErrNoAcceptableScheme, offered(cs), strings.Join(names, ", "))
	if refused {
		err = fmt.Errorf("%w (Basic is refused over plain TCP by Config.RefuseCleartextBasic: it would send the password in clear; use an https:// proxy URL or a proxy that offers Digest)", err)
	}
	return nil, err
}

// choose returns the strongest allowed answer to the challenges.
func (ss *schemeSet) choose(cs []Challenge) (Scheme, *Challenge, error) {
	cands, err := ss.ranked(cs)
	if err != nil {
		return nil, nil, err
	}
	return cands[0].scheme, cands[0].challenge, nil
}

func offered(cs []Challenge) string {
	if len(cs) == 0 {
		return "no challenge"
	}
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = c.Scheme
	}
	return strings.Join(names, ", ")
}
