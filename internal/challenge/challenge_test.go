package challenge

import (
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type params = map[string]string

// Real-world blobs: an NTLM type 2 message (IIS, target CONTOSO) and a
// SPNEGO negTokenResp (IIS Kerberos mutual authentication).
const (
	ntlmType2 = "TlRMTVNTUAACAAAADgAOADAAAAAFgomiTPsZHn3qcNsAAAAAAAAAABYAFgA+AAAAQwBPAE4AVABPAFMATwACAA4AQwBPAE4AVABPAFMATwAAAAAAAAA="
	spnego    = "oYH1MIHyoAMKAQChCwYJKoZIgvcSAQICooHdBIHapKvURIxJVi2CgRXROh/M6pJ/UrTVRZKX+LQ+QtqJI4vBNibkPcs43bCCSIkn7JBPtCBXRDmD6IWFF51QVRr+YqSr1ESMSVYtgoEV0TofzOqSf1K01UWSl/i0PkLaiSOLwTYm5D3LON2wgkiJJ+yQT7QgV0Q5g+iFhRedUFUa/mKkq9REjElWLYKBFdE6H8zqkn9StNVFkpf4tD5C2okji8E2JuQ9yzjdsIJIiSfskE+0IFdEOYPohYUXnVBVGg=="

	squidBasic  = `Basic realm="Squid proxy-caching web server"`
	squidDigest = `Digest realm="Squid proxy-caching web server", nonce="5oUwZQAAAADQmeMIAAAAAOgNjCoAAAAA", qop="auth", stale=false`
)

var (
	squidBasicWant  = Challenge{Scheme: "Basic", Params: params{"realm": "Squid proxy-caching web server"}}
	squidDigestWant = Challenge{Scheme: "Digest", Params: params{"realm": "Squid proxy-caching web server", "nonce": "5oUwZQAAAADQmeMIAAAAAOgNjCoAAAAA", "qop": "auth", "stale": "false"}}
)

// repeated returns n copies of s.
func repeated[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// manyParams returns n distinct auth-params "p0=v0, p1=v1, ..." and the
// params map of the first max(n, keep) of them.
func manyParams(n, keep int) (string, params) {
	var b strings.Builder
	m := params{}
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "p%d=v%d", i, i)
		if i < keep {
			m["p"+strconv.Itoa(i)] = "v" + strconv.Itoa(i)
		}
	}
	return b.String(), m
}

var (
	params64, params64Want = manyParams(maxParams, maxParams)
	params65, params65Want = manyParams(maxParams+1, maxParams)
)

// validCases parse without error.
var validCases = []struct {
	name   string
	fields []string
	want   []Challenge
}{
	{"basic", []string{`Basic realm="proxy"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "proxy"}}}},
	{"digest md5 squid",
		[]string{`Digest realm="squid", nonce="abc", qop="auth,auth-int", algorithm=MD5, stale=false`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "squid", "nonce": "abc", "qop": "auth,auth-int", "algorithm": "MD5", "stale": "false"}}}},
	{"digest sha-256",
		[]string{`Digest realm="squid", nonce="abc", qop="auth,auth-int", algorithm=SHA-256, stale=false`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "squid", "nonce": "abc", "qop": "auth,auth-int", "algorithm": "SHA-256", "stale": "false"}}}},
	{"two challenges in one field",
		[]string{`Basic realm="a, b=c", Digest realm="x", nonce="y", qop="auth"`},
		[]Challenge{
			{Scheme: "Basic", Params: params{"realm": "a, b=c"}},
			{Scheme: "Digest", Params: params{"realm": "x", "nonce": "y", "qop": "auth"}},
		}},
	{"two fields",
		[]string{`Basic realm="r1"`, `Digest realm="r2", nonce="n"`},
		[]Challenge{
			{Scheme: "Basic", Params: params{"realm": "r1"}},
			{Scheme: "Digest", Params: params{"realm": "r2", "nonce": "n"}},
		}},
	{"bare ntlm", []string{`NTLM`}, []Challenge{{Scheme: "NTLM"}}},
	{"bare negotiate", []string{`Negotiate`}, []Challenge{{Scheme: "Negotiate"}}},
	{"ntlm token68", []string{`NTLM TlRMTVNTUAACAAAA==`},
		[]Challenge{{Scheme: "NTLM", Token68: "TlRMTVNTUAACAAAA=="}}},
	{"negotiate token68 with slash and plus", []string{`Negotiate YII+/abc=`},
		[]Challenge{{Scheme: "Negotiate", Token68: "YII+/abc="}}},
	{"token68 then next challenge", []string{`Negotiate abc=, Basic realm="x"`},
		[]Challenge{{Scheme: "Negotiate", Token68: "abc="}, {Scheme: "Basic", Params: params{"realm": "x"}}}},
	{"three challenges", []string{`Negotiate, NTLM, Basic realm="x"`},
		[]Challenge{{Scheme: "Negotiate"}, {Scheme: "NTLM"}, {Scheme: "Basic", Params: params{"realm": "x"}}}},
	{"case insensitive", []string{`basic REALM="x"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}},
	{"unknown scheme keeps case", []string{`X-Custom Foo=bar`},
		[]Challenge{{Scheme: "X-Custom", Params: params{"foo": "bar"}}}},
	{"bearer",
		[]string{`Bearer realm="example", error="invalid_token", error_description="The access token expired"`},
		[]Challenge{{Scheme: "Bearer", Params: params{"realm": "example", "error": "invalid_token", "error_description": "The access token expired"}}}},
	{"escapes", []string{`Basic realm="quoted \"inner\" \\ slash"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": `quoted "inner" \ slash`}}}},
	{"empty quoted string", []string{`Basic realm=""`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": ""}}}},
	{"utf-8 in quoted string (obs-text)", []string{"Basic realm=\"caf\xc3\xa9\""},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "caf\xc3\xa9"}}}},
	{"unquoted token", []string{`Basic realm=unquoted-token`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "unquoted-token"}}}},
	{"bws around equals", []string{`Basic   realm = "x"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}},
	{"leading and trailing space and commas", []string{`  , Basic realm="x" ,  `},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}},
	{"tabs", []string{"\tBasic\trealm\t=\t\"x\"\t,\tcharset=\"UTF-8\"\t"},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x", "charset": "UTF-8"}}}},
	{"empty list elements", []string{`Basic realm="x",,,, ,`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}},
	{"empty elements between params", []string{`Digest realm="x", , ,nonce="y"`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "x", "nonce": "y"}}}},
	{"bare scheme with trailing space", []string{`Negotiate  , NTLM `},
		[]Challenge{{Scheme: "Negotiate"}, {Scheme: "NTLM"}}},
	{"empty field", []string{""}, nil},
	{"only separators", []string{" , ,\t"}, nil},
	{"no fields", nil, nil},

	// Real-world headers.
	{"squid basic", []string{squidBasic}, []Challenge{squidBasicWant}},
	{"squid digest", []string{squidDigest}, []Challenge{squidDigestWant}},
	{"squid basic and digest as two fields", []string{squidBasic, squidDigest},
		[]Challenge{squidBasicWant, squidDigestWant}},
	{"squid digest and basic in one field", []string{squidDigest + ", " + squidBasic},
		[]Challenge{squidDigestWant, squidBasicWant}},
	{"nginx and apache basic", []string{`Basic realm="Restricted"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "Restricted"}}}},
	{"iis negotiate and ntlm as two fields", []string{`Negotiate`, `NTLM`},
		[]Challenge{{Scheme: "Negotiate"}, {Scheme: "NTLM"}}},
	{"iis ntlm type 2 with padding", []string{"NTLM " + ntlmType2},
		[]Challenge{{Scheme: "NTLM", Token68: ntlmType2}}},
	{"iis negotiate spnego with padding", []string{"Negotiate " + spnego},
		[]Challenge{{Scheme: "Negotiate", Token68: spnego}}},
	{"iis ntlm blob then basic", []string{"NTLM " + ntlmType2 + `, Basic realm="iis.example"`},
		[]Challenge{{Scheme: "NTLM", Token68: ntlmType2}, {Scheme: "Basic", Params: params{"realm": "iis.example"}}}},
	{"token68 with every token68 character", []string{`Negotiate aZ09-._~+/==`},
		[]Challenge{{Scheme: "Negotiate", Token68: "aZ09-._~+/=="}}},
	{"rfc 7616 sha-256 and md5 with opaque", []string{
		`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", ` +
			`Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"`},
		[]Challenge{
			{Scheme: "Digest", Params: params{"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "SHA-256", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"}},
			{Scheme: "Digest", Params: params{"realm": "http-auth@example.org", "qop": "auth, auth-int", "algorithm": "MD5", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "opaque": "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"}},
		}},
	{"rfc 7616 sha-512-256 with userhash and charset", []string{
		`Digest realm="api@example.org", qop="auth", algorithm=SHA-512-256, nonce="5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", opaque="HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", charset=UTF-8, userhash=true`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "api@example.org", "qop": "auth", "algorithm": "SHA-512-256", "nonce": "5TsQWLVdgBdmrQ0XsxbDODV+57QdFR34I9HAbC/RVvkK", "opaque": "HRPCssKJSGjCrkzDg8OhwpzCiGPChXYjwrI2QmXDnsOS", "charset": "UTF-8", "userhash": "true"}}}},
	{"digest md5-sess with domain and empty opaque", []string{`Digest realm="proxy", domain="/ http://other.example/", nonce="abc", opaque="", algorithm=MD5-sess, qop="auth", stale=TRUE`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "proxy", "domain": "/ http://other.example/", "nonce": "abc", "opaque": "", "algorithm": "MD5-sess", "qop": "auth", "stale": "TRUE"}}}},
	{"bearer error_description with commas and escaped quotes", []string{
		`Bearer realm="example", error="invalid_token", error_description="The token \"abc, def\" expired, renew it, please", scope="openid profile"`},
		[]Challenge{{Scheme: "Bearer", Params: params{"realm": "example", "error": "invalid_token", "error_description": `The token "abc, def" expired, renew it, please`, "scope": "openid profile"}}}},
	{"basic with charset (rfc 7617)", []string{`Basic realm="foo", charset="UTF-8"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "foo", "charset": "UTF-8"}}}},
	{"commas inside quotes", []string{`Digest realm="a,b", nonce=",,,", qop="auth,auth-int"`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "a,b", "nonce": ",,,", "qop": "auth,auth-int"}}}},
	{"equals inside quotes", []string{`Basic realm="a=b==c", charset="=", NTLM`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "a=b==c", "charset": "="}}, {Scheme: "NTLM"}}},
	{"empty quoted strings everywhere", []string{`Digest realm="", nonce="", opaque=""`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "", "nonce": "", "opaque": ""}}}},
	{"quoted-pair of ordinary characters", []string{`Basic realm="\a\b\ \,"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "ab ,"}}}},
	{"odd whitespace", []string{"Digest  \t realm  =\t\"x\" ,nonce= y  ,   qop =\"auth\"\t, \t NTLM \t"},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "x", "nonce": "y", "qop": "auth"}}, {Scheme: "NTLM"}}},
	{"space before comma between challenges", []string{`Basic realm="x" , Negotiate ` + "\t, NTLM"},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}, {Scheme: "Negotiate"}, {Scheme: "NTLM"}}},
	{"mixed case scheme and param names", []string{`dIgEsT ReAlM="X", NONCE="Y", QoP="auth", Algorithm=sha-256, nEgOtIaTe, ntlm ` + ntlmType2},
		[]Challenge{
			{Scheme: "Digest", Params: params{"realm": "X", "nonce": "Y", "qop": "auth", "algorithm": "sha-256"}},
			{Scheme: "Negotiate"},
			{Scheme: "NTLM", Token68: ntlmType2},
		}},
	{"leading commas and empty elements between challenges", []string{`,,, Basic realm="x", , ,NTLM,,`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}, {Scheme: "NTLM"}}},
	{"only commas", []string{`,,,`}, nil}, // empty list elements are valid (RFC 9110, 5.6.1)
	{"empty and separator-only fields between challenges", []string{"", squidBasic, " , ", "NTLM"},
		[]Challenge{squidBasicWant, {Scheme: "NTLM"}}},
	{"token68 without padding", []string{`Basic dXNlcjpwYXNz`},
		[]Challenge{{Scheme: "Basic", Token68: "dXNlcjpwYXNz"}}},
	{"hoba and mutual", []string{`HOBA challenge="abc", max-age=10, Mutual realm="m", version=1, algorithm=iso-kam3-dl-2048-sha256, auth-scheme=Basic`},
		[]Challenge{
			{Scheme: "HOBA", Params: params{"challenge": "abc", "max-age": "10"}},
			{Scheme: "Mutual", Params: params{"realm": "m", "version": "1", "algorithm": "iso-kam3-dl-2048-sha256", "auth-scheme": "Basic"}},
		}},
	{"exactly 64 challenges", []string{strings.Repeat("NTLM, ", maxChallenges)},
		repeated(Challenge{Scheme: "NTLM"}, maxChallenges)},
	{"exactly 64 challenges across fields", repeated(`Basic realm="x"`, maxChallenges),
		repeated(Challenge{Scheme: "Basic", Params: params{"realm": "x"}}, maxChallenges)},
	{"exactly 64 params", []string{"X-Custom " + params64},
		[]Challenge{{Scheme: "X-Custom", Params: params64Want}}},
}

// malformedCases yield an error containing errSub and the best-effort
// result want.
var malformedCases = []struct {
	name   string
	fields []string
	want   []Challenge
	errSub string
}{
	{"unterminated quoted string", []string{`Basic realm="unterminated`},
		[]Challenge{{Scheme: "Basic"}}, "unterminated quoted-string"},
	{"missing scheme", []string{`=foo`}, nil, "expected auth-scheme"},
	{"missing value", []string{`Basic realm=`}, []Challenge{{Scheme: "Basic"}}, "expected auth-param value"},
	{"missing value then next param", []string{`Basic realm=, charset="UTF-8"`},
		[]Challenge{{Scheme: "Basic", Params: params{"charset": "UTF-8"}}}, "expected auth-param value"},
	{"missing comma", []string{`Digest realm="x" nonce="y"`},
		[]Challenge{{Scheme: "Digest", Params: params{"realm": "x", "nonce": "y"}}}, "expected ','"},
	{"junk after param", []string{`Basic realm="x" junk, Digest nonce="n"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}, {Scheme: "Digest", Params: params{"nonce": "n"}}}, "expected ','"},
	{"duplicate param keeps first", []string{`Basic realm="a", REALM="b"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "a"}}}, "duplicate auth-param"},
	{"non-ascii in scheme", []string{"B\xc3\xa4sic realm=\"x\", NTLM"}, []Challenge{{Scheme: "NTLM"}}, "expected whitespace after auth-scheme"},
	{"non-ascii in param name", []string{"Basic r\xc3\xa9alm=\"x\""}, []Challenge{{Scheme: "Basic"}}, "expected '=' after auth-param name"},
	{"nul in quoted string", []string{"Basic realm=\"a\x00b\", charset=\"UTF-8\""},
		[]Challenge{{Scheme: "Basic", Params: params{"charset": "UTF-8"}}}, "invalid byte in quoted-string"},
	{"nul in scheme", []string{"Ba\x00sic"}, nil, "expected whitespace after auth-scheme"},
	{"no space after scheme", []string{`Basic"x", NTLM`}, []Challenge{{Scheme: "NTLM"}}, "expected whitespace after auth-scheme"},
	{"two token68", []string{`Negotiate abc def`}, []Challenge{{Scheme: "Negotiate"}}, "expected '=' after auth-param name"},
	{"cr lf", []string{"Basic realm=\"x\"\r\n"}, []Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}, "expected ','"},
	{"error in second field", []string{`NTLM`, `Basic realm="x`}, []Challenge{{Scheme: "NTLM"}, {Scheme: "Basic"}}, "field 1, offset 12: unterminated quoted-string"},

	// Garbage.
	{"lone quote", []string{`"`}, nil, "expected auth-scheme"},
	{"lone quote after a challenge", []string{`Basic realm="x", "`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}, "expected auth-scheme"},
	{"unbalanced quotes swallow the next challenge", []string{`Basic realm="x, Digest nonce="y"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x, Digest nonce="}}}, "expected ','"},
	{"stray quote after a quoted string", []string{`Basic realm="x"", NTLM`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}, "expected ','"},
	{"quote inside a token value", []string{`Digest algorithm=MD5"x", nonce="n"`},
		[]Challenge{{Scheme: "Digest", Params: params{"nonce": "n"}}}, "invalid byte in auth-param value"},
	{"trailing backslash in quoted string", []string{`Basic realm="abc\`}, []Challenge{{Scheme: "Basic"}}, "unterminated quoted-string"},
	{"control character after backslash", []string{"Basic realm=\"a\\\x01\", NTLM"},
		[]Challenge{{Scheme: "Basic"}, {Scheme: "NTLM"}}, "invalid byte in quoted-string"},
	{"three commas then garbage", []string{`,,,=,,,`}, nil, "expected auth-scheme"},
	{"non-ascii in token value", []string{"Basic realm=caf\xc3\xa9, NTLM"},
		[]Challenge{{Scheme: "Basic"}, {Scheme: "NTLM"}}, "invalid byte in auth-param value"},
	{"non-ascii in token68", []string{"NTLM TlRM\xff, Basic realm=\"x\""},
		[]Challenge{{Scheme: "NTLM"}, {Scheme: "Basic", Params: params{"realm": "x"}}}, "expected '=' after auth-param name"},
	{"non-ascii list element", []string{"Basic realm=\"x\", \x80\x81, NTLM"},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}, {Scheme: "NTLM"}}, "expected auth-scheme"},
	{"nul after bare scheme", []string{"NTLM\x00, Basic realm=\"x\""},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}, "expected whitespace after auth-scheme"},
	{"nul list element", []string{"Basic realm=\"x\",\x00, NTLM"},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}, {Scheme: "NTLM"}}, "expected auth-scheme"},
	{"cr lf inside quoted string", []string{"Basic realm=\"x\r\ny\", NTLM"},
		[]Challenge{{Scheme: "Basic"}, {Scheme: "NTLM"}}, "invalid byte in quoted-string"},
	{"obs-fold between challenges", []string{"Basic realm=\"x\",\r\n NTLM"},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}, "expected auth-scheme"},
	{"cr lf after scheme", []string{"Basic\r\nrealm=\"x\", NTLM"},
		[]Challenge{{Scheme: "NTLM"}}, "expected whitespace after auth-scheme"},
	{"scheme followed by equals", []string{`Basic=realm, NTLM`},
		[]Challenge{{Scheme: "NTLM"}}, "expected auth-scheme before auth-param"},
	{"scheme followed by spaced equals", []string{`Basic = "x", NTLM`},
		[]Challenge{{Scheme: "NTLM"}}, "expected auth-scheme before auth-param"},
	{"token68 followed by params", []string{`Negotiate abc=, realm="x"`},
		[]Challenge{{Scheme: "Negotiate", Token68: "abc="}}, "expected auth-scheme before auth-param"},
	{"token68 and params without comma", []string{`NTLM abc== realm="x"`},
		[]Challenge{{Scheme: "NTLM"}}, "expected auth-param value"},
	{"params without scheme", []string{`realm="x", nonce="y"`}, nil, "expected auth-scheme before auth-param"},
	{"params without scheme then challenge", []string{`realm = "x", Basic realm="y"`},
		[]Challenge{{Scheme: "Basic", Params: params{"realm": "y"}}}, "expected auth-scheme before auth-param"},
	{"unterminated quoted string hides the next challenge", []string{`Bearer error="invalid_token", error_description="expired, NTLM`},
		[]Challenge{{Scheme: "Bearer", Params: params{"error": "invalid_token"}}}, "unterminated quoted-string"},

	// Limits.
	{"65 challenges in one field", []string{strings.Repeat("NTLM, ", maxChallenges+1)},
		repeated(Challenge{Scheme: "NTLM"}, maxChallenges), "field 0, offset 384: more than 64 challenges"},
	{"65 challenges across fields", repeated(`Basic realm="x"`, maxChallenges+1),
		repeated(Challenge{Scheme: "Basic", Params: params{"realm": "x"}}, maxChallenges), "field 64, offset 0: more than 64 challenges"},
	{"64 challenges then garbage", append(repeated("NTLM", maxChallenges), `"`),
		repeated(Challenge{Scheme: "NTLM"}, maxChallenges), "more than 64 challenges"},
	{"65 params", []string{"X-Custom " + params65},
		[]Challenge{{Scheme: "X-Custom", Params: params65Want}}, "more than 64 auth-params"},
	{"65 params then next challenge", []string{"X-Custom " + params65 + `, Basic realm="x"`},
		[]Challenge{{Scheme: "X-Custom", Params: params65Want}, {Scheme: "Basic", Params: params{"realm": "x"}}}, "more than 64 auth-params"},
	{"duplicates count towards the param limit", []string{"X-Custom " + strings.Repeat(`A="\"", `, maxParams) + "b=c"},
		[]Challenge{{Scheme: "X-Custom", Params: params{"a": `"`}}}, "duplicate auth-param"},
}

func TestCaseCount(t *testing.T) {
	if n := len(validCases) + len(malformedCases); n < 40 {
		t.Errorf("%d table cases, want at least 40", n)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range validCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.fields)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %v, %v, want %v, <nil>", tt.fields, got, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, tt := range malformedCases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.fields)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, <nil>, want an error", tt.fields, got)
			}
			if !strings.HasPrefix(err.Error(), "challenge: ") || !strings.Contains(err.Error(), tt.errSub) {
				t.Errorf("Parse(%q) error = %q, want prefix %q and %q in it", tt.fields, err, "challenge: ", tt.errSub)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %v, want %v", tt.fields, got, tt.want)
			}
		})
	}
}

func TestParseErrorDoesNotEchoInput(t *testing.T) {
	secret := strings.Repeat("S", 200)
	in := `Basic realm="` + secret
	_, err := Parse([]string{in})
	if err == nil {
		t.Fatalf("Parse(%q) = _, <nil>, want an error", in)
	}
	if strings.Contains(err.Error(), strings.Repeat("S", maxSnippet+1)) || len(err.Error()) > 120 {
		t.Errorf("Parse(%q) error = %q, want at most %d input bytes quoted", in, err, maxSnippet)
	}
}

// TestParseHostileInput checks that Parse stops at its limits and that what
// it allocates does not grow with the input it skips: a parser that kept
// every challenge, or allocated per skipped element, would allocate
// hundreds of thousands of times or megabytes here. A quadratic one would
// not finish.
func TestParseHostileInput(t *testing.T) {
	const size = 10 << 20
	fill := func(prefix, unit, suffix string) []string {
		return []string{prefix + strings.Repeat(unit, (size-len(prefix)-len(suffix))/len(unit)+1) + suffix}
	}
	distinct := []byte("X-Custom ") // "p0=v, p1=v, ..." up to 10 MB
	for i := 0; len(distinct) < size; i++ {
		distinct = append(strconv.AppendInt(append(distinct, 'p'), int64(i), 10), "=v, "...)
	}
	distinct = append(distinct, "NTLM"...)

	tooMany := "more than " + strconv.Itoa(maxChallenges) + " challenges"
	tooManyParams := "more than " + strconv.Itoa(maxParams) + " auth-params"
	tests := []struct {
		name    string
		fields  []string
		want    int    // challenges
		params  int    // params in the first one
		errSub  string // "" for no error
		maxSize int    // bytes Parse may allocate
	}{
		{"10000 challenges in one field", []string{strings.Repeat(`Basic realm="x", `, 10000)}, maxChallenges, 1, tooMany, 64 << 10},
		{"10000 fields", repeated(squidDigest, 10000), maxChallenges, 4, tooMany, 64 << 10},
		{"10000 garbage fields", repeated(`"`, 10000), 0, 0, "expected auth-scheme", 4 << 10},
		{"10 MB of challenges", fill("", `Digest realm="r", nonce="n", `, ""), maxChallenges, 2, tooMany, 64 << 10},
		{"10 MB of escaped challenges", fill("", `Basic realm="\"", `, ""), maxChallenges, 1, tooMany, 64 << 10},
		{"10 MB of params", []string{string(distinct)}, 2, maxParams, tooManyParams, 64 << 10},
		{"10 MB of duplicate params", fill("Basic ", `REALM="a\"b", `, "NTLM"), 2, 1, "duplicate auth-param", 4 << 10},
		{"10 MB of params without scheme", fill("", `realm="x", `, ""), 0, 0, "expected auth-scheme before auth-param", 4 << 10},
		{"10 MB of commas", fill("", ",", "NTLM"), 1, 0, "", 4 << 10},
		{"10 MB of quotes", fill("", `"`, ""), 0, 0, "expected auth-scheme", 4 << 10},
		{"10 MB of non-ascii", fill("", "\xff", ""), 0, 0, "expected auth-scheme", 4 << 10},
		{"10 MB of nul", fill("", "\x00", ""), 0, 0, "expected auth-scheme", 4 << 10},
		{"10 MB unterminated quoted string", fill(`Basic realm="`, `x\"`, ""), 1, 0, "unterminated quoted-string", 4 << 10},
		{"10 MB of bad quoted-strings", fill("Basic ", "realm=\"\x01\", ", ""), 1, 0, "invalid byte in quoted-string", 4 << 10},
		{"10 MB token68", fill("Negotiate ", "A", "=="), 1, 0, "", 4 << 10},
		{"10 MB token68 then junk", fill("Negotiate ", "A", " B"), 1, 0, "expected '=' after auth-param name", 4 << 10},
		{"10 MB scheme", fill("", "A", ""), 1, 0, "", 4 << 10},
		{"10 MB of missing commas", fill("Digest ", `a=b `, ""), 1, 1, "expected ','", 4 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.fields)
			if len(got) != tt.want || tt.want > 0 && len(got[0].Params) != tt.params {
				n := 0
				if len(got) > 0 {
					n = len(got[0].Params)
				}
				t.Errorf("Parse = %d challenges, the first with %d params, want %d and %d", len(got), n, tt.want, tt.params)
			}
			if tt.errSub == "" && err != nil || tt.errSub != "" && (err == nil || !strings.Contains(err.Error(), tt.errSub)) {
				t.Errorf("Parse error = %v, want %q", err, tt.errSub)
			}
			// At most a few allocations per returned challenge and param,
			// plus a few for the error.
			maxAllocs := 16.0
			for _, c := range got {
				maxAllocs += 4 + float64(len(c.Params))/2
			}
			if allocs := testing.AllocsPerRun(1, func() { _, _ = Parse(tt.fields) }); allocs > maxAllocs {
				t.Errorf("Parse allocates %v times, want at most %v", allocs, maxAllocs)
			}
			if n := allocBytes(func() { _, _ = Parse(tt.fields) }); n > uint64(tt.maxSize) {
				t.Errorf("Parse allocates %d bytes, want at most %d", n, tt.maxSize)
			}
		})
	}
}

// allocBytes returns how many heap bytes f allocates. The counter is the
// whole process's, so other goroutines (the runtime's, the race detector's)
// can only add to it: the least of a few runs is f's own.
func allocBytes(f func()) uint64 {
	least := uint64(math.MaxUint64)
	for range 5 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

func TestCanonical(t *testing.T) {
	tests := []struct{ in, want string }{
		{"basic", "Basic"},
		{"BASIC", "Basic"},
		{"dIgEsT", "Digest"},
		{"ntlm", "NTLM"},
		{"negotiate", "Negotiate"},
		{"bearer", "Bearer"},
		{"Mutual", "Mutual"},
		{"baſic", "baſic"}, // no Unicode case folding
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := Canonical(tt.in); got != tt.want {
				t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// format writes challenges back as one field value, params in sorted order
// and always quoted.
func format(cs []Challenge) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(c.Scheme)
		if c.Token68 != "" {
			b.WriteString(" " + c.Token68)
		}
		for j, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range c.Params {
				if !yield(k) {
					return
				}
			}
		}) {
			if j == 0 {
				b.WriteByte(' ')
			} else {
				b.WriteString(", ")
			}
			v := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(c.Params[k])
			b.WriteString(k + `="` + v + `"`)
		}
	}
	return b.String()
}

func FuzzParseChallenges(f *testing.F) {
	// The fuzz input is the fields joined by "\n" (so a seed whose field
	// holds a "\n" becomes two fields).
	for _, tt := range validCases {
		f.Add(strings.Join(tt.fields, "\n"))
	}
	for _, tt := range malformedCases {
		f.Add(strings.Join(tt.fields, "\n"))
	}
	for _, s := range []string{
		"Basic realm=\"r1\"\nDigest realm=\"r2\", nonce=\"n\"", // two fields
		"\t , Basic\trealm=\"x\" , ",
		"B\xc3\xa4sic realm=\"x\"",
		"Basic realm=\"a\x00b\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fields := strings.Split(in, "\n")
		got, err := Parse(fields)
		if len(got) > maxChallenges {
			t.Errorf("Parse(%q) = %d challenges, want at most %d", fields, len(got), maxChallenges)
		}
		for _, c := range got {
			if c.Scheme == "" {
				t.Errorf("Parse(%q) = %v, want non-empty schemes", fields, got)
			}
			if c.Params != nil && (len(c.Params) == 0 || c.Token68 != "") {
				t.Errorf("Parse(%q) = %v, want nil or non-empty Params and never both Params and Token68", fields, got)
			}
			if len(c.Params) > maxParams {
				t.Errorf("Parse(%q) = %v, want at most %d params per challenge", fields, got, maxParams)
			}
			for k := range c.Params {
				if k != strings.ToLower(k) {
					t.Errorf("Parse(%q) = %v, want lower-case param keys", fields, got)
				}
			}
		}
		if err != nil && (!strings.HasPrefix(err.Error(), "challenge: ") || len(err.Error()) > 200) {
			t.Errorf("Parse(%q) error = %q, want a short error starting with %q", fields, err, "challenge: ")
		}
		got2, err2 := Parse(fields)
		if !reflect.DeepEqual(got, got2) || (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Errorf("Parse(%q) = %v, %v, then %v, %v, want deterministic results", fields, got, err, got2, err2)
		}
		// Fields are parsed independently: the challenges of a prefix of
		// the fields are a prefix of the challenges.
		if len(fields) > 1 {
			head, _ := Parse(fields[:len(fields)-1])
			if len(head) > len(got) || len(head) > 0 && !reflect.DeepEqual(head, got[:len(head)]) {
				t.Errorf("Parse(%q) = %v, but the fields before the last give %v", fields, got, head)
			}
		}
		// What Parse returns is well-formed: written back, it parses to the
		// same challenges without error.
		if out := format(got); out != "" {
			again, err := Parse([]string{out})
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("Parse(%q) = %v, written back as %q parses to %v, %v", fields, got, out, again, err)
			}
		}
	})
}
