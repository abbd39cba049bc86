package pac

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/dop251/goja"
)

// Microsoft's IPv6 extensions that work on address strings (the DNS ones
// are in dns.go, myIpAddressEx in myip.go). They follow Chromium.

// maxSortAddrs bounds the list sortIpAddressList sorts.
const maxSortAddrs = 1024

// parseLiteral parses an IPv4 or IPv6 literal, an IPv6 one with or without
// brackets, without a zone.
func parseLiteral(s string) (netip.Addr, bool) {
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a, true
}

// isInNetEx(ipAddress, ipPrefix): whether the IP literal ipAddress is in the
// CIDR prefix ipPrefix ("198.95.0.0/16", "3ffe:8311:ffff::/48"). Both must be
// strings of the same family; the address is not resolved; host bits set in
// the prefix are ignored. Anything else gives false.
func (v *vm) isInNetEx(call goja.FunctionCall) goja.Value {
	as, ok1 := strOnly(call, 0)
	ps, ok2 := strOnly(call, 1)
	if !ok1 || !ok2 {
		return v.rt.ToValue(false)
	}
	a, ok := parseLiteral(as)
	p, err := netip.ParsePrefix(ps)
	if !ok || err != nil || p.Addr().Zone() != "" || a.Is4() != p.Addr().Is4() {
		return v.rt.ToValue(false)
	}
	return v.rt.ToValue(p.Masked().Contains(a))
}

// sortIpAddressList(list): the ";"-separated IP literals of list (spaces and
// tabs removed, empty items skipped) sorted IPv6 first, then IPv4, each in
// ascending numeric order, joined with ";" as they were written; false when
// the list is empty, holds something that is not an IP literal, or more than
// 1024 items; null when the argument is not a string.
func (v *vm) sortIPAddressList(call goja.FunctionCall) goja.Value {
	s, ok := strOnly(call, 0)
	if !ok {
		return goja.Null()
	}
	s = strings.NewReplacer(" ", "", "\t", "").Replace(s)
	type item struct {
		text string
		addr netip.Addr
	}
	var items []item
	for s != "" {
		var t string
		t, s, _ = strings.Cut(s, ";")
		if t == "" {
			continue
		}
		a, ok := parseLiteral(t)
		if !ok || len(items) >= maxSortAddrs {
			return v.rt.ToValue(false)
		}
		items = append(items, item{t, a})
	}
	if len(items) == 0 {
		return v.rt.ToValue(false)
	}
	slices.SortStableFunc(items, func(x, y item) int {
		if x.addr.Is4() != y.addr.Is4() {
			if x.addr.Is4() {
				return 1
			}
			return -1
		}
		return x.addr.Compare(y.addr)
	})
	texts := make([]string, len(items))
	for i, it := range items {
		texts[i] = it.text
	}
	return v.rt.ToValue(strings.Join(texts, ";"))
}
