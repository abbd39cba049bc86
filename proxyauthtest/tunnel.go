package proxyauthtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
)

// tracker keeps the connections and goroutines of a proxy so that Close can
// end them all and wait for them. The zero value is ready to use.
type tracker struct {
	mu     sync.Mutex
	closed bool
	conns  map[io.Closer]struct{}
	wg     sync.WaitGroup
}

// begin registers a goroutine that is running or about to run. It reports
// false once shutdown has been called. Every true result must be paired with a
// call to end.
func (t *tracker) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// end unregisters a goroutine registered by begin.
func (t *tracker) end() { t.wg.Done() }

// track adds c to the connections that shutdown closes. If shutdown has
// already been called, track closes c and reports false.
func (t *tracker) track(c io.Closer) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		c.Close()
		return false
	}
	if t.conns == nil {
		t.conns = make(map[io.Closer]struct{})
	}
	t.conns[c] = struct{}{}
	t.mu.Unlock()
	return true
}

// untrack removes c from the tracked connections without closing it.
func (t *tracker) untrack(c io.Closer) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
}

// closeConn closes c and stops tracking it.
func (t *tracker) closeConn(c io.Closer) {
	c.Close()
	t.untrack(c)
}

// shutdown makes begin and track fail from now on and closes every tracked
// connection.
func (t *tracker) shutdown() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// wait waits until every goroutine registered by begin or pipe has finished.
func (t *tracker) wait() { t.wg.Wait() }

// pipe copies bytes between client and upstream in both directions until
// either direction ends (one side closes or fails), then closes both
// connections. fromClient is what to read the client's bytes from: client
// itself, or a reader that holds bytes already read from it. Both connections
// must be tracked, and the caller must hold a registration from begin (which
// makes it safe to add the two copying goroutines to the wait group while
// shutdown may be waiting).
func (t *tracker) pipe(client net.Conn, fromClient io.Reader, upstream net.Conn) {
	var once sync.Once
	stop := func() {
		once.Do(func() {
			t.closeConn(client)
			t.closeConn(upstream)
		})
	}
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		io.Copy(upstream, fromClient)
		stop()
	}()
	go func() {
		defer t.wg.Done()
		io.Copy(client, upstream)
		stop()
	}()
}

// newLocalListener listens on a free loopback port, as httptest does.
func newLocalListener() net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		if l, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			panic(fmt.Sprintf("proxyauthtest: failed to listen on a port: %v", err))
		}
	}
	return l
}

// dialFunc is the type of the DialContext fields.
type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// orDefaultDial returns dial, or a net.Dialer's DialContext if dial is nil.
func orDefaultDial(dial dialFunc) dialFunc {
	if dial != nil {
		return dial
	}
	return new(net.Dialer).DialContext
}
