package proxyauth_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

func ExampleWithSession() {
	// A shop that serves its pages to logged-in clients only.
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/login" {
			http.SetCookie(w, &http.Cookie{Name: "login", Value: r.FormValue("user")})
			return
		}
		if _, err := r.Cookie("login"); err != nil && r.URL.Path != "/" {
			http.Error(w, "log in first", http.StatusUnauthorized)
		}
	}))
	defer shop.Close()
	p1, p2 := proxyauthtest.NewProxy("alice", "s3cret"), proxyauthtest.NewProxy("alice", "s3cret")
	defer p1.Close()
	defer p2.Close()
	names := map[string]string{p1.URL: "proxy 1", p2.URL: "proxy 2"}

	// Without sessions, a round-robin pool sends each request to the
	// next proxy, and the shop would see a login come from one address
	// and its pages go to others.
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxyURL(p1, "alice", "s3cret"), proxyURL(p2, "alice", "s3cret")},
		Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()

	// One crawler per account: its own cookies, and a session that keeps
	// its requests on one exit.
	type crawler struct {
		client *http.Client
		ctx    context.Context
	}
	crawlers := map[string]crawler{}
	for _, user := range []string{"ann", "bob"} {
		jar, err := cookiejar.New(nil)
		if err != nil {
			log.Fatal(err)
		}
		crawlers[user] = crawler{&http.Client{Transport: tr, Jar: jar}, proxyauth.WithSession(context.Background(), user)}
	}
	fetch := func(who string, ctx context.Context, cl *http.Client, method, path string) {
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader(url.Values{"user": {who}}.Encode())
		}
		req, err := http.NewRequestWithContext(ctx, method, shop.URL+path, body)
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := cl.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Printf("%s: %s %s through %s: %s\n", who, method, path, names[proxyauth.ProxyOf(resp).String()], resp.Status)
	}
	for _, user := range []string{"ann", "bob"} {
		c := crawlers[user]
		fetch(user, c.ctx, c.client, http.MethodPost, "/login")
	}
	for _, user := range []string{"ann", "bob"} {
		for _, page := range []string{"/items/1", "/items/2"} {
			c := crawlers[user]
			fetch(user, c.ctx, c.client, http.MethodGet, page)
		}
	}
	// Requests without a session still take turns.
	for range 2 {
		fetch("no session", context.Background(), &http.Client{Transport: tr}, http.MethodGet, "/")
	}
	// Output:
	// ann: POST /login through proxy 1: 200 OK
	// bob: POST /login through proxy 2: 200 OK
	// ann: GET /items/1 through proxy 1: 200 OK
	// ann: GET /items/2 through proxy 1: 200 OK
	// bob: GET /items/1 through proxy 2: 200 OK
	// bob: GET /items/2 through proxy 2: 200 OK
	// no session: GET / through proxy 1: 200 OK
	// no session: GET / through proxy 2: 200 OK
}

// gatewayAuth is the Authenticator of a gateway that picks an exit from the
// username: it takes the account's password with any username that starts
// with the account's, and records the usernames it saw.
type gatewayAuth struct {
	account, password string

	mu    sync.Mutex
	users []string
}

func (g *gatewayAuth) Challenges() []string { return []string{`Basic realm="gateway"`} }

func (g *gatewayAuth) Authorized(r *http.Request, _ []proxyauthtest.Credentials) bool {
	// http.Request reads Basic credentials from Authorization only.
	h := &http.Request{Header: http.Header{"Authorization": r.Header.Values("Proxy-Authorization")}}
	user, pass, ok := h.BasicAuth()
	if !ok || pass != g.password || !strings.HasPrefix(user, g.account) {
		return false
	}
	g.mu.Lock()
	g.users = append(g.users, user)
	g.mu.Unlock()
	return true
}

func ExamplePoolConfig_sessionUsername() {
	origin := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer origin.Close()
	auth := &gatewayAuth{account: "customer-alice", password: "s3cret"}
	gw := proxyauthtest.NewUnstartedProxy("", "")
	gw.Auth = auth
	gw.Start()
	defer gw.Close()

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: []string{proxyURL(gw, "customer-alice", "s3cret")},
		// The gateway gives each session username an exit of its own.
		Pool: proxyauth.PoolConfig{SessionUsername: "{user}-sessid-{session}"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	get := func(ctx context.Context) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, origin.URL, nil)
		if err != nil {
			log.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
	}
	cart1 := proxyauth.WithSession(context.Background(), "cart1")
	cart2 := proxyauth.WithSession(context.Background(), "cart2")
	for _, ctx := range []context.Context{cart1, cart2, cart1, context.Background(), cart2, cart1} {
		get(ctx)
	}

	// The usernames the gateway saw, with the number that makes each
	// session's token new (it changes when a session moves) cut off.
	var order []string
	count := map[string]int{}
	for _, u := range auth.users {
		if count[u] == 0 {
			order = append(order, u)
		}
		count[u]++
	}
	for _, u := range order {
		shown := u
		if head, _, ok := strings.Cut(u, "-sessid-"); ok {
			token := strings.TrimPrefix(u, head+"-sessid-")
			id, _, _ := strings.Cut(token, "x")
			shown = head + "-sessid-" + id + "x…"
		}
		fmt.Printf("%s, requests: %d\n", shown, count[u])
	}
	// Output:
	// customer-alice-sessid-cart1x…, requests: 3
	// customer-alice-sessid-cart2x…, requests: 2
	// customer-alice, requests: 1
}

func ExamplePoolConfig_banned() {
	// shop.test blocks the exit of proxy 1; the other proxies reach a
	// shop that serves them, and news.test serves everyone.
	serve := func(status int) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(status)
		}))
	}
	blocked, shop, news := serve(http.StatusForbidden), serve(http.StatusOK), serve(http.StatusOK)
	defer blocked.Close()
	defer shop.Close()
	defer news.Close()
	var proxies []string
	names := map[string]string{}
	for i, shopSeen := range []*httptest.Server{blocked, shop, shop} {
		p := proxyauthtest.NewUnstartedProxy("alice", "s3cret")
		to := map[string]string{"shop.test:80": shopSeen.Listener.Addr().String(), "news.test:80": news.Listener.Addr().String()}
		p.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if a, ok := to[addr]; ok {
				addr = a
			}
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}
		p.Start()
		defer p.Close()
		proxies = append(proxies, proxyURL(p, "alice", "s3cret"))
		names[p.URL] = fmt.Sprintf("proxy %d", i+1)
	}

	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: proxies, // in order: proxy 1 first while it serves
		Pool: proxyauth.PoolConfig{
			Banned: func(resp *http.Response) bool {
				return resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusTooManyRequests
			},
		},
		Hooks: proxyauth.Hooks{Ban: func(b proxyauth.BanInfo) {
			fmt.Printf("  %s banned for %s (%d)\n", names[b.Proxy.String()], b.Host, b.StatusCode)
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}
	for _, target := range []string{"http://shop.test/", "http://shop.test/", "http://news.test/"} {
		resp, err := client.Get(target)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("%s: %s through %s\n", target, resp.Status, names[proxyauth.ProxyOf(resp).String()])
	}
	for _, st := range tr.Pool().Stats() {
		fmt.Printf("%s: requests %d, bans %d %v\n", names[st.Proxy], st.Requests, st.Bans, st.BansByHost)
	}
	// Output:
	//   proxy 1 banned for shop.test (403)
	// http://shop.test/: 200 OK through proxy 2
	// http://shop.test/: 200 OK through proxy 2
	// http://news.test/: 200 OK through proxy 1
	// proxy 1: requests 2, bans 1 map[shop.test:1]
	// proxy 2: requests 2, bans 0 map[]
	// proxy 3: requests 0, bans 0 map[]
}
