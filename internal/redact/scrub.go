package redact

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Mask is what takes the place of a secret in text.
const Mask = "xxxxx"

// Marker ends text that Truncate or Secrets.Bound shortened.
const Marker = "…(truncated)"

// Proxy returns a proxy URL given as text for display: the password of its
// userinfo masked, the username kept ("http://alice:xxxxx@proxy:3128"). Text
// that does not parse as a URL with a host, or has a query or a fragment,
// is masked as [Raw] does, which hides the username too and catches a
// password given without its host ("http://alice:xxxxx").
func Proxy(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return Raw(s)
	}
	if u.User == nil {
		return s
	}
	return u.Redacted()
}

// Truncate returns s cut to at most n bytes, on a UTF-8 boundary, followed
// by [Marker] when anything was cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n, 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + Marker
}

// Secrets is a set of secret strings to mask in text: credentials in each
// of the encodings in which they travel. A nil *Secrets masks nothing. It
// is safe for concurrent use.
type Secrets struct {
	once  sync.Once
	gen   func() []string // the forms, computed on first use
	forms []string        // longest first
	max   int             // the length of the longest
	r     *strings.Replacer
}

// NewSecrets returns the set of forms (empty ones are left out), or nil when
// there are none. Each form is also masked as strconv.Quote writes it, since
// error messages quote what they did not expect.
func NewSecrets(forms ...string) *Secrets {
	for _, f := range forms {
		if f != "" {
			return Lazy(func() []string { return forms })
		}
	}
	return nil
}

// Lazy returns the set of the forms that gen returns, which it calls
// once, when the set is first used: making the set on a path where it may
// never be used costs only this call.
func Lazy(gen func() []string) *Secrets { return &Secrets{gen: gen} }

// load computes the forms, and reports whether there are any.
func (s *Secrets) load() bool {
	if s == nil {
		return false
	}
	s.once.Do(func() {
		var all []string
		for _, f := range s.gen() {
			if f == "" {
				continue
			}
			all = append(all, f)
			if q := strconv.Quote(f); q[1:len(q)-1] != f {
				all = append(all, q[1:len(q)-1])
			}
		}
		if len(all) == 0 {
			return
		}
		slices.SortFunc(all, func(a, b string) int { return len(b) - len(a) })
		all = slices.Compact(all)
		pairs := make([]string, 0, 2*len(all))
		for _, f := range all {
			pairs = append(pairs, f, Mask)
		}
		s.forms, s.max, s.r = all, len(all[0]), strings.NewReplacer(pairs...)
	})
	return len(s.forms) > 0
}

// Merge returns the union of a and b.
func Merge(a, b *Secrets) *Secrets {
	switch {
	case a == nil || a == b:
		return b
	case b == nil:
		return a
	}
	return Lazy(func() []string {
		a.load()
		b.load()
		return append(slices.Clone(a.forms), b.forms...)
	})
}

// CredentialForms returns the forms in which a username and password can
// show in text: the password, "user:pass", their Base64 encodings (the
// token of a Basic Proxy-Authorization field, among others), and the
// percent-encodings of a URL's userinfo. It returns nil for an empty
// password: a username alone is not a secret.
func CredentialForms(user, pass string) []string {
	if pass == "" {
		return nil
	}
	up := user + ":" + pass
	forms := []string{pass, up,
		url.UserPassword(user, pass).String(),
		strings.TrimPrefix(url.UserPassword("", pass).String(), ":"),
		url.QueryEscape(pass), url.PathEscape(pass),
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString([]byte(up)), enc.EncodeToString([]byte(pass)))
	}
	return forms
}

// HeaderForms returns the forms of a Proxy-Authorization value: the whole
// value, what follows the scheme (a token68 or the auth-params), and the
// response of a Digest one.
func HeaderForms(v string) []string {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil
	}
	forms := []string{v}
	if _, rest, ok := strings.Cut(v, " "); ok {
		if rest = strings.TrimSpace(rest); rest != "" {
			forms = append(forms, rest)
		}
		if i := strings.Index(strings.ToLower(rest), "response="); i >= 0 {
			resp := strings.TrimPrefix(rest[i+len("response="):], `"`)
			if j := strings.IndexAny(resp, `",`); j >= 0 {
				resp = resp[:j]
			}
			forms = append(forms, resp)
		}
	}
	return forms
}

// In reports whether text holds one of the secrets.
func (s *Secrets) In(text string) bool {
	if !s.load() {
		return false
	}
	for _, f := range s.forms {
		if strings.Contains(text, f) {
			return true
		}
	}
	return false
}

// Scrub returns text with each secret replaced by [Mask].
func (s *Secrets) Scrub(text string) string {
	if !s.In(text) {
		return text
	}
	return s.r.Replace(text)
}

// Bound returns text scrubbed and cut to at most n bytes, followed by
// [Marker] when it was cut. A cut never leaves part of a secret visible,
// and only the first n bytes of text, and the length of a secret beyond,
// are read: its cost does not grow with text.
func (s *Secrets) Bound(text string, n int) string {
	if len(text) <= n {
		return s.Scrub(text)
	}
	cut := n
	if s.load() {
		// A secret that starts before the cut and ends after it goes
		// whole: extend the window to its end, so that Scrub masks it.
		cut = min(len(text), n+s.max)
	}
	out := s.Scrub(text[:cut])
	if s.load() && cut < len(text) {
		// What is left at the end may be the start of a secret that
		// the window cut: drop every tail of it that begins a secret.
		out = dropSecretPrefix(out, s.forms)
	}
	if len(out) > n {
		return Truncate(out, n)
	}
	return out + Marker
}

// dropSecretPrefix cuts s before the longest suffix of it that is a
// proper prefix of one of forms.
func dropSecretPrefix(s string, forms []string) string {
	cut := len(s)
	for _, f := range forms {
		for k := min(len(f)-1, len(s)); k > 0; k-- {
			if strings.HasSuffix(s, f[:k]) {
				cut = min(cut, len(s)-k)
				break
			}
		}
	}
	return s[:cut]
}
