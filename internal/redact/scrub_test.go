package redact

import (
	"strings"
	"testing"
)

func TestProxy(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"no userinfo", "http://proxy:3128", "http://proxy:3128"},
		{"user and password", "http://alice:s3cret@proxy:3128", "http://alice:xxxxx@proxy:3128"},
		{"user only", "http://alice@proxy:3128", "http://alice@proxy:3128"},
		{"at sign in password", "http://alice:p@ss@proxy:3128", "http://alice:xxxxx@proxy:3128"},
		{"does not parse", "http://alice:s3cret@[::1", "http://xxxxx@[::1"},
		{"no scheme", "alice:s3cret@proxy:3128", "xxxxx@proxy:3128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Proxy(tt.in); got != tt.want {
				t.Errorf("Proxy(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSecretsScrub(t *testing.T) {
	s := NewSecrets(append(CredentialForms("alice", `p"w/@`), HeaderForms("Basic YWxpY2U6cCJ3L0A=")...)...)
	tests := []struct{ name, in, want string }{
		{"nothing secret", "malformed HTTP status code", "malformed HTTP status code"},
		{"whole header", "got Basic YWxpY2U6cCJ3L0A= back", "got xxxxx back"},
		{"token", `malformed HTTP status code "YWxpY2U6cCJ3L0A="`, `malformed HTTP status code "xxxxx"`},
		{"quoted password", `line "alice:p\"w/@"`, `line "xxxxx"`},
		{"percent-encoded", "p%22w%2F%40 and alice:p%22w%2F%40", "xxxxx and xxxxx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Scrub(tt.in); got != tt.want {
				t.Errorf("Scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	var none *Secrets
	if got := none.Scrub("a secret"); got != "a secret" {
		t.Errorf("nil Secrets: Scrub = %q, want the text unchanged", got)
	}
}

func TestSecretsBound(t *testing.T) {
	const secret = "hunter2-bound"
	s := NewSecrets(secret)
	for cut := 0; cut < len(secret)+3; cut++ {
		// The bound falls at every position of the secret in turn.
		text := strings.Repeat("a", 100-cut) + secret + strings.Repeat("b", 1000)
		got := s.Bound(text, 100)
		if len(got) > 100+len(Marker) || !strings.HasSuffix(got, Marker) {
			t.Errorf("cut %d: Bound(...) = %q: want at most 100 bytes and %q", cut, got, Marker)
		}
		for k := 4; k <= len(secret); k++ {
			if strings.Contains(got, secret[:k]) {
				t.Errorf("cut %d: Bound(...) = %q shows %q of the secret", cut, got, secret[:k])
			}
		}
	}
	if got := s.Bound("short "+secret, 100); got != "short xxxxx" {
		t.Errorf("Bound of a short text = %q, want %q", got, "short xxxxx")
	}
	if got := Truncate("héllo", 2); got != "h"+Marker {
		t.Errorf("Truncate(%q, 2) = %q, want a cut on a UTF-8 boundary", "héllo", got)
	}
}
