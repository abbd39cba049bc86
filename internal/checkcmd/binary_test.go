package checkcmd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/proxyauth/proxyauth/internal/testnet"
)

// buildCommand builds cmd/proxycheck into a directory of the test's.
func buildCommand(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build proxycheck with")
	}
	bin := filepath.Join(t.TempDir(), "proxycheck")
	out, err := exec.Command(gobin, "build", "-o", bin, "github.com/proxyauth/proxyauth/cmd/proxycheck").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// command returns the command bin with args, its environment without
// proxy variables and with extra.
func command(bin string, extra []string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", PasswordEnv:
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, extra...)
	return cmd
}

// TestCommand runs the real binary: exit statuses, stdout and stderr, the
// password from the environment, stdin.
func TestCommand(t *testing.T) {
	bin := buildCommand(t)
	origin := newOrigin(t, false)
	good := openProxy(t)
	basic := newProxy(t, nil, "alice", "wonderland", false)
	dead := "http://" + testnet.Closed(t)
	tests := []struct {
		name   string
		env    []string
		stdin  string
		args   []string
		code   int
		stdout []string
		stderr []string
	}{
		{"table", nil, "", []string{"-target", origin.URL, good.URL, dead}, 1,
			[]string{"PROXY ", good.URL + " ", dead + " ", "2 proxies: 1 ok, 1 failed\n"}, nil},
		{"json from stdin", nil, good.URL + "\n", []string{"-json", "-target", origin.URL, "-f", "-"}, 0,
			[]string{`{"proxy":"` + good.URL + `","ok":true,`}, []string{"1 proxy: 1 ok, 0 failed"}},
		{"password from the environment", []string{PasswordEnv + "=wonderland"}, "", []string{"-json", "-user", "alice", "-target", origin.URL, basic.URL}, 0,
			[]string{`"scheme":"Basic"`}, []string{"1 proxy: 1 ok, 0 failed"}},
		{"no password", nil, "", []string{"-user", "alice", "-target", origin.URL, basic.URL}, 2,
			nil, []string{"-user alice needs a password"}},
		{"bad flag", nil, "", []string{"-jsn"}, 2, nil, []string{"flag provided but not defined: -jsn", "usage: proxycheck"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := command(bin, tt.env, tt.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(tt.stdin), &stdout, &stderr
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			if len(tt.stderr) == 0 && stderr.Len() > 0 {
				t.Errorf("stderr is not empty:\n%s", stderr.String())
			}
			if len(tt.stdout) == 0 && stdout.Len() > 0 {
				t.Errorf("stdout is not empty:\n%s", stdout.String())
			}
		})
	}
}
