package admin

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/Khan/genqlient/generate"
)

// TestGeneratedIsCurrent fails when generated.go differs from what genqlient
// makes of genqlient.yaml, the operations and the schema today: run
// `make generate` and commit the result.
func TestGeneratedIsCurrent(t *testing.T) {
	t.Parallel()
	cfg, err := generate.ReadAndValidateConfig("genqlient.yaml")
	if err != nil {
		t.Fatalf("genqlient config: %v", err)
	}
	files, err := generate.Generate(cfg)
	if err != nil {
		t.Fatalf("genqlient: %v", err)
	}
	var got []byte
	for name, content := range files {
		if filepath.Base(name) == "generated.go" {
			got = content
		}
	}
	if got == nil {
		t.Fatalf("genqlient did not produce generated.go (got %d files)", len(files))
	}
	current := readFile(t, "generated.go")
	if !bytes.Equal(got, current) {
		t.Fatalf("generated.go is stale: run `make generate` (want %d bytes, have %d)", len(got), len(current))
	}
}
