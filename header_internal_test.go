package proxyauth

import "testing"

func TestIsProxyAuthorization(t *testing.T) {
	for k, want := range map[string]bool{
		"Proxy-Authorization":      true,
		"proxy-authorization":      true,
		"PROXY-AUTHORIZATION":      true,
		"pRoXy-AuThOrIzAtIoN":      true,
		"Proxy-Authorization ":     false,
		"Proxy\rAuthorization":     false, // '\r'+32 is '-': only letters fold
		"Proxy_Authorization":      false,
		"Proxy-Authorizatio":       false,
		"Authorization":            false,
		"Proxy-Authori\u212Aation": false, // the Kelvin sign folds to k in Unicode, not in ASCII
		"":                         false,
	} {
		if got := isProxyAuthorization(k); got != want {
			t.Errorf("isProxyAuthorization(%q) = %v, want %v", k, got, want)
		}
	}
}
