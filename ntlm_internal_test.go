package proxyauth

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/Azure/go-ntlmssp"
)

// squidFakeChallenge is the CHALLENGE message of squid 5.7's
// ntlm_fake_auth: a 40-byte header with no TargetInfo field, the
// TargetInfo flag set, and a TargetName offset of 0xAAAAAAAE.
const squidFakeChallenge = "4e544c4d535350000200000009000900aeaaaaaa01b288a076d62323916eea3a0000000000003a00574f524b47524f5550"

// windowsChallenge is MS-NLMP 4.2.4.3's CHALLENGE message (NTLMv2
// example), with TargetInfo.
const windowsChallenge = "4e544c4d53535000020000000c000c003800000033828ae20123456789abcdef00000000000000002400240044000000060070170000000f53006500720076006500720002000c0044006f006d00610069006e0001000c0053006500720076006500720000000000"

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// answer runs an NTLM handshake to its second leg against the challenge
// message msg.
func answer(user, password string, msg []byte) (string, bool, error) {
	a, err := ntlmScheme{}.Start(&Challenge{Scheme: "NTLM"}, Credentials{Username: user, Password: password})
	if err != nil {
		return "", false, err
	}
	h, _ := a.(ConnAuthorizer).Handshake(context.Background(), AuthRequest{})
	if _, _, err := h.Next(nil); err != nil {
		return "", false, err
	}
	return h.Next(&Challenge{Scheme: "NTLM", Token68: base64.StdEncoding.EncodeToString(msg)})
}

// authenticateOf decodes an "NTLM <token>" value into its AUTHENTICATE
// message, or fails the test.
func authenticateOf(t *testing.T, v string) []byte {
	t.Helper()
	tok, ok := strings.CutPrefix(v, "NTLM ")
	if !ok {
		t.Fatalf("value %q is not NTLM", v)
	}
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(b) < 64 || string(b[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(b[8:]) != 3 {
		t.Fatalf("not an AUTHENTICATE message: %x (%v)", b, err)
	}
	return b
}

// TestNTLMSquidChallenge: go-ntlmssp alone refuses squid's fake
// challenge; through ntlmChallenge it is answered, with the domain and
// user of the credentials.
func TestNTLMSquidChallenge(t *testing.T) {
	msg := mustHex(t, squidFakeChallenge)
	if _, err := ntlmssp.NewAuthenticateMessage(msg, `CORP\alice`, "pw", nil); err == nil {
		t.Fatal("go-ntlmssp now reads the challenge as it is: the rewrite may no longer be needed")
	}
	v, last, err := answer(`CORP\alice`, "pw", msg)
	if err != nil || !last {
		t.Fatalf("answer: %v (last %v)", err, last)
	}
	am := authenticateOf(t, v)
	domain, user := ntlmField(am, 28, 0), ntlmField(am, 36, 0)
	if string(domain) != "C\x00O\x00R\x00P\x00" || string(user) != "a\x00l\x00i\x00c\x00e\x00" {
		t.Errorf("domain %q, user %q", domain, user)
	}
}

// TestNTLMChallengeRewrite checks the rewritten messages field by field.
func TestNTLMChallengeRewrite(t *testing.T) {
	t.Run("squid", func(t *testing.T) {
		out, err := ntlmChallenge(mustHex(t, squidFakeChallenge))
		if err != nil {
			t.Fatal(err)
		}
		if len(out) != ntlmHeaderLen {
			t.Errorf("length %d, want the bare header: the TargetName is outside the message", len(out))
		}
		if binary.LittleEndian.Uint32(out[20:])&ntlmTargetInfo != 0 {
			t.Error("the TargetInfo flag is kept without a TargetInfo")
		}
	})
	t.Run("windows", func(t *testing.T) {
		in := mustHex(t, windowsChallenge)
		out, err := ntlmChallenge(in)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ntlmField(out, 12, ntlmHeaderLen), ntlmField(in, 12, 0); string(got) != string(want) {
			t.Errorf("TargetName %x, want %x", got, want)
		}
		if got, want := ntlmField(out, 40, ntlmHeaderLen), ntlmField(in, 40, 0); string(got) != string(want) {
			t.Errorf("TargetInfo %x, want %x", got, want)
		}
		if string(out[24:32]) != string(in[24:32]) {
			t.Error("the server challenge changed")
		}
	})
	t.Run("truncated TargetInfo", func(t *testing.T) {
		in := mustHex(t, windowsChallenge)
		in = in[:len(in)-6] // cut into the last pair and its MsvAvEOL
		binary.LittleEndian.PutUint16(in[40:], uint16(len(in)-0x44))
		out, err := ntlmChallenge(in)
		if err != nil {
			t.Fatal(err)
		}
		info := ntlmField(out, 40, ntlmHeaderLen)
		if len(info) < 4 || string(info[len(info)-4:]) != "\x00\x00\x00\x00" {
			t.Errorf("TargetInfo %x does not end with MsvAvEOL", info)
		}
		if _, _, err := answer("alice", "pw", in); err != nil {
			t.Errorf("answer: %v", err)
		}
	})
	for _, tt := range []struct {
		name string
		msg  string
		want string
	}{
		{"short", "4e544c4d53535000020000", "not an NTLM CHALLENGE"},
		{"type 1", "4e544c4d535350000100000009000900aeaaaaaa01b288a076d62323916eea3a", "not an NTLM CHALLENGE"},
		{"OEM", "4e544c4d535350000200000009000900aeaaaaaa02b288a076d62323916eea3a", "OEM"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ntlmChallenge(mustHex(t, tt.msg))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// FuzzNTLMChallenge feeds CHALLENGE messages to the NTLM handshake, as a
// hostile proxy would: it never panics, and what it answers is an
// AUTHENTICATE message.
func FuzzNTLMChallenge(f *testing.F) {
	f.Add(mustHex(f, squidFakeChallenge))
	f.Add(mustHex(f, windowsChallenge))
	f.Add([]byte("NTLMSSP\x00\x02\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		v, _, err := answer(`CORP\alice`, "pw", msg)
		if err != nil {
			return
		}
		authenticateOf(t, v)
	})
}
