package pac

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the kind of one entry of a FindProxyForURL result.
type Kind int

const (
	// Direct: connect to the target without a proxy ("DIRECT").
	Direct Kind = iota + 1
	// HTTP: an HTTP proxy ("PROXY" or "HTTP").
	HTTP
	// HTTPS: an HTTP proxy reached over TLS ("HTTPS").
	HTTPS
	// SOCKS5: a SOCKS5 proxy ("SOCKS" or "SOCKS5"). A plain "SOCKS" means
	// SOCKS4 to browsers; this package speaks only SOCKS5, which every
	// SOCKS4 server in use also speaks, so it reads "SOCKS" as SOCKS5.
	// "SOCKS4" entries are skipped.
	SOCKS5
)

var kindNames = [...]string{Direct: "DIRECT", HTTP: "HTTP", HTTPS: "HTTPS", SOCKS5: "SOCKS5"}

// String returns the kind's name as a PAC result spells it: "DIRECT",
// "HTTP", "HTTPS" or "SOCKS5".
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Scheme returns the proxy URL scheme for the kind: "http", "https",
// "socks5", or "" for Direct.
func (k Kind) Scheme() string {
	switch k {
	case HTTP:
		return "http"
	case HTTPS:
		return "https"
	case SOCKS5:
		return "socks5"
	}
	return ""
}

// Entry is one entry of a FindProxyForURL result.
type Entry struct {
	// Kind says how to connect.
	Kind Kind
	// Addr is the proxy's host:port, the host lower-cased and an IPv6
	// address in brackets; "" for Direct. An entry without a port gets the
	// kind's default port, as Chromium does: 80 for HTTP, 443 for HTTPS and
	// 1080 for SOCKS5.
	Addr string
}

// Bounds on ParseResult's output: a result is a handful of entries in
// practice.
const (
	maxEntries    = 64       // entries returned; later ones are skipped
	maxSkipped    = 16       // skipped entries reported; later ones are counted only
	maxSkippedLen = 64       // bytes of one skipped entry quoted in a report
	maxResultLen  = 64 << 10 // bytes of a result FindProxy accepts
)

// ParseResult splits a FindProxyForURL result such as "PROXY a:8080; SOCKS
// b:1080; DIRECT" into its entries, in order. Keywords are case-insensitive
// and entries are separated by ";" (empty entries are ignored). Entries that
// are unknown ("QUIC", "SOCKS4"), malformed ("PROXY", "PROXY a b", "DIRECT
// x", a bad host or port) or beyond the 64th are left out and described in
// skipped, each quoted with [strconv.Quote] from at most 64 bytes of the
// entry (so at most 258 bytes); at most 16 are described, then one line
// says how many more there were. An empty or all-garbage result gives no entries: the caller must
// treat that as a failure of the script, never as DIRECT.
//
// A host is a DNS name (letters, digits, '-', '_' and '.'), an IPv4 address
// or an IPv6 address in brackets; a port is 1 to 65535. A "host:port"
// without a host, userinfo, a scheme ("http://") or a path is malformed.
func ParseResult(s string) (entries []Entry, skipped []string) {
	more := 0
	skip := func(e string) {
		if len(skipped) >= maxSkipped {
			more++
			return
		}
		if len(e) > maxSkippedLen {
			n := maxSkippedLen
			for n > 0 && !utf8.RuneStart(e[n]) {
				n--
			}
			e = e[:n]
		}
		skipped = append(skipped, strconv.Quote(e))
	}
	for len(s) > 0 {
		var e string
		e, s, _ = strings.Cut(s, ";")
		e = strings.Trim(e, " \t\r\n")
		if e == "" {
			continue
		}
		ent, ok := parseEntry(e)
		if !ok || len(entries) >= maxEntries {
			skip(e)
			continue
		}
		entries = append(entries, ent)
	}
	if more > 0 {
		skipped = append(skipped, "and "+strconv.Itoa(more)+" more")
	}
	return entries, skipped
}

// parseEntry parses one trimmed, non-empty entry.
func parseEntry(e string) (Entry, bool) {
	word, rest, _ := strings.Cut(e, " ")
	if w2, r2, ok := strings.Cut(e, "\t"); ok && len(w2) < len(word) {
		word, rest = w2, r2
	}
	rest = strings.Trim(rest, " \t\r\n")
	var k Kind
	var port string
	switch strings.ToUpper(word) {
	case "DIRECT":
		return Entry{Kind: Direct}, rest == ""
	case "PROXY", "HTTP":
		k, port = HTTP, "80"
	case "HTTPS":
		k, port = HTTPS, "443"
	case "SOCKS", "SOCKS5":
		k, port = SOCKS5, "1080"
	default:
		return Entry{}, false
	}
	addr, ok := parseHostPort(rest, port)
	return Entry{Kind: k, Addr: addr}, ok
}

// parseHostPort validates "host[:port]" and returns it canonical, with
// defPort when it has no port.
func parseHostPort(s, defPort string) (string, bool) {
	if s == "" || strings.ContainsAny(s, " \t") {
		return "", false
	}
	host, port := s, defPort
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", false
		}
		host = s[1:end]
		switch tail := s[end+1:]; {
		case tail == "":
		case tail[0] == ':':
			port = tail[1:]
		default:
			return "", false
		}
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", false
		}
		host = a.String()
	} else {
		if i := strings.LastIndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		if !validHostName(host) {
			return "", false
		}
		host = strings.ToLower(host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port[0] == '+' || port[0] == '0' {
		return "", false
	}
	return net.JoinHostPort(host, port), true
}

// validHostName reports whether h is a DNS name or an IPv4 address as a
// proxy host: 1 to 253 bytes of letters, digits, '-', '_' and '.', not
// starting with '.' or '-', without empty labels.
func validHostName(h string) bool {
	if h == "" || len(h) > 253 || h[0] == '.' || h[0] == '-' || strings.Contains(h, "..") {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
