// Package testnet gives the tests of this module loopback addresses that
// fail at the network layer or just above it: one where nothing listens
// ([Closed]), one that takes no connection, as a black hole or a firewall
// that drops packets ([Unreachable]), and one that accepts connections and
// never says anything ([Silent]). Each is released in t.Cleanup.
package testnet

import (
	"net"
	"sync"
	"testing"
	"time"
)

// fillTimeout bounds the one connection that fills an Unreachable
// address's queue: loopback, so it is made at once unless the machine is
// starved.
const fillTimeout = time.Minute

// Closed returns a loopback address where nothing listens: a connection
// to it is refused.
func Closed(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// Silent is a loopback listener that accepts connections, keeps them open
// and never writes to them.
type Silent struct {
	// Addr is its address, "127.0.0.1:PORT".
	Addr string

	onAccept func()
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
}

// NewSilent starts a Silent listener. onAccept, if not nil, is called
// after each connection it accepts, from its accepting goroutine.
func NewSilent(t testing.TB, onAccept func()) *Silent {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Silent{Addr: l.Addr().String(), onAccept: onAccept}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.accepted++
			s.mu.Unlock()
			if s.onAccept != nil {
				s.onAccept()
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

// Accepted returns how many connections it has accepted.
func (s *Silent) Accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accepted
}
