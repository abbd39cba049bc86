package proxyauthtest_test

import (
	"testing"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func TestResetRequests(t *testing.T) {
	origin := newOrigin(t)

	t.Run("Proxy", func(t *testing.T) {
		p := proxyauthtest.NewProxy(user, pass)
		t.Cleanup(p.Close)
		c := newClient(t, withUser(t, p.URL, user, pass))
		for _, path := range []string{"/one", "/two"} {
			if _, _, err := get(c, origin.URL+path); err != nil {
				t.Fatal(err)
			}
			if path == "/one" {
				p.ResetRequests()
				if got := p.Requests(); len(got) != 0 {
					t.Fatalf("Requests() after ResetRequests = %+v, want none", got)
				}
			}
		}
		got := p.Requests()
		if len(got) != 1 || got[0].Target != origin.URL+"/two" {
			t.Errorf("Requests() = %+v, want only the request made after ResetRequests", got)
		}
	})

	t.Run("SOCKS5Proxy", func(t *testing.T) {
		p := proxyauthtest.NewSOCKS5Proxy(user, pass)
		t.Cleanup(p.Close)
		if _, _, err := get(newClient(t, withUser(t, p.URL, user, pass)), origin.URL); err != nil {
			t.Fatal(err)
		}
		p.ResetRequests()
		if got := p.Requests(); len(got) != 0 {
			t.Fatalf("Requests() after ResetRequests = %+v, want none", got)
		}
		if _, _, err := get(newClient(t, withUser(t, p.URL, user, "wrong")), origin.URL); err == nil {
			t.Fatal("a wrong password was accepted")
		}
		got := p.Requests()
		if len(got) != 1 || got[0].Authorized {
			t.Errorf("Requests() = %+v, want only the refused handshake made after ResetRequests", got)
		}
	})
}
