package pac

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// The helpers of Netscape's PAC format and Microsoft's IPv6 extensions, in
// Go. They follow Chromium's PAC library (itself Firefox's), with the
// differences noted at each. A script may redefine any of them; that
// changes what its own code sees on that VM, as in browsers.

// installHelpers defines the helpers as globals of v's runtime.
func (v *vm) installHelpers() {
	rt := v.rt
	def := func(name string, f func(goja.FunctionCall) goja.Value) {
		_ = rt.Set(name, f)
	}
	def("isPlainHostName", v.isPlainHostName)
	def("dnsDomainIs", v.dnsDomainIs)
	def("localHostOrDomainIs", v.localHostOrDomainIs)
	def("dnsDomainLevels", v.dnsDomainLevels)
	def("shExpMatch", v.shExpMatch)
	def("convert_addr", v.convertAddr)
	def("isInNet", v.isInNet)
	def("dnsResolve", v.dnsResolve)
	def("isResolvable", v.isResolvable)
	def("myIpAddress", v.myIPAddress)
	def("weekdayRange", v.weekdayRange)
	def("dateRange", v.dateRange)
	def("timeRange", v.timeRange)
	def("dnsResolveEx", v.dnsResolveEx)
	def("isResolvableEx", v.isResolvableEx)
	def("myIpAddressEx", v.myIPAddressEx)
	def("isInNetEx", v.isInNetEx)
	def("sortIpAddressList", v.sortIPAddressList)
	def("getClientVersion", func(goja.FunctionCall) goja.Value { return rt.ToValue(v.s.o.ClientVersion) })
	def("alert", v.alert)
}

// strArg returns argument i converted to a string (running the script's
// toString for an object, as JavaScript would). A missing, undefined or null
// argument throws a TypeError, as the browsers' helpers do when they read
// its length.
func (v *vm) strArg(call goja.FunctionCall, i int, fn string) string {
	a := call.Argument(i)
	if goja.IsUndefined(a) || goja.IsNull(a) {
		panic(v.rt.NewTypeError(fn + ": argument " + string(rune('1'+i)) + " is " + a.String()))
	}
	return a.String()
}

// strOnly returns argument i when it is a string; Chromium's DNS helpers
// accept nothing else.
func strOnly(call goja.FunctionCall, i int) (string, bool) {
	if s, ok := call.Argument(i).(goja.String); ok {
		return s.String(), true
	}
	return "", false
}

// isPlainHostName(host): true when host has no dot (and, as in Chromium,
// no colon: an IPv6 literal is not a plain name).
func (v *vm) isPlainHostName(call goja.FunctionCall) goja.Value {
	h := v.strArg(call, 0, "isPlainHostName")
	return v.rt.ToValue(!strings.ContainsAny(h, ".:"))
}

// dnsDomainIs(host, domain): true when host ends with domain, compared
// exactly (case-sensitive, no label boundary): dnsDomainIs("www.a.com",
// ".a.com") and dnsDomainIs("xa.com", "a.com") are both true.
func (v *vm) dnsDomainIs(call goja.FunctionCall) goja.Value {
	h, d := v.strArg(call, 0, "dnsDomainIs"), v.strArg(call, 1, "dnsDomainIs")
	return v.rt.ToValue(strings.HasSuffix(h, d))
}

// localHostOrDomainIs(host, hostdom): true when host is hostdom, or is a
// plain name that hostdom starts with followed by a dot.
func (v *vm) localHostOrDomainIs(call goja.FunctionCall) goja.Value {
	h, d := v.strArg(call, 0, "localHostOrDomainIs"), v.strArg(call, 1, "localHostOrDomainIs")
	return v.rt.ToValue(h == d || strings.HasPrefix(d, h+"."))
}

// dnsDomainLevels(host): the number of dots in host.
func (v *vm) dnsDomainLevels(call goja.FunctionCall) goja.Value {
	return v.rt.ToValue(strings.Count(v.strArg(call, 0, "dnsDomainLevels"), "."))
}

// shExpMatch(str, shexp): true when the shell expression shexp matches all
// of str: '*' matches any run of characters, '?' any one character, and
// everything else itself. Browsers translate shexp into a regular
// expression and escape only '.', so there other regular expression syntax
// ("[a-z]", "+", "(") keeps its meaning or makes the call throw; here it is
// literal. '*' matches line breaks too.
func (v *vm) shExpMatch(call goja.FunctionCall) goja.Value {
	s, p := v.strArg(call, 0, "shExpMatch"), v.strArg(call, 1, "shExpMatch")
	return v.rt.ToValue(v.globMatch(s, p))
}

// globMatch matches with the linear backtrack-to-last-star algorithm
// (O(len(s)*len(p)) at worst). It gives up, returning false, when the call
// is abandoned.
func (v *vm) globMatch(s, p string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for n := 0; si < len(s); n++ {
		if n&0xffff == 0xffff && v.cur != nil && v.cur.abandoned.Load() {
			return false
		}
		if pi < len(p) {
			switch pc, pw := utf8.DecodeRuneInString(p[pi:]); {
			case pc == '*':
				star, mark = pi, si
				pi += pw
				continue
			case pc == '?':
				_, sw := utf8.DecodeRuneInString(s[si:])
				si += sw
				pi += pw
				continue
			default:
				sc, sw := utf8.DecodeRuneInString(s[si:])
				if sc == pc {
					si += sw
					pi += pw
					continue
				}
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		_, sw := utf8.DecodeRuneInString(s[mark:])
		mark += sw
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// convert_addr(ipchars): the dotted address as a signed 32-bit integer, as
// browsers compute it: each of the first four dot-separated parts converted
// to a number (as JavaScript's "&" does; garbage gives 0) and masked with
// 0xff, e.g. convert_addr("104.16.41.2") is 1745889538 and
// convert_addr("192.168.0.1") is -1062731775.
func (v *vm) convertAddr(call goja.FunctionCall) goja.Value {
	parts := strings.SplitN(v.strArg(call, 0, "convert_addr"), ".", 5)
	var n uint32
	for i := 0; i < 4; i++ {
		b := uint32(0)
		if i < len(parts) {
			b = uint32(toInt32(v.rt.ToValue(parts[i]).ToFloat())) & 0xff
		}
		n = n<<8 | b
	}
	return v.rt.ToValue(int32(n))
}

// toInt32 is ECMAScript's ToInt32 of a number.
func toInt32(f float64) int32 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return int32(uint32(int64(math.Mod(math.Trunc(f), 1<<32))))
}

// alert(message): passed to Options.Alert, bounded.
func (v *vm) alert(call goja.FunctionCall) goja.Value {
	if v.s.o.Alert != nil {
		msg := "undefined"
		if len(call.Arguments) > 0 {
			msg = call.Argument(0).String()
		}
		v.s.o.Alert(boundMsg(msg))
	}
	return goja.Undefined()
}
