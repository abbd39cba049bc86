// Package redact removes secrets from proxy URLs before they reach an error
// message or a log line.
package redact

import (
	"net/url"
	"strings"
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

// Raw returns a proxy URL given as text with everything that could be
// userinfo replaced by "xxxxx", for text that does not parse as a URL. It
// errs on the side of hiding too much: a password may hold any of "@:/#?",
// so everything between "://" (or the start) and the last "@" goes.
func Raw(s string) string {
	prefix, rest := "", s
	if i := strings.Index(s, "://"); i >= 0 {
		prefix, rest = s[:i+3], s[i+3:]
	}
	j := strings.LastIndex(rest, "@")
	if j < 0 {
		return s
	}
	return prefix + "xxxxx@" + rest[j+1:]
}
