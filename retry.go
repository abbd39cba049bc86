package proxyauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
)

// RetryPolicy is a [retryablehttp.CheckRetry] that knows this package's
// errors: it retries what another attempt may cure and was safe to send
// again, and nothing else. Use it as the CheckRetry of a
// [retryablehttp.Client] whose HTTPClient sends through a [Transport], or
// take the client [NewRetryClient] makes. It is safe for concurrent use.
//
// retryablehttp resends the whole request, body included (it buffers the
// body), whatever the policy says; so the question the policy answers is
// whether a request that failed may have reached the origin, and if so
// whether sending it twice is harmless. Its rules, in order:
//
//   - ctx is done: no retry, and ctx's error is returned, so that the caller
//     learns why the retries stopped. Another attempt would fail at once.
//   - A [*ProxyAuthError] or an [*AuthError]: no retry, and a nil error, so
//     that retryablehttp returns the request's own error, in which
//     [errors.As] finds the typed error. Credentials are not a passing
//     fault: the Transport has already asked its [CredentialsFunc] again
//     (up to Config.MaxAuthAttempts requests) and moved to other proxies of
//     its pool; resending credentials that were refused would only spend
//     the attempts after which some proxies lock the account.
//   - A certificate that does not verify, from the origin or an https://
//     proxy: no retry. Asking again gets the same certificate.
//   - A [*ProxyError] whose Op is "dial", "tls" or "socks": retry. The
//     request failed before the origin could have seen any of it.
//   - A [*ProxyError] whose Op is "connect": retry when the CONNECT got no
//     answer, or a status that says the proxy or the path beyond it is
//     failing for now (429, or 5xx but 501). The origin has seen nothing
//     either way, but a CONNECT refused with 403 or another 4xx is the
//     proxy's policy for that target, which another attempt does not
//     change.
//   - A [*ProxyError] whose Op is "tunnel" (the connection through a tunnel
//     broke with the request in it) is judged as "forward" below.
//   - A [*ProxyError] whose Op is "forward" with no status (the proxy broke
//     off while a plain http:// request was under way): retry only when the
//     request is idempotent, since the origin may have acted on it. The
//     method is read from the [*url.Error] that [http.Client] returns (its
//     Op is the method of the first request, "Get", "Post", ...) or from
//     resp.Request when a response handler made the error; an
//     Idempotency-Key field cannot be seen there, so such a POST is not
//     retried. A "forward" error with a status (made by [CheckResponse]
//     from a proxy's own answer) follows the rules for responses below.
//   - A [*PoolError]: retry when at least one of its causes would be
//     retried by these rules. When every proxy refused the credentials
//     there is nothing to retry; when one was unreachable, it may be back.
//   - A [*StatusError] (from CheckResponse in a response handler): the
//     rules for responses, on its status.
//   - Any other error: [retryablehttp.DefaultRetryPolicy] judges it. It
//     retries connection failures and refuses too many redirects, invalid
//     schemes and headers, and untrusted certificates.
//
// Responses, whatever their origin (a 5xx that a proxy made for a plain
// http:// request is a response too):
//
//   - 429 Too Many Requests and 503 Service Unavailable: retry. Both say
//     the request was not processed, and [retryablehttp.DefaultBackoff]
//     waits for as long as their Retry-After field asks.
//   - 502 Bad Gateway and 504 Gateway Timeout: retry only when the request
//     is idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or an
//     Idempotency-Key or X-Idempotency-Key field). A gateway may have
//     passed the request on before it failed. After a redirect, the method
//     that counts is the first request's, since that is the one resent.
//   - Anything else, 401 and 407 included: no retry. An origin's 500 or
//     404 is its answer to this request, and a 401 wants other
//     credentials, not the same ones again.
//
// With a retry of a response, RetryPolicy returns the error that
// [CheckResponse] makes of it. retryablehttp looks at that error only when
// the retries run out, and then returns it, wrapped, instead of a bare
// "giving up after N attempt(s)", so that [errors.As] finds the last
// status.
func RetryPolicy(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil {
		return retryErr(ctx, resp, err), nil
	}
	if resp == nil {
		return false, nil
	}
	if retryStatus(resp.StatusCode, resp.Request) {
		return true, CheckResponse(resp)
	}
	return false, nil
}

// retryErr reports whether the failure err deserves another attempt,
// following the rules of RetryPolicy.
func retryErr(ctx context.Context, resp *http.Response, err error) bool {
	var pool *PoolError
	if errors.As(err, &pool) {
		for _, cause := range pool.Errors {
			if retry, _ := judge(resp, err, cause); retry {
				return true
			}
		}
		return false
	}
	if retry, known := judge(resp, err, err); known {
		return retry
	}
	retry, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err)
	return retry
}

// judge applies the rules of RetryPolicy for this package's errors and
// certificate errors to cause, which is err or a cause of a [*PoolError]
// in it, and reports whether it knew cause. A pool moves to another proxy
// only after a typed failure, so an unknown cause of a PoolError is never
// retried.
func judge(resp *http.Response, err, cause error) (retry, known bool) {
	var (
		pae *ProxyAuthError
		ae  *AuthError
		pe  *ProxyError
		se  *StatusError
	)
	switch {
	case errors.As(cause, &pae), errors.As(cause, &ae), certError(cause):
		return false, true
	case errors.As(cause, &pe):
		switch pe.Op {
		case "dial", "tls", "socks":
			return true, true
		case "connect":
			return pe.StatusCode == 0 || pe.StatusCode == http.StatusTooManyRequests ||
				pe.StatusCode >= 500 && pe.StatusCode != http.StatusNotImplemented, true
		case "forward", "tunnel":
			req := requestOf(resp, err)
			if pe.StatusCode != 0 {
				return retryStatus(pe.StatusCode, req), true
			}
			return req != nil && idempotent(firstRequest(req)), true
		}
		return false, true
	case errors.As(cause, &se):
		return retryStatus(se.StatusCode, requestOf(resp, err)), true
	}
	return false, false
}

// retryStatus reports whether a response with status code to req
// deserves another attempt. req may be nil when unknown, which rules out
// the statuses that only idempotent requests may retry.
func retryStatus(code int, req *http.Request) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return true
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return req != nil && idempotent(firstRequest(req))
	}
	return false
}

// requestOf returns what is known of the request that failed with err:
// resp.Request when there is a response (err then comes from a response
// handler), else a request with only the method that the [*url.Error] of
// [http.Client] names, or nil when err is not one.
func requestOf(resp *http.Response, err error) *http.Request {
	if resp != nil && resp.Request != nil {
		return resp.Request
	}
	// Only the outermost error: http.Client's, whose Op is the method of
	// the first request in its redirect chain (urlErrorOp in net/http).
	ue, ok := err.(*url.Error)
	if !ok || ue.Op == "" {
		return nil
	}
	return &http.Request{Method: strings.ToUpper(ue.Op)}
}

// firstRequest returns the request that started the redirect chain r is
// part of: the one a retry sends again.
func firstRequest(r *http.Request) *http.Request {
	for r.Response != nil && r.Response.Request != nil {
		r = r.Response.Request
	}
	return r
}

// certError reports whether err is a certificate that failed to verify.
func certError(err error) bool {
	var (
		cve *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
	)
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he)
}

// NewRetryClient returns a [retryablehttp.Client] whose HTTPClient sends
// through a new [Transport] for cfg, with [RetryPolicy] as its CheckRetry
// and [retryablehttp.DefaultBackoff] as its Backoff (which waits as long as
// the Retry-After field of a 429 or 503 asks, however long that is: bound
// it with the request's context). The other settings (RetryMax 4,
// RetryWaitMin 1s, RetryWaitMax 30s, no ErrorHandler) are retryablehttp's
// defaults; change them on the returned client before its first use. An
// error from [New] is returned as it is.
//
// retryablehttp logs to standard error unless told otherwise; here its
// Logger is cfg.Logger (a [*slog.Logger] is a
// [retryablehttp.LeveledLogger]), which then receives retryablehttp's
// records as well as the Transport's, or nil, which keeps it silent.
//
// Each attempt that retryablehttp makes may try up to
// PoolConfig.MaxProxiesPerRequest proxies of a pool. When the retries run
// out, retryablehttp closes the idle connections of the HTTPClient (and so
// of the Transport) and returns an error in which [errors.As] finds this
// package's typed errors. To stop the probes of a pool, close the
// Transport: client.HTTPClient.Transport.(*proxyauth.Transport).Close().
func NewRetryClient(cfg Config) (*retryablehttp.Client, error) {
	tr, err := New(cfg)
	if err != nil {
		return nil, err
	}
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: tr}
	c.CheckRetry = RetryPolicy
	c.Backoff = retryablehttp.DefaultBackoff
	// Logger is an interface{}: a nil *slog.Logger stored in it would not
	// be nil, and retryablehttp would call its methods and panic.
	c.Logger = nil
	if cfg.Logger != nil {
		c.Logger = cfg.Logger
	}
	return c, nil
}
