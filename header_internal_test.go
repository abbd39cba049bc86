package proxyauth

import "testing"

func TestIsProxyAuthorization(t *testing.T) {
	for k, want := range map[string]bool{
		"Proxy-Authorization":    true,
		"proxy-authorization":    true,
		"PROXY-AUTHORIZATION":    true,
		"pRoXy-AuThOrIzAtIoN":    true,
		"Proxy-Authorization ":   false,
		"Proxy\rAuthorization":   false, // '\r'+32 is '-': only letters fold
		"Proxy_Authorization":    false,
		"Proxy-Authorizatio":     false,
		"Authorization":          false,
		"Proxy-Authorizatio\xc3": false, // a non-ASCII byte
		"":                       false,
	} {
		if got := isProxyAuthorization(k); got != want {
			t.Errorf("isProxyAuthorization(%q) = %v, want %v", k, got, want)
		}
	}
}
