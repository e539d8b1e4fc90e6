package shopify_test

import (
	"os"
	"path/filepath"
	"testing"
)

// fixtureDir holds real Shopify order bodies (see its README.md).
const fixtureDir = "testdata/orders"

// readFixtures returns every fixture body by file name; it fails the test when the directory is
// missing or empty, since these bodies are what the parser is tested against.
func readFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Shopify fixtures in %s: %v", fixtureDir, err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}
