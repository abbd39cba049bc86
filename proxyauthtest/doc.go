// Package proxyauthtest provides authenticating proxies on loopback for
// tests, in the style of net/http/httptest.
//
// [Proxy] is an HTTP forward proxy (plain absolute-form requests and CONNECT
// tunnels, over HTTP or HTTPS) that demands credentials through
// Proxy-Authorization, Basic by default. [SOCKS5Proxy] is a SOCKS5 proxy that
// demands username/password authentication (RFC 1928, RFC 1929). Both record
// what they receive (Requests; ResetRequests forgets the records, between the
// steps of a test) and can be made to misbehave at run time, so that tests can
// check how a client copes with credential rotation, rejections, failed
// tunnels and dropped connections.
//
// The authentication scheme of a Proxy is an [Authenticator]: [Basic] (RFC
// 7617), [Digest] (RFC 7616: MD5, SHA-256 and SHA-512/256 with their -sess
// variants, qop auth and auth-int or RFC 2069 style, userhash, username*,
// opaque), or several at once with [Multi], as a proxy such as squid offers
// Basic and Digest together. [NewDigestProxy] starts a proxy that demands
// Digest. The Digest server is written here independently of any client, so
// that a client and a server sharing a bug cannot pass the tests together;
// it checks every parameter strictly, keeps track of the nonces it issued and
// of the nonce counts used with them, and can make nonces stale
// ([Digest.ExpireNonces]) or rotate them with a nextnonce
// ([Digest.RotateNonceEvery]), so that tests can check how a client answers
// stale=true and Proxy-Authentication-Info.
//
// [NTLM] authenticates a connection rather than a request: a NEGOTIATE, the
// proxy's 407 with its CHALLENGE, and an AUTHENTICATE on the same
// connection, which is then authenticated for its later requests, as with
// squid. [NewNTLMProxy] starts a proxy that demands it. Its verifier is also
// written here from the specification, independently of any client, and
// checks the NTLMv2 response for real. A scheme of the kind plugs in as a
// [ConnVerifier], which sees the [Conn] a request came on.
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
