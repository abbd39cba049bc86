package proxyauth_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

// printed returns every text that a value can turn into: each fmt verb,
// its JSON (or the error of json.Marshal), and a record of slog's text and
// JSON handlers that carries it.
func printed(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%T", "%08.3f"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	if b, err := json.Marshal(v); err != nil {
		out["json error"] = err.Error()
	} else {
		out["json"] = string(b)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("msg", "v", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("msg", "v", v)
	out["slog text"], out["slog json"] = text.String(), js.String()
	return out
}

// TestSecretsSafeInEveryFormat formats every exported type that can hold a
// password, a Proxy-Authorization value or an error about them, with every
// fmt verb, as JSON and through both slog handlers: none shows the
// password in any encoding, and what helps (the username, the proxy's
// host) stays visible where the type has it.
func TestSecretsSafeInEveryFormat(t *testing.T) {
	const (
		name = "alice"
		pass = "S3cr3t-format"
	)
	b64 := base64.StdEncoding.EncodeToString([]byte(name + ":" + pass))
	secrets := []string{pass, b64, hex.EncodeToString([]byte(pass)), strings.ToUpper(hex.EncodeToString([]byte(pass)))}
	raw := "http://" + name + ":" + pass + "@proxy.test:3128"
	withPass := &url.URL{Scheme: "http", Host: "proxy.test:3128", User: url.UserPassword(name, pass)}
	plain := &url.URL{Scheme: "http", Host: "proxy.test:3128"}
	header := http.Header{"Proxy-Authorization": {"Basic " + b64}, "Via": {"1.1 " + b64}}
	cfg := proxyauth.Config{
		Proxies: []string{raw, "http://" + name + ":" + pass + "@[::1", "http://" + name + ":" + pass},
		Credentials: func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
			return proxyauth.Credentials{Username: name, Password: pass}, nil
		},
		Pool: proxyauth.PoolConfig{Proxies: []proxyauth.PoolProxy{{URL: raw, Weight: 2}},
			Probe: "https://" + name + ":" + pass + "@canary.test/?token=" + pass},
		Base:   &http.Transport{ProxyConnectHeader: header},
		Logger: slog.New(slog.DiscardHandler),
	}
	pae := &proxyauth.ProxyAuthError{Proxy: withPass, StatusCode: 407, Rejected: true, Header: header,
		Challenges: []proxyauth.Challenge{{Scheme: "Basic", Params: map[string]string{"realm": "r"}}}}
	pe := &proxyauth.ProxyError{Proxy: withPass, Op: "connect", StatusCode: 502, Header: header, Err: errors.New("refused")}
	testProxy := proxyauthtest.NewUnstartedProxy(name, pass)
	t.Cleanup(testProxy.Close)
	testSOCKS := proxyauthtest.NewUnstartedSOCKS5Proxy(name, pass)
	t.Cleanup(testSOCKS.Close)
	type embeds struct {
		App string
		proxyauth.Config
	}
	type holds struct {
		App    string
		Config proxyauth.Config
		Creds  *proxyauth.Credentials
		Err    error
	}
	creds := proxyauth.Credentials{Username: name, Password: pass}
	for _, c := range []struct {
		name  string
		v     any
		keep  []string // shown by %v and in the JSON
		json  bool     // json.Marshal must succeed
		stays string   // shown by %v only
	}{
		{"Config", cfg, []string{name, "proxy.test:3128"}, true, ""},
		{"*Config", &cfg, []string{name, "proxy.test:3128"}, true, ""},
		{"struct embedding Config", embeds{App: "app", Config: cfg}, []string{name, "proxy.test:3128"}, true, ""},
		{"struct holding Config", holds{App: "app", Config: cfg, Creds: &creds, Err: pae}, []string{name, "proxy.test:3128"}, false, "app"},
		{"Credentials", creds, []string{name}, true, ""},
		{"*Credentials", &creds, []string{name}, true, ""},
		{"CredentialsRequest", proxyauth.CredentialsRequest{Proxy: plain, Rejected: true}, nil, true, ""},
		{"PoolConfig", cfg.Pool, []string{name, "proxy.test:3128"}, true, ""},
		{"PoolProxy", cfg.Pool.Proxies[0], []string{name, "proxy.test:3128"}, true, ""},
		{"ProxyAuthError", pae, []string{"proxy.test:3128"}, true, ""},
		{"ProxyError", pe, []string{"proxy.test:3128"}, true, ""},
		{"AuthError", &proxyauth.AuthError{URL: withPass, StatusCode: 401}, []string{"proxy.test:3128"}, true, ""},
		{"StatusError", &proxyauth.StatusError{URL: withPass, StatusCode: 404}, []string{"proxy.test:3128"}, true, ""},
		{"PoolError", &proxyauth.PoolError{Errors: []error{pae, pe}}, []string{"proxy.test:3128"}, true, ""},
		{"ConfigError", &proxyauth.ConfigError{Field: "Proxies[0]", Value: "http://xxxxx@proxy.test:3128", Reason: "bad"}, []string{"proxy.test:3128"}, true, ""},
		{"AttemptInfo", proxyauth.AttemptInfo{Proxy: plain, Method: "GET", Target: "http://origin.test/", Phase: "plain", Err: pe}, []string{"proxy.test:3128"}, true, ""},
		{"ChallengeInfo", proxyauth.ChallengeInfo{Proxy: plain, StatusCode: 407, Challenges: pae.Challenges}, nil, true, ""},
		{"RefreshInfo", proxyauth.RefreshInfo{Proxy: plain, Rejected: true, Err: pae}, nil, true, ""},
		{"FailoverInfo", proxyauth.FailoverInfo{From: plain, To: plain, Target: "http://origin.test/", Err: pae}, nil, true, ""},
		{"ProxyStateInfo", proxyauth.ProxyStateInfo{Proxy: plain, State: proxyauth.StateEjected, Err: pe}, nil, true, ""},
		{"ProxyStats", proxyauth.ProxyStats{Proxy: plain.String(), LastError: pe.Error()}, []string{"proxy.test:3128"}, true, ""},
		{"Diagnosis", proxyauth.Diagnose(nil, &proxyauth.PoolError{Errors: []error{pae, pe}}), nil, true, ""},
		{"proxyauthtest.Credentials", proxyauthtest.Credentials{Username: name, Password: pass}, []string{name}, true, ""},
		{"proxyauthtest.Proxy", testProxy, nil, true, ""},
		{"proxyauthtest.SOCKS5Proxy", testSOCKS, nil, true, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := printed(t, c.v)
			for how, s := range out {
				for _, secret := range secrets {
					assert.NotContains(t, s, secret, "%s of %s", how, c.name)
				}
			}
			if c.json {
				assert.NotContains(t, out, "json error", "json.Marshal(%s)", c.name)
			}
			for _, k := range c.keep {
				assert.Contains(t, out["%v"], k, "%%v of %s", c.name)
				if c.json {
					assert.Contains(t, out["json"], k, "JSON of %s", c.name)
				}
			}
			if c.stays != "" {
				assert.Contains(t, out["%v"], c.stays, "%%v of %s", c.name)
			}
		})
	}
}

// reflectedUser and reflectedPass are the credentials that a reflecting
// proxy gets; the password needs percent-encoding in a URL.
const (
	reflectedUser = "alice"
	reflectedPass = "s3cr%t/p@ss:w\u00f6rd-R3fl"
)

// reflectedForms are the encodings of the credentials that must not show.
func reflectedForms() map[string]string {
	up := reflectedUser + ":" + reflectedPass
	token := base64.StdEncoding.EncodeToString([]byte(up))
	return map[string]string{
		"header":          "Basic " + token,
		"token":           token,
		"user:pass":       up,
		"password":        reflectedPass,
		"percent-encoded": url.QueryEscape(reflectedPass),
		"userinfo":        url.UserPassword(reflectedUser, reflectedPass).String(),
	}
}

// reflectingProxy answers every request or CONNECT by echoing a form of
// the Proxy-Authorization value it received into answer.
func reflectingProxy(t *testing.T, form string, answer func(echo string) string) *hostileProxy {
	return newHostileProxy(t, eachRequest(func(c net.Conn, br *bufio.Reader, req *http.Request) bool {
		v := req.Header.Get("Proxy-Authorization")
		echo := v
		token := strings.TrimPrefix(v, "Basic ")
		dec, _ := base64.StdEncoding.DecodeString(token)
		_, pass, _ := strings.Cut(string(dec), ":")
		switch form {
		case "token":
			echo = token
		case "user:pass":
			echo = string(dec)
		case "password":
			echo = pass
		case "percent-encoded":
			echo = url.QueryEscape(pass)
		case "userinfo":
			echo = url.UserPassword(reflectedUser, pass).String()
		}
		io.WriteString(c, answer(echo))
		holdOpen(br)
		return false
	}))
}

// observed collects what a Transport tells: both slog handlers' output,
// and each hook payload in several formats.
type observed struct {
	mu   sync.Mutex
	logs bytes.Buffer
	seen []string
}

func (o *observed) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.logs.Write(p)
}

func (o *observed) add(v any, err error) {
	b, _ := json.Marshal(v)
	s := fmt.Sprintf("%v\n%+v\n%#v\n%s\n", v, v, v, b)
	if err != nil {
		s += err.Error()
	}
	o.mu.Lock()
	o.seen = append(o.seen, s)
	o.mu.Unlock()
}

func (o *observed) config(cfg proxyauth.Config) proxyauth.Config {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug}
	cfg.Logger = slog.New(slog.NewMultiHandler(slog.NewTextHandler(o, opts), slog.NewJSONHandler(o, opts)))
	cfg.Hooks = proxyauth.Hooks{
		AttemptStart:         func(i proxyauth.AttemptInfo) { o.add(i, i.Err) },
		AttemptEnd:           func(i proxyauth.AttemptInfo) { o.add(i, i.Err) },
		Challenge:            func(i proxyauth.ChallengeInfo) { o.add(i, nil) },
		CredentialsRefreshed: func(i proxyauth.RefreshInfo) { o.add(i, i.Err) },
		Failover:             func(i proxyauth.FailoverInfo) { o.add(i, i.Err) },
		ProxyStateChanged:    func(i proxyauth.ProxyStateInfo) { o.add(i, i.Err) },
	}
	return cfg
}

func (o *observed) text() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.logs.String() + strings.Join(o.seen, "\n")
}

// reflectedAnswers are the ways a proxy can put what it received into
// text that net/http or this package quotes.
var reflectedAnswers = []struct {
	name   string
	answer func(echo string) string
	quoted string // what the error says, showing that the echo reached it
}{
	{"status code", func(e string) string { return "HTTP/1.1 " + e + " OK\r\n\r\n" }, "malformed HTTP status code"},
	{"header line", func(e string) string { return "HTTP/1.1 200 OK\r\n@" + e + "\r\n\r\n" }, "malformed MIME header"},
	{"realm", func(e string) string {
		return status407 + "Proxy-Authenticate: Basic realm=\"" + e + "\"\r\nContent-Length: 0\r\n\r\n"
	}, "realm="},
}

// TestSecretsReflectedByTheProxy: a proxy that echoes the credentials it
// received (the whole Proxy-Authorization value, its token, the decoded
// user:pass, the password, its percent-encoding) into a malformed status
// line, a malformed header line or a realm gets them masked everywhere: in
// the error and every format of it, in Diagnose, in slog records of both
// handlers, in hook payloads and in Pool.Stats, for forwarded requests,
// CONNECT tunnels and probes.
func TestSecretsReflectedByTheProxy(t *testing.T) {
	creds := func(context.Context, proxyauth.CredentialsRequest) (proxyauth.Credentials, error) {
		return proxyauth.Credentials{Username: reflectedUser, Password: reflectedPass}, nil
	}
	check := func(t *testing.T, quoted string, err error, tr *proxyauth.Transport, o *observed) {
		t.Helper()
		require.Error(t, err)
		assert.Contains(t, err.Error(), quoted, "the answer reached the error")
		all := map[string]string{"Diagnose": proxyauth.Diagnose(nil, err).String(), "observed": o.text()}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d"} {
			all[verb] = fmt.Sprintf(verb, err)
		}
		// Down to the cause of the typed error: below it, the errors of
		// the standard library are kept as they are, for errors.As.
		for e := err; e != nil; e = errors.Unwrap(e) {
			all[fmt.Sprintf("Error of %T", e)] = e.Error()
			var cause error
			switch te := e.(type) {
			case *proxyauth.ProxyError:
				cause = te.Err
			case *proxyauth.ProxyAuthError:
				cause = te.Err
			default:
				continue
			}
			if cause != nil {
				all["Err of the typed error"] = cause.Error()
			}
			break
		}
		for i, s := range tr.Pool().Stats() {
			all[fmt.Sprintf("Stats()[%d].LastError", i)] = s.LastError
		}
		for form, secret := range reflectedForms() {
			for where, s := range all {
				assert.NotContains(t, s, secret, "%s shows the %s", where, form)
			}
		}
	}
	for _, a := range reflectedAnswers {
		for form := range reflectedForms() {
			for _, tt := range hostileTargets {
				t.Run(a.name+"/"+form+"/"+tt.name, func(t *testing.T) {
					p := reflectingProxy(t, form, a.answer)
					o := &observed{}
					cfg := o.config(hostileConfig(strings.Replace(p.URL, hostileUser+":"+hostilePass+"@", "", 1)))
					cfg.Credentials = creds
					cl := hostileClient(t, cfg)
					r := hostileGet(cl, tt.url)
					check(t, a.quoted, r.err, cl.Transport.(*proxyauth.Transport), o)
					if a.name != "status code" || form != "header" { // a space ends the status code
						assert.Contains(t, r.err.Error(), "xxxxx", "the error says what was masked")
					}
				})
			}
			t.Run(a.name+"/"+form+"/probe", func(t *testing.T) {
				p1, p2 := reflectingProxy(t, form, a.answer), reflectingProxy(t, form, a.answer)
				o := &observed{}
				cfg := o.config(hostileConfig(strings.Replace(p1.URL, hostileUser+":"+hostilePass+"@", "", 1)))
				cfg.Proxies = append(cfg.Proxies, strings.Replace(p2.URL, hostileUser+":"+hostilePass+"@", "", 1))
				cfg.Credentials = creds
				cfg.Pool.Probe = "example.com:443"
				cl := hostileClient(t, cfg)
				r := hostileGet(cl, "http://example.com/")
				var pool *proxyauth.PoolError
				require.ErrorAs(t, r.err, &pool)
				check(t, a.quoted, r.err, cl.Transport.(*proxyauth.Transport), o)
				for i, s := range cl.Transport.(*proxyauth.Transport).Pool().Stats() {
					assert.Contains(t, s.LastError, a.quoted, "Stats()[%d].LastError is the probe's failure", i)
				}
			})
		}
	}
}

// TestSecretsAmplification: a proxy that sends 9 MB of realm, of status
// line or of header line gets a bounded error text, Diagnosis and
// Stats.LastError, and formatting the error costs little, however often
// it is done.
func TestSecretsAmplification(t *testing.T) {
	huge := strings.Repeat("a", 9<<20)
	for _, c := range []struct{ name, head string }{
		{"realm", status407 + "Proxy-Authenticate: Basic realm=\"" + huge + "\"\r\nContent-Length: 0\r\n\r\n"},
		{"64 challenges", status407 + "Proxy-Authenticate: " +
			strings.Repeat("Basic realm=\""+huge[:140<<10]+"\", ", 63) + "Basic realm=\"x\"\r\nContent-Length: 0\r\n\r\n"},
		{"scheme", status407 + "Proxy-Authenticate: " + huge + "\r\nContent-Length: 0\r\n\r\n"},
		{"status line", "HTTP/1.1 " + huge + " OK\r\n\r\n"},
		{"header line", "HTTP/1.1 200 OK\r\n@" + huge + "\r\n\r\n"},
		{"squid error", "HTTP/1.1 503 Service Unavailable\r\nX-Squid-Error: " + huge + "\r\nRetry-After: " + huge[:1<<20] +
			"\r\nVia: 1.1 " + huge[:1<<20] + ", 1.1 b\r\nContent-Length: 0\r\n\r\n"},
	} {
		for _, tt := range hostileTargets {
			t.Run(c.name+"/"+tt.name, func(t *testing.T) {
				p := newHostileProxy(t, answer(c.head, nil))
				cfg := hostileConfig(p.URL)
				cfg.Base.MaxResponseHeaderBytes = 16 << 20
				// Time enough to read 9 MB of header, under the race
				// detector too.
				cfg.ProxyTimeout, cfg.Base.ResponseHeaderTimeout = hostileGuard, hostileGuard
				cl := hostileClient(t, cfg)
				r := hostileGet(cl, tt.url)
				if c.name == "squid error" && !tt.tunnel {
					// A forwarded request's 503 is a response: Diagnose
					// reads it.
					require.NoError(t, r.err)
					assert.Less(t, len(proxyauth.Diagnose(r.resp, nil).String()), 16<<10, "len(Diagnose(resp).String())")
					return
				}
				require.Error(t, r.err)
				checkNoSecret(t, r.err)
				assert.LessOrEqual(t, len(r.err.Error()), 4<<10, "len(err.Error())")
				d := proxyauth.Diagnose(nil, r.err)
				assert.LessOrEqual(t, len(d.String()), 16<<10, "len(Diagnose(...).String())")
				for _, s := range cl.Transport.(*proxyauth.Transport).Pool().Stats() {
					assert.LessOrEqual(t, len(s.LastError), 2<<10+len("…(truncated)"), "len(Stats().LastError)")
				}
				for _, v := range []string{"%v", "%+v", "%#v", "%d"} {
					assert.LessOrEqual(t, len(fmt.Sprintf(v, r.err)), 4<<10, "len(fmt.Sprintf(%q, err))", v)
				}
				const calls = 10
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				for range calls {
					_ = r.err.Error()
					_ = proxyauth.Diagnose(nil, r.err).String()
				}
				runtime.ReadMemStats(&after)
				perCall := (after.TotalAlloc - before.TotalAlloc) / calls
				assert.Less(t, perCall, uint64(256<<10), "bytes allocated by one Error and one Diagnose")
				t.Logf("len(Error()) = %d, len(Diagnose) = %d, %d bytes allocated per call: %.200s",
					len(r.err.Error()), len(d.String()), perCall, r.err.Error())
			})
		}
	}
}

// TestSecretsReflectedDigest: a proxy that asks for Digest and echoes the
// Digest Proxy-Authorization value it gets into a malformed header line
// gets it masked, response hash included, on both paths.
func TestSecretsReflectedDigest(t *testing.T) {
	for _, tt := range hostileTargets {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			p := newHostileProxy(t, eachRequest(func(c net.Conn, br *bufio.Reader, req *http.Request) bool {
				v := req.Header.Get("Proxy-Authorization")
				if !strings.HasPrefix(v, "Digest ") {
					_, err := io.WriteString(c, status407+"Proxy-Authenticate: Digest realm=\"r\", nonce=\"n0\", qop=\"auth\"\r\nContent-Length: 0\r\n\r\n")
					return err == nil
				}
				mu.Lock()
				sent = append(sent, v)
				mu.Unlock()
				io.WriteString(c, "HTTP/1.1 200 OK\r\n@"+v+"\r\n\r\n")
				holdOpen(br)
				return false
			}))
			o := &observed{}
			cl := hostileClient(t, o.config(hostileConfig(p.URL)))
			r := hostileGet(cl, tt.url)
			require.Error(t, r.err)
			assert.Contains(t, r.err.Error(), "malformed MIME header", "the answer reached the error")
			mu.Lock()
			require.NotEmpty(t, sent, "Digest credentials sent")
			v := sent[0]
			mu.Unlock()
			_, resp, _ := strings.Cut(v, `response="`)
			resp, _, _ = strings.Cut(resp, `"`)
			require.NotEmpty(t, resp, "the response of %q", v)
			all := []string{r.err.Error(), fmt.Sprintf("%+v %#v", r.err, r.err), proxyauth.Diagnose(nil, r.err).String(), o.text()}
			for _, s := range cl.Transport.(*proxyauth.Transport).Pool().Stats() {
				all = append(all, s.LastError)
			}
			for _, s := range all {
				assert.NotContains(t, s, v[len("Digest "):])
				assert.NotContains(t, s, resp)
				assert.NotContains(t, s, hostilePass)
			}
		})
	}
}

// TestSecretsAmplificationOrigin401: an origin's 401 with 64 challenges of
// 140 KB realms gives a bounded AuthError and Diagnosis.
func TestSecretsAmplificationOrigin401(t *testing.T) {
	realm := strings.Repeat("r", 140<<10)
	h := http.Header{}
	for range 64 {
		h.Add("Www-Authenticate", `Basic realm="`+realm+`"`)
	}
	resp := &http.Response{StatusCode: http.StatusUnauthorized, Header: h,
		Request: &http.Request{URL: &url.URL{Scheme: "https", Host: "origin.test"}, Header: http.Header{}}}
	err := proxyauth.CheckResponse(resp)
	var ae *proxyauth.AuthError
	require.ErrorAs(t, err, &ae)
	assert.Len(t, ae.Challenges, 64)
	assert.LessOrEqual(t, len(err.Error()), 2<<10+len("…(truncated)"), "len(Error())")
	assert.LessOrEqual(t, len(proxyauth.Diagnose(resp, nil).String()), 16<<10, "len(Diagnose(resp).String())")
	assert.LessOrEqual(t, len(proxyauth.Diagnose(nil, err).String()), 16<<10, "len(Diagnose(nil, err).String())")
}
