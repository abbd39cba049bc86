package proxyauth

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/proxyauth/proxyauth/internal/challenge"
	"github.com/proxyauth/proxyauth/internal/redact"
)

// ProxyAuthError reports that a proxy wants credentials, or other ones than
// it was given. A [Transport] returns it for a 407 whether the target was
// http:// (the 407 answers the forwarded request) or https:// (it answers
// the CONNECT), for a 401 that the proxy sent instead of a 407, for a
// SOCKS5 authentication failure, and when the credentials could not be
// obtained. It matches [ErrProxyAuthRequired] with [errors.Is].
//
// Its Error never contains a password or a Proxy-Authorization value.
type ProxyAuthError struct {
	// Proxy is the proxy, without userinfo; nil when unknown (an error
	// made by CheckResponse from a response alone).
	Proxy *url.URL
	// StatusCode is 407, or 401 when the proxy answered 401 ("mixed
	// signals": a misconfigured proxy). It is 0 for a SOCKS5 proxy, which
	// has no status codes, and when no request was sent because the
	// credentials could not be obtained (see Err).
	StatusCode int
	// Challenges holds every challenge of every Proxy-Authenticate field
	// of the answer, in order, with any credentials that the proxy
	// echoed back into them masked as "xxxxx".
	Challenges []Challenge
	// Tunnel reports that the answer was to a CONNECT (an https://
	// target), not to a forwarded request.
	Tunnel bool
	// Attempts counts the requests sent to this proxy for this call.
	Attempts int
	// Rejected reports that credentials were sent and refused; false
	// means the proxy asked for credentials and none were sent.
	Rejected bool
	// Header holds the header fields of the proxy's answer, such as
	// Proxy-Authenticate, Via and X-Squid-Error, as received; nil for
	// SOCKS5. Neither Error nor any fmt verb prints them.
	Header http.Header
	// Err is the cause, if any: the error of the [CredentialsFunc], or
	// the SOCKS5 handshake's error.
	Err error

	sent *redact.Secrets // what was sent to the proxy, masked in Error
}

// Error describes the failure in one line. It never shows a password or
// a Proxy-Authorization value, even one the proxy echoed back, and quotes
// at most 200 bytes of any value the proxy sent and 1 KiB of the cause;
// the whole text is at most 2 KiB.
func (e *ProxyAuthError) Error() string {
	socks := e.Proxy != nil && strings.HasPrefix(e.Proxy.Scheme, "socks")
	proxy := "proxy"
	if socks {
		proxy = "SOCKS5 proxy"
	}
	if e.Proxy != nil {
		proxy += " " + redact.String(e.Proxy)
	}
	var b strings.Builder
	b.WriteString("proxyauth: ")
	switch {
	case e.StatusCode == 0 && !socks:
		b.WriteString("cannot authenticate to " + proxy)
	case e.StatusCode == http.StatusUnauthorized:
		b.WriteString(proxy + " answered 401 Unauthorized instead of 407 Proxy Authentication Required (a misconfigured proxy)")
	case e.Rejected:
		b.WriteString(proxy + " rejected the credentials")
	default:
		b.WriteString(proxy + " requires credentials and none were sent")
	}
	if e.StatusCode != 0 {
		b.WriteString(" (" + strconv.Itoa(e.StatusCode))
		if e.Tunnel {
			b.WriteString(" to CONNECT")
		}
		if e.Attempts > 1 {
			b.WriteString(", after " + strconv.Itoa(e.Attempts) + " attempts")
		}
		b.WriteString(offers(e.Challenges) + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + e.sent.Bound(e.Err.Error(), maxCause))
	}
	return e.sent.Bound(b.String(), maxText)
}

// Unwrap returns Err.
func (e *ProxyAuthError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrProxyAuthRequired].
func (e *ProxyAuthError) Is(target error) bool { return target == ErrProxyAuthRequired }

// AuthError reports that the origin server answered 401 Unauthorized. A
// [Transport] passes such a response through, since it is the origin's
// answer; [CheckResponse] makes this error from it. It matches
// [ErrUnauthorized] with [errors.Is].
type AuthError struct {
	// URL is the request's URL.
	URL *url.URL
	// StatusCode is 401.
	StatusCode int
	// Challenges holds every challenge of every WWW-Authenticate field.
	Challenges []Challenge
}

// Error names the origin server, with any password in its URL masked,
// and its status.
func (e *AuthError) Error() string {
	target := "origin server"
	if e.URL != nil {
		target += " " + e.URL.Redacted()
	}
	return redact.Truncate("proxyauth: "+target+" answered "+strconv.Itoa(e.StatusCode)+" "+
		http.StatusText(e.StatusCode)+offers(e.Challenges), maxText)
}

// Is reports whether target is [ErrUnauthorized].
func (e *AuthError) Is(target error) bool { return target == ErrUnauthorized }

// ProxyError reports that a proxy could not be used: it is unreachable, its
// TLS handshake failed, it refused a CONNECT with a status such as 403, 502
// or 503, or it broke off the exchange. It matches [ErrProxyUnavailable]
// with [errors.Is].
type ProxyError struct {
	// Proxy is the proxy, without userinfo; nil when unknown.
	Proxy *url.URL
	// Op is the step that failed: "dial" (TCP to the proxy), "tls" (the
	// handshake with an https:// proxy), "connect" (the CONNECT got a
	// failure status or no answer), "socks" (the SOCKS5 handshake, for a
	// reason other than credentials), "forward" (a forwarded request got a
	// failure status the proxy made, or no answer), "tunnel" (the
	// connection through a tunnel or SOCKS5 broke while a request was in
	// it: the proxy or the origin closed it), "handshake" (the proxy broke
	// off an NTLM or Negotiate handshake on a new connection for an
	// http:// target, before the request was written; a tunnel's
	// handshake is "connect").
	Op string
	// StatusCode is the proxy's failure status, such as 403, 502 or 503;
	// 0 when there was none.
	StatusCode int
	// Header holds the header fields of the proxy's answer, if there was
	// one (X-Squid-Error, Via, ...), as received. Neither Error nor any
	// fmt verb prints them.
	Header http.Header
	// Err is the underlying error, if any.
	Err error

	sent *redact.Secrets // what was sent to the proxy, masked in Error
}

// Error describes the failure in one line, with the same guarantees as
// [ProxyAuthError.Error].
func (e *ProxyError) Error() string {
	proxy := "proxy"
	if e.Proxy != nil {
		if strings.HasPrefix(e.Proxy.Scheme, "socks") {
			proxy = "SOCKS5 proxy"
		}
		proxy += " " + redact.String(e.Proxy)
	}
	var msg string
	switch {
	case e.StatusCode != 0 && e.Op == "connect":
		msg = proxy + " refused the CONNECT: " + status(e.StatusCode)
	case e.StatusCode != 0:
		msg = proxy + " answered " + status(e.StatusCode)
	case e.Op == "dial":
		msg = "cannot reach " + proxy
	case e.Op == "tls":
		msg = "TLS handshake with " + proxy + " failed"
	case e.Op == "connect":
		msg = proxy + " did not answer the CONNECT"
	case e.Op == "forward":
		msg = proxy + " did not answer the forwarded request"
	case e.Op == "tunnel":
		msg = "the connection through " + proxy + " broke"
	case e.Op == "handshake":
		msg = proxy + " broke off the authentication handshake of a new connection"
	default:
		msg = proxy + " failed (" + e.Op + ")"
	}
	if e.Err != nil {
		msg += ": " + e.sent.Bound(e.Err.Error(), maxCause)
	}
	return e.sent.Bound("proxyauth: "+msg, maxText)
}

// Unwrap returns Err.
func (e *ProxyError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrProxyUnavailable].
func (e *ProxyError) Is(target error) bool { return target == ErrProxyUnavailable }

// StatusError reports a failure status other than 401 and 407 in a
// response that reached the caller, made by [CheckResponse].
type StatusError struct {
	// URL is the request's URL.
	URL *url.URL
	// StatusCode is the response's status code, 400 or more.
	StatusCode int
}

// Error names the server, with any password in its URL masked, and its
// status.
func (e *StatusError) Error() string {
	target := "server"
	if e.URL != nil {
		target += " " + e.URL.Redacted()
	}
	return "proxyauth: " + target + " answered " + status(e.StatusCode)
}

// Kind is the class of an outcome, as [Classify] reports it.
type Kind int

// The kinds of outcome, from the network layer up.
const (
	// KindOK: a response with a status below 400.
	KindOK Kind = iota
	// KindProxyUnavailable: the proxy could not be reached or used, or
	// answered with a 5xx status of its own.
	KindProxyUnavailable
	// KindProxyAuth: the proxy wants (other) credentials.
	KindProxyAuth
	// KindForbidden: a 403, from the proxy or the origin.
	KindForbidden
	// KindOriginAuth: the origin server answered 401.
	KindOriginAuth
	// KindOther: anything else, such as a 404, an origin's 5xx, a
	// canceled request or a failure beyond the proxy.
	KindOther
)

var kindNames = [...]string{
	KindOK:               "ok",
	KindProxyUnavailable: "proxy-unavailable",
	KindProxyAuth:        "proxy-auth",
	KindForbidden:        "forbidden",
	KindOriginAuth:       "origin-auth",
	KindOther:            "other",
}

// String returns the kind's name, such as "proxy-auth".
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Classify tells what kind of outcome a round trip had, from the response
// and error that [http.Client.Do] or a RoundTrip returned. It understands
// this package's typed errors and also the errors of a bare
// [http.Transport], which reports a CONNECT 407 only as the text "Proxy
// Authentication Required".
func Classify(resp *http.Response, err error) Kind {
	if err != nil {
		return classifyErr(err)
	}
	if resp == nil {
		return KindOther
	}
	switch code := resp.StatusCode; {
	case code < 400:
		return KindOK
	case code == http.StatusProxyAuthRequired:
		return KindProxyAuth
	case code == http.StatusUnauthorized && proxyMade(resp.Header):
		return KindProxyAuth
	case code == http.StatusUnauthorized:
		return KindOriginAuth
	case code == http.StatusForbidden:
		return KindForbidden
	case code >= 500 && proxyMade(resp.Header):
		return KindProxyUnavailable
	}
	return KindOther
}

func classifyErr(err error) Kind {
	var (
		pae *ProxyAuthError
		pe  *ProxyError
		ae  *AuthError
		se  *StatusError
	)
	switch {
	case errors.As(err, &pae):
		return KindProxyAuth
	case errors.As(err, &pe):
		if pe.StatusCode == http.StatusForbidden {
			return KindForbidden
		}
		return KindProxyUnavailable
	case errors.As(err, &ae):
		return KindOriginAuth
	case errors.As(err, &se):
		if se.StatusCode == http.StatusForbidden {
			return KindForbidden
		}
		return KindOther
	case isBareConnectAuthError(err), isSOCKSAuthError(err):
		return KindProxyAuth
	case isBareProxyConnectError(err):
		return KindProxyUnavailable
	}
	return KindOther
}

// CheckResponse returns an error for a response that reports a failure:
// a [*ProxyAuthError] for a 407 or a 401 that a proxy made, an [*AuthError]
// for an origin's 401, a [*ProxyError] for a 403 or 5xx that a proxy made
// (recognised by its X-Squid-Error or Proxy-Status field), a [*StatusError]
// for any other status of 400 or more, and nil for the rest. It does not
// read or close the body.
func CheckResponse(resp *http.Response) error {
	if resp == nil {
		return errors.New("proxyauth: CheckResponse called with a nil response")
	}
	var u *url.URL
	if resp.Request != nil {
		u = resp.Request.URL
	}
	code := resp.StatusCode
	switch {
	case code < 400:
		return nil
	case code == http.StatusProxyAuthRequired || code == http.StatusUnauthorized && proxyMade(resp.Header):
		return &ProxyAuthError{
			StatusCode: code,
			Challenges: parseChallenges(resp.Header.Values("Proxy-Authenticate")),
			Attempts:   1,
			Rejected:   resp.Request != nil && resp.Request.Header.Get("Proxy-Authorization") != "",
			Header:     resp.Header,
		}
	case code == http.StatusUnauthorized:
		return &AuthError{URL: u, StatusCode: code, Challenges: parseChallenges(resp.Header.Values("Www-Authenticate"))}
	case (code == http.StatusForbidden || code >= 500) && proxyMade(resp.Header):
		return &ProxyError{Op: "forward", StatusCode: code, Header: resp.Header}
	}
	return &StatusError{URL: u, StatusCode: code}
}

// proxyMade reports whether a response to a forwarded request carries the
// marks of an answer that the proxy made itself rather than passed on:
// a Proxy-Authenticate field (which origins do not send), squid's
// X-Squid-Error, or an RFC 9209 Proxy-Status field naming an error.
func proxyMade(h http.Header) bool {
	if h.Get("Proxy-Authenticate") != "" || h.Get("X-Squid-Error") != "" {
		return true
	}
	for _, v := range h.Values("Proxy-Status") {
		if strings.Contains(v, "error=") {
			return true
		}
	}
	return false
}

func parseChallenges(fields []string) []Challenge {
	if len(fields) == 0 {
		return nil
	}
	// A malformed field still yields the challenges before the fault;
	// what the proxy asked for is reported as far as it can be read.
	parsed, _ := challenge.Parse(fields)
	out := make([]Challenge, len(parsed))
	for i, c := range parsed {
		out[i] = Challenge{Scheme: c.Scheme, Params: c.Params, Token68: c.Token68}
	}
	return out
}

// offers lists the challenges for a message: at most maxOffers of them,
// each as Challenge.String gives it.
func offers(cs []Challenge) string {
	if len(cs) == 0 {
		return "; no challenge"
	}
	return "; offers " + challengeList(cs)
}

func status(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

// drain reads what is left of a body, up to a bound in bytes and in time
// (d, or the default proxy timeout when d is 0), and closes it, so that
// its connection can be reused. A body that stalls is closed, which ends
// the read.
func drain(body io.ReadCloser, d time.Duration) {
	const limit = 64 << 10
	if d <= 0 {
		d = defaultProxyTimeout
	}
	stop := time.AfterFunc(d, func() { body.Close() })
	_, _ = io.Copy(io.Discard, io.LimitReader(body, limit))
	stop.Stop()
	_ = body.Close()
}

// The error texts below are matched because net/http gives no other way to
// tell these failures apart: its SOCKS5 client and its CONNECT handling
// return errors.New strings. They are the only error strings of net/http
// this package matches.

// isSOCKSAuthError reports whether err is net/http's SOCKS5 client failing
// on credentials: refused ("username/password authentication failed"),
// required but not offered ("no acceptable authentication methods"), or
// unusable ("invalid username/password", for an empty or too long one).
func isSOCKSAuthError(err error) bool {
	var oe *net.OpError
	if !errors.As(err, &oe) || !strings.HasPrefix(oe.Op, "socks") || oe.Err == nil {
		return false
	}
	switch oe.Err.Error() {
	case "username/password authentication failed",
		"no acceptable authentication methods",
		"invalid username/password":
		return true
	}
	return false
}

// isSOCKSError reports whether err comes from net/http's SOCKS5 handshake.
func isSOCKSError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && strings.HasPrefix(oe.Op, "socks")
}

// isBareConnectAuthError reports whether err is how a bare http.Transport
// without an OnProxyConnectResponse hook reports a CONNECT answered 407:
// errors.New of the status line's reason phrase.
func isBareConnectAuthError(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == "Proxy Authentication Required" {
			return true
		}
	}
	return false
}

// badAnswer reports whether err is net/http failing to read an answer that
// is not HTTP, or too large: a malformed status line or header
// ("malformed HTTP response", "malformed HTTP status code", a
// textproto.ProtocolError), headers beyond MaxResponseHeaderBytes, or the
// connection closed before anything was read on it ("http: server closed
// idle connection"). net/http returns these as errors.New strings.
func badAnswer(err error) bool {
	var pe textproto.ProtocolError
	if errors.As(err, &pe) {
		return true
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		s := e.Error()
		if strings.HasPrefix(s, "malformed HTTP ") ||
			strings.HasPrefix(s, "net/http: server response headers exceeded") ||
			s == "http: server closed idle connection" {
			return true
		}
	}
	return false
}

// isBareProxyConnectError reports whether err is a bare http.Transport's
// failure to reach its proxy, which it wraps in a *net.OpError with Op
// "proxyconnect".
func isBareProxyConnectError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "proxyconnect"
}
