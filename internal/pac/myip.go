package pac

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/dop251/goja"
)

// myIPCache caches Options.MyIP's answer for DNSCacheTTL.
type myIPCache struct {
	o       Options
	mu      sync.Mutex
	addrs   []netip.Addr
	expires time.Time
}

func newMyIPCache(o Options) *myIPCache { return &myIPCache{o: o} }

func (m *myIPCache) get() []netip.Addr {
	now := m.o.Now()
	m.mu.Lock()
	if m.o.DNSCacheTTL >= 0 && now.Before(m.expires) {
		defer m.mu.Unlock()
		return m.addrs
	}
	m.mu.Unlock()
	var addrs []netip.Addr
	for _, ip := range m.o.MyIP() { // not under the lock: it is the caller's code
		if a, ok := netip.AddrFromSlice(ip); ok {
			addrs = append(addrs, a.Unmap())
		}
	}
	m.mu.Lock()
	m.addrs, m.expires = addrs, now.Add(m.o.DNSCacheTTL)
	m.mu.Unlock()
	return addrs
}

// interfaceAddrs is the default Options.MyIP: the addresses of the up,
// non-loopback interfaces, IPv6 first (the order of getaddrinfo, which
// Microsoft's extensions follow), then IPv4, link-local IPv4 last and
// link-local IPv6 left out (it is useless without its zone); 127.0.0.1 when
// there are none. It reads the interface table and sends nothing.
func interfaceAddrs() []net.IP {
	ifs, err := net.Interfaces()
	if err != nil {
		return []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	var v6, v4, v4ll []net.IP
	for _, ifc := range ifs {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			n, ok := a.(*net.IPNet)
			if !ok || n.IP.IsLoopback() || n.IP.IsUnspecified() {
				continue
			}
			switch ip4 := n.IP.To4(); {
			case ip4 != nil && ip4.IsLinkLocalUnicast():
				v4ll = append(v4ll, ip4)
			case ip4 != nil:
				v4 = append(v4, ip4)
			case !n.IP.IsLinkLocalUnicast():
				v6 = append(v6, n.IP)
			}
		}
	}
	out := append(append(v6, v4...), v4ll...)
	if len(out) == 0 {
		return []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	return out
}

// myIpAddress(): the first IPv4 address of this machine, or "127.0.0.1".
func (v *vm) myIPAddress(goja.FunctionCall) goja.Value {
	if a, ok := first4(v.s.myIP.get()); ok {
		return v.rt.ToValue(a.String())
	}
	return v.rt.ToValue("127.0.0.1")
}

// myIpAddressEx(): all addresses of this machine separated by ";", or "".
func (v *vm) myIPAddressEx(goja.FunctionCall) goja.Value {
	return v.rt.ToValue(joinAddrs(v.s.myIP.get()))
}
