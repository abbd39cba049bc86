// Package proxyauth makes HTTP through authenticating proxies work, and fail
// clearly when it cannot.
//
// A proxy that wants credentials answers 407 Proxy Authentication Required;
// an origin server that wants them answers 401 Unauthorized. The two come
// from different hops, want different credentials and need different fixes,
// yet net/http mixes them up: it reports a 407 to a CONNECT (the request
// that opens a tunnel for an https:// target) as an untyped error string
// with the status and headers lost, while a 407 to a plain http:// request
// arrives as an ordinary response.
//
// [Transport] is an [http.RoundTripper] that attaches proxy credentials to
// the proxy hop only (the forwarded request for http:// targets, the CONNECT
// for https:// targets, never inside the tunnel and never to a server that
// is not the proxy) and turns every failure into a typed error that
// [errors.As] finds through the [*url.Error] that [http.Client] wraps it in:
//
//   - [*ProxyAuthError]: the proxy wants credentials, or other ones (407, a
//     401 the proxy sent by mistake, a SOCKS5 authentication failure). It
//     looks the same for http:// and https:// targets.
//   - [*ProxyError]: the proxy could not be used: unreachable, TLS failure,
//     or a CONNECT answered with a status such as 403 or 502.
//   - [*AuthError]: the origin server answered 401. The response still
//     reaches the caller, since it is the origin's answer; [CheckResponse]
//     and [Classify] turn it into an error for callers who want one.
//
// Start with [New] or [Wrap]. With Config.Proxies empty, the proxies come
// from HTTP_PROXY, HTTPS_PROXY and NO_PROXY, read when New runs.
//
// The subpackage proxyauthtest provides an authenticating forward proxy for
// tests, in the style of net/http/httptest.
package proxyauth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Config configures a [Transport]. New copies what it needs: changing a
// Config after New returns does not affect the Transport. Printing a
// Config, with fmt, as JSON or through slog, masks the password of each
// proxy URL (see [Config.Format] and [Config.MarshalJSON]).
type Config struct {
	// Proxies lists the proxy URLs, primary first, then fallbacks:
	// "http://", "https://" (TLS to the proxy), "socks5://" or
	// "socks5h://", each optionally with userinfo
	// ("http://user:pass@proxy:3128"; percent-encode reserved characters
	// such as @ : % # / ? in the username and password). A URL without a
	// scheme means "http://" ("proxy:3128" is "http://proxy:3128"). A URL
	// without a port gets the scheme's default port, as with net/http: 80
	// for http://, 443 for https://, 1080 for socks5:// and socks5h://
	// (not squid's 3128). A proxy URL has no path, query or fragment. Two
	// or more make a pool with health checks and failover: see
	// [PoolConfig]. Pool.Proxies gives the same list with settings per
	// proxy; set one of the two.
	//
	// Empty: the proxies come from the environment, read once when New
	// runs, through golang.org/x/net/http/httpproxy: HTTPS_PROXY for
	// https:// targets, HTTP_PROXY for http:// targets, NO_PROXY for
	// exceptions. The lower-case names win over the upper-case ones when
	// both are set. A value without a scheme means "http://". Targets on
	// localhost or a loopback address are never proxied by environment
	// configuration, and a target whose variable is unset, or that
	// NO_PROXY names, is reached directly, as with curl and net/http. An
	// environment that names no proxy at all, or a value that is not a
	// usable proxy URL, is an error from New: a Transport never connects
	// directly unless the configuration says so.
	Proxies []string

	// Credentials, if not nil, supplies the proxy credentials; the proxy
	// URLs must then carry no userinfo. It is called the first time a
	// proxy needs credentials, and again, with Rejected set, when the
	// proxy refuses the ones it gave: requests rejected at the same time
	// share one call, and requests that start after it use its answer.
	// nil: the userinfo of each proxy URL, or no credentials when it has
	// none; a rejection of those is final.
	Credentials CredentialsFunc

	// MaxAuthAttempts bounds the requests sent to a proxy for one call
	// while it answers 407: the first one, plus those with refreshed
	// credentials, another scheme or a new Digest nonce. When they are
	// used up the call fails with a [*ProxyAuthError]. 0 means 3; 1 means
	// no retry.
	MaxAuthAttempts int

	// WaitForChallenge, if true, sends no credentials to an HTTP proxy
	// until it has asked for them with a 407: the first request goes
	// without, and the scheme and credentials are chosen from the
	// proxy's challenge. Once a proxy has accepted credentials they are
	// sent with the following requests either way. false: Basic
	// credentials are sent with the first request to a proxy when Basic
	// is allowed, saving a round trip, unless the username is written
	// "DOMAIN\user": a Windows domain account's password goes in clear
	// to no proxy that has not asked for Basic. Once the proxy has
	// challenged, a request before the proxy has accepted any
	// credentials carries only what answers its last challenge: a proxy
	// that asked for Digest alone never gets Basic, and a request that
	// cannot answer before the challenge (Digest needs a nonce) goes
	// without credentials.
	// SOCKS5 proxies always get the credentials at once.
	WaitForChallenge bool

	// Schemes lists the authentication schemes the Transport may use.
	// When a proxy offers several challenges, the one that the strongest
	// allowed scheme answers best is used (see [Scheme]); one that cannot
	// start here (Negotiate without a ticket) gives way to the next
	// offered. nil means [Digest], [NTLM] and [Basic]; add [Negotiate]
	// with its Kerberos settings, [Bearer], or a Scheme of your own, here.
	Schemes []Scheme

	// PAC is where a proxy auto-config script is: an http:// or https://
	// URL (fetched directly, never through a proxy, with Base's TLS
	// settings), a file:// URL or a file path. Its FindProxyForURL (or
	// FindProxyForURLEx) names the proxies of each request, in order,
	// which are tried with the failover rules of [PoolConfig]; see the
	// README's PAC section. New fetches and compiles it: a script that
	// cannot be had, does not compile or defines neither function is a
	// [*ConfigError]. It excludes Proxies and Pool.Proxies.
	PAC string
	// PACRefresh is how often the PAC script is fetched again. 0 means
	// 15 minutes; negative means never. A failed refresh keeps the last
	// good script, is logged, and is tried again after a minute.
	PACRefresh time.Duration
	// PACResolver, if not nil, makes the DNS lookups of the PAC script's
	// helpers (dnsResolve, isInNet, isResolvable, ...); nil means
	// net.DefaultResolver. Give the resolver of Base's dialer here when
	// it has one of its own: a DialContext function does not show it.
	PACResolver PACResolver

	// ProxyTimeout bounds the proxy phase of a request: the dial, the TLS
	// handshake with an https:// proxy, the SOCKS5 handshake, and the
	// wait for the answer to a CONNECT (net/http alone waits a fixed
	// minute for it). A proxy that accepts the connection and then says
	// nothing thus costs one bounded wait, after which it counts as
	// failed. A forwarded http:// request's answer waits on the origin
	// too, so it is not bounded here: set Base.ResponseHeaderTimeout for
	// it. 0 means 10 seconds; negative means no bound.
	ProxyTimeout time.Duration

	// Pool configures how two or more proxies share the requests and
	// stand in for each other; its zero value means ordered failover.
	Pool PoolConfig

	// Logger, if not nil, receives structured records of what the
	// Transport does: attempts (Debug), challenges and refreshes (Info),
	// failovers, ejections and proxy failures (Warn). Records carry the
	// proxy without userinfo, the phase ("plain", "CONNECT", "socks"),
	// status, scheme, attempt and outcome, never a password or a
	// Proxy-Authorization value. nil: silent.
	Logger *slog.Logger

	// Hooks are called at the same moments, with the same facts. Each
	// may be nil.
	Hooks Hooks

	// AllowBasicDowngrade, if true, answers with Basic a proxy that has
	// accepted a stronger scheme (Digest, say) and later asks for Basic.
	// false: such a request fails with a [*ProxyAuthError] whose Err
	// matches [ErrSchemeDowngrade], since a proxy that stops asking for
	// the scheme it accepted may be a man in the middle fishing for the
	// password, which Basic sends in clear; a proxy that was really
	// reconfigured takes a new Transport, or this setting.
	AllowBasicDowngrade bool

	// RefuseCleartextBasic, if true, never sends Basic credentials to a
	// proxy reached over plain TCP (an http:// proxy URL), where anyone
	// on the path can read and reuse the password. Such a proxy that
	// offers nothing stronger yields a [*ProxyAuthError] whose Err says
	// so, matching [ErrNoAcceptableScheme]. https:// proxies are not
	// affected.
	RefuseCleartextBasic bool

	// Base supplies the settings of the connections: dialer, TLS
	// configuration, timeouts, pool sizes, and the CONNECT hooks
	// GetProxyConnectHeader, ProxyConnectHeader and
	// OnProxyConnectResponse, which keep working (the credentials
	// override a Proxy-Authorization header they set). It is cloned,
	// never mutated. Its Proxy field is ignored: the proxies come from
	// Proxies or the environment. nil: the settings of
	// [http.DefaultTransport].
	Base *http.Transport
}

// Credentials is a username and password for a proxy. Printing it, with
// fmt, as JSON or through slog, masks the password.
type Credentials struct {
	// Username is the username, sent as it is, "" included; Bearer
	// ignores it. Basic cannot carry one with a colon, and SOCKS5 needs
	// 1 to 255 bytes.
	Username string
	// Password is the password, or the token for Bearer; "" is an empty
	// password. It never appears in an error, a log record or the output
	// of String.
	Password string
}

// String returns the username with the password masked, so that printing
// Credentials never shows the password.
func (c Credentials) String() string {
	return c.Username + ":xxxxx"
}

// GoString is String, for %#v.
func (c Credentials) GoString() string {
	return `proxyauth.Credentials{Username: "` + c.Username + `", Password: "xxxxx"}`
}

// CredentialsRequest describes what a [CredentialsFunc] is asked for.
type CredentialsRequest struct {
	// Proxy is the proxy the credentials are for, without userinfo.
	Proxy *url.URL
	// Challenges holds what the proxy asked for; empty before any
	// challenge.
	Challenges []Challenge
	// Rejected reports that the proxy refused the credentials last given
	// for it.
	Rejected bool
}

// CredentialsFunc returns the credentials for a proxy. It may be called
// from several goroutines at once, for different proxies; requests that
// need the same proxy's credentials at once share one call. ctx carries
// the values of the context of the request that made the call, but not its
// deadline or cancellation, since other requests may be waiting for the
// same answer: bound the work in the function itself. A request that gives
// up while waiting gets its context's error. An error the function returns
// reaches the caller of RoundTrip as the Err of a [*ProxyAuthError].
type CredentialsFunc func(ctx context.Context, r CredentialsRequest) (Credentials, error)

// Challenge is one authentication challenge from a Proxy-Authenticate or
// WWW-Authenticate header field.
type Challenge struct {
	// Scheme is the scheme in canonical case: "Basic", "Digest",
	// "NTLM", "Negotiate", "Bearer"; other schemes as received.
	Scheme string
	// Params holds the auth-params with lower-cased keys: realm, nonce,
	// qop, stale, and so on. nil when there are none.
	Params map[string]string
	// Token68 holds the token68 form that NTLM and Negotiate use, or "".
	Token68 string
}

// String formats the challenge for messages: the scheme and, if any, its
// realm. Other parameters, such as a Digest nonce, are left out. Since a
// proxy chooses both, at most 200 bytes of each are shown, followed by
// "…(truncated)" when there is more.
func (c Challenge) String() string {
	if realm, ok := c.Params["realm"]; ok {
		return untrusted(c.Scheme) + " realm=" + quoted(realm)
	}
	return untrusted(c.Scheme)
}

// PACResolver looks up the addresses of a host for a PAC script's
// helpers. *net.Resolver implements it.
type PACResolver interface {
	// LookupIPAddr returns the addresses of host, as
	// [net.Resolver.LookupIPAddr] does.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Sentinel errors for [errors.Is]. Each of the typed errors matches one.
var (
	// ErrProxyAuthRequired matches every [*ProxyAuthError].
	ErrProxyAuthRequired = errors.New("proxyauth: proxy authentication required")
	// ErrUnauthorized matches every [*AuthError].
	ErrUnauthorized = errors.New("proxyauth: origin server answered 401 Unauthorized")
	// ErrProxyUnavailable matches every [*ProxyError].
	ErrProxyUnavailable = errors.New("proxyauth: proxy unavailable")

	// ErrNoAcceptableScheme is the Err of a [*ProxyAuthError] when the
	// proxy offers no scheme the Transport may use.
	ErrNoAcceptableScheme = errors.New("no offered scheme may be used")
	// ErrSchemeDowngrade is matched by the Err of a [*ProxyAuthError]
	// when a proxy that accepted a stronger scheme asks for Basic and
	// Config.AllowBasicDowngrade is false. It matches
	// [ErrNoAcceptableScheme] too.
	ErrSchemeDowngrade = errors.New("the proxy asks for Basic after it accepted a stronger scheme: a downgrade")
	// ErrCredentialsRefused is matched by the Err of a [*ProxyAuthError]
	// when no request was sent because the credentials at hand are ones
	// that the proxy refused to [NTLM] or [Negotiate] before: those are a
	// domain account's, which locks after a few failed logins, so they
	// are never sent again. A [CredentialsFunc] is asked for new ones;
	// fixed credentials need a new Transport.
	ErrCredentialsRefused = errors.New("the proxy refused these credentials before")
	// ErrBodyNotReplayable is the Err of a [*ProxyAuthError] when the
	// proxy asked for (other) credentials but the request cannot be sent
	// again because its body cannot be read again (Request.GetBody is
	// nil). Nothing of it was sent a second time.
	ErrBodyNotReplayable = errors.New("the request body cannot be sent again: Request.GetBody is nil")
)
