package proxyauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sessionKey is the context key of WithSession.
type sessionKey struct{}

// WithSession returns a context whose requests share one exit: the same
// proxy, and for a gateway the same session username, until the session
// ends (unused for PoolConfig.SessionTTL, its proxy failed, or a ban).
//
// Sessions belong to a pool ([PoolConfig]): with a single fixed proxy, or
// the environment's, a session changes nothing but is accepted. The id is
// the caller's name for the flow (a login, a checkout), any non-empty
// string of at most 256 bytes; a request whose context carries an empty
// or longer one fails with a [*ConfigError] before anything is sent.
func WithSession(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, sessionKey{}, id)
}

// sessionOf returns the session id of ctx, and whether it has one.
func sessionOf(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(sessionKey{}).(string)
	return id, ok
}

// maxSessionID bounds a session id.
const maxSessionID = 256

// defaultSessionTTL is the default of PoolConfig.SessionTTL.
const defaultSessionTTL = 10 * time.Minute

// checkSessionID reports a session id that WithSession does not take.
func checkSessionID(id string) error {
	switch {
	case id == "":
		return &ConfigError{Field: "WithSession", Reason: "the session id is empty: give each flow a name of its own"}
	case len(id) > maxSessionID:
		return &ConfigError{Field: "WithSession", Value: id[:32] + "...",
			Reason: "the session id is longer than " + strconv.Itoa(maxSessionID) + " bytes"}
	}
	return nil
}

// tokenBase returns the part of {session} that comes from the id: the id
// itself when it is 1 to 32 ASCII letters and digits, else the first 16
// hexadecimal digits of its SHA-256. Gateways take letters and digits in
// a session name.
func tokenBase(id string) string {
	if plainToken(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:8])
}

func plainToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// sessionTemplate is a parsed PoolConfig.SessionUsername.
type sessionTemplate struct {
	raw string
}

// parseSessionTemplate checks PoolConfig.SessionUsername: it must name
// {session}, may name {user}, and holds no other braces.
func parseSessionTemplate(raw string) (*sessionTemplate, error) {
	if raw == "" {
		return nil, nil
	}
	bad := func(reason string) error {
		return &ConfigError{Field: "Pool.SessionUsername", Value: raw, Reason: reason}
	}
	if !strings.Contains(raw, "{session}") {
		return nil, bad("names no {session}: every session would get the same username, and so the same exit")
	}
	rest := strings.NewReplacer("{session}", "", "{user}", "").Replace(raw)
	if strings.ContainsAny(rest, "{}") {
		return nil, bad("has a brace that is not part of {user} or {session}, the only placeholders")
	}
	if strings.ContainsAny(raw, ":\r\n") {
		return nil, bad("contains a colon or a line break, which a username cannot carry")
	}
	return &sessionTemplate{raw: raw}, nil
}

// username returns the username of a session with token for the proxy's
// own username user.
func (t *sessionTemplate) username(user, token string) string {
	return strings.NewReplacer("{user}", user, "{session}", token).Replace(t.raw)
}

// session is one live session: the exit its requests share. Its fields
// are guarded by its shard's mutex.
type session struct {
	id    string
	token string  // what {session} becomes: it changes when the session moves
	exit  *member // the proxy; nil before the first request picked one
	prev  *member // the exit of the session it replaced, which expired; nil once bound
	moves uint32
	ban   bool  // its exit was banned since it was bound
	used  int64 // UnixNano of the last request
}

// sessionShards is how many locks the sessions of a pool are spread over.
const sessionShards = 64

// sessions are the live sessions of a pool, by id. Ended sessions are
// dropped when next looked up, and by a sweep of one shard at a time that
// lookups run now and then.
type sessions struct {
	ttl       time.Duration
	tokens    bool // the sessions need tokens: PoolConfig.SessionUsername is set
	seed      maphash.Seed
	nextSweep atomic.Uint64 // the shard the next sweep is of, modulo sessionShards
	serial    atomic.Uint64 // the last number of a token
	shards    [sessionShards]sessionShard
}

type sessionShard struct {
	mu      sync.Mutex
	byID    map[string]*session
	swept   int64 // UnixNano of the last sweep
	lookups uint32
}

// sweepEvery is how many lookups of a shard go between two sweeps, each of
// the next shard in turn: the sweeps cost a lookup little on average, and
// every shard is swept however the lookups fall.
const sweepEvery = 256

func newSessions(ttl time.Duration, tokens bool) *sessions {
	s := &sessions{ttl: ttl, tokens: tokens, seed: maphash.MakeSeed()}
	// Tokens of another run of the program, whose sessions a gateway may
	// still hold, are not made again.
	s.serial.Store(uint64(rand.Uint32()) << 8)
	return s
}

// newToken returns the {session} of a session of id that starts or moves:
// tokenBase(id), "x", and a number in base 36 that no other session or
// move of this pool had ("abc123x2kw0f4", then "abc123x2kw0f5" after a
// move).
func (s *sessions) newToken(id string) string {
	if !s.tokens {
		return ""
	}
	return tokenBase(id) + "x" + strconv.FormatUint(s.serial.Add(1), 36)
}

func (s *sessions) shard(id string) *sessionShard {
	return &s.shards[maphash.String(s.seed, id)%sessionShards]
}

// acquire returns the live session id, made anew if it had none or its
// last request is older than the TTL (expired then reports that), and
// marks it used at now.
func (s *sessions) acquire(id string, now time.Time) (sess *session, expired *session) {
	sess, expired, _, _ = s.open(id, now)
	return sess, expired
}

// open is acquire that also returns the session's exit and token, read
// under the same lock.
func (s *sessions) open(id string, now time.Time) (sess, expired *session, exit *member, token string) {
	n := now.UnixNano()
	sh := s.shard(id)
	sh.mu.Lock()
	if sh.byID == nil {
		sh.byID = map[string]*session{}
	}
	sh.lookups++
	sweep := sh.lookups%sweepEvery == 0
	sess = sh.byID[id]
	if sess != nil && n-sess.used > int64(s.ttl) {
		expired, sess = sess, nil
	}
	if sess == nil {
		sess = &session{id: id, token: s.newToken(id)}
		if expired != nil {
			sess.prev = expired.exit
		}
		sh.byID[id] = sess
	}
	sess.used = n
	exit, token = sess.exit, sess.token
	sh.mu.Unlock()
	if sweep {
		s.shards[s.nextSweep.Add(1)%sessionShards].sweep(n, int64(s.ttl))
	}
	return sess, expired, exit, token
}

// sweep drops the sessions of sh unused for ttl, unless it was swept
// less than ttl ago.
func (sh *sessionShard) sweep(now, ttl int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now-sh.swept < ttl {
		return
	}
	for id, sess := range sh.byID {
		if now-sess.used > ttl {
			delete(sh.byID, id)
		}
	}
	sh.swept = now
}

// exitOf returns the exit of sess and its token.
func (s *sessions) exitOf(sess *session) (*member, string) {
	sh := s.shard(sess.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sess.exit, sess.token
}

// bound is what bind did.
type bound struct {
	from  *member // the exit the session had; nil for its first
	prev  *member // for a first exit, that of the session it replaced, which expired
	moved bool
	ban   bool // the exit it left had been banned
	moves uint32
}

// bind records that sess's requests go to m from now on: its first exit,
// or, when it had another one or move is set (a gateway's exit that failed
// or was banned: the same proxy, and a new token for a new exit behind
// it), a move, which gets the session a new token.
func (s *sessions) bind(sess *session, m *member, move bool) bound {
	sh := s.shard(sess.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	b := bound{from: sess.exit, ban: sess.ban, moves: sess.moves}
	if b.from == nil {
		b.prev = sess.prev
	}
	if b.from == m && !move || b.from == nil {
		sess.exit, sess.prev = m, nil
		return b
	}
	sess.exit, sess.ban = m, false
	sess.moves++
	sess.token = s.newToken(sess.id)
	b.moved, b.moves = true, sess.moves
	return b
}

// claim makes m the exit of sess if it has none yet, and returns the exit
// it has, and the exit of the session it replaced (nil if none), once:
// requests of a new session that start at once agree on one exit.
func (s *sessions) claim(sess *session, m *member) (exit, prev *member) {
	sh := s.shard(sess.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sess.exit == nil {
		sess.exit, prev, sess.prev = m, sess.prev, nil
	}
	return sess.exit, prev
}

// markBanned records that m, the exit of sess, was banned, so that the
// session's move says so.
func (s *sessions) markBanned(sess *session, m *member) {
	sh := s.shard(sess.id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sess.exit == m {
		sess.ban = true
	}
}

// live returns how many sessions are held, ended ones not yet dropped
// included.
func (s *sessions) live() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.byID)
		sh.mu.Unlock()
	}
	return n
}

// sessionView is what a request knows of its session: the session, and
// its exit and token when the request started.
type sessionView struct {
	s     *session
	exit  *member
	token string
}

// openSession returns the session of req, nil for none, or the error of a
// session id WithSession does not take. A session that expired is
// replaced by a new one, on a new exit.
func (p *Pool) openSession(req *http.Request, now time.Time) (*sessionView, error) {
	id, ok := sessionOf(req.Context())
	if !ok {
		return nil, nil
	}
	if err := checkSessionID(id); err != nil {
		return nil, err
	}
	sess, _, exit, token := p.sessions.open(id, now)
	return &sessionView{s: sess, exit: exit, token: token}, nil
}

// claimExit gives sv the exit m (the request's first choice) if the
// session has none yet, and says so when it replaces one that expired.
func (p *Pool) claimExit(sv *sessionView, m *member) {
	if sv == nil || sv.exit != nil || m == nil {
		return
	}
	exit, prev := p.sessions.claim(sv.s, m)
	sv.exit = exit
	if prev != nil {
		p.obs.sessionMoved(SessionInfo{ID: sv.s.id, From: urlOf(prev), To: urlOf(exit), Reason: "expired"})
	}
}

// routeFor holds the route of m for a request of session sv (nil for
// none): with PoolConfig.SessionUsername, the route of the session's
// token, whose username names it.
func (p *Pool) routeFor(m *member, sv *sessionView, now time.Time) *route {
	if sv == nil || p.tmpl == nil {
		return p.set.hold(m, nil, now)
	}
	tmpl, token := p.tmpl, sv.token
	return m.routeAs(token, func(user string) string { return tmpl.username(user, token) }, now)
}

// bindSession records that m served a request of sv: the session's first
// exit, or a move to it from the exit it had, because that exit failed
// (or was out of rotation) or had been banned.
func (p *Pool) bindSession(sv *sessionView, m *member) {
	if m == sv.exit {
		return // where it was: nothing to record
	}
	b := p.sessions.bind(sv.s, m, false)
	if b.moved {
		reason := "failed"
		if b.ban {
			reason = "banned"
		}
		p.obs.sessionMoved(SessionInfo{ID: sv.s.id, From: urlOf(b.from), To: urlOf(m), Reason: reason, Moves: int(b.moves)})
	}
}

// moveSession moves sv to a new exit behind the gateway m, for reason: a
// new token, whose username the gateway gives another exit.
func (p *Pool) moveSession(sv *sessionView, m *member, reason string) {
	b := p.sessions.bind(sv.s, m, true)
	_, sv.token = p.sessions.exitOf(sv.s)
	p.obs.sessionMoved(SessionInfo{ID: sv.s.id, From: urlOf(m), To: urlOf(m), Reason: reason, Moves: int(b.moves)})
}
