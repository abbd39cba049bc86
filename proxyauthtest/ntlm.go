package proxyauthtest

// The NTLM verifier is written here by hand from [MS-NLMP] (the NT LAN
// Manager Authentication Protocol specification: the messages in section 2.2,
// NTLMv2 in section 3.3.2), independently of any client implementation. The
// verifying side is exactly what this package must not share with the
// clients it tests: a client and a verifier built from the same code would
// agree on the same wrong hash and pass together.
//
// MD4 comes from golang.org/x/crypto/md4: NTLM is defined over MD4, and no
// other hash will do. Its package is marked deprecated because MD4 is broken,
// which is no reason to avoid it for a protocol that requires it.

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	//lint:ignore SA1019 NTLM is defined over MD4, broken or not.
	"golang.org/x/crypto/md4"
)

// NTLM message types (MS-NLMP section 2.2.1).
const (
	ntlmNegotiate    = 1
	ntlmChallenge    = 2
	ntlmAuthenticate = 3
)

// Negotiate flags (MS-NLMP section 2.2.2.5).
const (
	flagUnicode          uint32 = 0x00000001
	flagOEM              uint32 = 0x00000002
	flagRequestTarget    uint32 = 0x00000004
	flagNTLM             uint32 = 0x00000200
	flagAlwaysSign       uint32 = 0x00008000
	flagTargetTypeDomain uint32 = 0x00010000
	flagExtendedSecurity uint32 = 0x00080000
	flagTargetInfo       uint32 = 0x00800000
	flagVersion          uint32 = 0x02000000
	flag128              uint32 = 0x20000000
	flag56               uint32 = 0x80000000
)

// AV_PAIR identifiers (MS-NLMP section 2.2.2.1).
const (
	avEOL             = 0
	avNbComputerName  = 1
	avNbDomainName    = 2
	avDNSDomainName   = 4
	avTimestamp       = 7
	maxAVValue        = 0xffff
	defaultNTLMDomain = "PROXYAUTHTEST"
	defaultComputer   = "PROXY"
)

// Sizes of the fixed parts of the messages.
const (
	negotiateHeader    = 16 // signature, type, flags; the rest is optional
	challengeHeader    = 56 // with the Version field
	authenticateHeader = 64 // up to and including NegotiateFlags
	ntProofLen         = 16
	blobHeader         = 28 // NTLMv2_CLIENT_CHALLENGE up to its AvPairs
)

// windowsEpoch is the number of 100-nanosecond ticks between 1601-01-01 and
// 1970-01-01, the offset of a FILETIME from Unix time.
const windowsEpoch = 116444736000000000

var ntlmSignature = []byte("NTLMSSP\x00")

// NTLM is the NTLM scheme (MS-NLMP, NTLMv2 only, in HTTP as used by proxies)
// as an [Authenticator] and a [ConnVerifier]: it authenticates a connection,
// not a request, in three legs on that connection.
//
//  1. The client sends `Proxy-Authorization: NTLM <base64 NEGOTIATE message>`
//     (a request without credentials gets the bare challenge `NTLM`).
//  2. The proxy answers 407 with `Proxy-Authenticate: NTLM <base64 CHALLENGE
//     message>` and keeps the connection open. The CHALLENGE carries a fresh
//     8-byte server challenge, TargetName Domain and a TargetInfo list with
//     MsvAvNbDomainName, MsvAvNbComputerName, MsvAvDnsDomainName (when
//     DNSDomain is set), MsvAvTimestamp and MsvAvEOL.
//  3. The client sends the AUTHENTICATE message on the same connection. It is
//     accepted when its NTLMv2 response is right for one of the accepted
//     credentials and the server challenge sent on that connection: NTProofStr
//     = HMAC-MD5(NTOWFv2, server challenge + blob), NTOWFv2 =
//     HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)), with
//     the user and domain as the message carries them, compared in constant
//     time. From then on the connection is authenticated, and its later
//     requests pass without any Proxy-Authorization field, as with squid.
//
// A server challenge answers one AUTHENTICATE message only, on the connection
// it was sent on: an AUTHENTICATE on another connection, a replayed one, a
// wrong password, an NTLMv1 or anonymous response, or a malformed message is
// rejected with the bare challenge `NTLM` (under [Multi], with the other
// schemes' challenges), and the client must start over with a NEGOTIATE. Any
// NTLM message on a connection ends its earlier authentication; a request
// with credentials of another scheme is judged on those and leaves the
// connection's state alone. Changing the accepted credentials does not end
// the authentication of a connection.
//
// The user of an AUTHENTICATE message matches accepted credentials whose
// Username is written "DOMAIN\user", "user@domain" or "user": the message's
// UserName and DomainName are split the same way when DomainName is empty (a
// client that sends "user@domain" whole), the user names and the domains are
// compared without regard to case, an empty domain on either side stands for
// Domain, and DNSDomain, when set, is another name of Domain. No other
// mapping between NetBIOS and DNS names is made.
//
// Not checked: the LM response (an NTLMv2 response is required), the MIC and
// the session keys (no signing or sealing is negotiated), and the time stamp
// in the client's blob.
//
// The exported fields must be set before the first use and not changed
// afterwards. The zero value is ready to use. The methods are safe for
// concurrent use.
type NTLM struct {
	// Domain is the NetBIOS name of the proxy's domain: the TargetName and
	// MsvAvNbDomainName of the CHALLENGE messages, and the domain of
	// credentials written without one. "" means "PROXYAUTHTEST".
	Domain string

	// Computer is the NetBIOS name of the proxy, sent as
	// MsvAvNbComputerName. "" means "PROXY".
	Computer string

	// DNSDomain, when not "", is the DNS name of Domain, sent as
	// MsvAvDnsDomainName and accepted as the domain of a user in place of
	// Domain. "" leaves it out.
	DNSDomain string

	// Rand is the source of the server challenges, 8 bytes each. nil means
	// crypto/rand. Tests that need known challenges set a reader of known
	// bytes; reads are serialized.
	Rand io.Reader

	// Now returns the time sent as MsvAvTimestamp. nil means time.Now.
	Now func() time.Time

	mu sync.Mutex // serializes reads from Rand
}

// NewNTLMProxy returns a started [Proxy] that accepts exactly the given
// credentials with [NTLM] (a Username written "DOMAIN\user", "user@domain" or
// "user"). The NTLM is available from [Proxy.Authenticator]. The caller
// should call Close when finished.
func NewNTLMProxy(username, password string) *Proxy {
	p := NewUnstartedProxy(username, password)
	p.Auth = &NTLM{}
	p.Start()
	return p
}

// ntlmKey is the key of an NTLM's state in a Conn.
type ntlmKey struct{ n *NTLM }

// ntlmState is the state of a connection for one NTLM. It is replaced whole,
// never changed in place.
type ntlmState struct {
	pending       bool    // a CHALLENGE was sent and not answered yet
	server        [8]byte // its server challenge
	authenticated bool
}

func (n *NTLM) domain() string {
	if n.Domain == "" {
		return defaultNTLMDomain
	}
	return n.Domain
}

func (n *NTLM) computer() string {
	if n.Computer == "" {
		return defaultComputer
	}
	return n.Computer
}

func (n *NTLM) schemes() []string { return []string{"NTLM"} }

// validate panics if a name is too long for an AV_PAIR.
func (n *NTLM) validate() {
	for _, name := range []string{n.Domain, n.Computer, n.DNSDomain} {
		if len(utf16LE(name)) > maxAVValue {
			panic("proxyauthtest: NTLM: name too long")
		}
	}
}

// Challenges returns the bare challenge "NTLM", which invites a NEGOTIATE
// message.
func (n *NTLM) Challenges() []string { return []string{"NTLM"} }

// Authorized reports whether Verify accepts r.
func (n *NTLM) Authorized(r *http.Request, accepted []Credentials) bool {
	return n.Verify(r, accepted).Authorized
}

// Verify is VerifyConn with the connection of r if a [Proxy] received it; it
// rejects any other request.
func (n *NTLM) Verify(r *http.Request, accepted []Credentials) Verdict {
	return n.VerifyConn(connOf(r), r, accepted)
}

// VerifyConn runs the leg of the handshake that r carries on conn, or lets r
// through if it has no Proxy-Authorization field and conn is authenticated:
// see [NTLM] for the rules.
func (n *NTLM) VerifyConn(conn *Conn, r *http.Request, accepted []Credentials) Verdict {
	if conn == nil {
		return Verdict{}
	}
	key := ntlmKey{n}
	st, _ := conn.Value(key).(ntlmState)
	values := r.Header.Values("Proxy-Authorization")
	if len(values) == 0 {
		return Verdict{Authorized: st.authenticated}
	}
	if len(values) != 1 {
		return Verdict{}
	}
	scheme, token, _ := strings.Cut(strings.TrimLeft(values[0], " \t"), " ")
	if !strings.EqualFold(scheme, "NTLM") {
		return Verdict{} // another scheme's credentials: not ours to judge
	}
	conn.SetValue(key, nil) // any NTLM message starts over
	msg, typ, ok := decodeNTLM(token)
	if !ok {
		return Verdict{}
	}
	switch typ {
	case ntlmNegotiate:
		flags, ok := parseNegotiate(msg)
		if !ok {
			return Verdict{Leg: typ}
		}
		var server [8]byte
		if !n.serverChallenge(server[:]) {
			return Verdict{Leg: typ}
		}
		conn.SetValue(key, ntlmState{pending: true, server: server})
		challenge := n.challengeMessage(flags, server)
		return Verdict{Leg: typ, Challenges: []string{"NTLM " + base64.StdEncoding.EncodeToString(challenge)}}
	case ntlmAuthenticate:
		if !st.pending {
			return Verdict{Leg: typ} // no challenge sent on this connection, or answered already
		}
		m, ok := parseAuthenticate(msg)
		if !ok || !n.verifyAuthenticate(m, st.server, accepted) {
			return Verdict{Leg: typ}
		}
		conn.SetValue(key, ntlmState{authenticated: true})
		return Verdict{Authorized: true, Leg: typ}
	default:
		return Verdict{Leg: typ}
	}
}

// serverChallenge fills b from Rand.
func (n *NTLM) serverChallenge(b []byte) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	src := n.Rand
	if src == nil {
		src = rand.Reader
	}
	_, err := io.ReadFull(src, b)
	return err == nil
}

// decodeNTLM decodes the base64 token of an NTLM credentials value and
// returns the message and its type (1 to 3; 0 for any other).
func decodeNTLM(token string) (msg []byte, typ int, ok bool) {
	token = strings.Trim(token, " \t")
	msg, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		if msg, err = base64.RawStdEncoding.DecodeString(token); err != nil {
			return nil, 0, false
		}
	}
	if len(msg) < 12 || !bytes.Equal(msg[:8], ntlmSignature) {
		return nil, 0, false
	}
	if t := binary.LittleEndian.Uint32(msg[8:12]); t >= ntlmNegotiate && t <= ntlmAuthenticate {
		typ = int(t)
	}
	return msg, typ, true
}

// parseNegotiate checks a NEGOTIATE message (MS-NLMP section 2.2.1.1) and
// returns its flags. The domain and workstation it may carry are checked to
// lie within the message, and otherwise ignored.
func parseNegotiate(b []byte) (flags uint32, ok bool) {
	if len(b) < negotiateHeader {
		return 0, false
	}
	flags = binary.LittleEndian.Uint32(b[12:16])
	if len(b) >= 32 {
		for _, at := range []int{16, 24} {
			if _, ok := payload(b, at, 32); !ok {
				return 0, false
			}
		}
	}
	return flags, true
}

// authenticateMessage is what the verifier uses of an AUTHENTICATE message
// (MS-NLMP section 2.2.1.3).
type authenticateMessage struct {
	nt           []byte // NtChallengeResponse
	user, domain string
	flags        uint32
}

// parseAuthenticate parses an AUTHENTICATE message. Every field must lie
// within the message, after its fixed header; strings are UTF-16LE when the
// message's flags say Unicode, and OEM (read as Latin-1) otherwise.
func parseAuthenticate(b []byte) (*authenticateMessage, bool) {
	if len(b) < authenticateHeader || !bytes.Equal(b[:8], ntlmSignature) ||
		binary.LittleEndian.Uint32(b[8:12]) != ntlmAuthenticate {
		return nil, false
	}
	m := &authenticateMessage{flags: binary.LittleEndian.Uint32(b[60:64])}
	unicode := m.flags&flagUnicode != 0
	var fields [6][]byte // Lm, Nt, Domain, User, Workstation, EncryptedRandomSessionKey
	for i := range fields {
		f, ok := payload(b, 12+8*i, authenticateHeader)
		if !ok {
			return nil, false
		}
		fields[i] = f
	}
	m.nt = fields[1]
	var ok1, ok2, ok3 bool
	m.domain, ok1 = decodeString(fields[2], unicode)
	m.user, ok2 = decodeString(fields[3], unicode)
	_, ok3 = decodeString(fields[4], unicode)
	return m, ok1 && ok2 && ok3
}

// payload returns the bytes that the field descriptor at b[at:at+8] (Len,
// MaxLen, BufferOffset) points to. A non-empty field must start at or after
// min and end within b.
func payload(b []byte, at, min int) ([]byte, bool) {
	if at+8 > len(b) {
		return nil, false
	}
	n := uint64(binary.LittleEndian.Uint16(b[at:]))
	off := uint64(binary.LittleEndian.Uint32(b[at+4:]))
	if n == 0 {
		return nil, true
	}
	if off < uint64(min) || off+n > uint64(len(b)) {
		return nil, false
	}
	return b[off : off+n], true
}

// decodeString decodes a string of a message.
func decodeString(b []byte, unicode bool) (string, bool) {
	if !unicode {
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r), true
	}
	if len(b)%2 != 0 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u)), true
}

// verifyAuthenticate reports whether the NTLMv2 response of m answers server
// for one of accepted.
func (n *NTLM) verifyAuthenticate(m *authenticateMessage, server [8]byte, accepted []Credentials) bool {
	// An NTLMv2_RESPONSE: NTProofStr, then the blob (NTLMv2_CLIENT_CHALLENGE,
	// MS-NLMP section 2.2.2.7) whose AvPairs end with MsvAvEOL. An NTLMv1
	// response (24 bytes) and an anonymous one (empty) are too short.
	if len(m.nt) < ntProofLen+blobHeader+4 || m.user == "" {
		return false
	}
	proof, blob := m.nt[:ntProofLen], m.nt[ntProofLen:]
	if blob[0] != 1 || blob[1] != 1 || !validAVPairs(blob[blobHeader:]) {
		return false // RespType and HiRespType must be 1
	}
	match := 0
	for _, c := range accepted {
		same := 0
		if n.sameUser(c.Username, m.user, m.domain) {
			same = 1
		}
		want := ntProofStr(ntowfv2(c.Password, m.user, m.domain), server[:], blob)
		match |= same & subtle.ConstantTimeCompare(want, proof)
	}
	return match == 1
}

// validAVPairs reports whether b starts with a list of AV_PAIRs that ends
// with MsvAvEOL within b.
func validAVPairs(b []byte) bool {
	for len(b) >= 4 {
		id := binary.LittleEndian.Uint16(b)
		n := int(binary.LittleEndian.Uint16(b[2:]))
		if id == avEOL {
			return n == 0
		}
		if 4+n > len(b) {
			return false
		}
		b = b[4+n:]
	}
	return false
}

// ntowfv2 is NTOWFv2 (MS-NLMP section 3.3.2):
// HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain)).
func ntowfv2(password, user, domain string) []byte {
	h := md4.New()
	h.Write(utf16LE(password))
	return hmacMD5(h.Sum(nil), utf16LE(strings.ToUpper(user)+domain))
}

// ntProofStr is NTProofStr (MS-NLMP section 3.3.2): HMAC-MD5(NTOWFv2,
// server challenge + temp), where temp is the client's blob.
func ntProofStr(ntowf, server, blob []byte) []byte {
	return hmacMD5(ntowf, server, blob)
}

func hmacMD5(key []byte, data ...[]byte) []byte {
	h := hmac.New(md5.New, key)
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

// utf16LE encodes s in UTF-16LE.
func utf16LE(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// splitUser splits a user name written "DOMAIN\user", "user@domain" or
// "user" into the user and the domain ("" if none).
func splitUser(name string) (user, domain string) {
	if d, u, ok := strings.Cut(name, `\`); ok {
		return u, d
	}
	if i := strings.LastIndexByte(name, '@'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return name, ""
}

// sameUser reports whether the user and domain of an AUTHENTICATE message
// name the user of credentials username: see [NTLM] for the rules.
func (n *NTLM) sameUser(username, user, domain string) bool {
	cu, cd := splitUser(username)
	if domain == "" {
		user, domain = splitUser(user)
	}
	return cu != "" && strings.EqualFold(cu, user) && n.sameDomain(cd, domain)
}

// sameDomain reports whether a and b name the same domain, "" standing for
// Domain and DNSDomain for Domain.
func (n *NTLM) sameDomain(a, b string) bool {
	canon := func(d string) string {
		if d == "" || n.DNSDomain != "" && strings.EqualFold(d, n.DNSDomain) {
			return n.domain()
		}
		return d
	}
	return strings.EqualFold(canon(a), canon(b))
}

// challengeMessage builds the CHALLENGE message (MS-NLMP section 2.2.1.2)
// answering a NEGOTIATE with the given flags. It offers Unicode when the
// client does (OEM otherwise), NTLM, a target of type domain and TargetInfo,
// and echoes the client's 128, 56, always-sign and extended session security
// flags; never LM_KEY or KEY_EXCH, which NTLMv2-only clients refuse.
func (n *NTLM) challengeMessage(clientFlags uint32, server [8]byte) []byte {
	flags := flagNTLM | flagRequestTarget | flagTargetTypeDomain | flagTargetInfo | flagVersion
	flags |= clientFlags & (flagAlwaysSign | flagExtendedSecurity | flag128 | flag56)
	var target []byte
	if clientFlags&flagUnicode != 0 {
		flags |= flagUnicode
		target = utf16LE(n.domain())
	} else {
		flags |= flagOEM
		target = []byte(n.domain())
	}
	info := n.targetInfo()

	b := make([]byte, challengeHeader, challengeHeader+len(target)+len(info))
	copy(b, ntlmSignature)
	binary.LittleEndian.PutUint32(b[8:], ntlmChallenge)
	putField(b[12:], len(target), challengeHeader)
	binary.LittleEndian.PutUint32(b[20:], flags)
	copy(b[24:32], server[:])
	// b[32:40] is Reserved.
	putField(b[40:], len(info), challengeHeader+len(target))
	// Version (MS-NLMP section 2.2.2.10): 10.0 build 20348, NTLMSSP
	// revision 15.
	b[48], b[49] = 10, 0
	binary.LittleEndian.PutUint16(b[50:], 20348)
	b[55] = 15
	b = append(b, target...)
	return append(b, info...)
}

// targetInfo returns the AV_PAIR list of a CHALLENGE message.
func (n *NTLM) targetInfo() []byte {
	var b []byte
	add := func(id uint16, v []byte) {
		b = binary.LittleEndian.AppendUint16(b, id)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	add(avNbDomainName, utf16LE(n.domain()))
	add(avNbComputerName, utf16LE(n.computer()))
	if n.DNSDomain != "" {
		add(avDNSDomainName, utf16LE(n.DNSDomain))
	}
	now := time.Now
	if n.Now != nil {
		now = n.Now
	}
	ft := uint64(now().UnixNano()/100 + windowsEpoch)
	add(avTimestamp, binary.LittleEndian.AppendUint64(nil, ft))
	add(avEOL, nil)
	return b
}

// putField writes a field descriptor (Len, MaxLen, BufferOffset).
func putField(b []byte, n, off int) {
	binary.LittleEndian.PutUint16(b, uint16(n))
	binary.LittleEndian.PutUint16(b[2:], uint16(n))
	binary.LittleEndian.PutUint32(b[4:], uint32(off))
}
