// Package redact removes secrets from proxy URLs before they reach an error
// message or a log line.
package redact

import (
	"net/url"
	"strconv"
	"strings"
	"unicode"
)

// URL returns a copy of u without userinfo, or nil for a nil u. Errors keep
// such a copy so that a caller who prints the whole struct with %+v sees no
// password either.
func URL(u *url.URL) *url.URL {
	if u == nil {
		return nil
	}
	c := *u
	c.User = nil
	return &c
}

// String returns u as text without its userinfo, or "<nil>".
func String(u *url.URL) string {
	if u == nil {
		return "<nil>"
	}
	return URL(u).String()
}

// Raw returns text that may be a proxy URL, a URL or a host:port, as given
// by a user and perhaps malformed, with everything that could be a secret
// replaced by "xxxxx": the userinfo, a query and a fragment. It errs on the
// side of hiding too much:
//   - A password may hold any of "@:/#?", so everything between the scheme
//     (or the start) and the last "@" goes.
//   - Without an "@", text after a ":" that is not followed by a port
//     number (1 to 65535), or after a ":" in the path, may be a password
//     given without its host ("http://alice:pw", "http:///alice:pw"), so
//     it goes, with everything after it.
//   - A query or a fragment may hold a token or a password.
//
// The scheme is kept when it is followed by "://", and so are the common
// typos of a known proxy scheme ("http//", and "http:/" or "http:" before
// userinfo), so that a message can show them. Leading whitespace is kept
// too.
func Raw(s string) string {
	lead := s[:len(s)-len(strings.TrimLeftFunc(s, unicode.IsSpace))]
	prefix, rest := splitScheme(s[len(lead):])
	prefix = lead + prefix
	if j := strings.LastIndex(rest, "@"); j >= 0 {
		hostport, tail := cutAuthority(rest[j+1:])
		return prefix + mask + "@" + hostport + maskTail(tail)
	}
	hostport, tail := cutAuthority(rest)
	if i := portColon(hostport); i >= 0 {
		port := hostport[i+1:]
		if strings.Contains(port, ":") || !validPort(port) || port == "" && tail != "" {
			return prefix + hostport[:i+1] + mask
		}
	}
	// A colon in the path may follow a password whose host is missing
	// after a slash too many ("http:///alice:pw").
	if i := strings.IndexAny(tail, ":?#"); i >= 0 && tail[i] == ':' {
		return prefix + hostport + tail[:i+1] + mask
	}
	return prefix + hostport + maskTail(tail)
}

// mask replaces what Raw hides.
const mask = "xxxxx"

// knownSchemes are the proxy schemes whose misspelt separators Raw keeps.
var knownSchemes = []string{"http", "https", "socks5", "socks5h", "socks4", "socks4a", "socks"}

// splitScheme splits s into a scheme with its separator and the rest. It
// returns "" and s when s does not start with a scheme.
func splitScheme(s string) (prefix, rest string) {
	n := 0
	for n < len(s) && isSchemeChar(s[n], n == 0) {
		n++
	}
	if n == 0 {
		return "", s
	}
	after := s[n:]
	if strings.HasPrefix(after, "://") {
		return s[:n+3], s[n+3:]
	}
	known := false
	for _, k := range knownSchemes {
		known = known || strings.EqualFold(s[:n], k)
	}
	// A colon after the name may instead separate a username from a
	// password ("http:pw"): the name is kept only when an "@" follows, so
	// that the password is masked anyway.
	switch {
	case !known:
		return "", s
	case strings.HasPrefix(after, "//"):
		return s[:n+2], s[n+2:]
	case !strings.Contains(after, "@"):
		return "", s
	case strings.HasPrefix(after, ":/"):
		return s[:n+2], s[n+2:]
	case strings.HasPrefix(after, ":") && (len(after) == 1 || after[1] < '0' || after[1] > '9'):
		return s[:n+1], s[n+1:]
	}
	return "", s
}

// isSchemeChar reports whether c may appear in a URL scheme (RFC 3986,
// section 3.1), at its start when first is set.
func isSchemeChar(c byte, first bool) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		return true
	case '0' <= c && c <= '9', c == '+', c == '-', c == '.':
		return !first
	}
	return false
}

// cutAuthority splits s at the first "/", "?" or "#".
func cutAuthority(s string) (authority, tail string) {
	if i := strings.IndexAny(s, "/?#"); i >= 0 {
		return s[:i], s[i:]
	}
	return s, ""
}

// portColon returns the index in hostport of the first ":" outside the
// brackets of an IPv6 address, or -1. An unclosed bracket counts as one
// only when what follows it could be an IPv6 address.
func portColon(hostport string) int {
	i := 0
	if strings.HasPrefix(hostport, "[") {
		j := strings.IndexByte(hostport, ']')
		if j < 0 && strings.Trim(hostport[1:], "0123456789abcdefABCDEF:.") == "" {
			return -1
		}
		i = j + 1
	}
	if k := strings.IndexByte(hostport[i:], ':'); k >= 0 {
		return i + k
	}
	return -1
}

// validPort reports whether p is empty or a port number from 1 to 65535.
func validPort(p string) bool {
	if p == "" {
		return true
	}
	if len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return false
	}
	n, _ := strconv.Atoi(p)
	return n >= 1 && n <= 65535
}

// maskTail keeps the path of tail, the part of a URL after its authority,
// and masks its query and fragment.
func maskTail(tail string) string {
	i := strings.IndexAny(tail, "?#")
	if i < 0 {
		return tail
	}
	path, rest := tail[:i], tail[i:]
	if rest[0] == '?' {
		q, _, hasFrag := strings.Cut(rest[1:], "#")
		path += "?" + maskNonEmpty(q)
		if !hasFrag {
			return path
		}
		rest = "#" + rest[len(q)+2:]
	}
	return path + "#" + maskNonEmpty(rest[1:])
}

func maskNonEmpty(s string) string {
	if s == "" {
		return ""
	}
	return mask
}
