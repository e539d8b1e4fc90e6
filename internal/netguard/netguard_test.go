package netguard_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/internal/netguard"
)

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr      string
		forbidden bool
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"::1", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.254", true},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"100.64.0.1", true}, // carrier-grade NAT
		{"100.127.255.254", true},
		{"fc00::1", true}, // unique-local
		{"fd12:3456::1", true},
		{"0.0.0.0", true},
		{"::", true},
		{"0.1.2.3", true},
		{"224.0.0.1", true}, // multicast
		{"239.255.255.250", true},
		{"ff02::1", true},
		{"255.255.255.255", true},
		{"240.0.0.1", true},
		{"198.18.0.1", true},
		{"::ffff:127.0.0.1", true}, // IPv4-mapped
		{"::ffff:10.0.0.1", true},
		{"::ffff:169.254.169.254", true},
		{"::127.0.0.1", true},         // IPv4-compatible
		{"64:ff9b::a00:1", true},      // NAT64 of 10.0.0.1
		{"2002:7f00:1::1", true},      // 6to4 of 127.0.0.1
		{"2001:0:4136:e378::1", true}, // Teredo
		{"93.184.215.14", false},
		{"8.8.8.8", false},
		{"100.63.255.255", false}, // just below carrier-grade NAT
		{"172.32.0.1", false},
		{"::ffff:93.184.215.14", false},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", false},
	}
	for _, tc := range tests {
		if got := netguard.Forbidden(netip.MustParseAddr(tc.addr)); got != tc.forbidden {
			t.Errorf("Forbidden(%s) = %v, want %v", tc.addr, got, tc.forbidden)
		}
	}
}

// TestGuardRefusesAtDialTime: a name that resolves to a loopback address is refused when the
// connection is made, by the dialer and the HTTP client alike, with an error that says so; with
// AllowPrivate the same calls connect.
func TestGuardRefusesAtDialTime(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	ctx := context.Background()

	guard := netguard.Guard{}
	for _, addr := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::ffff:127.0.0.1]:" + port} {
		conn, err := guard.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			t.Fatalf("dial %s: connected", addr)
		}
		var fe *netguard.ForbiddenError
		if !errors.Is(err, netguard.ErrForbidden) || !errors.As(err, &fe) || !strings.Contains(err.Error(), "non-public address") {
			t.Fatalf("dial %s: %v, want a refusal naming the address", addr, err)
		}
	}
	_, err := guard.Client(5 * time.Second).Get("http://localhost:" + port + "/")
	if !errors.Is(err, netguard.ErrForbidden) {
		t.Fatalf("GET through the guarded client: %v, want ErrForbidden", err)
	}

	open := netguard.Guard{AllowPrivate: true}
	resp, err := open.Client(5 * time.Second).Get("http://localhost:" + port + "/")
	if err != nil {
		t.Fatalf("GET with AllowPrivate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("GET with AllowPrivate: %d", resp.StatusCode)
	}
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	guard := netguard.Guard{}
	for _, host := range []string{"localhost", "LOCALHOST.", "db.localhost", "127.0.0.1", "[::1]", "::ffff:10.0.0.1", "169.254.169.254", "100.64.1.1"} {
		if err := guard.CheckHost(ctx, host); !errors.Is(err, netguard.ErrForbidden) {
			t.Errorf("CheckHost(%q) = %v, want ErrForbidden", host, err)
		}
	}
	if err := guard.CheckHost(ctx, "93.184.215.14"); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	if err := guard.CheckHost(ctx, "name.invalid"); err == nil || errors.Is(err, netguard.ErrForbidden) {
		t.Errorf("a name that does not resolve: %v, want a resolution error", err)
	}
	if err := (netguard.Guard{AllowPrivate: true}).CheckHost(ctx, "localhost"); err != nil {
		t.Errorf("AllowPrivate refused localhost: %v", err)
	}
}
