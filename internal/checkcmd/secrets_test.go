package checkcmd

import (
	"net/url"
	"strings"
	"testing"

	"github.com/proxyauth/proxyauth/internal/redact"
	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// TestNoPasswordInOutput runs passing, failing and refused cases with a
// distinctive password, given every way the command takes one, and looks
// for the password in every form it travels in (plain, percent-encoded,
// Basic's Base64) in everything the command printed.
func TestNoPasswordInOutput(t *testing.T) {
	const user, pass = "alice", "Zq9!s3cr3t#pw%Vx"
	forms := redact.CredentialForms(user, pass)
	origin := newOrigin(t, true)
	ca := caFile(t, origin)
	good := newProxy(t, nil, user, pass, false)
	refusing := newProxy(t, nil, user, "another one", false)
	tlsGood := newProxy(t, nil, user, pass, true)
	socksGood := proxyauthtest.NewSOCKS5Proxy(user, pass)
	t.Cleanup(socksGood.Close)
	socksRefusing := proxyauthtest.NewSOCKS5Proxy(user, "another one")
	t.Cleanup(socksRefusing.Close)
	dead := testnet.Closed(t)
	var open []string // enough proxies for the progress line
	for range shortList {
		open = append(open, openProxy(t).URL)
	}
	addr := func(p *proxyauthtest.Proxy) string { return p.Listener.Addr().String() }
	userinfo := url.UserPassword(user, pass).String()

	bare := append([]string{"http://" + addr(good), "http://" + addr(refusing), "https://" + addr(tlsGood),
		"socks5://" + socksGood.Addr(), "socks5://" + socksRefusing.Addr(), "http://" + dead}, open...)
	withUserinfo := append([]string{"http://" + userinfo + "@" + addr(good), "http://" + userinfo + "@" + addr(refusing),
		"https://" + userinfo + "@" + addr(tlsGood), "socks5://" + userinfo + "@" + socksGood.Addr(),
		"socks5://" + userinfo + "@" + socksRefusing.Addr(), "http://" + userinfo + "@" + dead}, open...)
	common := []string{"-progress", "always", "-cacert", ca, "-target", origin.URL + "/"}
	fromEnv := Env{Getenv: vars(PasswordEnv, pass)}
	prompt := Env{StdinTerminal: true, ReadPassword: func() ([]byte, error) { return []byte(pass), nil }}
	// Raw text the user may give, each wrong in a way of its own.
	badURLs := []string{
		"http://" + user + ":" + pass + "@127.0.0.1:3128",              // unencoded "#"
		"http://" + userinfo + "@127.0.0.1:31x28",                      // bad port
		"http://" + userinfo,                                           // no host
		"http://" + user + ":" + url.PathEscape(pass),                  // a password without "@host"
		"http://" + userinfo + "@127.0.0.1:3128/path",                  // a path
		"http://" + userinfo + "@127.0.0.1:3128 http://127.0.0.1:3129", // two on a line
		"ftp://" + userinfo + "@127.0.0.1:3128",                        // a scheme of no proxy
	}

	type run struct {
		name string
		env  Env
		args []string
		code int
	}
	var runs []run
	for _, asJSON := range []bool{false, true} {
		mode := "table"
		flags := common
		if asJSON {
			mode, flags = "json", append([]string{"-json"}, common...)
		}
		runs = append(runs,
			run{mode + "/-user from the environment", fromEnv, append(append([]string{"-user", user}, flags...), bare...), ExitFailed},
			run{mode + "/-user from a prompt", prompt, append(append([]string{"-user", user}, flags...), bare...), ExitFailed},
			run{mode + "/userinfo", Env{}, append(append([]string{}, flags...), withUserinfo...), ExitFailed},
			run{mode + "/userinfo, passing", Env{}, append(append(append([]string{}, flags...), withUserinfo[0], withUserinfo[2], withUserinfo[3]), open...), ExitOK},
			run{mode + "/-user, passing", fromEnv, append(append(append([]string{"-user", user}, flags...), bare[0], bare[2], bare[3]), open...), ExitOK},
			run{mode + "/userinfo and -user", fromEnv, append(append([]string{"-user", user}, flags...), withUserinfo...), ExitUsage},
			run{mode + "/userinfo twice", Env{}, append(append([]string{}, flags...), withUserinfo[0], withUserinfo[0]), ExitUsage},
		)
		for i, bad := range badURLs {
			runs = append(runs, run{mode + "/bad URL " + string(rune('a'+i)), Env{}, append(append([]string{}, flags...), open[0], bad), ExitUsage})
			file := writeFile(t, "proxies.txt", open[0]+"\n"+bad+" # the new one\n")
			runs = append(runs, run{mode + "/bad URL in a file " + string(rune('a'+i)), Env{}, append(append([]string{}, flags...), "-f", file), ExitUsage})
		}
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			got := runMain(t, r.env, r.args...)
			if got.code != r.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, r.code, got.stdout, got.stderr)
			}
			for _, f := range forms {
				if strings.Contains(got.stdout, f) || strings.Contains(got.stderr, f) {
					t.Errorf("the output holds the password as %q\nstdout:\n%s\nstderr:\n%s", f, got.stdout, got.stderr)
				}
			}
			if r.code != ExitUsage && !strings.Contains(got.stderr, "checked ") {
				t.Errorf("no progress line on stderr:\n%q", got.stderr)
			}
		})
	}
}
