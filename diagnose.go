package proxyauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/proxyauth/proxyauth/internal/pac"
	"github.com/proxyauth/proxyauth/internal/redact"
)

// Layer is where in the stack a failure happened, from the network up.
type Layer int

// The layers, from the network up: a request crosses them in this order.
const (
	// LayerNone: nothing failed, or no layer can be blamed (see
	// [Diagnose]).
	LayerNone Layer = iota
	// LayerNetwork: the proxy could not be reached: DNS, refused,
	// timeout.
	LayerNetwork
	// LayerProxy: the proxy was reached but failed: TLS to it, a failure
	// status of its own, a broken exchange, SOCKS5.
	LayerProxy
	// LayerProxyAuth: the proxy wants (other) credentials.
	LayerProxyAuth
	// LayerTLS: TLS with the origin, inside the tunnel.
	LayerTLS
	// LayerOrigin: the origin answered with a failure status (403, 5xx,
	// ...).
	LayerOrigin
	// LayerOriginAuth: the origin answered 401.
	LayerOriginAuth
)

var layerNames = [...]string{
	LayerNone:       "none",
	LayerNetwork:    "network",
	LayerProxy:      "proxy",
	LayerProxyAuth:  "proxy-auth",
	LayerTLS:        "tls",
	LayerOrigin:     "origin",
	LayerOriginAuth: "origin-auth",
}

// String returns the layer's name, such as "proxy-auth".
func (l Layer) String() string {
	if l >= 0 && int(l) < len(layerNames) {
		return layerNames[l]
	}
	return "Layer(" + strconv.Itoa(int(l)) + ")"
}

// Diagnosis says which layer failed, in a line, with concrete hints. It is
// a plain value, safe to share once made.
type Diagnosis struct {
	// Layer is the layer that failed; LayerNone when nothing did, or when
	// no layer can be blamed.
	Layer Layer
	// Kind is the class of the outcome as [Classify] reports it (for a
	// [*PoolError], of the cause reported).
	Kind Kind
	// Proxy is the proxy concerned, without userinfo; nil when the
	// failure is not a proxy's or the proxy is not known. It is kept out
	// of Summary so that a structured log can carry it as a field of its
	// own.
	Proxy *url.URL
	// Summary says what happened in one line, without a trailing period.
	// It never holds a password or a Proxy-Authorization value.
	Summary string
	// Hints are concrete next steps, most likely first; nil when there
	// is nothing to suggest. They never hold a password or a
	// Proxy-Authorization value either.
	Hints []string
}

// String formats d for a log line: "<layer>: <summary> (hint: ...; hint:
// ...)", or "none: ok" when nothing failed.
func (d Diagnosis) String() string {
	s := d.Layer.String() + ": " + d.Summary
	if len(d.Hints) > 0 {
		s += " (hint: " + strings.Join(d.Hints, "; hint: ") + ")"
	}
	return s
}

// Diagnose explains the outcome of a round trip: resp and err as
// [http.Client.Do] or a RoundTrip returned them. It reads the typed errors
// of this package (through the [*url.Error] of http.Client), the errors of
// the standard library inside them, and the status and header fields of a
// response; it never reads or closes the response's body.
//
// The layers are checked in the order a request crosses them: network ->
// proxy -> proxy auth -> TLS -> origin -> origin auth. The one reported is
// the first that failed: a proxy that could not be reached says nothing of
// the credentials, and an origin's 401 means that everything below it
// worked. A 407 comes from a proxy and a 401 from the origin, except that a
// 401 the proxy made ("mixed signals") is LayerProxyAuth, and a 403 or 5xx
// the proxy marked as its own (X-Squid-Error, Proxy-Status) is LayerProxy.
//
// A [*PoolError] is diagnosed by the cause that got furthest up the stack
// (the first tried among equals): a proxy that refused the credentials
// tells more than one that could not be reached. Its Summary says how many
// proxies were tried and a hint names what happened to the others.
//
// Some outcomes blame no layer, and keep Layer LayerNone with a Summary
// that says what happened: a request that the caller canceled, or whose
// deadline (the context's, http.Client.Timeout or
// Base.ResponseHeaderTimeout) passed before an answer, since no layer is
// known to have failed, only to have been slower than the caller allowed;
// a [*ConfigError] ("configuration: ..."), which comes before any request;
// and errors this package does not recognise. A timeout that this package
// attributes to the proxy is not the caller's: a dial that timed out is
// LayerNetwork, a CONNECT left unanswered for Config.ProxyTimeout is
// LayerProxy.
func Diagnose(resp *http.Response, err error) Diagnosis {
	var d Diagnosis
	if err != nil {
		d = diagnoseErr(err)
	} else {
		d = diagnoseResponse(resp)
	}
	secrets := secretsOf(err)
	d.Summary = clean(d.Summary, secrets)
	for i, h := range d.Hints {
		d.Hints[i] = clean(h, secrets)
	}
	return d
}

// diagnoseErr diagnoses a failed round trip.
func diagnoseErr(err error) Diagnosis {
	var (
		pool *PoolError
		pae  *ProxyAuthError
		pe   *ProxyError
		ae   *AuthError
		se   *StatusError
		ce   *ConfigError
		pace *PACError
		oe   *net.OpError
		d    Diagnosis
	)
	switch {
	case errors.As(err, &pool) && len(pool.Errors) > 0:
		return diagnosePool(pool)
	case errors.As(err, &pae):
		d = diagnoseProxyAuth(pae)
	case errors.As(err, &pe):
		d = diagnoseProxyError(pe)
	case errors.As(err, &ae):
		d = diagnoseOriginAuth(ae.Challenges, nil)
	case errors.As(err, &se):
		d = diagnoseOriginStatus(se.StatusCode, nil)
	case errors.As(err, &ce):
		d = diagnoseConfig(ce)
	case errors.As(err, &pace):
		d = diagnosePAC(pace)
	case isBareConnectAuthError(err):
		d = Diagnosis{Layer: LayerProxyAuth,
			Summary: "the proxy answered 407 to the CONNECT (a bare http.Transport keeps no details of it)",
			Hints: []string{
				"give the proxy's credentials, or check them if some were sent",
				"use a proxyauth Transport to see what the proxy asks for and whether credentials were sent",
			}}
	case isSOCKSAuthError(err):
		d = diagnoseSOCKSAuth(nil, err, nil)
	case isBareProxyConnectError(err) && errors.As(err, &oe):
		// A bare http.Transport's failure to reach its proxy, or to
		// shake hands with it.
		op := "dial"
		if isTLSError(oe.Err) {
			op = "tls"
		}
		d = diagnoseProxyError(&ProxyError{Op: op, Err: oe.Err})
	case isSOCKSError(err):
		d = diagnoseProxyError(&ProxyError{Op: "socks", Err: err})
	default:
		var ok bool
		if d, ok = diagnoseOriginTLS(err); !ok {
			d = diagnoseOther(err)
		}
	}
	d.Kind = Classify(nil, err)
	return d
}

// diagnosePool diagnoses the cause of a *PoolError that got furthest up
// the stack.
func diagnosePool(pool *PoolError) Diagnosis {
	all := make([]Diagnosis, len(pool.Errors))
	best := 0
	for i, err := range pool.Errors {
		all[i] = diagnoseErr(err)
		if all[i].Layer > all[best].Layer {
			best = i
		}
	}
	d := all[best]
	n := len(pool.Errors)
	if n == 1 {
		d.Summary += " (1 proxy tried)"
		return d
	}
	d.Summary += " (" + strconv.Itoa(n) + " proxies tried)"
	var (
		others []string
		count  = map[string]int{}
	)
	for i, o := range all {
		if i == best {
			continue
		}
		s := o.Layer.String() + ": " + o.Summary
		if count[s] == 0 {
			others = append(others, s)
		}
		count[s]++
	}
	for i, s := range others {
		if count[s] > 1 {
			others[i] += " (" + strconv.Itoa(count[s]) + " proxies)"
		}
	}
	d.Hints = append(d.Hints, "the other proxies tried failed too: "+strings.Join(others, ", "))
	return d
}

// diagnoseProxyAuth diagnoses a *ProxyAuthError.
func diagnoseProxyAuth(pae *ProxyAuthError) Diagnosis {
	d := Diagnosis{Layer: LayerProxyAuth, Proxy: redact.URL(pae.Proxy)}
	if pae.Proxy != nil && strings.HasPrefix(pae.Proxy.Scheme, "socks") {
		return diagnoseSOCKSAuth(d.Proxy, pae.Err, &pae.Rejected)
	}
	note := authNote(pae, true)
	hops := viaHops(pae.Header)
	giveCreds := "give the proxy's credentials in the proxy URL (http://user:pass@host:port, percent-encoded) or through Config.Credentials"
	switch {
	case errors.Is(pae.Err, ErrCredentialsRefused):
		d.Summary = "not sent: the proxy refused these credentials before, to NTLM or Negotiate"
		d.Hints = []string{
			"they are a domain account's, which locks after a few failed logins, so they are not sent again: check the username and password",
			"give the Transport the right ones: a new Transport, or a CredentialsFunc in Config.Credentials, which is asked for new ones",
			"if logins with the right password fail too, the account may be locked: ask the domain's administrators",
		}
	case pae.StatusCode == 0 && (errors.Is(pae.Err, context.Canceled) || errors.Is(pae.Err, context.DeadlineExceeded)):
		d.Summary = "the request ended while waiting for the CredentialsFunc"
		d.Hints = []string{"the CredentialsFunc did not return before the request's context ended: bound its work, or give the request more time"}
	case pae.StatusCode == 0:
		d.Summary = "cannot get or use credentials for the proxy"
		if pae.Err != nil {
			d.Summary += ": " + causeText(pae.Err)
		}
		d.Hints = []string{
			"the CredentialsFunc (Config.Credentials) failed, or the scheme could not use the credentials it returned: fix that cause",
		}
	case pae.StatusCode == http.StatusUnauthorized:
		d.Summary = "mixed signals: the proxy answered 401 Unauthorized instead of 407 Proxy Authentication Required" + note
		d.Hints = []string{"the proxy is misconfigured: a proxy asks for credentials with 407, so ask its operator to fix it"}
		if pae.Rejected {
			d.Hints = append(d.Hints, "some builds of tinyproxy answer 401 for a wrong password: check the username and password")
		} else {
			d.Hints = append(d.Hints, "no credentials were sent: "+giveCreds,
				"some builds of tinyproxy answer 401 for a wrong password")
		}
	case errors.Is(pae.Err, ErrBodyNotReplayable):
		d.Summary = "the proxy asked for credentials but the request body cannot be sent again" + note
		d.Hints = []string{
			"set Request.GetBody (http.NewRequest does for bytes.Reader, bytes.Buffer and strings.Reader bodies) so that the request can be resent with credentials",
			"or send the credentials with the first request: leave Config.WaitForChallenge false, with Basic allowed",
		}
	case errors.Is(pae.Err, errHandshakeClosed):
		d.Summary = "the proxy closed the connection in the middle of the " + challengeList(pae.Challenges) + " handshake" + note
		d.Hints = []string{
			"NTLM and Negotiate authenticate a connection, which must stay open between the legs: a load balancer or proxy in between may be closing it",
			"squid: keep auth_param ntlm keep_alive on",
		}
	case errors.Is(pae.Err, errSameCredentials):
		d.Summary = "the CredentialsFunc returned the credentials the proxy had just rejected" + note
		d.Hints = []string{
			"when CredentialsRequest.Rejected is set, return fresh credentials (the rotated password) or an error",
			"check the username and password it returns",
		}
	case len(hops) > 1:
		d.Summary = "the " + strconv.Itoa(pae.StatusCode) + toConnect(pae) + " came through a chain of " +
			strconv.Itoa(len(hops)) + " proxies (Via): it may come from an upstream proxy behind the first one"
		d.Hints = []string{
			"the upstream proxy " + quoted(hops[0]) + " may need credentials of its own, which the first proxy must send for you (squid: cache_peer ... login=): ask the first proxy's operator",
			"credentials in the proxy URL reach the first proxy only: Proxy-Authorization does not travel beyond one hop",
		}
		if !pae.Rejected {
			d.Hints = append(d.Hints, "if the first proxy wants credentials too, "+giveCreds)
		}
		if len(pae.Challenges) > 0 {
			d.Hints = append(d.Hints, "the 407 offers "+challengeList(pae.Challenges))
		}
	case len(pae.Challenges) == 0:
		d.Summary = "the proxy wants authentication but offers no challenge" + note +
			", which usually means that it admits clients by their IP address"
		d.Hints = []string{
			"the proxy may authenticate by source IP (an allow-list) rather than credentials: ask its operator to allow this machine's address",
			"a proxy or filter in between may have removed the Proxy-Authenticate field",
		}
	case errors.Is(pae.Err, ErrSchemeDowngrade):
		d.Summary = "the proxy asks for Basic after it had accepted a stronger scheme: refused as a downgrade" + note
		d.Hints = []string{
			"a man in the middle may be asking for the password, which Basic sends in clear: check the network path to the proxy, or use an https:// proxy URL",
			"if the proxy's operator really switched it to Basic, make a new Transport or set Config.AllowBasicDowngrade",
		}
	case errors.Is(pae.Err, ErrNoAcceptableScheme):
		d.Summary = "the proxy offers no scheme this Transport may use" + note
		d.Hints = noSchemeHints(pae)
	case pae.Err != nil && len(causeHints(pae.Err)) > 0:
		d.Summary = "the authentication with the proxy failed" + note + ": " + causeText(pae.Err)
	case pae.Err != nil:
		d.Summary = "the proxy rejected the credentials and new ones could not be had" + note + ": " + causeText(pae.Err)
		d.Hints = []string{"the CredentialsFunc failed when asked for fresh credentials: fix that cause"}
	case pae.Rejected:
		d.Summary = "the proxy rejected the credentials" + note
		d.Hints = []string{
			"check the username and password",
			"percent-encode special characters of the username and password in the proxy URL: @ : % # / as %40 %3A %25 %23 %2F",
			"the password may have expired or been rotated: supply the current one (a CredentialsFunc in Config.Credentials is asked again when the proxy refuses)",
		}
		if realm := realmOf(pae.Challenges); realm != "" {
			d.Hints = append(d.Hints, "the proxy asks for realm "+quoted(realm)+": use an account of that realm")
		}
		if offersScheme(pae.Challenges, "NTLM") {
			d.Hints = append(d.Hints, `for NTLM, give the username as DOMAIN\user or user@domain, with the domain the account belongs to`)
		}
	default:
		d.Summary = "the proxy requires credentials and none were sent" + authNote(pae, false)
		d.Hints = []string{giveCreds, "it offers " + challengeList(pae.Challenges)}
	}
	// What a scheme says of its own failure (no Kerberos ticket, clock
	// skew, an unknown service principal) comes first: it is the most
	// precise.
	d.Hints = append(causeHints(pae.Err), d.Hints...)
	return d
}

// causeHints returns the hints of every error in err's tree that has one
// (a Kerberos failure's, say), each once.
func causeHints(err error) []string {
	var hints []string
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if e, ok := err.(interface{ hint() string }); ok {
			if h := e.hint(); h != "" && !slices.Contains(hints, h) {
				hints = append(hints, h)
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return hints
}

// authNote describes the proxy's answer in a *ProxyAuthError: " (407 to
// CONNECT, after 2 attempts, offers Basic realm="x")", the challenges only
// when offers is true.
func authNote(pae *ProxyAuthError, offers bool) string {
	parts := []string{strconv.Itoa(pae.StatusCode) + toConnect(pae)}
	if pae.Attempts > 1 {
		parts = append(parts, "after "+strconv.Itoa(pae.Attempts)+" attempts")
	}
	if offers && len(pae.Challenges) > 0 {
		parts = append(parts, "offers "+challengeList(pae.Challenges))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// toConnect returns " to CONNECT" when pae answers a CONNECT, else "".
func toConnect(pae *ProxyAuthError) string {
	if pae.Tunnel {
		return " to CONNECT"
	}
	return ""
}

// noSchemeHints suggests how to answer a proxy whose challenges the
// Transport may not answer.
func noSchemeHints(pae *ProxyAuthError) []string {
	var hints []string
	plain := pae.Proxy == nil || pae.Proxy.Scheme == "http"
	if plain && offersScheme(pae.Challenges, "Basic") {
		hints = append(hints, "Basic is refused over plain TCP when Config.RefuseCleartextBasic is set: use an https:// proxy URL, or a proxy that offers Digest")
	}
	var allow []string
	for _, c := range pae.Challenges {
		switch strings.ToLower(c.Scheme) {
		case "basic", "digest", "bearer":
			name := "proxyauth." + c.Scheme + "()"
			if !slices.Contains(allow, name) {
				allow = append(allow, name)
			}
		case "ntlm":
			if !slices.Contains(allow, "proxyauth.NTLM()") {
				allow = append(allow, "proxyauth.NTLM()")
			}
		case "negotiate":
			hints = append(hints, "the proxy wants Negotiate (Kerberos): add proxyauth.Negotiate(proxyauth.Kerberos{...}) to Config.Schemes, with a ticket cache (kinit), a keytab, or the principal's password")
		}
	}
	if len(allow) > 0 {
		hints = append(hints, "allow the scheme in Config.Schemes: add "+strings.Join(allow, " or "))
	}
	if len(hints) == 0 {
		hints = append(hints, "the proxy offers "+challengeList(pae.Challenges)+": add a proxyauth.Scheme for it to Config.Schemes")
	}
	return hints
}

// diagnoseSOCKSAuth diagnoses a SOCKS5 authentication failure. rejected is
// nil when it is not known whether credentials were sent (a bare
// http.Transport).
func diagnoseSOCKSAuth(proxy *url.URL, cause error, rejected *bool) Diagnosis {
	d := Diagnosis{Layer: LayerProxyAuth, Proxy: proxy}
	encode := "percent-encode special characters of the username and password in the socks5:// URL: @ : % # / as %40 %3A %25 %23 %2F"
	switch {
	case errors.Is(cause, context.Canceled) || errors.Is(cause, context.DeadlineExceeded):
		d.Summary = "the request ended while waiting for the CredentialsFunc of the SOCKS5 proxy"
		d.Hints = []string{"the CredentialsFunc did not return before the request's context ended: bound its work, or give the request more time"}
	case cause != nil && !isSOCKSAuthError(cause):
		d.Summary = "cannot get or use credentials for the SOCKS5 proxy: " + causeText(cause)
		d.Hints = []string{"SOCKS5 takes a username of 1 to 255 bytes and a password of at most 255 bytes: fix what the proxy URL or the CredentialsFunc gives"}
	case rejected == nil:
		d.Summary = "the SOCKS5 proxy refused the authentication"
		d.Hints = []string{"give a username and password in the socks5:// URL, or check them", encode}
	case *rejected:
		d.Summary = "the SOCKS5 proxy rejected the username and password"
		d.Hints = []string{
			"check the username and password (in the socks5:// URL or from Config.Credentials)",
			encode,
			"SOCKS5 takes a username of 1 to 255 bytes and a password of at most 255 bytes",
		}
	default:
		d.Summary = "the SOCKS5 proxy requires a username and password and none were sent"
		d.Hints = []string{
			"give a username and password in the socks5:// URL (socks5://user:pass@host:1080) or through Config.Credentials",
			"the proxy may want a method other than username and password (such as GSSAPI), which the SOCKS5 client does not offer",
		}
	}
	return d
}

// notPlainHTTP is the hint for a port that broke off an HTTP exchange.
const notPlainHTTP = "the port may not be a plain HTTP proxy: if it listens with TLS, use an https:// proxy URL, and a SOCKS5 proxy needs a socks5:// one"

// diagnoseProxyError diagnoses a *ProxyError.
func diagnoseProxyError(pe *ProxyError) Diagnosis {
	proxy := redact.URL(pe.Proxy)
	if pe.StatusCode != 0 {
		d := diagnoseProxyStatus(pe.Op, pe.StatusCode, pe.Header)
		d.Proxy = proxy
		return d
	}
	var d Diagnosis
	switch pe.Op {
	case "dial":
		d = diagnoseDial(pe.Proxy, pe.Err)
	case "tls":
		d = diagnoseProxyTLS(pe.Err)
	case "connect":
		d = Diagnosis{Layer: LayerProxy}
		if isTimeout(pe.Err) {
			d.Summary = "the proxy did not answer the CONNECT in time"
			d.Hints = []string{
				"the proxy accepted the connection but said nothing within Config.ProxyTimeout (default 10s): it may be overloaded, or the port is not an HTTP proxy",
				"if the port is a TLS proxy, use an https:// proxy URL",
			}
		} else {
			d.Summary = "the proxy closed the connection without answering the CONNECT"
			d.Hints = []string{
				"the proxy dropped the request: it may be overloaded or restarting, and its logs will tell",
				notPlainHTTP,
			}
		}
	case "handshake":
		d = Diagnosis{Layer: LayerProxy}
		if isTimeout(pe.Err) {
			d.Summary = "the proxy did not answer a leg of the NTLM or Negotiate handshake in time"
		} else {
			d.Summary = "the proxy closed the connection in the middle of the NTLM or Negotiate handshake"
		}
		d.Hints = []string{
			"the handshake ran on a new connection before the request was written: the request was not sent, and a pool tries another proxy",
			"the proxy may be overloaded or restarting, and its logs will tell; Config.ProxyTimeout (default 10s) bounds each handshake",
		}
	case "forward":
		d = Diagnosis{Layer: LayerProxy}
		if isTimeout(pe.Err) {
			d.Summary = "the forwarded request got no answer in time"
			d.Hints = []string{"Base.ResponseHeaderTimeout ran out: for an http:// target it waits on the origin too, so a slow origin looks like this"}
		} else {
			d.Summary = "the proxy closed the connection without answering the forwarded request"
			d.Hints = []string{
				"the proxy dropped the request: it may be overloaded or restarting, and its logs will tell",
				notPlainHTTP,
			}
		}
	case "tunnel":
		d = Diagnosis{Layer: LayerProxy}
		if isTimeout(pe.Err) {
			d.Summary = "the exchange through the proxy's tunnel timed out"
			d.Hints = []string{
				"the proxy may have dropped what it was to relay, or the origin is slow: Base.TLSHandshakeTimeout and Base.ResponseHeaderTimeout bound the wait",
			}
		} else {
			d.Summary = "the connection through the proxy broke while the request was in it"
			d.Hints = []string{
				"the proxy may have restarted or dropped the tunnel, or the origin closed the connection: the proxy's logs tell which",
				"a request that can be sent again (idempotent, with GetBody) moves to another proxy of a pool; others are not resent",
			}
		}
	case "socks":
		d = Diagnosis{Layer: LayerProxy, Summary: "the SOCKS5 handshake failed"}
		if pe.Err != nil {
			d.Summary += ": " + causeText(pe.Err)
		}
		d.Hints = []string{
			"check that the port is a SOCKS5 proxy (an HTTP proxy needs an http:// URL)",
			"the SOCKS5 proxy may refuse the target by its rules, or fail to reach it: check the target's host and port",
			"with socks5:// names are resolved here, with socks5h:// by the proxy",
		}
	default:
		d = Diagnosis{Layer: LayerProxy, Summary: "the proxy failed (" + pe.Op + ")"}
		if pe.Err != nil {
			d.Summary += ": " + causeText(pe.Err)
		}
	}
	d.Proxy = proxy
	return d
}

// diagnoseDial diagnoses a failure to reach the proxy.
func diagnoseDial(proxy *url.URL, cause error) Diagnosis {
	d := Diagnosis{Layer: LayerNetwork}
	var dns *net.DNSError
	switch {
	case errors.Is(cause, context.Canceled):
		// The caller gave up while the connection was being made.
		return Diagnosis{Layer: LayerNone, Summary: "the caller canceled the request while it was connecting to the proxy",
			Hints: []string{"no layer is known to have failed: the caller ended the request (context canceled)"}}
	case errors.As(cause, &dns):
		if dns.IsNotFound {
			d.Summary = "the proxy's host name " + strconv.Quote(dns.Name) + " does not resolve"
			d.Hints = []string{
				"check the spelling of the host name in the proxy URL",
				"check that this machine's DNS can resolve it: a name of an internal network may need its VPN or DNS servers",
			}
		} else {
			d.Summary = "cannot resolve the proxy's host name " + strconv.Quote(dns.Name) + ": " + dns.Err
			d.Hints = []string{
				"the DNS servers did not answer as they should: check this machine's resolver configuration (/etc/resolv.conf, VPN) and network",
				"give the proxy as an IP address to rule DNS out",
			}
		}
	case isTimeout(cause):
		d.Summary = "connecting to the proxy timed out"
		d.Hints = []string{
			"nothing answered at the proxy's address: a firewall may drop the packets, or the address leads nowhere (a black hole): check the host and port and the route to it",
			"Config.ProxyTimeout (default 10s) and the request's own deadline bound this wait: raise them only for a slow link",
		}
	case errors.Is(cause, syscall.ECONNREFUSED):
		d.Summary = "the proxy's address refused the connection"
		d.Hints = []string{
			"check the proxy's host and port",
			"check that the proxy is running and listens on that address",
			"a firewall may reject the connection",
		}
	default:
		d.Summary = "cannot reach the proxy"
		if cause != nil {
			d.Summary += ": " + causeText(cause)
		}
		d.Hints = []string{
			"check the proxy's host and port",
			"check that this machine has a route to it (network, VPN) and that no firewall blocks it",
		}
	}
	d.Hints = append(d.Hints, envHint(proxy))
	return d
}

// envHint says where to look when the proxy may have come from the
// environment.
func envHint(proxy *url.URL) string {
	if proxy != nil {
		var names []string
		for _, name := range [...]string{"https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"} {
			v := os.Getenv(name)
			if v == "" {
				continue
			}
			if !strings.Contains(v, "://") {
				v = "http://" + v
			}
			if u, err := url.Parse(v); err == nil && strings.EqualFold(u.Host, proxy.Host) {
				names = append(names, name)
			}
		}
		if len(names) > 0 {
			return "the proxy comes from the environment (" + strings.Join(names, ", ") + "): check that variable"
		}
	}
	return maybeEnvHint
}

// maybeEnvHint is the hint of envHint when no variable of the environment
// names the proxy.
const maybeEnvHint = "if the proxy came from the environment, check HTTP_PROXY and HTTPS_PROXY (the lower-case names win)"

// diagnoseProxyTLS diagnoses a failed TLS handshake with an https://
// proxy.
func diagnoseProxyTLS(cause error) Diagnosis {
	d := Diagnosis{Layer: LayerProxy}
	var (
		rhe  tls.RecordHeaderError
		ua   x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
	)
	switch {
	case errors.As(cause, &rhe):
		d.Summary = "the proxy did not answer the TLS handshake with TLS"
		d.Hints = []string{"the proxy speaks plain HTTP: use an http:// proxy URL"}
		if !strings.HasPrefix(string(rhe.RecordHeader[:]), "HTTP/") {
			d.Hints = append(d.Hints, "or the port is not the proxy's: check it")
		}
	case errors.As(cause, &ua):
		d.Summary = "the proxy's certificate is not trusted" + issuer(ua.Cert)
		d.Hints = []string{
			"trust the proxy's certificate: add its CA to Base.TLSClientConfig.RootCAs, or to this machine's trust store",
			"check that the proxy URL names the intended proxy",
		}
	case errors.As(cause, &host):
		d.Summary = "the proxy's certificate is not valid for " + strconv.Quote(host.Host) + certNames(host.Certificate)
		d.Hints = []string{"use a host name that the certificate names in the proxy URL, or have the proxy's certificate cover the name used"}
	case errors.As(cause, &inv):
		d.Summary = "the proxy's certificate is not valid" + invalidReason(inv)
		d.Hints = []string{"check the proxy's certificate, its dates, and this machine's clock"}
	case tlsAlert(cause) != "":
		d.Summary = "the proxy aborted the TLS handshake (" + tlsAlert(cause) + ")"
		d.Hints = []string{"the proxy may require a client certificate (Base.TLSClientConfig.Certificates), or TLS versions or ciphers this client does not offer"}
	case isTimeout(cause):
		d.Summary = "the TLS handshake with the proxy timed out"
		d.Hints = []string{
			"check that the proxy's port speaks TLS: a plain HTTP proxy needs an http:// URL",
			"Config.ProxyTimeout (default 10s) bounds the handshake",
		}
	case errors.Is(cause, io.EOF) || errors.Is(cause, syscall.ECONNRESET):
		d.Summary = "the proxy closed the connection during the TLS handshake"
		d.Hints = []string{"check that the proxy's port speaks TLS: a plain HTTP proxy needs an http:// URL"}
	default:
		d.Summary = "the TLS handshake with the proxy failed"
		if cause != nil {
			d.Summary += ": " + causeText(cause)
		}
		d.Hints = []string{"check the proxy's TLS settings against Base.TLSClientConfig"}
	}
	return d
}

// diagnoseOriginTLS diagnoses a failed TLS handshake with the origin,
// which, through a proxy, happens inside the tunnel. It reports false when
// err is not such a failure.
func diagnoseOriginTLS(err error) (Diagnosis, bool) {
	d := Diagnosis{Layer: LayerTLS}
	var (
		rhe  tls.RecordHeaderError
		ua   x509.UnknownAuthorityError
		host x509.HostnameError
		inv  x509.CertificateInvalidError
		cve  *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &ua):
		d.Summary = "the origin's certificate is not trusted" + issuer(ua.Cert)
		d.Hints = []string{
			"if the proxy inspects TLS (it re-signs the sites' certificates with its own CA, as corporate proxies do), trust that CA: add it to Base.TLSClientConfig.RootCAs or to this machine's trust store",
			"if the site uses a private CA, add that CA likewise",
		}
	case errors.As(err, &host):
		d.Summary = "the origin's certificate is not valid for " + strconv.Quote(host.Host) + certNames(host.Certificate)
		d.Hints = []string{
			"check the host name in the request's URL",
			"a TLS-inspecting proxy or a captive portal may be answering in the origin's place",
		}
	case errors.As(err, &inv):
		d.Summary = "the origin's certificate is not valid" + invalidReason(inv)
		d.Hints = []string{"check the site's certificate, its dates, and this machine's clock"}
	case errors.As(err, &cve):
		d.Summary = "the origin's certificate does not verify"
		if cve.Err != nil {
			d.Summary += ": " + causeText(cve.Err)
		}
		d.Hints = []string{"check the site's certificate against Base.TLSClientConfig.RootCAs"}
	case errors.As(err, &rhe) || errors.Is(err, http.ErrSchemeMismatch):
		// http.Client turns a RecordHeaderError that starts with "HTTP/"
		// into ErrSchemeMismatch.
		d.Summary = "the origin did not answer the TLS handshake with TLS"
		d.Hints = []string{"the origin's port speaks plain HTTP: use an http:// URL, or the port that serves https"}
	case tlsAlert(err) != "":
		d.Summary = "the origin aborted the TLS handshake (" + tlsAlert(err) + ")"
		d.Hints = []string{"the site may require a client certificate (Base.TLSClientConfig.Certificates), or TLS versions or ciphers this client does not offer"}
	default:
		return d, false
	}
	return d, true
}

// isTLSError reports whether err is a failure of a TLS handshake that
// Diagnose recognises.
func isTLSError(err error) bool {
	var (
		rhe  tls.RecordHeaderError
		cve  *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		host x509.HostnameError
	)
	return errors.As(err, &rhe) || errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &host) || tlsAlert(err) != ""
}

// tlsAlert returns the text of a TLS alert that ended a handshake, or "".
// Over TCP, crypto/tls reports an alert as a *net.OpError whose Op is
// "remote error" (the peer sent it) or "local error" (we did); it uses
// tls.AlertError only for QUIC.
func tlsAlert(err error) string {
	var (
		alert tls.AlertError
		oe    *net.OpError
	)
	switch {
	case errors.As(err, &alert):
		return alert.Error()
	case errors.As(err, &oe) && (oe.Op == "remote error" || oe.Op == "local error"):
		return oe.Error()
	}
	return ""
}

// diagnoseProxyStatus diagnoses a failure status that the proxy made
// itself, in answer to a CONNECT (op "connect") or a forwarded request.
func diagnoseProxyStatus(op string, code int, h http.Header) Diagnosis {
	d := Diagnosis{Layer: LayerProxy}
	if op == "connect" {
		d.Summary = "the proxy refused the CONNECT with " + status(code)
	} else {
		d.Summary = "the proxy answered " + status(code) + " itself"
	}
	squid, proxyStatus := squidError(h), proxyStatusError(h)
	switch {
	case squid != "":
		d.Summary += " (squid " + untrusted(squid) + ")"
	case proxyStatus != "":
		d.Summary += " (Proxy-Status error=" + untrusted(proxyStatus) + ")"
	}
	if hint := detailHint(squid, proxyStatus); hint != "" {
		d.Hints = append(d.Hints, hint)
	}
	switch {
	case code == http.StatusForbidden:
		hint := "the proxy's ACL forbids this target or port: ask its operator to allow it"
		if op == "connect" {
			hint += " (squid allows CONNECT only to port 443 by default)"
		}
		d.Hints = append(d.Hints, hint, "if the proxy's rules depend on the user, check that the credentials are those of a user allowed there")
	case code == http.StatusBadRequest && op == "connect":
		d.Hints = append(d.Hints, "the proxy could not read the CONNECT: if it listens with TLS, use an https:// proxy URL")
	case code == http.StatusMethodNotAllowed || code == http.StatusNotImplemented:
		d.Hints = append(d.Hints, "the proxy does not allow CONNECT tunnels: https:// targets need a proxy that does")
	case code == http.StatusTooManyRequests:
		d.Hints = append(d.Hints, "the proxy rate-limits this client: slow down"+retryAfter(h))
	case code == http.StatusBadGateway || code == http.StatusGatewayTimeout:
		d.Hints = append(d.Hints, "the proxy could not reach the origin: check the target's host and port, and that the proxy can resolve and reach it (its DNS, its outbound firewall)")
		if code == http.StatusGatewayTimeout {
			d.Hints = append(d.Hints, "or the origin was too slow to answer the proxy")
		}
	case code == http.StatusServiceUnavailable:
		d.Hints = append(d.Hints, "the proxy is overloaded or cannot reach the origin right now: retry later"+retryAfter(h)+", or list fallback proxies in Config.Proxies")
	default:
		d.Hints = append(d.Hints, "the proxy refused the request with "+status(code)+": see its documentation or ask its operator")
	}
	if hops := viaHops(h); len(hops) > 1 {
		d.Hints = append(d.Hints, "Via lists "+strconv.Itoa(len(hops))+" proxies: the answer may come from the upstream proxy "+quoted(hops[0])+" behind the first one")
	}
	return d
}

// detailHint explains squid's X-Squid-Error code or an RFC 9209
// Proxy-Status error; "" when there is nothing to add.
func detailHint(squid, proxyStatus string) string {
	switch {
	case squid == "ERR_DNS_FAIL" || proxyStatus == "dns_error" || proxyStatus == "destination_not_found":
		return "the proxy could not resolve the target's host name"
	case squid == "ERR_CONNECT_FAIL" || proxyStatus == "connection_refused" || proxyStatus == "destination_unavailable":
		return "the proxy could not connect to the target"
	case squid == "ERR_READ_TIMEOUT" || proxyStatus == "connection_timeout" || proxyStatus == "http_response_timeout":
		return "the target did not answer the proxy in time"
	}
	return ""
}

// diagnoseResponse diagnoses a round trip that returned a response.
func diagnoseResponse(resp *http.Response) Diagnosis {
	if resp == nil {
		return Diagnosis{Layer: LayerNone, Kind: KindOther, Summary: "nothing to diagnose: no response and no error"}
	}
	var d Diagnosis
	var (
		pae *ProxyAuthError
		pe  *ProxyError
		ae  *AuthError
	)
	switch err := CheckResponse(resp); {
	case err == nil:
		d = Diagnosis{Summary: "ok"}
	case errors.As(err, &pae):
		d = diagnoseProxyAuth(pae)
	case errors.As(err, &pe):
		d = diagnoseProxyStatus(pe.Op, pe.StatusCode, pe.Header)
	case errors.As(err, &ae):
		d = diagnoseOriginAuth(ae.Challenges, resp.Request)
	default:
		d = diagnoseOriginStatus(resp.StatusCode, resp.Header)
	}
	d.Kind = Classify(resp, nil)
	return d
}

// diagnoseOriginAuth diagnoses the origin's 401. req, if known, tells
// whether credentials were sent.
func diagnoseOriginAuth(cs []Challenge, req *http.Request) Diagnosis {
	d := Diagnosis{Layer: LayerOriginAuth}
	note := " (401"
	if len(cs) > 0 {
		note += ", offers " + challengeList(cs)
	}
	note += ")"
	switch {
	case req != nil && req.Header.Get("Authorization") != "":
		d.Summary = "the origin refused the credentials sent" + note
	case req != nil:
		d.Summary = "the origin wants credentials and none were sent" + note
	default:
		d.Summary = "the origin answered 401 Unauthorized" + note
	}
	c := pickChallenge(cs)
	switch {
	case c == nil:
		d.Hints = append(d.Hints, "the origin names no scheme (no WWW-Authenticate): see the site's documentation for how to authenticate")
	case strings.EqualFold(c.Scheme, "Bearer"):
		switch c.Params["error"] {
		case "invalid_token":
			hint := "the access token is expired, revoked or malformed: get a new one"
			if desc := c.Params["error_description"]; desc != "" {
				hint += " (the site says " + quoted(desc) + ")"
			}
			d.Hints = append(d.Hints, hint)
		case "insufficient_scope":
			hint := "the access token lacks the scope this resource needs"
			if scope := c.Params["scope"]; scope != "" {
				hint += ": " + quoted(scope)
			}
			d.Hints = append(d.Hints, hint)
		case "invalid_request":
			d.Hints = append(d.Hints, "the site could not read the token: send it once, as Authorization: Bearer <token>")
		default:
			d.Hints = append(d.Hints, "the site wants an access token: send Authorization: Bearer <token>")
		}
	case strings.EqualFold(c.Scheme, "Basic"):
		d.Hints = append(d.Hints, "check the site's own username and password: they go in the Authorization field (Request.SetBasicAuth), not in the proxy URL")
	case strings.EqualFold(c.Scheme, "Digest"):
		d.Hints = append(d.Hints, "check the site's own username and password: Digest needs a client that answers the site's challenge, which net/http does not do")
	case strings.EqualFold(c.Scheme, "Negotiate") || strings.EqualFold(c.Scheme, "NTLM"):
		d.Hints = append(d.Hints, "the site wants Windows integrated authentication ("+untrusted(c.Scheme)+"), which net/http does not do on its own")
	default:
		d.Hints = append(d.Hints, "the site wants "+untrusted(c.Scheme)+" credentials: see its documentation")
	}
	d.Hints = append(d.Hints, "the proxy's credentials (the proxy URL, Proxy-Authorization) never reach the origin: the site's credentials go in the Authorization field")
	return d
}

// pickChallenge returns the challenge that the hints are about: a Bearer
// one first, since its error parameter says most, else the first.
func pickChallenge(cs []Challenge) *Challenge {
	for i := range cs {
		if strings.EqualFold(cs[i].Scheme, "Bearer") {
			return &cs[i]
		}
	}
	if len(cs) > 0 {
		return &cs[0]
	}
	return nil
}

// diagnoseOriginStatus diagnoses a failure status that the origin sent
// (no proxy marked it as its own). h may be nil.
func diagnoseOriginStatus(code int, h http.Header) Diagnosis {
	d := Diagnosis{Layer: LayerOrigin, Summary: "the origin answered " + status(code)}
	switch {
	case code == http.StatusForbidden:
		d.Hints = []string{
			"the site refuses this client: check its own credentials or permissions (in Authorization, never Proxy-Authorization)",
			"some sites block proxy and data-center addresses: try another proxy or exit",
			"a proxy's own 403 carries X-Squid-Error or Proxy-Status: without them, check the proxy's logs if the site should allow this",
		}
	case code == http.StatusNotFound:
		d.Hints = []string{"the site has nothing at this URL: check the path"}
	case code == http.StatusTooManyRequests:
		d.Hints = []string{"the site rate-limits this client: slow down" + retryAfter(h) + ", or spread the requests over more proxies"}
	case code >= 500:
		d.Hints = []string{"the site itself failed: retry later" + retryAfter(h)}
		if code == http.StatusBadGateway || code == http.StatusGatewayTimeout {
			d.Hints = append(d.Hints, "a 502 or 504 may also come from a proxy that did not mark its answer (no X-Squid-Error or Proxy-Status): check the proxy's logs if the site is up")
		}
	default:
		d.Hints = []string{"the site rejected the request: check its method, URL, header fields and body"}
	}
	return d
}

// diagnoseConfig diagnoses a *ConfigError.
func diagnoseConfig(ce *ConfigError) Diagnosis {
	d := Diagnosis{Layer: LayerNone, Summary: "configuration: " + ce.Field}
	if ce.Value != "" {
		d.Summary += " " + strconv.Quote(ce.Value)
	}
	d.Summary += " is not usable"
	if ce.Reason != "" {
		d.Hints = append(d.Hints, ce.Reason)
	}
	if strings.HasSuffix(strings.ToUpper(ce.Field), "_PROXY") {
		d.Hints = append(d.Hints, "fix the environment variable "+ce.Field+", or list the proxies in Config.Proxies")
	} else {
		d.Hints = append(d.Hints, "fix the Config given to New or Wrap: no request was sent")
	}
	return d
}

// diagnosePAC diagnoses a failure of the PAC script, which chooses the
// proxies before any is tried.
func diagnosePAC(e *PACError) Diagnosis {
	d := Diagnosis{Layer: LayerProxy}
	switch e.Op {
	case "fetch":
		d.Summary = "the PAC script " + e.PAC + " could not be fetched"
		d.Hints = []string{"the script is fetched directly, never through a proxy: check that this machine reaches " + e.PAC}
	case "compile":
		d.Summary = "the PAC script " + e.PAC + " does not compile"
		d.Hints = []string{"the script has a syntax error, or defines neither FindProxyForURL nor FindProxyForURLEx: ask its author"}
	case "result":
		d.Summary = "the PAC script named no usable proxy for " + e.Target + ": it returned " + quoted(e.Result)
		d.Hints = []string{`FindProxyForURL must return entries such as "PROXY host:port; SOCKS5 host:port; DIRECT", separated by semicolons`}
		if len(e.Skipped) > 0 {
			d.Hints = append(d.Hints, "entries not understood: "+strings.Join(e.Skipped, ", "))
		}
	default:
		d.Summary = "the PAC script failed for " + e.Target
		if e.Err != nil {
			d.Summary += ": " + causeText(e.Err)
		}
		d.Hints = pacHints(e.Err)
	}
	d.Hints = append(d.Hints, "Transport.ProxiesFor shows what the script returns for a request")
	return d
}

// pacHints suggests what to do about a failed evaluation of a PAC script.
func pacHints(err error) []string {
	var pe *pac.Error
	if !errors.As(err, &pe) {
		return nil
	}
	switch pe.Kind {
	case pac.KindThrow:
		return []string{"the script threw an exception for this URL: ask its author, with the URL and the message"}
	case pac.KindTimeout:
		return []string{"FindProxyForURL ran longer than its bound (1 s): the script may loop, or wait on slow DNS lookups of its helpers"}
	case pac.KindMemory:
		return []string{"FindProxyForURL allocated more than its bound (64 MiB): the script may build strings without end"}
	case pac.KindBadResult:
		return []string{`FindProxyForURL must return a string, such as "PROXY host:port; DIRECT"`}
	case pac.KindCanceled:
		return []string{"the request ended while the script ran"}
	}
	return nil
}

// diagnoseOther diagnoses an error that no layer can be blamed for: the
// caller's cancellation or deadline, or an error this package does not
// recognise.
func diagnoseOther(err error) Diagnosis {
	switch {
	case errors.Is(err, context.Canceled):
		return Diagnosis{Layer: LayerNone, Summary: "the caller canceled the request",
			Hints: []string{"no layer is known to have failed: the caller ended the request (context canceled)"}}
	case errors.Is(err, context.DeadlineExceeded):
		return Diagnosis{Layer: LayerNone,
			Summary: "the request's time ran out before an answer came (the context's deadline, http.Client.Timeout or Base.ResponseHeaderTimeout)",
			Hints: []string{
				"no layer is known to have failed, only to be slower than allowed: if the proxy or the origin is slow, allow more time",
				"Config.ProxyTimeout bounds the proxy's part on its own: a proxy that does not answer in that time is reported as such",
			}}
	}
	return Diagnosis{Layer: LayerNone, Summary: "unrecognised failure: " + causeText(err)}
}

// viaHops returns the received-by part of each entry of the Via fields of
// h, in order: the first is the hop furthest from the client.
func viaHops(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("Via") {
		depth, start := 0, 0
		add := func(entry string) {
			f := strings.Fields(entry)
			switch len(f) {
			case 0:
			case 1:
				hops = append(hops, f[0])
			default:
				hops = append(hops, f[1])
			}
		}
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '(':
				depth++
			case ')':
				if depth > 0 {
					depth--
				}
			case ',':
				if depth == 0 {
					add(v[start:i])
					start = i + 1
				}
			}
		}
		add(v[start:])
	}
	return hops
}

// squidError returns the error code of squid's X-Squid-Error field, such
// as "ERR_ACCESS_DENIED", or "".
func squidError(h http.Header) string {
	if f := strings.Fields(h.Get("X-Squid-Error")); len(f) > 0 {
		return f[0]
	}
	return ""
}

// proxyStatusError returns the error parameter of an RFC 9209
// Proxy-Status field, such as "destination_unavailable", or "".
func proxyStatusError(h http.Header) string {
	for _, v := range h.Values("Proxy-Status") {
		for _, p := range strings.Split(v, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "error") {
				return strings.Trim(strings.TrimSpace(val), `"`)
			}
		}
	}
	return ""
}

// retryAfter returns " (Retry-After: v)" when h has that field.
func retryAfter(h http.Header) string {
	if v := h.Get("Retry-After"); v != "" {
		return " (Retry-After: " + untrusted(v) + ")"
	}
	return ""
}

// challengeList lists at most maxOffers challenges, as Challenge.String
// gives them, and how many more there are.
func challengeList(cs []Challenge) string {
	if len(cs) == 0 {
		return "no challenge"
	}
	parts := make([]string, 0, min(len(cs), maxOffers)+1)
	for _, c := range cs[:min(len(cs), maxOffers)] {
		parts = append(parts, c.String())
	}
	if len(cs) > maxOffers {
		parts = append(parts, "and "+strconv.Itoa(len(cs)-maxOffers)+" more")
	}
	return strings.Join(parts, ", ")
}

func realmOf(cs []Challenge) string {
	for _, c := range cs {
		if r := c.Params["realm"]; r != "" {
			return r
		}
	}
	return ""
}

func offersScheme(cs []Challenge, scheme string) bool {
	for _, c := range cs {
		if strings.EqualFold(c.Scheme, scheme) {
			return true
		}
	}
	return false
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// issuer returns " (issued by X)" for a certificate whose issuer has a
// name, or "".
func issuer(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	name := c.Issuer.CommonName
	if name == "" && len(c.Issuer.Organization) > 0 {
		name = c.Issuer.Organization[0]
	}
	if name == "" {
		return ""
	}
	return " (issued by " + strconv.Quote(name) + ")"
}

// certNames returns " (it names a, b)" for the names a certificate is
// valid for, or "".
func certNames(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return ""
	}
	if len(names) > 4 {
		names = append(names[:4], "...")
	}
	return " (it names " + strings.Join(names, ", ") + ")"
}

func invalidReason(e x509.CertificateInvalidError) string {
	switch e.Reason {
	case x509.Expired:
		return ": expired or not yet valid"
	case x509.NotAuthorizedToSign:
		return ": signed by a certificate that may not sign"
	case x509.IncompatibleUsage:
		return ": not meant for a TLS server"
	}
	return ""
}

// causeText returns the text of an underlying error for a summary: with
// the secrets its typed errors know of masked, and at most maxCause bytes.
func causeText(err error) string {
	return secretsOf(err).Bound(err.Error(), maxCause)
}

// clean makes s one line without a trailing period, with each secret
// masked, and at most maxText bytes.
func clean(s string, secrets *redact.Secrets) string {
	s = secrets.Bound(s, maxText)
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimSuffix(s, ".")
}
