package proxyauthtest

// The SOCKS5 server is written by hand: neither the standard library nor
// golang.org/x/net ships one (both have only the client side).

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// SOCKS5 protocol constants (RFC 1928, RFC 1929).
const (
	socksVersion        = 0x05
	socksAuthVersion    = 0x01 // version of the username/password sub-negotiation
	socksMethodUserPass = 0x02
	socksMethodNone     = 0xff // no acceptable methods
	socksCmdConnect     = 0x01
	socksAtypIPv4       = 0x01
	socksAtypDomain     = 0x03
	socksAtypIPv6       = 0x04

	socksSucceeded        = 0x00
	socksGeneralFailure   = 0x01
	socksConnRefused      = 0x05
	socksCmdNotSupported  = 0x07
	socksAtypNotSupported = 0x08
	socksAuthSucceeded    = 0x00
	socksAuthFailed       = 0x01
)

// SOCKS5Proxy is a SOCKS5 proxy (RFC 1928) listening on a loopback address
// that requires username/password authentication (RFC 1929), for use in
// tests. It supports only the CONNECT command, with IPv4, IPv6 and domain name
// addresses, and records every handshake.
//
// The exported fields must not be changed once the proxy has started, except
// as noted. The methods are safe for concurrent use while the proxy serves,
// except Start, which must be called once.
type SOCKS5Proxy struct {
	// URL is the URL of the proxy, "socks5://127.0.0.1:PORT". It is set by
	// Start and must not be changed.
	URL string

	// Listener is the listener the proxy serves on. NewUnstartedSOCKS5Proxy
	// sets it to a loopback listener; it may be replaced before Start.
	Listener net.Listener

	// DialContext dials the targets of CONNECT commands. If nil, a
	// net.Dialer is used. It may be set only before Start.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	ownLn     net.Listener // the listener made by NewUnstartedSOCKS5Proxy
	dial      dialFunc     // DialContext or its default, set by Start
	t         tracker
	closeOnce sync.Once

	mu       sync.Mutex
	started  bool
	creds    []Credentials
	requests []SOCKS5Request
}

// SOCKS5Request is the record of one SOCKS5 handshake received by a
// [SOCKS5Proxy].
type SOCKS5Request struct {
	// Username is the username offered; "" when the client offered no
	// username/password method.
	Username string
	// Target is the host:port asked for; "" if the handshake ended
	// before the CONNECT command.
	Target string
	// Authorized reports that the credentials were accepted.
	Authorized bool
}

// NewSOCKS5Proxy returns a started [SOCKS5Proxy] that accepts exactly the
// given credentials. The caller should call Close when finished.
func NewSOCKS5Proxy(username, password string) *SOCKS5Proxy {
	p := NewUnstartedSOCKS5Proxy(username, password)
	p.Start()
	return p
}

// NewUnstartedSOCKS5Proxy returns a new [SOCKS5Proxy] that accepts exactly
// the given credentials but is not started, so that its fields can be set
// first. The caller should call Start, and then Close when finished (Close
// also releases the listener of a proxy that never started).
func NewUnstartedSOCKS5Proxy(username, password string) *SOCKS5Proxy {
	ln := newLocalListener()
	p := &SOCKS5Proxy{
		Listener: ln,
		ownLn:    ln,
		creds:    []Credentials{{Username: username, Password: password}},
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	return p
}

// Start starts the proxy. It panics if the proxy has already been started or
// closed.
func (p *SOCKS5Proxy) Start() {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		panic("proxyauthtest: SOCKS5Proxy already started")
	}
	p.started = true
	p.mu.Unlock()
	if !p.t.begin() {
		panic("proxyauthtest: SOCKS5Proxy started after Close")
	}
	if p.Listener != p.ownLn {
		p.ownLn.Close() // replaced by the caller
	}
	p.dial = orDefaultDial(p.DialContext)
	p.URL = "socks5://" + p.Listener.Addr().String()
	go p.acceptLoop(p.Listener)
}

// Close shuts the proxy down: it closes the listener, every client connection
// and every open tunnel, and waits for all of the proxy's goroutines to
// finish. Close may be called more than once and concurrently with
// connections in progress.
func (p *SOCKS5Proxy) Close() {
	p.closeOnce.Do(func() {
		p.cancel()
		p.t.shutdown()
		p.Listener.Close()
		p.ownLn.Close()
		p.t.wait()
	})
}

// Addr returns the address the proxy listens on, as host:port.
func (p *SOCKS5Proxy) Addr() string {
	return p.Listener.Addr().String()
}

// SetCredentials replaces the set of accepted credentials. An empty set
// rejects every client.
func (p *SOCKS5Proxy) SetCredentials(creds ...Credentials) {
	p.mu.Lock()
	p.creds = slices.Clone(creds)
	p.mu.Unlock()
}

// Requests returns a copy of the records of every handshake so far, in the
// order they ended. Every accepted connection is recorded once, including one
// that ends before or during the greeting (all fields empty). A handshake is
// recorded before the proxy sends its final reply or closes the connection,
// so the record is there by the time the client learns the outcome.
func (p *SOCKS5Proxy) Requests() []SOCKS5Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

// ResetRequests forgets every handshake recorded so far, so that Requests
// returns only those that end after it. It is safe to call concurrently
// with handshakes.
func (p *SOCKS5Proxy) ResetRequests() {
	p.mu.Lock()
	p.requests = nil
	p.mu.Unlock()
}

// acceptLoop accepts connections until the listener fails.
func (p *SOCKS5Proxy) acceptLoop(ln net.Listener) {
	defer p.t.end()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !p.t.track(c) {
			continue // closed; the next Accept fails
		}
		p.t.wg.Add(1) // safe: this goroutine holds a registration
		go p.handle(c)
	}
}

// handle serves one client connection.
func (p *SOCKS5Proxy) handle(c net.Conn) {
	defer p.t.end()
	up := p.handshake(c)
	if up == nil {
		p.t.closeConn(c)
		return
	}
	p.t.pipe(c, c, up)
}

// handshake runs the SOCKS5 handshake on c, records it and, if it succeeds,
// returns the tracked connection to the target. It returns nil if the
// handshake failed; the caller closes c.
func (p *SOCKS5Proxy) handshake(c net.Conn) net.Conn {
	var rec SOCKS5Request
	recorded := false
	record := func() {
		if !recorded {
			recorded = true
			p.mu.Lock()
			p.requests = append(p.requests, rec)
			p.mu.Unlock()
		}
	}
	defer record()

	// Greeting: VER NMETHODS METHODS...
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != socksVersion {
		return nil
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return nil
	}
	if !slices.Contains(methods, socksMethodUserPass) {
		record()
		c.Write([]byte{socksVersion, socksMethodNone})
		return nil
	}
	if _, err := c.Write([]byte{socksVersion, socksMethodUserPass}); err != nil {
		return nil
	}

	// Username/password: VER ULEN UNAME PLEN PASSWD.
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != socksAuthVersion {
		return nil
	}
	user, ok := readString(c, int(hdr[1]))
	if !ok {
		return nil
	}
	rec.Username = user
	plen, ok := readString(c, 1)
	if !ok {
		return nil
	}
	pass, ok := readString(c, int(plen[0]))
	if !ok {
		return nil
	}
	p.mu.Lock()
	authorized := credentialsMatch(p.creds, user, pass)
	p.mu.Unlock()
	if !authorized {
		record()
		c.Write([]byte{socksAuthVersion, socksAuthFailed})
		return nil
	}
	rec.Authorized = true
	if _, err := c.Write([]byte{socksAuthVersion, socksAuthSucceeded}); err != nil {
		return nil
	}

	// Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil || req[0] != socksVersion {
		return nil
	}
	var host string
	switch req[3] {
	case socksAtypIPv4, socksAtypIPv6:
		n := net.IPv4len
		if req[3] == socksAtypIPv6 {
			n = net.IPv6len
		}
		ip, ok := readString(c, n)
		if !ok {
			return nil
		}
		host = net.IP([]byte(ip)).String()
	case socksAtypDomain:
		n, ok := readString(c, 1)
		if !ok {
			return nil
		}
		if host, ok = readString(c, int(n[0])); !ok {
			return nil
		}
	default:
		record()
		writeReply(c, socksAtypNotSupported, nil)
		return nil
	}
	port, ok := readString(c, 2)
	if !ok {
		return nil
	}
	rec.Target = net.JoinHostPort(host, strconv.Itoa(int(port[0])<<8|int(port[1])))
	if req[1] != socksCmdConnect {
		record()
		writeReply(c, socksCmdNotSupported, nil)
		return nil
	}

	up, err := p.dial(p.ctx, "tcp", rec.Target)
	if err != nil {
		record()
		code := byte(socksGeneralFailure)
		if errors.Is(err, syscall.ECONNREFUSED) {
			code = socksConnRefused
		}
		writeReply(c, code, nil)
		return nil
	}
	if !p.t.track(up) {
		return nil
	}
	record()
	if err := writeReply(c, socksSucceeded, up.LocalAddr()); err != nil {
		p.t.closeConn(up)
		return nil
	}
	return up
}

// readString reads exactly n bytes from r.
func readString(r io.Reader, n int) (string, bool) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return string(b), err == nil
}

// writeReply writes a SOCKS5 reply with status code and bound address bound
// (0.0.0.0:0 unless bound is a *net.TCPAddr).
func writeReply(w io.Writer, code byte, bound net.Addr) error {
	ip, port := net.IPv4zero, 0
	if a, ok := bound.(*net.TCPAddr); ok && a.IP != nil {
		ip, port = a.IP, a.Port
	}
	b := []byte{socksVersion, code, 0x00}
	if ip4 := ip.To4(); ip4 != nil {
		b = append(b, socksAtypIPv4)
		b = append(b, ip4...)
	} else {
		b = append(b, socksAtypIPv6)
		b = append(b, ip.To16()...)
	}
	b = append(b, byte(port>>8), byte(port))
	_, err := w.Write(b)
	return err
}
