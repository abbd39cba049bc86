package proxyauthtest_test

import (
	"context"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// TestNTLMWithCurl checks the verifier against a second, unrelated client:
// curl's own NTLM implementation, which sends NTLMv2 when the challenge
// carries TargetInfo. It is skipped where curl is not installed or lacks NTLM.
func TestNTLMWithCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	if out, err := exec.Command(curl, "--version").Output(); err != nil || !strings.Contains(string(out), "NTLM") {
		t.Skip("curl without NTLM")
	}
	origin := newOrigin(t)
	secure := newTLSOrigin(t)
	for _, username := range []string{`CORP\alice`, "alice"} {
		p := proxyauthtest.NewNTLMProxy(username, pass)
		t.Cleanup(p.Close)
		for _, tt := range []struct {
			name, target, password, want string
		}{
			{"plain", origin.URL + "/c", pass, "hello /c"},
			{"CONNECT", secure.URL + "/c", pass, "hello /c"},
			{"wrong password", origin.URL + "/c", "wrong", "407"},
		} {
			t.Run(username+"/"+tt.name, func(t *testing.T) {
				p.ResetRequests()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, curl, "-sS", "--insecure", "--noproxy", "", "-x", p.URL,
					"--proxy-ntlm", "--proxy-user", username+":"+tt.password, "-w", "%{http_code}", tt.target)
				out, err := cmd.Output()
				if err != nil && tt.want != "407" {
					t.Fatalf("curl: %v", err)
				}
				got := string(out)
				if tt.want == "407" {
					if !strings.HasSuffix(got, "407") {
						t.Errorf("curl printed %q, want status 407", got)
					}
				} else if got != tt.want+"200" {
					t.Errorf("curl printed %q, want %q and status 200", got, tt.want)
				}
				var legs []int
				var authorized []bool
				for _, r := range p.Requests() {
					legs, authorized = append(legs, r.Leg), append(authorized, r.Authorized)
				}
				wantAuthorized := []bool{false, tt.want != "407"}
				if !reflect.DeepEqual(legs, []int{1, 3}) || !reflect.DeepEqual(authorized, wantAuthorized) {
					t.Errorf("legs %v authorized %v, want [1 3] %v", legs, authorized, wantAuthorized)
				}
			})
		}
	}
}
