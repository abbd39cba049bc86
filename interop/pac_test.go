package interop_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// TestSquidPAC: a PAC script served by a local server sends *.internal
// hosts directly and the rest to squid A, then squid B, each with its own
// user. Requests go through A as alice; with A killed mid-run, through B
// as bob; with both down, the error is a *PoolError. ProxiesFor says what
// each URL gets.
func TestSquidPAC(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	sqA := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{"alice": "pass-a"}})
	sqB := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{"bob": "pass-b"}})
	script := fmt.Sprintf(`function FindProxyForURL(url, host) {
	if (dnsDomainIs(host, ".internal")) return "DIRECT";
	return "PROXY %s; PROXY %s";
}`, sqA.Addr, sqB.Addr)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-ns-proxy-autoconfig")
		fmt.Fprint(w, script)
	}))
	t.Cleanup(srv.Close)
	users := map[string]proxyauth.Credentials{
		sqA.Addr: {Username: "alice", Password: "pass-a"},
		sqB.Addr: {Username: "bob", Password: "pass-b"},
	}
	var (
		mu    sync.Mutex
		asked []string
	)
	creds := func(_ context.Context, r proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		mu.Lock()
		asked = append(asked, r.Proxy.Host)
		mu.Unlock()
		return users[r.Proxy.Host], nil
	}
	base := o.base()
	plainOrigin, err := url.Parse(o.url(false))
	require.NoError(t, err)
	var d net.Dialer
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr == "app.internal:80" {
			addr = plainOrigin.Host
		}
		return d.DialContext(ctx, network, addr)
	}
	tr, err := proxyauth.New(proxyauth.Config{PAC: srv.URL + "/proxy.pac", Credentials: creds, Base: base, ProxyTimeout: generous})
	require.NoError(t, err)
	t.Cleanup(func() { tr.Close() })
	cl := &http.Client{Transport: tr}

	for _, tt := range targets {
		from := sqA.accessLogSize(t)
		resp, err := get(cl, o.url(tt.tls))
		require.NoError(t, err, tt.name)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		method := map[bool]string{false: "GET", true: "CONNECT"}[tt.tls]
		tr.CloseIdleConnections() // squid logs a tunnel when it closes
		lines := sqA.waitAccess(t, from, method, "200")
		assert.Equal(t, "alice", lines[len(lines)-1].User, "squid A logged alice")
	}
	resp, err := get(cl, "http://app.internal/")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode, "DIRECT")

	req, _ := http.NewRequest(http.MethodGet, o.url(true), nil)
	list, err := tr.ProxiesFor(req)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, []string{sqA.Addr, sqB.Addr}, []string{list[0].Host, list[1].Host})

	sqA.Stop()
	for _, tt := range targets {
		from := sqB.accessLogSize(t)
		resp, err := get(cl, o.url(tt.tls))
		require.NoError(t, err, "%s with squid A down", tt.name)
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		method := map[bool]string{false: "GET", true: "CONNECT"}[tt.tls]
		tr.CloseIdleConnections()
		lines := sqB.waitAccess(t, from, method, "200")
		assert.Equal(t, "bob", lines[len(lines)-1].User, "squid B logged bob")
	}
	mu.Lock()
	assert.Subset(t, asked, []string{sqA.Addr, sqB.Addr}, "the credentials function was asked for each proxy by name")
	mu.Unlock()

	sqB.Stop()
	_, err = get(cl, o.url(false)+"/both-down")
	var pe *proxyauth.PoolError
	require.ErrorAs(t, err, &pe, "%v", err)
	assert.ErrorIs(t, err, proxyauth.ErrProxyUnavailable)
	if n := o.leaked(); n != 0 {
		t.Errorf("%d requests reached an origin with Proxy-Authorization", n)
	}
}
