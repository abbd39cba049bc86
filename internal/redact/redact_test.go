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
