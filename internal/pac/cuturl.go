package pac

import (
	"net"
	"net/url"
	"strings"
)

// CutURL returns what a script is given for a request to u: the url and host
// arguments of FindProxyForURL. It follows Chromium, which hides from the
// script what travels inside TLS:
//   - for https and wss, the URL is only "scheme://host[:port]/", without
//     userinfo, path, query or fragment;
//   - for other schemes (http, ws, ftp), the URL is u without userinfo and
//     fragment.
//
// In both, the scheme and host are lower-cased and a default port (80 for
// http and ws, 443 for https and wss) is left out. The host is u's host
// without port, an IPv6 address without brackets (as Chromium passes it).
func CutURL(u *url.URL) (urlForScript, host string) {
	scheme := strings.ToLower(u.Scheme)
	host = strings.ToLower(u.Hostname())
	port := u.Port()
	switch {
	case port == "80" && (scheme == "http" || scheme == "ws"),
		port == "443" && (scheme == "https" || scheme == "wss"):
		port = ""
	}
	hostport := host
	if strings.Contains(host, ":") {
		hostport = "[" + host + "]"
	}
	if port != "" {
		hostport = net.JoinHostPort(host, port)
	}
	if scheme == "https" || scheme == "wss" {
		return scheme + "://" + hostport + "/", host
	}
	c := *u
	c.Scheme = scheme
	c.User = nil
	c.Host = hostport
	c.Fragment, c.RawFragment = "", ""
	return c.String(), host
}
