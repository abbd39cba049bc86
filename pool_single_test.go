package proxyauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
)

// TestSingleProxyUncheckedUntilAnswered checks that the proxy of a pool of
// one reports unchecked until its first answer, then healthy, and is never
// probed: the probe target would show in what the proxy received.
func TestSingleProxyUncheckedUntilAnswered(t *testing.T) {
	o := newOrigin(t, false, nil)
	for _, tt := range []struct {
		name   string
		proxy  func(url string) string
		status int // the proxy's answer to the first request
	}{
		{"accepted", func(u string) string { return withUser(t, u, user, secret) }, http.StatusOK},
		{"refused", func(u string) string { return withUser(t, u, user, "wrong") }, http.StatusProxyAuthRequired},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newProxy(t, user, secret)
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{tt.proxy(p.URL)},
				Pool:    proxyauth.PoolConfig{Probe: "canary.test:443", ProbeAtStart: true},
			}, nil)
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateUnchecked}, statesOf(tr), "before any request")
			_, resp, err := get(cl, o.URL)
			if tt.status == http.StatusOK {
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, resp.StatusCode)
			} else {
				var pae *proxyauth.ProxyAuthError
				require.ErrorAs(t, err, &pae)
				assert.Equal(t, tt.status, pae.StatusCode)
			}
			assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateHealthy}, statesOf(tr), "after the proxy answered")
			for _, r := range p.Requests() {
				assert.NotEqual(t, "canary.test:443", r.Target, "the single proxy was probed")
			}
			assert.NotEmpty(t, p.Requests())
		})
	}

	t.Run("unreachable", func(t *testing.T) {
		cl, tr := poolClient(t, proxyauth.Config{Proxies: []string{"http://" + closedAddr(t)}}, nil)
		_, _, err := get(cl, o.URL)
		require.ErrorIs(t, err, proxyauth.ErrProxyUnavailable)
		assert.Equal(t, []proxyauth.ProxyState{proxyauth.StateUnchecked}, statesOf(tr), "no answer yet")
		_, _, err = get(cl, o.URL)
		require.ErrorIs(t, err, proxyauth.ErrProxyUnavailable, "still used: a pool of one has no ejection")
	})
}
