package web

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the address a request came from, as sign-in
// throttling counts it: the connection's peer, unless that peer is one of
// the trusted proxies; then the nearest address in X-Forwarded-For that is
// not a trusted proxy. The header is read from the right because each proxy
// appends the address it was reached from: what stands left of the last
// trusted proxy's entry was written by the client and may be anything.
func (h *Handler) clientAddr(r *http.Request) netip.Addr {
	return clientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), h.proxies)
}

func clientAddr(remote string, forwarded []string, trusted []netip.Prefix) netip.Addr {
	addr := parseHop(remote)
	if !addr.IsValid() || !isTrusted(addr, trusted) || len(forwarded) == 0 {
		return addr
	}
	hops := strings.Split(strings.Join(forwarded, ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		hop := parseHop(hops[i])
		if !hop.IsValid() {
			// Not written by a proxy we trust: count against the last one
			// that is, rather than believe it.
			return addr
		}
		if !isTrusted(hop, trusted) {
			return hop
		}
		addr = hop
	}
	return addr
}

// parseHop reads an address as it appears in RemoteAddr or X-Forwarded-For:
// "192.0.2.7", "192.0.2.7:5123", "2001:db8::7", "[2001:db8::7]:5123".
func parseHop(s string) netip.Addr {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap()
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}
	}
	return a.WithZone("").Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParseTrustedProxies reads a comma-separated list of addresses and CIDR
// prefixes, such as "10.0.0.0/8, 192.0.2.7, 2001:db8::/32".
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
