package testnet

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// echo starts a TCP server that sends back what it reads, until the
// client's half-close, then closes.
func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String()
}

func TestRelayDelaysEachDirection(t *testing.T) {
	const delay = 50 * time.Millisecond
	r := NewRelay(t, echo(t), delay)
	c, err := net.DialTimeout("tcp", r.Addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	start := time.Now()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	// A lower bound only: the relay holds each byte for delay each way,
	// and a busy machine only adds to that.
	if rtt := time.Since(start); string(got) != "ping" || rtt < 2*delay {
		t.Errorf("got %q after %v, want ping after at least %v", got, rtt, 2*delay)
	}
	if n := r.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestRelayCarriesDataAndHalfClose(t *testing.T) {
	r := NewRelay(t, echo(t), time.Millisecond)
	c, err := net.DialTimeout("tcp", r.Addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	payload := make([]byte, 1<<20)
	rand.Read(payload)
	errs := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errs <- err
	}()
	// The echo sends it all back, then closes on the half-close, which
	// the relay passes on in order: EOF after the last byte.
	back, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back, payload) {
		t.Errorf("got %d bytes back, want the %d sent, in order", len(back), len(payload))
	}
}

func TestRelayKill(t *testing.T) {
	r := NewRelay(t, echo(t), time.Millisecond)
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", r.Addr, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	ping := func(c net.Conn) error {
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		got := make([]byte, 4)
		if _, err := io.ReadFull(c, got); err != nil {
			return err
		}
		if string(got) != "ping" {
			t.Errorf("got %q back, want ping", got)
		}
		return nil
	}
	before := dial()
	before.SetDeadline(time.Now().Add(time.Minute))
	if err := ping(before); err != nil {
		t.Fatalf("before Kill: %v", err)
	}

	r.Kill()
	// The relayed connection is closed: what was under way ends at once
	// (an error within the deadline, not its expiry).
	if err := ping(before); err == nil {
		t.Error("a connection relayed before Kill still echoes")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("a connection relayed before Kill hung until its deadline: %v", err)
	}

	// A new connection is accepted and then hears nothing: a bounded
	// wait of 100 round trips of the relay ends in a timeout.
	after := dial()
	after.SetDeadline(time.Now().Add(200 * time.Millisecond))
	if err := ping(after); err == nil {
		t.Error("a connection made after Kill was relayed")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Errorf("a connection made after Kill: %v, want a timeout (accepted, never answered)", err)
	}
}
