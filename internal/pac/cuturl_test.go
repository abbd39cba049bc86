package pac

import (
	"net/url"
	"testing"
)

func TestCutURL(t *testing.T) {
	for _, c := range []struct{ in, url, host string }{
		{"https://user:pw@Example.COM/path?q=secret#frag", "https://example.com/", "example.com"},
		{"https://example.com:443/x", "https://example.com/", "example.com"},
		{"https://example.com:8443/x?y", "https://example.com:8443/", "example.com"},
		{"wss://example.com/socket?token=t", "wss://example.com/", "example.com"},
		{"https://[2001:DB8::1]:8443/x", "https://[2001:db8::1]:8443/", "2001:db8::1"},
		{"https://[::1]/x", "https://[::1]/", "::1"},
		{"HTTP://user:pw@Example.com:80/a/b?c=d#frag", "http://example.com/a/b?c=d", "example.com"},
		{"http://example.com:8080/a", "http://example.com:8080/a", "example.com"},
		{"http://[::1]:80/", "http://[::1]/", "::1"},
		{"ws://h/x", "ws://h/x", "h"},
		{"ftp://u@files.example/pub/", "ftp://files.example/pub/", "files.example"},
	} {
		u, err := url.Parse(c.in)
		if err != nil {
			t.Fatal(err)
		}
		gotURL, gotHost := CutURL(u)
		if gotURL != c.url || gotHost != c.host {
			t.Errorf("CutURL(%s) = %q, %q; want %q, %q", c.in, gotURL, gotHost, c.url, c.host)
		}
	}
}
