package proxyauth_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// TestPOSTRidingAnotherTunnelIsNotResent: a POST is written on a tunnel
// that became idle while its own dial's CONNECT was still unanswered;
// the origin receives it and the tunnel then breaks. That CONNECT says
// nothing about the POST any more, so the pool must not resend it as if
// the origin could not have seen it.
func TestPOSTRidingAnotherTunnelIsNotResent(t *testing.T) {
	var posts atomic.Int32
	slowIn, slowOut := make(chan struct{}), make(chan struct{})
	origin := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			close(slowIn)
			<-slowOut
			io.WriteString(w, "slow")
		case "/post":
			io.ReadAll(r.Body)
			if posts.Add(1) == 1 {
				// The request arrived; then the tunnel breaks (as when the
				// proxy dies after forwarding it).
				c, _, _ := http.NewResponseController(w).Hijack()
				c.Close()
				return
			}
			io.WriteString(w, "ok")
		}
	}))
	defer origin.Close()

	var dials atomic.Int32
	secondDial, releaseDial := make(chan struct{}), make(chan struct{})
	a := proxyauthtest.NewUnstartedProxy(user, secret)
	a.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if dials.Add(1) == 2 { // the POST's own CONNECT: hold its answer back
			close(secondDial)
			select {
			case <-releaseDial:
			case <-ctx.Done():
			}
		}
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	a.Start()
	defer a.Close()
	b := newProxy(t, user, secret)

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{withUser(t, a.URL, user, secret), withUser(t, b.URL, user, secret)},
		Base:    trusting(origin.Certificate()),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c := &http.Client{Transport: tr}

	getDone := make(chan struct{})
	go func() { // occupies the first tunnel through a
		defer close(getDone)
		if resp, err := c.Get(origin.URL + "/slow"); err == nil {
			io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	}()
	<-slowIn
	postDone := make(chan error, 1)
	go func() {
		resp, err := c.Post(origin.URL+"/post", "text/plain", bytes.NewReader([]byte("pay once")))
		if err == nil {
			resp.Body.Close()
		}
		postDone <- err
	}()
	<-secondDial   // the POST's dial has sent its CONNECT, which waits
	close(slowOut) // the first tunnel comes back idle: the POST takes it
	<-getDone
	select {
	case err = <-postDone:
	case <-time.After(generous):
		t.Fatal("POST did not return")
	}
	close(releaseDial)
	t.Logf("POST error: %v; origin received the POST %d times", err, posts.Load())
	if posts.Load() != 1 {
		t.Errorf("the origin received the POST %d times", posts.Load())
	}
}
