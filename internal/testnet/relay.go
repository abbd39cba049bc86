package testnet

import (
	"context"
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
//
// A connect to it returns at once, as a connect on loopback does, so the
// relay charges TCP's handshake itself: it relays nothing, in either
// direction, until one round trip (2×delay) after it accepted the
// connection. The bytes sent before then wait, in order, and each then
// still takes its delay. A client's first request thus gets its answer
// two round trips after its connect, as over a real link. When the target
// refuses the relay's connection, the relay resets the client's connection
// after that same round trip, as a refused SYN would be answered.
//
// Its methods are safe for concurrent use.
type Relay struct {
	// Addr is the relay's address, "127.0.0.1:PORT".
	Addr string

	target string
	delay  time.Duration
	ln     net.Listener
	wg     sync.WaitGroup
	done   chan struct{} // closed by close

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	count  int
	killed bool
}

// NewRelay starts a relay to target (host:port) that delays each direction
// by delay, and closes it in t.Cleanup.
func NewRelay(t testing.TB, target string, delay time.Duration) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{Addr: ln.Addr().String(), target: target, delay: delay, ln: ln,
		done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
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

// Kill makes the target a host gone dark: it resets every connection open
// through the relay, and from then on the relay accepts connections, as
// the host's listen queue would, and never relays a byte of them, nor
// dials the target for them.
func (r *Relay) Kill() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.killed = true
	for c := range r.conns {
		reset(c)
	}
}

// reset closes c with a TCP RST rather than a FIN where it can.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// track records c as open, and reports false, having closed c, when the
// relay is closed already.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.done:
		c.Close()
		return false
	default:
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}

func (r *Relay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		open := time.Now().Add(2 * r.delay) // the handshake's round trip
		r.mu.Lock()
		r.count++
		killed := r.killed
		r.mu.Unlock()
		if !r.track(c) {
			return
		}
		if killed {
			continue // kept open, silent, until close
		}
		r.wg.Add(1)
		go r.serve(c, open)
	}
}

// serve dials the target for the client connection c and relays between
// them, nothing before open.
func (r *Relay) serve(c net.Conn, open time.Time) {
	defer r.wg.Done()
	up, err := net.Dial("tcp", r.target)
	if err != nil {
		// The refusal reaches the client one round trip after its SYN.
		// This wait is the link's latency, not a synchronisation.
		t := time.NewTimer(time.Until(open))
		select {
		case <-t.C:
		case <-r.done:
			t.Stop()
		}
		r.mu.Lock()
		delete(r.conns, c)
		r.mu.Unlock()
		reset(c)
		return
	}
	if !r.track(up) {
		r.untrack(c)
		return
	}
	r.mu.Lock()
	killed := r.killed
	r.mu.Unlock()
	if killed { // Kill came during the dial: c was reset, up was not.
		r.untrack(up)
		return
	}
	var pipes sync.WaitGroup
	pipes.Go(func() { r.pipe(up, c, open) })
	pipes.Go(func() { r.pipe(c, up, open) })
	pipes.Wait()
	r.untrack(c)
	r.untrack(up)
}

// chunk is what one read got, and when it may be written.
type chunk struct {
	data []byte
	due  time.Time
}

// pipe copies from src to dst, each chunk delay after it was read or after
// open, whichever is later, in order; src's end becomes dst's half-close
// once what came before it is through.
func (r *Relay) pipe(dst, src net.Conn, open time.Time) {
	queue := make(chan chunk, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for c := range queue {
			if wait := time.Until(c.due); wait > 0 {
				// The delay is the point: this wait is the link's
				// latency, not a synchronisation.
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-r.done:
					t.Stop()
				}
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
			at := time.Now()
			if at.Before(open) {
				at = open
			}
			queue <- chunk{data: buf[:n], due: at.Add(r.delay)}
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
	close(r.done)
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Dialer returns a dial function whose connection comes one round trip
// (rtt) after it was asked for, as over a link of that round-trip time:
// the relay delays the bytes, but a connect on loopback returns at once,
// and a dial that takes no time would win every race that net/http runs
// between a new connection and one coming back to its idle pool. The
// bytes are not delayed further: the relay's hold and this wait run
// together.
func Dialer(rtt time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		// The wait is the link's latency, not a synchronisation.
		t := time.NewTimer(time.Until(start.Add(rtt)))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			if c != nil {
				c.Close()
			}
			return nil, ctx.Err()
		}
		return c, err
	}
}
