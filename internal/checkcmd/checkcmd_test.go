package checkcmd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth/internal/testnet"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func TestExitStatus(t *testing.T) {
	origin := newOrigin(t, false)
	good := openProxy(t)
	dead := "http://" + testnet.Closed(t)
	target := origin.URL + "/"
	file := writeFile(t, "proxies.txt", "# the office proxies\n\n"+good.URL+"  # the main one\n   \nhttp://127.0.0.1:31x28\n")
	dupes := writeFile(t, "dupes.txt", good.URL+"\n# again:\n"+strings.ToUpper(good.URL)+"/\n")
	comments := writeFile(t, "comments.txt", "# nothing here\n\n   # nor here\n")
	tests := []struct {
		name   string
		args   []string
		env    Env
		code   int
		stderr []string // each must be in stderr
	}{
		{"all pass", []string{"-target", target, good.URL}, Env{}, ExitOK, nil},
		{"one fails", []string{"-target", target, good.URL, dead}, Env{}, ExitFailed, nil},
		{"flags after the proxies", []string{good.URL, "-target", target, "-json"}, Env{}, ExitOK, nil},
		{"unknown flag", []string{"-nope", good.URL}, Env{}, ExitUsage,
			[]string{"flag provided but not defined: -nope", "usage: proxycheck"}},
		{"bad duration", []string{"-timeout", "soon", good.URL}, Env{}, ExitUsage, []string{"-timeout", "usage: proxycheck"}},
		{"zero timeout", []string{"-timeout", "0s", good.URL}, Env{}, ExitUsage, []string{"-timeout 0s: must be more than 0"}},
		{"zero concurrency", []string{"-concurrency", "0", good.URL}, Env{}, ExitUsage, []string{"-concurrency 0"}},
		{"bad progress", []string{"-progress", "sometimes", good.URL}, Env{}, ExitUsage, []string{`-progress "sometimes"`}},
		{"bad target", []string{"-target", "ftp://example.com/", good.URL}, Env{}, ExitUsage, []string{`-target: "ftp://example.com/": is not`}},
		{"bad URL in a file", []string{"-target", target, "-f", file}, Env{}, ExitUsage,
			[]string{"proxies.txt:5: ", `"http://127.0.0.1:xxxxx"`, "not a number from 1 to 65535"}},
		{"bad URL as an argument", []string{"-target", target, good.URL, "http//127.0.0.1:3128", good.URL + "0"}, Env{}, ExitUsage,
			[]string{"argument 2: ", `missing "://"`}},
		{"duplicate in a file", []string{"-target", target, "-f", dupes}, Env{}, ExitUsage,
			[]string{"dupes.txt:3: ", "the same proxy as " + dupes + ":1"}},
		{"duplicate across an argument and a file", []string{"-target", target, "-f", dupes, dead, dead}, Env{}, ExitUsage,
			[]string{"argument 2: ", "the same proxy as argument 1"}},
		{"pac with arguments", []string{"-pac", "file:///nonexistent.pac", good.URL}, Env{}, ExitUsage,
			[]string{"-pac excludes proxy URLs", "usage: proxycheck"}},
		{"pac with a file", []string{"-pac", "file:///nonexistent.pac", "-f", file}, Env{}, ExitUsage,
			[]string{"-pac excludes proxy URLs"}},
		{"pac that cannot be read", []string{"-pac", "/nonexistent/proxy.pac"}, Env{}, ExitUsage, []string{"-pac: "}},
		{"user without a password", []string{"-user", "alice", good.URL}, Env{}, ExitUsage,
			[]string{"-user alice needs a password", PasswordEnv}},
		{"user with a terminal but no way to read", []string{"-user", "alice", good.URL}, Env{StdinTerminal: true}, ExitUsage,
			[]string{"-user alice needs a password"}},
		{"user and userinfo", []string{"-user", "alice", good.URL, "http://bob:hunter2@127.0.0.1:3128"},
			Env{Getenv: vars(PasswordEnv, "pw")}, ExitUsage,
			[]string{`argument 2: "http://xxxxx@127.0.0.1:3128": has a username and password, and -user gives them too`}},
		{"file of comments only", []string{"-f", comments}, Env{}, ExitUsage,
			[]string{"comments.txt names no proxy", "-pac URL", "HTTPS_PROXY"}},
		{"empty stdin", []string{"-f", "-"}, Env{Stdin: strings.NewReader("\n#\n")}, ExitUsage,
			[]string{"stdin names no proxy"}},
		{"file that does not exist", []string{"-f", "/nonexistent/proxies.txt"}, Env{}, ExitUsage, []string{"-f: "}},
		{"cacert that does not exist", []string{"-cacert", "/nonexistent/ca.pem", good.URL}, Env{}, ExitUsage, []string{"-cacert: "}},
		{"cacert without a certificate", []string{"-cacert", comments, good.URL}, Env{}, ExitUsage, []string{"holds no PEM certificate"}},
		{"help", []string{"-h"}, Env{}, ExitOK, []string{"usage: proxycheck", "-concurrency N", "Exit status"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runMain(t, tt.env, tt.args...)
			if got.code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", got.code, tt.code, got.stdout, got.stderr)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(got.stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, got.stderr)
				}
			}
			if tt.code == ExitUsage && got.stdout != "" {
				t.Errorf("stdout is not empty after bad usage:\n%s", got.stdout)
			}
		})
	}
}

func TestProxiesFromStdinAndArguments(t *testing.T) {
	origin := newOrigin(t, false)
	a, b, c := openProxy(t), openProxy(t), openProxy(t)
	got := runMain(t, Env{Stdin: strings.NewReader(b.URL + "\n" + c.URL + " # last\n")},
		"-json", "-target", origin.URL, a.URL, "-f", "-")
	if got.code != ExitOK {
		t.Fatalf("exit status %d, want 0; stderr:\n%s", got.code, got.stderr)
	}
	rows := decodeLines(t, got.stdout)
	if len(rows) != 3 {
		t.Fatalf("%d JSON lines, want 3:\n%s", len(rows), got.stdout)
	}
	for i, want := range []string{a.URL, b.URL, c.URL} {
		if rows[i]["proxy"] != want {
			t.Errorf("line %d: proxy %v, want %s (arguments first, then the file)", i+1, rows[i]["proxy"], want)
		}
	}
}

func TestProxiesFromEnvironment(t *testing.T) {
	origin := newOrigin(t, false)
	p := proxyauthtest.NewUnstartedProxy("", "")
	p.Auth = openAuth{}
	p.DialContext = dialTo(origin.Listener.Addr().String())
	p.Start()
	t.Cleanup(p.Close)

	t.Run("proxy", func(t *testing.T) {
		unsetProxyEnv(t)
		t.Setenv("HTTP_PROXY", p.URL)
		got := runMain(t, Env{}, "-json", "-target", "http://origin.test/")
		if got.code != ExitOK {
			t.Fatalf("exit status %d, want 0; stdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
		}
		rows := decodeLines(t, got.stdout)
		if len(rows) != 1 || rows[0]["proxy"] != p.URL || rows[0]["status"] != 200.0 {
			t.Errorf("results %v, want one through %s with status 200", rows, p.URL)
		}
		if reqs := p.Requests(); len(reqs) != 1 || reqs[0].Target != "http://origin.test/" {
			t.Errorf("the proxy received %+v, want one GET of http://origin.test/", reqs)
		}
	})
	t.Run("direct", func(t *testing.T) {
		unsetProxyEnv(t)
		t.Setenv("HTTP_PROXY", p.URL)
		got := runMain(t, Env{}, "-target", origin.URL+"/") // loopback: never proxied
		if got.code != ExitOK {
			t.Fatalf("exit status %d, want 0; stdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
		}
		rows := lines(got.stdout)
		if len(rows) != 3 || !strings.HasPrefix(rows[1], "DIRECT ") {
			t.Errorf("table:\n%s\nwant a header, a DIRECT row and the count", got.stdout)
		}
	})
	t.Run("bad value", func(t *testing.T) {
		unsetProxyEnv(t)
		t.Setenv("HTTPS_PROXY", "http://alice:s3cr3t@127.0.0.1:31x28")
		got := runMain(t, Env{}, "-target", "https://origin.test/")
		if got.code != ExitUsage || !strings.Contains(got.stderr, "the environment variable HTTPS_PROXY: ") {
			t.Errorf("exit status %d, stderr:\n%s\nwant 2 and a message naming HTTPS_PROXY", got.code, got.stderr)
		}
		if strings.Contains(got.stderr, "s3cr3t") {
			t.Errorf("stderr shows the password:\n%s", got.stderr)
		}
	})
	t.Run("userinfo and -user", func(t *testing.T) {
		unsetProxyEnv(t)
		t.Setenv("HTTPS_PROXY", "http://alice:s3cr3t@127.0.0.1:3128")
		got := runMain(t, Env{Getenv: vars(PasswordEnv, "other")}, "-user", "bob", "-target", "https://origin.test/")
		if got.code != ExitUsage || !strings.Contains(got.stderr, "HTTPS_PROXY") || !strings.Contains(got.stderr, bothCredentials) {
			t.Errorf("exit status %d, stderr:\n%s\nwant 2 and a message about both credentials", got.code, got.stderr)
		}
	})
	t.Run("none", func(t *testing.T) {
		unsetProxyEnv(t)
		got := runMain(t, Env{}, "-target", origin.URL)
		if got.code != ExitUsage || !strings.Contains(got.stderr, "the environment names none") ||
			!strings.Contains(got.stderr, whereProxiesComeFrom) {
			t.Errorf("exit status %d, stderr:\n%s\nwant 2 and where proxies can come from", got.code, got.stderr)
		}
	})
}

func TestProxiesFromPAC(t *testing.T) {
	origin := newOrigin(t, false)
	p := openProxy(t)
	pacFile := writeFile(t, "proxy.pac", `function FindProxyForURL(url, host) {
	if (url.indexOf("/fail") >= 0) { throw "no rule for " + url; }
	return "PROXY `+p.Listener.Addr().String()+`; DIRECT";
}`)
	got := runMain(t, Env{}, "-json", "-pac", pacFile, "-target", origin.URL+"/")
	if got.code != ExitOK {
		t.Fatalf("exit status %d, want 0; stdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
	}
	rows := decodeLines(t, got.stdout)
	if len(rows) != 2 || rows[0]["proxy"] != p.URL || rows[1]["proxy"] != "DIRECT" {
		t.Errorf("results %v, want the proxy then DIRECT", rows)
	}

	// A script that fails for the target: one failure, no proxy.
	got = runMain(t, Env{}, "-json", "-pac", pacFile, "-target", origin.URL+"/fail")
	if got.code != ExitFailed {
		t.Fatalf("exit status %d, want 1; stdout:\n%s\nstderr:\n%s", got.code, got.stdout, got.stderr)
	}
	rows = decodeLines(t, got.stdout)
	if len(rows) != 1 || rows[0]["proxy"] != nil || rows[0]["ok"] != false || !strings.Contains(rows[0]["summary"].(string), "PAC") {
		t.Errorf("results %v, want one failure with proxy null naming the PAC script", rows)
	}
	if !strings.Contains(got.stderr, "no proxy could be checked") {
		t.Errorf("stderr:\n%s\nwant the count line", got.stderr)
	}
	got = runMain(t, Env{}, "-pac", pacFile, "-target", origin.URL+"/fail")
	if rows := lines(got.stdout); got.code != ExitFailed || len(rows) < 3 || !strings.HasPrefix(rows[1], "- ") {
		t.Errorf("exit status %d, table:\n%s\nwant 1 and a row for no proxy", got.code, got.stdout)
	}
}

func TestUser(t *testing.T) {
	origin := newOrigin(t, false)
	p := newProxy(t, nil, "alice", "wonderland", false)
	t.Run("from the environment", func(t *testing.T) {
		read := 0
		env := Env{Getenv: vars(PasswordEnv, "wonderland"), StdinTerminal: true,
			ReadPassword: func() ([]byte, error) { read++; return nil, errors.New("not asked") }}
		got := runMain(t, env, "-json", "-user", "alice", "-target", origin.URL, p.URL)
		if got.code != ExitOK || read != 0 {
			t.Fatalf("exit status %d, %d prompts; want 0 and none; stdout:\n%s\nstderr:\n%s", got.code, read, got.stdout, got.stderr)
		}
		if row := decodeLines(t, got.stdout)[0]; row["scheme"] != "Basic" || row["auth_required"] != true {
			t.Errorf("result %v, want Basic accepted after a challenge", row)
		}
	})
	t.Run("from the terminal", func(t *testing.T) {
		read := 0
		env := Env{StdinTerminal: true, ReadPassword: func() ([]byte, error) { read++; return []byte("wonderland"), nil }}
		got := runMain(t, env, "-user", "alice", "-target", origin.URL, p.URL)
		if got.code != ExitOK || read != 1 {
			t.Fatalf("exit status %d, %d prompts; want 0 and one; stdout:\n%s\nstderr:\n%s", got.code, read, got.stdout, got.stderr)
		}
		if !strings.HasPrefix(got.stderr, "Password for alice: \n") {
			t.Errorf("stderr:\n%q\nwant the prompt", got.stderr)
		}
	})
	t.Run("prompt fails", func(t *testing.T) {
		env := Env{StdinTerminal: true, ReadPassword: func() ([]byte, error) { return nil, errors.New("inappropriate ioctl") }}
		got := runMain(t, env, "-user", "alice", "-target", origin.URL, p.URL)
		if got.code != ExitUsage || !strings.Contains(got.stderr, "reading the password: inappropriate ioctl") {
			t.Errorf("exit status %d, stderr:\n%s\nwant 2 and the cause", got.code, got.stderr)
		}
	})
	t.Run("interrupted at the prompt", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		defer close(release)
		asked := make(chan struct{})
		env := Env{StdinTerminal: true, ReadPassword: func() ([]byte, error) {
			close(asked)
			<-release
			return nil, errors.New("released")
		}}
		var stdout, stderr syncBuffer
		env.Stdout, env.Stderr = &stdout, &stderr
		done := make(chan int, 1)
		go func() { done <- Main(ctx, []string{"-user", "alice", "-target", origin.URL, p.URL}, env) }()
		select {
		case <-asked:
		case <-time.After(runBound):
			t.Fatal("the password was never asked for")
		}
		cancel()
		select {
		case code := <-done:
			if code != ExitFailed || !strings.Contains(stderr.String(), "interrupted while waiting for the password") {
				t.Errorf("exit status %d, stderr:\n%s\nwant 1 and the interruption", code, stderr.String())
			}
		case <-time.After(runBound):
			t.Fatal("Main did not return after the interruption")
		}
	})
	t.Run("rejected", func(t *testing.T) {
		p.ResetRequests()
		got := runMain(t, Env{Getenv: vars(PasswordEnv, "looking-glass")}, "-json", "-user", "alice", "-target", origin.URL, p.URL)
		if got.code != ExitFailed {
			t.Fatalf("exit status %d, want 1; stderr:\n%s", got.code, got.stderr)
		}
		row := decodeLines(t, got.stdout)[0]
		if row["layer"] != "proxy-auth" || !strings.Contains(row["summary"].(string), "the proxy rejected the credentials") {
			t.Errorf("result %v, want the proxy's refusal", row)
		}
		// Sent once without, once with credentials, never again.
		if n := len(p.Requests()); n > 2 {
			t.Errorf("the proxy received %d requests, want at most 2", n)
		}
	})
}

func TestLineComments(t *testing.T) {
	for in, want := range map[string]string{
		"http://p:3128":             "http://p:3128",
		"  http://p:3128  # main":   "http://p:3128",
		"http://p:3128\t#tab":       "http://p:3128",
		"# all of it":               "",
		"   # indented":             "",
		"http://u:p%23w@p:3128 # x": "http://u:p%23w@p:3128",
		"http://p:3128#frag":        "http://p:3128#frag", // left for New to refuse
		"":                          "",
	} {
		if got := uncomment(in); got != want {
			t.Errorf("uncomment(%q) = %q, want %q", in, got, want)
		}
	}
}
