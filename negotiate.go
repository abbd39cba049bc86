package proxyauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/krberror"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/sync/singleflight"
)

// Negotiate returns the Negotiate scheme (RFC 4559): SPNEGO with Kerberos,
// what corporate proxies ask domain members for. It authenticates a
// connection, not a request (see [ConnAuthorizer]), in one leg: the token
// carries a service ticket for the proxy's principal and an authenticator
// made for that connection alone. It never sends anything before the
// proxy asks, and needs no password when a ticket is at hand.
//
// When a proxy offers several schemes, the Transport answers the strongest
// it may use: Negotiate 60 > Digest 30–51 (by algorithm) > NTLM 25 >
// Bearer 20 > Basic 10.
//
// Start logs in to the KDC, trying in order: the keytab of k.Keytab, for
// k.Principal; a credential cache whose ticket-granting ticket has not
// expired (k.CCache, else $KRB5CCNAME, else /tmp/krb5cc_UID), as kinit
// writes it; a password login with Credentials.Password, for k.Principal
// or else Credentials.Username ("user@REALM", or "user" in the
// configuration's default realm). When none is possible, its error says
// why each way was skipped, and the Transport goes on to the next scheme
// the proxy offers. Errors never hold a password or a token.
//
// A ticket-granting ticket from a keytab or a password is reused for every
// connection and renewed, or obtained again, before it expires; a service
// ticket is reused until it expires. A credential cache that kinit writes
// anew is read again. The KDC's answers are awaited for at most gokrb5's
// timeouts (5 seconds to connect to each KDC, 5 more for its answer): Start
// has no context, and Handshake stops waiting when its context ends.
func Negotiate(k Kerberos) Scheme {
	return negotiateScheme{k: k, logins: &logins{done: map[string]login{}}}
}

// Kerberos says where [Negotiate] gets its Kerberos tickets. Its zero
// value finds them as kinit and curl do, through the environment. A file
// named here explicitly that does not exist or does not parse is an error
// of the configuration. It is copied by Negotiate.
type Kerberos struct {
	// Config is the path of the krb5.conf that names the realms and their
	// KDCs. "": $KRB5_CONFIG (the first of its colon-separated files
	// that exists), then /etc/krb5.conf.
	Config string
	// CCache is the credential cache to take the ticket-granting ticket
	// from, as kinit writes it: a file path, optionally with the prefix
	// "FILE:"; other cache types (KEYRING:, KCM:, DIR:) are not
	// supported. "": $KRB5CCNAME, then /tmp/krb5cc_UID.
	CCache string
	// Keytab is the path of a keytab to log in with, for Principal,
	// instead of a credential cache or a password. "": none.
	Keytab string
	// Principal is the client principal, "user@REALM" or "user" in the
	// default realm: the one Keytab holds keys for, or the one a password
	// login is for (then "" means Credentials.Username). A credential
	// cache for another principal is not used when it is set.
	Principal string
	// SPN is the proxy's service principal, without the realm, such as
	// "HTTP/proxy.corp.example". "": "HTTP/" and the host of the proxy
	// URL, lower-cased.
	SPN string
}

// defaultKrb5Conf is the configuration used when neither Kerberos.Config
// nor $KRB5_CONFIG names one.
const defaultKrb5Conf = "/etc/krb5.conf"

type negotiateScheme struct {
	k      Kerberos
	logins *logins // shared by the copies of the Scheme
}

// logins are the logins of one Negotiate scheme, so that its logins
// share them: one ticket-granting ticket, and one service ticket per
// proxy, for all the requests, however many start at once; and a password
// or a key that the KDC refused is not sent to it again, lest the account
// be locked. A login by password is kept by principal (one entry each,
// replaced when the password changes), by keytab under one key, and one
// from a credential cache by the cache's path, while the file is the same.
type logins struct {
	group singleflight.Group
	mu    sync.Mutex
	done  map[string]login
}

// login is the outcome of one login: an Authorizer, or the KDC's final
// refusal.
type login struct {
	secret [32]byte   // the SHA-256 of the password, for a password login
	cache  *cacheFile // the cache read, for a cache login
	a      *negotiateAuthorizer
	err    error
}

// do returns the login under key for secret, or makes it with f, one
// call at a time per key. Successes are kept, and refusals that another
// try cannot change (see finalRefusal); other failures are not.
func (m *logins) do(key string, secret [32]byte, f func() (*negotiateAuthorizer, error)) (Authorizer, error) {
	m.mu.Lock()
	l, ok := m.done[key]
	m.mu.Unlock()
	if ok && l.secret == secret {
		return l.authorizer()
	}
	v, _, _ := m.group.Do(key+"\x00"+string(secret[:]), func() (any, error) {
		m.mu.Lock()
		l, ok := m.done[key]
		m.mu.Unlock()
		if ok && l.secret == secret {
			return l, nil
		}
		a, err := f()
		l = login{secret: secret, a: a, err: err}
		if err == nil || finalRefusal(err) {
			m.mu.Lock()
			m.done[key] = l
			m.mu.Unlock()
		}
		return l, nil
	})
	return v.(login).authorizer()
}

func (l login) authorizer() (Authorizer, error) {
	if l.err != nil {
		return nil, l.err
	}
	return l.a, nil
}

// finalRefusal reports whether err is the KDC refusing the account's
// password or key, or the account itself: trying again cannot help, and
// counts as one more failed login.
func finalRefusal(err error) bool {
	var ke *kerberosError
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.kind {
	case kerbPassword, kerbKeytab, kerbUnknownClient, kerbRevoked, kerbKeyExpired:
		return true
	}
	return false
}

func (negotiateScheme) Name() string           { return "Negotiate" }
func (negotiateScheme) Strength(Challenge) int { return 60 }

func (s negotiateScheme) Start(c *Challenge, creds Credentials) (Authorizer, error) {
	if c == nil {
		return nil, nil
	}
	return s.k.login(creds, s.logins)
}

// validate checks what k names explicitly: the files exist and parse, a
// keytab has its principal, the principal and the SPN are well formed.
func (k Kerberos) validate() error {
	if err := k.checkNames(); err != nil {
		return err
	}
	if k.Config != "" {
		if _, err := loadKrb5Conf(k.Config, "Kerberos.Config"); err != nil {
			return err
		}
	}
	if k.Keytab != "" {
		if _, err := loadKeytab(k.Keytab); err != nil {
			return err
		}
	}
	if k.CCache != "" {
		path, err := ccachePath(k.CCache, "Kerberos.CCache")
		if err != nil {
			return err
		}
		if _, err := loadCCache(path); err != nil {
			return &kerberosError{kind: kerbConfig, what: "Kerberos.CCache", reason: "the credential cache " + path + " " + fileProblem(err),
				fix: "set Kerberos.CCache to a credential cache that kinit wrote, or leave it empty", err: err}
		}
	}
	return nil
}

// checkNames checks the fields that are names rather than files.
func (k Kerberos) checkNames() error {
	if k.Keytab != "" && k.Principal == "" {
		return &kerberosError{kind: kerbConfig, what: "Kerberos.Keytab", reason: "a keytab needs Kerberos.Principal, the principal to log in as",
			fix: "set Kerberos.Principal to the principal the keytab holds keys for"}
	}
	if k.Principal != "" {
		// The default realm is the configuration's, read later; "x" stands
		// in for it here.
		if _, _, err := splitPrincipal(k.Principal, "x"); err != nil {
			return err
		}
	}
	if k.SPN != "" {
		if err := checkSPN(k.SPN); err != nil {
			return err
		}
	}
	return nil
}

func checkSPN(spn string) error {
	service, host, ok := strings.Cut(spn, "/")
	switch {
	case strings.Contains(spn, "@"):
		return &kerberosError{kind: kerbConfig, what: "Kerberos.SPN", reason: fmt.Sprintf("%q holds a realm", spn),
			fix: "give Kerberos.SPN without the realm, as service/host: the realm comes from the domain_realm section of krb5.conf"}
	case !ok || service == "" || host == "":
		return &kerberosError{kind: kerbConfig, what: "Kerberos.SPN", reason: fmt.Sprintf("%q is not of the form service/host", spn),
			fix: "give Kerberos.SPN as service/host, such as HTTP/proxy.corp.example"}
	}
	return nil
}

// login makes the Authorizer of one login: it logs in the first way
// that k and creds allow.
func (k Kerberos) login(creds Credentials, m *logins) (Authorizer, error) {
	if err := k.checkNames(); err != nil {
		return nil, err
	}
	cfg, err := k.config()
	if err != nil {
		return nil, err
	}
	if k.Keytab != "" {
		return m.do("keytab", [32]byte{}, func() (*negotiateAuthorizer, error) { return k.keytabLogin(cfg) })
	}
	a, why, expired := k.cacheLogin(cfg, m)
	if a != nil {
		return a, nil
	}
	skipped := []string{why, "no keytab"}
	principal := k.Principal
	if principal == "" {
		principal = creds.Username
	}
	switch {
	case creds.Password == "":
		skipped = append(skipped, "no password")
	case principal == "":
		skipped = append(skipped, "a password but no principal (Kerberos.Principal and Credentials.Username are empty)")
	default:
		return m.do("password "+principal, sha256.Sum256([]byte(creds.Password)), func() (*negotiateAuthorizer, error) {
			return k.passwordLogin(cfg, principal, creds.Password)
		})
	}
	kind := kerbNoTicket
	if expired {
		kind = kerbExpired
	}
	return nil, &kerberosError{kind: kind, what: "no Kerberos ticket", reason: strings.Join(skipped, "; ")}
}

// config loads the krb5.conf that k names, or the environment's.
func (k Kerberos) config() (*config.Config, error) {
	if k.Config != "" {
		return loadKrb5Conf(k.Config, "Kerberos.Config")
	}
	env, set := os.LookupEnv("KRB5_CONFIG")
	if !set || env == "" {
		if _, err := os.Stat(defaultKrb5Conf); errors.Is(err, fs.ErrNotExist) {
			return nil, &kerberosError{kind: kerbConfig, what: "no Kerberos configuration",
				reason: "KRB5_CONFIG is not set and " + defaultKrb5Conf + " does not exist",
				fix:    "set Kerberos.Config or KRB5_CONFIG to the krb5.conf of your realm"}
		}
		return loadKrb5Conf(defaultKrb5Conf, defaultKrb5Conf)
	}
	for _, path := range strings.Split(env, ":") {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err == nil {
			return loadKrb5Conf(path, "KRB5_CONFIG")
		}
	}
	return nil, &kerberosError{kind: kerbConfig, what: "no Kerberos configuration", reason: "KRB5_CONFIG=" + env + ": no such file",
		fix: "set Kerberos.Config or KRB5_CONFIG to the krb5.conf of your realm"}
}

func loadKrb5Conf(path, what string) (*config.Config, error) {
	cfg, err := config.Load(path)
	var unsupported config.UnsupportedDirective
	if err != nil && cfg != nil && errors.As(err, &unsupported) {
		// What gokrb5 does not implement (a v4 realm) does not
		// concern the rest of the file.
		err = nil
	}
	if err != nil {
		reason := "the Kerberos configuration " + path + " does not parse"
		if _, serr := os.Stat(path); serr != nil {
			reason = "the Kerberos configuration " + path + " " + fileProblem(serr)
		} else if f, oerr := os.Open(path); oerr != nil {
			reason = "the Kerberos configuration " + path + " " + fileProblem(oerr)
		} else {
			f.Close()
		}
		return nil, &kerberosError{kind: kerbConfig, what: what, reason: reason,
			fix: "give a krb5.conf that kinit accepts", err: err}
	}
	return cfg, nil
}

func loadKeytab(path string) (*keytab.Keytab, error) {
	kt, err := func() (kt *keytab.Keytab, err error) {
		defer func() {
			if p := recover(); p != nil {
				kt, err = nil, fmt.Errorf("malformed keytab (%v)", p)
			}
		}()
		return keytab.Load(path)
	}()
	if err != nil {
		return nil, &kerberosError{kind: kerbConfig, what: "Kerberos.Keytab", reason: "the keytab " + path + " " + fileProblem(err),
			fix: "set Kerberos.Keytab to a keytab that klist -k reads", err: err}
	}
	return kt, nil
}

// ccachePath returns the file of a credential cache name, refusing the
// types that are not files.
func ccachePath(name, what string) (string, error) {
	typ, rest, ok := strings.Cut(name, ":")
	if !ok || len(typ) < 2 || strings.ContainsAny(typ, `/\`) {
		return name, nil // a path; "C:" is a drive letter
	}
	if strings.EqualFold(typ, "FILE") {
		return rest, nil
	}
	return "", &kerberosError{kind: kerbConfig, what: what, reason: fmt.Sprintf("the credential cache %s is of type %s: only files (FILE:) are supported", name, typ),
		fix: "point KRB5CCNAME or Kerberos.CCache at a file cache, as kinit -c FILE:path makes one"}
}

func loadCCache(path string) (cc *credentials.CCache, err error) {
	defer func() {
		if p := recover(); p != nil {
			cc, err = nil, fmt.Errorf("malformed credential cache (%v)", p)
		}
	}()
	return credentials.LoadCCache(path)
}

// fileProblem says why a file could not be loaded.
func fileProblem(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case errors.Is(err, fs.ErrPermission):
		return "cannot be read"
	}
	return "does not parse"
}

// cacheLogin takes the ticket-granting ticket of the credential cache;
// when it cannot, it says why, and whether the ticket expired.
func (k Kerberos) cacheLogin(cfg *config.Config, m *logins) (Authorizer, string, bool) {
	name, what := k.CCache, "Kerberos.CCache"
	if name == "" {
		name, what = os.Getenv("KRB5CCNAME"), "KRB5CCNAME"
	}
	if name == "" {
		uid := os.Getuid()
		if uid < 0 {
			return nil, "no credential cache (KRB5CCNAME is not set)", false
		}
		name, what = "/tmp/krb5cc_"+strconv.Itoa(uid), "the default credential cache"
	}
	path, err := ccachePath(name, what)
	if err != nil {
		return nil, err.(*kerberosError).reason, false
	}
	key := "cache " + path
	if a := m.cached(key, path); a != nil {
		return a, "", false
	}
	// Sessions that start at once read the cache once, and share its
	// login and its service tickets.
	v, _, _ := m.group.Do(key, func() (any, error) {
		if a := m.cached(key, path); a != nil {
			return cacheRead{a: a}, nil
		}
		c, why, expired := k.readCache(path, cfg)
		if c == nil {
			return cacheRead{why: why, expired: expired}, nil
		}
		a := &negotiateAuthorizer{k: k, cfg: cfg, how: "the credential cache " + path, cache: c}
		a.setClient(c.cl, c.principal)
		m.mu.Lock()
		m.done[key] = login{cache: c, a: a}
		m.mu.Unlock()
		return cacheRead{a: a}, nil
	})
	r := v.(cacheRead)
	if r.a == nil {
		return nil, r.why, r.expired
	}
	return r.a, "", false
}

// cacheRead is the outcome of reading a credential cache: a login, or why
// there is none and whether its ticket expired.
type cacheRead struct {
	a       *negotiateAuthorizer
	why     string
	expired bool
}

// cached returns the login of the credential cache at path under key
// while the file is the one it was read from and its ticket is valid, or
// nil.
func (m *logins) cached(key, path string) *negotiateAuthorizer {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	m.mu.Lock()
	l, ok := m.done[key]
	m.mu.Unlock()
	if ok && l.cache.mod.Equal(fi.ModTime()) && l.cache.size == fi.Size() && time.Now().Before(l.cache.end) {
		return l.a
	}
	return nil
}

// cacheFile is a credential cache as read, with what tells that it was
// written again.
type cacheFile struct {
	path      string
	mod       time.Time
	size      int64
	principal string
	end       time.Time // when its ticket-granting ticket expires
	cl        *client.Client
}

// readCache reads a credential cache, or says why it is not usable and
// whether that is because its ticket expired.
func (k Kerberos) readCache(path string, cfg *config.Config) (*cacheFile, string, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, "the credential cache " + path + " " + fileProblem(err), false
	}
	cc, err := loadCCache(path)
	if err != nil {
		return nil, "the credential cache " + path + " " + fileProblem(err), false
	}
	principal := cc.DefaultPrincipal.PrincipalName.PrincipalNameString() + "@" + cc.DefaultPrincipal.Realm
	if k.Principal != "" {
		user, realm, err := splitPrincipal(k.Principal, cfg.LibDefaults.DefaultRealm)
		if err == nil && user+"@"+realm != principal {
			return nil, "the credential cache " + path + " holds the tickets of " + principal + ", not " + user + "@" + realm, false
		}
	}
	tgt, ok := cc.GetEntry(types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", cc.DefaultPrincipal.Realm}})
	if !ok {
		return nil, "the credential cache " + path + " holds no ticket-granting ticket", false
	}
	if !time.Now().Before(tgt.EndTime) {
		return nil, "the ticket in the credential cache " + path + " expired at " + tgt.EndTime.UTC().Format(time.RFC3339), true
	}
	cl, err := newClientFromCCache(cc, cfg)
	if err != nil {
		return nil, "the credential cache " + path + " does not parse", false
	}
	return &cacheFile{path: path, mod: fi.ModTime(), size: fi.Size(), principal: principal, end: tgt.EndTime, cl: cl}, "", false
}

func newClientFromCCache(cc *credentials.CCache, cfg *config.Config) (cl *client.Client, err error) {
	defer func() {
		if p := recover(); p != nil {
			cl, err = nil, fmt.Errorf("malformed credential cache (%v)", p)
		}
	}()
	return client.NewFromCCache(cc, cfg, client.DisablePAFXFAST(true))
}

func (k Kerberos) keytabLogin(cfg *config.Config) (*negotiateAuthorizer, error) {
	kt, err := loadKeytab(k.Keytab)
	if err != nil {
		return nil, err
	}
	user, realm, err := splitPrincipal(k.Principal, cfg.LibDefaults.DefaultRealm)
	if err != nil {
		return nil, err
	}
	a := &negotiateAuthorizer{k: k, cfg: cfg, how: "the keytab " + k.Keytab, keytab: true}
	// Active Directory refuses the FAST armour gokrb5 would ask for.
	cl := client.NewWithKeytab(user, realm, kt, cfg, client.DisablePAFXFAST(true))
	if err := a.firstLogin(cl, user+"@"+realm, "keytab login"); err != nil {
		return nil, err
	}
	return a, nil
}

func (k Kerberos) passwordLogin(cfg *config.Config, principal, password string) (*negotiateAuthorizer, error) {
	user, realm, err := splitPrincipal(principal, cfg.LibDefaults.DefaultRealm)
	if err != nil {
		return nil, err
	}
	a := &negotiateAuthorizer{k: k, cfg: cfg, how: "the password", password: password}
	cl := client.NewWithPassword(user, realm, password, cfg, client.DisablePAFXFAST(true))
	if err := a.firstLogin(cl, user+"@"+realm, "password login"); err != nil {
		return nil, err
	}
	return a, nil
}

// splitPrincipal splits "user@REALM", or "user" in defaultRealm.
func splitPrincipal(p, defaultRealm string) (user, realm string, err error) {
	bad := func(why, fix string) error {
		return &kerberosError{kind: kerbConfig, what: "Kerberos principal " + strconv.Quote(p), reason: why, fix: fix}
	}
	if strings.Contains(p, `\`) {
		return "", "", bad("it is of the form DOMAIN\\user", "give the principal as user@REALM, such as alice@CORP.EXAMPLE")
	}
	user, realm = p, defaultRealm
	if i := strings.LastIndexByte(p, '@'); i >= 0 {
		user, realm = p[:i], p[i+1:]
		if realm == "" {
			return "", "", bad("its realm is empty", "give the principal as user@REALM, such as alice@CORP.EXAMPLE")
		}
	}
	if user == "" {
		return "", "", bad("its name is empty", "give the principal as user@REALM, such as alice@CORP.EXAMPLE")
	}
	if realm == "" {
		return "", "", bad("it has no realm, and the Kerberos configuration names no default_realm", "give the principal as user@REALM, or set default_realm in krb5.conf")
	}
	return user, realm, nil
}

// negotiateAuthorizer is a login: the Authorizer of a Negotiate login.
// It is safe for concurrent use.
type negotiateAuthorizer struct {
	k        Kerberos
	cfg      *config.Config
	how      string             // how it logged in, for messages
	password string             // to keep it out of messages; "" for other logins
	keytab   bool               // it logged in with a keytab
	tickets  singleflight.Group // one request to the KDC per client and SPN at a time

	mu        sync.Mutex
	cache     *cacheFile // the credential cache it uses; nil for a login
	cl        *client.Client
	principal string
}

func (a *negotiateAuthorizer) setClient(cl *client.Client, principal string) {
	a.mu.Lock()
	a.cl, a.principal = cl, principal
	a.mu.Unlock()
}

// firstLogin logs cl in with the KDC and makes it a's client.
func (a *negotiateAuthorizer) firstLogin(cl *client.Client, principal, what string) error {
	if err := a.checkKDC(principal); err != nil {
		return err
	}
	if err := cl.Login(); err != nil {
		return a.kdcError(what+" for "+principal, principal, "", err)
	}
	// gokrb5 renews the ticket-granting ticket of a login in a
	// goroutine of its own, for as long as the client is not destroyed;
	// it must not outlive the login.
	runtime.AddCleanup(a, func(cl *client.Client) { cl.Destroy() }, cl)
	a.setClient(cl, principal)
	return nil
}

// checkKDC makes sure the configuration names a KDC for the principal's
// realm, which gokrb5 would report less clearly.
func (a *negotiateAuthorizer) checkKDC(principal string) error {
	realm := principal[strings.LastIndexByte(principal, '@')+1:]
	if a.cfg.LibDefaults.DNSLookupKDC || len(kdcsOf(a.cfg, realm)) > 0 {
		return nil
	}
	return &kerberosError{kind: kerbConfig, what: "Kerberos login for " + principal,
		reason: "the Kerberos configuration names no KDC for the realm " + realm,
		fix:    "add the realm " + realm + " with its kdc to the [realms] section of krb5.conf, or set dns_lookup_kdc = true"}
}

func kdcsOf(cfg *config.Config, realm string) []string {
	for _, r := range cfg.Realms {
		if r.Realm == realm {
			return r.KDC
		}
	}
	return nil
}

// Authorize is not called for a connection-bound scheme.
func (a *negotiateAuthorizer) Authorize(AuthRequest) (string, error) {
	return "", errors.New("Negotiate authenticates connections, not requests: it has no value to send with a request")
}

// Handshake gets a service ticket for the proxy and makes the token of a
// new connection.
func (a *negotiateAuthorizer) Handshake(ctx context.Context, r AuthRequest) (Handshake, error) {
	spn, err := a.spn(r.Proxy)
	if err != nil {
		return nil, err
	}
	cl, principal := a.client()
	// The KDC is asked in a goroutine that ctx abandons, since gokrb5
	// takes no context; it ends within gokrb5's timeouts.
	ch := a.tickets.DoChan(fmt.Sprintf("%p %s", cl, spn), func() (any, error) {
		_, _, err := cl.GetServiceTicket(spn)
		return nil, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, a.kdcError("Kerberos service ticket for "+spn+" ("+principal+")", principal, spn, res.Err)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("Kerberos service ticket for %s: %w", spn, context.Cause(ctx))
	}
	// The service ticket is now in cl's cache: InitSecContext makes a new
	// authenticator with it, as each connection needs one.
	tok, err := spnego.SPNEGOClient(cl, spn).InitSecContext()
	if err != nil {
		return nil, a.kdcError("Kerberos service ticket for "+spn+" ("+principal+")", principal, spn, err)
	}
	b, err := tok.Marshal()
	if err != nil {
		return nil, fmt.Errorf("Negotiate token for %s: %v", spn, err)
	}
	return &negotiateHandshake{value: "Negotiate " + base64.StdEncoding.EncodeToString(b), spn: spn}, nil
}

// spn returns the service principal of the proxy.
func (a *negotiateAuthorizer) spn(proxy *url.URL) (string, error) {
	if a.k.SPN != "" {
		return a.k.SPN, nil
	}
	if proxy == nil || proxy.Hostname() == "" {
		return "", &kerberosError{kind: kerbConfig, what: "Negotiate", reason: "the proxy has no host name to make its service principal from",
			fix: "set Kerberos.SPN to the proxy's service principal"}
	}
	return "HTTP/" + strings.ToLower(proxy.Hostname()), nil
}

// client returns the client to use, after reading the credential cache
// again if it was written since.
func (a *negotiateAuthorizer) client() (*client.Client, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.cache; c != nil {
		fi, err := os.Stat(c.path)
		if err == nil && (!fi.ModTime().Equal(c.mod) || fi.Size() != c.size) {
			if n, _, _ := a.k.readCache(c.path, a.cfg); n != nil {
				a.cache, a.cl, a.principal = n, n.cl, n.principal
			}
		}
	}
	return a.cl, a.principal
}

// negotiateHandshake is the single leg of a Kerberos handshake.
type negotiateHandshake struct {
	value string
	spn   string
	sent  bool
}

func (h *negotiateHandshake) Next(c *Challenge) (string, bool, error) {
	switch {
	case c == nil && !h.sent:
		h.sent = true
		return h.value, true, nil
	case c == nil:
		return "", false, errors.New("Negotiate: the handshake's only leg was sent already")
	case c.Token68 == "":
		return "", false, &kerberosError{kind: kerbRefused, what: "Negotiate", spn: h.spn,
			reason: "the proxy refused the Kerberos ticket for " + h.spn + " (it answered with a Negotiate challenge without a token)"}
	}
	return "", false, &kerberosError{kind: kerbContinuation, what: "Negotiate", spn: h.spn,
		reason: "the proxy answered the Kerberos token with a token of its own, asking for a continuation, which is not supported: Kerberos through SPNEGO completes in one leg"}
}

// kerberosKind tells what a kerberosError is about.
type kerberosKind int

const (
	kerbOther          kerberosKind = iota
	kerbConfig                      // a file or a setting is wrong
	kerbNoTicket                    // no way to log in
	kerbExpired                     // the credential cache's ticket expired
	kerbUnreachable                 // no KDC answered
	kerbSkew                        // the clocks differ too much
	kerbPassword                    // the KDC refused the password
	kerbKeytab                      // the KDC refused the keytab's key, or it has none
	kerbUnknownClient               // the KDC does not know the client principal
	kerbUnknownService              // the KDC does not know the service principal
	kerbRevoked                     // the account is disabled or locked
	kerbKeyExpired                  // the password has expired
	kerbRefused                     // the proxy refused the token
	kerbContinuation                // the proxy asked for a second leg
)

// kerberosError is the failure of a Kerberos login or of a Negotiate
// handshake. Its text never holds a password or a token.
type kerberosError struct {
	kind   kerberosKind
	what   string // what failed: "password login for alice@REALM"
	reason string // why, in words
	fix    string // the hint of a kerbConfig error
	spn    string // the service principal, if one was asked for
	kdc    string // the KDC of the realm, for kerbUnreachable
	err    error  // gokrb5's error
}

func (e *kerberosError) Error() string {
	s := e.what
	if e.reason != "" {
		s += ": " + e.reason
	}
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *kerberosError) Unwrap() error { return e.err }

// hint returns one sentence that says what to do about e.
func (e *kerberosError) hint() string {
	switch e.kind {
	case kerbConfig:
		return e.fix
	case kerbNoTicket:
		return "no Kerberos ticket: run kinit or set Kerberos.Keytab"
	case kerbExpired:
		return "the Kerberos ticket has expired: run kinit again, or set Kerberos.Keytab"
	case kerbUnreachable:
		return "the KDC at " + e.kdc + " cannot be reached: check the kdc entries of krb5.conf and the network path to them"
	case kerbSkew:
		return "the clocks of this machine and the KDC differ by more than 5 minutes: synchronise this machine's clock"
	case kerbPassword:
		return "the password was refused by the KDC: check the password of the principal"
	case kerbKeytab:
		return "the keytab's key was refused by the KDC or is not in it: make the keytab again (ktutil, or kadmin ktadd -norandkey) for the principal"
	case kerbUnknownClient:
		return "the KDC does not know the client principal: check Kerberos.Principal or the username and its realm"
	case kerbUnknownService:
		return "the KDC does not know the service principal " + e.spn + ": set Kerberos.SPN or ask for the proxy's principal to be registered"
	case kerbRevoked:
		return "the KDC refuses the principal: its account is disabled, locked or expired"
	case kerbKeyExpired:
		return "the password of the principal has expired: change it (kpasswd)"
	case kerbRefused:
		return "the proxy refused the Kerberos ticket for " + e.spn + ": its keytab may not hold that principal's current key, or the ticket comes from another realm's KDC"
	case kerbContinuation:
		return "the proxy wants a second Negotiate leg: it may be negotiating NTLM inside SPNEGO; offer it Kerberos or use the NTLM scheme"
	}
	return "see the KDC's log for the request"
}

// kdcCodes are the KDC's error codes that kerberosError tells apart.
var kdcCodes = []struct {
	code int32
	kind kerberosKind
}{
	{errorcode.KRB_AP_ERR_SKEW, kerbSkew},
	{errorcode.KDC_ERR_PREAUTH_FAILED, kerbPassword},
	{errorcode.KRB_AP_ERR_BAD_INTEGRITY, kerbPassword},
	{errorcode.KDC_ERR_C_PRINCIPAL_UNKNOWN, kerbUnknownClient},
	{errorcode.KDC_ERR_S_PRINCIPAL_UNKNOWN, kerbUnknownService},
	{errorcode.KDC_ERR_CLIENT_REVOKED, kerbRevoked},
	{errorcode.KDC_ERR_KEY_EXPIRED, kerbKeyExpired},
	{errorcode.KRB_AP_ERR_TKT_EXPIRED, kerbExpired},
}

// kdcError classifies an error of gokrb5's. gokrb5 flattens the KDC's
// error into text (krberror.Krberror keeps only strings), so the KDC's
// error code is found by the name gokrb5 itself gives it.
func (a *negotiateAuthorizer) kdcError(what, principal, spn string, err error) error {
	e := &kerberosError{kind: kerbOther, what: what, spn: spn, err: err}
	text := err.Error()
	if a.password != "" && strings.Contains(text, a.password) {
		text = strings.ReplaceAll(text, a.password, "xxxxx")
		e.err = errors.New(text)
	}
	var kerr krberror.Krberror
	realm := principal[strings.LastIndexByte(principal, '@')+1:]
	kdcs := kdcsOf(a.cfg, realm)
	e.kdc = strings.Join(kdcs, ", ") + " (realm " + realm + ")"
	if len(kdcs) == 0 {
		e.kdc = "of the realm " + realm
	}
	for _, c := range kdcCodes {
		if strings.Contains(text, errorcode.Lookup(c.code)) {
			e.kind = c.kind
			break
		}
	}
	switch {
	case e.kind != kerbOther:
	case errors.As(err, &kerr) && kerr.RootCause == krberror.NetworkingError:
		e.kind = kerbUnreachable
	case strings.Contains(text, "matching key not found in keytab"):
		e.kind = kerbKeytab
		e.reason = a.how + " holds no key for " + principal
	case strings.Contains(text, "client password/keytab incorrect"):
		// A KDC that does not require pre-authentication: the client
		// could not decrypt its answer.
		e.kind = kerbPassword
	case strings.Contains(text, "no user credentials available and no valid existing session"):
		e.kind = kerbExpired
	}
	if e.kind == kerbPassword && a.keytab {
		e.kind = kerbKeytab
	}
	if e.reason != "" {
		return e
	}
	e.reason = map[kerberosKind]string{
		kerbSkew:           "the clocks of this machine and the KDC differ too much",
		kerbPassword:       "the KDC refused the password",
		kerbKeytab:         "the KDC refused the key of " + a.how,
		kerbUnknownClient:  "the KDC does not know the principal",
		kerbUnknownService: "the KDC does not know the service principal " + spn,
		kerbRevoked:        "the KDC refuses the principal: its account is disabled or locked",
		kerbKeyExpired:     "the password has expired",
		kerbExpired:        "the ticket-granting ticket of " + a.how + " has expired",
		kerbUnreachable:    "the KDC " + e.kdc + " cannot be reached",
	}[e.kind]
	return e
}
