// Command scraper crawls three small local shops through a pool of three
// authenticating proxies, shuts one proxy down in the middle of the crawl,
// and prints what each proxy went through. It needs no setup and no network
// beyond loopback:
//
//	go run ./examples/scraper
//
// It exits 0 when every page was fetched, 1 otherwise.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/proxyauth/proxyauth"
	"github.com/proxyauth/proxyauth/proxyauthtest"
)

const (
	workers    = 4  // fetches under way at once
	maxFetches = 40 // the crawl never fetches more pages than this
	closeAfter = 4  // proxy 2 dies once this many fetches have finished
)

// links lists the links of every page of a shop; %d is the next shop's number.
var links = map[string][]string{
	"/":  {"/a", "/b"},
	"/a": {"/b", "/c"},
	"/b": {"/c", "/"},
	"/c": {"/", "http://shop%d.test/a", "https://elsewhere.example/"},
}

// shop returns the handler of shop n: a few HTML pages that link to each other.
func shop(n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hrefs, ok := links[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "<html><body><h1>shop %d: %s</h1>\n", n, r.URL.Path)
		for _, h := range hrefs {
			if strings.Contains(h, "%d") {
				h = fmt.Sprintf(h, n%3+1)
			}
			fmt.Fprintf(w, "<a href=%q>%s</a>\n", h, h)
		}
		fmt.Fprintln(w, "</body></html>")
	})
}

func main() { os.Exit(run()) }

func run() int {
	// Three origins on loopback, known to the proxies as shop1.test, ...
	hosts := map[string]string{} // "shop1.test:80" -> "127.0.0.1:PORT"
	for n := 1; n <= 3; n++ {
		origin := httptest.NewServer(shop(n))
		defer origin.Close()
		hosts[fmt.Sprintf("shop%d.test:80", n)] = origin.Listener.Addr().String()
	}
	// The proxies resolve those names themselves and dial nothing else.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		real, ok := hosts[addr]
		if !ok {
			return nil, fmt.Errorf("no such host %s", addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, real)
	}

	// Three proxies that want Basic credentials scraper:s3cret.
	var proxies []*proxyauthtest.Proxy
	var proxyURLs []string
	for range 3 {
		p := proxyauthtest.NewUnstartedProxy("scraper", "s3cret")
		p.DialContext = dial
		p.Start()
		defer p.Close() // a second Close, after the one below, does nothing
		proxies = append(proxies, p)
		proxyURLs = append(proxyURLs, "http://scraper:s3cret@"+p.Addr())
	}

	// One Transport over the three, taking them in turn. When a proxy
	// fails, the pool ejects it and retries the GET on the next one.
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: proxyURLs,
		Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	})
	if err != nil {
		fmt.Println("config:", err)
		return 1
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}

	// A breadth-first crawl: this goroutine owns the queue and the visited
	// set; the workers only fetch.
	type result struct {
		url    string
		status int
		links  []string
		err    error
	}
	jobs, results := make(chan string), make(chan result)
	for range workers {
		go func() {
			for u := range jobs {
				status, links, err := fetch(client, u)
				results <- result{u, status, links, err}
			}
		}()
	}
	queue := []string{"http://shop1.test/", "http://shop2.test/", "http://shop3.test/"}
	visited := map[string]bool{}
	for _, u := range queue {
		visited[u] = true
	}
	var errs []string
	started, done := 0, 0
	for done < started || (len(queue) > 0 && started < maxFetches) {
		// Offer the next URL to the workers only while the bound allows.
		var send chan string // nil: a send on it never proceeds
		next := ""
		if len(queue) > 0 && started < maxFetches {
			send, next = jobs, queue[0]
		}
		select {
		case send <- next:
			queue, started = queue[1:], started+1
		case r := <-results:
			done++
			if r.err != nil {
				fmt.Printf("GET %s -> error\n", r.url)
				errs = append(errs, r.err.Error())
			} else {
				fmt.Printf("GET %s -> %d\n", r.url, r.status)
				if r.status != http.StatusOK {
					errs = append(errs, fmt.Sprintf("GET %s: status %d", r.url, r.status))
				}
			}
			for _, l := range r.links {
				if !visited[l] {
					visited[l] = true
					queue = append(queue, l)
				}
			}
			if done == closeAfter {
				fmt.Println("-- closing proxy 2 --")
				proxies[1].Close() // its connections break, in flight or idle
			}
		}
	}
	close(jobs)

	// What each proxy of the pool went through.
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "PROXY\tSTATE\tREQUESTS\tOUTCOMES\tEJECTIONS\tLAST ERROR")
	for i, s := range tr.Pool().Stats() {
		var outcomes []string
		for kind, n := range s.Outcomes {
			outcomes = append(outcomes, fmt.Sprintf("%s=%d", kind, n))
		}
		slices.Sort(outcomes)
		fmt.Fprintf(w, "%d\t%s\t%d\t%s\t%d\t%s\n", i+1, s.State, s.Requests,
			strings.Join(outcomes, " "), s.Ejections, trim(s.LastError, 60))
	}
	w.Flush()
	for _, e := range errs {
		fmt.Println("error:", e)
	}
	fmt.Printf("fetched %d pages, %d errors\n", done, len(errs))
	if len(errs) > 0 {
		return 1
	}
	return 0
}

// hrefRE finds the links of a page; good enough for these pages, not for the web.
var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

// fetch gets u and returns its status and the links to crawl next: those to
// the shops, absolute, without fragment.
func fetch(client *http.Client, u string) (int, []string, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, err
	}
	var out []string
	for _, m := range hrefRE.FindAllStringSubmatch(string(body), -1) {
		ref, err := resp.Request.URL.Parse(m[1])
		if err != nil || ref.Scheme != "http" || !strings.HasSuffix(ref.Hostname(), ".test") {
			continue // off-site or malformed: not ours to crawl
		}
		ref.Fragment = ""
		out = append(out, ref.String())
	}
	return resp.StatusCode, out, nil
}

// trim shortens s to at most n bytes for the table.
func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
