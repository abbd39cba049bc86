package challenge

import (
	"reflect"
	"strings"
	"testing"
)

type params = map[string]string

func TestParse(t *testing.T) {
	tests := []struct {
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.fields)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Parse(%q) = %v, %v, want %v, <nil>", tt.fields, got, err, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		fields []string
		want   []Challenge // best-effort result
	}{
		{"unterminated quoted string", []string{`Basic realm="unterminated`},
			[]Challenge{{Scheme: "Basic"}}},
		{"missing scheme", []string{`=foo`}, nil},
		{"missing value", []string{`Basic realm=`}, []Challenge{{Scheme: "Basic"}}},
		{"missing value then next param", []string{`Basic realm=, charset="UTF-8"`},
			[]Challenge{{Scheme: "Basic", Params: params{"charset": "UTF-8"}}}},
		{"missing comma", []string{`Digest realm="x" nonce="y"`},
			[]Challenge{{Scheme: "Digest", Params: params{"realm": "x", "nonce": "y"}}}},
		{"junk after param", []string{`Basic realm="x" junk, Digest nonce="n"`},
			[]Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}, {Scheme: "Digest", Params: params{"nonce": "n"}}}},
		{"duplicate param keeps first", []string{`Basic realm="a", REALM="b"`},
			[]Challenge{{Scheme: "Basic", Params: params{"realm": "a"}}}},
		{"non-ascii in scheme", []string{"B\xc3\xa4sic realm=\"x\", NTLM"}, []Challenge{{Scheme: "NTLM"}}},
		{"non-ascii in param name", []string{"Basic r\xc3\xa9alm=\"x\""}, []Challenge{{Scheme: "Basic"}}},
		{"nul in quoted string", []string{"Basic realm=\"a\x00b\", charset=\"UTF-8\""},
			[]Challenge{{Scheme: "Basic", Params: params{"charset": "UTF-8"}}}},
		{"nul in scheme", []string{"Ba\x00sic"}, nil},
		{"no space after scheme", []string{`Basic"x", NTLM`}, []Challenge{{Scheme: "NTLM"}}},
		{"two token68", []string{`Negotiate abc def`}, []Challenge{{Scheme: "Negotiate"}}},
		{"cr lf", []string{"Basic realm=\"x\"\r\n"}, []Challenge{{Scheme: "Basic", Params: params{"realm": "x"}}}},
		{"error in second field", []string{`NTLM`, `Basic realm="x`}, []Challenge{{Scheme: "NTLM"}, {Scheme: "Basic"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.fields)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, <nil>, want an error", tt.fields, got)
			}
			if !strings.HasPrefix(err.Error(), "challenge: ") {
				t.Errorf("Parse(%q) error = %q, want prefix %q", tt.fields, err, "challenge: ")
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

func TestParseLongInput(t *testing.T) {
	// Many params and many challenges in one field; a quadratic parser would
	// be noticeably slow here.
	var b strings.Builder
	for i := 0; i < 20000; i++ {
		b.WriteString(`Digest realm="r", nonce="n", `)
	}
	got, err := Parse([]string{b.String()})
	if err != nil || len(got) != 20000 {
		t.Errorf("Parse(long) = %d challenges, %v, want 20000, <nil>", len(got), err)
	}
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

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`Basic realm="proxy"`,
		`Digest realm="squid", nonce="abc", qop="auth,auth-int", algorithm=MD5, stale=false`,
		`Digest realm="squid", nonce="abc", qop="auth,auth-int", algorithm=SHA-256, stale=false`,
		`Basic realm="a, b=c", Digest realm="x", nonce="y", qop="auth"`,
		"Basic realm=\"r1\"\nDigest realm=\"r2\", nonce=\"n\"", // two fields
		`NTLM`,
		`Negotiate`,
		`NTLM TlRMTVNTUAACAAAA==`,
		`Negotiate, NTLM, Basic realm="x"`,
		`basic REALM="x"`,
		`Bearer realm="example", error="invalid_token", error_description="The access token expired"`,
		`Basic realm="quoted \"inner\" \\ slash"`,
		`Basic realm=unquoted-token`,
		`Basic   realm = "x"`,
		"\t , Basic\trealm=\"x\" , ",
		`Basic realm="unterminated`,
		`=foo`,
		`Basic realm=`,
		`Digest realm="x" nonce="y"`,
		"B\xc3\xa4sic realm=\"x\"",
		"Basic realm=\"a\x00b\"",
		`Basic realm="x",,,, ,`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		fields := strings.Split(in, "\n")
		got, err := Parse(fields)
		for _, c := range got {
			if c.Scheme == "" {
				t.Errorf("Parse(%q) = %v, want non-empty schemes", fields, got)
			}
			if c.Params != nil && (len(c.Params) == 0 || c.Token68 != "") {
				t.Errorf("Parse(%q) = %v, want nil or non-empty Params and never both Params and Token68", fields, got)
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
	})
}
