//go:build !linux

package testnet

import "testing"

// Unreachable skips the test: the way it makes an address that drops
// connections is Linux's.
func Unreachable(t testing.TB) string {
	t.Helper()
	t.Skip("testnet.Unreachable needs Linux")
	return ""
}
