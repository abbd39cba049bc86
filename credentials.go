package proxyauth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
)

// authState is what one proxy's requests share about authentication: the
// current credentials, numbered by a version that grows when they change,
// and the login that the proxy last accepted, which the next requests
// send at once. It belongs to the proxy (or to one identity of it), not to
// a route: it outlives the routes made and released for it. It is safe
// for concurrent use.
type authState struct {
	proxy    *url.URL // without userinfo
	socks    bool
	fn       CredentialsFunc
	onChange func() // called after the credentials changed
	obs      *observer

	mu    sync.Mutex // serialises changes of cur
	cur   atomic.Pointer[versioned]
	calls singleflight.Group

	accepted atomic.Pointer[proxyLogin]

	// offer is what the proxy asked for in its last challenge to us, and
	// the scheme that would answer it; nil before any challenge.
	offer atomic.Pointer[offer]
	// beyondBasic is set once the proxy has accepted a scheme other than
	// Basic: Basic to it after that is a downgrade.
	beyondBasic atomic.Bool

	// refusedVersion is the latest version of the credentials that a
	// connection-bound scheme had refused, 0 for none: they are not sent
	// again, in any scheme.
	refusedVersion atomic.Uint64
	// provenVersion is the latest version that a connection-bound scheme
	// accepted, 0 for none.
	provenVersion atomic.Uint64

	// trials admits one request at a time with connection-bound
	// credentials that the proxy has not accepted yet (see route.trial).
	trials chan struct{}
}

// offer is one challenge of a proxy: the challenges it offered, and the
// allowed scheme the Transport answers them with (nil for none).
type offer struct {
	challenges []Challenge
	scheme     Scheme
}

// versioned is one set of credentials and its version, from 1.
type versioned struct {
	creds   Credentials
	version uint64
}

// login is one set of credentials answering one challenge (or none, for
// credentials sent before any challenge, and for SOCKS5).
type proxyLogin struct {
	version   uint64
	creds     Credentials
	scheme    Scheme     // nil for SOCKS5
	challenge *Challenge // what auth answers; nil before any challenge
	auth      Authorizer // nil for SOCKS5

	// proxyURL is the proxy's URL with the credentials as userinfo, for
	// net/http to send: set for SOCKS5 and for Basic, nil otherwise. It
	// never appears in an error or a log line.
	proxyURL *url.URL
}

func newAuthState(proxy *url.URL, socks bool, fixed *Credentials, fn CredentialsFunc, onChange func()) *authState {
	s := &authState{proxy: proxy, socks: socks, fn: fn, onChange: onChange, trials: make(chan struct{}, 1)}
	if fixed != nil {
		s.cur.Store(&versioned{creds: *fixed, version: 1})
	}
	return s
}

// current returns the current credentials, or nil when none are known yet.
func (s *authState) current() *versioned { return s.cur.Load() }

// ErrNoNewCredentials is what a [CredentialsFunc] returns, when asked with
// CredentialsRequest.Rejected set, to say that it has no other
// credentials: the proxy's refusal then stands, as it does for
// credentials in the proxy URL, and the request fails with a
// [*ProxyAuthError] whose Err is nil. Returned for a first call, it is an
// error like any other.
var ErrNoNewCredentials = errors.New("proxyauth: no other credentials")

// credentials returns the credentials to use, or nil when there are none.
// rejected reports that the proxy refused the credentials of version seen:
// then, unless newer ones are already known, the CredentialsFunc is asked
// for others. Callers asking at once about the same version share one
// call; each waits only as long as its own ctx allows.
func (s *authState) credentials(ctx context.Context, challenges []Challenge, seen uint64, rejected bool) (*versioned, error) {
	cur := s.cur.Load()
	if s.fn == nil || cur != nil && (!rejected || cur.version > seen) {
		return cur, nil
	}
	var v uint64
	if cur != nil {
		v = cur.version
	}
	ch := s.calls.DoChan(strconv.FormatUint(v, 10), func() (any, error) {
		if now := s.cur.Load(); now != cur {
			// A call that ended after this caller looked, and before it
			// joined, already brought newer credentials.
			return now, nil
		}
		// The call outlives a caller that gives up, so that the others
		// sharing it are not failed by that caller's cancellation.
		start := time.Now()
		got, err := s.fn(context.WithoutCancel(ctx), CredentialsRequest{
			Proxy: s.proxy, Challenges: challenges, Rejected: rejected && cur != nil,
		})
		s.obs.refreshed(RefreshInfo{Proxy: s.proxy, Rejected: rejected && cur != nil, Err: err, Duration: time.Since(start)})
		switch {
		case errors.Is(err, ErrNoNewCredentials) && cur != nil:
			return cur, nil // the refusal stands
		case err != nil:
			return nil, err
		}
		if err := validCredentials(got, s.socks); err != nil {
			return nil, err
		}
		s.mu.Lock()
		next := &versioned{creds: got, version: 1}
		if prev := s.cur.Load(); prev != nil {
			next.version = prev.version + 1
		}
		s.cur.Store(next)
		s.mu.Unlock()
		if next.version > 1 && s.onChange != nil {
			s.onChange()
		}
		return next, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*versioned), nil
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// keep records that the proxy accepted lg, so that the next requests
// send it at once, unless credentials newer than its own were accepted.
func (s *authState) keep(lg *proxyLogin) {
	if lg.scheme != nil && !isBasic(lg.scheme) && !s.beyondBasic.Load() {
		s.beyondBasic.Store(true)
	}
	for {
		cur := s.accepted.Load()
		if cur == lg || cur != nil && cur.version > lg.version {
			return
		}
		if s.accepted.CompareAndSwap(cur, lg) {
			return
		}
	}
}

// raise sets u to v unless it holds more.
func raise(u *atomic.Uint64, v uint64) {
	for {
		old := u.Load()
		if old >= v || u.CompareAndSwap(old, v) {
			return
		}
	}
}

// refuse records that version v of the credentials was refused by a
// connection-bound scheme.
func (s *authState) refuse(v uint64) { raise(&s.refusedVersion, v) }

// proven reports whether version v of the credentials may go without a
// trial: a connection-bound scheme accepted it, or newer ones, and did
// not refuse it. A request may hold a login it took before its version
// was refused and newer credentials accepted: that version is not proven.
func (s *authState) proven(v uint64) bool { return s.provenVersion.Load() >= v && !s.refused(v) }

// refused reports whether version v of the credentials was refused by a
// connection-bound scheme, or older than a version it refused: those were
// replaced, and are not sent again either.
func (s *authState) refused(v uint64) bool { return v != 0 && v <= s.refusedVersion.Load() }

// errRefusedBefore is the cause when the credentials at hand are ones a
// connection-bound scheme refused.
var errRefusedBefore = fmt.Errorf("%w: they are not sent again, lest the account be locked out; "+
	"give the Transport new ones (a CredentialsFunc is asked for them)", ErrCredentialsRefused)

// validCredentials reports credentials that a SOCKS5 proxy (RFC 1929)
// cannot carry: it takes 1 to 255 bytes of username and at most 255 of
// password. The HTTP schemes check theirs in Scheme.Start.
func validCredentials(c Credentials, socks bool) error {
	if socks && (len(c.Username) == 0 || len(c.Username) > 255 || len(c.Password) > 255) {
		return fmt.Errorf("SOCKS5 needs a username of 1 to 255 bytes and a password of at most 255 bytes (got %d and %d)",
			len(c.Username), len(c.Password))
	}
	return nil
}

// errSameCredentials is the cause when a refresh gave back the credentials
// the proxy had just refused: sending them again would only count as one
// more failed login, which some proxies punish by locking the account.
var errSameCredentials = errors.New("the credentials function returned the credentials the proxy had just rejected")
