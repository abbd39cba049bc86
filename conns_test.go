package proxyauth_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// TestProbeConnectionCarriesFirstRequest: the probe before a pool proxy's
// first use is a connection, which that request then takes: one
// connection, not two.
func TestProbeConnectionCarriesFirstRequest(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			primary, other := newProxy(t, user, secret), newProxy(t, user, secret)
			relay := testnet.NewRelay(t, primary.Addr(), 0)
			cl, tr := poolClient(t, proxyauth.Config{
				Proxies: []string{withUser(t, "http://"+relay.Addr, user, secret), withUser(t, other.URL, user, secret)},
				Base:    trusting(o.Certificate()),
			}, nil)
			_, resp, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, relay.Addr, proxyauth.ProxyOf(resp).Host)
			assert.Equal(t, proxyauth.StateHealthy, tr.Pool().Stats()[0].State, "the probe passed")
			assert.Equal(t, 1, relay.Connections(), "the probe's connection carried the request")
		})
	}
}

// TestConnectAnsweredOnItsConnection: a first tunnel through a Digest
// proxy answers the 407 on the connection that got it, which the proxy
// keeps; a plain request's 407 kept its connection already.
func TestConnectAnsweredOnItsConnection(t *testing.T) {
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			o := newOrigin(t, tt.tls, nil)
			p := newAuthProxy(t, proxyauthtest.NewDigest())
			relay := testnet.NewRelay(t, p.Addr(), 0)
			cl := client(t, proxyauth.Config{
				Proxies: []string{withUser(t, "http://"+relay.Addr, user, secret)},
				Schemes: []proxyauth.Scheme{proxyauth.Digest()}, // no Basic first, whose URL would be another connection's
				Base:    trusting(o.Certificate()),
			})
			_, resp, err := get(cl, o.URL)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			var statuses []int
			for _, r := range p.Requests() {
				statuses = append(statuses, r.Status)
			}
			assert.Equal(t, []int{407, 200}, statuses, "the 407, then the answer")
			assert.Equal(t, 1, relay.Connections(), "both on one connection")
		})
	}
}
