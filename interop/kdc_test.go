package interop_test

// A Kerberos realm of the test's own, for the Negotiate interop tests: MIT
// Kerberos's KDC (krb5kdc) with a database made in a new directory, on a
// free port of 127.0.0.1, killed in t.Cleanup like the proxies of
// proxies_test.go.
//
// Debian's krb5 packages write an /etc/krb5.conf that names internet KDCs
// (ATHENA.MIT.EDU's): no krb5 command here ever reads it. Every one runs
// with KRB5_CONFIG and KRB5_KDC_PROFILE naming the realm's own files, and
// those turn off every DNS lookup, so that nothing but loopback is asked.
//
// Identifiers that are not part of the helper's API carry a "kdc" prefix.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	phuser "os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// kdcRealm is the realm StartKDC makes.
const kdcRealm = "PROXYAUTH.TEST"

// kdcService is the service principal squid accepts Negotiate for, without
// the realm. A client asks for HTTP/<the host in the proxy URL>, so the
// proxy must be addressed as localhost (see Squid.LocalhostURL).
const kdcService = "HTTP/localhost"

// kdcReady is what krb5kdc logs once its sockets listen.
const kdcReady = "commencing operation"

// kdcName is what a principal's name (the part before the realm) may hold
// here: kadmin.local's command line parser and file names take it as it is.
var kdcName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// KDC is an MIT Kerberos KDC (krb5kdc) for a realm of its own on loopback,
// made by StartKDC. Its fields must not be changed. It is safe for
// concurrent use.
type KDC struct {
	// Realm is the realm's name, "PROXYAUTH.TEST".
	Realm string
	// Addr is where the KDC listens, "127.0.0.1:PORT", over both UDP and
	// TCP (clients use TCP: udp_preference_limit is 1).
	Addr string
	// Config is the realm's krb5.conf, for clients and for squid's
	// helper: give it as KRB5_CONFIG (Env does).
	Config string
	// Profile is the KDC's kdc.conf (KRB5_KDC_PROFILE), needed only by the
	// KDC's own programs.
	Profile string
	// ServicePrincipal is the proxy's principal with its realm,
	// "HTTP/localhost@PROXYAUTH.TEST".
	ServicePrincipal string
	// ServiceKeytab is the keytab of ServicePrincipal (random keys),
	// readable by the proxy user that squid runs its helpers as.
	ServiceKeytab string

	dir      string // 0711: the proxy user may reach the files it is given by name
	proc     *phProcess
	kinit    string
	ccaches  atomic.Int64 // names the credential caches Kinit makes
	startup  time.Duration
	keytabs  map[string]string // user -> client keytab
	secrets  []string          // the passwords, masked in what this prints
	krb5Vars []string          // KRB5_CONFIG and KRB5_KDC_PROFILE
}

// StartKDC makes a new realm (kdb5_util create) in a new directory with a
// principal and a client keytab (ktadd -norandkey, so that the password
// keeps working) for each of users (name to password; the names without the
// realm), and the service principal HTTP/localhost with random keys and a
// keytab the proxy user can read. It runs krb5kdc -n on a free port of
// 127.0.0.1 and returns once it listens. The KDC is killed and the directory
// removed in t.Cleanup.
//
// The users' principals require pre-authentication, as Active Directory's
// do: a wrong password is refused by the KDC, not only by the client.
// Passwords may hold any character but '"', '\' and control characters.
func StartKDC(t testing.TB, users map[string]string) *KDC {
	t.Helper()
	begin := time.Now()
	krb5kdc := requireBinary(t, "krb5kdc", "krb5-kdc")
	kdb5Util := requireBinary(t, "kdb5_util", "krb5-kdc")
	kadmin := requireBinary(t, "kadmin.local", "krb5-admin-server")
	kinit := requireBinary(t, "kinit", "krb5-user")
	env := requireBinary(t, "env", "coreutils")

	k := &KDC{Realm: kdcRealm, ServicePrincipal: kdcService + "@" + kdcRealm, kinit: kinit, keytabs: map[string]string{}}
	for name, pw := range users {
		if !kdcName.MatchString(name) {
			t.Fatalf("StartKDC: user name %q: only letters, digits and . _ - here", name)
		}
		if pw == "" || strings.ContainsAny(pw, "\"\\") || strings.IndexFunc(pw, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
			t.Fatalf("StartKDC: the password of %q must be non-empty, without '\"', '\\' or control characters", name)
		}
		k.secrets = append(k.secrets, pw)
	}

	// squid's helper runs as the proxy user and must reach krb5.conf and
	// the service keytab; it may not list the directory, and every other
	// file in it (the database, the stash, client keytabs and credential
	// caches) is 0600.
	dir := phProcessDir(t, "StartKDC", "kdc-interop-", 0o711)
	k.dir = dir
	k.Config = filepath.Join(dir, "krb5.conf")
	k.Profile = filepath.Join(dir, "kdc.conf")
	k.ServiceKeytab = filepath.Join(dir, "service.keytab")
	k.krb5Vars = []string{"KRB5_CONFIG=" + k.Config, "KRB5_KDC_PROFILE=" + k.Profile}

	var master [16]byte
	rand.Read(master[:])
	// The port is in the configuration, so a KDC that could not bind it
	// (another process took it after phFreePort) means a new realm on a
	// new port; a realm costs a few tens of milliseconds.
	for attempt := 1; ; attempt++ {
		port := phFreePort(t)
		k.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := k.writeConfig(port); err != nil {
			t.Fatalf("StartKDC: %v", err)
		}
		if attempt == 1 {
			if err := k.run(kdb5Util, "create", "-s", "-r", k.Realm, "-P", hex.EncodeToString(master[:])); err != nil {
				t.Fatalf("StartKDC: %v", err)
			}
			k.populate(t, kadmin, users)
		}
		// env -i: krb5kdc gets the realm's files and nothing else of this
		// process's environment (phStart gives it phEnv()).
		argv := append([]string{env, "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, k.krb5Vars...)
		argv = append(argv, krb5kdc, "-n", "-r", k.Realm)
		k.proc = phStart(t, "krb5kdc", argv...)
		err := k.proc.out.waitFor(kdcReady, 0, k.proc.exited, phReadyTimeout)
		if err == nil {
			err = phWaitListening(k.Addr, k.proc.exited)
		}
		if err == nil {
			k.startup = time.Since(begin)
			t.Logf("KDC for %s ready on %s in %v (realm made, %d users, keytabs written)",
				k.Realm, k.Addr, k.startup.Round(time.Millisecond), len(users))
			return k
		}
		out := k.proc.out.String()
		k.proc.kill()
		if strings.Contains(out, "Address already in use") && attempt < phStartAttempts {
			t.Logf("krb5kdc could not bind %s (attempt %d), retrying on another port", k.Addr, attempt)
			continue
		}
		t.Fatalf("StartKDC: krb5kdc on %s not ready (%v, attempt %d, %s)\noutput:\n%s",
			k.Addr, err, attempt, k.proc.cmd.ProcessState, k.mask(out))
	}
}

// writeConfig writes krb5.conf (clients, squid's helper) and kdc.conf (the
// KDC, kdb5_util, kadmin.local) for a KDC on port.
func (k *KDC) writeConfig(port int) error {
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	krb5 := strings.Join([]string{
		"# written by kdc_test.go; /etc/krb5.conf is never read",
		"[libdefaults]",
		"\tdefault_realm = " + k.Realm,
		// No DNS: neither SRV records for the KDC nor TXT records for the
		// realm, no canonicalisation of host names, no reverse lookups.
		"\tdns_lookup_kdc = false",
		"\tdns_lookup_realm = false",
		"\tdns_canonicalize_hostname = false",
		"\trdns = false",
		// TCP for every message: one connection, no retransmission timers.
		"\tudp_preference_limit = 1",
		// A client that forgets KRB5CCNAME writes here, not /tmp/krb5cc_UID.
		"\tdefault_ccache_name = FILE:" + filepath.Join(k.dir, "ccache-default"),
		"\tdefault_keytab_name = FILE:" + filepath.Join(k.dir, "keytab-default"),
		"\tforwardable = false",
		"[realms]",
		"\t" + k.Realm + " = {",
		"\t\tkdc = " + addr,
		"\t}",
		"[domain_realm]",
		"\tlocalhost = " + k.Realm,
		"\t.localhost = " + k.Realm,
		"",
	}, "\n")
	kdc := strings.Join([]string{
		"# written by kdc_test.go",
		"[kdcdefaults]",
		"\tkdc_listen = " + addr,
		"\tkdc_tcp_listen = " + addr,
		"[realms]",
		"\t" + k.Realm + " = {",
		"\t\tdatabase_name = " + filepath.Join(k.dir, "principal"),
		"\t\tkey_stash_file = " + filepath.Join(k.dir, "stash"),
		"\t\tacl_file = " + filepath.Join(k.dir, "kadm5.acl"),
		"\t\tkdc_listen = " + addr,
		"\t\tkdc_tcp_listen = " + addr,
		// What gokrb5 and every GSS-API client speak.
		"\t\tsupported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal",
		"\t}",
		// SPAKE needs groups configured; without them the KDC logs an
		// error at start. Encrypted timestamps are what is used.
		"[plugins]",
		"\tkdcpreauth = {",
		"\t\tdisable = spake",
		"\t}",
		// Logs to stderr, which phStart collects: nothing under /var/log.
		"[logging]",
		"\tkdc = STDERR",
		"\tadmin_server = STDERR",
		"\tdefault = STDERR",
		"",
	}, "\n")
	if err := phWriteFile(k.Config, krb5); err != nil {
		return err
	}
	return phWriteFile(k.Profile, kdc)
}

// populate adds the principals and writes the keytabs.
func (k *KDC) populate(t testing.TB, kadmin string, users map[string]string) {
	t.Helper()
	q := func(query string) {
		t.Helper()
		if err := k.run(kadmin, "-r", k.Realm, "-q", query); err != nil {
			t.Fatalf("StartKDC: %v", err)
		}
	}
	for name, pw := range users {
		// -q keeps kadmin.local from echoing the command (and the
		// password) the way it echoes commands read from stdin.
		q(fmt.Sprintf(`addprinc -pw "%s" +requires_preauth %s`, pw, name))
		kt := filepath.Join(k.dir, name+".keytab")
		q(fmt.Sprintf("ktadd -norandkey -k %s %s", kt, name))
		k.keytabs[name] = kt
	}
	q("addprinc -randkey " + kdcService)
	q(fmt.Sprintf("ktadd -k %s %s", k.ServiceKeytab, kdcService))
	if os.Geteuid() == 0 {
		// squid runs as root here and its helpers as the proxy user.
		u, err := phuser.Lookup("proxy")
		if err != nil {
			t.Fatalf("StartKDC: squid needs the user proxy (from the squid package) to read the keytab: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(k.ServiceKeytab, uid, gid); err != nil {
			t.Fatalf("StartKDC: %v", err)
		}
	}
	if err := os.Chmod(k.ServiceKeytab, 0o400); err != nil {
		t.Fatalf("StartKDC: %v", err)
	}
}

// run runs one of the KDC's programs with the realm's environment. Its
// error names the program and the first argument only (a password may be
// among the others) and holds the program's output, masked.
func (k *KDC) run(argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = k.Env("")
	cmd.Dir = k.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		what := filepath.Base(argv[0])
		if len(argv) > 1 && !strings.HasPrefix(argv[1], "-") {
			what += " " + argv[1]
		}
		return fmt.Errorf("%s: %v\n%s", what, err, k.mask(string(out)))
	}
	return nil
}

// Env returns the environment for a krb5 program or a Kerberos client such
// as curl: this process's environment without proxy variables (phEnv) and
// without any KRB5* variable, plus KRB5_CONFIG and KRB5_KDC_PROFILE for
// this realm and, if ccache is not empty, KRB5CCNAME=FILE:ccache.
func (k *KDC) Env(ccache string) []string {
	var env []string
	for _, kv := range phEnv() {
		if !strings.HasPrefix(kv, "KRB5") {
			env = append(env, kv)
		}
	}
	env = append(env, k.krb5Vars...)
	if ccache != "" {
		env = append(env, "KRB5CCNAME=FILE:"+ccache)
	}
	return env
}

// Principal returns name@Realm.
func (k *KDC) Principal(name string) string { return name + "@" + k.Realm }

// ClientKeytab returns the path of the keytab of user (one of StartKDC's
// users), written with ktadd -norandkey: it holds the keys of the user's
// password, which keeps working.
func (k *KDC) ClientKeytab(t testing.TB, user string) string {
	t.Helper()
	kt, ok := k.keytabs[user]
	if !ok {
		t.Fatalf("ClientKeytab: %q is not a user of this KDC", user)
	}
	return kt
}

// Kinit gets a ticket-granting ticket for principal (a user's name, with or
// without the realm) with password, into a new credential cache in the
// KDC's directory, and returns the cache's path: give it to a client as
// KRB5CCNAME=FILE:path (Env does). It fails the test if kinit fails.
func (k *KDC) Kinit(t testing.TB, principal, password string) string {
	t.Helper()
	ccache, err := k.KinitErr(principal, password)
	if err != nil {
		t.Fatalf("Kinit: %v", err)
	}
	return ccache
}

// KinitErr is Kinit returning kinit's failure, with what kinit printed
// (masked), instead of failing the test. It leaves no cache behind when it
// fails.
func (k *KDC) KinitErr(principal, password string) (string, error) {
	return k.kinitWith(principal, password, "")
}

// KinitKeytab is Kinit with the user's client keytab instead of a password
// (kinit -k -t).
func (k *KDC) KinitKeytab(t testing.TB, user string) string {
	t.Helper()
	ccache, err := k.kinitWith(user, "", k.ClientKeytab(t, user))
	if err != nil {
		t.Fatalf("KinitKeytab: %v", err)
	}
	return ccache
}

func (k *KDC) kinitWith(principal, password, keytab string) (string, error) {
	ccache := filepath.Join(k.dir, fmt.Sprintf("ccache-%d", k.ccaches.Add(1)))
	args := []string{"-c", "FILE:" + ccache}
	if keytab != "" {
		args = append(args, "-k", "-t", keytab)
	}
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.kinit, append(args, principal)...)
	cmd.Env = k.Env("")
	// The password goes to kinit's stdin, never into its argv; kinit reads
	// it from there when stdin is not a terminal.
	if keytab == "" {
		cmd.Stdin = strings.NewReader(password + "\n")
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		os.Remove(ccache)
		msg := strings.TrimSpace(stderr.String())
		var ee *exec.ExitError
		if !errors.As(err, &ee) || msg == "" {
			msg = fmt.Sprintf("%v: %s", err, strings.TrimSpace(stdout.String()+" "+msg))
		}
		return "", fmt.Errorf("kinit %s: %s", principal, k.mask(msg))
	}
	return ccache, nil
}

// Log returns what the KDC logged so far (each AS_REQ and TGS_REQ with its
// outcome), for failure messages.
func (k *KDC) Log() string { return "--- krb5kdc log:\n" + k.mask(k.proc.out.String()) }

// Stop kills the KDC now. It is safe to call twice.
func (k *KDC) Stop() { k.proc.kill() }

// SquidNegotiate returns the settings for squid's Negotiate helper to accept
// tickets for this KDC's service principal (SquidOptions.Negotiate).
func (k *KDC) SquidNegotiate() *SquidNegotiate {
	return &SquidNegotiate{Keytab: k.ServiceKeytab, Principal: k.ServicePrincipal, Config: k.Config}
}

// mask replaces the users' passwords in s.
func (k *KDC) mask(s string) string {
	for _, pw := range k.secrets {
		s = strings.ReplaceAll(s, pw, "[password]")
	}
	return s
}

// SquidNegotiate is how squid accepts Negotiate (Kerberos through SPNEGO)
// with negotiate_kerberos_auth; KDC.SquidNegotiate fills it in.
type SquidNegotiate struct {
	// Keytab is the service principal's keytab, readable by the proxy
	// user.
	Keytab string
	// Principal is the service principal with its realm,
	// "HTTP/localhost@PROXYAUTH.TEST" (the helper's -s).
	Principal string
	// Config is the krb5.conf the helper is given as KRB5_CONFIG instead of
	// /etc/krb5.conf.
	Config string
}
