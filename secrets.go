package proxyauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/proxyauth/proxyauth/internal/redact"
)

// Bounds on text that a proxy controls. A proxy can send megabytes of realm,
// header field or status line; what this package quotes of it in a message
// is cut, so that an Error, a Diagnosis or a Stats snapshot stays small
// whatever the proxy sent.
const (
	// maxQuoted bounds one untrusted value quoted in a message: a realm,
	// a scheme name, a parameter, a header field's value.
	maxQuoted = 200
	// maxCause bounds the text of an underlying error quoted in a
	// message, such as net/http's "malformed HTTP status code".
	maxCause = 1024
	// maxText bounds the whole text of an Error, of each line of a
	// Diagnosis, and of ProxyStats.LastError.
	maxText = 2048
	// maxOffers bounds the challenges that a message lists.
	maxOffers = 8
)

// quoted returns an untrusted value quoted for a message, at most
// maxQuoted bytes of it.
func quoted(s string) string { return strconv.Quote(redact.Truncate(s, maxQuoted)) }

// untrusted returns an untrusted value for a message, unquoted, at most
// maxQuoted bytes of it.
func untrusted(s string) string { return redact.Truncate(s, maxQuoted) }

// sentSecrets returns what this route may have sent to its proxy for
// attempt a (nil when unknown), in every form it could come back in: the
// credentials of the attempt and the current and accepted ones, and the
// Proxy-Authorization values sent (header, the caller's own, a CONNECT's).
// The forms are computed when first needed.
func (r *route) sentSecrets(a *attempt, header string) *redact.Secrets {
	var lg *proxyLogin
	var callerAuth string
	var connectAuth *string
	if a != nil {
		lg, callerAuth, connectAuth = a.lg, a.callerAuth, a.sentAuth.Load()
	}
	cur, acc := r.auth.current(), r.auth.accepted.Load()
	return redact.Lazy(func() []string {
		forms := append(redact.HeaderForms(header), redact.HeaderForms(callerAuth)...)
		if connectAuth != nil {
			forms = append(forms, redact.HeaderForms(*connectAuth)...)
		}
		for _, c := range []*Credentials{sessCreds(lg), versionedCreds(cur), sessCreds(acc)} {
			if c != nil {
				forms = append(forms, redact.CredentialForms(c.Username, c.Password)...)
			}
		}
		return forms
	})
}

func sessCreds(s *proxyLogin) *Credentials {
	if s == nil {
		return nil
	}
	return &s.creds
}

func versionedCreds(v *versioned) *Credentials {
	if v == nil {
		return nil
	}
	return &v.creds
}

// recordSent keeps v, the Proxy-Authorization value of the attempt's
// CONNECT, for seal, unless it is the caller's own or one that the
// credentials alone give (Basic, Bearer), which seal knows anyway: this
// spares the common case an allocation.
func (a *attempt) recordSent(v string) {
	if a.callerAuth != "" || a.lg == nil {
		return
	}
	if _, fixed := a.lg.auth.(fixedAuthorizer); !fixed {
		a.sentAuth.Store(&v)
	}
}

// seal makes sure that no text of err shows what the route sent to the
// proxy for attempt a (nil when unknown; header is a Proxy-Authorization
// value sent besides): a proxy that echoes the Proxy-Authorization field
// into a malformed answer makes net/http quote it in its error. The typed
// error in err is given the secrets, which its Error masks, and its Err is
// wrapped in an error that masks them too, as are the parameters of its
// Challenges; an untyped err whose text holds one is wrapped likewise. errors.Is and errors.As see through the
// wrappers.
func (r *route) seal(err error, a *attempt, header string) error {
	if err == nil {
		return nil
	}
	s := r.sentSecrets(a, header)
	var (
		pae *ProxyAuthError
		pe  *ProxyError
	)
	switch {
	case errors.As(err, &pae):
		pae.sent = redact.Merge(pae.sent, s)
		pae.Err = scrubbed(pae.Err, pae.sent)
		pae.Challenges = scrubChallenges(pae.Challenges, pae.sent)
	case errors.As(err, &pe):
		pe.sent = redact.Merge(pe.sent, s)
		pe.Err = scrubbed(pe.Err, pe.sent)
	default:
		return scrubbed(err, s)
	}
	return err
}

// scrubChallenges returns cs with s masked in each scheme, parameter and
// token68: cs itself when none holds one of s, else a copy.
func scrubChallenges(cs []Challenge, s *redact.Secrets) []Challenge {
	holds := func(c Challenge) bool {
		if s.In(c.Scheme) || s.In(c.Token68) {
			return true
		}
		for _, v := range c.Params {
			if s.In(v) {
				return true
			}
		}
		return false
	}
	var out []Challenge
	for i, c := range cs {
		if !holds(c) {
			if out != nil {
				out[i] = c
			}
			continue
		}
		if out == nil {
			out = make([]Challenge, len(cs))
			copy(out, cs[:i])
		}
		sc := Challenge{Scheme: s.Scrub(c.Scheme), Token68: s.Scrub(c.Token68)}
		if c.Params != nil {
			sc.Params = make(map[string]string, len(c.Params))
			for k, v := range c.Params {
				sc.Params[k] = s.Scrub(v)
			}
		}
		out[i] = sc
	}
	if out == nil {
		return cs
	}
	return out
}

// scrubbed returns err wrapped so that its text masks s, when it shows one
// of s; err itself otherwise.
func scrubbed(err error, s *redact.Secrets) error {
	if se, ok := err.(*scrubbedError); ok {
		return &scrubbedError{err: se.err, sent: redact.Merge(se.sent, s)}
	}
	switch {
	case err == nil:
		return nil
	case !s.In(err.Error()):
		return err
	}
	return &scrubbedError{err: err, sent: s}
}

// scrubbedError is an error whose text masks secrets; Unwrap returns the
// error it wraps, whose own text does not.
type scrubbedError struct {
	err  error
	sent *redact.Secrets
}

func (e *scrubbedError) Error() string { return e.sent.Bound(e.err.Error(), maxCause) }
func (e *scrubbedError) Unwrap() error { return e.err }

func (e *scrubbedError) Format(f fmt.State, verb rune) { formatError(f, verb, "", e.Error()) }

// secretsOf returns the secrets that err's typed errors know of: what was
// sent to the proxy, and the password of a proxy URL with userinfo (the
// Transport's errors carry none; errors that callers build may).
func secretsOf(err error) *redact.Secrets {
	var s *redact.Secrets
	var visit func(error, int)
	visit = func(err error, depth int) {
		if err == nil || depth > 100 {
			return
		}
		switch e := err.(type) {
		case *ProxyAuthError:
			s = redact.Merge(s, e.sent)
			s = redact.Merge(s, urlSecrets(e.Proxy))
		case *ProxyError:
			s = redact.Merge(s, e.sent)
			s = redact.Merge(s, urlSecrets(e.Proxy))
		case *AuthError:
			s = redact.Merge(s, urlSecrets(e.URL))
		case *StatusError:
			s = redact.Merge(s, urlSecrets(e.URL))
		case *scrubbedError:
			s = redact.Merge(s, e.sent)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			visit(u.Unwrap(), depth+1)
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				visit(e, depth+1)
			}
		}
	}
	visit(err, 0)
	return s
}

// urlSecrets returns the forms of the password in u's userinfo, or nil.
func urlSecrets(u *url.URL) *redact.Secrets {
	if u == nil || u.User == nil {
		return nil
	}
	pass, _ := u.User.Password()
	return redact.NewSecrets(redact.CredentialForms(u.User.Username(), pass)...)
}

// formatError formats an error's text for any verb: %v, %+v and %s give
// it, %q quotes it, %x and %X give it in hex, %#v gives it inside the Go
// syntax of its type, and other verbs say, as fmt does, that they do not
// apply. Either way the fields of the error, which may hold what a proxy
// sent, are not printed one by one.
func formatError(f fmt.State, verb rune, typ, text string) {
	switch verb {
	case 'v':
		if f.Flag('#') && typ != "" {
			io.WriteString(f, "&"+typ+"{"+strconv.Quote(text)+"}")
			return
		}
		io.WriteString(f, text)
	case 's', 'q', 'x', 'X':
		fmt.Fprintf(f, fmt.FormatString(f, verb), text)
	default:
		if typ == "" {
			typ = "error"
		}
		fmt.Fprintf(f, "%%!%c(*%s=%s)", verb, typ, text)
	}
}

// errorJSON is the JSON of an error: its text, as slog's JSON handler
// writes an error.
func errorJSON(text string) ([]byte, error) { return json.Marshal(text) }

// Format formats the error's text for every verb (see [ProxyAuthError.Error]).
func (e *ProxyAuthError) Format(f fmt.State, verb rune) {
	formatError(f, verb, "proxyauth.ProxyAuthError", e.Error())
}

// MarshalJSON returns the error's text as a JSON string.
func (e *ProxyAuthError) MarshalJSON() ([]byte, error) { return errorJSON(e.Error()) }

// Format formats the error's text for every verb (see [ProxyError.Error]).
func (e *ProxyError) Format(f fmt.State, verb rune) {
	formatError(f, verb, "proxyauth.ProxyError", e.Error())
}

// MarshalJSON returns the error's text as a JSON string.
func (e *ProxyError) MarshalJSON() ([]byte, error) { return errorJSON(e.Error()) }

// Format formats the error's text for every verb.
func (e *AuthError) Format(f fmt.State, verb rune) {
	formatError(f, verb, "proxyauth.AuthError", e.Error())
}

// MarshalJSON returns the error's text as a JSON string.
func (e *AuthError) MarshalJSON() ([]byte, error) { return errorJSON(e.Error()) }

// Format formats the error's text for every verb.
func (e *StatusError) Format(f fmt.State, verb rune) {
	formatError(f, verb, "proxyauth.StatusError", e.Error())
}

// MarshalJSON returns the error's text as a JSON string.
func (e *StatusError) MarshalJSON() ([]byte, error) { return errorJSON(e.Error()) }

// Format formats the error's text for every verb.
func (e *PoolError) Format(f fmt.State, verb rune) {
	formatError(f, verb, "proxyauth.PoolError", e.Error())
}

// MarshalJSON returns the error's text as a JSON string.
func (e *PoolError) MarshalJSON() ([]byte, error) { return errorJSON(e.Error()) }

// Format formats the error's text for every verb.
func (e *ConfigError) Format(f fmt.State, verb rune) {
	formatError(f, verb, "proxyauth.ConfigError", e.Error())
}

// MarshalJSON returns the error's text as a JSON string.
func (e *ConfigError) MarshalJSON() ([]byte, error) { return errorJSON(e.Error()) }

// Format formats c for every verb with the password masked: %#v gives
// GoString, and every other verb formats String as it would a string (%v
// and %s give it, %q quotes it, %x gives it in hex).
func (c Credentials) Format(f fmt.State, verb rune) { redact.Format(f, verb, c.GoString(), c.String()) }

// MarshalJSON returns {"Username": ..., "Password": "xxxxx"}.
func (c Credentials) MarshalJSON() ([]byte, error) {
	type credentials Credentials
	return json.Marshal(credentials{Username: c.Username, Password: redact.Mask})
}

// Format formats c as fmt formats its fields with %v, %+v or %#v, with the
// password of each proxy URL (in Proxies and Pool.Proxies) masked as
// "xxxxx" and the username kept, and Pool.Probe masked (see
// [PoolConfig.Format]); Base, Logger and the functions print as
// pointers, as fmt prints them inside a struct. Any other verb formats the
// text of %v as it would a string. Since Config implements [fmt.Formatter], so
// does a struct that embeds it, which then prints as its Config alone. A
// Config held in an unexported field of another struct is printed by fmt
// without calling this method: fmt cannot call methods there.
func (c Config) Format(f fmt.State, verb rune) {
	type config Config // without the methods
	m := c
	m.Proxies = make([]string, len(c.Proxies))
	for i, p := range c.Proxies {
		m.Proxies[i] = redact.Proxy(p)
	}
	formatStruct(f, verb, config(m), "proxyauth.config{", "proxyauth.Config{")
}

// formatStruct formats v, a copy of a struct with its secrets masked whose
// type has no methods, for verb: %v with its flags as fmt formats v (with
// the type name from, which %#v shows, replaced by to), and any other verb
// as it formats the text of %v. fmt's other verbs print each pointer
// field's target in full, which %v does not.
func formatStruct(f fmt.State, verb rune, v any, from, to string) {
	if verb != 'v' {
		fmt.Fprintf(f, fmt.FormatString(f, verb), fmt.Sprintf("%v", v))
		return
	}
	s := fmt.Sprintf(fmt.FormatString(f, verb), v)
	if f.Flag('#') {
		s = strings.Replace(s, from, to, 1)
	}
	io.WriteString(f, s)
}

// configJSON is the JSON form of a Config.
type configJSON struct {
	Proxies              []string
	MaxAuthAttempts      int
	WaitForChallenge     bool
	Schemes              []string
	ProxyTimeout         time.Duration
	Pool                 PoolConfig
	AllowBasicDowngrade  bool
	RefuseCleartextBasic bool
}

// MarshalJSON returns the settings of c that are data, for a log or a
// report: Proxies (with the password of each URL masked as "xxxxx"),
// MaxAuthAttempts, WaitForChallenge, the names of the Schemes,
// ProxyTimeout (in nanoseconds, as encoding/json writes a Duration), Pool
// (see [PoolProxy.MarshalJSON]), AllowBasicDowngrade and
// RefuseCleartextBasic. Credentials,
// Logger, Hooks and Base, which hold functions and cannot be written as
// JSON, are left out.
func (c Config) MarshalJSON() ([]byte, error) {
	out := configJSON{
		MaxAuthAttempts: c.MaxAuthAttempts, WaitForChallenge: c.WaitForChallenge,
		ProxyTimeout: c.ProxyTimeout, Pool: c.Pool, AllowBasicDowngrade: c.AllowBasicDowngrade,
		RefuseCleartextBasic: c.RefuseCleartextBasic,
	}
	for _, p := range c.Proxies {
		out.Proxies = append(out.Proxies, redact.Proxy(p))
	}
	for _, s := range c.Schemes {
		if s != nil {
			out.Schemes = append(out.Schemes, s.Name())
		}
	}
	return json.Marshal(out)
}

// Format formats c as fmt formats its fields with %v, %+v or %#v, with
// Probe masked as a configuration error quotes it (userinfo, query and
// fragment as "xxxxx") and each of Proxies as [PoolProxy.Format] does. Any
// other verb formats the text of %v as it would a string.
func (c PoolConfig) Format(f fmt.State, verb rune) {
	type poolConfig PoolConfig // without the methods
	m := poolConfig(c)
	m.Probe = redact.Raw(c.Probe)
	formatStruct(f, verb, m, "proxyauth.poolConfig{", "proxyauth.PoolConfig{")
}

// MarshalJSON returns c's fields as encoding/json writes them, with Probe
// masked as [PoolConfig.Format] masks it and each of Proxies as
// [PoolProxy.MarshalJSON] writes it.
func (c PoolConfig) MarshalJSON() ([]byte, error) {
	type poolConfig PoolConfig // without the methods
	m := poolConfig(c)
	m.Probe = redact.Raw(c.Probe)
	return json.Marshal(m)
}

// Format formats p as [Config.Format] does: its URL with the password
// masked as "xxxxx" and the username kept.
func (p PoolProxy) Format(f fmt.State, verb rune) {
	type poolProxy PoolProxy // without the methods
	m := poolProxy(p)
	m.URL = redact.Proxy(p.URL)
	formatStruct(f, verb, m, "proxyauth.poolProxy{", "proxyauth.PoolProxy{")
}

// MarshalJSON returns {"URL": ..., "Weight": ...}, with the password of the
// URL masked as "xxxxx"; Credentials, a function, is left out.
func (p PoolProxy) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		URL    string
		Weight int
	}{redact.Proxy(p.URL), p.Weight})
}
