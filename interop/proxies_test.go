package interop_test

// Helpers that start real proxy servers on 127.0.0.1 for the interop tests:
// squid (Basic, Digest, Negotiate and NTLM, alone or together), tinyproxy
// (Basic) and microsocks (SOCKS5 username/password). Each runs in its own process group and is killed
// with that group and all its descendants (squid's helpers leave the group)
// and waited for in t.Cleanup. None sends traffic beyond loopback.
//
// Identifiers that are not part of the helpers' API carry a "ph" prefix so
// that they cannot clash with the other test files of this package.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	phuser "os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// realm is the realm of squid's Basic and Digest challenges.
const realm = "proxyauth-interop"

// generous bounds every wait in these tests for something that must
// happen (a proxy that must start or answer, a process that must exit):
// long enough that a machine busy with other work still passes, so that
// the tests check correctness, never speed.
const generous = time.Minute

const (
	// phReadyTimeout bounds every wait for a proxy to come up or reload.
	phReadyTimeout = generous
	// phDialTimeout bounds the dial loop used where a program prints no
	// readiness line (microsocks).
	phDialTimeout = generous
	// phStartAttempts is how often a start is tried on a fresh port when the
	// proxy could not bind (another process took the port we picked).
	phStartAttempts = 3
	// phGroupTimeout bounds the wait for the killed descendants of a
	// proxy to be gone.
	phGroupTimeout = generous

	phSquidReady = "Accepting HTTP Socket connections at"
	phTinyReady  = "Accepting connections."

	phBasicHelper     = "/usr/lib/squid/basic_ncsa_auth"
	phDigestHelper    = "/usr/lib/squid/digest_file_auth"
	phNegotiateHelper = "/usr/lib/squid/negotiate_kerberos_auth"
	phNTLMHelper      = "/usr/lib/squid/ntlm_fake_auth"
)

// requireBinary returns the path of the program name, looked up in PATH and
// in /usr/sbin (squid lives there and /usr/sbin is not always in a test's
// PATH). When the program is missing the test is skipped, or failed when the
// CI environment variable is set, with the apt-get command that installs it.
func requireBinary(t testing.TB, name, debPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	phMissing(t, name, debPackage)
	return ""
}

// phRequireFile is requireBinary for programs at a fixed path, such as
// squid's authentication helpers.
func phRequireFile(t testing.TB, path, debPackage string) string {
	t.Helper()
	if fi, err := os.Stat(path); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
		return path
	}
	phMissing(t, path, debPackage)
	return ""
}

func phMissing(t testing.TB, what, debPackage string) {
	t.Helper()
	msg := fmt.Sprintf("%s not found: install it with apt-get install -y %s", what, debPackage)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s", msg)
	}
	t.Skipf("%s", msg)
}

// phFreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the proxy binds it; the Start
// functions retry on a new port when that happens.
func phFreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("picking a free port: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("picking a free port: %v", err)
	}
	return port
}

// phEnv is the environment for the programs the helpers run: this process's
// environment without any proxy variables, so that nothing (curl in
// particular) is sent anywhere but where the test says.
func phEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasSuffix(strings.ToLower(name), "_proxy") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// phLogBuffer collects a process's output and lets a caller wait for a line.
type phLogBuffer struct {
	mu      sync.Mutex
	buf     []byte
	changed chan struct{} // closed and replaced on every write
}

func phNewLogBuffer() *phLogBuffer { return &phLogBuffer{changed: make(chan struct{})} }

func (b *phLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	b.buf = append(b.buf, p...)
	close(b.changed)
	b.changed = make(chan struct{})
	b.mu.Unlock()
	return len(p), nil
}

func (b *phLogBuffer) snapshot() (string, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf), b.changed
}

func (b *phLogBuffer) String() string { s, _ := b.snapshot(); return s }

func (b *phLogBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buf)
}

var (
	errPhExited  = errors.New("the process exited")
	errPhTimeout = errors.New("timed out")
)

// waitFor waits until the output written after offset from contains needle.
// It gives up when exited is closed (after one last look, since the output
// is complete by then) or after timeout.
func (b *phLogBuffer) waitFor(needle string, from int, exited <-chan struct{}, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		s, changed := b.snapshot()
		if strings.Contains(s[from:], needle) {
			return nil
		}
		select {
		case <-changed:
		case <-exited:
			if strings.Contains(b.String()[from:], needle) {
				return nil
			}
			return errPhExited
		case <-timer.C:
			return errPhTimeout
		}
	}
}

// phProcess is a proxy running in its own process group.
type phProcess struct {
	name    string
	cmd     *exec.Cmd
	out     *phLogBuffer // stdout and stderr
	exited  chan struct{}
	waitErr error // set before exited is closed
	once    sync.Once
	killErr error
	left    bool // some of its processes were still there after phGroupTimeout
}

// phStart starts argv in its own process group, its output going to a
// buffer, and registers a Cleanup that kills the group and waits.
func phStart(t testing.TB, name string, argv ...string) *phProcess {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = phEnv()
	out := phNewLogBuffer()
	cmd.Stdout, cmd.Stderr = out, out
	// Own process group, killed whole in Cleanup (see kill for squid's
	// helpers, which leave it).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Should a grandchild keep the output pipe open, Wait still returns.
	cmd.WaitDelay = generous
	phBecomeSubreaper()
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s (%s): %v", name, strings.Join(argv, " "), err)
	}
	p := &phProcess{name: name, cmd: cmd, out: out, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		if err := p.kill(); err != nil {
			t.Errorf("%v\n%s output:\n%s", err, name, out.String())
		} else if p.left {
			t.Errorf("%s: descendants of pid %d still running %v after SIGKILL", name, p.cmd.Process.Pid, phGroupTimeout)
		}
	})
	return p
}

// kill kills the process, its process group and its descendants with
// SIGKILL, waits for the process and then until none of them is left. It is
// safe to call more than once and after the process has exited.
//
// The group alone is not enough: squid's authentication helpers call
// setsid(), so they leave squid's group. The group is stopped first, so that
// squid cannot start a helper while its descendants are looked up.
func (p *phProcess) kill() error {
	p.once.Do(func() {
		pid := p.cmd.Process.Pid
		// The group id is the leader's pid; the kernel does not hand that
		// number to another process while any member of the group lives.
		_ = syscall.Kill(-pid, syscall.SIGSTOP)
		kids := phDescendants(pid)
		if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			p.killErr = fmt.Errorf("killing %s (process group %d): %w", p.name, pid, err)
		}
		for _, k := range kids {
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
		select {
		case <-p.exited:
		case <-time.After(phReadyTimeout):
			p.killErr = fmt.Errorf("%s (pid %d) did not exit within %v of SIGKILL", p.name, pid, phReadyTimeout)
			return
		}
		p.left = phReap(kids)
	})
	return p.killErr
}

// phDescendants returns the pids of the descendants of root, from /proc.
func phDescendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		k := bytes.LastIndexByte(stat, ')')
		if k < 0 {
			continue
		}
		f := strings.Fields(string(stat[k+1:]))
		if len(f) < 2 {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// phBecomeSubreaper makes this test process the reaper of its orphaned
// descendants (prctl PR_SET_CHILD_SUBREAPER). squid's helpers outlive squid
// for a moment when it is killed; without this they are reparented to init,
// which in some sandboxes reaps zombies only every second or two, so that
// they would linger after the test. As their reaper, kill collects them by
// pid at once (wait4 on those pids only: os/exec waits on its own pids and
// is not disturbed).
func phBecomeSubreaper() {
	phSubreaperOnce.Do(func() {
		const prSetChildSubreaper = 36
		syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	})
}

var phSubreaperOnce sync.Once

// phReap waits until each of pids (SIGKILLed descendants) is gone: reaped
// here when this process became their reaper, or else dead (a zombie for
// init to reap counts as gone). Each wait is a WNOHANG poll, since no signal
// tells us when a process we did not start dies; it is paced by a short
// ticker and bounded by phGroupTimeout. It says whether any was still
// running then.
func phReap(pids []int) (left bool) {
	deadline := time.NewTimer(phGroupTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	pending := append([]int(nil), pids...)
	for {
		var next []int
		for _, pid := range pending {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			switch {
			case wpid == pid:
				// reaped
			case errors.Is(err, syscall.ECHILD):
				if !phDead(pid) {
					next = append(next, pid)
				}
			default:
				next = append(next, pid) // still running, or not yet ours
			}
		}
		if pending = next; len(pending) == 0 {
			return false
		}
		select {
		case <-deadline.C:
			return true
		case <-tick.C:
		}
	}
}

// phDead says whether pid is gone or a zombie.
func phDead(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	k := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[k+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

func (p *phProcess) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// ---------------------------------------------------------------- squid

// SquidOptions configures StartSquid.
type SquidOptions struct {
	// Basic offers Basic (basic_ncsa_auth with an htpasswd file written by
	// htpasswd -m; passwords may hold any character but a newline).
	Basic bool
	// Digest offers Digest (digest_file_auth -c with user:realm:HA1 lines,
	// so passwords may hold ':' too). With Basic, squid offers Digest first
	// and Basic second, in the order of the auth_param lines.
	Digest bool
	// Users maps usernames to passwords, for both schemes.
	Users map[string]string
	// DigestNonceMaxDuration, if positive, is how long a Digest nonce
	// lasts (auth_param digest nonce_max_duration, in whole seconds; 0
	// keeps squid's 30 minutes). squid 5.7 calls a nonce stale once the
	// clock's second is past its creation second plus this, so a nonce of
	// a 1-second lifetime is stale at most 2 seconds after it was issued.
	// (nonce_max_count cannot make a nonce stale for proxyauth: squid
	// sends a nextnonce before the count runs out, and proxyauth uses it.)
	DigestNonceMaxDuration time.Duration
	// DenyTarget, if set, is a host:port (127.0.0.1:N) that squid refuses
	// with 403 by ACL before it asks for credentials.
	DenyTarget string
	// Negotiate, if set, offers Negotiate: Kerberos through SPNEGO, checked
	// by negotiate_kerberos_auth against the keytab of the service
	// principal (see KDC.SquidNegotiate), which logs the client's
	// principal (alice@PROXYAUTH.TEST) as the user. Clients ask for a
	// ticket for HTTP/<host of the proxy URL>, so with the KDC's
	// HTTP/localhost the proxy must be addressed as Squid.LocalhostURL.
	// nil offers no Negotiate.
	Negotiate *SquidNegotiate
	// NTLM offers NTLM through ntlm_fake_auth, which accepts every user and
	// password: it proves the three legs on one connection, not the
	// hashes. squid logs the username the client sent: as sent when it
	// came in Unicode (proxyauth), mangled by the helper when in OEM
	// (curl; see corpFakeNTLMUser).
	//
	// squid sends its challenges in the order of its auth_param lines,
	// which writeConfig writes strongest first: Negotiate, NTLM, Digest,
	// Basic (the order squid's documentation recommends, since some
	// clients take the first scheme they know).
	NTLM bool
	// NoClientPersistentConnections writes client_persistent_connections
	// off: squid closes the client's connection after each response,
	// a 407 that asks for credentials included, so that a client sends
	// its next leg on a new connection. squid 5.7 keeps it open after the
	// one 407 that carries its NTLM challenge (type 2), so NTLM still
	// finishes. false keeps squid's default (on).
	NoClientPersistentConnections bool
}

// Squid is a squid 5 process on loopback. With no scheme set (Basic, Digest,
// Negotiate, NTLM) it asks for no credentials.
type Squid struct {
	URL  string // "http://127.0.0.1:PORT"
	Addr string // "127.0.0.1:PORT"

	bin        string
	dir        string // 0755, holds the config and password files
	runDir     string // owned by the proxy user: logs, pid file, core dumps
	conf       string
	basicFile  string
	digestFile string
	cacheLog   string
	accessLog  string
	opts       SquidOptions
	proc       *phProcess
	htpasswd   string
	startup    time.Duration
	service    string // squid's -n: names its shared-memory segments
}

// StartSquid writes a squid.conf from scratch into a new directory and runs
// squid -N -d 1 on a free port of 127.0.0.1, returning once squid says it
// accepts connections. squid and its helpers are killed in t.Cleanup.
func StartSquid(t testing.TB, opts SquidOptions) *Squid {
	t.Helper()
	s := &Squid{bin: requireBinary(t, "squid", "squid"), opts: opts}
	if opts.Basic {
		phRequireFile(t, phBasicHelper, "squid")
		s.htpasswd = requireBinary(t, "htpasswd", "apache2-utils")
	}
	if opts.Digest {
		phRequireFile(t, phDigestHelper, "squid")
	}
	if opts.Negotiate != nil {
		phRequireFile(t, phNegotiateHelper, "squid")
	}
	if opts.NTLM {
		phRequireFile(t, phNTLMHelper, "squid")
	}

	// squid drops to the proxy user, which must read the config and the
	// password files.
	dir := phProcessDir(t, "StartSquid", "squid-interop-", 0o755)
	s.dir = dir
	s.runDir = filepath.Join(dir, "run")
	if err := os.Mkdir(s.runDir, 0o755); err != nil {
		t.Fatalf("StartSquid: %v", err)
	}
	if os.Geteuid() == 0 {
		u, err := phuser.Lookup("proxy")
		if err != nil {
			t.Fatalf("StartSquid: squid runs as root here and needs the user proxy (from the squid package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(s.runDir, uid, gid); err != nil {
			t.Fatalf("StartSquid: %v", err)
		}
	}
	// Absolute paths throughout: squid changes into coredump_dir, and a
	// relative -f path then breaks squid -k reconfigure.
	s.conf = filepath.Join(dir, "squid.conf")
	s.basicFile = filepath.Join(dir, "basic.htpasswd")
	s.digestFile = filepath.Join(dir, "digest.passwd")
	s.cacheLog = filepath.Join(s.runDir, "cache.log")
	s.accessLog = filepath.Join(s.runDir, "access.log")
	if err := s.writeUsers(opts.Users); err != nil {
		t.Fatalf("StartSquid: %v", err)
	}

	for attempt := 1; ; attempt++ {
		port := phFreePort(t)
		s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		s.URL = "http://" + s.Addr
		if err := s.writeConfig(port); err != nil {
			t.Fatalf("StartSquid: %v", err)
		}
		for _, f := range []string{s.cacheLog, s.accessLog} {
			os.Remove(f)
		}
		begin := time.Now()
		// A service name of its own (-n) gives each squid shared-memory
		// segments of its own (/dev/shm/NAME-*.shm): squids that start at
		// once with the same name race to create the same segments, and
		// one dies ("shm_open ... File exists"). squid, killed, leaves
		// them behind, hence the removal.
		s.service = "proxyauth" + strconv.Itoa(port)
		t.Cleanup(func() { phRemoveSegments(s.service) })
		s.proc = phStart(t, "squid", s.bin, "-N", "-d", "1", "-n", s.service, "-f", s.conf)
		err := s.proc.out.waitFor(phSquidReady, 0, s.proc.exited, phReadyTimeout)
		if err == nil {
			err = phWaitListening(s.Addr, s.proc.exited)
		}
		if err == nil {
			s.startup = time.Since(begin)
			t.Logf("squid ready on %s in %v (basic=%v digest=%v negotiate=%v ntlm=%v)", s.Addr, s.startup.Round(time.Millisecond),
				opts.Basic, opts.Digest, opts.Negotiate != nil, opts.NTLM)
			return s
		}
		out := s.proc.out.String()
		s.proc.kill()
		bindFailed := strings.Contains(out, "Unable to open HTTP Socket") ||
			strings.Contains(out, "Address already in use") ||
			strings.Contains(out, "Cannot bind")
		if bindFailed && attempt < phStartAttempts {
			t.Logf("squid could not bind %s (attempt %d), retrying on another port", s.Addr, attempt)
			continue
		}
		t.Fatalf("StartSquid: squid on %s not ready (%v, attempt %d, %s)\nconfig:\n%s\n%s",
			s.Addr, err, attempt, s.proc.cmd.ProcessState, s.readConf(), s.Log())
	}
}

// phProcessDir makes a temporary directory with an absolute path and the
// given mode (os.MkdirTemp and t.TempDir make 0700 ones, which the proxy
// user that squid and its helpers drop to cannot enter), removed at
// cleanup. Called before the process starts, its Cleanup runs after the
// process is dead.
func phProcessDir(t testing.TB, caller, prefix string, mode os.FileMode) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err == nil {
		dir, err = filepath.Abs(dir)
	}
	if err != nil {
		t.Fatalf("%s: %v", caller, err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatalf("%s: %v", caller, err)
	}
	return dir
}

// phRemoveSegments removes the shared-memory segments of the squid named
// service. Registered before the process's Cleanup, it runs after squid is
// dead.
func phRemoveSegments(service string) {
	files, _ := filepath.Glob(filepath.Join("/dev/shm", service+"-*.shm"))
	for _, f := range files {
		os.Remove(f)
	}
}

func (s *Squid) readConf() string {
	b, _ := os.ReadFile(s.conf)
	return string(b)
}

func (s *Squid) writeConfig(port int) error {
	var c strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&c, format+"\n", args...) }
	p("# written by proxies_test.go; Debian's default squid.conf is not used")
	p("http_port 127.0.0.1:%d", port)
	p("pid_filename %s", filepath.Join(s.runDir, "squid.pid"))
	p("cache_log %s", s.cacheLog)
	p("access_log stdio:%s", s.accessLog)
	p("cache_store_log none")
	p("logfile_rotate 0")
	p("coredump_dir %s", s.runDir)
	p("netdb_filename none")
	p("cache_effective_user proxy")
	p("shutdown_lifetime 0 seconds")
	p("debug_options ALL,1")
	// Loopback only: no DNS server but 127.0.0.1, no ICP/HTCP/pinger.
	p("dns_nameservers 127.0.0.1")
	p("hosts_file /etc/hosts")
	p("visible_hostname localhost")
	p("pinger_enable off")
	p("icp_port 0")
	p("htcp_port 0")
	// No cache_dir; nothing is cached in memory either.
	p("cache_mem 8 MB")
	p("cache deny all")
	p("via on")
	// No X-Forwarded-For added to what the origin sees.
	p("forwarded_for transparent")

	// authenticate_ttl 0: every cached credential counts as expired, so the
	// cache cleanup that squid -k reconfigure runs drops all of them. Without
	// it squid 5.7 keeps a Digest user's HA1 across a reconfigure and
	// accepts the old password until a request with a different one makes it
	// ask the helper again.
	p("authenticate_ttl 0 seconds")
	// Schemes strongest first: squid challenges in this order (see
	// SquidOptions.NTLM).
	if n := s.opts.Negotiate; n != nil {
		for _, v := range []string{n.Keytab, n.Principal, n.Config} {
			if v == "" || strings.ContainsAny(v, " \t\r\n\"") {
				return fmt.Errorf("Negotiate: %q: must be non-empty, without spaces or quotes", v)
			}
		}
		// squid passes its environment to its helpers; env puts the realm's
		// krb5.conf into the helper's. -c: the replay cache (a replayed
		// token is refused) in the run directory, removed with it; MIT's
		// default is /var/tmp/krb5_UID.rcache2, which would stay behind.
		p("auth_param negotiate program /usr/bin/env KRB5_CONFIG=%s %s -k %s -s %s -c %s",
			n.Config, phNegotiateHelper, n.Keytab, n.Principal, s.runDir)
		p("auth_param negotiate children 10 startup=1 idle=1")
		p("auth_param negotiate keep_alive on")
	}
	if s.opts.NTLM {
		p("auth_param ntlm program %s", phNTLMHelper)
		p("auth_param ntlm children 60 startup=4 idle=4")
		p("auth_param ntlm keep_alive on")
	}
	if s.opts.Digest {
		p("auth_param digest program %s -c %s", phDigestHelper, s.digestFile)
		p("auth_param digest children 5 startup=0 idle=1")
		p("auth_param digest realm %s", realm)
		if d := s.opts.DigestNonceMaxDuration; d > 0 {
			p("auth_param digest nonce_max_duration %d seconds", int((d+time.Second-1)/time.Second))
		}
	}
	if s.opts.Basic {
		p("auth_param basic program %s %s", phBasicHelper, s.basicFile)
		p("auth_param basic children 5 startup=0 idle=1")
		p("auth_param basic realm %s", realm)
		p("auth_param basic credentialsttl 1 second")
		p("auth_param basic casesensitive on")
	}
	if s.opts.DenyTarget != "" {
		host, port, err := net.SplitHostPort(s.opts.DenyTarget)
		if err != nil {
			return fmt.Errorf("DenyTarget %q: %v", s.opts.DenyTarget, err)
		}
		if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
			return fmt.Errorf("DenyTarget %q: bad port", s.opts.DenyTarget)
		}
		p("acl phDenyDst dst %s", host)
		p("acl phDenyPort port %s", port)
		p("http_access deny phDenyDst phDenyPort")
	}
	if s.opts.NoClientPersistentConnections {
		p("client_persistent_connections off")
	}
	// No Safe_ports/SSL_ports rules: CONNECT goes to any port.
	if s.opts.Basic || s.opts.Digest || s.opts.Negotiate != nil || s.opts.NTLM {
		p("acl authed proxy_auth REQUIRED")
		p("http_access allow authed")
	} else {
		p("acl phLoopback src 127.0.0.0/8")
		p("http_access allow phLoopback")
	}
	p("http_access deny all")
	return phWriteFile(s.conf, c.String())
}

// phWriteFile replaces path atomically with a file readable by everyone (the
// proxy user included), so that a helper never reads half a file.
func phWriteFile(path, content string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// writeUsers writes both password files (whichever schemes are on).
func (s *Squid) writeUsers(users map[string]string) error {
	names := make([]string, 0, len(users))
	for u, pw := range users {
		if u == "" || strings.ContainsAny(u, ":\r\n") {
			return fmt.Errorf("username %q: must be non-empty, without ':' or line breaks", u)
		}
		if strings.ContainsAny(pw, "\r\n") {
			return fmt.Errorf("password of %q holds a line break", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)

	var basic, digest strings.Builder
	for _, u := range names {
		pw := users[u]
		if s.htpasswd != "" {
			// argv, never a shell: the password may hold any character.
			out, err := exec.Command(s.htpasswd, "-n", "-b", "-m", u, pw).Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					err = fmt.Errorf("%v: %s", err, ee.Stderr)
				}
				return fmt.Errorf("htpasswd for %q: %v", u, err)
			}
			line, _, _ := strings.Cut(string(out), "\n")
			if !strings.HasPrefix(line, u+":") {
				return fmt.Errorf("htpasswd for %q printed %q", u, out)
			}
			basic.WriteString(line + "\n")
		}
		ha1 := md5.Sum([]byte(u + ":" + realm + ":" + pw))
		fmt.Fprintf(&digest, "%s:%s:%s\n", u, realm, hex.EncodeToString(ha1[:]))
	}
	if err := phWriteFile(s.basicFile, basic.String()); err != nil {
		return err
	}
	return phWriteFile(s.digestFile, digest.String())
}

// SetUsers replaces the users of both schemes, runs squid -k reconfigure and
// returns once squid accepts connections again. Credentials squid had cached
// are gone by then: the old passwords are refused at once.
func (s *Squid) SetUsers(t *testing.T, users map[string]string) {
	t.Helper()
	if s.proc.hasExited() {
		t.Fatalf("SetUsers: squid is not running (%s)\n%s", s.proc.cmd.ProcessState, s.Log())
	}
	if err := s.writeUsers(users); err != nil {
		t.Fatalf("SetUsers: %v", err)
	}
	from := s.proc.out.Len()
	ctx, cancel := context.WithTimeout(context.Background(), phReadyTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, "-n", s.service, "-k", "reconfigure", "-f", s.conf)
	cmd.Env = phEnv()
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("SetUsers: squid -k reconfigure: %v\n%s\n%s", err, out, s.Log())
	}
	err := s.proc.out.waitFor(phSquidReady, from, s.proc.exited, phReadyTimeout)
	if err == nil {
		err = phWaitListening(s.Addr, s.proc.exited)
	}
	if err != nil {
		t.Fatalf("SetUsers: squid did not come back after reconfigure (%v)\n%s\nsquid output since:\n%s",
			err, s.Log(), s.proc.out.String()[from:])
	}
	t.Logf("squid on %s reconfigured in %v", s.Addr, time.Since(begin).Round(time.Millisecond))
}

// Stop kills squid and its helpers now. It is safe to call twice.
func (s *Squid) Stop() {
	if s.proc != nil {
		s.proc.kill()
	}
}

// Log returns squid's cache log and access log so far, for failure messages.
func (s *Squid) Log() string {
	var b strings.Builder
	cache, err := os.ReadFile(s.cacheLog)
	switch {
	case err != nil || len(cache) == 0:
		fmt.Fprintf(&b, "--- squid cache.log unavailable (%v); squid's output:\n", err)
		if s.proc != nil {
			b.WriteString(s.proc.out.String())
		}
	default:
		b.WriteString("--- squid cache.log:\n")
		b.Write(cache)
	}
	access, err := os.ReadFile(s.accessLog)
	if err != nil {
		fmt.Fprintf(&b, "--- squid access.log unavailable: %v\n", err)
	} else {
		b.WriteString("--- squid access.log:\n")
		b.Write(access)
	}
	return b.String()
}

// phWaitListening dials addr until a connection is accepted. squid prints
// its "Accepting HTTP Socket connections" line when it starts the job that
// calls listen(), one event-loop turn before the socket listens: a client
// that connects right after the line can be refused (seen here with two
// squids starting at once). So after the line, this dials in a loop paced
// by a short ticker, bounded by phDialTimeout, until squid accepts; it gives
// up early if the process exits. squid logs each probe in access.log as
// error:transaction-end-before-headers.
func phWaitListening(addr string, exited <-chan struct{}) error {
	deadline := time.NewTimer(phDialTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("%w (last dial: %v)", errPhExited, err)
		case <-deadline.C:
			return fmt.Errorf("%w: %s not listening after %v (last dial: %v)", errPhTimeout, addr, phDialTimeout, err)
		case <-tick.C:
		}
	}
}

// ---------------------------------------------------------------- tinyproxy

// Tinyproxy is a tinyproxy 1.11 process on loopback.
type Tinyproxy struct{ URL, Addr string }

// phTinyproxyToken is what tinyproxy 1.11's config parser takes for a
// BasicAuth user or password: no quoting, nothing outside this set.
var phTinyproxyToken = regexp.MustCompile(`^[-A-Za-z0-9._]+$`)

// StartTinyproxy runs tinyproxy -d on a free port of 127.0.0.1, demanding
// Basic credentials user/password (none when user is empty), allowing
// 127.0.0.1 and CONNECT to any port. tinyproxy's config syntax limits user
// and password to letters, digits, '-', '.' and '_'.
func StartTinyproxy(t testing.TB, user, password string) *Tinyproxy {
	t.Helper()
	bin := requireBinary(t, "tinyproxy", "tinyproxy")
	if user != "" && (!phTinyproxyToken.MatchString(user) || !phTinyproxyToken.MatchString(password)) {
		t.Fatalf("StartTinyproxy: tinyproxy's BasicAuth takes only [-A-Za-z0-9._]+ for user and password, got %q/%q", user, password)
	}
	dir := t.TempDir() // tinyproxy stays root (no User line), 0700 is fine
	conf := filepath.Join(dir, "tinyproxy.conf")
	for attempt := 1; ; attempt++ {
		port := phFreePort(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		var c strings.Builder
		fmt.Fprintf(&c, "Port %d\nListen 127.0.0.1\nTimeout 60\nLogLevel Info\nMaxClients 100\nAllow 127.0.0.1\n", port)
		fmt.Fprintf(&c, "ViaProxyName \"tinyproxy\"\n")
		// No ConnectPort line: tinyproxy then allows CONNECT to every port
		// (Debian's default config limits it to 443 and 563).
		if user != "" {
			fmt.Fprintf(&c, "BasicAuth %s %s\n", user, password)
		}
		if err := phWriteFile(conf, c.String()); err != nil {
			t.Fatalf("StartTinyproxy: %v", err)
		}
		// No LogFile: with -d tinyproxy logs to its stdout.
		p := phStart(t, "tinyproxy", bin, "-d", "-c", conf)
		err := p.out.waitFor(phTinyReady, 0, p.exited, phReadyTimeout)
		if err == nil {
			return &Tinyproxy{URL: "http://" + addr, Addr: addr}
		}
		out := p.out.String()
		p.kill()
		bindFailed := strings.Contains(out, "Could not create listening sockets") ||
			strings.Contains(out, "Address already in use")
		if bindFailed && attempt < phStartAttempts {
			t.Logf("tinyproxy could not bind %s (attempt %d), retrying on another port", addr, attempt)
			continue
		}
		t.Fatalf("StartTinyproxy: tinyproxy on %s not ready (%v, attempt %d, %s)\nconfig:\n%s\noutput:\n%s",
			addr, err, attempt, p.cmd.ProcessState, c.String(), out)
	}
}

// ---------------------------------------------------------------- microsocks

// Microsocks is a microsocks 1.0 SOCKS5 server on loopback.
type Microsocks struct {
	URL  string // "socks5://127.0.0.1:PORT", without credentials
	Addr string
}

// StartMicrosocks runs microsocks on a free port of 127.0.0.1, demanding
// username/password authentication with user/password (none when user is
// empty).
func StartMicrosocks(t testing.TB, user, password string) *Microsocks {
	t.Helper()
	bin := requireBinary(t, "microsocks", "microsocks")
	for attempt := 1; ; attempt++ {
		port := phFreePort(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		argv := []string{bin, "-i", "127.0.0.1", "-p", strconv.Itoa(port)}
		if user != "" {
			argv = append(argv, "-u", user, "-P", password)
		}
		p := phStart(t, "microsocks", argv...)
		err := phWaitSOCKS5(addr, user != "", p.exited)
		if err == nil {
			return &Microsocks{URL: "socks5://" + addr, Addr: addr}
		}
		p.kill()
		out := p.out.String()
		if strings.Contains(out, "Address already in use") && attempt < phStartAttempts {
			t.Logf("microsocks could not bind %s (attempt %d), retrying on another port", addr, attempt)
			continue
		}
		t.Fatalf("StartMicrosocks: microsocks on %s not ready (%v, attempt %d, %s)\noutput:\n%s",
			addr, err, attempt, p.cmd.ProcessState, out)
	}
}

// phWaitSOCKS5 waits until addr answers a SOCKS5 greeting with the expected
// method. microsocks prints nothing when it starts listening, so there is no
// readiness line to wait for: this dials in a loop, paced by a short ticker
// and bounded by phDialTimeout, and stops early if the process exits (it
// exits at once when it cannot bind). Checking the greeting, not just the
// dial, makes sure it is microsocks that answers and not another process
// that took the port.
func phWaitSOCKS5(addr string, withAuth bool, exited <-chan struct{}) error {
	method := byte(0x00) // no authentication
	if withAuth {
		method = 0x02 // username/password
	}
	deadline := time.NewTimer(phDialTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-exited: // e.g. it could not bind; don't talk to whoever did
			return fmt.Errorf("%w (last dial: %v)", errPhExited, last)
		default:
		}
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.SetDeadline(time.Now().Add(time.Second))
			_, err = conn.Write([]byte{0x05, 0x01, method})
			reply := make([]byte, 2)
			if err == nil {
				_, err = io.ReadFull(conn, reply)
			}
			conn.Close()
			if err == nil {
				if reply[0] == 0x05 && reply[1] == method {
					return nil
				}
				err = fmt.Errorf("unexpected SOCKS5 greeting reply %x", reply)
			}
		}
		last = err
		select {
		case <-exited:
			return fmt.Errorf("%w (last dial: %v)", errPhExited, last)
		case <-deadline.C:
			return fmt.Errorf("%w after %v (last dial: %v)", errPhTimeout, phDialTimeout, last)
		case <-tick.C:
		}
	}
}

// ---------------------------------------------------------------- smoke tests of the helpers

// phOrigin is a plain HTTP origin on loopback answering 200 "origin ok".
func phOrigin(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "origin ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// phTLSOrigin is an HTTPS origin on a random port, reached through CONNECT.
func phTLSOrigin(t testing.TB) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls origin ok")
	}))
	t.Cleanup(srv.Close)
	return srv
}

// phProxyURL is proxy with user:password as userinfo (none when user is "").
func phProxyURL(t testing.TB, proxy, user, password string) *url.URL {
	t.Helper()
	u, err := url.Parse(proxy)
	require.NoError(t, err)
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u
}

// phGet does one GET to target through proxy with a bare http.Transport
// (tls is the origin whose certificate to trust, or nil). It returns the
// response with its body read and closed.
func phGet(t testing.TB, proxy *url.URL, target string, tls *httptest.Server) (*http.Response, string, error) {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(proxy), DisableKeepAlives: true}
	if tls != nil {
		tr = tls.Client().Transport.(*http.Transport).Clone()
		tr.Proxy = http.ProxyURL(proxy)
		tr.DisableKeepAlives = true
	}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	require.NoError(t, err)
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

// phCurlDigest fetches target through proxy with curl's Digest and returns
// the HTTP status code curl saw.
func phCurlDigest(t testing.TB, proxy, user, password, target string) int {
	t.Helper()
	curl := requireBinary(t, "curl", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
	defer cancel()
	// argv, never a shell; -q ignores any .curlrc; the environment has no
	// *_proxy variables.
	cmd := exec.CommandContext(ctx, curl, "-q", "-s", "-o", "/dev/null", "-w", "%{http_code}",
		"--max-time", strconv.Itoa(int(generous.Seconds())), "--proxy-digest", "-U", user+":"+password, "-x", proxy, target)
	cmd.Env = phEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v: %s %s", err, out, stderr.String())
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("curl printed %q: %v", out, err)
	}
	return code
}

// Passwords with characters that break naive handling (a shell, ':' in
// Digest files, URL escapes); Go's URL userinfo carries them all.
const (
	phPasswordBasic  = `p@ss:w%rd "x" \y' #/?&=+ ü`
	phPasswordDigest = `d1g:est:p@ss "q" ü`
)

func TestHelperSquidBasic(t *testing.T) {
	t.Parallel()
	origin, tlsOrigin := phOrigin(t), phTLSOrigin(t)
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{"alice": phPasswordBasic}})
	require.Equal(t, "http://"+sq.Addr, sq.URL)

	resp, body, err := phGet(t, phProxyURL(t, sq.URL, "alice", phPasswordBasic), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusOK, resp.StatusCode, sq.Log())
	require.Equal(t, "origin ok", body)
	require.Contains(t, resp.Header.Get("Via"), "squid")

	// CONNECT to an HTTPS origin on a random (non-443) port.
	resp, body, err = phGet(t, phProxyURL(t, sq.URL, "alice", phPasswordBasic), tlsOrigin.URL, tlsOrigin)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "tls origin ok", body)

	resp, _, err = phGet(t, phProxyURL(t, sq.URL, "alice", "wrong"), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	require.Equal(t, []string{`Basic realm="` + realm + `"`}, resp.Header.Values("Proxy-Authenticate"))
	require.NotEmpty(t, resp.Header.Get("X-Squid-Error"))
}

func TestHelperSquidDigest(t *testing.T) {
	t.Parallel()
	origin := phOrigin(t)
	sq := StartSquid(t, SquidOptions{Digest: true, Users: map[string]string{"bob": phPasswordDigest}})

	require.Equal(t, http.StatusOK, phCurlDigest(t, sq.URL, "bob", phPasswordDigest, origin.URL), sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, phCurlDigest(t, sq.URL, "bob", "wrong", origin.URL), sq.Log())

	// Go's Transport has no Digest: it just sees the challenge.
	resp, _, err := phGet(t, phProxyURL(t, sq.URL, "", ""), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	ch := resp.Header.Values("Proxy-Authenticate")
	require.Len(t, ch, 1)
	require.True(t, strings.HasPrefix(ch[0], `Digest realm="`+realm+`"`), ch[0])
}

func TestHelperSquidBasicAndDigest(t *testing.T) {
	t.Parallel()
	origin := phOrigin(t)
	sq := StartSquid(t, SquidOptions{Basic: true, Digest: true, Users: map[string]string{
		"alice": phPasswordBasic, "bob": phPasswordDigest,
	}})

	resp, _, err := phGet(t, phProxyURL(t, sq.URL, "", ""), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	ch := resp.Header.Values("Proxy-Authenticate")
	require.Len(t, ch, 2, ch)
	// squid offers the schemes in the order of its auth_param lines.
	require.True(t, strings.HasPrefix(ch[0], "Digest "), ch)
	require.True(t, strings.HasPrefix(ch[1], "Basic "), ch)

	resp, _, err = phGet(t, phProxyURL(t, sq.URL, "alice", phPasswordBasic), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusOK, resp.StatusCode, sq.Log())
	resp, _, err = phGet(t, phProxyURL(t, sq.URL, "bob", phPasswordDigest), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusOK, resp.StatusCode, "Basic with the Digest user's password: %s", sq.Log())
	require.Equal(t, http.StatusOK, phCurlDigest(t, sq.URL, "alice", phPasswordBasic, origin.URL), sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, phCurlDigest(t, sq.URL, "alice", "wrong", origin.URL))
}

func TestHelperSquidSetUsers(t *testing.T) {
	t.Parallel()
	origin := phOrigin(t)
	sq := StartSquid(t, SquidOptions{Basic: true, Digest: true, Users: map[string]string{"alice": "old-pass"}})

	basic := func(pw string) int {
		resp, _, err := phGet(t, phProxyURL(t, sq.URL, "alice", pw), origin.URL, nil)
		require.NoError(t, err, sq.Log())
		return resp.StatusCode
	}
	// Both schemes validate (and squid caches) the old password first.
	require.Equal(t, http.StatusOK, basic("old-pass"), sq.Log())
	require.Equal(t, http.StatusOK, phCurlDigest(t, sq.URL, "alice", "old-pass", origin.URL), sq.Log())

	sq.SetUsers(t, map[string]string{"alice": "new-pass"})
	// Right after the reload, Digest first: a cached HA1 would let it pass.
	require.Equal(t, http.StatusProxyAuthRequired, phCurlDigest(t, sq.URL, "alice", "old-pass", origin.URL), sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, basic("old-pass"), sq.Log())
	require.Equal(t, http.StatusOK, basic("new-pass"), sq.Log())
	require.Equal(t, http.StatusOK, phCurlDigest(t, sq.URL, "alice", "new-pass", origin.URL), sq.Log())

	// And again, with Basic first this time.
	sq.SetUsers(t, map[string]string{"alice": "newer-pass"})
	require.Equal(t, http.StatusProxyAuthRequired, basic("new-pass"), sq.Log())
	require.Equal(t, http.StatusProxyAuthRequired, phCurlDigest(t, sq.URL, "alice", "new-pass", origin.URL), sq.Log())
	require.Equal(t, http.StatusOK, basic("newer-pass"), sq.Log())
	require.Equal(t, http.StatusOK, phCurlDigest(t, sq.URL, "alice", "newer-pass", origin.URL), sq.Log())
}

func TestHelperSquidDenyTarget(t *testing.T) {
	t.Parallel()
	denied, allowed := phOrigin(t), phOrigin(t)
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{"alice": "pw"}, DenyTarget: denied.Listener.Addr().String()})

	for _, creds := range []struct{ user, pw string }{{"", ""}, {"alice", "pw"}, {"alice", "wrong"}} {
		resp, _, err := phGet(t, phProxyURL(t, sq.URL, creds.user, creds.pw), denied.URL, nil)
		require.NoError(t, err, sq.Log())
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "credentials %q: %s", creds.user, sq.Log())
		require.True(t, strings.HasPrefix(resp.Header.Get("X-Squid-Error"), "ERR_ACCESS_DENIED"), resp.Header)
		require.Empty(t, resp.Header.Values("Proxy-Authenticate"))
	}
	resp, _, err := phGet(t, phProxyURL(t, sq.URL, "alice", "pw"), allowed.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusOK, resp.StatusCode, sq.Log())
}

func TestHelperSquidStop(t *testing.T) {
	t.Parallel()
	origin := phOrigin(t)
	sq := StartSquid(t, SquidOptions{Basic: true, Users: map[string]string{"alice": "pw"}})
	resp, _, err := phGet(t, phProxyURL(t, sq.URL, "alice", "pw"), origin.URL, nil)
	require.NoError(t, err, sq.Log())
	require.Equal(t, http.StatusOK, resp.StatusCode, sq.Log())
	helpers := phDescendants(sq.proc.cmd.Process.Pid)
	require.NotEmpty(t, helpers, "squid should have started basic_ncsa_auth")
	sq.Stop()
	sq.Stop()
	for _, pid := range helpers {
		require.True(t, phDead(pid), "squid helper %d outlived Stop", pid)
	}
	_, _, err = phGet(t, phProxyURL(t, sq.URL, "alice", "pw"), origin.URL, nil)
	require.Error(t, err)
	require.True(t, errors.Is(err, syscall.ECONNREFUSED), "%v", err)
	require.NotEmpty(t, sq.Log())
}

func TestHelperTinyproxy(t *testing.T) {
	t.Parallel()
	origin, tlsOrigin := phOrigin(t), phTLSOrigin(t)
	tp := StartTinyproxy(t, "alice", "s3cret-Pa55")
	require.Equal(t, "http://"+tp.Addr, tp.URL)

	resp, body, err := phGet(t, phProxyURL(t, tp.URL, "alice", "s3cret-Pa55"), origin.URL, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "origin ok", body)

	// CONNECT to a random port: allowed because the config has no ConnectPort.
	resp, body, err = phGet(t, phProxyURL(t, tp.URL, "alice", "s3cret-Pa55"), tlsOrigin.URL, tlsOrigin)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "tls origin ok", body)

	// No credentials: 407 with a Basic challenge.
	resp, _, err = phGet(t, phProxyURL(t, tp.URL, "", ""), origin.URL, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusProxyAuthRequired, resp.StatusCode)
	require.Equal(t, `Basic realm="Tinyproxy"`, resp.Header.Get("Proxy-Authenticate"))

	// Wrong credentials: tinyproxy 1.11 answers 401 with WWW-Authenticate,
	// not 407 (tinyproxy issue #532, fixed upstream after 1.11.1), for plain
	// requests and CONNECT alike.
	resp, _, err = phGet(t, phProxyURL(t, tp.URL, "alice", "wrong"), origin.URL, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.Equal(t, `Basic realm="Tinyproxy"`, resp.Header.Get("WWW-Authenticate"))
	require.Empty(t, resp.Header.Get("Proxy-Authenticate"))
	_, _, err = phGet(t, phProxyURL(t, tp.URL, "alice", "wrong"), tlsOrigin.URL, tlsOrigin)
	require.ErrorContains(t, err, "Unauthorized")
}

func TestHelperMicrosocks(t *testing.T) {
	t.Parallel()
	origin, tlsOrigin := phOrigin(t), phTLSOrigin(t)
	ms := StartMicrosocks(t, "alice", phPasswordBasic)
	require.Equal(t, "socks5://"+ms.Addr, ms.URL)

	resp, body, err := phGet(t, phProxyURL(t, ms.URL, "alice", phPasswordBasic), origin.URL, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "origin ok", body)

	resp, body, err = phGet(t, phProxyURL(t, ms.URL, "alice", phPasswordBasic), tlsOrigin.URL, tlsOrigin)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "tls origin ok", body)

	_, _, err = phGet(t, phProxyURL(t, ms.URL, "alice", "wrong"), origin.URL, nil)
	require.Error(t, err)
	require.Contains(t, err.Error(), "authentication failed")
}
