package proxyauth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Hooks are functions the Transport calls as it works, for metrics and
// tracing. Each receives a struct, so that it can grow, and never a
// password or a Proxy-Authorization value. They are called synchronously,
// from the goroutine doing the work, outside any lock of the Transport: a
// hook may call Pool.Stats, but should be quick. Each may be nil.
type Hooks struct {
	// AttemptStart is called before a request is sent to a proxy.
	AttemptStart func(AttemptInfo)
	// AttemptEnd is called when the proxy's answer, or the failure, is
	// known.
	AttemptEnd func(AttemptInfo)
	// Challenge is called when a proxy asks for (other) credentials.
	Challenge func(ChallengeInfo)
	// CredentialsRefreshed is called after each call of the
	// CredentialsFunc.
	CredentialsRefreshed func(RefreshInfo)
	// Failover is called when a request moves to another proxy.
	Failover func(FailoverInfo)
	// ProxyStateChanged is called when a proxy of a pool is ejected,
	// marked auth-failed, or readmitted.
	ProxyStateChanged func(ProxyStateInfo)
	// SessionMoved is called when a session (see [WithSession]) moves
	// to a new exit.
	SessionMoved func(SessionInfo)
	// Ban is called when PoolConfig.Banned says that a proxy's exit is
	// blocked for a host.
	Ban func(BanInfo)
	// Hedge is called when a request starts on another proxy because
	// its proxy had not connected within PoolConfig.HedgeAfter, and
	// again when the race is decided.
	Hedge func(HedgeInfo)
}

// AttemptInfo describes one request sent to a proxy.
type AttemptInfo struct {
	// Proxy is the proxy, without userinfo.
	Proxy *url.URL
	// Method and Target are the request's method and URL (without
	// userinfo).
	Method, Target string
	// Phase is "plain" for a request forwarded by an HTTP proxy,
	// "CONNECT" for one through a tunnel, "socks" through SOCKS5.
	Phase string
	// Attempt counts the attempts at this proxy for this request, from 1.
	Attempt int
	// Scheme is the authentication scheme of the credentials sent, ""
	// for none (or credentials the caller set).
	Scheme string
	// StatusCode is the status of the response, or of the proxy's
	// answer to a failed attempt (407, a CONNECT's 503, ...); 0 when
	// there was none, and always in AttemptStart.
	StatusCode int
	// Err is the typed error of a failed attempt (AttemptEnd only); nil
	// when the attempt got a response.
	Err error
	// Duration is the time the attempt took, until its response header
	// or its failure (AttemptEnd only); 0 in AttemptStart.
	Duration time.Duration
}

// ChallengeInfo describes a proxy's demand for credentials.
type ChallengeInfo struct {
	// Proxy is the proxy, without userinfo.
	Proxy *url.URL
	// Phase is the phase of the attempt it answered, as in
	// AttemptInfo.Phase: "plain", "CONNECT" or "socks".
	Phase string
	// Attempt is the number of the attempt it answered, from 1, as in
	// AttemptInfo.Attempt.
	Attempt int
	// StatusCode is 407, or 401 from a misconfigured proxy; 0 for a
	// SOCKS5 proxy's refusal.
	StatusCode int
	// Challenges lists what the proxy offered, in its order; empty for
	// a SOCKS5 proxy or a 407 without Proxy-Authenticate.
	Challenges []Challenge
	// Rejected reports that credentials were sent and refused; false
	// when the attempt sent none.
	Rejected bool
}

// RefreshInfo describes one call of the CredentialsFunc.
type RefreshInfo struct {
	// Proxy is the proxy the credentials are for, without userinfo.
	Proxy *url.URL
	// Rejected reports that the call was made because the proxy refused
	// the previous credentials; false for the first call.
	Rejected bool
	// Err is the CredentialsFunc's error; nil when it succeeded.
	Err error
	// Duration is how long the call took.
	Duration time.Duration
}

// FailoverInfo describes a request moving from one proxy to the next.
type FailoverInfo struct {
	// From is the proxy the request leaves, without userinfo; nil for
	// a direct connection that a PAC named.
	From *url.URL
	// To is the proxy it tries next, without userinfo; nil for a direct
	// connection that a PAC named.
	To *url.URL
	// Target is the request's URL, with any password masked.
	Target string
	// Err is the failure at From that made the request move on.
	Err error
}

// ProxyStateInfo describes a change of a pool proxy's state.
type ProxyStateInfo struct {
	// Proxy is the proxy, without userinfo.
	Proxy *url.URL
	// State is its new state.
	State ProxyState
	// Until is when a probe may bring it back; zero when it is
	// readmitted.
	Until time.Time
	// Err is the failure that took it out of rotation, if known; nil
	// when it is readmitted.
	Err error
}

// SessionInfo describes a session moving to a new exit.
type SessionInfo struct {
	// ID is the session's id, as given to WithSession.
	ID string
	// From is the proxy of the exit it leaves, without userinfo; To the
	// proxy of the new one (the same, for a gateway that gives a new
	// session username a new exit).
	From, To *url.URL
	// Reason is why: "failed" (the proxy failed and the request failed
	// over), "banned" (PoolConfig.Banned said so) or "expired" (unused
	// for PoolConfig.SessionTTL; From is then the old exit, and To the
	// one the new session starts on).
	Reason string
	// Moves counts the session's moves so far, this one included; 0 for
	// a session that expired and starts anew.
	Moves int
}

// BanInfo describes an exit that a host blocked.
type BanInfo struct {
	// Proxy is the proxy, without userinfo.
	Proxy *url.URL
	// Host is the target host that blocked it; other hosts keep using
	// the proxy.
	Host string
	// Until is when the proxy may serve Host again.
	Until time.Time
	// Bans counts the bans of the proxy for Host, this one included.
	Bans uint64
	// StatusCode is the status of the banned response.
	StatusCode int
}

// HedgeInfo describes a hedged connection: a request that went to
// another proxy in parallel while its proxy was still connecting.
type HedgeInfo struct {
	// From is the proxy that had not connected, without userinfo.
	From *url.URL
	// To is the proxy tried in parallel, without userinfo.
	To *url.URL
	// Target is the request's URL, with any password masked.
	Target string
	// After is how long From had been connecting when To started; when
	// the race is decided, how long the race took.
	After time.Duration
	// Decided is false when To starts, and true when the race is
	// decided; Winner is then the proxy whose connection the request
	// took, nil when none connected.
	Decided bool
	// Winner is the proxy that connected first, once Decided.
	Winner *url.URL
}

// observer sends what happens to the Logger and the Hooks of a Config.
type observer struct {
	log   *slog.Logger
	hooks Hooks
}

func (o *observer) enabled(level slog.Level) bool {
	return o != nil && o.log != nil && o.log.Enabled(context.Background(), level)
}

// newObserver returns the observer of cfg, or nil when there is nothing to
// tell: the methods of a nil observer do nothing, so the hot path pays
// only a nil check.
func newObserver(cfg *Config) *observer {
	h := cfg.Hooks
	if cfg.Logger == nil && h.AttemptStart == nil && h.AttemptEnd == nil && h.Challenge == nil &&
		h.CredentialsRefreshed == nil && h.Failover == nil && h.ProxyStateChanged == nil &&
		h.SessionMoved == nil && h.Ban == nil && h.Hedge == nil {
		return nil
	}
	return &observer{log: cfg.Logger, hooks: h}
}

func (o *observer) record(level slog.Level, msg string, attrs ...slog.Attr) {
	if o.enabled(level) {
		o.log.LogAttrs(context.Background(), level, msg, attrs...)
	}
}

func errAttr(err error) slog.Attr {
	if err == nil {
		return slog.Attr{}
	}
	return slog.String("error", secretsOf(err).Bound(err.Error(), maxText))
}

func (o *observer) attemptStart(i AttemptInfo) {
	if o == nil {
		return
	}
	if o.hooks.AttemptStart != nil {
		o.hooks.AttemptStart(i)
	}
	o.record(slog.LevelDebug, "proxyauth: attempt", slog.String("proxy", i.Proxy.String()), slog.String("phase", i.Phase),
		slog.String("method", i.Method), slog.String("target", i.Target), slog.Int("attempt", i.Attempt),
		slog.String("scheme", i.Scheme))
}

func (o *observer) attemptEnd(i AttemptInfo) {
	if o == nil {
		return
	}
	if o.hooks.AttemptEnd != nil {
		o.hooks.AttemptEnd(i)
	}
	level := slog.LevelDebug
	kind := Classify(nil, i.Err)
	switch {
	case i.Err == nil:
		kind = KindOK
		if i.StatusCode >= 400 {
			kind = Classify(&http.Response{StatusCode: i.StatusCode, Header: http.Header{}}, nil)
		}
	case errors.Is(i.Err, errLostRace):
		// Not a failure: another proxy connected first.
	case kind == KindProxyAuth:
		level = slog.LevelInfo
	default:
		level = slog.LevelWarn
	}
	o.record(level, "proxyauth: attempt done", slog.String("proxy", i.Proxy.String()), slog.String("phase", i.Phase),
		slog.String("method", i.Method), slog.String("target", i.Target), slog.Int("attempt", i.Attempt),
		slog.String("scheme", i.Scheme), slog.Int("status", i.StatusCode), slog.String("outcome", kind.String()),
		slog.Duration("duration", i.Duration), errAttr(i.Err))
}

func (o *observer) challenge(i ChallengeInfo) {
	if o == nil {
		return
	}
	if o.hooks.Challenge != nil {
		o.hooks.Challenge(i)
	}
	o.record(slog.LevelInfo, "proxyauth: proxy asked for credentials", slog.String("proxy", i.Proxy.String()),
		slog.String("phase", i.Phase), slog.Int("attempt", i.Attempt), slog.Int("status", i.StatusCode),
		slog.String("offers", strings.TrimPrefix(offers(i.Challenges), "; ")), slog.Bool("rejected", i.Rejected))
}

func (o *observer) refreshed(i RefreshInfo) {
	if o == nil {
		return
	}
	if o.hooks.CredentialsRefreshed != nil {
		o.hooks.CredentialsRefreshed(i)
	}
	level := slog.LevelInfo
	if i.Err != nil {
		level = slog.LevelWarn
	}
	o.record(level, "proxyauth: credentials function called", slog.String("proxy", i.Proxy.String()),
		slog.Bool("rejected", i.Rejected), slog.Duration("duration", i.Duration), errAttr(i.Err))
}

func (o *observer) failover(i FailoverInfo) {
	if o == nil {
		return
	}
	if o.hooks.Failover != nil {
		o.hooks.Failover(i)
	}
	o.record(slog.LevelWarn, "proxyauth: failing over", slog.String("from", hopName(i.From)),
		slog.String("to", hopName(i.To)), slog.String("target", i.Target), errAttr(i.Err))
}

// hopName names a proxy for a log record, or "DIRECT" for a direct
// connection (nil).
func hopName(u *url.URL) string {
	if u == nil {
		return "DIRECT"
	}
	return u.String()
}

func (o *observer) stateChanged(i ProxyStateInfo) {
	if o == nil {
		return
	}
	if o.hooks.ProxyStateChanged != nil {
		o.hooks.ProxyStateChanged(i)
	}
	level, msg := slog.LevelWarn, "proxyauth: proxy out of rotation"
	if i.State == StateHealthy {
		level, msg = slog.LevelInfo, "proxyauth: proxy in rotation"
	}
	attrs := []slog.Attr{slog.String("proxy", i.Proxy.String()), slog.String("state", i.State.String()), errAttr(i.Err)}
	if !i.Until.IsZero() {
		attrs = append(attrs, slog.Time("until", i.Until))
	}
	o.record(level, msg, attrs...)
}

func (o *observer) sessionMoved(i SessionInfo) {
	if o == nil {
		return
	}
	if o.hooks.SessionMoved != nil {
		o.hooks.SessionMoved(i)
	}
	o.record(slog.LevelInfo, "proxyauth: session moved", slog.String("session", i.ID),
		slog.String("from", hopName(i.From)), slog.String("to", hopName(i.To)),
		slog.String("reason", i.Reason), slog.Int("moves", i.Moves))
}

func (o *observer) banned(i BanInfo) {
	if o == nil {
		return
	}
	if o.hooks.Ban != nil {
		o.hooks.Ban(i)
	}
	o.record(slog.LevelWarn, "proxyauth: exit banned", slog.String("proxy", i.Proxy.String()),
		slog.String("host", i.Host), slog.Time("until", i.Until), slog.Uint64("bans", i.Bans),
		slog.Int("status", i.StatusCode))
}

func (o *observer) hedge(i HedgeInfo) {
	if o == nil {
		return
	}
	if o.hooks.Hedge != nil {
		o.hooks.Hedge(i)
	}
	if !i.Decided {
		o.record(slog.LevelInfo, "proxyauth: hedging", slog.String("from", i.From.String()),
			slog.String("to", i.To.String()), slog.String("target", i.Target), slog.Duration("after", i.After))
		return
	}
	winner := "none"
	if i.Winner != nil {
		winner = i.Winner.String()
	}
	o.record(slog.LevelInfo, "proxyauth: hedge decided", slog.String("first", i.From.String()),
		slog.String("last", i.To.String()), slog.String("target", i.Target), slog.String("winner", winner),
		slog.Duration("after", i.After))
}
