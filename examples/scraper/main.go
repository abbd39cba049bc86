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
	"strconv"
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

// pages are the pages of every shop; NEXT stands for the next shop's number.
var pages = map[string]string{
	"/":  `<h1>Home</h1> <a href="/a">A</a> <a href="/b">B</a>`,
	"/a": `<h1>A</h1> <a href="/b">B</a> <a href="/c#reviews">C</a>`,
	"/b": `<h1>B</h1> <a href="/c">C</a> <a href="/">Home</a>`,
	"/c": `<h1>C</h1> <a href="/">Home</a> <a href="http://shopNEXT.test/a">next shop</a>
	       <a href="https://elsewhere.example/">elsewhere</a>`,
}

// shop serves the pages of shop n.
func shop(n int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, strings.ReplaceAll(body, "NEXT", strconv.Itoa(n%3+1)))
	})
}

func main() { os.Exit(run()) }

func run() int {
	// Three origins on loopback, which the proxies know as shop1.test, ...;
	// their home pages are where the crawl starts.
	hosts := map[string]string{} // "shop1.test:80" -> "127.0.0.1:PORT"
	var queue []string
	visited := map[string]bool{}
	for n := 1; n <= 3; n++ {
		origin := httptest.NewServer(shop(n))
		defer origin.Close()
		hosts[fmt.Sprintf("shop%d.test:80", n)] = origin.Listener.Addr().String()
		home := fmt.Sprintf("http://shop%d.test/", n)
		queue, visited[home] = append(queue, home), true
	}
	// The proxies resolve those names themselves and dial nothing else.
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		real, ok := hosts[addr]
		if !ok {
			return nil, fmt.Errorf("no such host %s", addr)
		}
		return new(net.Dialer).DialContext(ctx, network, real)
	}

	// Three proxies that want the credentials scraper:s3cret.
	var proxies []*proxyauthtest.Proxy
	var proxyURLs []string
	for range 3 {
		p := proxyauthtest.NewUnstartedProxy("scraper", "s3cret")
		p.DialContext = dial
		p.Start()
		defer p.Close() // closing twice is fine
		proxies = append(proxies, p)
		proxyURLs = append(proxyURLs, "http://scraper:s3cret@"+p.Addr())
	}

	// One Transport over the three, taking them in turn. When one fails,
	// the pool ejects it and sends the GET again through the next one.
	tr, err := proxyauth.New(proxyauth.Config{
		Proxies: proxyURLs,
		Pool:    proxyauth.PoolConfig{Strategy: proxyauth.RoundRobin},
	})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer tr.Close()
	client := &http.Client{Transport: tr}

	// Breadth-first: this goroutine owns the queue and the visited set,
	// the workers only fetch.
	jobs, results := make(chan string), make(chan page)
	for range workers {
		go func() {
			for u := range jobs {
				results <- fetch(client, u)
			}
		}()
	}
	defer close(jobs)
	started, done, errs := 0, 0, 0
	for done < started || (len(queue) > 0 && started < maxFetches) {
		var send chan string // stays nil, so never ready, when nothing may start
		next := ""
		if len(queue) > 0 && started < maxFetches {
			send, next = jobs, queue[0]
		}
		select {
		case send <- next:
			queue, started = queue[1:], started+1
		case p := <-results:
			done++
			if p.err != nil {
				fmt.Printf("GET %s -> error: %v\n", p.url, p.err)
				errs++
				continue
			}
			fmt.Printf("GET %s -> %d\n", p.url, p.status)
			for _, l := range p.links {
				if !visited[l] {
					visited[l] = true
					queue = append(queue, l)
				}
			}
			if done == closeAfter {
				fmt.Println("-- closing proxy 2 --")
				proxies[1].Close() // breaks its connections, idle or in use
			}
		}
	}

	// What each proxy of the pool went through.
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tSTATE\tREQUESTS\tOUTCOMES\tEJECTIONS\tLAST ERROR")
	for i, s := range tr.Pool().Stats() {
		var outcomes []string
		for kind, n := range s.Outcomes {
			outcomes = append(outcomes, fmt.Sprintf("%s=%d", kind, n))
		}
		slices.Sort(outcomes)
		lastErr := strings.TrimPrefix(s.LastError, "proxyauth: ")
		if len(lastErr) > 100 {
			lastErr = lastErr[:97] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%d\t%s\n", i+1, s.State, s.Requests,
			strings.Join(outcomes, " "), s.Ejections, lastErr)
	}
	tw.Flush()
	fmt.Printf("fetched %d pages, %d errors\n", done-errs, errs)
	if errs > 0 {
		return 1
	}
	return 0
}

// page is the outcome of one fetch.
type page struct {
	url    string
	status int
	links  []string // absolute, without fragment, to the shops only
	err    error
}

// hrefRE finds the links of a page: good enough for these pages, not for the web.
var hrefRE = regexp.MustCompile(`href="([^"]+)"`)

func fetch(client *http.Client, u string) page {
	resp, err := client.Get(u)
	if err != nil {
		return page{url: u, err: err}
	}
	defer resp.Body.Close()
	p := page{url: u, status: resp.StatusCode}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && p.status != http.StatusOK {
		err = fmt.Errorf("status %d", p.status)
	}
	if p.err = err; err != nil {
		return p
	}
	for _, m := range hrefRE.FindAllStringSubmatch(string(body), -1) {
		ref, err := resp.Request.URL.Parse(m[1])
		if err != nil || ref.Scheme != "http" || !strings.HasSuffix(ref.Hostname(), ".test") {
			continue // off-site or malformed: not ours to crawl
		}
		ref.Fragment = ""
		p.links = append(p.links, ref.String())
	}
	return p
}
