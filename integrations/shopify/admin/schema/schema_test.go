package schema

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// TestOperationsValidate checks that the committed schema is a whole Admin
// schema the client's operations validate against, read from the repository
// alone.
func TestOperationsValidate(t *testing.T) {
	t.Parallel()
	s, err := gqlparser.LoadSchema(&ast.Source{Name: "admin-2025-01.graphql", Input: SDL})
	if err != nil {
		t.Fatalf("parse the committed schema: %v", err)
	}
	if s.Query == nil || s.Query.Name != "QueryRoot" || s.Mutation == nil || s.Mutation.Name != "Mutation" {
		t.Fatalf("schema roots: query %v, mutation %v; want QueryRoot and Mutation", s.Query, s.Mutation)
	}
	files, err := filepath.Glob(filepath.Join("..", "operations", "*.graphql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no operations found (%v)", err)
	}
	var all string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all += string(b) + "\n"
	}
	if _, errs := gqlparser.LoadQuery(s, all); errs != nil {
		t.Fatalf("operations do not validate against the committed schema: %v", errs)
	}
}
