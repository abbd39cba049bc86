// Command proxycheck checks HTTP, HTTPS and SOCKS5 proxies: for each one it
// makes one GET of a target through the proxy, from the network layer up,
// and says which layer failed (network, proxy, proxy-auth, tls, origin,
// origin-auth) and what to do about it.
//
// Install or run it with:
//
//	go install github.com/proxyauth/proxyauth/cmd/proxycheck@latest
//	go run github.com/proxyauth/proxyauth/cmd/proxycheck@latest http://proxy.example:3128
//
// Usage:
//
//	proxycheck [-target URL] [-json] [-f FILE] [-timeout D] [-concurrency N] [-user NAME] [-pac URL]
//	           [-progress auto|always|never] [-cacert FILE] [PROXY_URL ...]
//
// The proxies come from one of three places:
//
//   - PROXY_URL arguments and the lines of -f FILE, together ("-f -" reads
//     stdin; blank lines and "#" comments are ignored). A URL without a
//     scheme is http://; userinfo (http://user:pass@host:port) gives the
//     credentials, percent-encoded.
//   - -pac URL: the proxies that the PAC script (an http://, https:// or
//     file:// URL, or a file path) names for the target, DIRECT included.
//   - Otherwise the environment: HTTPS_PROXY, HTTP_PROXY and NO_PROXY (and
//     their lower-case forms) as they apply to the target.
//
// The flags:
//
//	-target URL          the URL to GET through each proxy (default https://example.com/)
//	-json                one JSON object per proxy and line on stdout, instead of a table
//	-timeout D           the bound of each proxy's check, and about that of the PAC script's
//	                     fetch (default 10s)
//	-concurrency N       how many proxies are checked at once (default 16)
//	-user NAME           the username for every proxy that asks; the password comes from
//	                     $PROXYCHECK_PASSWORD or, on a terminal, a prompt, never from the
//	                     command line
//	-progress MODE       a progress line on stderr for lists of more than 10 proxies:
//	                     auto (when stderr is a terminal), always or never
//	-cacert FILE         PEM certificates to trust besides the system's, for the target and
//	                     https:// proxies (TLS interception, test servers)
//
// The table has a row per proxy in the list's order (PROXY, RESULT,
// LAYER, AUTH, STATUS, CONNECT, LATENCY), each failure's summary and hints
// under it, and a final count. With -json each line holds the keys proxy,
// ok, layer, summary, hints, scheme, status, latency_ms, addr, connect_ms,
// auth_required and offered, and the count goes to stderr. No password is
// ever printed.
//
// Exit status: 0 when every proxy passed, 1 when any failed (or the run was
// interrupted), 2 for bad usage or configuration.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/proxyauth/proxyauth/internal/checkcmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, a second one ends the process at once.
		<-ctx.Done()
		stop()
	}()
	fd := int(os.Stdin.Fd())
	stdinTerminal := term.IsTerminal(fd)
	var saved *term.State
	if stdinTerminal {
		// A password prompt interrupted by a signal leaves echo off:
		// the state is restored on the way out.
		saved, _ = term.GetState(fd)
	}
	code := checkcmd.Main(ctx, os.Args[1:], checkcmd.Env{
		Stdin:          os.Stdin,
		Stdout:         os.Stdout,
		Stderr:         os.Stderr,
		StdinTerminal:  stdinTerminal,
		StdoutTerminal: term.IsTerminal(int(os.Stdout.Fd())),
		StderrTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		ReadPassword:   func() ([]byte, error) { return term.ReadPassword(fd) },
		Getenv:         os.Getenv,
	})
	if saved != nil {
		term.Restore(fd, saved)
	}
	stop()
	os.Exit(code)
}
