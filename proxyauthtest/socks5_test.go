package proxyauthtest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func TestSOCKS5ThroughTransport(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewSOCKS5Proxy(user, pass)
	t.Cleanup(p.Close)
	if want := "socks5://" + p.Addr(); p.URL != want {
		t.Errorf("URL = %q, want %q", p.URL, want)
	}

	tests := []struct {
		name       string
		user, pass string
		wantErr    string // "" for success
		want       proxyauthtest.SOCKS5Request
	}{
		{"valid", user, pass, "",
			proxyauthtest.SOCKS5Request{Username: user, Target: hostOf(t, origin.URL), Authorized: true}},
		{"wrong password", user, "wrong", "username/password authentication failed",
			proxyauthtest.SOCKS5Request{Username: user}},
		{"no credentials", "", "", "no acceptable authentication methods",
			proxyauthtest.SOCKS5Request{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(p.Requests())
			c := newClient(t, withUser(t, p.URL, tt.user, tt.pass))
			resp, body, err := get(c, origin.URL+"/socks")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if resp.StatusCode != 200 || body != "hello /socks" {
				t.Errorf("got %d %q", resp.StatusCode, body)
			}
			got := p.Requests()[before:]
			if want := []proxyauthtest.SOCKS5Request{tt.want}; !reflect.DeepEqual(got, want) {
				t.Errorf("Requests() = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSOCKS5SetCredentials(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewSOCKS5Proxy("a", "1")
	t.Cleanup(p.Close)
	ok := func(u, pw string) bool {
		_, _, err := get(newClient(t, withUser(t, p.URL, u, pw)), origin.URL)
		return err == nil
	}
	steps := []struct {
		name   string
		change func()
		want   map[string]bool
	}{
		{"initial", func() {}, map[string]bool{"a:1": true, "b:2": false}},
		{"rotated", func() { p.SetCredentials(proxyauthtest.Credentials{Username: "b", Password: "2"}) },
			map[string]bool{"a:1": false, "b:2": true}},
		{"emptied", func() { p.SetCredentials() }, map[string]bool{"a:1": false, "b:2": false}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change()
			for creds, want := range s.want {
				u, pw, _ := strings.Cut(creds, ":")
				if got := ok(u, pw); got != want {
					t.Errorf("%s: success %v, want %v", creds, got, want)
				}
			}
		})
	}
}

func TestSOCKS5DomainName(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewUnstartedSOCKS5Proxy(user, pass)
	p.DialContext = mapAll(hostOf(t, origin.URL), nil)
	p.Start()
	t.Cleanup(p.Close)

	resp, body, err := get(newClient(t, withUser(t, p.URL, user, pass)), "http://origin.test/name")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body != "hello /name" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if got := p.Requests(); len(got) != 1 || got[0].Target != "origin.test:80" {
		t.Errorf("Requests() = %+v, want target origin.test:80", got)
	}
}

// mapAll returns a DialContext function that connects to addr whatever it is
// asked for, except for the targets in fail, for which it returns the given
// error.
func mapAll(addr string, fail map[string]error) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, target string) (net.Conn, error) {
		if err, ok := fail[target]; ok {
			return nil, err
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
}

// socksAddr encodes a SOCKS5 address: ATYP, DST.ADDR and DST.PORT.
func socksAddr(host string, port uint16) []byte {
	var b []byte
	if ip := net.ParseIP(host); ip == nil {
		b = append([]byte{0x03, byte(len(host))}, host...)
	} else if ip4 := ip.To4(); ip4 != nil {
		b = append([]byte{0x01}, ip4...)
	} else {
		b = append([]byte{0x04}, ip.To16()...)
	}
	return binary.BigEndian.AppendUint16(b, port)
}

// socksLogin runs the greeting and username/password exchange and fails the
// test unless they succeed.
func socksLogin(t *testing.T, conn net.Conn, br *bufio.Reader, u, pw string) {
	t.Helper()
	msg := []byte{5, 1, 2, 1, byte(len(u))}
	msg = append(msg, u...)
	msg = append(msg, byte(len(pw)))
	msg = append(msg, pw...)
	if _, err := conn.Write(msg); err != nil { // pipelined, as the proxy reads exact lengths
		t.Fatal(err)
	}
	var reply [4]byte
	if _, err := io.ReadFull(br, reply[:]); err != nil {
		t.Fatal(err)
	}
	if reply != [4]byte{5, 2, 1, 0} {
		t.Fatalf("login replies % x, want 05 02 01 00", reply)
	}
}

// socksReply reads a SOCKS5 reply and returns its status and bound address.
func socksReply(t *testing.T, br *bufio.Reader) (byte, net.IP, uint16) {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if hdr[0] != 5 {
		t.Fatalf("reply version %d", hdr[0])
	}
	n := map[byte]int{1: 4, 4: 16}[hdr[3]]
	if n == 0 {
		t.Fatalf("reply address type %d", hdr[3])
	}
	rest := make([]byte, n+2)
	if _, err := io.ReadFull(br, rest); err != nil {
		t.Fatal(err)
	}
	return hdr[1], net.IP(rest[:n]), binary.BigEndian.Uint16(rest[n:])
}

func TestSOCKS5Commands(t *testing.T) {
	origin := newOrigin(t)
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	p := proxyauthtest.NewUnstartedSOCKS5Proxy(user, pass)
	p.DialContext = mapAll(hostOf(t, origin.URL), map[string]error{
		"refused.test:1": refused,
		"broken.test:1":  errors.New("broken"),
	})
	p.Start()
	t.Cleanup(p.Close)

	tests := []struct {
		name       string
		cmd        byte
		host       string
		port       uint16
		wantReply  byte
		wantTarget string
	}{
		{"IPv4", 1, "127.0.0.1", 80, 0x00, "127.0.0.1:80"},
		{"IPv6", 1, "::1", 80, 0x00, "[::1]:80"},
		{"domain name", 1, "origin.test", 8080, 0x00, "origin.test:8080"},
		{"BIND", 2, "127.0.0.1", 80, 0x07, "127.0.0.1:80"},
		{"UDP ASSOCIATE", 3, "127.0.0.1", 80, 0x07, "127.0.0.1:80"},
		{"connection refused", 1, "refused.test", 1, 0x05, "refused.test:1"},
		{"other dial failure", 1, "broken.test", 1, 0x01, "broken.test:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(p.Requests())
			conn, br := dialRaw(t, p.Addr())
			socksLogin(t, conn, br, user, pass)
			if _, err := conn.Write(append([]byte{5, tt.cmd, 0}, socksAddr(tt.host, tt.port)...)); err != nil {
				t.Fatal(err)
			}
			reply, ip, port := socksReply(t, br)
			if reply != tt.wantReply {
				t.Fatalf("reply %#x, want %#x", reply, tt.wantReply)
			}
			got := p.Requests()[before:]
			want := []proxyauthtest.SOCKS5Request{{Username: user, Target: tt.wantTarget, Authorized: true}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Requests() = %+v, want %+v", got, want)
			}
			if reply != 0 {
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("connection not closed after a failure: %v", err)
				}
				return
			}
			if !ip.IsLoopback() || port == 0 {
				t.Errorf("bound address %v:%d, want a loopback address", ip, port)
			}
			io.WriteString(conn, "GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "hello /tunnel" {
				t.Errorf("body through the tunnel %q", body)
			}
		})
	}
}

func TestSOCKS5HandshakeFailures(t *testing.T) {
	p := proxyauthtest.NewSOCKS5Proxy(user, pass)
	t.Cleanup(p.Close)

	tests := []struct {
		name      string
		send      []byte
		wantReply []byte
		want      proxyauthtest.SOCKS5Request
	}{
		{"only no-auth offered", []byte{5, 1, 0}, []byte{5, 0xff}, proxyauthtest.SOCKS5Request{}},
		{"wrong credentials", []byte{5, 2, 0, 2, 1, 1, 'x', 1, 'y'}, []byte{5, 2, 1, 1},
			proxyauthtest.SOCKS5Request{Username: "x"}},
		{"unsupported address type",
			append(append([]byte{5, 1, 2, 1, byte(len(user))}, user...), append(append([]byte{byte(len(pass))}, pass...), 5, 1, 0, 9)...),
			[]byte{5, 2, 1, 0, 5, 8, 0, 1, 0, 0, 0, 0, 0, 0},
			proxyauthtest.SOCKS5Request{Username: user, Authorized: true}},
		{"SOCKS4", []byte{4, 1, 0, 80, 127, 0, 0, 1, 0}, nil, proxyauthtest.SOCKS5Request{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(p.Requests())
			conn, br := dialRaw(t, p.Addr())
			if _, err := conn.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			// The proxy closes the connection; with unread input left (SOCKS4)
			// the close is a reset.
			got, err := io.ReadAll(br)
			if err != nil && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.wantReply) {
				t.Errorf("replies % x, want % x", got, tt.wantReply)
			}
			if reqs := p.Requests()[before:]; !reflect.DeepEqual(reqs, []proxyauthtest.SOCKS5Request{tt.want}) {
				t.Errorf("Requests() = %+v, want [%+v]", reqs, tt.want)
			}
		})
	}
}

func TestSOCKS5Close(t *testing.T) {
	origin := newOrigin(t)
	p := proxyauthtest.NewSOCKS5Proxy(user, pass)
	t.Cleanup(p.Close)

	// An open tunnel, a connection in the middle of its handshake and a
	// connection that sent nothing.
	tunnel, tunnelBR := dialRaw(t, p.Addr())
	socksLogin(t, tunnel, tunnelBR, user, pass)
	host, port, _ := net.SplitHostPort(hostOf(t, origin.URL))
	portNum, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		t.Fatal(err)
	}
	tunnel.Write(append([]byte{5, 1, 0}, socksAddr(host, uint16(portNum))...))
	if reply, _, _ := socksReply(t, tunnelBR); reply != 0 {
		t.Fatalf("reply %#x", reply)
	}
	half, halfBR := dialRaw(t, p.Addr())
	socksLogin(t, half, halfBR, user, pass)
	_, silentBR := dialRaw(t, p.Addr())

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(p.Close)
	}
	wg.Wait()

	for name, br := range map[string]*bufio.Reader{"tunnel": tunnelBR, "half": halfBR, "silent": silentBR} {
		if _, err := br.ReadByte(); err == nil {
			t.Errorf("%s connection still open after Close", name)
		}
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Error("listener still open after Close")
	}
}

func TestSOCKS5StartTwicePanics(t *testing.T) {
	tests := []struct {
		name   string
		before func(*proxyauthtest.SOCKS5Proxy)
	}{
		{"started", (*proxyauthtest.SOCKS5Proxy).Start},
		{"closed", (*proxyauthtest.SOCKS5Proxy).Close},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := proxyauthtest.NewUnstartedSOCKS5Proxy(user, pass)
			t.Cleanup(p.Close)
			tt.before(p)
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			p.Start()
		})
	}
}

func TestReplacedListener(t *testing.T) {
	origin := newOrigin(t)
	listen := func(t *testing.T) net.Listener {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return ln
	}
	tests := []struct {
		name  string
		start func(t *testing.T, ln net.Listener) (proxyURL string, close func())
	}{
		{"Proxy", func(t *testing.T, ln net.Listener) (string, func()) {
			p := proxyauthtest.NewUnstartedProxy(user, pass)
			p.Listener = ln
			p.Start()
			return p.URL, p.Close
		}},
		{"SOCKS5Proxy", func(t *testing.T, ln net.Listener) (string, func()) {
			p := proxyauthtest.NewUnstartedSOCKS5Proxy(user, pass)
			p.Listener = ln
			p.Start()
			return p.URL, p.Close
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := listen(t)
			proxyURL, closeProxy := tt.start(t, ln)
			t.Cleanup(closeProxy)
			if got := hostOf(t, proxyURL); got != ln.Addr().String() {
				t.Errorf("URL host %q, want the listener's %q", got, ln.Addr())
			}
			if _, body, err := get(newClient(t, withUser(t, proxyURL, user, pass)), origin.URL); err != nil || body != "hello /" {
				t.Errorf("got %q, %v", body, err)
			}
		})
	}
}
