package shopifyfake

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/validator"

	adminschema "github.com/coupongate/coupongate/integrations/shopify/admin/schema"
)

var schemaCache sync.Map // path → *schemaEntry

type schemaEntry struct {
	once   sync.Once
	schema *ast.Schema
	err    error
}

// loadSchema parses (once per path) the SDL at path, or the committed Admin
// schema (package schema) when path is empty.
func loadSchema(path string) (*ast.Schema, error) {
	v, _ := schemaCache.LoadOrStore(path, &schemaEntry{})
	e := v.(*schemaEntry)
	e.once.Do(func() {
		name, sdl := "admin-2025-01.graphql", adminschema.SDL
		if path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				e.err = fmt.Errorf("shopifyfake: read schema: %w", err)
				return
			}
			name, sdl = filepath.Base(path), string(b)
		}
		s, gerr := gqlparser.LoadSchema(&ast.Source{Name: name, Input: sdl})
		if gerr != nil {
			e.err = fmt.Errorf("shopifyfake: parse schema: %w", gerr)
			return
		}
		e.schema = s
	})
	return e.schema, e.err
}

// resolver computes a field's value from its coerced arguments. Objects are
// map[string]any whose values are plain values or resolvers; lists are []any.
type resolver func(args map[string]any) (any, error)

// gqlRequest is the body of a GraphQL POST.
type gqlRequest struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
}

// prepared is a validated operation with its coerced variables.
type prepared struct {
	doc  *ast.QueryDocument
	op   *ast.OperationDefinition
	vars map[string]any
}

// prepare parses and validates the request against the schema, as Shopify
// does before running anything.
func prepare(schema *ast.Schema, req gqlRequest) (*prepared, gqlerror.List) {
	doc, errs := gqlparser.LoadQuery(schema, req.Query)
	if len(errs) > 0 {
		return nil, errs
	}
	op := doc.Operations.ForName(req.OperationName)
	if op == nil {
		if req.OperationName != "" {
			return nil, gqlerror.List{gqlerror.Errorf("operation %q not found", req.OperationName)}
		}
		return nil, gqlerror.List{gqlerror.Errorf("an operation name is required when the document has several operations")}
	}
	var raw map[string]any
	if len(req.Variables) > 0 && string(req.Variables) != "null" {
		if err := json.Unmarshal(req.Variables, &raw); err != nil {
			return nil, gqlerror.List{gqlerror.Errorf("variables: %v", err)}
		}
	}
	vars, err := validator.VariableValues(schema, op, raw)
	if err != nil {
		if ge, ok := err.(*gqlerror.Error); ok {
			return nil, gqlerror.List{ge}
		}
		return nil, gqlerror.List{gqlerror.Errorf("%v", err)}
	}
	return &prepared{doc: doc, op: op, vars: vars}, nil
}

// queryCost estimates Shopify's requested cost: a mutation costs 10, an
// object 1, scalars and enums 0, and a connection 2 plus first (or last)
// times the cost of one of its nodes.
func queryCost(schema *ast.Schema, p *prepared) float64 {
	if p.op.Operation == ast.Mutation {
		return 10
	}
	return selectionCost(schema, p.op.SelectionSet, p.vars)
}

func selectionCost(schema *ast.Schema, set ast.SelectionSet, vars map[string]any) float64 {
	var total float64
	for _, f := range collectFields(set, "", vars) {
		if f.Definition == nil || f.Name == "__typename" {
			continue
		}
		def := schema.Types[f.Definition.Type.Name()]
		if def == nil || (def.Kind != ast.Object && def.Kind != ast.Interface && def.Kind != ast.Union) {
			continue
		}
		child := selectionCost(schema, f.SelectionSet, vars)
		if len(def.Name) > len("Connection") && def.Name[len(def.Name)-len("Connection"):] == "Connection" {
			args := f.ArgumentMap(vars)
			n := 0
			if v, ok := args["first"].(int64); ok {
				n = int(v)
			} else if v, ok := args["last"].(int64); ok {
				n = int(v)
			}
			// The connection object itself, its edges/nodes per item.
			total += 2 + float64(n)*max(child-1, 1)
			continue
		}
		total += 1 + child
	}
	return total
}

// collectFields flattens fragments; typeName selects which type conditions
// apply ("" accepts all).
func collectFields(set ast.SelectionSet, typeName string, vars map[string]any) []*ast.Field {
	var out []*ast.Field
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if skipped(s.Directives, vars) {
				continue
			}
			out = append(out, s)
		case *ast.InlineFragment:
			if skipped(s.Directives, vars) {
				continue
			}
			if typeName == "" || s.TypeCondition == "" || s.TypeCondition == typeName || s.ObjectDefinition == nil || s.ObjectDefinition.Kind != ast.Object {
				out = append(out, collectFields(s.SelectionSet, typeName, vars)...)
			}
		case *ast.FragmentSpread:
			if skipped(s.Directives, vars) || s.Definition == nil {
				continue
			}
			tc := s.Definition.TypeCondition
			if typeName == "" || tc == typeName || s.ObjectDefinition == nil || s.ObjectDefinition.Kind != ast.Object {
				out = append(out, collectFields(s.Definition.SelectionSet, typeName, vars)...)
			}
		}
	}
	return out
}

func skipped(dirs ast.DirectiveList, vars map[string]any) bool {
	if d := dirs.ForName("skip"); d != nil {
		if v, _ := d.ArgumentMap(vars)["if"].(bool); v {
			return true
		}
	}
	if d := dirs.ForName("include"); d != nil {
		if v, _ := d.ArgumentMap(vars)["if"].(bool); !v {
			return true
		}
	}
	return false
}

// execute projects the selection set over root, an object of resolvers.
func execute(p *prepared, root map[string]any) (map[string]any, gqlerror.List) {
	var errs gqlerror.List
	typeName := "QueryRoot"
	if p.op.Operation == ast.Mutation {
		typeName = "Mutation"
	}
	data := project(p, root, typeName, p.op.SelectionSet, ast.Path{}, &errs)
	return data, errs
}

func project(p *prepared, obj map[string]any, typeName string, set ast.SelectionSet, path ast.Path, errs *gqlerror.List) map[string]any {
	if t, ok := obj["__typename"].(string); ok {
		typeName = t
	}
	out := make(map[string]any)
	for _, f := range collectFields(set, typeName, p.vars) {
		key := f.Alias
		if key == "" {
			key = f.Name
		}
		fpath := append(append(ast.Path{}, path...), ast.PathName(key))
		if f.Name == "__typename" {
			out[key] = typeName
			continue
		}
		v, ok := obj[f.Name]
		if !ok {
			out[key] = nil
			continue
		}
		if r, ok := v.(resolver); ok {
			var err error
			v, err = r(f.ArgumentMap(p.vars))
			if err != nil {
				*errs = append(*errs, &gqlerror.Error{Message: err.Error(), Path: fpath})
				out[key] = nil
				continue
			}
		}
		out[key] = value(p, v, f, fpath, errs)
	}
	return out
}

func value(p *prepared, v any, f *ast.Field, path ast.Path, errs *gqlerror.List) any {
	switch x := v.(type) {
	case map[string]any:
		name := ""
		if f.Definition != nil {
			name = f.Definition.Type.Name()
		}
		return project(p, x, name, f.SelectionSet, path, errs)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = value(p, e, f, append(append(ast.Path{}, path...), ast.PathIndex(i)), errs)
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = value(p, e, f, append(append(ast.Path{}, path...), ast.PathIndex(i)), errs)
		}
		return out
	default:
		return v
	}
}
