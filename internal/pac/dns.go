package pac

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/dop251/goja"
	"golang.org/x/net/idna"
	"golang.org/x/sync/singleflight"
)

const (
	// maxDNSEntries bounds the DNS cache of a Script.
	maxDNSEntries = 1024
	// maxLookupsPerCall bounds the lookups one call may start (cache hits
	// and IP literals do not count): a PAC script needs a handful, and a
	// script in a loop must not flood the resolver.
	maxLookupsPerCall = 64
)

// dnsCache resolves names for the helpers of all VMs of a Script: it
// caches answers (failures too) for DNSCacheTTL and shares a lookup in
// flight among the calls that want it.
type dnsCache struct {
	o       Options
	group   singleflight.Group
	mu      sync.Mutex
	entries map[string]dnsEntry
}

type dnsEntry struct {
	addrs   []netip.Addr // nil: the lookup failed
	expires time.Time
}

func newDNSCache(o Options) *dnsCache {
	return &dnsCache{o: o, entries: map[string]dnsEntry{}}
}

// resolve returns the addresses of host, nil when it does not resolve. An
// IP literal is its own answer. A name that is not a valid DNS name (after
// IDNA conversion) does not resolve, without a lookup. A lookup waits at
// most LookupTimeout, what is left of the call's LookupBudget, and until
// the call's context ends; after 64 lookups in one call, names not in the
// cache do not resolve.
func (d *dnsCache) resolve(c *call, host string) []netip.Addr {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return []netip.Addr{a.WithZone("").Unmap()}
	}
	name, ok := lookupName(host)
	if !ok || c == nil {
		return nil
	}
	if addrs, hit := d.cached(name); hit {
		return addrs
	}
	left := d.o.LookupBudget - c.lookupWait
	if left <= 0 || c.lookups >= maxLookupsPerCall {
		return nil
	}
	c.lookups++
	ch := d.group.DoChan(name, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), d.o.LookupTimeout)
		defer cancel()
		var addrs []netip.Addr
		if ips, err := d.o.Resolver.LookupIPAddr(ctx, name); err == nil {
			for _, ip := range ips {
				if a, ok := netip.AddrFromSlice(ip.IP); ok {
					addrs = append(addrs, a.Unmap())
				}
			}
		}
		d.store(name, addrs)
		return addrs, nil
	})
	var addrs []netip.Addr
	c.wait(func() {
		t := time.NewTimer(min(left, d.o.LookupTimeout))
		defer t.Stop()
		select {
		case r := <-ch:
			addrs, _ = r.Val.([]netip.Addr)
		case <-c.ctx.Done():
		case <-t.C:
		}
	})
	return addrs
}

// lookupName returns host as a lower-case ASCII DNS name, converting an
// internationalised name as Chromium does, and reports whether it is one
// worth asking a resolver about.
func lookupName(host string) (string, bool) {
	if len(host) == 0 || len(host) > 1024 {
		return "", false
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			a, err := idna.Lookup.ToASCII(host)
			if err != nil {
				return "", false
			}
			host = a
			break
		}
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host, validHostName(host)
}

func (d *dnsCache) cached(name string) ([]netip.Addr, bool) {
	if d.o.DNSCacheTTL < 0 {
		return nil, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.entries[name]
	if !ok || !d.o.Now().Before(e.expires) {
		return nil, false
	}
	return e.addrs, true
}

func (d *dnsCache) store(name string, addrs []netip.Addr) {
	if d.o.DNSCacheTTL < 0 {
		return
	}
	now := d.o.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.entries) >= maxDNSEntries {
		for k, e := range d.entries {
			if !now.Before(e.expires) {
				delete(d.entries, k)
			}
		}
		for k := range d.entries {
			if len(d.entries) < maxDNSEntries {
				break
			}
			delete(d.entries, k) // an arbitrary one
		}
	}
	d.entries[name] = dnsEntry{addrs: addrs, expires: now.Add(d.o.DNSCacheTTL)}
}

// resolveArg resolves argument 0 of a DNS helper, which must be a string.
func (v *vm) resolveArg(call goja.FunctionCall) []netip.Addr {
	h, ok := strOnly(call, 0)
	if !ok {
		return nil
	}
	return v.s.dns.resolve(v.cur, h)
}

// first4 returns the first IPv4 address of addrs.
func first4(addrs []netip.Addr) (netip.Addr, bool) {
	for _, a := range addrs {
		if a.Is4() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// dnsResolve(host): the first IPv4 address of host as a string, or null
// (IPv4 only, as in Chromium and Internet Explorer).
func (v *vm) dnsResolve(call goja.FunctionCall) goja.Value {
	if a, ok := first4(v.resolveArg(call)); ok {
		return v.rt.ToValue(a.String())
	}
	return goja.Null()
}

// isResolvable(host): whether dnsResolve(host) gives an address.
func (v *vm) isResolvable(call goja.FunctionCall) goja.Value {
	_, ok := first4(v.resolveArg(call))
	return v.rt.ToValue(ok)
}

// dnsResolveEx(host): all addresses of host, IPv6 and IPv4, in the
// resolver's order, separated by ";"; "" when it does not resolve.
func (v *vm) dnsResolveEx(call goja.FunctionCall) goja.Value {
	return v.rt.ToValue(joinAddrs(v.resolveArg(call)))
}

// isResolvableEx(host): whether dnsResolveEx(host) gives any address.
func (v *vm) isResolvableEx(call goja.FunctionCall) goja.Value {
	return v.rt.ToValue(len(v.resolveArg(call)) > 0)
}

func joinAddrs(addrs []netip.Addr) string {
	var b strings.Builder
	for i, a := range addrs {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

// isInNet(host, pattern, mask): whether host's IPv4 address, masked, equals
// pattern masked. pattern and mask must be dotted IPv4 addresses (else
// false); host is one or is resolved as dnsResolve does (false when it does
// not resolve).
func (v *vm) isInNet(call goja.FunctionCall) goja.Value {
	h := v.strArg(call, 0, "isInNet")
	pat, ok1 := dotted4(v.strArg(call, 1, "isInNet"))
	mask, ok2 := dotted4(v.strArg(call, 2, "isInNet"))
	if !ok1 || !ok2 {
		return v.rt.ToValue(false)
	}
	ip, ok := dotted4(h)
	if !ok {
		a, found := first4(v.s.dns.resolve(v.cur, h))
		if !found {
			return v.rt.ToValue(false)
		}
		b := a.As4()
		ip = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return v.rt.ToValue(ip&mask == pat&mask)
}

// dotted4 parses four dot-separated decimal numbers of 1 to 3 digits, each at
// most 255 (browsers' isValidIpAddress: "010.1.1.1" is 10.1.1.1).
func dotted4(s string) (uint32, bool) {
	var n uint32
	parts, digits, b := 0, 0, 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			if digits == 0 || b > 255 {
				return 0, false
			}
			n = n<<8 | uint32(b)
			parts, digits, b = parts+1, 0, 0
			continue
		}
		if s[i] < '0' || s[i] > '9' || digits == 3 {
			return 0, false
		}
		b = b*10 + int(s[i]-'0')
		digits++
	}
	return n, parts == 4
}
