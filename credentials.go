package proxyauth

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/sync/singleflight"
)

// credSource holds the credentials of one proxy: fixed ones from the proxy
// URL, or those a CredentialsFunc returned, kept after the first call. It
// is safe for concurrent use.
type credSource struct {
	proxy *url.URL // without userinfo
	socks bool
	fn    CredentialsFunc

	mu     sync.Mutex
	cached *Credentials // nil until known; fixed ones are known from the start
	calls  singleflight.Group
}

func newCredSource(proxy *url.URL, socks bool, fixed *Credentials, fn CredentialsFunc) *credSource {
	return &credSource{proxy: proxy, socks: socks, fn: fn, cached: fixed}
}

// get returns the credentials to send, or nil when there are none. Callers
// asking at once share one call of the CredentialsFunc; each waits only as
// long as its own ctx allows.
func (s *credSource) get(ctx context.Context) (*Credentials, error) {
	s.mu.Lock()
	c := s.cached
	s.mu.Unlock()
	if c != nil || s.fn == nil {
		return c, nil
	}
	ch := s.calls.DoChan("", func() (any, error) {
		// The call outlives a caller that gives up, so that the others
		// sharing it are not failed by that caller's cancellation.
		got, err := s.fn(context.WithoutCancel(ctx), CredentialsRequest{Proxy: s.proxy})
		if err != nil {
			return nil, err
		}
		if err := validCredentials(got, s.socks); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.cached = &got
		s.mu.Unlock()
		return &got, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Credentials), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// validCredentials reports credentials that the proxy's scheme cannot
// carry: Basic (RFC 7617) has no way to send a username with a colon, and
// SOCKS5 (RFC 1929) takes 1 to 255 bytes of username and at most 255 of
// password.
func validCredentials(c Credentials, socks bool) error {
	if socks {
		if len(c.Username) == 0 || len(c.Username) > 255 || len(c.Password) > 255 {
			return fmt.Errorf("SOCKS5 needs a username of 1 to 255 bytes and a password of at most 255 bytes (got %d and %d)",
				len(c.Username), len(c.Password))
		}
		return nil
	}
	if strings.Contains(c.Username, ":") {
		return fmt.Errorf("username %q contains a colon, which Basic authentication cannot carry", c.Username)
	}
	return nil
}

// basicAuth returns the Proxy-Authorization value of the Basic scheme.
func basicAuth(c *Credentials) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+c.Password))
}
