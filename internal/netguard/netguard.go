// Package netguard keeps the gateway from being a way into the operator's network: every
// connection to a host a merchant gave (an SMTP server, a service account's token_uri, a
// WooCommerce store, a webhook endpoint) is dialed through a Guard, which refuses loopback,
// private, link-local, carrier-grade NAT, unique-local, unspecified, multicast and other
// non-public addresses. The check runs at connect time on the address actually dialed, after
// name resolution, so a name that resolved to a public address when it was saved and resolves to
// a private one later is still refused. The same definition serves the checks made when an
// address is saved (CheckHost).
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden is the error (through errors.Is) of a connection or a host refused because its
// address is not on the public internet.
var ErrForbidden = errors.New("netguard: address is not on the public internet")

// ForbiddenError names the refused address.
type ForbiddenError struct {
	// Host is the name checked, when a name was (CheckHost); empty for a dial.
	Host string
	// Addr is the refused address; invalid for "localhost", refused by name.
	Addr netip.Addr
}

// Error says which address was refused and why.
func (e *ForbiddenError) Error() string {
	const why = "a loopback, private or otherwise non-public address, which this gateway does not connect to"
	switch {
	case e.Host != "" && e.Addr.IsValid():
		return e.Host + " resolves to " + e.Addr.String() + ", " + why
	case e.Host != "":
		return e.Host + " is " + why
	}
	return e.Addr.String() + " is " + why
}

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// nonPublic are the ranges refused beyond what netip.Addr's methods know.
var nonPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range []string{
		"0.0.0.0/8",       // "this network"
		"100.64.0.0/10",   // carrier-grade NAT
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation
		"203.0.113.0/24",  // documentation
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/96",           // IPv4-compatible (deprecated), with :: and ::1
		"100::/64",        // discard
		"64:ff9b::/96",    // NAT64: reaches any IPv4 address through a translator
		"64:ff9b:1::/48",  // local-use NAT64
		"2001::/32",       // Teredo
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4: embeds an IPv4 address
		"fec0::/10",       // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}()

// Forbidden reports whether a is not a public unicast address: loopback, private (RFC 1918),
// unique-local (fc00::/7), link-local, carrier-grade NAT, unspecified, multicast, reserved, and
// the IPv6 forms that carry an IPv4 address (IPv4-mapped addresses are judged as the IPv4
// address they map).
func Forbidden(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// DialTimeout bounds establishing one connection.
const DialTimeout = 10 * time.Second

// Guard dials merchant-supplied hosts. Its zero value refuses every non-public address.
type Guard struct {
	// AllowPrivate turns the guard off (ALLOW_PRIVATE_NETWORKS: tests with local fakes, a gateway
	// whose merchants' servers are on its own network).
	AllowPrivate bool
	// Resolver resolves names for CheckHost; nil means net.DefaultResolver. Dials resolve with
	// the system resolver and check the address they connect to.
	Resolver *net.Resolver
}

// control refuses a connection to a forbidden address; net.Dialer calls it for every address
// it tries, after resolution and before connecting.
func control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("netguard: cannot read the address %q: %w", address, ErrForbidden)
	}
	if Forbidden(ap.Addr()) {
		return &ForbiddenError{Addr: ap.Addr().WithZone("").Unmap()}
	}
	return nil
}

// Dialer returns a dialer that refuses forbidden addresses (unless AllowPrivate).
func (g Guard) Dialer() *net.Dialer {
	d := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	if !g.AllowPrivate {
		d.Control = control
	}
	return d
}

// DialContext connects as net.Dialer.DialContext does, refusing forbidden addresses with an
// error that wraps ErrForbidden.
func (g Guard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return g.Dialer().DialContext(ctx, network, address)
}

// Transport returns an HTTP transport whose connections go through the guard and never through
// a proxy (a proxy would connect for us, past the check).
func (g Guard) Transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = g.DialContext
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 4
	return tr
}

// Client returns an HTTP client on Transport that follows no redirects (a redirect answers as
// itself) and gives up after timeout.
func (g Guard) Client(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: g.Transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// CheckHost is the check made when an address is saved: nil when AllowPrivate; else a
// *ForbiddenError when host is a forbidden address, "localhost" or a name under it, or a name
// that resolves to at least one forbidden address; the resolver's error (not wrapping
// ErrForbidden) when the name does not resolve. Connections are checked again when they are made.
func (g Guard) CheckHost(ctx context.Context, host string) error {
	if g.AllowPrivate {
		return nil
	}
	host = strings.TrimSuffix(strings.TrimSpace(host), ".")
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		if Forbidden(a) {
			return &ForbiddenError{Addr: a.WithZone("").Unmap()}
		}
		return nil
	}
	lower := strings.ToLower(host)
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		return &ForbiddenError{Host: host}
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("netguard: %s does not resolve: %w", host, err)
	}
	for _, a := range addrs {
		if Forbidden(a) {
			return &ForbiddenError{Host: host, Addr: a.WithZone("").Unmap()}
		}
	}
	return nil
}
