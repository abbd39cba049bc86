package proxyauth

import (
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/http/httpproxy"

	"github.com/proxyauth/proxyauth/internal/redact"
)

// ConfigError reports a configuration that [New] or [Wrap] cannot use. Its
// Value never contains a password.
type ConfigError struct {
	// Field names what is wrong: "Proxies[0]", "HTTPS_PROXY",
	// "Credentials", "Client.Transport", ...
	Field string
	// Value is the offending value with any userinfo masked; "" when the
	// problem is not one value.
	Value string
	// Reason says what is wrong and how to fix it.
	Reason string
}

// Error returns "proxyauth: ", the field, the masked value quoted if any,
// and the reason.
func (e *ConfigError) Error() string {
	s := "proxyauth: " + e.Field
	if e.Value != "" {
		s += " " + strconv.Quote(e.Value)
	}
	return s + ": " + e.Reason
}

// checkAuthConfig validates the authentication settings of cfg.
func checkAuthConfig(cfg *Config) error {
	if cfg.MaxAuthAttempts < 0 {
		return &ConfigError{Field: "MaxAuthAttempts", Value: strconv.Itoa(cfg.MaxAuthAttempts),
			Reason: "negative; 0 means the default, 1 means no retry"}
	}
	if cfg.Schemes != nil && len(cfg.Schemes) == 0 {
		return &ConfigError{Field: "Schemes", Reason: "empty: no proxy could be answered; nil means the default"}
	}
	seen := map[string]bool{}
	for i, s := range cfg.Schemes {
		field := "Schemes[" + strconv.Itoa(i) + "]"
		if s == nil {
			return &ConfigError{Field: field, Reason: "nil"}
		}
		name := strings.ToLower(s.Name())
		if name == "" || strings.ContainsAny(name, " \t,=\"") {
			return &ConfigError{Field: field, Value: s.Name(), Reason: "not a scheme name"}
		}
		if seen[name] {
			return &ConfigError{Field: field, Value: s.Name(), Reason: "listed twice"}
		}
		seen[name] = true
		if ns, ok := s.(negotiateScheme); ok {
			if err := ns.k.validate(); err != nil {
				return &ConfigError{Field: field, Value: "Negotiate", Reason: err.Error()}
			}
		}
	}
	return nil
}

// checkPoolConfig validates cfg.Pool.
func checkPoolConfig(cfg *Config) error {
	pc := &cfg.Pool
	bad := func(field, value, reason string) error {
		return &ConfigError{Field: "Pool." + field, Value: value, Reason: reason}
	}
	if len(cfg.Proxies) > 0 && len(pc.Proxies) > 0 {
		return &ConfigError{Field: "Pool.Proxies", Reason: "set together with Config.Proxies; list the proxies in one of them"}
	}
	if pc.Strategy < Ordered || pc.Strategy > StickyHost {
		return bad("Strategy", pc.Strategy.String(), "not one of Ordered, RoundRobin, Random, StickyHost")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"MaxProxiesPerRequest", int64(pc.MaxProxiesPerRequest)}, {"ProbeTimeout", int64(pc.ProbeTimeout)},
		{"ProbeInterval", int64(pc.ProbeInterval)}, {"ProbeConcurrency", int64(pc.ProbeConcurrency)},
		{"EjectAfter", int64(pc.EjectAfter)}, {"EjectionTime", int64(pc.EjectionTime)},
		{"MaxEjectionTime", int64(pc.MaxEjectionTime)}, {"MaxEjectedPercent", int64(pc.MaxEjectedPercent)},
		{"SessionTTL", int64(pc.SessionTTL)}, {"BanCooldown", int64(pc.BanCooldown)},
		{"MaxBanCooldown", int64(pc.MaxBanCooldown)},
	} {
		if f.v < 0 {
			return bad(f.name, strconv.FormatInt(f.v, 10), "negative; 0 means the default")
		}
	}
	if _, err := parseSessionTemplate(pc.SessionUsername); err != nil {
		return err
	}
	if pc.BanCooldown > 0 && pc.MaxBanCooldown > 0 && pc.MaxBanCooldown < pc.BanCooldown {
		return bad("MaxBanCooldown", pc.MaxBanCooldown.String(), "shorter than BanCooldown ("+pc.BanCooldown.String()+")")
	}
	if pc.MaxEjectedPercent > 100 {
		return bad("MaxEjectedPercent", strconv.Itoa(pc.MaxEjectedPercent), "more than 100")
	}
	for i, pp := range pc.Proxies {
		if pp.Weight < 0 || pp.Weight > 100 {
			return bad("Proxies["+strconv.Itoa(i)+"].Weight", strconv.Itoa(pp.Weight), "not from 0 to 100")
		}
	}
	if p := pc.Probe; p != "" {
		if strings.HasPrefix(p, "http://") || strings.HasPrefix(p, "https://") {
			if u, err := url.Parse(p); err != nil || u.Host == "" {
				return bad("Probe", redact.Raw(p), "not a usable URL")
			}
		} else if strings.Contains(p, "@") {
			return bad("Probe", redact.Raw(p), `a "host:port" to probe has no userinfo: a probe sends the proxy's own credentials`)
		} else if host, port, err := net.SplitHostPort(p); err != nil || host == "" || port == "" {
			return bad("Probe", redact.Raw(p), `neither "host:port" nor an http:// or https:// URL`)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return bad("Probe", redact.Raw(p), `the port of a "host:port" to probe is not a number from 1 to 65535`)
		}
	}
	return nil
}

// basicAllowed reports whether cfg lets Basic be used.
func basicAllowed(cfg *Config) bool {
	if cfg.Schemes == nil {
		return true
	}
	for _, s := range cfg.Schemes {
		if strings.EqualFold(s.Name(), "Basic") {
			return true
		}
	}
	return false
}

// proxySpec is one validated proxy URL. Where it came from, for
// messages, is not kept: a pool of 100,000 proxies would pay for it.
type proxySpec struct {
	url   *url.URL     // without userinfo
	creds *Credentials // from the userinfo; nil when it has none
}

func (p *proxySpec) socks() bool { return strings.HasPrefix(p.url.Scheme, "socks") }

// parseProxy validates one proxy URL. Like httpproxy, it takes a value
// without a scheme to mean "http://". Its errors name the first thing that
// is wrong, and never quote the input unmasked, nor the text of url.Parse's
// errors, which can hold part of a password. It splits the URL itself
// before url.Parse sees it because url.Parse's errors cannot tell a bad
// port from an unencoded "/" in a password or a missing "://".
func parseProxy(field, raw string) (*proxySpec, error) {
	bad := func(reason string) error {
		return &ConfigError{Field: field, Value: redact.Raw(raw), Reason: reason}
	}
	const encode = "percent-encode reserved characters in the username and password (@ as %40, : as %3A, % as %25, # as %23, / as %2F, ? as %3F)"
	if strings.TrimSpace(raw) == "" {
		return nil, bad("empty proxy URL")
	}
	if reason := whitespace(raw); reason != "" {
		return nil, bad(reason)
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if s := misspeltScheme(raw); s != "" {
			return nil, bad(`missing "://" after the scheme: write ` + s + "://host:port")
		}
		scheme, rest = "http", raw
	} else if !isScheme(scheme) {
		return nil, bad(`the text before "://" is not a scheme; ` + encode)
	}
	switch scheme = strings.ToLower(scheme); scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, bad("unsupported proxy scheme " + strconv.Quote(scheme) + ": use http, https, socks5 or socks5h")
	}

	// The authority ends at the first "/", "?" or "#", unless the last "@"
	// comes after it: then one of them is in the userinfo, since a proxy
	// URL has no path, query or fragment.
	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	at := strings.LastIndex(rest, "@")
	if at > len(authority) {
		return nil, bad(`an unencoded "/", "?" or "#" in the username or password (before the last "@"); ` + encode)
	}
	userinfo, hostport := "", authority
	if at >= 0 {
		userinfo, hostport = authority[:at], authority[at+1:]
		if reason := checkUserinfo(userinfo); reason != "" {
			return nil, bad(reason + "; " + encode)
		}
	}
	host, port, hasPort := hostport, "", false
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return nil, bad(`no "]" closing the IPv6 address: write it as [::1]:3128`)
		}
		host, port = hostport[1:end], hostport[end+1:]
		if port != "" && port[0] != ':' {
			return nil, bad(`text after the "]" of the IPv6 address: write it as [::1]:3128`)
		}
		port, hasPort = strings.CutPrefix(port, ":")
	} else if i := strings.IndexByte(hostport, ':'); i >= 0 {
		host, port, hasPort = hostport[:i], hostport[i+1:], true
		if strings.Contains(port, ":") {
			if at < 0 {
				return nil, bad(`more than one ":" in the host and port: an IPv6 address needs brackets ([::1]:3128); a username and password need "@host:port" after them`)
			}
			return nil, bad(`more than one ":" in the host and port: an IPv6 address needs brackets ([::1]:3128)`)
		}
	}
	switch {
	case host == "" && at >= 0:
		return nil, bad(`no host after the "@": write user:password@host:port`)
	case host == "" && hasPort:
		return nil, bad("no host before the port")
	case host == "":
		return nil, bad("no host: write " + scheme + "://host:port")
	}
	if hasPort && port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.Trim(port, "0123456789") != "" {
			if at < 0 {
				// The "port" may be a password given without the host:
				// it must not be quoted.
				return nil, bad(`the port is not a number from 1 to 65535 (or this is a username and password without "@host:port" after them)`)
			}
			return nil, bad("the port " + strconv.Quote(port) + " is not a number from 1 to 65535")
		}
	}
	switch {
	case tail == "", tail == "/":
	case tail[0] == '?':
		return nil, bad("a proxy URL has no query: remove the text from the \"?\"")
	case tail[0] == '#':
		return nil, bad("a proxy URL has no fragment: remove the text from the \"#\"")
	case strings.ContainsAny(tail, "?#"):
		return nil, bad("a proxy URL has no path, query or fragment: remove the text from the \"/\"")
	default:
		return nil, bad("a proxy URL has no path: remove " + strconv.Quote(tail))
	}

	// The URL's strings are taken from raw where it is written as they
	// would be, so that they cost nothing more.
	s := raw[:len(raw)-len(tail)]
	if !ok || s[:len(scheme)] != scheme {
		s = scheme + "://" + authority
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, bad("the host " + strconv.Quote(host) + " is not a host name or IP address")
	}
	spec := &proxySpec{url: u}
	if u.User != nil {
		pass, hasPass := u.User.Password()
		c := Credentials{Username: u.User.Username(), Password: pass}
		if c.Username != "" || hasPass {
			if err := validCredentials(c, spec.socks()); err != nil {
				return nil, bad(err.Error())
			}
			spec.creds = &c
		}
		u.User = nil
	}
	return spec, nil
}

// whitespace returns the reason to reject a proxy URL that holds a space or
// a control character, or "".
func whitespace(raw string) string {
	i := strings.IndexFunc(raw, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	if i < 0 {
		return ""
	}
	what := "a control character"
	switch r, _ := utf8.DecodeRuneInString(raw[i:]); {
	case r == '\n' || r == '\r':
		what = "a line break"
	case r == '\t':
		what = "a tab"
	case unicode.IsSpace(r):
		what = "a space"
	}
	switch {
	case strings.TrimLeftFunc(raw, unicode.IsSpace) != raw:
		return "starts with " + what + ": remove it"
	case strings.TrimRightFunc(raw, unicode.IsSpace) != raw && what == "a line break":
		return "ends with a line break (as when read from a file): remove it"
	case strings.TrimRightFunc(raw, unicode.IsSpace) != raw:
		return "ends with " + what + ": remove it"
	}
	return "contains " + what + "; percent-encode one that belongs in the username or password (a space as %20)"
}

// misspeltScheme returns the scheme of a raw proxy URL that starts with a
// known scheme but lacks its "://" ("http//", "http:/", "http:host"), or "".
// "http:3128" is the host "http" with a port.
func misspeltScheme(raw string) string {
	for _, s := range []string{"https", "http", "socks5h", "socks5"} {
		if len(raw) < len(s) || !strings.EqualFold(raw[:len(s)], s) {
			continue
		}
		after := raw[len(s):]
		switch {
		case strings.HasPrefix(after, "//"), strings.HasPrefix(after, ":/"):
			return strings.ToLower(s)
		case strings.HasPrefix(after, ":") && (len(after) == 1 || after[1] < '0' || after[1] > '9'):
			return strings.ToLower(s)
		}
	}
	return ""
}

// isScheme reports whether s is a URL scheme (RFC 3986, section 3.1).
func isScheme(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// checkUserinfo returns what is wrong with the userinfo of a proxy URL, or
// "", by the rules of url.Parse (which accepts an "@" in it).
func checkUserinfo(userinfo string) string {
	for i := 0; i < len(userinfo); i++ {
		c := userinfo[i]
		switch {
		case c == '%':
			if i+2 >= len(userinfo) || !isHex(userinfo[i+1]) || !isHex(userinfo[i+2]) {
				return `a "%" in the username or password that does not start an escape such as %40`
			}
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._:~!$&'()*+,;=@", c) >= 0:
		default:
			return "the username or password holds a character that must be percent-encoded"
		}
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// envConfig is the proxy environment, read once as httpproxy reads it, with
// the values that httpproxy would silently ignore rejected.
type envConfig struct {
	bypass      func(*url.URL) (*url.URL, error) // httpproxy's choice: nil for direct
	http, https *proxySpec                       // nil when unset; the same spec when equal
	httpVar     string                           // the variable http came from, for messages
	httpsVar    string
}

// field returns the variable that s came from.
func (e *envConfig) field(s *proxySpec) string {
	if s == e.http {
		return e.httpVar
	}
	return e.httpsVar
}

func fromEnvironment() (*envConfig, error) {
	cfg := httpproxy.FromEnvironment()
	env := &envConfig{bypass: cfg.ProxyFunc()}
	var err error
	if env.http, env.httpVar, err = envProxy("http_proxy", "HTTP_PROXY", cfg.HTTPProxy); err != nil {
		return nil, err
	}
	if cfg.HTTPSProxy == cfg.HTTPProxy {
		env.https, env.httpsVar = env.http, env.httpVar
	} else if env.https, env.httpsVar, err = envProxy("https_proxy", "HTTPS_PROXY", cfg.HTTPSProxy); err != nil {
		return nil, err
	}
	if env.http == nil && env.https == nil {
		return nil, &ConfigError{
			Field:  "Proxies",
			Reason: "empty, and the environment names no proxy (HTTP_PROXY, HTTPS_PROXY and their lower-case forms are unset)",
		}
	}
	return env, nil
}

// envProxy returns the proxy of value, from the variable lower or upper,
// and the name of the variable.
func envProxy(lower, upper, value string) (*proxySpec, string, error) {
	if value == "" {
		return nil, "", nil
	}
	name := upper
	if os.Getenv(lower) != "" {
		name = lower
	}
	s, err := parseProxy(name, value)
	return s, name, err
}

// specFor returns the proxy for a target, or nil to reach it directly.
func (e *envConfig) specFor(target *url.URL) (*proxySpec, error) {
	u, err := e.bypass(target)
	if err != nil || u == nil {
		return nil, err
	}
	if target.Scheme == "https" {
		return e.https, nil
	}
	return e.http, nil
}
