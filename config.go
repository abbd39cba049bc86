package proxyauth

import (
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

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
	} {
		if f.v < 0 {
			return bad(f.name, strconv.FormatInt(f.v, 10), "negative; 0 means the default")
		}
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
		} else if _, port, err := net.SplitHostPort(p); err != nil || port == "" {
			return bad("Probe", p, `neither "host:port" nor an http:// or https:// URL`)
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

// proxySpec is one validated proxy URL.
type proxySpec struct {
	field string       // where it came from, for messages
	url   *url.URL     // without userinfo
	creds *Credentials // from the userinfo; nil when it has none
}

func (p *proxySpec) socks() bool { return strings.HasPrefix(p.url.Scheme, "socks") }

// parseProxy validates one proxy URL. Like httpproxy, it takes a value
// without a scheme to mean "http://". Its errors never quote the input
// unmasked, nor the text of url.Parse's errors, which can hold part of a
// password.
func parseProxy(field, raw string) (*proxySpec, error) {
	bad := func(reason string) error {
		return &ConfigError{Field: field, Value: redact.Raw(raw), Reason: reason}
	}
	const encode = "; percent-encode reserved characters such as @ : % # / ? in the username and password"
	if strings.TrimSpace(raw) == "" {
		return nil, bad("empty proxy URL")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		if u2, err2 := url.Parse("http://" + raw); err2 == nil {
			u, err = u2, nil
		}
	}
	if err != nil {
		return nil, bad("not a URL" + encode)
	}
	switch u.Scheme {
	case "http", "https", "socks5", "socks5h":
	default:
		return nil, bad("unsupported proxy scheme " + strconv.Quote(u.Scheme) + ": use http, https, socks5 or socks5h")
	}
	if u.Hostname() == "" {
		return nil, bad("no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, bad("port " + strconv.Quote(p) + " is not a number from 1 to 65535")
		}
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, bad("a proxy URL has no path, query or fragment" + encode)
	}
	spec := &proxySpec{field: field, url: &url.URL{Scheme: u.Scheme, Host: u.Host}}
	if u.User != nil {
		pass, hasPass := u.User.Password()
		c := Credentials{Username: u.User.Username(), Password: pass}
		if c.Username != "" || hasPass {
			if err := validCredentials(c, spec.socks()); err != nil {
				return nil, bad(err.Error())
			}
			spec.creds = &c
		}
	}
	return spec, nil
}

// envConfig is the proxy environment, read once as httpproxy reads it, with
// the values that httpproxy would silently ignore rejected.
type envConfig struct {
	bypass      func(*url.URL) (*url.URL, error) // httpproxy's choice: nil for direct
	http, https *proxySpec                       // nil when unset; the same spec when equal
}

func fromEnvironment() (*envConfig, error) {
	cfg := httpproxy.FromEnvironment()
	env := &envConfig{bypass: cfg.ProxyFunc()}
	var err error
	if env.http, err = envProxy("http_proxy", "HTTP_PROXY", cfg.HTTPProxy); err != nil {
		return nil, err
	}
	if cfg.HTTPSProxy == cfg.HTTPProxy {
		env.https = env.http
	} else if env.https, err = envProxy("https_proxy", "HTTPS_PROXY", cfg.HTTPSProxy); err != nil {
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

func envProxy(lower, upper, value string) (*proxySpec, error) {
	if value == "" {
		return nil, nil
	}
	name := upper
	if os.Getenv(lower) != "" {
		name = lower
	}
	return parseProxy(name, value)
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
