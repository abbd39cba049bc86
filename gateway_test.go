package proxyauth_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// gateway is a test proxy in the manner of a provider's gateway: one
// address, and an exit chosen by the session named in the username. A
// username "customer-<user>-sessid-<token>" with the right password gets
// the exit of <token>, a number handed out in order of first use; a
// username without a session ("customer-<user>") gets a new exit for every
// request, as gateways rotate. The exit travels to the origins of
// newExitOrigin in a preamble on each connection, as the origin would see
// it in the source address.
type gateway struct {
	URL  string
	user string
	pass string
	srv  *httptest.Server

	mu     sync.Mutex
	exits  map[string]int // by session token
	next   int
	tokens []string // the session token of each request, "" for none, in order
}

func newGateway(t *testing.T, user, pass string) *gateway {
	t.Helper()
	g := &gateway{user: user, pass: pass, exits: map[string]int{}}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	g.URL = g.srv.URL
	t.Cleanup(g.srv.Close)
	return g
}

// exitFor authenticates r and returns its exit, or 0 after answering 407.
func (g *gateway) exitFor(w http.ResponseWriter, r *http.Request) int {
	user, pass, ok := parseProxyBasic(r.Header.Get("Proxy-Authorization"))
	prefix := "customer-" + g.user
	token, session := strings.CutPrefix(user, prefix+"-sessid-")
	if !ok || pass != g.pass || !session && user != prefix {
		w.Header().Set("Proxy-Authenticate", `Basic realm="gateway"`)
		w.WriteHeader(http.StatusProxyAuthRequired)
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.tokens = append(g.tokens, token)
	if !session {
		g.next++
		return g.next
	}
	if _, ok := g.exits[token]; !ok {
		g.next++
		g.exits[token] = g.next
	}
	return g.exits[token]
}

// sessionTokens returns the session token of each request so far.
func (g *gateway) sessionTokens() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.tokens...)
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	exit := g.exitFor(w, r)
	if exit == 0 {
		return
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintf(c, "EXIT %d\n", exit); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	if r.Method == http.MethodConnect {
		up, err := dial(r.Context(), "tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		w.WriteHeader(http.StatusOK)
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		done := make(chan struct{})
		go func() {
			io.Copy(up, rw)
			up.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		io.Copy(c, up)
		<-done
		return
	}
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Header.Del("Proxy-Authorization")
	resp, err := tr.RoundTrip(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

func parseProxyBasic(v string) (user, pass string, ok bool) {
	enc, found := strings.CutPrefix(v, "Basic ")
	if !found {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// exitOrigin is an origin behind a gateway: it learns each connection's
// exit from the gateway's preamble, answers "exit N", and 403 to the exits
// banned for the request's host.
type exitOrigin struct {
	*httptest.Server

	mu     sync.Mutex
	banned map[string]map[int]bool // host -> exits
	seen   []int                   // the exit of each request, in order
}

type exitKey struct{}

func newExitOrigin(t *testing.T, tlsOn bool) *exitOrigin {
	t.Helper()
	o := &exitOrigin{banned: map[string]map[int]bool{}}
	o.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exit, _ := r.Context().Value(exitKey{}).(int)
		host, _, _ := strings.Cut(r.Host, ":")
		o.mu.Lock()
		o.seen = append(o.seen, exit)
		banned := o.banned[host][exit]
		o.mu.Unlock()
		if banned {
			http.Error(w, "blocked", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "exit %d", exit)
	}))
	o.Listener = &preambleListener{Listener: o.Listener}
	o.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		if pc, ok := c.(*preambleConn); ok {
			return context.WithValue(ctx, exitKey{}, pc.exit)
		}
		return ctx
	}
	if tlsOn {
		o.StartTLS()
	} else {
		o.Start()
	}
	t.Cleanup(o.Close)
	return o
}

// ban makes the origin answer 403 to exit for host.
func (o *exitOrigin) ban(host string, exit int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.banned[host] == nil {
		o.banned[host] = map[int]bool{}
	}
	o.banned[host][exit] = true
}

// exits returns the exit of each request so far.
func (o *exitOrigin) exits() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.seen...)
}

// preambleListener reads the "EXIT N\n" line a gateway writes first on
// each connection. Connections without one get exit 0.
type preambleListener struct{ net.Listener }

type preambleConn struct {
	net.Conn
	r    *bufio.Reader
	exit int
}

func (c *preambleConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (l *preambleListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pc := &preambleConn{Conn: c, r: bufio.NewReader(c)}
	if head, err := pc.r.Peek(5); err == nil && string(head) == "EXIT " {
		line, _ := pc.r.ReadString('\n')
		pc.exit, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "EXIT ")))
	}
	return pc, nil
}
