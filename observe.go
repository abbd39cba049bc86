package proxyauth

import (
	"context"
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
	// StatusCode, Err and Duration describe the outcome (AttemptEnd
	// only): the status of the response or of the proxy's failure
	// answer, the typed error if any, and the time taken.
	StatusCode int
	Err        error
	Duration   time.Duration
}

// ChallengeInfo describes a proxy's demand for credentials.
type ChallengeInfo struct {
	Proxy      *url.URL
	Phase      string
	Attempt    int
	StatusCode int // 407, or 401 from a misconfigured proxy; 0 for SOCKS5
	Challenges []Challenge
	Rejected   bool // credentials were sent and refused
}

// RefreshInfo describes one call of the CredentialsFunc.
type RefreshInfo struct {
	Proxy    *url.URL
	Rejected bool  // it was asked because the proxy refused the previous credentials
	Err      error // its error, if any
	Duration time.Duration
}

// FailoverInfo describes a request moving from one proxy to the next.
type FailoverInfo struct {
	From, To *url.URL
	Target   string
	Err      error // why it left From
}

// ProxyStateInfo describes a change of a pool proxy's state.
type ProxyStateInfo struct {
	Proxy *url.URL
	State ProxyState
	Until time.Time // when a probe may bring it back; zero when readmitted
	Err   error     // the failure that caused it, if known
}

// observer sends what happens to the Logger and the Hooks of a Config.
type observer struct {
	log   *slog.Logger
	hooks Hooks
}

func (o *observer) enabled(level slog.Level) bool {
	return o.log != nil && o.log.Enabled(context.Background(), level)
}

// newObserver returns the observer of cfg, or nil when there is nothing to
// tell: the methods of a nil observer do nothing, so the hot path pays
// only a nil check.
func newObserver(cfg *Config) *observer {
	h := cfg.Hooks
	if cfg.Logger == nil && h.AttemptStart == nil && h.AttemptEnd == nil && h.Challenge == nil &&
		h.CredentialsRefreshed == nil && h.Failover == nil && h.ProxyStateChanged == nil {
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
	o.record(slog.LevelWarn, "proxyauth: failing over", slog.String("from", i.From.String()),
		slog.String("to", i.To.String()), slog.String("target", i.Target), errAttr(i.Err))
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
