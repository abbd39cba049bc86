package proxyauthtest_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"reflect"
	"strings"
	"testing"

	ntlmssp "github.com/Azure/go-ntlmssp"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// ntlmNegotiate returns the Proxy-Authorization value of the first leg, as
// go-ntlmssp builds it.
func ntlmNegotiate(t *testing.T) string {
	t.Helper()
	msg, err := ntlmssp.NewNegotiateMessage("", "")
	if err != nil {
		t.Fatal(err)
	}
	return "NTLM " + base64.StdEncoding.EncodeToString(msg)
}

// ntlmChallenge returns the CHALLENGE message of a 407 answering the first
// leg: the one Proxy-Authenticate value that starts with "NTLM ".
func ntlmChallenge(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	if resp.StatusCode != http.StatusProxyAuthRequired {
		t.Fatalf("first leg: status %d, want 407", resp.StatusCode)
	}
	var found []byte
	for _, v := range resp.Header.Values("Proxy-Authenticate") {
		if tok, ok := strings.CutPrefix(v, "NTLM "); ok {
			if found != nil {
				t.Fatal("several NTLM challenges")
			}
			b, err := base64.StdEncoding.DecodeString(tok)
			if err != nil {
				t.Fatal(err)
			}
			found = b
		}
	}
	if found == nil {
		t.Fatalf("no NTLM challenge in %q", resp.Header.Values("Proxy-Authenticate"))
	}
	return found
}

// ntlmAuthenticate returns the Proxy-Authorization value of the third leg
// for challenge, as go-ntlmssp builds it.
func ntlmAuthenticate(t *testing.T, challenge []byte, user, pass string) string {
	t.Helper()
	msg, err := ntlmssp.NewAuthenticateMessage(challenge, user, pass, nil)
	if err != nil {
		t.Fatalf("go-ntlmssp refuses the challenge: %v", err)
	}
	return "NTLM " + base64.StdEncoding.EncodeToString(msg)
}

// ntlmFirstLegs sends the NEGOTIATE on rp and returns the CHALLENGE.
func ntlmFirstLegs(t *testing.T, rp *rawProxy, method, target string) []byte {
	t.Helper()
	resp, _ := rp.do(rawReq{method: method, target: target, auth: []string{ntlmNegotiate(t)}})
	return ntlmChallenge(t, resp)
}

// connectOK reads the answer to a CONNECT and fails unless it is 200.
func connectOK(t *testing.T, rp *rawProxy) {
	t.Helper()
	line, err := rp.br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 200 Connection established\r\n" {
		t.Fatalf("CONNECT answer %q, %v", line, err)
	}
	if end, _ := rp.br.ReadString('\n'); end != "\r\n" {
		t.Fatalf("CONNECT answer continues with %q", end)
	}
}

// wantBareNTLM checks that resp is a 407 whose only challenge is "NTLM".
func wantBareNTLM(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	if got := resp.Header.Values("Proxy-Authenticate"); resp.StatusCode != 407 || !reflect.DeepEqual(got, []string{"NTLM"}) {
		t.Errorf("%s: %d %q, want 407 [NTLM]", what, resp.StatusCode, got)
	}
}

func TestNTLMHandshake(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/n"
	authority := hostOf(t, origin.URL)
	for _, username := range []string{"alice", `CORP\alice`, "alice@corp.example"} {
		for _, mode := range []string{"plain", "CONNECT"} {
			t.Run(username+"/"+mode, func(t *testing.T) {
				p := proxyauthtest.NewNTLMProxy(username, pass)
				t.Cleanup(p.Close)
				if _, ok := p.Authenticator().(*proxyauthtest.NTLM); !ok {
					t.Fatalf("Authenticator() = %T", p.Authenticator())
				}
				rp := dialProxy(t, p)
				method, to := "GET", target
				if mode == "CONNECT" {
					method, to = "CONNECT", authority
				}
				challenge := ntlmFirstLegs(t, rp, method, to)
				type3 := ntlmAuthenticate(t, challenge, username, pass)
				if mode == "CONNECT" {
					rp.write(rawReq{method: method, target: to, auth: []string{type3}})
					connectOK(t, rp)
					rp.throughTunnel()
				} else {
					resp, body := rp.do(rawReq{method: method, target: to, auth: []string{type3}})
					if resp.StatusCode != 200 || body != "hello /n" {
						t.Fatalf("third leg: %d %q, want 200 from the origin", resp.StatusCode, body)
					}
					if got := resp.Header.Get("X-Origin-Proxy-Authorization"); got != "0" {
						t.Errorf("origin received %s Proxy-Authorization fields", got)
					}
					// The connection is authenticated now.
					resp, body = rp.do(rawReq{method: "GET", target: target})
					if resp.StatusCode != 200 || body != "hello /n" {
						t.Errorf("second request on the connection: %d %q, want 200", resp.StatusCode, body)
					}
				}
				want := []proxyauthtest.Request{
					{Method: method, Target: to, ProxyAuthorization: []string{ntlmNegotiate(t)}, Scheme: "NTLM", Leg: 1, Status: 407},
					{Method: method, Target: to, ProxyAuthorization: []string{type3}, Scheme: "NTLM", Leg: 3, Authorized: true, Status: 200},
				}
				if mode == "plain" {
					want = append(want, proxyauthtest.Request{Method: "GET", Target: target, Authorized: true, Status: 200})
				}
				if got := p.Requests(); !reflect.DeepEqual(got, want) {
					t.Errorf("Requests() =\n%+v\nwant\n%+v", got, want)
				}

				// Another connection is not authenticated.
				resp, _ := dialProxy(t, p).do(rawReq{method: "GET", target: target})
				wantBareNTLM(t, resp, "new connection")
			})
		}
	}
}

func TestNTLMRejections(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/r"
	username := `CORP\alice`
	p := proxyauthtest.NewNTLMProxy(username, pass)
	t.Cleanup(p.Close)

	t.Run("wrong password", func(t *testing.T) {
		rp := dialProxy(t, p)
		ch := ntlmFirstLegs(t, rp, "GET", target)
		resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, username, "wrong")}})
		wantBareNTLM(t, resp, "wrong password")
		if rec := lastRequest(t, p); rec.Scheme != "NTLM" || rec.Leg != 3 || rec.Authorized {
			t.Errorf("recorded %+v", rec)
		}
		resp, _ = rp.do(rawReq{method: "GET", target: target})
		wantBareNTLM(t, resp, "after a wrong password")
		// The connection can start over.
		ch = ntlmFirstLegs(t, rp, "GET", target)
		if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, username, pass)}}); resp.StatusCode != 200 {
			t.Errorf("handshake after a failure: %d", resp.StatusCode)
		}
	})

	t.Run("wrong user", func(t *testing.T) {
		rp := dialProxy(t, p)
		ch := ntlmFirstLegs(t, rp, "GET", target)
		resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, `OTHER\alice`, pass)}})
		wantBareNTLM(t, resp, "user of another domain")
	})

	t.Run("third leg on another connection", func(t *testing.T) {
		first := dialProxy(t, p)
		ch := ntlmFirstLegs(t, first, "GET", target)
		type3 := ntlmAuthenticate(t, ch, username, pass)
		resp, _ := dialProxy(t, p).do(rawReq{method: "GET", target: target, auth: []string{type3}})
		wantBareNTLM(t, resp, "third leg on a new connection")
		other := dialProxy(t, p)
		ntlmFirstLegs(t, other, "GET", target) // a challenge of its own
		resp, _ = other.do(rawReq{method: "GET", target: target, auth: []string{type3}})
		wantBareNTLM(t, resp, "third leg on a connection with another challenge")
		// The challenge of the first connection is still waiting for it.
		if resp, _ := first.do(rawReq{method: "GET", target: target, auth: []string{type3}}); resp.StatusCode != 200 {
			t.Errorf("third leg on its own connection: %d", resp.StatusCode)
		}
	})

	t.Run("replay", func(t *testing.T) {
		rp := dialProxy(t, p)
		ch := ntlmFirstLegs(t, rp, "GET", target)
		type3 := ntlmAuthenticate(t, ch, username, pass)
		if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{type3}}); resp.StatusCode != 200 {
			t.Fatalf("third leg: %d", resp.StatusCode)
		}
		resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{type3}})
		wantBareNTLM(t, resp, "replayed on its connection")
		resp, _ = rp.do(rawReq{method: "GET", target: target})
		wantBareNTLM(t, resp, "after a replay")
	})

	t.Run("CONNECT wrong password", func(t *testing.T) {
		rp := dialProxy(t, p)
		authority := hostOf(t, origin.URL)
		ch := ntlmFirstLegs(t, rp, "CONNECT", authority)
		resp, _ := rp.do(rawReq{method: "CONNECT", target: authority, auth: []string{ntlmAuthenticate(t, ch, username, "wrong")}})
		wantBareNTLM(t, resp, "CONNECT with a wrong password")
		ch = ntlmFirstLegs(t, rp, "CONNECT", authority)
		rp.write(rawReq{method: "CONNECT", target: authority, auth: []string{ntlmAuthenticate(t, ch, username, pass)}})
		connectOK(t, rp)
		rp.throughTunnel()
	})

	t.Run("other scheme on an authenticated connection", func(t *testing.T) {
		rp := dialProxy(t, p)
		ch := ntlmFirstLegs(t, rp, "GET", target)
		if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, username, pass)}}); resp.StatusCode != 200 {
			t.Fatalf("third leg: %d", resp.StatusCode)
		}
		resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{basic(username, pass)}})
		wantBareNTLM(t, resp, "Basic credentials")
		if resp, _ := rp.do(rawReq{method: "GET", target: target}); resp.StatusCode != 200 {
			t.Errorf("without credentials afterwards: %d, want 200", resp.StatusCode)
		}
	})
}

func TestNTLMMulti(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/m"
	username := "alice@corp.example"
	p := proxyauthtest.NewUnstartedProxy(username, pass)
	p.Auth = proxyauthtest.Multi(&proxyauthtest.NTLM{}, proxyauthtest.Basic{})
	p.Start()
	t.Cleanup(p.Close)
	if _, ok := p.Authenticator().(proxyauthtest.ConnVerifier); !ok {
		t.Error("Multi does not implement ConnVerifier")
	}
	basicChallenge := `Basic realm="proxyauthtest"`

	rp := dialProxy(t, p)
	if got := rp.challenges(target); !reflect.DeepEqual(got, []string{"NTLM", basicChallenge}) {
		t.Errorf("challenges %q, want NTLM and Basic", got)
	}
	resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmNegotiate(t)}})
	got := resp.Header.Values("Proxy-Authenticate")
	if len(got) != 2 || !strings.HasPrefix(got[0], "NTLM ") || got[1] != basicChallenge {
		t.Errorf("answer to the first leg offers %q, want the NTLM challenge and Basic", got)
	}
	ch := ntlmChallenge(t, resp)
	resp, _ = rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, username, "wrong")}})
	if got := resp.Header.Values("Proxy-Authenticate"); resp.StatusCode != 407 || !reflect.DeepEqual(got, []string{"NTLM", basicChallenge}) {
		t.Errorf("wrong password: %d %q, want 407 with NTLM and Basic", resp.StatusCode, got)
	}

	ch = ntlmFirstLegs(t, rp, "GET", target)
	if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, username, pass)}}); resp.StatusCode != 200 {
		t.Fatalf("third leg: %d", resp.StatusCode)
	}
	if resp, _ := rp.do(rawReq{method: "GET", target: target}); resp.StatusCode != 200 {
		t.Errorf("authenticated connection without credentials: %d", resp.StatusCode)
	}
	if rec := lastRequest(t, p); !rec.Authorized || rec.Scheme != "" || rec.Leg != 0 {
		t.Errorf("recorded %+v", rec)
	}

	// Basic works alongside, on any connection.
	if resp, _ := dialProxy(t, p).do(rawReq{method: "GET", target: target, auth: []string{basic(username, pass)}}); resp.StatusCode != 200 {
		t.Errorf("Basic: %d", resp.StatusCode)
	}
	if resp, _ := dialProxy(t, p).do(rawReq{method: "GET", target: target}); resp.StatusCode != 407 {
		t.Errorf("new connection without credentials: %d", resp.StatusCode)
	}
}

// hostileType3 builds an AUTHENTICATE message whose field descriptors and
// length are set by the caller.
func hostileType3(size int, fields map[int][2]uint32) string {
	b := make([]byte, size)
	copy(b, "NTLMSSP\x00")
	if size >= 12 {
		binary.LittleEndian.PutUint32(b[8:], 3)
	}
	if size >= 64 {
		binary.LittleEndian.PutUint32(b[60:], 0xe2888235)
	}
	for at, f := range fields {
		if at+8 <= size {
			binary.LittleEndian.PutUint16(b[at:], uint16(f[0]))
			binary.LittleEndian.PutUint16(b[at+2:], uint16(f[0]))
			binary.LittleEndian.PutUint32(b[at+4:], f[1])
		}
	}
	return "NTLM " + base64.StdEncoding.EncodeToString(b)
}

func TestNTLMHostileAuthenticate(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/h"
	p := proxyauthtest.NewNTLMProxy(user, pass)
	t.Cleanup(p.Close)
	tests := map[string]string{
		"truncated header":         hostileType3(30, nil),
		"signature only":           hostileType3(8, nil),
		"header only":              hostileType3(64, nil),
		"nt offset out of range":   hostileType3(120, map[int][2]uint32{20: {48, 100}}),
		"nt offset huge":           hostileType3(120, map[int][2]uint32{20: {48, 0xffffffff}}),
		"nt length huge":           hostileType3(120, map[int][2]uint32{20: {0xffff, 64}}),
		"user length huge":         hostileType3(120, map[int][2]uint32{36: {0xffff, 0xfffffff0}}),
		"user inside the header":   hostileType3(120, map[int][2]uint32{36: {8, 0}, 20: {56, 64}}),
		"all fields on each other": hostileType3(200, map[int][2]uint32{12: {136, 64}, 20: {136, 64}, 28: {136, 64}, 36: {136, 64}, 44: {136, 64}}),
		"NTLMv1 response":          hostileType3(120, map[int][2]uint32{20: {24, 64}, 36: {10, 88}}),
		"bad base64":               "NTLM %%%",
		"not NTLMSSP":              "NTLM " + base64.StdEncoding.EncodeToString([]byte("hello, proxy")),
		"no token":                 "NTLM",
		"a CHALLENGE from the client": "NTLM " + base64.StdEncoding.EncodeToString(
			append([]byte("NTLMSSP\x00\x02\x00\x00\x00"), make([]byte, 40)...)),
	}
	rp := dialProxy(t, p)
	for name, auth := range tests {
		t.Run(name, func(t *testing.T) {
			ntlmFirstLegs(t, rp, "GET", target)
			resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{auth}})
			wantBareNTLM(t, resp, name)
		})
	}
	// The proxy still serves, on the same connection.
	ch := ntlmFirstLegs(t, rp, "GET", target)
	if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, user, pass)}}); resp.StatusCode != 200 {
		t.Errorf("valid handshake after the hostile ones: %d", resp.StatusCode)
	}
}

// zeroReader reads zeros: a server challenge source whose every challenge is
// the same.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestNTLMChallengeBoundToConnection checks that an AUTHENTICATE message is
// accepted only on a connection that is waiting for it, even when every
// server challenge is the same.
func TestNTLMChallengeBoundToConnection(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/b"
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = &proxyauthtest.NTLM{Rand: zeroReader{}}
	p.Start()
	t.Cleanup(p.Close)

	rp := dialProxy(t, p)
	ch := ntlmFirstLegs(t, rp, "GET", target)
	if got := ch[24:32]; string(got) != string(make([]byte, 8)) {
		t.Fatalf("server challenge % x, want the zeros Rand gives", got)
	}
	type3 := ntlmAuthenticate(t, ch, user, pass)
	resp, _ := dialProxy(t, p).do(rawReq{method: "GET", target: target, auth: []string{type3}})
	wantBareNTLM(t, resp, "third leg on a connection without a challenge")
	if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{type3}}); resp.StatusCode != 200 {
		t.Fatalf("third leg on its connection: %d", resp.StatusCode)
	}
	resp, _ = rp.do(rawReq{method: "GET", target: target, auth: []string{type3}})
	wantBareNTLM(t, resp, "third leg again")
}

func TestNTLMOverTLSProxy(t *testing.T) {
	origin := newOrigin(t)
	target := origin.URL + "/t"
	p := proxyauthtest.NewUnstartedProxy(user, pass)
	p.Auth = &proxyauthtest.NTLM{}
	p.StartTLS()
	t.Cleanup(p.Close)
	pool := x509.NewCertPool()
	pool.AddCert(p.Certificate())
	conn, err := tls.Dial("tcp", p.Addr(), &tls.Config{RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	rp := &rawProxy{t, conn, bufio.NewReader(conn)}
	ch := ntlmFirstLegs(t, rp, "GET", target)
	if resp, _ := rp.do(rawReq{method: "GET", target: target, auth: []string{ntlmAuthenticate(t, ch, user, pass)}}); resp.StatusCode != 200 {
		t.Fatalf("third leg: %d", resp.StatusCode)
	}
	if resp, _ := rp.do(rawReq{method: "GET", target: target}); resp.StatusCode != 200 {
		t.Errorf("authenticated connection: %d", resp.StatusCode)
	}
}
