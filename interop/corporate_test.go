package interop_test

// The corporate schemes, NTLM and Negotiate (Kerberos through SPNEGO),
// against squid, proven with curl as the reference client: what curl gets
// and what squid logged (the user of each request) for each case. Every
// outcome is a row of the curl cross-check report.
//
// Identifiers that are not part of the helpers' API carry a "corp" prefix.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// LocalhostURL returns "http://localhost:PORT", squid addressed by the name
// its Negotiate service principal (HTTP/localhost) is for. squid listens on
// 127.0.0.1 only; a client that tries ::1 first is refused there at once.
func (s *Squid) LocalhostURL() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return "http://localhost:" + port
}

// corpAccess is one line of squid's access.log, in squid's native format:
// time elapsed client code/status bytes method URL user hierarchy type.
type corpAccess struct {
	Code   string // "TCP_MISS/200", "TCP_TUNNEL/200", "TCP_DENIED/407"
	Method string // "GET", "CONNECT"
	URL    string // "http://127.0.0.1:PORT/" or, for CONNECT, "127.0.0.1:PORT"
	User   string // the authenticated user, "-" for none
	Line   string
}

// accessLogSize returns the size of squid's access.log so far, for
// waitAccess.
func (s *Squid) accessLogSize(t testing.TB) int64 {
	t.Helper()
	fi, err := os.Stat(s.accessLog)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	return fi.Size()
}

// waitAccess returns the lines squid wrote to access.log after offset from
// (an accessLogSize) once one of them is for method with the status code
// (e.g. "200"). squid writes a line when a transaction ends, for a tunnel
// after the client has gone, so it may come after curl has exited: the
// file is read again, paced by a short ticker, for at most generous. The
// probes of phWaitListening (error:transaction-end-before-headers) are left
// out.
func (s *Squid) waitAccess(t testing.TB, from int64, method, status string) []corpAccess {
	t.Helper()
	deadline := time.NewTimer(generous)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		lines := s.accessSince(t, from)
		for _, l := range lines {
			if l.Method == method && strings.HasSuffix(l.Code, "/"+status) {
				return lines
			}
		}
		select {
		case <-deadline.C:
			t.Fatalf("access.log: no %s with status %s after %v\n%s", method, status, generous, s.Log())
		case <-tick.C:
		}
	}
}

func (s *Squid) accessSince(t testing.TB, from int64) []corpAccess {
	t.Helper()
	b, err := os.ReadFile(s.accessLog)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	if int64(len(b)) < from {
		t.Fatalf("access.log shrank to %d bytes from %d", len(b), from)
	}
	var out []corpAccess
	sc := bufio.NewScanner(strings.NewReader(string(b[from:])))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || strings.HasPrefix(f[6], "error:") {
			continue
		}
		out = append(out, corpAccess{Code: f[3], Method: f[5], URL: f[6], User: f[7], Line: sc.Text()})
	}
	return out
}

// corpResponse is one response curl received (a 407, a CONNECT's 200, the
// origin's answer), from its -D header dump.
type corpResponse struct {
	Status     int
	Challenges []string // the Proxy-Authenticate values, in order
	Close      bool     // it said Connection: close or Proxy-Connection: close
}

// corpCurlResult is what one curl run showed.
type corpCurlResult struct {
	Code      int // %{http_code}: the final response's status
	Connect   int // %{http_connect}: the last CONNECT's status (0 for http:// targets)
	Connects  int // %{num_connects}: the connections curl opened
	Responses []corpResponse
	Err       error  // curl's exit status, nil for 0
	Stderr    string // with -S: curl's error message
}

// Outcome is the status of the last response curl got from the proxy or
// the origin: the CONNECT's when that failed, else the final one's.
func (r corpCurlResult) Outcome() int {
	if r.Connect != 0 && r.Connect != 200 {
		return r.Connect
	}
	return r.Code
}

// Challenges returns the Proxy-Authenticate values of the last 407 curl
// got, or nil.
func (r corpCurlResult) Challenges() []string {
	for i := len(r.Responses) - 1; i >= 0; i-- {
		if r.Responses[i].Status == 407 {
			return r.Responses[i].Challenges
		}
	}
	return nil
}

// corpCurl runs curl through proxy to target with the auth arguments (such
// as "--proxy-ntlm", "-U", "u:p") and the environment env, which should
// come from KDC.Env when the proxy offers Negotiate (else curl's GSS-API
// would read /etc/krb5.conf); nil gives curl a minimal environment. -4:
// "localhost" would be tried on ::1 first, where squid does not listen.
func corpCurl(t testing.TB, env []string, proxy, target, certFile string, auth ...string) corpCurlResult {
	t.Helper()
	curl := requireBinary(t, "curl", "curl")
	dir := t.TempDir()
	headers := filepath.Join(dir, "headers")
	args := []string{"-q", "-s", "-S", "-4", "-o", "/dev/null", "-D", headers,
		"-w", "%{http_code} %{http_connect} %{num_connects}", "--max-time", strconv.Itoa(int(generous.Seconds())),
		"--cacert", certFile, "-x", proxy}
	args = append(append(args, auth...), target)
	ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, args...)
	if env == nil {
		env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir} // no *_proxy variables
	}
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	r := corpCurlResult{Err: err, Stderr: strings.TrimSpace(stderr.String())}
	fmt.Sscan(string(out), &r.Code, &r.Connect, &r.Connects)
	if b, err := os.ReadFile(headers); err == nil {
		r.Responses = corpParseHeaders(string(b))
	}
	return r
}

// corpParseHeaders splits curl's -D dump into its responses.
func corpParseHeaders(dump string) []corpResponse {
	var out []corpResponse
	for _, line := range strings.Split(dump, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "HTTP/") {
			var r corpResponse
			if f := strings.Fields(line); len(f) > 1 {
				r.Status, _ = strconv.Atoi(f[1])
			}
			out = append(out, r)
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || len(out) == 0 {
			continue
		}
		r := &out[len(out)-1]
		value = strings.TrimSpace(value)
		switch {
		case strings.EqualFold(name, "Proxy-Authenticate"):
			r.Challenges = append(r.Challenges, value)
		case strings.EqualFold(name, "Connection") || strings.EqualFold(name, "Proxy-Connection"):
			r.Close = r.Close || strings.EqualFold(value, "close")
		}
	}
	return out
}

// corpSchemes returns the scheme of each challenge ("Negotiate", "NTLM",
// "Basic realm=..." gives "Basic").
func corpSchemes(challenges []string) []string {
	out := make([]string, len(challenges))
	for i, c := range challenges {
		out[i], _, _ = strings.Cut(c, " ")
	}
	return out
}

// corpMask returns curl's auth arguments with the password of -U masked,
// for failure messages.
func corpMask(auth []string) []string {
	out := slices.Clone(auth)
	for i := 1; i < len(out); i++ {
		if out[i-1] == "-U" {
			if u, _, ok := strings.Cut(out[i], ":"); ok {
				out[i] = u + ":[password]"
			}
		}
	}
	return out
}

// corpTarget is the host:port of target, as squid logs a CONNECT.
func corpTarget(t testing.TB, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	return u.Host
}

// corpProxy is a squid under test, with the rows of its cases for the curl
// cross-check report: a case that only curl runs. proxyauth's NTLM runs
// next to curl's in the rows of TestSquidNTLMCurlCrossCheck (ntlm_test.go).
// The rows join the report together when the test ends, so that those of
// tests running in parallel do not interleave.
type corpProxy struct {
	sq     *Squid
	o      *origins
	offers string // the report's scheme column: what squid offers
	mu     sync.Mutex
	rows   []string
}

func newCorpProxy(t *testing.T, sq *Squid, o *origins, offers string) *corpProxy {
	p := &corpProxy{sq: sq, o: o, offers: offers}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		cases.Lock()
		cases.rows = append(cases.rows, p.rows...)
		cases.Unlock()
	})
	return p
}

// run runs curl with the auth arguments and the environment env (see
// corpCurl) through proxy (the squid's URL or LocalhostURL) to the plain or
// the TLS origin, and checks the status curl got (the CONNECT's if it
// failed) and the user squid logged for the request in access.log
// (wantUser "-": none). creds names the case in the report. It returns the
// curl result for further checks.
func (p *corpProxy) run(t *testing.T, env []string, proxy string, tlsOn bool, creds string,
	want int, wantUser string, auth ...string) corpCurlResult {
	t.Helper()
	r, logged := p.curl(t, env, proxy, tlsOn, want, wantUser, auth...)
	p.addRow(creds, tlsOn, r.Outcome(), "-", logged)
	return r
}

// curl is run without the report's row: it returns the curl result and the
// user squid logged for the request.
func (p *corpProxy) curl(t *testing.T, env []string, proxy string, tlsOn bool,
	want int, wantUser string, auth ...string) (corpCurlResult, string) {
	t.Helper()
	count("squid")
	target := p.o.url(tlsOn)
	from := p.sq.accessLogSize(t)
	r := corpCurl(t, env, proxy, target, p.o.certFile, auth...)
	got := r.Outcome()
	require.Equal(t, want, got, "curl %v: %v %s\nresponses %+v\n%s", corpMask(auth), r.Err, r.Stderr, r.Responses, p.sq.Log())
	method, url := "GET", target+"/"
	if tlsOn {
		method, url = "CONNECT", corpTarget(t, target)
	}
	lines := p.sq.waitAccess(t, from, method, strconv.Itoa(want))
	for _, l := range lines {
		t.Logf("access.log: %s", l.Line)
	}
	for _, resp := range r.Responses {
		t.Logf("curl got %d %q", resp.Status, resp.Challenges)
	}
	// The request's line is the last for its method: squid logs a tunnel
	// when it closes, after the 407s that came before it.
	var last corpAccess
	for _, l := range lines {
		if l.Method == method {
			last = l
		}
	}
	assert.Equal(t, url, last.URL, last.Line)
	assert.True(t, strings.HasSuffix(last.Code, "/"+strconv.Itoa(want)), last.Line)
	assert.Equal(t, wantUser, last.User, "the user squid logged: %s", last.Line)
	return r, last.User
}

// addRow adds a row to the curl cross-check report: the outcome curl got,
// proxyauth's ("-" for a case only curl runs) and the user squid logged.
func (p *corpProxy) addRow(creds string, tlsOn bool, curl int, ours, logged string) {
	name := map[bool]string{false: "http", true: "https"}[tlsOn]
	p.mu.Lock()
	p.rows = append(p.rows, fmt.Sprintf("%-10s %-12s %-9s %-5s: curl %-10d | proxyauth %-10s squid logged user %s",
		"squid", p.offers, creds, name, curl, ours, logged))
	p.mu.Unlock()
}

func TestKDC(t *testing.T) {
	t.Parallel()
	k := StartKDC(t, map[string]string{"alice": "al1ce pass", "bob": "b0b-pass"})
	require.Equal(t, "PROXYAUTH.TEST", k.Realm)
	require.Equal(t, "HTTP/localhost@PROXYAUTH.TEST", k.ServicePrincipal)
	host, _, err := net.SplitHostPort(k.Addr)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1", host)

	env := strings.Join(k.Env("/x/cc"), "\n")
	assert.Contains(t, env, "KRB5_CONFIG="+k.Config)
	assert.Contains(t, env, "KRB5CCNAME=FILE:/x/cc")
	assert.Equal(t, 1, strings.Count(env, "KRB5CCNAME="))

	// A password and, after ktadd -norandkey wrote the user's keytab, the
	// same password still: the keytab holds its keys.
	cc := k.Kinit(t, "alice", "al1ce pass")
	fi, err := os.Stat(cc)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	k.Kinit(t, "bob@PROXYAUTH.TEST", "b0b-pass")
	k.KinitKeytab(t, "bob")
	k.Kinit(t, "bob", "b0b-pass")
	assert.Contains(t, k.Log(), "ISSUE: authtime", "the KDC issued the tickets")
	assert.Contains(t, k.Log(), "127.0.0.1: ISSUE", "from loopback")

	// The KDC refuses a wrong password (pre-authentication is required),
	// and an unknown user; neither message holds the password.
	_, err = k.KinitErr("alice", "wrong-pass")
	require.ErrorContains(t, err, "kinit alice: kinit: Password incorrect while getting initial credentials")
	assert.NotContains(t, err.Error(), "wrong-pass")
	assert.Contains(t, k.Log(), "PREAUTH_FAILED")
	_, err = k.KinitErr("nobody", "x")
	require.ErrorContains(t, err, "Client 'nobody@PROXYAUTH.TEST' not found in Kerberos database")

	// The keytab the proxy reads: its user's, 0400.
	fi, err = os.Stat(k.ServiceKeytab)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o400), fi.Mode().Perm())

	// kinit asks this KDC and no other: once it is gone, kinit cannot get
	// a ticket.
	k.Stop()
	_, err = k.KinitErr("alice", "al1ce pass")
	require.ErrorContains(t, err, "Cannot contact any KDC for realm 'PROXYAUTH.TEST'")
}

func TestSquidNegotiateCurl(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	k := StartKDC(t, map[string]string{user: secret})
	sq := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate()})
	sqc := newCorpProxy(t, sq, o, "negotiate")
	ccache := k.Kinit(t, user, secret)
	other := StartKDC(t, map[string]string{user: secret})
	otherCC := other.Kinit(t, user, secret)
	negotiate := []string{"--proxy-negotiate", "-U", ":"}
	// The helper reads the realm's krb5.conf, not /etc/krb5.conf (which
	// names another realm and internet KDCs); it would accept tickets
	// without it, since it is given the principal and the keytab.
	var helpers int
	for _, pid := range phDescendants(sq.proc.cmd.Process.Pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if !strings.Contains(string(cmdline), "negotiate_kerberos_auth") {
			continue
		}
		helpers++
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		require.NoError(t, err)
		// A bool, not the environment: that may hold secrets of CI's.
		assert.True(t, slices.Contains(strings.Split(string(environ), "\x00"), "KRB5_CONFIG="+k.Config),
			"KRB5_CONFIG=%s in the environment of helper %d", k.Config, pid)
	}
	assert.NotZero(t, helpers, "squid started negotiate_kerberos_auth (startup=1)")
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			// Told to use Negotiate, curl sends its token with the first
			// request: squid never challenges.
			t.Run("ticket", func(t *testing.T) {
				r := sqc.run(t, k.Env(ccache), sq.LocalhostURL(), tt.tls, "tgt", 200, k.Principal(user), negotiate...)
				assert.Contains(t, k.Log(), "alice@PROXYAUTH.TEST for HTTP/localhost@PROXYAUTH.TEST", "curl's service ticket")
				assert.Nil(t, r.Challenges(), "%+v", r.Responses)
				assert.Equal(t, 1, r.Connects)
				rcache, _ := filepath.Glob(filepath.Join(sq.runDir, "krb5_*.rcache2"))
				assert.Len(t, rcache, 1, "the helper's replay cache, in squid's run directory")
			})
			// A ticket for HTTP/localhost from another KDC of the same
			// realm's name: curl sends it, the helper cannot decrypt it.
			t.Run("foreign-ticket", func(t *testing.T) {
				r := sqc.run(t, other.Env(otherCC), sq.LocalhostURL(), tt.tls, "other-tgt", 407, "-", negotiate...)
				assert.Equal(t, []string{"Negotiate"}, r.Challenges())
				require.Eventually(t, func() bool {
					return strings.Contains(sq.Log(), "Cannot decrypt ticket for HTTP/localhost@PROXYAUTH.TEST using keytab key")
				}, generous, 5*time.Millisecond, "the helper's refusal in cache.log")
			})
			t.Run("no-ticket", func(t *testing.T) {
				r := sqc.run(t, k.Env(filepath.Join(t.TempDir(), "no-tgt")), sq.LocalhostURL(), tt.tls, "no-tgt", 407, "-", negotiate...)
				assert.Equal(t, []string{"Negotiate"}, r.Challenges())
			})
			t.Run("wrong-password", func(t *testing.T) {
				cc, err := k.KinitErr(user, "wrong")
				require.ErrorContains(t, err, "Password incorrect while getting initial credentials")
				assert.Empty(t, cc)
				r := sqc.run(t, k.Env(filepath.Join(t.TempDir(), "none")), sq.LocalhostURL(), tt.tls, "bad-pw", 407, "-", negotiate...)
				assert.Equal(t, []string{"Negotiate"}, r.Challenges())
			})
			t.Run("ticket-after-407", func(t *testing.T) {
				r := sqc.run(t, k.Env(ccache), sq.LocalhostURL(), tt.tls, "tgt-any", 200, k.Principal(user),
					"--proxy-anyauth", "-U", ":")
				require.NotEmpty(t, r.Responses)
				assert.Equal(t, corpResponse{Status: 407, Challenges: []string{"Negotiate"}}, r.Responses[0], "curl asked first, then answered")
			})
			// Addressed by its address, squid is HTTP/127.0.0.1 to curl,
			// a principal the realm does not have: no ticket, 407.
			t.Run("by-address", func(t *testing.T) {
				r := sqc.run(t, k.Env(ccache), sq.URL, tt.tls, "tgt-by-ip", 407, "-", negotiate...)
				assert.Equal(t, []string{"Negotiate"}, r.Challenges())
				assert.Contains(t, k.Log(), "HTTP/127.0.0.1@PROXYAUTH.TEST")
			})
		})
	}
}

// corpFakeNTLMUser is the user squid 5.7 logs for curl's NTLM login as
// domain\user through ntlm_fake_auth. curl's NEGOTIATE asks for OEM
// strings, the helper's challenge echoes the client's flags, and curl's
// AUTHENTICATE carries the names in OEM. For OEM names the helper's
// ntlm_unpack_auth reads the domain and the user one byte too long, taking
// the first byte of the field that follows (curl sends the domain, the
// user, then its workstation "WORKSTATION"); the helper lowercases the
// user; squid's log doubles the backslash. So alice without a domain is
// logged as a\\alicew. A client that asks for Unicode, as proxyauth does,
// has its names logged as sent (see TestSquidNTLMCurlCrossCheck).
func corpFakeNTLMUser(domain, user string) string {
	return domain + user[:1] + `\\` + strings.ToLower(user+"W")
}

func TestSquidNTLMCurl(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	sq := StartSquid(t, SquidOptions{NTLM: true})
	sqc := newCorpProxy(t, sq, o, "ntlm")
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			// curl sends its negotiate message (type 1) at once, squid
			// answers with its challenge (type 2), curl authenticates
			// (type 3): three legs on one connection.
			t.Run("right", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "ntlm", 200, corpFakeNTLMUser("", user),
					"--proxy-ntlm", "-U", user+":"+secret)
				require.NotEmpty(t, r.Responses)
				ch := r.Responses[0].Challenges
				require.Len(t, ch, 1, "the proxy's challenge (type 2)")
				assert.True(t, strings.HasPrefix(ch[0], "NTLM TlRMTVNTUAACAAAA"), ch)
				assert.False(t, r.Responses[0].Close, "the challenge keeps the connection open")
				assert.Equal(t, 1, r.Connects, "one connection for the three legs")
			})
			// ntlm_fake_auth takes any password: it proves the handshake.
			t.Run("any-password", func(t *testing.T) {
				sqc.run(t, nil, sq.URL, tt.tls, "ntlm-bad", 200, corpFakeNTLMUser("", user),
					"--proxy-ntlm", "-U", user+":wrong")
			})
			t.Run("domain", func(t *testing.T) {
				sqc.run(t, nil, sq.URL, tt.tls, "ntlm-dom", 200, corpFakeNTLMUser("CORP", user),
					"--proxy-ntlm", "-U", `CORP\`+user+":"+secret)
			})
			t.Run("none", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "none", 407, "-")
				assert.Equal(t, []string{"NTLM"}, r.Challenges())
			})
		})
	}
}

func TestSquidNTLMAndBasicCurl(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	sq := StartSquid(t, SquidOptions{NTLM: true, Basic: true, Users: map[string]string{user: secret}})
	sqc := newCorpProxy(t, sq, o, "ntlm+basic")
	both := []string{"NTLM", `Basic realm="` + realm + `"`} // in the order of the auth_param lines
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("none", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "none", 407, "-")
				assert.Equal(t, both, r.Challenges())
			})
			t.Run("ntlm", func(t *testing.T) {
				sqc.run(t, nil, sq.URL, tt.tls, "ntlm", 200, corpFakeNTLMUser("", user),
					"--proxy-ntlm", "-U", user+":"+secret)
			})
			t.Run("basic", func(t *testing.T) {
				sqc.run(t, nil, sq.URL, tt.tls, "basic", 200, user, "--proxy-basic", "-U", user+":"+secret)
			})
			// squid logs the Basic user it refused.
			t.Run("basic-wrong", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "basic-bad", 407, user, "--proxy-basic", "-U", user+":wrong")
				assert.Equal(t, both, r.Challenges())
			})
			// curl, left to choose, asks first and takes NTLM over Basic.
			t.Run("anyauth", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "any", 200, corpFakeNTLMUser("", user),
					"--proxy-anyauth", "-U", user+":"+secret)
				require.GreaterOrEqual(t, len(r.Responses), 3, "%+v", r.Responses)
				assert.Equal(t, both, r.Responses[0].Challenges)
				assert.True(t, strings.HasPrefix(strings.Join(r.Responses[1].Challenges, ","), "NTLM TlRMTVNTUAACAAAA"), r.Responses[1])
				assert.False(t, r.Responses[0].Close)
				assert.Equal(t, 1, r.Connects, "the first 407 keeps the connection open too")
			})
		})
	}
}

// All four at once: squid challenges strongest first, in the order of the
// auth_param lines writeConfig writes.
func TestSquidAllSchemesCurl(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	k := StartKDC(t, map[string]string{user: secret})
	sq := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate(), NTLM: true, Digest: true, Basic: true, Users: map[string]string{user: secret}})
	sqc := newCorpProxy(t, sq, o, "neg+ntlm+d+b")
	ccache := k.Kinit(t, user, secret)
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("none", func(t *testing.T) {
				r := sqc.run(t, k.Env(""), sq.LocalhostURL(), tt.tls, "none", 407, "-")
				assert.Equal(t, []string{"Negotiate", "NTLM", "Digest", "Basic"}, corpSchemes(r.Challenges()), r.Challenges())
			})
			// curl, left to choose, takes Negotiate even without a
			// ticket, and then gives up rather than try NTLM or Basic.
			t.Run("anyauth-no-ticket", func(t *testing.T) {
				r := sqc.run(t, k.Env(""), sq.LocalhostURL(), tt.tls, "any", 407, "-",
					"--proxy-anyauth", "-U", user+":"+secret)
				require.Len(t, r.Responses, 2, "it asked, then sent no credentials: %+v", r.Responses)
				for _, resp := range r.Responses {
					assert.Equal(t, []string{"Negotiate", "NTLM", "Digest", "Basic"}, corpSchemes(resp.Challenges))
				}
			})
			// curl, left to choose with a ticket, takes Negotiate.
			t.Run("anyauth", func(t *testing.T) {
				r := sqc.run(t, k.Env(ccache), sq.LocalhostURL(), tt.tls, "any-tgt", 200, k.Principal(user),
					"--proxy-anyauth", "-U", ":")
				require.NotEmpty(t, r.Responses)
				assert.Equal(t, []string{"Negotiate", "NTLM", "Digest", "Basic"}, corpSchemes(r.Responses[0].Challenges))
			})
			t.Run("digest", func(t *testing.T) {
				sqc.run(t, k.Env(""), sq.LocalhostURL(), tt.tls, "digest", 200, user, "--proxy-digest", "-U", user+":"+secret)
			})
			t.Run("basic", func(t *testing.T) {
				sqc.run(t, k.Env(""), sq.LocalhostURL(), tt.tls, "basic", 200, user, "--proxy-basic", "-U", user+":"+secret)
			})
			t.Run("ntlm", func(t *testing.T) {
				sqc.run(t, k.Env(""), sq.LocalhostURL(), tt.tls, "ntlm", 200, corpFakeNTLMUser("", user),
					"--proxy-ntlm", "-U", user+":"+secret)
			})
		})
	}
}

// With client_persistent_connections off squid closes the connection after
// every response but one: the 407 that carries its NTLM challenge (type 2),
// so that the handshake can finish. A 407 that asks for credentials closes
// it: a client starts the next leg on a new connection.
func TestSquidNoPersistentConnectionsCurl(t *testing.T) {
	t.Parallel()
	o := newOrigins(t, nil)
	k := StartKDC(t, map[string]string{user: secret})
	// Two squids: curl, left to choose, would take Negotiate over NTLM.
	sq := StartSquid(t, SquidOptions{NTLM: true, Basic: true, Users: map[string]string{user: secret},
		NoClientPersistentConnections: true})
	neg := StartSquid(t, SquidOptions{Negotiate: k.SquidNegotiate(), NoClientPersistentConnections: true})
	sqc, negc := newCorpProxy(t, sq, o, "ntlm+b/close"), newCorpProxy(t, neg, o, "negot/close")
	ccache := k.Kinit(t, user, secret)
	both := []string{"NTLM", `Basic realm="` + realm + `"`}
	// closed says whether the final answer to an http:// target closed the
	// connection (for https:// it is the origin's, inside the tunnel).
	closed := func(t *testing.T, r corpCurlResult, tlsOn bool) {
		t.Helper()
		if !tlsOn {
			assert.True(t, r.Responses[len(r.Responses)-1].Close, "squid's 200: %+v", r.Responses)
		}
	}
	for _, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			t.Run("ntlm", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "ntlm", 200, corpFakeNTLMUser("", user),
					"--proxy-ntlm", "-U", user+":"+secret)
				require.NotEmpty(t, r.Responses)
				assert.False(t, r.Responses[0].Close, "the challenge (type 2) keeps the connection: %+v", r.Responses[0])
				assert.Equal(t, 1, r.Connects)
				closed(t, r, tt.tls)
			})
			t.Run("ntlm-anyauth", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "any", 200, corpFakeNTLMUser("", user),
					"--proxy-anyauth", "-U", user+":"+secret)
				require.GreaterOrEqual(t, len(r.Responses), 3, "%+v", r.Responses)
				assert.Equal(t, corpResponse{Status: 407, Challenges: both, Close: true}, r.Responses[0])
				assert.False(t, r.Responses[1].Close, "the challenge (type 2) keeps the connection: %+v", r.Responses[1])
				assert.Equal(t, 2, r.Connects, "the handshake on a new connection")
				closed(t, r, tt.tls)
			})
			t.Run("negotiate", func(t *testing.T) {
				r := negc.run(t, k.Env(ccache), neg.LocalhostURL(), tt.tls, "any-tgt", 200, k.Principal(user),
					"--proxy-anyauth", "-U", ":")
				require.NotEmpty(t, r.Responses)
				assert.Equal(t, corpResponse{Status: 407, Challenges: []string{"Negotiate"}, Close: true}, r.Responses[0])
				assert.Equal(t, 2, r.Connects, "the token on a new connection")
				closed(t, r, tt.tls)
			})
			t.Run("basic", func(t *testing.T) {
				r := sqc.run(t, nil, sq.URL, tt.tls, "basic", 200, user,
					"--proxy-basic", "-U", user+":"+secret)
				assert.Equal(t, 1, r.Connects)
				closed(t, r, tt.tls)
			})
		})
	}
}
