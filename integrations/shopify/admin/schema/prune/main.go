// Command prune derives the Admin schema committed beside it from Shopify's
// full Admin SDL: every type, field, argument, enum value and directive is
// kept, so anything the full schema accepts the pruned one accepts too, but
// descriptions are kept only where genqlient prints them in generated.go (the
// types, fields and enum values the operations use, and the input types
// their variables reach). The full 2025-01 SDL is 2.5 MB, nine tenths of it
// prose.
//
// Run it from the repository root when moving to another API version, then
// `make generate`:
//
//	go run ./integrations/shopify/admin/schema/prune -full admin-2025-01.full.graphql \
//	    -out integrations/shopify/admin/schema/admin-2025-01.graphql
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"
)

func main() {
	full := flag.String("full", "", "Shopify's full Admin SDL")
	ops := flag.String("operations", "integrations/shopify/admin/operations", "directory of the client's .graphql operations")
	out := flag.String("out", "integrations/shopify/admin/schema/admin-2025-01.graphql", "where the pruned SDL is written")
	flag.Parse()
	if err := run(*full, *ops, *out); err != nil {
		fmt.Fprintln(os.Stderr, "prune:", err)
		os.Exit(1)
	}
}

// kept records the descriptions genqlient prints: type names, "Type.field"
// and "Enum.VALUE".
type kept map[string]bool

func run(fullPath, opsDir, outPath string) error {
	if fullPath == "" {
		return fmt.Errorf("-full is required")
	}
	raw, err := os.ReadFile(fullPath)
	if err != nil {
		return err
	}
	src := &ast.Source{Name: filepath.Base(fullPath), Input: string(raw)}
	schema, gerr := gqlparser.LoadSchema(src)
	if gerr != nil {
		return gerr
	}
	doc, perr := parser.ParseSchema(src)
	if perr != nil {
		return perr
	}

	files, err := filepath.Glob(filepath.Join(opsDir, "*.graphql"))
	if err != nil {
		return err
	}
	sort.Strings(files)
	var ops bytes.Buffer
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		ops.Write(b)
		ops.WriteString("\n")
	}
	query, qerr := gqlparser.LoadQuery(schema, ops.String())
	if qerr != nil {
		return qerr
	}

	k := kept{}
	for _, op := range query.Operations {
		for _, v := range op.VariableDefinitions {
			k.input(schema, v.Type.Name())
		}
		k.selections(schema, op.SelectionSet)
	}
	for _, fr := range query.Fragments {
		k.selections(schema, fr.SelectionSet)
	}

	strip(doc, k)
	var buf bytes.Buffer
	buf.WriteString("# Shopify Admin GraphQL API 2025-01, pruned by ./prune from Shopify's full SDL:\n")
	buf.WriteString("# every definition is kept; descriptions only where genqlient prints them.\n\n")
	formatter.NewFormatter(&buf, formatter.WithIndent("  ")).FormatSchemaDocument(doc)
	return os.WriteFile(outPath, buf.Bytes(), 0o644)
}

// selections marks the types and fields a selection set reads.
func (k kept) selections(schema *ast.Schema, set ast.SelectionSet) {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.ObjectDefinition == nil || s.Definition == nil {
				continue
			}
			parent := s.ObjectDefinition
			k.output(schema, parent.Name)
			k[parent.Name+"."+s.Name] = true
			for _, impl := range schema.GetPossibleTypes(parent) {
				k.output(schema, impl.Name)
				k[impl.Name+"."+s.Name] = true
			}
			k.output(schema, s.Definition.Type.Name())
			k.selections(schema, s.SelectionSet)
		case *ast.InlineFragment:
			if s.ObjectDefinition != nil {
				k.output(schema, s.ObjectDefinition.Name)
			}
			k.selections(schema, s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				k.output(schema, s.Definition.TypeCondition)
			}
		}
	}
}

// output marks a selected type; an enum keeps its values, an abstract type
// the types it may be.
func (k kept) output(schema *ast.Schema, name string) {
	if k[name] {
		return
	}
	k[name] = true
	def := schema.Types[name]
	if def == nil {
		return
	}
	switch def.Kind {
	case ast.Enum:
		for _, v := range def.EnumValues {
			k[name+"."+v.Name] = true
		}
	case ast.Interface, ast.Union:
		for _, impl := range schema.GetPossibleTypes(def) {
			k.output(schema, impl.Name)
		}
	}
}

// input marks a variable's type and everything it reaches.
func (k kept) input(schema *ast.Schema, name string) {
	if k[name] {
		return
	}
	k[name] = true
	def := schema.Types[name]
	if def == nil {
		return
	}
	switch def.Kind {
	case ast.Enum:
		for _, v := range def.EnumValues {
			k[name+"."+v.Name] = true
		}
	case ast.InputObject:
		for _, f := range def.Fields {
			k[name+"."+f.Name] = true
			k.input(schema, f.Type.Name())
		}
	}
}

// strip drops every description k does not keep.
func strip(doc *ast.SchemaDocument, k kept) {
	defs := append(append(ast.DefinitionList{}, doc.Definitions...), doc.Extensions...)
	for _, d := range defs {
		if !k[d.Name] {
			d.Description = ""
		}
		for _, f := range d.Fields {
			if !k[d.Name+"."+f.Name] {
				f.Description = ""
			}
			for _, a := range f.Arguments {
				a.Description = ""
			}
		}
		for _, v := range d.EnumValues {
			if !k[d.Name+"."+v.Name] {
				v.Description = ""
			}
		}
	}
	for _, d := range doc.Directives {
		d.Description = ""
		for _, a := range d.Arguments {
			a.Description = ""
		}
	}
	for _, s := range doc.Schema {
		s.Description = ""
	}
}
