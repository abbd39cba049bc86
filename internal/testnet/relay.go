package testnet

import (
	"net"
	"sync"
	"testing"
	"time"
)

// Relay is a loopback TCP relay to a target that delays every byte by a
// set time in each direction, as a link of round-trip time 2×Delay would:
// in front of a proxy or an origin, it makes a benchmark count round
// trips rather than microseconds. tc netem would do it in the kernel, with
// privileges this needs none of.
type Relay struct {
	// Addr is the relay's address, "127.0.0.1:PORT".
	Addr string

	target string
	delay  time.Duration
	ln     net.Listener
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []net.Conn
	count int
	dead  bool
}

// NewRelay starts a relay to target (host:port) that delays each direction
// by delay, and closes it in t.Cleanup.
func NewRelay(t testing.TB, target string, delay time.Duration) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.Addr().String(), target: target, delay: delay, ln: ln}
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

// Connections returns how many connections the relay has accepted.
func (r *Relay) Connections() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

// Kill makes the relay a host gone dark: it closes the connections it
// relays, then accepts connections and never relays them, nor answers or
// closes them, until the relay is closed.
func (r *Relay) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dead = true
	for _, c := range r.conns {
		c.Close()
	}
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.count++
		if r.dead {
			r.conns = append(r.conns, c) // held open, silent
			r.mu.Unlock()
			up.Close()
			continue
		}
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		r.wg.Add(2)
		go r.pipe(up, c)
		go r.pipe(c, up)
	}
}

// chunk is what one read got, and when it may be written.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies from src to dst, each chunk delay after it was read, in
// order; src's end becomes dst's half-close once what came before it is
// through.
func (r *Relay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	queue := make(chan chunk, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range queue {
			if wait := time.Until(c.due); wait > 0 {
				// The delay is the point: this wait is the link's
				// latency, not a synchronisation.
				<-time.After(wait)
			}
			if _, err := dst.Write(c.data); err != nil {
				for range queue { // drain what the reader still sends
				}
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	}()
	for {
		buf := make([]byte, 32<<10)
		n, err := src.Read(buf)
		if n > 0 {
			queue <- chunk{data: buf[:n], due: time.Now().Add(r.delay)}
		}
		if err != nil {
			break
		}
	}
	close(queue)
	<-done
}

// close stops the relay and closes its connections.
func (r *Relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}
