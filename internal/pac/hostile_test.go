package pac

import (
	"context"
	"errors"
	"net"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peakMemory samples the Go heap's objects and the goroutine stacks every
// millisecond until the returned function is called, which returns the
// highest sum seen.
func peakMemory() func() uint64 {
	names := []string{"/memory/classes/heap/objects:bytes", "/memory/classes/heap/stacks:bytes"}
	read := func() uint64 {
		s := make([]metrics.Sample, len(names))
		for i, n := range names {
			s[i].Name = n
		}
		metrics.Read(s)
		return s[0].Value.Uint64() + s[1].Value.Uint64()
	}
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if m := read(); m > peak.Load() {
				peak.Store(m)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}

const maxPeak = 512 << 20

func TestInfiniteLoop(t *testing.T) {
	start := time.Now()
	_, err := Compile(`while (true) {}`, Options{CallTimeout: 50 * time.Millisecond})
	if e := asError(t, err); e.Kind != KindTimeout || e.Func != "" {
		t.Errorf("top-level loop: %v, want KindTimeout", err)
	}
	s := mustCompile(t, `function FindProxyForURL(url, host) {
		if (url == "loop") for (;;) {}
		return "DIRECT";
	}`, Options{CallTimeout: 50 * time.Millisecond})
	_, err = s.FindProxy(context.Background(), "loop", "")
	if e := asError(t, err); e.Kind != KindTimeout || e.Func != "FindProxyForURL" {
		t.Errorf("loop: %v, want KindTimeout in FindProxyForURL", err)
	}
	if got, err := s.FindProxy(context.Background(), "http://x/", "x"); got != "DIRECT" || err != nil {
		t.Errorf("after a timeout: %q, %v; want DIRECT", got, err)
	}
	if d := time.Since(start); d > generous {
		t.Errorf("took %v", d)
	}
}

func TestDeepRecursion(t *testing.T) {
	for _, body := range []string{
		`function f(n) { return f(n + 1); } return f(0);`,
		`function f(n) { return f(n + 1); } try { return f(0); } catch (e) { return "DIRECT"; }`,
		`var o = {}; o.toString = function () { return String(o); }; return String(o);`,
	} {
		s := mustCompile(t, "function FindProxyForURL(url, host) {"+body+"}", Options{})
		_, err := s.FindProxy(context.Background(), "", "")
		if e := asError(t, err); e.Kind != KindThrow || e.Msg != errStackOverflow {
			t.Errorf("%s: %v, want KindThrow %q", body, err, errStackOverflow)
		}
	}
}

// Scripts that try to allocate without bound or loop inside a builtin end
// with a typed error, on time, and without taking the process's memory far.
func TestHugeAllocations(t *testing.T) {
	peak := peakMemory()
	any3 := []ErrorKind{KindThrow, KindMemory, KindTimeout}
	for _, c := range []struct {
		body  string
		kinds []ErrorKind
	}{
		{`var s = "x"; while (true) s += s;`, any3},
		{`var a = []; while (true) a.push({});`, any3},
		{`var o = {}; for (var i = 0; ; i++) o["k" + i] = i;`, any3},
		{`"x".repeat(1 << 30);`, any3},
		{`"x".padEnd(1 << 30);`, any3},
		{`"x".padStart(1 << 30, "ab");`, any3},
		{`var s = "x".repeat(1 << 23); s.concat(s, s, s, s, s, s, s, s);`, any3},
		{`var a = []; a.length = 1e9; a.join("x");`, any3},
		{`var a = Array(1e6).fill("x".repeat(1e6)); a.join("");`, any3},
		{`Array(1e9).fill(0);`, any3},
		{`Array(1e9).indexOf(1);`, any3},
		{`Array.from({length: 1e9});`, any3},
		{`var a = [...Array(1e8)];`, any3},
		{`Math.max(...Array(1e8));`, any3},
		{`Math.max.apply(null, Array(1e8));`, any3},
		{`Reflect.apply(Math.max, null, Array(1e8));`, any3},
		{`var b = Array(1e6).fill(Array(1e6).fill(1)); b.flat();`, any3},
		{`"x".repeat(1 << 22).split("");`, any3},
		{`"x".repeat(1 << 22).split(/(?:)/);`, any3},
		{`var s = "x".repeat(1 << 20); s.replace(/x/g, s);`, any3},
		{`var s = "x".repeat(1 << 20); s.replaceAll("x", s);`, any3},
		{"\"x\".repeat(1 << 20).replace(/x/g, \"$`\");", any3},
		{`var s = "x".repeat(1 << 20); "y".repeat(1 << 20).replace(/y/g, function () { return s; });`, any3},
		{`Object.keys("x".repeat(1 << 24));`, any3},
		{`Object.assign({}, "x".repeat(1 << 24));`, any3},
		{`JSON.parse("[".repeat(3e6));`, any3},
		{`var a = []; for (var i = 0; i < 1e5; i++) a = [a]; JSON.stringify(a);`, any3},
		{`var a = []; for (var i = 0; i < 1e5; i++) a = [a]; String(a);`, any3},
		{`var a = Array(1e6).fill("x".repeat(1e3)); JSON.stringify(Array(100).fill(a));`, any3},
		{`eval("(".repeat(1e6));`, any3},
		{`eval("!".repeat(1e6) + "1");`, any3},
		{`Function("(".repeat(1e6));`, any3},
		{`(function () {}).constructor("a+".repeat(1e5) + "1");`, any3},
		{`Object.getPrototypeOf(function* () {}).constructor("[".repeat(1e6));`, any3},
		{`eval("2n ** 1000000000n");`, any3},
		{`new ArrayBuffer(1 << 30);`, any3},
		{`new Uint8Array(1 << 30);`, any3},
		{`BigInt(2) ** BigInt(1e9);`, any3},
		{`/(a*)*\1b/.test("a".repeat(40));`, any3},
		{`"a".repeat(40).match(/(?=a)(a|aa)+$/);`, any3},
		{`new RegExp("(a|aa)+\\1$").exec("a".repeat(40));`, any3},
		{`"a".repeat(40).search("(a+)+\\1$");`, any3},
		{`/a{2000}/.test("a");`, any3},
	} {
		s := mustCompile(t, "function FindProxyForURL(url, host) {"+c.body+" return 'DIRECT'; }",
			Options{CallTimeout: time.Second, MaxMemory: 16 << 20})
		start := time.Now()
		_, err := s.FindProxy(context.Background(), "", "")
		if err == nil {
			t.Errorf("%s: no error", c.body)
			continue
		}
		e := asError(t, err)
		ok := false
		for _, k := range c.kinds {
			ok = ok || e.Kind == k
		}
		if !ok {
			t.Errorf("%s: %v, want one of %v", c.body, err, c.kinds)
		}
		if d := time.Since(start); d > generous {
			t.Errorf("%s: took %v", c.body, d)
		}
	}
	if p := peak(); p > maxPeak {
		t.Errorf("peak heap and stacks %d MiB, want below %d MiB", p>>20, maxPeak>>20)
	} else {
		t.Logf("peak heap and stacks: %d MiB", p>>20)
	}
}

// The guards refuse oversized arguments before the builtin runs.
func TestGuardsRefuse(t *testing.T) {
	var cases []exprCase
	for expr, name := range map[string]string{
		`"x".repeat(1 << 30)`:                 "RangeError",
		`"x".padEnd(1 << 30)`:                 "RangeError",
		`"x".padStart(1 << 30)`:               "RangeError",
		`"x".concat.apply("x", Array(70000))`: "RangeError",
		`(function () { var a = []; a.length = 1e9; return a.join(); })()`: "RangeError",
		`Array(1e9).fill(0)`:                                      "RangeError",
		`Array(1e9).indexOf(1)`:                                   "RangeError",
		`Array.prototype.map.call({length: 1e9}, String)`:         "RangeError",
		`Array.from({length: 1e9})`:                               "RangeError",
		`Math.max.apply(null, Array(1e6))`:                        "RangeError",
		`Reflect.apply(Math.max, null, Array(1e6))`:               "RangeError",
		`Reflect.construct(Date, Array(1e6))`:                     "RangeError",
		`[].concat(Array(1e6), Array(1e6))`:                       "RangeError",
		`Array(2e6).flat()`:                                       "RangeError",
		`"x".repeat(1 << 21).split("")`:                           "RangeError",
		`"x".repeat(1 << 21).match(/x/g)`:                         "RangeError",
		`Object.keys("x".repeat(1 << 21))`:                        "RangeError",
		`Object.assign({}, "x".repeat(1 << 21))`:                  "RangeError",
		`Array.prototype.join.call({get length() { return 1; }})`: "TypeError",
		`JSON.parse("[".repeat(2000))`:                            "SyntaxError",
		`eval("(".repeat(2000))`:                                  "SyntaxError",
		`eval("1n")`:                                              "SyntaxError",
		`Function("(".repeat(2000))`:                              "SyntaxError",
		`/(a)\1/.test("aa")`:                                      "SyntaxError",
		`/a(?=b)/.exec("ab")`:                                     "SyntaxError",
		`"ab".replace(/(?<=a)b/, "")`:                             "SyntaxError",
		`"ab".match("(a)\\1")`:                                    "SyntaxError",
		`new ArrayBuffer(8)`:                                      "ReferenceError",
	} {
		cases = append(cases, exprCase{`(function () { try { ` + expr + `; return "no error"; } catch (e) { return e.name; } })()`,
			`string:"` + name + `"`})
	}
	// The guards are what is tested, not the watchdog: its bounds read a
	// process-wide counter and the clock, which a busy machine can trip.
	runExprs(t, Options{CallTimeout: generous, MaxMemory: 1 << 30}, cases)
}

// The guarded builtins keep their meaning at ordinary sizes.
func TestGuardedBuiltinsBehave(t *testing.T) {
	runExprs(t, Options{}, []exprCase{
		{`"ab".repeat(3)`, `string:"ababab"`},
		{`"5".padStart(3, "0") + "5".padEnd(3)`, `string:"0055  "`},
		{`"a".concat(1, null, [2, 3])`, `string:"a1null2,3"`},
		{`"a,b,,c".split(",")`, `object:["a","b","","c"]`},
		{`"a,b,c".split(",", 2)`, `object:["a","b"]`},
		{`"a1b22c".split(/\d+/)`, `object:["a","b","c"]`},
		{`"abc".split("")`, `object:["a","b","c"]`},
		{`"x-y-z".replace("-", "+")`, `string:"x+y-z"`},
		{`"x-y-z".replaceAll("-", "$&$&")`, `string:"x--y--z"`},
		{`"John Smith".replace(/(\w+)\s(\w+)/, "$2, $1")`, `string:"Smith, John"`},
		{`"abc".replace(/b/, "[$` + "`" + `|$'|$$|$0|$9]")`, `string:"a[a|c|$|$0|$9]c"`},
		{`"2025-01".replace(/(?<y>\d+)-(?<m>\d+)/, "$<m>/$<y>")`, `string:"01/2025"`},
		{`"aaa".replace(/a/g, function (m, off) { return off; })`, `string:"012"`},
		{`[1, [2, [3, [4]]]].flat()`, `object:[1,2,[3,[4]]]`},
		{`[1, [2, [3, [4]]]].flat(Infinity)`, `object:[1,2,3,4]`},
		{`[1, , 3].flat()`, `object:[1,3]`},
		{`[1, 2].flatMap(function (x) { return [x, x * 2]; })`, `object:[1,2,2,4]`},
		{`[1, [2, 3], null, undefined].join("-")`, `string:"1-2,3--"`},
		{`(function () { var a = [1]; a.push(a); return String(a); })()`, `string:"1,"`},
		{`[3, 1, 2].sort().concat([4], 5)`, `object:[1,2,3,4,5]`},
		{`Array.from("abc")`, `object:["a","b","c"]`},
		{`Array.from({length: 2, 0: "x"})`, `object:["x",null]`},
		{`Math.max.apply(null, [1, 5, 2])`, `number:5`},
		{`Reflect.apply(Math.min, null, [4, 2])`, `number:2`},
		{`[..."héllo"].length`, `number:5`},
		{`Object.keys("ab")`, `object:["0","1"]`},
		{`JSON.parse('{"a":[1,{"b":null}]}').a[1].b`, `object:null`},
		{`JSON.stringify({a: [1, "x", true, null], b: undefined, c: function () {}})`, `string:"{\"a\":[1,\"x\",true,null]}"`},
		{`JSON.stringify({d: new Date(0)})`, `string:"{\"d\":\"1970-01-01T00:00:00.000Z\"}"`},
		{`JSON.stringify([1, [2]], null, 2)`, `string:"[\n  1,\n  [\n    2\n  ]\n]"`},
		{`JSON.stringify({a: 1, b: 2, c: 3}, ["c", "a"])`, `string:"{\"c\":3,\"a\":1}"`},
		{`JSON.stringify({a: 1, b: "x"}, function (k, v) { return typeof v === "number" ? v * 10 : v; })`, `string:"{\"a\":10,\"b\":\"x\"}"`},
		{`JSON.stringify(new String("s"))`, `string:"\"s\""`},
		{`(function () { try { var o = {}; o.o = o; JSON.stringify(o); } catch (e) { return e.name; } })()`, `string:"TypeError"`},
		{`eval("1 + 2")`, `number:3`},
		{`Function("a", "b", "return a * b")(6, 7)`, `number:42`},
		{`new Function("return 1")()`, `number:1`},
		{`(function () {}) instanceof Function`, `boolean:true`},
		{`/(a+)+$/.test("a".repeat(30) + "b")`, `boolean:false`},
		{`/^www\.(.*)\.com$/.exec("www.example.com")[1]`, `string:"example"`},
		{`"a1b2".match(/\d/g)`, `object:["1","2"]`},
		{`"a1b2".search(/\d/)`, `number:1`},
		{`Array.from("a1b2".matchAll(/\d/g), function (m) { return m.index; })`, `object:[1,3]`},
		{`typeof ArrayBuffer + typeof Proxy + typeof BigInt`, `string:"undefinedundefinedundefined"`},
		{`String.prototype.repeat.name + "," + Array.prototype.join.name`, `string:"repeat,join"`},
	})
}

// A script that replaces the builtins the guards use cannot get past them
// or get hold of an unguarded original.
func TestTamperingDoesNotUnguard(t *testing.T) {
	s := mustCompile(t, `
		var leaked = [];
		var call = Function.prototype.call, apply = Function.prototype.apply;
		Function.prototype.call = function () { leaked.push(this); return call.apply(this, arguments); };
		Function.prototype.apply = function (t, a) { leaked.push(this); return apply.call(this, t, a); };
		Function.prototype.bind = function () { leaked.push(this); return this; };
		String = function () { return ""; };
		Object.getOwnPropertyDescriptor = function () { return {value: 0}; };
		Array.isArray = function () { return false; };
		function FindProxyForURL(url, host) {
			var errs = 0;
			try { "x".repeat(1 << 30); } catch (e) { errs++; }
			try { var a = []; a.length = 1e9; a.join(); } catch (e) { errs++; }
			for (var i = 0; i < leaked.length; i++) {
				try { leaked[i].call("x", 1 << 30); } catch (e) {}
			}
			return errs == 2 ? "DIRECT" : "PROXY unguarded:1";
		}`, Options{})
	got, err := s.FindProxy(context.Background(), "", "")
	if err != nil || got != "DIRECT" {
		t.Errorf("FindProxy = %q, %v; want DIRECT", got, err)
	}
}

func TestExceptions(t *testing.T) {
	for _, c := range []struct {
		body string
		kind ErrorKind
		msg  string // a part of Msg
	}{
		{`throw new Error("boom");`, KindThrow, "Error: boom (line 1, column "},
		{`throw "plain";`, KindThrow, "plain"},
		{`null.x;`, KindThrow, "TypeError"},
		{`undefinedFunction();`, KindThrow, "ReferenceError"},
		{`throw "a\nb\u0000c";`, KindThrow, `a\nb\x00c`},
		{`throw {toString: function () { throw 1; }};`, KindThrow, "could not be read"},
		{`throw {toString: function () { for (;;) {} }};`, KindTimeout, ""},
	} {
		s := mustCompile(t, "function FindProxyForURL(url, host) {"+c.body+"}", Options{CallTimeout: callTimeoutFor(c.kind)})
		_, err := s.FindProxy(context.Background(), "", "")
		e := asError(t, err)
		if e.Kind != c.kind || !strings.Contains(e.Msg, c.msg) || !strings.HasPrefix(e.Error(), "pac: FindProxyForURL: ") {
			t.Errorf("%s: %v (Msg %q), want %v with %q", c.body, err, e.Msg, c.kind, c.msg)
		}
	}
	s := mustCompile(t, `function FindProxyForURL() { throw "x".repeat(100000); }`, Options{})
	_, err := s.FindProxy(context.Background(), "", "")
	if e := asError(t, err); len(e.Msg) > maxMsg || !strings.HasSuffix(e.Msg, "...") {
		t.Errorf("a long message: %d bytes, want at most %d ending in ...", len(e.Msg), maxMsg)
	}
	_, err = Compile(`throw new TypeError("at top")`, Options{})
	if e := asError(t, err); e.Kind != KindThrow || e.Func != "" || !strings.Contains(e.Msg, "TypeError: at top") {
		t.Errorf("top-level throw: %v", err)
	}
}

// callTimeoutFor is the CallTimeout of a case that expects kind: short
// where the case is a runaway script, generous where the call must end on
// its own however busy the machine.
func callTimeoutFor(kind ErrorKind) time.Duration {
	if kind == KindTimeout {
		return 100 * time.Millisecond
	}
	return generous
}

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		name, src string
		kind      ErrorKind
		msg       string
	}{
		{"syntax", `function FindProxyForURL(url, host) { return "DIRECT"`, KindSyntax, ""},
		{"empty", ``, KindNoFunction, ""},
		{"no function", `var x = 1;`, KindNoFunction, "neither"},
		{"not a function", `var FindProxyForURL = "DIRECT";`, KindNoFunction, ""},
		{"misspelt", `function findProxyForURL() { return "DIRECT"; }`, KindNoFunction, ""},
		{"nesting", strings.Repeat("(", 100000) + "1" + strings.Repeat(")", 100000), KindSyntax, "nested deeper"},
		{"chain", "var a = 1" + strings.Repeat("+a", 100000) + ";", KindSyntax, "chained"},
		{"unary", "var a = " + strings.Repeat("!", 1000000) + "1;", KindSyntax, "chained"},
		{"bigint", `function FindProxyForURL() { return String(2n ** 64n); }`, KindSyntax, "BigInt"},
		{"too large", "//" + strings.Repeat("x", maxScriptSize), KindSyntax, "larger"},
		{"getter loops", `Object.defineProperty(this, "FindProxyForURL", {get: function () { for (;;) {} }});`, KindTimeout, ""},
	} {
		_, err := Compile(c.src, Options{CallTimeout: callTimeoutFor(c.kind)})
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if e := asError(t, err); e.Kind != c.kind || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.kind, c.msg)
		}
	}
}

func TestEntryFunction(t *testing.T) {
	s := mustCompile(t, `function FindProxyForURLEx(url, host) { return "PROXY ex:1"; }`, Options{})
	if got, err := s.FindProxy(context.Background(), "", ""); s.Entry() != "FindProxyForURLEx" || got != "PROXY ex:1" || err != nil {
		t.Errorf("Ex only: %s gave %q, %v", s.Entry(), got, err)
	}
	s = mustCompile(t, `function FindProxyForURL() { return "PROXY plain:1"; }
		function FindProxyForURLEx() { return "PROXY ex:1"; }`, Options{})
	if got, _ := s.FindProxy(context.Background(), "", ""); got != "PROXY ex:1" {
		t.Errorf("both defined: %q, want the Ex result", got)
	}
}

func TestBadResults(t *testing.T) {
	for _, c := range []struct{ ret, msg string }{
		{`undefined`, "undefined"},
		{`null`, "null"},
		{`1`, "a number"},
		{`true`, "a boolean"},
		{`({})`, "an object (Object)"},
		{`["DIRECT"]`, "an object (Array)"},
		{`new String("DIRECT")`, "an object (String)"},
		{`function () {}`, "a function"},
		{`Symbol("s")`, "a symbol"},
		{`"PROXY caf\u00e9:1"`, "non-ASCII"},
		{`"x".repeat(70000)`, "longer than 64 KiB"},
	} {
		s := mustCompile(t, "function FindProxyForURL(url, host) { return "+c.ret+"; }", Options{})
		_, err := s.FindProxy(context.Background(), "", "")
		if e := asError(t, err); e.Kind != KindBadResult || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("return %s: %v, want KindBadResult with %q", c.ret, err, c.msg)
		}
	}
}

// url and host reach the script as data, whatever they hold.
func TestInjection(t *testing.T) {
	s := mustCompile(t, `function FindProxyForURL(url, host) {
		if (url === "" && host === "") return "PROXY never:1";
		return encodeURIComponent(url) + " " + encodeURIComponent(host);
	}`, Options{CallTimeout: time.Second})
	for _, in := range []string{
		`http://a/"); while(1);//`,
		`http://a/'); while(1);//`,
		"http://a/`${(function(){for(;;){}})()}`",
		`http://a/\"); FindProxyForURL = 1; //`,
		"http://a/\n}\nwhile(1){}\n//",
		"http://a/\u2028while(1){}\u2029",
		`http://a/\\\\\\`,
		"http://a/\x00nul",
		"http://h\u00e9llo.example/\U0001F600",
		`"; return "PROXY evil:1`,
		`</script><script>`,
	} {
		host := in
		got, err := s.FindProxy(context.Background(), in, host)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		u, h, _ := strings.Cut(got, " ")
		du, err1 := url.PathUnescape(u)
		dh, err2 := url.PathUnescape(h)
		if err1 != nil || err2 != nil || du != in || dh != host {
			t.Errorf("%q arrived as %q, %q", in, du, dh)
		}
	}
}

// Global state persists on a VM from call to call, as in browsers; which
// function is called does not change, and a VM that was interrupted
// mid-call is not reused.
func TestStateBetweenCalls(t *testing.T) {
	s := mustCompile(t, `
		var calls = 0, busy = false;
		function FindProxyForURL(url, host) {
			if (busy) return "PROXY half-done:1";
			busy = true;
			calls++;
			if (url == "loop") for (;;) {}
			if (url == "hijack") {
				FindProxyForURL = function () { return "PROXY hijacked:1"; };
				dnsResolve = function () { return "6.6.6.6"; };
			}
			busy = false;
			return url == "count" ? "PROXY p" + calls + ":1" : "DIRECT";
		}`, Options{CallTimeout: 300 * time.Millisecond}) // long enough for the calls that end on a busy machine
	ctx := context.Background()
	find := func(u string) string {
		t.Helper()
		r, err := s.FindProxy(ctx, u, "")
		if err != nil {
			return "error: " + asError(t, err).Kind.String()
		}
		return r
	}
	// Sequential calls reuse the pooled VM, so its counter goes on.
	if a, b := find("count"), find("count"); a != "PROXY p1:1" || b != "PROXY p2:1" {
		t.Errorf("counter: %q then %q, want p1 then p2", a, b)
	}
	if got := find("hijack"); got != "DIRECT" {
		t.Errorf("hijack call: %q", got)
	}
	if got := find("x"); got != "DIRECT" {
		t.Errorf("after reassigning FindProxyForURL: %q, want the original function's DIRECT", got)
	}
	if got := find("loop"); got != "error: timeout" {
		t.Errorf("loop: %q", got)
	}
	if got := find("x"); got != "DIRECT" {
		t.Errorf("after an interrupted call: %q, want DIRECT from a fresh VM", got)
	}
}

func TestContextCancel(t *testing.T) {
	s := mustCompile(t, `function FindProxyForURL(url, host) { alert("started"); for (;;) {} }`, Options{
		CallTimeout: time.Hour,
		Alert:       func(string) {},
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.FindProxy(ctx, "", "")
	if e := asError(t, err); e.Kind != KindCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled before: %v", err)
	}

	started := make(chan struct{})
	var once sync.Once
	s = mustCompile(t, `function FindProxyForURL(url, host) { alert("started"); for (;;) {} }`, Options{
		CallTimeout: time.Hour,
		Alert:       func(string) { once.Do(func() { close(started) }) },
	})
	ctx, cancel = context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err = s.FindProxy(ctx, "", "")
	if e := asError(t, err); e.Kind != KindCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("canceled during: %v", err)
	}
}

// A VM stuck in Go code (here a blocking MyIP) is abandoned on time; while
// four are stuck, calls fail at once; when they end, calls work again.
func TestStuckEvaluations(t *testing.T) {
	release := make(chan struct{})
	var myIPCalls atomic.Int32
	s := mustCompile(t, `function FindProxyForURL(url, host) {
		return url == "stuck" ? myIpAddress() : "DIRECT";
	}`, Options{
		CallTimeout: 200 * time.Millisecond, // long enough for the calls that end on a busy machine
		DNSCacheTTL: -1,
		MyIP: func() []net.IP {
			myIPCalls.Add(1)
			<-release
			return nil
		},
	})
	ctx := context.Background()
	for i := 0; i < maxAbandoned; i++ {
		_, err := s.FindProxy(ctx, "stuck", "")
		if e := asError(t, err); e.Kind != KindTimeout {
			t.Fatalf("stuck call %d: %v, want KindTimeout", i, err)
		}
	}
	_, err := s.FindProxy(ctx, "x", "")
	if e := asError(t, err); e.Kind != KindTimeout || !strings.Contains(e.Msg, "still running") {
		t.Errorf("with %d stuck: %v, want an immediate KindTimeout", maxAbandoned, err)
	}
	if n := myIPCalls.Load(); n != maxAbandoned {
		t.Errorf("MyIP called %d times, want %d", n, maxAbandoned)
	}
	close(release)
	deadline := time.Now().Add(generous)
	for s.stuck.Load() > 0 && time.Now().Before(deadline) {
		runtime.Gosched()
	}
	if got, err := s.FindProxy(ctx, "x", ""); got != "DIRECT" || err != nil {
		t.Errorf("after release: %q, %v", got, err)
	}
}

// Concurrent calls on one Script (run with -race).
func TestConcurrentCalls(t *testing.T) {
	// Eight goroutines on a busy machine: a call may wait its turn for
	// long, which is not what this test is about.
	s := mustCompile(t, corporatePAC, Options{Resolver: testResolver(), CallTimeout: generous})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				for _, c := range corporateCases {
					got, err := s.FindProxy(context.Background(), c.url, c.host)
					if err != nil || got != c.want {
						errs <- c.url + ": " + got
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// goja's compiler takes quadratic time in a chain of binary operators;
// Compile gives up waiting after CompileTimeout.
func TestCompileTimeout(t *testing.T) {
	src := "var a = 1; var x = a" + strings.Repeat(" + a", 15000) + ";"
	start := time.Now()
	_, err := Compile(src, Options{CompileTimeout: time.Millisecond})
	if e := asError(t, err); e.Kind != KindTimeout || !strings.Contains(e.Msg, "compiling") {
		t.Errorf("%v, want KindTimeout", err)
	}
	if d := time.Since(start); d > generous {
		t.Errorf("took %v", d)
	}
}

// A script that keeps growing a global from call to call gets a fresh VM
// once its calls together allocated MaxMemory. Each call allocates about 2
// MiB; the bound is four times that many calls' worth and more, so that
// what other goroutines allocate meanwhile (the memory counter is the
// process's) cannot stop a single call.
func TestGrowingGlobalsRetireVM(t *testing.T) {
	s := mustCompile(t, `var keep = [];
		function FindProxyForURL(url, host) {
			keep.push("x".repeat(1 << 20) + keep.length);
			return "PROXY p" + keep.length + ":1";
		}`, Options{MaxMemory: 32 << 20, CallTimeout: generous})
	most, reset := 0, false
	for i := 0; i < 100 && !reset; i++ {
		got, err := s.FindProxy(context.Background(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(got, "PROXY p"), ":1"))
		reset = n < most
		most = max(most, n)
	}
	if !reset || most > 48 {
		t.Errorf("the kept array grew to %d elements of 1 MiB (reset %v), want a fresh VM before 48", most, reset)
	}
}

// The doubling string at the default bounds: it ends with KindMemory (or
// KindTimeout on a starved machine) long before the process's memory grows
// far.
func TestStringDoubling(t *testing.T) {
	peak := peakMemory()
	s := mustCompile(t, `function FindProxyForURL(url, host) { var s = 'x'; while (true) s += s; }`, Options{})
	start := time.Now()
	_, err := s.FindProxy(context.Background(), "", "")
	if e := asError(t, err); e.Kind != KindMemory && e.Kind != KindTimeout {
		t.Errorf("%v, want KindMemory or KindTimeout", err)
	}
	if d := time.Since(start); d > generous {
		t.Errorf("took %v", d)
	}
	if p := peak(); p > maxPeak {
		t.Errorf("peak heap and stacks %d MiB, want below %d MiB", p>>20, maxPeak>>20)
	} else {
		t.Logf("%v after %v; peak heap and stacks %d MiB", err, time.Since(start), p>>20)
	}
}
