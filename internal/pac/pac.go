// Package pac evaluates proxy auto-config (PAC) scripts: the JavaScript
// function FindProxyForURL(url, host) of Netscape's PAC format, with the
// helper functions of that format and of Microsoft's IPv6 extensions
// (FindProxyForURLEx and the *Ex helpers), in github.com/dop251/goja, a
// JavaScript engine in pure Go.
//
// [Compile] checks and compiles a script once; [Script.FindProxy] calls it
// for one URL; [ParseResult] splits its answer into [Entry] values; [CutURL]
// gives the arguments Chromium would pass for a URL; a [Cache] remembers
// answers for a short while.
//
// # Bounds
//
// A script is code from the network, so every evaluation is bounded, and a
// script that exceeds a bound gets a typed [*Error] rather than taking the
// process with it:
//   - Time: a call is interrupted after Options.CallTimeout of running (time
//     spent waiting for DNS does not count; that has bounds of its own) and
//     when the caller's context ends.
//   - Memory: goja has no heap limit. A watchdog samples the Go runtime's
//     count of allocated bytes (runtime/metrics "/gc/heap/allocs:bytes")
//     every millisecond while a call runs, and interrupts the call once
//     the bytes allocated since it began exceed Options.MaxMemory. The count
//     is process-wide, so allocations of other goroutines made while the
//     script runs are charged to it too (never those made while it waits for
//     DNS); a call is stopped early rather than late. What one call
//     allocates is bounded, not what the script keeps in globals from call
//     to call: a VM whose calls together allocated more than MaxMemory (its
//     top-level code not counted) is retired after its call and a fresh
//     one is made.
//   - Builtins: goja can interrupt only between JavaScript instructions, not
//     inside a builtin written in Go, so the builtins that can allocate or
//     loop without bound in one call are wrapped with argument checks (see
//     guard.js): String repeat, padStart, padEnd, concat, split, replace,
//     replaceAll, match, matchAll; the Array methods that walk or grow an
//     array (at most 1<<20 elements, or a string of at most MaxMemory/4
//     UTF-16 units from join); Function.prototype.apply, Reflect.apply and
//     Reflect.construct (at most 65536 arguments); Object.keys, values,
//     entries, getOwnPropertyNames, getOwnPropertyDescriptors, assign and
//     Reflect.ownKeys of a string (one key per character, at most 1<<20);
//     the array and string iterators (one JavaScript step per element, so
//     spreading a huge array can be interrupted); JSON.parse,
//     JSON.stringify, eval (which always runs in the global scope here) and
//     the Function constructors (nesting at most 1000 deep). Regular
//     expressions that goja would run with backtracking (backreferences,
//     lookaround, repeat counts above 1000) throw a SyntaxError when used:
//     a backtracking match cannot be interrupted. BigInt literals are
//     refused when compiling, and the BigInt, Proxy, ArrayBuffer,
//     SharedArrayBuffer, DataView, Atomics, WeakRef, FinalizationRegistry
//     and typed array globals are removed: PAC scripts have no use for them
//     and each offers an allocation or a loop that cannot be interrupted.
//   - Call depth: at most 1000 nested JavaScript calls (KindThrow with
//     "maximum call stack size exceeded").
//   - Source: at most 8 MiB, brackets nested at most 1000 deep, and at most
//     20000 operators chained in one expression or statements nested
//     without brackets (else if ...) along one path, so that goja's
//     recursive parser and compiler stay within a few tens of MiB of stack
//     (Go aborts the process at 1 GiB). Parsing and compiling are not
//     interruptible; Compile waits for them at most Options.CompileTimeout.
//
// These checks are best effort against a hostile script: one that finds a
// builtin or instruction not covered above that loops or allocates in Go
// (object spread of a huge string, say) may go past its bounds for that one
// step, and the source checks read the script as a lexer would without
// telling a regular expression literal from a division, so a script crafted
// around that can nest deeper than they allow. FindProxy still returns on time (the VM is abandoned and
// discarded when it finishes), and while four abandoned evaluations of a
// Script are still running, further calls fail at once with KindTimeout
// instead of piling up.
//
// # State between calls
//
// As in browsers, a script's global state persists from one call to the
// next on the same VM. A Script keeps a pool of VMs (goja runtimes are not
// safe for concurrent use), so concurrent or successive calls may see
// different VMs, each with the state left by the calls it ran: a script
// must not rely on it. A VM that was interrupted, hit a bound or
// overflowed its call stack is discarded, never reused. Which function is
// called is fixed when a VM is made: a script that later reassigns
// FindProxyForURL (or a helper) changes what its own code sees, not which
// function FindProxy calls. The url and host are passed as JavaScript string
// values, never spliced into source, and the Go state of a call (its
// context and bounds) lives only for that call, so a helper a script kept
// from one call acts for the call that runs it.
package pac

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
)

// Resolver looks up hosts for the DNS helpers. [net.Resolver] implements it.
type Resolver interface {
	// LookupIPAddr returns the addresses of host. It must honour ctx.
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
}

// Options configures a Script. Zero values mean the documented defaults. A
// Script copies the options in Compile; later changes to the struct do not
// affect it.
type Options struct {
	// Resolver looks up names for dnsResolve, dnsResolveEx, isResolvable,
	// isResolvableEx and isInNet; nil means net.DefaultResolver. IP literals
	// are answered without it.
	Resolver Resolver
	// LookupTimeout bounds one DNS lookup; 0 means 2s. A lookup that times
	// out counts as a failed one.
	LookupTimeout time.Duration
	// LookupBudget bounds the total time one call may wait for DNS; 0 means
	// twice LookupTimeout. Lookups that would wait once it is spent fail at
	// once, as an unresolvable name does; so do names not in the cache
	// after the 64th lookup of a call. A call thus takes at most about
	// CallTimeout + LookupBudget.
	LookupBudget time.Duration
	// DNSCacheTTL is how long lookups, failed ones included, are cached
	// (shared by all VMs of the Script, at most 1024 names); 0 means 1
	// minute. Negative disables the cache.
	DNSCacheTTL time.Duration
	// CompileTimeout bounds how long Compile waits for goja to parse and
	// compile the script; 0 means 10s. Parsing cannot be interrupted: a
	// script that takes longer (goja's compiler is quadratic in the length
	// of a chain of binary operators, so a crafted script of a few MiB can
	// take minutes) fails with KindTimeout while the work finishes in the
	// background.
	CompileTimeout time.Duration
	// CallTimeout bounds how long one call of FindProxyForURL (and the
	// script's top-level code, in Compile) may run, not counting time spent
	// waiting for DNS; 0 means 1s.
	CallTimeout time.Duration
	// MaxMemory bounds the bytes one call may allocate, measured as the
	// package documentation describes; 0 means 64 MiB. It also sets the
	// longest string the guarded builtins build (MaxMemory/4 UTF-16 units).
	MaxMemory int64
	// Now is the clock of weekdayRange, dateRange, timeRange, of the
	// script's Date, and of the DNS and address caches; nil means time.Now.
	// "Local" time in those helpers is the time in Now's Location (for
	// time.Now, the machine's local zone); "GMT" is UTC.
	Now func() time.Time
	// MyIP returns the addresses of this machine for myIpAddress (its first
	// IPv4 address, else "127.0.0.1") and myIpAddressEx (all of them). nil
	// means the addresses of the machine's up, non-loopback interfaces
	// (from net.Interfaces, without sending anything), IPv6 link-local ones
	// left out, 127.0.0.1 when there are none. Its answer is cached like a
	// DNS lookup.
	MyIP func() []net.IP
	// ClientVersion is what getClientVersion() returns; "" means "1.0".
	ClientVersion string
	// Alert receives the message of each alert(msg) call, at most 256 bytes
	// with control characters escaped; nil discards them.
	Alert func(msg string)
}

// Defaults.
const (
	defaultLookupTimeout  = 2 * time.Second
	defaultDNSCacheTTL    = time.Minute
	defaultCallTimeout    = time.Second
	defaultCompileTimeout = 10 * time.Second
	defaultMaxMemory      = 64 << 20
	defaultVersion        = "1.0"

	maxScriptSize = 8 << 20
	maxCallDepth  = 1000
	maxAbandoned  = 4

	scriptName = "proxy.pac" // the script's name in positions
)

// Script is a compiled PAC script. It is safe for concurrent use.
type Script struct {
	o      Options
	prog   *goja.Program
	entry  string // "FindProxyForURLEx" or "FindProxyForURL"
	dns    *dnsCache
	myIP   *myIPCache
	idle   chan *vm
	stuck  atomic.Int32 // abandoned evaluations still running
	limits limits
}

// Compile checks, compiles and runs the top-level code of a PAC script.
// Errors are *[Error]: KindSyntax when it does not parse (or is too large or
// too deeply nested), KindNoFunction when it defines neither FindProxyForURL
// nor FindProxyForURLEx as a function, and KindTimeout, KindMemory or
// KindThrow when its top-level code loops, allocates too much or throws.
func Compile(src string, o Options) (*Script, error) {
	o = withDefaults(o)
	prog, err := compileBounded(src, o.CompileTimeout)
	if err != nil {
		return nil, err
	}
	n := max(8, 2*runtime.GOMAXPROCS(0)) // idle VMs kept
	s := &Script{
		o:      o,
		prog:   prog,
		dns:    newDNSCache(o),
		myIP:   newMyIPCache(o),
		idle:   make(chan *vm, n),
		limits: newLimits(o.MaxMemory),
	}
	v, err := s.newVM(context.Background())
	if err != nil {
		return nil, err
	}
	s.entry = v.entry
	s.put(v)
	return s, nil
}

func withDefaults(o Options) Options {
	if o.Resolver == nil {
		o.Resolver = net.DefaultResolver
	}
	if o.LookupTimeout <= 0 {
		o.LookupTimeout = defaultLookupTimeout
	}
	if o.LookupBudget <= 0 {
		o.LookupBudget = 2 * o.LookupTimeout
	}
	if o.DNSCacheTTL == 0 {
		o.DNSCacheTTL = defaultDNSCacheTTL
	}
	if o.CompileTimeout <= 0 {
		o.CompileTimeout = defaultCompileTimeout
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = defaultCallTimeout
	}
	if o.MaxMemory <= 0 {
		o.MaxMemory = defaultMaxMemory
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MyIP == nil {
		o.MyIP = interfaceAddrs
	}
	if o.ClientVersion == "" {
		o.ClientVersion = defaultVersion
	}
	return o
}

// compileBounded runs compileSource in a goroutine of its own and waits for
// it at most timeout.
func compileBounded(src string, timeout time.Duration) (*goja.Program, error) {
	type result struct {
		prog *goja.Program
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				ch <- result{err: &Error{Kind: KindSyntax, Msg: boundMsg(fmt.Sprint("internal error: ", r))}}
			}
		}()
		p, err := compileSource(scriptName, src)
		ch <- result{p, err}
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.prog, r.err
	case <-t.C:
		return nil, &Error{Kind: KindTimeout, Msg: "parsing and compiling took longer than " + timeout.String()}
	}
}

// Entry returns the name of the function FindProxy calls:
// "FindProxyForURLEx" when the script defines it, else "FindProxyForURL".
func (s *Script) Entry() string { return s.entry }

// FindProxy calls the script's FindProxyForURLEx when it defines one, else
// its FindProxyForURL, with url and host as JavaScript strings, and returns
// the result unparsed (see [ParseResult]). The call is bounded by ctx and by
// the Options; errors are *[Error]. When ctx ends before the script
// returns, the error is KindCanceled even if the script did return meanwhile:
// a DNS lookup of it may have failed for that reason alone. A result that is
// not a string, not
// ASCII (Chromium refuses those too) or longer than 64 KiB is a
// KindBadResult error.
func (s *Script) FindProxy(ctx context.Context, url, host string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", &Error{Kind: KindCanceled, Func: s.entry, Msg: err.Error(), Err: err}
	}
	if n := s.stuck.Load(); n >= maxAbandoned {
		return "", &Error{Kind: KindTimeout, Func: s.entry,
			Msg: "earlier evaluations of this script are still running past their bounds"}
	}
	v, err := s.get(ctx)
	if err != nil {
		return "", err
	}
	return s.call(ctx, v, url, host)
}

// get returns an idle VM or a new one.
func (s *Script) get(ctx context.Context) (*vm, error) {
	select {
	case v := <-s.idle:
		return v, nil
	default:
		return s.newVM(ctx)
	}
}

// put returns v to the idle pool, or drops it when the pool is full.
func (s *Script) put(v *vm) {
	if v.allocated > uint64(s.o.MaxMemory) {
		return // it may hold what its calls allocated: start afresh
	}
	select {
	case s.idle <- v:
	default:
	}
}
