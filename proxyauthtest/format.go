package proxyauthtest

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/proxyauth/proxyauth/internal/redact"
)

// These methods keep the passwords that the test proxies accept out of
// test logs: a test that prints a proxy or its credentials shows the
// usernames and the URL only.

// String returns the username with the password masked: "user:xxxxx".
func (c Credentials) String() string { return c.Username + ":xxxxx" }

// GoString returns the Go syntax of c with the password masked.
func (c Credentials) GoString() string {
	return "proxyauthtest.Credentials{Username:" + strconv.Quote(c.Username) + `, Password:"xxxxx"}`
}

// Format formats c for every verb with the password masked: %#v gives
// GoString, the other verbs String.
func (c Credentials) Format(f fmt.State, verb rune) { redact.Format(f, verb, c.GoString(), c.String()) }

// MarshalJSON returns {"Username": ..., "Password": "xxxxx"}.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ Username, Password string }{c.Username, "xxxxx"})
}

// Format formats the proxy as its URL ("" before Start), for every verb,
// and as proxyauthtest.Proxy{URL:"..."} for %#v: its other state, the
// accepted credentials among it, is not printed.
func (p *Proxy) Format(f fmt.State, verb rune) { formatServer(f, verb, "Proxy", p.URL) }

// MarshalJSON returns {"URL": ...}.
func (p *Proxy) MarshalJSON() ([]byte, error) { return json.Marshal(struct{ URL string }{p.URL}) }

// Format formats the proxy as its URL, as [Proxy.Format] does.
func (p *SOCKS5Proxy) Format(f fmt.State, verb rune) { formatServer(f, verb, "SOCKS5Proxy", p.URL) }

// MarshalJSON returns {"URL": ...}.
func (p *SOCKS5Proxy) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct{ URL string }{p.URL})
}

func formatServer(f fmt.State, verb rune, typ, url string) {
	redact.Format(f, verb, "&proxyauthtest."+typ+"{URL:"+strconv.Quote(url)+"}", url)
}
