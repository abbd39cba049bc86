package proxyauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/proxyauth/proxyauth/internal/pac"
	"github.com/proxyauth/proxyauth/internal/redact"
)

// Proxy auto-config: the proxies a PAC script names for each request, in
// order, tried with the pool's failover rules. Each distinct proxy the
// script names gets a pool member of its own, made when first named (and
// a route, made when first used), so that its health, statistics and
// connections are shared by every URL that the script sends to it.

const (
	// defaultPACRefresh is the default of Config.PACRefresh.
	defaultPACRefresh = 15 * time.Minute
	// pacRetry is how soon a failed refresh is tried again.
	pacRetry = time.Minute
	// pacMaxSize bounds a PAC script.
	pacMaxSize = 4 << 20
	// pacCacheTTL is how long the answer for one input of the script is
	// kept; pacCacheMax how many answers are.
	pacCacheTTL = 30 * time.Second
	pacCacheMax = 4096
)

// PACError reports that the PAC script could not be fetched or compiled,
// or gave no usable answer for a request. It matches [ErrPAC] with
// [errors.Is]. A failure to fetch or compile it when New runs is a
// [*ConfigError] for the field PAC instead; a failed refresh keeps the
// last good script and is logged.
type PACError struct {
	// PAC is where the script is, with any password masked.
	PAC string
	// Op is what failed: "fetch", "compile", "evaluate" (the script
	// threw, ran out of time or memory, or returned something other
	// than a string) or "result" (it returned no usable entry).
	Op string
	// Target is the request's URL, with any password masked; "" for
	// "fetch" and "compile".
	Target string
	// Result is what the script returned, at most 200 bytes of it, for
	// Op "result".
	Result string
	// Skipped lists the entries of Result that are not understood.
	Skipped []string
	// Err is the cause.
	Err error
}

// ErrPAC matches every [*PACError].
var ErrPAC = errors.New("proxyauth: the PAC script failed")

// Error describes the failure in one line.
func (e *PACError) Error() string {
	var b strings.Builder
	b.WriteString("proxyauth: PAC " + e.PAC)
	switch e.Op {
	case "fetch":
		b.WriteString(": cannot fetch the script")
	case "compile":
		b.WriteString(": cannot compile the script")
	case "evaluate":
		b.WriteString(": FindProxyForURL failed for " + e.Target)
	case "result":
		b.WriteString(": FindProxyForURL returned no usable entry for " + e.Target + ": " + quoted(e.Result))
	}
	if len(e.Skipped) > 0 {
		b.WriteString(" (not understood: " + strings.Join(e.Skipped, ", ") + ")")
	}
	if e.Err != nil {
		b.WriteString(": " + redact.Truncate(e.Err.Error(), maxCause))
	}
	return redact.Truncate(b.String(), maxText)
}

// Unwrap returns Err.
func (e *PACError) Unwrap() error { return e.Err }

// Is reports whether target is [ErrPAC].
func (e *PACError) Is(target error) bool { return target == ErrPAC }

// pacSource is a PAC script and the pool of the proxies it names.
type pacSource struct {
	where  string // Config.PAC, masked
	load   func(ctx context.Context) (string, error)
	opts   pac.Options
	every  time.Duration
	script atomic.Pointer[pac.Script]
	pool   *Pool
	obs    *observer
	creds  CredentialsFunc // Config.Credentials

	mu      sync.Mutex
	members map[string]*member // by proxy URL
	cache   map[pacKey]pacAnswer

	stop context.CancelFunc
	done chan struct{}
}

// pacKey identifies the script's input for a URL without making it: for
// an https:// target, whose input is its scheme and host, those alone;
// for others also the path and query. Made of the URL's own strings, it
// costs a cached lookup no allocation.
type pacKey struct{ scheme, host, path, query string }

func pacKeyOf(u *url.URL) pacKey {
	k := pacKey{scheme: u.Scheme, host: u.Host}
	if u.Scheme != "https" && u.Scheme != "wss" {
		k.path, k.query = u.EscapedPath(), u.RawQuery
	}
	return k
}

// pacAnswer is the script's answer for one input, resolved to members
// (nil for DIRECT), and when it expires.
type pacAnswer struct {
	list    []*member
	err     error
	expires time.Time
}

// newPACSource fetches and compiles the script that cfg.PAC names and
// starts its refresh.
func newPACSource(cfg *Config, base *http.Transport, obs *observer) (*pacSource, error) {
	s := &pacSource{
		where:   redact.Raw(cfg.PAC),
		obs:     obs,
		creds:   cfg.Credentials,
		every:   cfg.PACRefresh,
		members: map[string]*member{},
		cache:   map[pacKey]pacAnswer{},
		opts:    pac.Options{Resolver: cfg.PACResolver},
	}
	if s.every == 0 {
		s.every = defaultPACRefresh
	}
	load, err := pacLoader(cfg, base)
	if err != nil {
		return nil, err
	}
	s.load = load
	ctx, cancel := context.WithTimeout(context.Background(), pacFetchTimeout(cfg))
	defer cancel()
	script, err := s.fetch(ctx)
	if err != nil {
		var pe *PACError
		reason := err.Error()
		if errors.As(err, &pe) && pe.Err != nil {
			reason = "cannot " + pe.Op + " the script: " + redact.Truncate(pe.Err.Error(), maxCause)
		}
		return nil, &ConfigError{Field: "PAC", Value: s.where, Reason: reason}
	}
	s.script.Store(script)
	rctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	if s.every < 0 {
		close(s.done) // never refreshed
		return s, nil
	}
	go s.refreshLoop(rctx, pacFetchTimeout(cfg))
	return s, nil
}

// pacFetchTimeout bounds one fetch of the script: the proxy timeout, or
// its default.
func pacFetchTimeout(cfg *Config) time.Duration {
	if cfg.ProxyTimeout > 0 {
		return cfg.ProxyTimeout
	}
	return defaultProxyTimeout
}

// pacLoader returns the function that reads the script cfg.PAC names: an
// http:// or https:// URL fetched directly (never through a proxy, with
// Base's TLS settings), a file:// URL or a path.
func pacLoader(cfg *Config, base *http.Transport) (func(context.Context) (string, error), error) {
	where := cfg.PAC
	bad := func(reason string) error { return &ConfigError{Field: "PAC", Value: redact.Raw(where), Reason: reason} }
	u, err := url.Parse(where)
	switch {
	case err == nil && (u.Scheme == "http" || u.Scheme == "https"):
		if u.Host == "" {
			return nil, bad("the URL has no host")
		}
		t := base.Clone()
		t.Proxy = nil // the script names the proxies: it is never fetched through one
		client := &http.Client{Transport: t}
		return func(ctx context.Context) (string, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
			if err != nil {
				return "", err
			}
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return "", fmt.Errorf("the server answered %s", status(resp.StatusCode))
			}
			return readScript(resp.Body)
		}, nil
	case err == nil && u.Scheme == "file":
		path := u.Path
		if path == "" {
			return nil, bad("the file:// URL has no path")
		}
		return func(context.Context) (string, error) { return readFile(path) }, nil
	case err == nil && u.Scheme != "" && len(u.Scheme) > 1:
		return nil, bad("not an http://, https:// or file:// URL, nor a file path")
	}
	return func(context.Context) (string, error) { return readFile(where) }, nil
}

func readFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return readScript(f)
}

// readScript reads a script of at most pacMaxSize bytes.
func readScript(r io.Reader) (string, error) {
	b, err := io.ReadAll(io.LimitReader(r, pacMaxSize+1))
	if err != nil {
		return "", err
	}
	if len(b) > pacMaxSize {
		return "", fmt.Errorf("the script is larger than %d bytes", pacMaxSize)
	}
	return string(b), nil
}

// fetch reads and compiles the script.
func (s *pacSource) fetch(ctx context.Context) (*pac.Script, error) {
	src, err := s.load(ctx)
	if err != nil {
		return nil, &PACError{PAC: s.where, Op: "fetch", Err: err}
	}
	script, err := pac.Compile(src, s.opts)
	if err != nil {
		return nil, &PACError{PAC: s.where, Op: "compile", Err: err}
	}
	return script, nil
}

// refreshLoop fetches the script again every s.every, sooner after a
// failure, until ctx ends.
func (s *pacSource) refreshLoop(ctx context.Context, timeout time.Duration) {
	defer close(s.done)
	wait := s.every
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = s.every
		if err := s.refresh(ctx, timeout); err != nil {
			wait = min(pacRetry, s.every)
		}
	}
}

// refresh fetches and compiles the script again; on success it replaces
// the old one and forgets the cached answers, and on failure it keeps the
// old one and logs why.
func (s *pacSource) refresh(ctx context.Context, timeout time.Duration) error {
	fctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	script, err := s.fetch(fctx)
	if err != nil {
		if ctx.Err() == nil {
			s.obs.record(slog.LevelWarn, "proxyauth: PAC refresh failed; the last good script stays in use",
				slog.String("pac", s.where), errAttr(err))
		}
		return err
	}
	s.script.Store(script)
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
	s.obs.record(slog.LevelInfo, "proxyauth: PAC script refreshed", slog.String("pac", s.where))
	return nil
}

// close stops the refresh and waits for it to end.
func (s *pacSource) close() {
	s.stop()
	<-s.done
}

// list returns the proxies the script names for req, in order, nil
// standing for a direct connection.
func (s *pacSource) list(req *http.Request) ([]*member, error) {
	key := pacKeyOf(req.URL)
	now := time.Now()
	s.mu.Lock()
	a, ok := s.cache[key]
	s.mu.Unlock()
	if ok && now.Before(a.expires) {
		return a.list, a.err
	}
	in, host := pac.CutURL(req.URL)
	list, err := s.evaluate(req, in, host)
	if !lasting(err) {
		return list, err
	}
	s.mu.Lock()
	if len(s.cache) >= pacCacheMax {
		clear(s.cache)
	}
	s.cache[key] = pacAnswer{list: list, err: err, expires: now.Add(pacCacheTTL)}
	s.mu.Unlock()
	return list, err
}

// lasting reports whether the outcome err of an evaluation would be the
// same for the next request, and may be cached: an answer, or a script
// that threw or answered nothing usable; not a call cut short by its
// request's end, its time bound or its memory bound.
func lasting(err error) bool {
	var pe *pac.Error
	if !errors.As(err, &pe) {
		return true
	}
	return pe.Kind == pac.KindThrow || pe.Kind == pac.KindBadResult
}

// evaluate runs the script for the input in and host.
func (s *pacSource) evaluate(req *http.Request, in, host string) ([]*member, error) {
	target := redact.String(req.URL)
	result, err := s.script.Load().FindProxy(req.Context(), in, host)
	if err != nil {
		return nil, &PACError{PAC: s.where, Op: "evaluate", Target: target, Err: err}
	}
	entries, skipped := pac.ParseResult(result)
	if len(skipped) > 0 {
		s.obs.record(slog.LevelWarn, "proxyauth: PAC entries not understood", slog.String("pac", s.where),
			slog.String("target", target), slog.String("skipped", strings.Join(skipped, ", ")))
	}
	var list []*member
	for _, e := range entries {
		if e.Kind == pac.Direct {
			list = append(list, nil)
			continue
		}
		m, err := s.member(e)
		if err != nil {
			skipped = append(skipped, quoted(e.Addr))
			continue
		}
		list = append(list, m)
	}
	if len(list) == 0 {
		return nil, &PACError{PAC: s.where, Op: "result", Target: target, Result: result, Skipped: skipped}
	}
	return list, nil
}

// member returns the pool member of the proxy of e, made when first
// named.
func (s *pacSource) member(e pac.Entry) (*member, error) {
	raw := pacSchemes[e.Kind] + "://" + e.Addr
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.members[raw]; ok {
		return m, nil
	}
	spec, err := parseProxy("PAC", raw)
	if err != nil {
		return nil, err
	}
	m := s.pool.add(spec, s.creds)
	s.members[raw] = m
	return m, nil
}

// pacSchemes are the proxy URL schemes of the kinds of entries: PROXY and
// HTTP are http://, HTTPS https://, SOCKS and SOCKS5 socks5:// (SOCKS4 is
// not spoken: a script's "SOCKS" is taken for SOCKS5, as Chromium does).
var pacSchemes = map[pac.Kind]string{pac.HTTP: "http", pac.HTTPS: "https", pac.SOCKS5: "socks5"}

// roundTrip sends req through the proxies the script names for it, with
// the pool's failover rules: in the script's order, those in rotation
// (and DIRECT) first, then those out of rotation, so that every entry is
// tried before the request fails.
func (s *pacSource) roundTrip(req *http.Request) (*http.Response, error) {
	list, err := s.list(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	var buf [8]*member
	order := buf[:0]
	for _, m := range list {
		if m == nil || inRotation(m) {
			order = append(order, m)
		}
	}
	panicked := len(order) == 0
	for _, m := range list {
		if m != nil && !inRotation(m) {
			order = append(order, m)
		}
	}
	now := s.pool.now()
	sv, err := s.pool.openSession(req, now)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if sv != nil && len(order) > 0 {
		s.pool.claimExit(sv, order[0])
	}
	if sv != nil && sv.exit != nil {
		// A session's exit goes first while the script names it.
		if j := slices.Index(order, sv.exit); j > 0 {
			copy(order[1:j+1], order[:j])
			order[0] = sv.exit
		}
	}
	seq := sequence{list: order, n: min(len(order), s.pool.maxPerReq)}
	_, caller := proxyAuthorization(req.Header)
	return s.pool.walk(req, seq, now, panicked, caller, false, sv)
}

// inRotation reports whether m is healthy or not checked yet.
func inRotation(m *member) bool {
	st := ProxyState(m.state.Load())
	return st == StateHealthy || st == StateUnchecked
}
