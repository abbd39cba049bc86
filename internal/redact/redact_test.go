package redact

import (
	"net/url"
	"strings"
	"testing"
)

func TestRaw(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no userinfo", "http://proxy:3128", "http://proxy:3128"},
		{"user and password", "http://u:secret@proxy:3128", "http://xxxxx@proxy:3128"},
		{"at sign in password", "http://u:p@ss@proxy:3128", "http://xxxxx@proxy:3128"},
		{"hash and slash in password", "http://u:p#s/s@proxy:3128", "http://xxxxx@proxy:3128"},
		{"no scheme", "u:secret@proxy:3128", "xxxxx@proxy:3128"},
		{"empty", "", ""},
		{"host and port", "proxy:3128", "proxy:3128"},
		{"IPv6", "http://[::1]:3128", "http://[::1]:3128"},
		{"unclosed IPv6", "http://[::1", "http://[::1"},
		{"unclosed bracket", "http://[alice:S3cr3t", "http://[alice:xxxxx"},
		{"path kept", "http://proxy:3128/a/b", "http://proxy:3128/a/b"},
		{"empty port", "http://proxy:", "http://proxy:"},
		{"no host", "http://alice:S3cr3t", "http://alice:xxxxx"},
		{"no host, digits", "http://alice:123456", "http://alice:xxxxx"},
		{"no host, no scheme", "alice:S3cr3t", "alice:xxxxx"},
		{"no host, slash in password", "http://alice:S3c/r3t", "http://alice:xxxxx"},
		{"no host, hash in password", "http://alice:S3c#r3t", "http://alice:xxxxx"},
		{"colons", "http://alice:S3cr3t:3128", "http://alice:xxxxx"},
		{"query", "http://proxy:3128/?password=S3cr3t", "http://proxy:3128/?xxxxx"},
		{"query without path", "http://proxy:3128?token=S3cr3t", "http://proxy:3128?xxxxx"},
		{"fragment", "http://proxy:3128#S3cr3t", "http://proxy:3128#xxxxx"},
		{"query and fragment", "http://proxy:3128/p?S3cr3t#S3cr3t", "http://proxy:3128/p?xxxxx#xxxxx"},
		{"question mark in fragment", "http://proxy:3128#S3c?r3t", "http://proxy:3128#xxxxx"},
		{"empty query", "http://proxy:3128?", "http://proxy:3128?"},
		{"userinfo and query", "https://u:S3cr3t@canary/?k=S3cr3t", "https://xxxxx@canary/?xxxxx"},
		{"host:port probe", "alice:pw@canary:443", "xxxxx@canary:443"},
		{"missing colon", "http//alice:S3cr3t@127.0.0.1:3128", "http//xxxxx@127.0.0.1:3128"},
		{"missing slash", "http:/alice:S3cr3t@127.0.0.1:3128", "http:/xxxxx@127.0.0.1:3128"},
		{"missing slashes", "HTTP:alice:S3cr3t@127.0.0.1:3128", "HTTP:xxxxx@127.0.0.1:3128"},
		{"unknown scheme typo", "alice//S3cr3t@proxy:3128", "xxxxx@proxy:3128"},
		{"scheme name as username", "http:S3cr3t", "http:xxxxx"},
		{"scheme name as username, slash in password", "http:/S3cr3t", "http:xxxxx"},
		{"missing colon without userinfo", "http//proxy:3128", "http//proxy:3128"},
		{"separator in password", "alice:pw://S3cr3t@proxy:3128", "xxxxx@proxy:3128"},
		{"leading space", " http://alice:S3cr3t@proxy:3128", " http://xxxxx@proxy:3128"},
		{"trailing line break", "http://alice:S3cr3t\n", "http://alice:xxxxx"},
		{"slash too many", "http:///alice:S3cr3t", "http:///alice:xxxxx"},
		{"colon in path", "http://proxy:3128/alice:S3cr3t?q", "http://proxy:3128/alice:xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Raw(tt.in); got != tt.want {
				t.Errorf("Raw(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestURL(t *testing.T) {
	u, err := url.Parse("https://user:s3cret@proxy.example:8443/path")
	if err != nil {
		t.Fatal(err)
	}
	got := URL(u)
	if got.User != nil || strings.Contains(got.String(), "s3cret") {
		t.Errorf("URL(%v) = %v, want no userinfo", u.Redacted(), got)
	}
	if u.User == nil {
		t.Errorf("URL mutated its argument: userinfo is gone")
	}
	if got := String(u); got != "https://proxy.example:8443/path" {
		t.Errorf("String(%v) = %q, want %q", u.Redacted(), got, "https://proxy.example:8443/path")
	}
	if URL(nil) != nil || String(nil) != "<nil>" {
		t.Errorf("URL(nil), String(nil) = %v, %q; want nil, <nil>", URL(nil), String(nil))
	}
}

// FuzzRaw checks that Raw hides a password however the URL around it is
// malformed: with or without a scheme, host or port, and with any bytes in
// the password.
func FuzzRaw(f *testing.F) {
	f.Add("http://", "alice", "S3cr3t", "proxy:3128", "")
	f.Add("", "alice", "S3/cr#3t?", "", "")
	f.Add("http//", "", "S3cr3t", "[::1", "?q")
	f.Add("socks5://", "a:b", "123456", "", "#f")
	f.Fuzz(func(t *testing.T, scheme, user, pass, hostport, tail string) {
		if len(pass) < 4 || strings.Contains(scheme+user+":"+hostport+tail+":"+mask, pass) || strings.Contains(pass, "@") {
			// A password with an "@" is cut at it: what follows may be
			// the host.
			t.Skip()
		}
		forms := []string{scheme + user + ":" + pass + "@" + hostport + tail}
		port, _, _ := strings.Cut(pass, "/")
		port, _, _ = strings.Cut(port, "?")
		port, _, _ = strings.Cut(port, "#")
		ipv6 := strings.ContainsAny(scheme+user+port, "[]")
		if hostport == "" && !strings.ContainsAny(user, "@:") && !strings.Contains(scheme, "@") && !validPort(port) && !ipv6 {
			// No host: the password follows the only colon, after the
			// scheme's separator. One that starts with a port number
			// cannot be told from a port, nor one around brackets from
			// an IPv6 address.
			forms = append(forms, scheme+user+":"+pass)
		}
		for _, in := range forms {
			if got := Raw(in); strings.Contains(got, pass) {
				t.Errorf("Raw(%q) = %q, shows the password", in, got)
			}
		}
	})
}
