package proxyauth

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/go-ntlmssp"
)

// NTLM returns the NTLM scheme (NTLMv2, MS-NLMP), which corporate proxies
// such as squid and Microsoft's offer. Credentials.Username is
// "DOMAIN\user", "user@domain" or "user", and Password the account's
// password, which is never sent: the proxy's challenge is answered with an
// HMAC of it.
//
// NTLM authenticates a connection, not a request, in three legs on that
// connection (see [ConnAuthorizer]): the Transport opens its connections
// to an NTLM proxy itself, and a tunnel or a kept-alive connection costs
// the legs once, whatever the number of requests on it. It is never sent
// before the proxy has asked for it. It rates 25 (see [Scheme]): below
// every Digest, whose answers are as safe and need no extra round trip,
// and above Bearer and Basic. NTLMv1 and LM, which are broken, are not
// spoken: a proxy that asks for them gets an error.
func NTLM() Scheme { return ntlmScheme{} }

type ntlmScheme struct{}

func (ntlmScheme) Name() string           { return "NTLM" }
func (ntlmScheme) Strength(Challenge) int { return 25 }

func (ntlmScheme) Start(c *Challenge, creds Credentials) (Authorizer, error) {
	if c == nil {
		return nil, nil
	}
	user, domain, err := ntlmUser(creds.Username)
	if err != nil {
		return nil, err
	}
	return &ntlmAuthorizer{creds: creds, user: user, domain: domain}, nil
}

// ntlmUser checks a username for NTLM and splits off its domain, when it
// is given as "DOMAIN\user"; "user@domain" goes as it is (a UPN, which
// the domain controller resolves).
func ntlmUser(username string) (user, domain string, err error) {
	user = username
	if d, u, ok := strings.Cut(username, `\`); ok {
		domain, user = d, u
	}
	switch {
	case user == "":
		return "", "", errors.New(`NTLM needs a username ("DOMAIN\user", "user@domain" or "user")`)
	case strings.ContainsAny(user, `\`):
		return "", "", errors.New(`the NTLM username has more than one backslash: give it as "DOMAIN\user"`)
	}
	return user, domain, nil
}

// ntlmAuthorizer answers an NTLM proxy's challenges with one set of
// credentials.
type ntlmAuthorizer struct {
	creds        Credentials
	user, domain string
}

func (*ntlmAuthorizer) Authorize(AuthRequest) (string, error) {
	return "", errors.New("NTLM authenticates connections: it has no value for a single request")
}

func (a *ntlmAuthorizer) Handshake(context.Context, AuthRequest) (Handshake, error) {
	return &ntlmHandshake{a: a}, nil
}

// ntlmHandshake is one connection's NTLM handshake: NEGOTIATE, then the
// AUTHENTICATE that answers the proxy's CHALLENGE.
type ntlmHandshake struct {
	a   *ntlmAuthorizer
	leg int
}

func (h *ntlmHandshake) Next(c *Challenge) (string, bool, error) {
	h.leg++
	switch {
	case h.leg == 1 && c == nil:
		// The domain and workstation of a NEGOTIATE message are the
		// client machine's, which the proxy has no use for.
		msg, err := ntlmssp.NewNegotiateMessage("", "")
		if err != nil {
			return "", false, err
		}
		return "NTLM " + base64.StdEncoding.EncodeToString(msg), false, nil
	case h.leg == 2 && c != nil && c.Token68 != "":
		raw, err := base64.StdEncoding.DecodeString(c.Token68)
		if err != nil {
			return "", false, fmt.Errorf("the proxy's NTLM challenge is not base64: %w", err)
		}
		challenge, err := ntlmChallenge(raw)
		if err != nil {
			return "", false, err
		}
		// The domain goes back into the username, where go-ntlmssp
		// looks for it.
		user := h.a.user
		if h.a.domain != "" {
			user = h.a.domain + `\` + user
		}
		msg, err := ntlmssp.NewAuthenticateMessage(challenge, user, h.a.creds.Password, nil)
		if err != nil {
			return "", false, fmt.Errorf("cannot answer the proxy's NTLM challenge: %w", err)
		}
		return "NTLM " + base64.StdEncoding.EncodeToString(msg), true, nil
	case h.leg == 2:
		return "", false, errors.New("the proxy answered the NTLM NEGOTIATE message without a challenge")
	}
	return "", false, errors.New("the proxy asked for a third NTLM leg: NTLM has two")
}

// NTLM CHALLENGE (type 2) message layout, MS-NLMP 2.2.1.2.
const (
	ntlmHeaderLen   = 48 // through TargetInfoFields, before Version
	ntlmMinLen      = 32 // through ServerChallenge: what must be there
	ntlmUnicode     = 0x00000001
	ntlmLMKey       = 0x00000080
	ntlmTargetInfo  = 0x00800000
	ntlmKeyExchange = 0x40000000
	ntlmAvEOL       = 0
)

// ntlmChallenge rewrites a proxy's CHALLENGE message into one that
// go-ntlmssp reads, or says why there is none. go-ntlmssp wants the
// 48-byte header, every field inside the message and a TargetInfo that
// ends with MsvAvEOL; squid's ntlm_fake_auth, among others, sends a
// 40-byte header without TargetInfo, a TargetName offset far outside the
// message and the TargetInfo flag set all the same. curl copes with that;
// so must we, without trusting any offset: this is written by hand
// because no library reads such messages leniently.
//
// The message is rebuilt from the fields that can be read: the flags and
// the server challenge, which are always there; TargetName when it lies
// inside the message; TargetInfo when the header has its field and it
// lies past the header and inside the message, cut after its last whole
// AV pair and ended with MsvAvEOL. The flags that go-ntlmssp refuses
// (LM_KEY, KEY_EXCH) are cleared: the answer then declines them, which
// the protocol allows.
func ntlmChallenge(msg []byte) ([]byte, error) {
	if len(msg) < ntlmMinLen || string(msg[:8]) != "NTLMSSP\x00" || binary.LittleEndian.Uint32(msg[8:]) != 2 {
		return nil, errors.New("the proxy's NTLM challenge is not an NTLM CHALLENGE message")
	}
	flags := binary.LittleEndian.Uint32(msg[20:])
	if flags&ntlmUnicode == 0 {
		return nil, errors.New("the proxy's NTLM challenge asks for OEM strings, not Unicode: only NTLMv2 with Unicode is spoken")
	}
	flags &^= ntlmLMKey | ntlmKeyExchange
	name := ntlmField(msg, 12, 0)
	var info []byte
	if len(msg) >= ntlmHeaderLen {
		info = ntlmAVPairs(ntlmField(msg, 40, ntlmHeaderLen))
	}
	if info == nil {
		flags &^= ntlmTargetInfo
	} else {
		flags |= ntlmTargetInfo
	}
	out := make([]byte, ntlmHeaderLen, ntlmHeaderLen+len(name)+len(info))
	copy(out, msg[:12])
	binary.LittleEndian.PutUint32(out[20:], flags)
	copy(out[24:32], msg[24:32])
	off := ntlmHeaderLen
	putField := func(at int, b []byte) {
		binary.LittleEndian.PutUint16(out[at:], uint16(len(b)))
		binary.LittleEndian.PutUint16(out[at+2:], uint16(len(b)))
		binary.LittleEndian.PutUint32(out[at+4:], uint32(off))
		off += len(b)
		out = append(out, b...)
	}
	putField(12, name)
	putField(40, info)
	return out, nil
}

// ntlmField returns the field whose length and offset are at msg[at:],
// when all of it lies inside msg and at or past min; nil otherwise.
func ntlmField(msg []byte, at, min int) []byte {
	n := int(binary.LittleEndian.Uint16(msg[at:]))
	off := int64(binary.LittleEndian.Uint32(msg[at+4:]))
	if n == 0 || off < int64(min) || off+int64(n) > int64(len(msg)) {
		return nil
	}
	return msg[off : off+int64(n)]
}

// ntlmAVPairs returns the AV pairs of a TargetInfo field up to its
// MsvAvEOL, or up to its last whole pair, ended with an MsvAvEOL; nil when
// there is neither a pair nor an MsvAvEOL.
func ntlmAVPairs(b []byte) []byte {
	end, eol := 0, false
	for end+4 <= len(b) {
		id := binary.LittleEndian.Uint16(b[end:])
		n := int(binary.LittleEndian.Uint16(b[end+2:]))
		if id == ntlmAvEOL {
			eol = true
			break
		}
		if end+4+n > len(b) {
			break
		}
		end += 4 + n
	}
	if end == 0 && !eol {
		return nil
	}
	out := make([]byte, end+4) // the MsvAvEOL is four zero bytes
	copy(out, b[:end])
	return out
}
