package pac

import (
	"context"
	"net"
	"sync"
	"testing"
)

type exprCase struct{ expr, want string }

func runExprs(t *testing.T, o Options, cases []exprCase) {
	t.Helper()
	s := mustCompile(t, evalScript, o)
	for _, c := range cases {
		got, err := s.FindProxy(context.Background(), c.expr, "")
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s = %s, want %s", c.expr, got, c.want)
		}
	}
}

// The string helpers, with the examples of Netscape's specification and
// cases of our own.
func TestStringHelpers(t *testing.T) {
	runExprs(t, Options{Resolver: testResolver()}, []exprCase{
		{`isPlainHostName("www")`, `boolean:true`},
		{`isPlainHostName("www.netscape.com")`, `boolean:false`},
		{`isPlainHostName("::1")`, `boolean:false`},
		{`isPlainHostName("")`, `boolean:true`},

		{`dnsDomainIs("www.netscape.com", ".netscape.com")`, `boolean:true`},
		{`dnsDomainIs("www", ".netscape.com")`, `boolean:false`},
		{`dnsDomainIs("www.mcom.com", ".netscape.com")`, `boolean:false`},
		{`dnsDomainIs("xnetscape.com", "netscape.com")`, `boolean:true`},
		{`dnsDomainIs("WWW.NETSCAPE.COM", ".netscape.com")`, `boolean:false`},
		{`dnsDomainIs("a.com", "a.com")`, `boolean:true`},
		{`dnsDomainIs("com", "a.com")`, `boolean:false`},

		{`localHostOrDomainIs("www.netscape.com", "www.netscape.com")`, `boolean:true`},
		{`localHostOrDomainIs("www", "www.netscape.com")`, `boolean:true`},
		{`localHostOrDomainIs("www.mcom.com", "www.netscape.com")`, `boolean:false`},
		{`localHostOrDomainIs("home.netscape.com", "www.netscape.com")`, `boolean:false`},
		{`localHostOrDomainIs("home", "www.netscape.com")`, `boolean:false`},

		{`dnsDomainLevels("www")`, `number:0`},
		{`dnsDomainLevels("www.netscape.com")`, `number:2`},
		{`dnsDomainLevels("")`, `number:0`},

		{`shExpMatch("http://home.netscape.com/people/ari/index.html", "*/ari/*")`, `boolean:true`},
		{`shExpMatch("http://home.netscape.com/people/montulli/index.html", "*/ari/*")`, `boolean:false`},
		{`shExpMatch("abc", "a?c")`, `boolean:true`},
		{`shExpMatch("ac", "a?c")`, `boolean:false`},
		{`shExpMatch("a.c", "a.c")`, `boolean:true`},
		{`shExpMatch("abc", "a.c")`, `boolean:false`},
		{`shExpMatch("", "*")`, `boolean:true`},
		{`shExpMatch("", "")`, `boolean:true`},
		{`shExpMatch("x", "")`, `boolean:false`},
		{`shExpMatch("a[b]", "a[b]")`, `boolean:true`},
		{`shExpMatch("a(b", "a(b")`, `boolean:true`},
		{`shExpMatch("aXYZb", "a*b")`, `boolean:true`},
		{`shExpMatch("aXYZbc", "a*b")`, `boolean:false`},
		{`shExpMatch("ab", "a*b*")`, `boolean:true`},
		{`shExpMatch("abab", "*ab")`, `boolean:true`},
		{`shExpMatch("www.example.com", "*.example.com")`, `boolean:true`},
		{`shExpMatch("example.com", "*.example.com")`, `boolean:false`},
		{`shExpMatch("h\u00e9llo", "h?llo")`, `boolean:true`},
		{`shExpMatch("a\nb", "a*b")`, `boolean:true`},

		{`convert_addr("104.16.41.2")`, `number:1745889538`},
		{`convert_addr("192.168.0.1")`, `number:-1062731775`},
		{`convert_addr("255.255.255.255")`, `number:-1`},
		{`convert_addr("0.0.0.0")`, `number:0`},
		{`convert_addr("1.2.3")`, `number:16909056`},
		{`convert_addr("a.b.c.d")`, `number:0`},
		{`convert_addr("1.2.3.4.5")`, `number:16909060`},

		{`getClientVersion()`, `string:"1.0"`},
		{`typeof alert("x")`, `string:"undefined"`},
	})
}

func TestDNSHelpers(t *testing.T) {
	runExprs(t, Options{Resolver: testResolver()}, []exprCase{
		{`dnsResolve("www.example.com")`, `string:"93.184.216.34"`},
		{`dnsResolve("WWW.Example.COM.")`, `string:"93.184.216.34"`},
		{`dnsResolve("v6only.example")`, `object:null`},
		{`dnsResolve("nosuch.example")`, `object:null`},
		{`dnsResolve("10.9.8.7")`, `string:"10.9.8.7"`},
		{`dnsResolve("mapped.example")`, `string:"192.0.2.7"`},
		{`dnsResolve("b\u00fccher.ch")`, `string:"192.0.2.55"`},
		{`dnsResolve("bad name")`, `object:null`},
		{`dnsResolve(42)`, `object:null`},
		{`dnsResolve()`, `object:null`},

		{`isResolvable("www.example.com")`, `boolean:true`},
		{`isResolvable("v6only.example")`, `boolean:false`},
		{`isResolvable("nosuch.example")`, `boolean:false`},

		{`isInNet("198.95.249.79", "198.95.249.79", "255.255.255.255")`, `boolean:true`},
		{`isInNet("198.95.249.80", "198.95.249.79", "255.255.255.255")`, `boolean:false`},
		{`isInNet("198.95.6.8", "198.95.0.0", "255.255.0.0")`, `boolean:true`},
		{`isInNet("intranet.corp", "10.0.0.0", "255.0.0.0")`, `boolean:true`},
		{`isInNet("www.example.com", "10.0.0.0", "255.0.0.0")`, `boolean:false`},
		{`isInNet("nosuch.example", "0.0.0.0", "0.0.0.0")`, `boolean:false`},
		{`isInNet("v6only.example", "0.0.0.0", "0.0.0.0")`, `boolean:false`},
		{`isInNet("10.1.2.3", "10.0.0.0", "255.0.0")`, `boolean:false`},
		{`isInNet("10.1.2.3", "10.0.0", "255.0.0.0")`, `boolean:false`},
		{`isInNet("010.001.002.003", "10.1.2.3", "255.255.255.255")`, `boolean:true`},
		{`isInNet("10.1.2.3", "10.9.2.0", "255.0.255.0")`, `boolean:true`},

		{`dnsResolveEx("www.example.com")`, `string:"93.184.216.34;2606:2800:220:1:248:1893:25c8:1946"`},
		{`dnsResolveEx("v6only.example")`, `string:"2001:db8::1;2001:db8::2"`},
		{`dnsResolveEx("nosuch.example")`, `string:""`},
		{`dnsResolveEx("::1")`, `string:"::1"`},
		{`dnsResolveEx(7)`, `string:""`},
		{`isResolvableEx("v6only.example")`, `boolean:true`},
		{`isResolvableEx("nosuch.example")`, `boolean:false`},

		{`isInNetEx("198.95.249.79", "198.95.249.79/32")`, `boolean:true`},
		{`isInNetEx("198.95.249.78", "198.95.249.79/32")`, `boolean:false`},
		{`isInNetEx("198.95.1.1", "198.95.0.0/16")`, `boolean:true`},
		{`isInNetEx("10.1.2.3", "10.1.2.0/24")`, `boolean:true`},
		{`isInNetEx("10.1.3.3", "10.1.2.0/24")`, `boolean:false`},
		{`isInNetEx("10.1.2.3", "10.1.2.77/24")`, `boolean:true`},
		{`isInNetEx("3ffe:8311:ffff:1::1", "3ffe:8311:ffff::/48")`, `boolean:true`},
		{`isInNetEx("3ffe:8312::1", "3ffe:8311:ffff::/48")`, `boolean:false`},
		{`isInNetEx("[::1]", "::1/128")`, `boolean:true`},
		{`isInNetEx("10.0.0.1", "::/0")`, `boolean:false`},
		{`isInNetEx("www.example.com", "0.0.0.0/0")`, `boolean:false`},
		{`isInNetEx("10.0.0.1", "10.0.0.0/33")`, `boolean:false`},
		{`isInNetEx("10.0.0.1", "10.0.0.0")`, `boolean:false`},
		{`isInNetEx(1, "0.0.0.0/0")`, `boolean:false`},

		{`sortIpAddressList("10.2.3.9;2001:4898:28:3:201:2ff:feea:fc14;::1;127.0.0.1;::9")`,
			`string:"::1;::9;2001:4898:28:3:201:2ff:feea:fc14;10.2.3.9;127.0.0.1"`},
		{`sortIpAddressList("2001:4898:28:3:201:2ff:feea:fc14; 157.59.139.22; fe80::5efe:157.59.139.22")`,
			`string:"2001:4898:28:3:201:2ff:feea:fc14;fe80::5efe:157.59.139.22;157.59.139.22"`},
		{`sortIpAddressList(" 10.0.0.2 ;\t10.0.0.1;;")`, `string:"10.0.0.1;10.0.0.2"`},
		{`sortIpAddressList("")`, `boolean:false`},
		{`sortIpAddressList(" ; ;")`, `boolean:false`},
		{`sortIpAddressList("1.2.3.4;bogus")`, `boolean:false`},
		{`sortIpAddressList(5)`, `object:null`},
	})
}

func TestMyIPAddress(t *testing.T) {
	runExprs(t, Options{MyIP: func() []net.IP {
		return []net.IP{net.ParseIP("2001:db8::5"), net.ParseIP("192.0.2.10"), net.ParseIP("192.0.2.11")}
	}}, []exprCase{
		{`myIpAddress()`, `string:"192.0.2.10"`},
		{`myIpAddressEx()`, `string:"2001:db8::5;192.0.2.10;192.0.2.11"`},
	})
	runExprs(t, Options{MyIP: func() []net.IP { return nil }}, []exprCase{
		{`myIpAddress()`, `string:"127.0.0.1"`},
		{`myIpAddressEx()`, `string:""`},
	})
	runExprs(t, Options{MyIP: func() []net.IP { return []net.IP{net.ParseIP("2001:db8::5")} }}, []exprCase{
		{`myIpAddress()`, `string:"127.0.0.1"`},
	})
	// The default reads this machine's interfaces; whatever they are, the
	// answer is an IPv4 address and no loopback one unless there is none.
	s := mustCompile(t, evalScript, Options{})
	got, err := s.FindProxy(context.Background(), `myIpAddress()`, "")
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(got[len(`string:"`) : len(got)-1]); ip == nil || ip.To4() == nil {
		t.Errorf("myIpAddress() = %s, want an IPv4 address", got)
	}
	for _, ip := range interfaceAddrs() {
		if ip.IsLoopback() && len(interfaceAddrs()) > 1 {
			t.Errorf("interfaceAddrs() = %v holds a loopback address", interfaceAddrs())
		}
	}
}

func TestClientVersionAndAlert(t *testing.T) {
	var mu sync.Mutex
	var got []string
	o := Options{ClientVersion: "2.5", Alert: func(m string) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}}
	runExprs(t, o, []exprCase{
		{`getClientVersion()`, `string:"2.5"`},
		{`alert("line\nbreak")`, `undefined:undefined`},
		{`alert()`, `undefined:undefined`},
	})
	if len(got) != 2 || got[0] != `line\nbreak` || got[1] != "undefined" {
		t.Errorf("alerts = %q, want [line\\nbreak undefined]", got)
	}
}

// A helper given undefined throws, as the browsers' helpers do.
func TestHelperUndefinedArgumentThrows(t *testing.T) {
	s := mustCompile(t, evalScript, Options{})
	_, err := s.FindProxy(context.Background(), `dnsDomainIs(undefined, "x")`, "")
	if e := asError(t, err); e.Kind != KindThrow || e.Func != "FindProxyForURL" {
		t.Errorf("error %v, want KindThrow from FindProxyForURL", e)
	}
}
