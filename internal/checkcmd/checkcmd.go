// Package checkcmd is the proxycheck command as a package that tests can
// run: [Main] parses the command line, builds one [proxyauth.Transport] for
// the proxies to check, runs [proxyauth.Transport.CheckWith] and reports
// each proxy as a row of a table or a line of JSON, streamed in the list's
// order. The command in cmd/proxycheck only wires it to the process.
package checkcmd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/proxyauth/proxyauth"
)

// Env is what [Main] needs of its process. The proxies of the environment
// (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) are read by [proxyauth.New] from the
// process's environment, not through Getenv.
type Env struct {
	// Stdin is read for "-f -".
	Stdin io.Reader
	// Stdout receives the results: the table, or the JSON lines.
	Stdout io.Writer
	// Stderr receives errors, the password prompt and the progress line.
	Stderr io.Writer
	// StdinTerminal reports that Stdin is a terminal, where a password
	// can be asked for.
	StdinTerminal bool
	// StdoutTerminal reports that Stdout is a terminal.
	StdoutTerminal bool
	// StderrTerminal reports that Stderr is a terminal; with
	// StdoutTerminal, that both are the same one, so that the progress
	// line is cleared before each row.
	StderrTerminal bool
	// ReadPassword reads a line from the terminal without echo. nil: no
	// password can be asked for.
	ReadPassword func() ([]byte, error)
	// Getenv returns the value of an environment variable, "" when it is
	// unset (PROXYCHECK_PASSWORD). nil: none is set.
	Getenv func(string) string
}

// Exit statuses of [Main].
const (
	// ExitOK: every proxy passed.
	ExitOK = 0
	// ExitFailed: a proxy failed, no proxy could be checked, or the run
	// was interrupted.
	ExitFailed = 1
	// ExitUsage: bad usage or configuration.
	ExitUsage = 2
)

// PasswordEnv is the environment variable that holds the password for
// -user.
const PasswordEnv = "PROXYCHECK_PASSWORD"

const usageLine = "usage: proxycheck [-target URL] [-json] [-f FILE] [-timeout D] [-concurrency N] [-user NAME] [-pac URL]\n" +
	"                  [-progress auto|always|never] [-cacert FILE] [PROXY_URL ...]\n"

const usageText = usageLine + `
proxycheck checks each proxy with one GET of the target, from the network
layer up, and says which layer failed and what to do about it. The proxies
come from the arguments and -f together, or from -pac, or else from the
environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY). With -user, the password
comes from $PROXYCHECK_PASSWORD or, on a terminal, from a prompt; never
from the command line.

Exit status: 0 when every proxy passed, 1 when any failed, 2 for bad usage.

Flags:
`

// proxyTimeoutMargin is how much longer Config.ProxyTimeout is than the
// check's timeout.
const proxyTimeoutMargin = time.Second

// options is the parsed command line.
type options struct {
	target      string
	json        bool
	file        string
	timeout     time.Duration
	concurrency int
	user        string
	pac         string
	progress    string
	cacert      string
	args        []string // the PROXY_URL arguments
}

// usageError is bad usage: its message goes to stderr, with the usage
// when usage is set, and the exit status is 2.
type usageError struct {
	msg   string
	usage bool
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...), usage: true}
}

func configf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// Main runs proxycheck with args (without the program name) and returns
// its exit status: [ExitOK], [ExitFailed] or [ExitUsage]. When ctx ends
// (SIGINT), the checks under way stop, what is known is printed, and the
// status is ExitFailed.
func Main(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	code, err := run(ctx, args, env)
	var ue *usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintln(env.Stderr, "proxycheck: "+ue.msg)
		if ue.usage {
			fmt.Fprint(env.Stderr, usageLine)
		}
		return ExitUsage
	case err != nil:
		fmt.Fprintln(env.Stderr, "proxycheck: "+err.Error())
		return ExitFailed
	}
	return code
}

// parseFlags parses args. Flags may follow the proxy URLs; "--" ends them.
func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("proxycheck", flag.ContinueOnError)
	// Errors are reported by Main, with the usage line; -h prints it all.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.target, "target", "https://example.com/", "the `URL` to GET through each proxy")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per proxy and line instead of a table")
	fs.StringVar(&o.file, "f", "", "read proxy URLs from `FILE`, one per line (# starts a comment); - is stdin")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "bound the check of each proxy (and the fetch of a PAC script) to `D`")
	fs.IntVar(&o.concurrency, "concurrency", 16, "check `N` proxies at once")
	fs.StringVar(&o.user, "user", "", "authenticate to the proxies as `NAME` (password from $"+PasswordEnv+" or a prompt)")
	fs.StringVar(&o.pac, "pac", "", "check the proxies that the PAC script at `URL` (or file) names for the target")
	fs.StringVar(&o.progress, "progress", "auto", "when to show a progress line on stderr, for more than 10 proxies: `MODE` auto (stderr is a terminal), always or never")
	fs.StringVar(&o.cacert, "cacert", "", "trust the PEM certificates in `FILE` too, for the target and https:// proxies")
	for {
		before := len(args)
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stderr, usageText)
				fs.SetOutput(stderr)
				fs.PrintDefaults()
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := before - len(rest); n > 0 && args[n-1] == "--" {
			o.args = append(o.args, rest...)
			break
		}
		o.args = append(o.args, rest[0])
		args = rest[1:]
	}
	switch {
	case o.timeout <= 0:
		return nil, usagef("-timeout %v: must be more than 0", o.timeout)
	case o.concurrency < 1:
		return nil, usagef("-concurrency %d: must be at least 1", o.concurrency)
	case o.progress != "auto" && o.progress != "always" && o.progress != "never":
		return nil, usagef("-progress %q: must be auto, always or never", o.progress)
	case o.pac != "" && (len(o.args) > 0 || o.file != ""):
		return nil, usagef("-pac excludes proxy URLs given as arguments or with -f: give the proxies one way")
	}
	return o, nil
}

// run is Main, with its failures as errors.
func run(ctx context.Context, args []string, env Env) (int, error) {
	o, err := parseFlags(args, env.Stderr)
	if err != nil {
		return 0, err
	}
	list, err := readList(o, env.Stdin)
	if err != nil {
		return 0, err
	}
	cfg := proxyauth.Config{
		PAC:        o.pac,
		PACRefresh: -1, // one run needs one script
		// The check's Timeout bounds each check, its proxy phase
		// included; ProxyTimeout bounds the fetch of a PAC script. It is
		// a little longer than the check's so that the two never race
		// within a check: a black hole would then be reported one way or
		// the other by which timer fired first.
		ProxyTimeout: o.timeout + proxyTimeoutMargin,
	}
	for _, e := range list.entries {
		cfg.Proxies = append(cfg.Proxies, e.raw)
	}
	if o.cacert != "" {
		if cfg.Base, err = baseTrusting(o.cacert); err != nil {
			return 0, err
		}
	}
	if o.user != "" {
		if err := list.checkNoUserinfo(); err != nil {
			return 0, err
		}
		pass, err := password(ctx, o.user, env)
		if err != nil {
			return 0, err
		}
		cfg.Credentials = credentialsFunc(o.user, pass)
	}
	tr, err := proxyauth.New(cfg)
	if err != nil {
		return 0, list.explain(err, o)
	}
	defer tr.Close()

	proxies := proxiesFor(tr, o.target)
	rep := newReport(env.Stdout, o.json, proxies)
	prog := newProgress(env.Stderr, len(proxies), o.progress == "always" || o.progress == "auto" && env.StderrTerminal)
	if env.StdoutTerminal && env.StderrTerminal {
		rep.around = prog.around
	}
	prog.start()
	results, err := tr.CheckWith(ctx, o.target, proxyauth.CheckOptions{
		Timeout:     o.timeout,
		Concurrency: o.concurrency,
		OnResult: func(i int, r proxyauth.CheckResult) {
			prog.add(r.OK)
			rep.add(i, r, ctx.Err() != nil)
		},
	})
	prog.stop()
	var ce *proxyauth.ConfigError
	switch {
	case errors.As(err, &ce):
		return 0, list.explain(err, o)
	case err != nil:
		// No check could start: the failure is the one result.
		rep.add(0, proxyauth.CheckResult{Diagnosis: proxyauth.Diagnose(nil, err)}, false)
		rep.noneChecked = true
	case len(results) == 0:
		return 0, configf("the proxies for the target are an empty list: %s", whereProxiesComeFrom)
	}
	line := rep.summary(ctx.Err() != nil)
	if o.json {
		fmt.Fprintln(env.Stderr, line)
	} else {
		rep.line(line)
	}
	if err := rep.flush(); err != nil {
		return 0, fmt.Errorf("writing the results: %w", err)
	}
	if rep.failed > 0 || rep.notChecked > 0 || rep.noneChecked || ctx.Err() != nil {
		return ExitFailed, nil
	}
	return ExitOK, nil
}

// proxiesFor returns the proxies that a check of target goes through, for
// the widths of the table and the length of the progress; nil when they
// cannot be known yet (CheckWith then says why).
func proxiesFor(tr *proxyauth.Transport, target string) []*url.URL {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil
	}
	list, err := tr.ProxiesFor(req)
	if err != nil {
		return nil
	}
	return list
}

// baseTrusting returns the settings of http.DefaultTransport with the
// system's roots and the PEM certificates of file.
func baseTrusting(file string) (*http.Transport, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, configf("-cacert: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, configf("-cacert %s: holds no PEM certificate", file)
	}
	dt, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		dt = &http.Transport{}
	}
	base := dt.Clone()
	base.TLSClientConfig = &tls.Config{RootCAs: pool}
	return base, nil
}
