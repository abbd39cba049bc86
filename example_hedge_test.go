package proxyauth_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// A primary proxy that accepts connections and never answers costs the
// first request HedgeAfter, not ProxyTimeout: the fallback is tried in
// parallel, and takes the request. The next requests pass over the
// primary while its connection is pending; it is ejected only if that
// connection fails, with its own timeout.
func ExamplePoolConfig_hedgeAfter() {
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	}))
	defer origin.Close()
	fallback := proxyauthtest.NewProxy("alice", "s3cret")
	defer fallback.Close()
	dark := darkHost() // accepts connections, answers nothing
	defer dark.Close()

	roots := x509.NewCertPool()
	roots.AddCert(origin.Certificate())
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies:      []string{"http://alice:s3cret@" + dark.Addr().String(), proxyURL(fallback, "alice", "s3cret")},
		Base:         &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		ProxyTimeout: time.Minute,
		Pool:         proxyauth.PoolConfig{HedgeAfter: 100 * time.Millisecond},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	for i := 0; i < 3; i++ {
		start := time.Now()
		resp, err := client.Get(origin.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status, "through the fallback:", proxyauth.ProxyOf(resp).Host == fallback.Addr(),
			"within 10s:", time.Since(start) < 10*time.Second)
	}
	st := tr.Pool().Stats()
	fmt.Printf("primary: %s, races lost %d, connection pending %v\n", st[0].State, st[0].RacesLost, st[0].Stalled)
	fmt.Printf("fallback: %d requests, %d hedge, %d won\n", st[1].Requests, st[1].Hedges, st[1].HedgesWon)
	// Output:
	// 200 OK through the fallback: true within 10s: true
	// 200 OK through the fallback: true within 10s: true
	// 200 OK through the fallback: true within 10s: true
	// primary: healthy, races lost 1, connection pending true
	// fallback: 3 requests, 1 hedge, 1 won
}

// darkHost listens on loopback, accepts connections and never answers on
// them, until closed.
func darkHost() *dark {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	d := &dark{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns = append(d.conns, c)
			d.mu.Unlock()
		}
	}()
	return d
}

type dark struct {
	ln    net.Listener
	done  chan struct{}
	mu    sync.Mutex
	conns []net.Conn
}

func (d *dark) Addr() net.Addr { return d.ln.Addr() }

func (d *dark) Close() {
	d.ln.Close()
	<-d.done
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.conns {
		c.Close()
	}
}
