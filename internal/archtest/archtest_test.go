// Package archtest holds the rules of the project's layering that the compiler does not check.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/coupongate/coupongate"

// deps lists the packages pkg imports, directly or not (its tests excluded), as `go list -deps`.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+"/"+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestLayers: the domain and the store know no platform or provider. core decides and imports
// only the standard library, uuid and the project's leaf helpers; store persists and imports core
// but no integration (the ports it satisfies are declared by their users and checked where they
// are wired, internal/app); neither imports the HTTP layer, the worker or the wiring.
func TestLayers(t *testing.T) {
	t.Parallel()
	forbidden := []string{"/integrations", "/api", "/worker", "/internal/app", "/web", "/cmd"}
	for _, tc := range []struct {
		pkg string
		// thirdParty are the modules outside the standard library the package may import.
		thirdParty []string
	}{
		{"core", []string{"github.com/google/uuid", "golang.org/x/crypto", "golang.org/x/sys/cpu"}},
		{"store", nil}, // the store's drivers (pgx, gorm, go-redis) are its own business
	} {
		t.Run(tc.pkg, func(t *testing.T) {
			t.Parallel()
			for _, d := range deps(t, tc.pkg) {
				if strings.HasPrefix(d, module) {
					for _, f := range forbidden {
						if strings.HasPrefix(d, module+f) {
							t.Errorf("%s imports %s", tc.pkg, d)
						}
					}
					continue
				}
				if tc.thirdParty == nil || !strings.Contains(strings.SplitN(d, "/", 2)[0], ".") {
					continue // the standard library, or a package whose drivers are not listed
				}
				allowed := false
				for _, m := range tc.thirdParty {
					allowed = allowed || d == m || strings.HasPrefix(d, m+"/")
				}
				if !allowed {
					t.Errorf("%s imports %s, outside the standard library and %v", tc.pkg, d, tc.thirdParty)
				}
			}
		})
	}
}
