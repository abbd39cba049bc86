// Package proxyauthtest provides authenticating proxies on loopback for
// tests, in the style of net/http/httptest.
//
// [Proxy] is an HTTP forward proxy (plain absolute-form requests and CONNECT
// tunnels, over HTTP or HTTPS) that demands credentials through
// Proxy-Authorization, Basic by default. [SOCKS5Proxy] is a SOCKS5 proxy that
// demands username/password authentication (RFC 1928, RFC 1929). Both record
// what they receive and can be made to misbehave at run time, so that tests can
// check how a client copes with credential rotation, rejections, failed
// tunnels and dropped connections.
//
// Like httptest, the constructors panic when setup fails, and no function
// takes a *testing.T, so the proxies also work in runnable examples. Call
// Close when done: it closes every connection and tunnel and waits for every
// goroutine the proxy started.
//
// The proxies listen on 127.0.0.1 (or ::1 when IPv4 is unavailable) and dial
// real addresses unless a DialContext function is set, which tests use to map
// made-up host names to loopback servers.
package proxyauthtest
