package api_test

import (
	"net/http"
	"regexp"
	"strconv"
	"testing"
)

// TestDashboardServerTiming: every dashboard page (signed in or not, an error page too) tells the
// browser how long the server took, as Server-Timing: page;dur=<ms>, which the benchmarks read.
func TestDashboardServerTiming(t *testing.T) {
	t.Parallel()
	f := newDashFixture(t, nil)
	re := regexp.MustCompile(`^page;dur=([0-9]+\.[0-9]{3})$`)
	for _, tc := range []struct {
		name   string
		req    dashRequest
		status int
	}{
		{"the lists page", dashRequest{path: "/app", cookies: sessionOf(f.owner)}, http.StatusOK},
		{"a fragment", dashRequest{path: "/app/customers", cookies: sessionOf(f.staff), header: map[string]string{"X-Coupongate-Fragment": "1"}}, http.StatusOK},
		{"the sign-in page", dashRequest{path: "/app/sign-in"}, http.StatusOK},
		{"the 403 page", dashRequest{path: "/app/settings/team", cookies: sessionOf(f.staff)}, http.StatusForbidden},
		{"a missing page", dashRequest{path: "/app/lists/00000000-0000-0000-0000-000000000000", cookies: sessionOf(f.owner)}, http.StatusNotFound},
	} {
		r := f.do(t, tc.req)
		if r.Status != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, r.Status, tc.status)
		}
		m := re.FindStringSubmatch(r.Header.Get("Server-Timing"))
		if m == nil {
			t.Errorf("%s: Server-Timing %q", tc.name, r.Header.Get("Server-Timing"))
			continue
		}
		if ms, err := strconv.ParseFloat(m[1], 64); err != nil || ms <= 0 || ms > 60_000 {
			t.Errorf("%s: %v ms (%v)", tc.name, ms, err)
		}
	}
}
