// Every statement that locks or changes rows of a distributed table names its merchant, so that on
// Citus it runs on the one node holding that merchant's shard instead of locking across the
// cluster. This file finds such statements in the store's Go source (SQL string literals, joined
// where they are concatenated, and gorm chains that update, delete or lock) and in the bodies of
// the schema's SQL functions (from pg_proc of the migrated database), and fails on one that does
// not filter by merchant_id unless it is listed in crossMerchant with how it behaves on Citus.
package migrations_test

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// crossMerchant lists the statements that lock or change rows of distributed tables without
// naming a merchant, by where they are (a store file or a SQL function) and a piece of their
// text. Each is a sweeper or a look-up that cannot know the merchant; the reason says how it
// behaves on a distributed schema (README "Scaling out with Citus" repeats them).
var crossMerchant = []struct{ where, text, reason string }{
	{"store/stocksweep.go", "UPDATE code_lists SET expired_event_at = $2",
		"the sweeper's list expiry (RecordExpirations, once a minute) marks every merchant's newly expired lists: " +
			"on Citus one multi-shard UPDATE in a distributed transaction, its RETURNING rows inserted into domain_events " +
			"by merchant_id; the guard (expired_event_at IS NULL) keeps two sweepers from recording an expiry twice"},
	{"store/imports.go", "UPDATE imports SET status = 'failed'",
		"the sweeper's stale imports (FailStaleImports, once a minute) fail uploads and imports past their deadline in any " +
			"merchant: on Citus one multi-shard UPDATE; the chunks and events of the failed imports follow by merchant_id"},
}

// lockingStatement finds what makes a statement lock or change rows: UPDATE and DELETE statements
// and the row-locking clauses of SELECT. An upsert's DO UPDATE is left out: it locks the row of
// a unique key, which TestCitusUniqueKeysHoldTheDistributionColumn already makes hold merchant_id.
var (
	lockingStatement = regexp.MustCompile(`(?i)\bFOR\s+(NO\s+KEY\s+)?UPDATE\b|\bFOR\s+(KEY\s+)?SHARE\b|\bUPDATE\s+(ONLY\s+)?[a-z_][a-z0-9_]*(\s+(AS\s+)?[a-z_][a-z0-9_]*)?\s+SET\b|\bDELETE\s+FROM\b`)
	targetTables     = regexp.MustCompile(`(?i)\b(?:UPDATE\s+(?:ONLY\s+)?|DELETE\s+FROM\s+|FROM\s+|JOIN\s+)([a-z_][a-z0-9_]*)`)
	dollarTag        = regexp.MustCompile(`^\$[a-zA-Z_]*\$`)
	spaces           = regexp.MustCompile(`\s+`)
	// filtersMerchant finds merchant_id in a condition: compared (= , <>, IN, = ANY), on the
	// right of a comparison, in a compared tuple, or in a join's USING list.
	filtersMerchant = regexp.MustCompile(`(?i)\bmerchant_id\s*(=|<>|\bIN\b|\bIS\s+NOT\s+DISTINCT\b)|(=|<>|\bIN)\s*\(?\s*[a-z_]*\.?merchant_id\b|\bmerchant_id\b[^()]*\)\s*(=|\bIN\b)|\bUSING\s*\([^)]*\bmerchant_id\b`)
	filtersID       = regexp.MustCompile(`(?i)\bid\s*(=|IN\b)`)
)

// statement is one SQL statement that locks rows, and where it was found.
type statement struct{ where, text string }

// lockingStatements splits SQL text into statements and keeps those that lock or change rows.
func lockingStatements(where, sql string) []statement {
	var out []statement
	for _, s := range splitStatements(sql) {
		s = strings.TrimSpace(spaces.ReplaceAllString(s, " "))
		if lockingStatement.MatchString(s) {
			out = append(out, statement{where: where, text: s})
		}
	}
	return out
}

// splitStatements cuts SQL at the semicolons outside quotes ('…', "…" and dollar quotes such as
// EXECUTE format($q$…$q$)), dropping comments.
func splitStatements(sql string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			i += end - 1
			cur.WriteByte(' ')
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				end = len(sql) - i - 2
			}
			i += end + 3
			cur.WriteByte(' ')
		case c == '\'' || c == '"':
			end := strings.IndexByte(sql[i+1:], c)
			if end < 0 {
				// An unclosed quote (an apostrophe in a Go message such as "the schema's
				// version") runs to the end of the text.
				end = len(sql) - i - 2
			}
			cur.WriteString(sql[i : i+end+2])
			i += end + 1
		case c == '$' && dollarTag.MatchString(sql[i:]):
			tag := dollarTag.FindString(sql[i:])
			// A dollar-quoted body is SQL too (EXECUTE of a format string): keep its text, but
			// its semicolons do not end the outer statement.
			end := strings.Index(sql[i+len(tag):], tag)
			if end < 0 {
				end = len(sql) - i - len(tag)
			}
			body := sql[i+len(tag) : i+len(tag)+end]
			cur.WriteString(strings.ReplaceAll(body, ";", " "))
			i += len(tag) + end + len(tag) - 1
		case c == ';':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(out, cur.String())
}

// problem says why a locking statement is not bound to one merchant, or "" when it is.
func problem(st statement, tables map[string]table) string {
	if strings.HasPrefix(st.text, "gorm:") {
		if filtersMerchant.MatchString(st.text) {
			return ""
		}
		return "a gorm chain updates, deletes or locks rows without a merchant_id condition"
	}
	var distributed []string
	for _, seg := range lockSegments(st.text) {
		if filtersMerchant.MatchString(seg) {
			continue
		}
		for _, m := range targetTables.FindAllStringSubmatch(seg, -1) {
			name := strings.ToLower(m[1])
			tb, ok := tables[name]
			if !ok {
				continue // a CTE, a function or a set-returning call, not a table
			}
			if name == merchantsTable && filtersID.MatchString(seg) {
				continue // merchants is distributed by id
			}
			if distColumn(tb) != "" && !slices.Contains(distributed, name) {
				distributed = append(distributed, name)
			}
		}
	}
	if len(distributed) == 0 {
		return ""
	}
	return fmt.Sprintf("locks or changes rows of %s without filtering by merchant_id", strings.Join(distributed, ", "))
}

// lockSegments cuts a statement into the parts each lock governs: an UPDATE or DELETE runs from
// its keyword to the next lock (a CTE may hold several), a SELECT's FOR UPDATE or FOR SHARE
// governs the text before it, back to the previous lock.
func lockSegments(sql string) []string {
	locs := lockingStatement.FindAllStringIndex(sql, -1)
	var out []string
	for i, loc := range locs {
		if strings.HasPrefix(strings.ToUpper(sql[loc[0]:]), "FOR ") {
			start := 0
			if i > 0 {
				start = locs[i-1][1]
			}
			out = append(out, sql[start:loc[1]])
			continue
		}
		end := len(sql)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		out = append(out, sql[loc[0]:end])
	}
	return out
}

// goStatements reads the store's Go files and returns the locking statements their SQL strings
// and gorm chains make.
func goStatements(t *testing.T) []statement {
	t.Helper()
	files, err := filepath.Glob("../store/*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var parsed []*ast.File
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		parsed = append(parsed, f)
	}
	if len(parsed) < 10 {
		t.Fatalf("read only %d Go files of the store", len(parsed))
	}
	consts := stringConsts(parsed)
	var out []statement
	for _, f := range parsed {
		name := "store/" + filepath.Base(fset.Position(f.Pos()).Filename)
		receivers := map[*ast.CallExpr]bool{}
		ast.Inspect(f, func(n ast.Node) bool {
			if call, ok := n.(*ast.CallExpr); ok {
				if sel, ok := call.Fun.(*ast.SelectorExpr); ok {
					if inner, ok := sel.X.(*ast.CallExpr); ok {
						receivers[inner] = true
					}
				}
			}
			return true
		})
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.BinaryExpr:
				if n.Op == token.ADD {
					if text, ok := joinedString(n, consts); ok {
						where := fmt.Sprintf("%s:%d", name, fset.Position(n.Pos()).Line)
						out = append(out, lockingStatements(where, text)...)
						return false
					}
				}
			case *ast.BasicLit:
				if text, ok := stringValue(n); ok {
					out = append(out, lockingStatements(fmt.Sprintf("%s:%d", name, fset.Position(n.Pos()).Line), text)...)
				}
			case *ast.CallExpr:
				if !receivers[n] {
					if st, ok := gormChain(n, consts); ok {
						st.where = fmt.Sprintf("%s:%d", name, fset.Position(n.Pos()).Line)
						out = append(out, st)
					}
				}
			}
			return true
		})
	}
	return out
}

func stringValue(lit *ast.BasicLit) (string, bool) {
	if lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// joinedString joins a concatenation that holds string literals or the package's string
// constants, standing " ? " for its other operands (a value built at run time).
func joinedString(e ast.Expr, consts map[string]string) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		return stringValue(e)
	case *ast.Ident:
		if v, ok := consts[e.Name]; ok {
			return v, true
		}
	case *ast.ParenExpr:
		return joinedString(e.X, consts)
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return " ? ", false
		}
		l, lok := joinedString(e.X, consts)
		r, rok := joinedString(e.Y, consts)
		return l + r, lok || rok
	}
	return " ? ", false
}

// stringConsts reads the package-level string constants and variables of files whose value is
// made of literals and other such constants (column lists, shared queries).
func stringConsts(files []*ast.File) map[string]string {
	consts := map[string]string{}
	for changed := true; changed; {
		changed = false
		for _, f := range files {
			for _, decl := range f.Decls {
				gen, ok := decl.(*ast.GenDecl)
				if !ok || (gen.Tok != token.CONST && gen.Tok != token.VAR) {
					continue
				}
				for _, spec := range gen.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i >= len(vs.Values) {
							continue
						}
						if _, done := consts[name.Name]; done {
							continue
						}
						if v, ok := joinedString(vs.Values[i], consts); ok && !strings.Contains(v, " ? ") {
							consts[name.Name], changed = v, true
						}
					}
				}
			}
		}
	}
	return consts
}

// gormMutations are the gorm methods that change rows.
var gormMutations = map[string]bool{"Update": true, "Updates": true, "UpdateColumn": true, "UpdateColumns": true, "Delete": true}

// gormChain turns a gorm call chain that updates, deletes or locks (clause.Locking) into a
// statement whose text is its conditions, or reports false when the chain does none of these.
func gormChain(call *ast.CallExpr, consts map[string]string) (statement, bool) {
	var locks bool
	var conditions []string
	for e := ast.Expr(call); ; {
		c, ok := e.(*ast.CallExpr)
		if !ok {
			break
		}
		sel, ok := c.Fun.(*ast.SelectorExpr)
		if !ok {
			break
		}
		if gormMutations[sel.Sel.Name] {
			locks = true
		}
		for _, arg := range c.Args {
			if lit, ok := arg.(*ast.CompositeLit); ok {
				if typ, ok := lit.Type.(*ast.SelectorExpr); ok && typ.Sel.Name == "Locking" {
					locks = true
				}
			}
			if s, ok := joinedString(arg, consts); ok {
				conditions = append(conditions, s)
			}
		}
		e = sel.X
	}
	if !locks {
		return statement{}, false
	}
	return statement{text: "gorm: " + strings.Join(conditions, " AND ")}, true
}

// functionStatements reads the bodies of the schema's SQL and PL/pgSQL functions.
func functionStatements(t *testing.T) []statement {
	t.Helper()
	conn := connect(t)
	rows, err := conn.Query(context.Background(), `
		SELECT p.proname, p.prosrc
		FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
		WHERE p.pronamespace = 'public'::regnamespace AND l.lanname IN ('sql', 'plpgsql')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []statement
	read := map[string]bool{}
	for rows.Next() {
		var name, body string
		if err := rows.Scan(&name, &body); err != nil {
			t.Fatal(err)
		}
		read[name] = true
		out = append(out, lockingStatements("function "+name, body)...)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	// The function that still writes rows (the trigger that counts a job's deliveries) must be
	// among those read.
	if !read["cg_count_job_deliveries"] {
		t.Fatalf("the scan read the functions %v, not cg_count_job_deliveries", read)
	}
	return out
}

// TestCitusLockingStatementsNameTheMerchant: every statement of the store and of the SQL
// functions that locks or changes rows of a distributed table filters by merchant_id, or is a
// listed cross-merchant statement.
func TestCitusLockingStatementsNameTheMerchant(t *testing.T) {
	t.Parallel()
	tables := loadTables(t, connect(t))
	all := append(goStatements(t), functionStatements(t)...)
	if len(all) < 20 {
		t.Fatalf("found only %d locking statements: is the scan reading the sources?", len(all))
	}
	if os.Getenv("CITUS_SCAN_LIST") != "" { // lists what the scan read, for whoever changes it
		for _, st := range all {
			t.Logf("%s: %s", st.where, st.text)
		}
	}
	used := make([]bool, len(crossMerchant))
	var bad []string
	for _, st := range all {
		why := problem(st, tables)
		if why == "" {
			continue
		}
		listed := false
		for i, c := range crossMerchant {
			if strings.HasPrefix(st.where, c.where) && strings.Contains(st.text, c.text) {
				used[i], listed = true, true
			}
		}
		if !listed {
			bad = append(bad, fmt.Sprintf("%s: %s:\n\t%s", st.where, why, st.text))
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	for i, c := range crossMerchant {
		if !used[i] {
			t.Errorf("crossMerchant lists %q in %s, which no statement matches any more: remove it", c.text, c.where)
		}
	}
}

// TestCitusLockScanFindsWhatItMust: the scan itself catches a statement without its merchant and
// passes one with it, in each form it reads.
func TestCitusLockScanFindsWhatItMust(t *testing.T) {
	t.Parallel()
	tables := map[string]table{
		"codes":       {name: "codes", columns: map[int16]string{1: "merchant_id", 2: "id"}},
		"merchants":   {name: "merchants", columns: map[int16]string{1: "id"}},
		"shop_routes": {name: "shop_routes", columns: map[int16]string{1: "merchant_id", 2: "shop"}},
	}
	for _, tc := range []struct {
		sql  string
		want bool // a problem
	}{
		{"UPDATE codes SET state = 'x' WHERE id = $1", true},
		{"UPDATE codes c SET state = 'x' WHERE c.merchant_id = $1 AND c.id = $2", false},
		{"DELETE FROM codes WHERE expires_at < now()", true},
		{"SELECT id FROM codes WHERE id = $1 FOR UPDATE SKIP LOCKED", true},
		{"SELECT id FROM codes WHERE merchant_id = $1 AND id = $2 FOR NO KEY UPDATE", false},
		{"SELECT 1 FROM codes c JOIN shop_routes r ON true WHERE c.id = $1 FOR SHARE", true},
		{"UPDATE merchants SET name = $2 WHERE id = $1", false},
		{"UPDATE merchants SET name = $2", true},
		{"DELETE FROM shop_routes WHERE shop = $1", false},
		{"INSERT INTO codes (merchant_id, id) VALUES ($1, $2) ON CONFLICT (merchant_id, id) DO UPDATE SET id = excluded.id", false},
		{"-- UPDATE codes SET x = 1 WHERE id = 1\nSELECT 1", false},
		{"read the schema's version: %w", false},
		{"UPDATE codes SET state = 'x WHERE id = $1", true},
	} {
		sts := lockingStatements("case", tc.sql)
		got := false
		for _, st := range sts {
			if problem(st, tables) != "" {
				got = true
			}
		}
		if got != tc.want {
			t.Errorf("%q: problem %v, want %v", tc.sql, got, tc.want)
		}
	}
	src := `package p
func f() {
	tx.Model(&x{}).Where("id = ?", id).Updates(m)
	tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&r, "merchant_id = ? AND id = ?", m, id)
	q := "SELECT id FROM codes WHERE " + cond + " AND id = $1 FOR UPDATE"
}`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.ExprStmt:
			if call, ok := n.X.(*ast.CallExpr); ok {
				if st, ok := gormChain(call, nil); ok {
					found = append(found, problem(st, tables))
				}
			}
		case *ast.BinaryExpr:
			if text, ok := joinedString(n, nil); ok {
				for _, st := range lockingStatements("case", text) {
					found = append(found, problem(st, tables))
				}
				return false
			}
		}
		return true
	})
	if len(found) != 3 || found[0] == "" || found[1] != "" || found[2] == "" {
		t.Errorf("gorm chains and a concatenation: problems %q, want one for the first chain, none for the second, one for the concatenation", found)
	}
}
