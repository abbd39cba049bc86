package testnet

import (
	"net"
	"strconv"
	"syscall"
	"testing"
)

// Unreachable returns a loopback address that takes no new TCP
// connection, as if the packets went nowhere: a socket listening with a
// backlog of 0 and never accepting, whose queue one connection fills, so
// that Linux drops the SYNs of every later connect and they time out.
// (tc netem or a firewall rule would need privileges; this needs none.)
func Unreachable(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	c, err := net.DialTimeout("tcp", addr, fillTimeout)
	if err != nil {
		t.Fatalf("filling the queue of the unreachable address: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}
