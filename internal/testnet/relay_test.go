package testnet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// echo starts a TCP server that sends back what it reads, until the
// client's half-close, then closes.
func echo(t *testing.T) string {
	t.Helper()
	addr, _ := countingEcho(t)
	return addr
}

// countingEcho is echo, and the count of the connections it accepted.
func countingEcho(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	var accepted atomic.Int32
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
			accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); wg.Wait() })
	return l.Addr().String(), &accepted
}

// exchange writes msg to c and reads as many bytes back, and returns how
// long that took.
func exchange(t *testing.T, c net.Conn, msg string) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != msg {
		t.Fatalf("got %q back, want %q", got, msg)
	}
	return time.Since(start)
}

func TestRelayDelaysEachDirection(t *testing.T) {
	const delay = 50 * time.Millisecond
	r := NewRelay(t, echo(t), delay)
	start := time.Now()
	c := dialRelay(t, r)
	// Lower bounds only: the relay holds each byte for delay each way,
	// and a busy machine only adds to that. The first exchange waits for
	// the handshake's round trip too, counted from before the connect,
	// which returns at once on loopback.
	exchange(t, c, "ping")
	if first := time.Since(start); first < 4*delay {
		t.Errorf("first echo after %v, want at least %v: the handshake's round trip and the exchange's", first, 4*delay)
	}
	if rtt := exchange(t, c, "pong"); rtt < 2*delay {
		t.Errorf("second echo after %v, want at least %v", rtt, 2*delay)
	}
	if n := r.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestRelayRefusedAfterHandshake: when the target refuses the relay's
// connection, the client's connection ends one round trip after the
// connect, with an error rather than silence.
func TestRelayRefusedAfterHandshake(t *testing.T) {
	const delay = 50 * time.Millisecond
	r := NewRelay(t, Closed(t), delay)
	start := time.Now()
	c := dialRelay(t, r)
	c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("Read = %d, %v; want 0 bytes and the connection's end", n, err)
	}
	if took := time.Since(start); took < 2*delay {
		t.Errorf("refused after %v, want at least %v", took, 2*delay)
	}
}

// TestRelayKill: Kill resets the connections open through the relay; the
// connections after it are accepted and get nothing, and the target never
// sees them.
func TestRelayKill(t *testing.T) {
	const delay = 5 * time.Millisecond
	target, accepted := countingEcho(t)
	r := NewRelay(t, target, delay)
	before := dialRelay(t, r)
	exchange(t, before, "ping")

	r.Kill()
	if n, err := before.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("Read on a connection open at Kill = %d, %v; want 0 bytes and an error", n, err)
	}

	after, err := net.DialTimeout("tcp", r.Addr, time.Minute)
	if err != nil {
		t.Fatalf("connect after Kill: %v; want it accepted", err)
	}
	defer after.Close()
	if _, err := after.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// Forty round trips of silence stand for forever.
	after.SetReadDeadline(time.Now().Add(80 * delay))
	n, err := after.Read(make([]byte, 1))
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Read after Kill = %d, %v; want nothing until the deadline", n, err)
	}
	if n := accepted.Load(); n != 1 {
		t.Errorf("the target accepted %d connections, want 1 (none after Kill)", n)
	}
	if n := r.Connections(); n != 2 {
		t.Errorf("the relay accepted %d connections, want 2", n)
	}
}

func TestRelayCarriesDataAndHalfClose(t *testing.T) {
	r := NewRelay(t, echo(t), time.Millisecond)
	c := dialRelay(t, r)
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

// dialRelay connects to r, with a generous deadline on the connection,
// which the test's cleanup closes.
func dialRelay(t *testing.T, r *Relay) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.Addr, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(time.Minute))
	return c
}
