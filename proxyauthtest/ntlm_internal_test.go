package proxyauthtest

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The NTLMv2 test vectors of [MS-NLMP] section 4.2.4 (inputs in section
// 4.2.1): user "User", domain "Domain", password "Password", server challenge
// 0123456789abcdef, client challenge aaaaaaaaaaaaaaaa, time 0, and the
// section 4.2.4 AV pairs MsvAvNbDomainName "Domain", MsvAvNbComputerName
// "Server", MsvAvEOL.
const (
	specNTOWFv2    = "0c868a403bfd7a93a3001ef22ef02e3f" // 4.2.4.1.1
	specNTProofStr = "68cd0ab851e51c96aabc927bebef6a1c" // 4.2.4.2.2
	// specTemp is temp (the blob) of 4.2.4.2.2.
	specTemp = "0101000000000000" + "0000000000000000" + "aaaaaaaaaaaaaaaa" + "00000000" +
		"02000c0044006f006d00610069006e00" + "01000c00530065007200760065007200" + "00000000" +
		"00000000"
	specServerChallenge = "0123456789abcdef"
)

// specAuthenticate is the AUTHENTICATE message of [MS-NLMP] section 4.2.4.3.
const specAuthenticate = "4e544c4d5353500003000000180018006c00000054005400840000000c000c00" +
	"480000000800080054000000100010005c00000010001000d8000000358288e2" +
	"0501280a0000000f44006f006d00610069006e00550073006500720043004f00" +
	"4d005000550054004500520086c35097ac9cec102554764a57cccc19aaaaaaaa" +
	"aaaaaaaa68cd0ab851e51c96aabc927bebef6a1c010100000000000000000000" +
	"00000000aaaaaaaaaaaaaaaa0000000002000c0044006f006d00610069006e00" +
	"01000c005300650072007600650072000000000000000000c5dad2544fc97990" +
	"94ce1ce90bc9d03e"

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNTLMv2SpecVectors(t *testing.T) {
	ntowf := ntowfv2("Password", "User", "Domain")
	if got := hex.EncodeToString(ntowf); got != specNTOWFv2 {
		t.Errorf("NTOWFv2 = %s, want %s", got, specNTOWFv2)
	}
	if got := hex.EncodeToString(ntowfv2("Password", "user", "Domain")); got != specNTOWFv2 {
		t.Errorf("NTOWFv2 with the user in lower case = %s, want %s (the user is upper-cased)", got, specNTOWFv2)
	}
	if got := hex.EncodeToString(ntowfv2("Password", "User", "DOMAIN")); got == specNTOWFv2 {
		t.Error("NTOWFv2 does not depend on the case of the domain")
	}
	proof := ntProofStr(ntowf, unhex(t, specServerChallenge), unhex(t, specTemp))
	if got := hex.EncodeToString(proof); got != specNTProofStr {
		t.Errorf("NTProofStr = %s, want %s", got, specNTProofStr)
	}
}

// specServer returns the server challenge of the spec's examples.
func specServer(t *testing.T) [8]byte {
	var s [8]byte
	copy(s[:], unhex(t, specServerChallenge))
	return s
}

func TestNTLMVerifiesSpecAuthenticateMessage(t *testing.T) {
	msg := unhex(t, specAuthenticate)
	m, ok := parseAuthenticate(msg)
	if !ok {
		t.Fatal("parseAuthenticate rejects the message of MS-NLMP 4.2.4.3")
	}
	if m.user != "User" || m.domain != "Domain" || hex.EncodeToString(m.nt[:16]) != specNTProofStr {
		t.Fatalf("parsed user %q domain %q NTProofStr %x", m.user, m.domain, m.nt[:16])
	}
	other := specServer(t)
	other[0] ^= 1
	tests := []struct {
		name   string
		ntlm   *NTLM
		server [8]byte
		creds  []Credentials
		want   bool
	}{
		{"DOMAIN\\user", &NTLM{}, specServer(t), []Credentials{{`Domain\User`, "Password"}}, true},
		{"user@domain", &NTLM{}, specServer(t), []Credentials{{"User@Domain", "Password"}}, true},
		{"other case", &NTLM{}, specServer(t), []Credentials{{`DOMAIN\user`, "Password"}}, true},
		{"user in the proxy's domain", &NTLM{Domain: "Domain"}, specServer(t), []Credentials{{"User", "Password"}}, true},
		{"user in another domain", &NTLM{}, specServer(t), []Credentials{{"User", "Password"}}, false},
		{"DNS name of the domain", &NTLM{Domain: "Domain", DNSDomain: "domain.test"}, specServer(t),
			[]Credentials{{"User@domain.test", "Password"}}, true},
		{"among others", &NTLM{}, specServer(t), []Credentials{{`Domain\Bob`, "Password"}, {`Domain\User`, "Password"}}, true},
		{"wrong password", &NTLM{}, specServer(t), []Credentials{{`Domain\User`, "password"}}, false},
		{"password of another user", &NTLM{}, specServer(t), []Credentials{{`Domain\Bob`, "Password"}}, false},
		{"wrong domain", &NTLM{}, specServer(t), []Credentials{{`Other\User`, "Password"}}, false},
		{"other server challenge", &NTLM{}, other, []Credentials{{`Domain\User`, "Password"}}, false},
		{"no credentials", &NTLM{}, specServer(t), nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ntlm.verifyAuthenticate(m, tt.server, tt.creds); got != tt.want {
				t.Errorf("verifyAuthenticate = %v, want %v", got, tt.want)
			}
		})
	}

	// A single flipped bit of the proof or of the blob is caught.
	for _, at := range []int{0x84, 0x84 + 15, 0x84 + 16 + 8, 0x84 + 16 + 40} {
		bad := bytes.Clone(msg)
		bad[at] ^= 0x01
		if m, ok := parseAuthenticate(bad); ok && (&NTLM{}).verifyAuthenticate(m, specServer(t), []Credentials{{`Domain\User`, "Password"}}) {
			t.Errorf("message with byte %#x changed accepted", at)
		}
	}
}

func TestNTLMSameUser(t *testing.T) {
	n := &NTLM{Domain: "CORP", DNSDomain: "corp.example"}
	tests := []struct {
		cred, user, domain string
		want               bool
	}{
		{`CORP\alice`, "alice", "CORP", true},
		{`CORP\alice`, "ALICE", "corp", true},
		{`CORP\alice`, "alice", "", true}, // no domain: the proxy's
		{`CORP\alice`, "alice@corp", "", true},
		{`CORP\alice`, "alice@corp.example", "", true},
		{`CORP\alice`, "alice", "OTHER", false},
		{`CORP\alice`, "bob", "CORP", false},
		{"alice@corp.example", "alice@corp.example", "", true},
		{"alice@corp.example", "alice", "CORP", true},
		{"alice@other.example", "alice@other.example", "", true},
		{"alice@other.example", "alice", "OTHER", false},
		{"alice", "alice", "", true},
		{"alice", "alice", "CORP", true},
		{"alice", "alice", "OTHER", false},
		{"", "", "", false},
		{`CORP\`, "", "CORP", false},
	}
	for _, tt := range tests {
		if got := n.sameUser(tt.cred, tt.user, tt.domain); got != tt.want {
			t.Errorf("sameUser(%q, %q, %q) = %v, want %v", tt.cred, tt.user, tt.domain, got, tt.want)
		}
	}
}

// fixedReader returns the same bytes on every read.
type fixedReader []byte

func (f fixedReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = f[i%len(f)]
	}
	return len(p), nil
}

func TestNTLMChallengeMessage(t *testing.T) {
	server := specServer(t)
	when := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	n := &NTLM{Domain: "CORP", Computer: "GATE", DNSDomain: "corp.example", Rand: fixedReader(server[:]),
		Now: func() time.Time { return when }}
	conn := &Conn{}
	neg := make([]byte, 32)
	copy(neg, ntlmSignature)
	binary.LittleEndian.PutUint32(neg[8:], ntlmNegotiate)
	binary.LittleEndian.PutUint32(neg[12:], flagUnicode|flagNTLM|flag128|flagTargetInfo|0x40000000|0x80) // and KEY_EXCH, LM_KEY
	r, _ := http.NewRequest("GET", "http://origin.test/", nil)
	r.Header.Set("Proxy-Authorization", "NTLM "+base64.StdEncoding.EncodeToString(neg))
	v := n.VerifyConn(conn, r, nil)
	if v.Authorized || v.Leg != 1 || len(v.Challenges) != 1 || !strings.HasPrefix(v.Challenges[0], "NTLM ") {
		t.Fatalf("verdict %+v", v)
	}
	ch, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v.Challenges[0], "NTLM "))
	if err != nil {
		t.Fatal(err)
	}
	le16 := func(at int) int { return int(binary.LittleEndian.Uint16(ch[at:])) }
	le32 := func(at int) uint32 { return binary.LittleEndian.Uint32(ch[at:]) }
	if !bytes.Equal(ch[:8], ntlmSignature) || le32(8) != ntlmChallenge {
		t.Fatalf("header % x", ch[:12])
	}
	if !bytes.Equal(ch[24:32], server[:]) {
		t.Errorf("server challenge % x, want % x", ch[24:32], server)
	}
	flags := le32(20)
	for _, f := range []uint32{flagUnicode, flagNTLM, flag128, flagTargetInfo, flagRequestTarget, flagTargetTypeDomain} {
		if flags&f == 0 {
			t.Errorf("flags %#x lack %#x", flags, f)
		}
	}
	if flags&(0x40000000|0x80|flagOEM) != 0 {
		t.Errorf("flags %#x offer KEY_EXCH, LM_KEY or OEM", flags)
	}
	if off, n := int(le32(16)), le16(12); string(ch[off:off+n]) != string(utf16LE("CORP")) {
		t.Errorf("TargetName % x", ch[off:off+n])
	}
	off, l := int(le32(44)), le16(40)
	if off+l != len(ch) {
		t.Fatalf("TargetInfo at %d+%d in a message of %d bytes", off, l, len(ch))
	}
	pairs := map[uint16][]byte{}
	var order []uint16
	for info := ch[off : off+l]; len(info) >= 4; {
		id, n := binary.LittleEndian.Uint16(info), int(binary.LittleEndian.Uint16(info[2:]))
		pairs[id] = info[4 : 4+n]
		order = append(order, id)
		info = info[4+n:]
	}
	wantTime := binary.LittleEndian.AppendUint64(nil, uint64(when.UnixNano()/100+windowsEpoch))
	if string(pairs[avNbDomainName]) != string(utf16LE("CORP")) || string(pairs[avNbComputerName]) != string(utf16LE("GATE")) ||
		string(pairs[avDNSDomainName]) != string(utf16LE("corp.example")) || !bytes.Equal(pairs[avTimestamp], wantTime) ||
		len(order) != 5 || order[4] != avEOL {
		t.Errorf("TargetInfo pairs %v in order %v", pairs, order)
	}
	if st, _ := conn.Value(ntlmKey{n}).(ntlmState); !st.pending || st.server != server {
		t.Errorf("connection state %+v after the challenge", st)
	}
}

func TestNTLMRejectsWithoutConn(t *testing.T) {
	r, _ := http.NewRequest("GET", "http://origin.test/", nil)
	if v := (&NTLM{}).Verify(r, []Credentials{{"a", "b"}}); v.Authorized {
		t.Errorf("Verify without a connection = %+v", v)
	}
}

// hostileAuthenticates returns AUTHENTICATE messages that must be refused
// without a panic.
func hostileAuthenticates(t testing.TB) map[string][]byte {
	valid, _ := hex.DecodeString(specAuthenticate)
	with := func(at int, v uint32, size int) []byte {
		b := bytes.Clone(valid)
		if size == 2 {
			binary.LittleEndian.PutUint16(b[at:], uint16(v))
		} else {
			binary.LittleEndian.PutUint32(b[at:], v)
		}
		return b
	}
	return map[string][]byte{
		"empty":                 {},
		"signature only":        valid[:8],
		"header cut":            valid[:40],
		"header only":           valid[:64],
		"payload cut":           valid[:len(valid)-20],
		"nt offset past end":    with(24, uint32(len(valid)), 4),
		"nt offset max":         with(24, 0xffffffff, 4),
		"nt length max":         with(20, 0xffff, 2),
		"user length max":       with(36, 0xffff, 2),
		"user offset in header": with(40, 8, 4),
		"user odd length":       with(36, 7, 2),
		"domain offset max":     with(32, 0xfffffff0, 4),
		"session key past end":  with(48+4+4, 0xfffffffe, 4),
		"nt too short":          with(20, 24, 2),
		"wrong type":            with(8, 2, 4),
	}
}

func TestNTLMHostileAuthenticate(t *testing.T) {
	for name, msg := range hostileAuthenticates(t) {
		t.Run(name, func(t *testing.T) {
			m, ok := parseAuthenticate(msg)
			if ok && (&NTLM{}).verifyAuthenticate(m, specServer(t), []Credentials{{`Domain\User`, "Password"}}) {
				t.Error("accepted")
			}
		})
	}
}

func FuzzParseAuthenticate(f *testing.F) {
	valid, _ := hex.DecodeString(specAuthenticate)
	f.Add(valid)
	for _, msg := range hostileAuthenticates(f) {
		f.Add(msg)
	}
	var server [8]byte
	copy(server[:], valid[24:32])
	creds := []Credentials{{`Domain\User`, "Password"}, {"User", ""}}
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, ok := parseAuthenticate(msg)
		if !ok {
			return
		}
		if len(m.nt) > len(msg) || len(m.user) > 3*len(msg) || len(m.domain) > 3*len(msg) {
			t.Fatalf("fields longer than the message: %d %d %d of %d", len(m.nt), len(m.user), len(m.domain), len(msg))
		}
		(&NTLM{}).verifyAuthenticate(m, server, creds)
	})
}

// FuzzNTLMVerifyConn runs both client legs with arbitrary messages on one
// connection: nothing may panic, and nothing but the right password may be
// accepted.
func FuzzNTLMVerifyConn(f *testing.F) {
	valid, _ := hex.DecodeString(specAuthenticate)
	neg := append([]byte("NTLMSSP\x00\x01\x00\x00\x00"), 0x07, 0x82, 0x08, 0xa2)
	f.Add(neg, valid)
	f.Add(neg[:12], valid[:64])
	f.Add(append(bytes.Clone(neg), make([]byte, 24)...), []byte("NTLMSSP\x00\x03\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, first, third []byte) {
		n := &NTLM{}
		conn := &Conn{}
		for _, msg := range [][]byte{first, third} {
			r, _ := http.NewRequest("GET", "http://origin.test/", nil)
			r.Header.Set("Proxy-Authorization", "NTLM "+base64.StdEncoding.EncodeToString(msg))
			if v := n.VerifyConn(conn, r, []Credentials{{`Domain\User`, "not the spec's password"}}); v.Authorized {
				t.Fatal("accepted without the password")
			}
		}
	})
}
