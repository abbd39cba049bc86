package proxyauth

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// A proxy's routes are keyed by the identity they speak for. Identity ""
// is the proxy's own credentials, which requests use. Any other is a
// session at a gateway that picks the exit from the username (such as
// "user-session-abc123"): the proxy's credentials with the Username
// replaced, on routes of its own, so that the session's connections (and
// tunnels, which a gateway ties to the username that opened them) are
// never another identity's.
//
// An identity's credential state is derived from its proxy's: fixed
// credentials are renamed once; with a CredentialsFunc, the identity takes
// the proxy's current credentials renamed, so that the function is asked
// once for the proxy, not once per identity, and a refusal of an
// identity's credentials asks it (once, shared with every request that
// meets the refusal) for the proxy's next ones. An identity's routes are
// made and released like the proxy's own, under the same bound; the
// identity goes with its route, and is derived again when next used.

// identity is one identity other than the proxy's own that its routes
// speak for.
type identity struct {
	key  string
	auth *authState
	live atomic.Pointer[route]
	// base is the version of the proxy's credentials that the identity's
	// current ones come from.
	base atomic.Uint64
	gone atomic.Bool // released with its route: set under the routeSet's mu
}

// routeAs returns m's live route for identity, made if there is none, held
// for the caller until it calls m.set.unhold. identity "" is the proxy's
// own credentials (username is not used); another identity's credentials
// are the proxy's with the Username replaced by username(original),
// username being asked once each time the identity is made (or, for a
// CredentialsFunc, each time the proxy's credentials change), and the
// same identity must always be given the same username function. now is
// the time of the request.
func (m *member) routeAs(identity string, username func(string) string, now time.Time) *route {
	if identity == "" {
		return m.set.hold(m, nil, now)
	}
	// An identity released between its lookup and its hold is made anew
	// (the lookup passes over a released one): a new one has no route to
	// be released with, so a second try holds.
	for {
		if r := m.set.hold(m, m.identity(identity, username), now); r != nil {
			return r
		}
	}
}

// errNoCredentials is the cause when the proxy's CredentialsFunc gave an
// identity nothing to derive its credentials from.
var errNoCredentials = errors.New("the credentials function gave none")

// slot returns where the live route of m for id is kept.
func (m *member) slot(id *identity) *atomic.Pointer[route] {
	if id == nil {
		return &m.live
	}
	return &id.live
}

// identity returns m's identity for key, made if there is none.
func (m *member) identity(key string, username func(string) string) *identity {
	l := m.more()
	l.mu.Lock()
	defer l.mu.Unlock()
	if id := l.idents[key]; id != nil && !id.gone.Load() {
		return id
	}
	id := &identity{key: key}
	id.auth = m.derivedAuth(id, l.auth, username)
	if l.idents == nil {
		l.idents = map[string]*identity{}
	}
	l.idents[key] = id
	return id
}

// forget removes id, released, from m's identities.
func (m *member) forget(id *identity) {
	l := m.ext.Load()
	l.mu.Lock()
	if l.idents[id.key] == id {
		delete(l.idents, id.key)
	}
	l.mu.Unlock()
}

// identities returns the number of m's identities other than its own.
func (m *member) identities() int {
	l := m.ext.Load()
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.idents)
}

// derivedAuth returns the credential state of id, derived from base, the
// proxy's own: its fixed credentials renamed, or its CredentialsFunc's
// answers, through base, renamed. What the proxy asked for last, and
// whether it accepted a scheme beyond Basic, carry over.
func (m *member) derivedAuth(id *identity, base *authState, username func(string) string) *authState {
	var fixed *Credentials
	if m.spec.creds != nil {
		c := *m.spec.creds
		c.Username = username(c.Username)
		fixed = &c
	}
	var fn CredentialsFunc
	if m.fn != nil {
		fn = func(ctx context.Context, req CredentialsRequest) (Credentials, error) {
			seen := id.base.Load()
			v, err := base.credentials(ctx, req.Challenges, seen, req.Rejected)
			switch {
			case err != nil:
				return Credentials{}, err
			case v == nil:
				return Credentials{}, errNoCredentials
			case req.Rejected && v.version == seen:
				return Credentials{}, ErrNoNewCredentials // the proxy's refusal stands
			}
			id.base.Store(v.version)
			c := v.creds
			c.Username = username(c.Username)
			return c, nil
		}
	}
	a := newAuthState(m.spec.url, m.spec.socks(), fixed, fn, func() { m.credentialsChangedFor(id) })
	// The derived function's calls are not the CredentialsFunc's: base
	// reports those.
	a.obs = nil
	if o := base.offer.Load(); o != nil {
		a.offer.Store(o)
	}
	if base.beyondBasic.Load() {
		a.beyondBasic.Store(true)
	}
	return a
}
