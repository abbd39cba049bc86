package pac

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// corporatePAC is a PAC script in the style of a large company's: plain
// names and internal domains go direct, some URL patterns to special
// proxies, internal networks direct, the rest to a pair of proxies.
var corporatePAC = func() string {
	var b strings.Builder
	b.WriteString(`// Corporate proxy auto-config.
var PROXIES = "PROXY proxy1.corp.example:8080; PROXY proxy2.corp.example:8080; DIRECT";
var DL = "PROXY dl-proxy.corp.example:8080";

function isInternalDomain(host) {
`)
	for i := 0; i < 60; i++ {
		fmt.Fprintf(&b, "    if (dnsDomainIs(host, \".unit%d.corp.example\")) return true;\n", i)
	}
	b.WriteString(`    return dnsDomainIs(host, ".corp.example") || localHostOrDomainIs(host, "portal.corp.example");
}

function isSpecialURL(url) {
`)
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&b, "    if (shExpMatch(url, \"http://*.vendor%d.example/*\")) return true;\n", i)
	}
	b.WriteString(`    // Software distribution goes through the download proxy.
    if (shExpMatch(url, "http://*/download/*")) return true;
    if (shExpMatch(url, "http://*/updates/*")) return true;
    if (shExpMatch(url, "http://*/patches/*.msi")) return true;
    if (shExpMatch(url, "http://*/pub/*.iso")) return true;
    if (shExpMatch(url, "*.cab")) return true;
    if (shExpMatch(url, "*.msu")) return true;
    if (shExpMatch(url, "*.dmg")) return true;
    if (shExpMatch(url, "*.pkg")) return true;
    if (shExpMatch(url, "*.rpm")) return true;
    if (shExpMatch(url, "*.deb")) return true;
    return shExpMatch(url, "*.exe");
}

function isInternalNet(ip) {
`)
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "    if (isInNet(ip, \"172.%d.0.0\", \"255.255.0.0\")) return true;\n", 16+i%16)
	}
	b.WriteString(`    return isInNet(ip, "10.0.0.0", "255.0.0.0") || isInNet(ip, "192.168.0.0", "255.255.0.0");
}

// FindProxyForURL is called by the browser for every request.
//   1. local names and internal domains: direct
//   2. software downloads: the download proxy
//   3. online banking over TLS: direct (the proxy must not see it)
//   4. internal networks: direct
//   5. weekend nights: the night proxy (the main pair is patched then)
//   6. everything else: the main pair, then direct
function FindProxyForURL(url, host) {
    host = host.toLowerCase();
    if (isPlainHostName(host) || host == "127.0.0.1" || host == "localhost") return "DIRECT";
    if (isInternalDomain(host)) return "DIRECT";
    if (isSpecialURL(url)) return DL;
    if (url.substring(0, 6) == "https:" && dnsDomainIs(host, ".bank.example")) return "DIRECT";
    var ip = dnsResolve(host);
    if (ip && isInternalNet(ip)) return "DIRECT";
    if (weekdayRange("SAT", "SUN") && timeRange(1, 5)) return "PROXY night.corp.example:8080";
    return PROXIES;
}
`)
	return b.String()
}()

var corporateCases = []struct{ url, host, want string }{
	{"http://intranet/", "intranet", "DIRECT"},
	{"https://wiki.unit42.corp.example/", "wiki.unit42.corp.example", "DIRECT"},
	{"https://portal.corp.example/", "portal.corp.example", "DIRECT"},
	{"http://www.example.com/download/tool.exe", "www.example.com", "PROXY dl-proxy.corp.example:8080"},
	{"http://cdn.vendor49.example/x", "cdn.vendor49.example", "PROXY dl-proxy.corp.example:8080"},
	{"https://intranet.corp/", "intranet.corp", "DIRECT"},
	{"https://www.example.com/", "www.example.com", "PROXY proxy1.corp.example:8080; PROXY proxy2.corp.example:8080; DIRECT"},
	{"https://unknown.example/", "unknown.example", "PROXY proxy1.corp.example:8080; PROXY proxy2.corp.example:8080; DIRECT"},
}

func TestCorporatePAC(t *testing.T) {
	if n := strings.Count(corporatePAC, "\n"); n < 180 {
		t.Fatalf("the corporate PAC has %d lines", n)
	}
	s := mustCompile(t, corporatePAC, Options{Resolver: testResolver()})
	for _, c := range corporateCases {
		if got, err := s.FindProxy(context.Background(), c.url, c.host); got != c.want || err != nil {
			t.Errorf("FindProxy(%s) = %q, %v; want %q", c.url, got, err, c.want)
		}
	}
}

// benchCase is the slowest ordinary path: every rule is tried and the host
// resolved (from the DNS cache after the first call).
var benchCase = corporateCases[6]

func BenchmarkFindProxy(b *testing.B) {
	s := mustCompile(b, corporatePAC, Options{Resolver: testResolver()})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.FindProxy(ctx, benchCase.url, benchCase.host); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindProxyParallel8(b *testing.B) {
	s := mustCompile(b, corporatePAC, Options{Resolver: testResolver()})
	ctx := context.Background()
	b.SetParallelism((8 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)) // 8 goroutines
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.FindProxy(ctx, benchCase.url, benchCase.host); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(corporatePAC, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFindProxyTrivial(b *testing.B) {
	s := mustCompile(b, `function FindProxyForURL(url, host) { return "DIRECT"; }`, Options{})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.FindProxy(ctx, "https://a/", "a"); err != nil {
			b.Fatal(err)
		}
	}
}

// A large generated PAC (a list of 100000 domains, about 2 MiB) compiles in
// reasonable time.
func TestLargeScriptCompiles(t *testing.T) {
	var b strings.Builder
	b.WriteString("var domains = {\n")
	for i := 0; i < 100000; i++ {
		fmt.Fprintf(&b, "  \"d%d.example.com\": 1,\n", i)
	}
	b.WriteString(`};
function FindProxyForURL(url, host) {
	var parts = host.split(".");
	for (var i = 0; i < parts.length; i++) {
		if (domains.hasOwnProperty(parts.slice(i).join("."))) return "PROXY p:1";
	}
	return "DIRECT";
}`)
	start := time.Now()
	s := mustCompile(t, b.String(), Options{})
	t.Logf("compiled %d KiB in %v", b.Len()>>10, time.Since(start))
	if got, err := s.FindProxy(context.Background(), "https://www.d99999.example.com/", "www.d99999.example.com"); got != "PROXY p:1" || err != nil {
		t.Errorf("FindProxy = %q, %v", got, err)
	}
}
