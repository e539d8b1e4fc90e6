// The schema stays ready for Citus: this file reads the migrated schema from pg_catalog and checks
// the rules Citus puts on a schema distributed by merchant (every unique key of a distributed table
// holds the distribution column, foreign keys between distributed tables join on it, and none goes
// from a reference table to a distributed one). README "Scaling out with Citus" gives the plan the
// test follows; citus_locks_test.go checks the statements that lock rows.
package migrations_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/internal/dbtest"
)

// databaseURL is the package's test database: a clone of the migrated template.
var databaseURL string

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	url, drop, err := dbtest.NewDatabase(ctx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	databaseURL = url
	code := m.Run()
	drop()
	os.Exit(code)
}

// The distribution plan. Every table of the schema is in exactly one of these: a table with a
// merchant_id column is distributed by it unless it is listed as a reference table here;
// merchants is distributed by its id, co-located with the others; the rest stay on the coordinator.
var (
	// merchantsTable is distributed by its primary key, co-located with the tenant tables, so
	// their foreign keys to it join on the distribution column.
	merchantsTable = "merchants"

	// referenceTables carry merchant_id but are read by another key, before the merchant is
	// known; Citus copies them whole to every node (create_reference_table).
	referenceTables = map[string]string{
		"shop_routes":       "Shopify and WooCommerce webhooks and installs name a shop domain, not a merchant: the route finds the merchant",
		"connection_routes": "WooCommerce deliveries arrive at /webhooks/woocommerce/{connection} and name no merchant",
		"dashboard_logins":  "sign-in names an email address, not a merchant: the row finds the merchant and user",
	}

	// coordinatorTables have no merchant_id and belong to no merchant: they stay local to the
	// coordinator, where the gateway and worker connect.
	coordinatorTables = map[string]string{
		"goose_db_version": "the migration runner's bookkeeping",
		"system_secrets":   "the generated APP_SECRET and similar process-wide secrets, read at start",
	}

	// uniqueExceptions are unique keys of distributed tables that do not hold the distribution
	// column yet. Each must be resolved before the table is distributed; the reason says how.
	uniqueExceptions = map[string]string{
		"redeem_links_slug_key": "public redeem pages (/r/{slug}) find a link by its slug alone, unique across merchants; " +
			"before distributing redeem_links the slug moves to a reference route table (slug → merchant, link), as shop_routes does for shops",
	}

	// foreignKeyExceptions are foreign keys Citus does not accept as they are; the reason says
	// what replaces each.
	foreignKeyExceptions = map[string]string{
		"dashboard_logins_merchant_id_user_id_fkey": "a reference table (dashboard_logins) may not reference a distributed one (dashboard_users); " +
			"drop it when distributing, and have removing a user or a merchant delete its login row in the same transaction",
	}
)

// table is one table of the migrated schema with the columns the rules look at.
type table struct {
	name    string
	columns map[int16]string // attnum → name
}

func (t table) has(col string) bool {
	for _, c := range t.columns {
		if c == col {
			return true
		}
	}
	return false
}

// distColumn is the column a table is distributed by, or "" when it is not distributed.
func distColumn(t table) string {
	switch {
	case t.name == merchantsTable:
		return "id"
	case referenceTables[t.name] != "" || coordinatorTables[t.name] != "":
		return ""
	case t.has("merchant_id"):
		return "merchant_id"
	}
	return ""
}

// kind names how a table is placed under Citus.
func kind(t table) string {
	switch {
	case distColumn(t) != "":
		return "distributed"
	case referenceTables[t.name] != "":
		return "reference"
	default:
		return "coordinator"
	}
}

func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// loadTables reads the ordinary and partitioned tables of the public schema with their columns.
func loadTables(t *testing.T, conn *pgx.Conn) map[string]table {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
		SELECT c.relname, a.attnum, a.attname
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`)
	if err != nil {
		t.Fatal(err)
	}
	tables := map[string]table{}
	for rows.Next() {
		var name, col string
		var num int16
		if err := rows.Scan(&name, &num, &col); err != nil {
			t.Fatal(err)
		}
		tb, ok := tables[name]
		if !ok {
			tb = table{name: name, columns: map[int16]string{}}
			tables[name] = tb
		}
		tb.columns[num] = col
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("found only %d tables in the migrated schema: is the test database migrated?", len(tables))
	}
	return tables
}

// TestCitusPlanCoversEveryTable: every table is placed, and the lists name only tables that exist
// and are what they say (reference tables carry merchant_id, coordinator tables do not).
func TestCitusPlanCoversEveryTable(t *testing.T) {
	t.Parallel()
	tables := loadTables(t, connect(t))
	for name, tb := range tables {
		if !tb.has("merchant_id") && name != merchantsTable && coordinatorTables[name] == "" {
			t.Errorf("table %s has no merchant_id and is not placed: add merchant_id (a tenant table), or list it in coordinatorTables with the reason", name)
		}
	}
	for name := range referenceTables {
		if tb, ok := tables[name]; !ok {
			t.Errorf("referenceTables lists %s, which the schema no longer has", name)
		} else if !tb.has("merchant_id") {
			t.Errorf("referenceTables lists %s, which has no merchant_id", name)
		}
	}
	for name := range coordinatorTables {
		if tb, ok := tables[name]; !ok {
			t.Errorf("coordinatorTables lists %s, which the schema no longer has", name)
		} else if tb.has("merchant_id") {
			t.Errorf("coordinatorTables lists %s, which has merchant_id: distribute it, or list it as a reference table", name)
		}
	}
	if m, ok := tables[merchantsTable]; !ok || !m.has("id") {
		t.Errorf("merchants(id) is missing: the plan distributes merchants by id")
	}
}

// TestCitusUniqueKeysHoldTheDistributionColumn: Citus enforces a primary key or unique index of a
// distributed table only within a shard, so it refuses one without the distribution column.
func TestCitusUniqueKeysHoldTheDistributionColumn(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	tables := loadTables(t, conn)
	rows, err := conn.Query(context.Background(), `
		SELECT c.relname, i.indexrelid::regclass::text, i.indkey::int2[], pg_get_indexdef(i.indexrelid)
		FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND i.indisunique AND c.relkind IN ('r', 'p')`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var checked int
	for rows.Next() {
		var rel, index, def string
		var keys []int16
		if err := rows.Scan(&rel, &index, &keys, &def); err != nil {
			t.Fatal(err)
		}
		tb, ok := tables[rel]
		if !ok {
			continue // a partition: its parent carries the rule
		}
		col := distColumn(tb)
		if col == "" {
			continue
		}
		checked++
		holds := slices.ContainsFunc(keys, func(k int16) bool { return tb.columns[k] == col })
		switch {
		case holds && uniqueExceptions[index] != "":
			t.Errorf("%s now holds %s: remove it from uniqueExceptions", index, col)
		case !holds && uniqueExceptions[index] == "":
			t.Errorf("unique key %s of distributed table %s does not hold %s (Citus refuses it): %s", index, rel, col, def)
		}
		seen[index] = true
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for index := range uniqueExceptions {
		if !seen[index] {
			t.Errorf("uniqueExceptions lists %s, which the schema no longer has", index)
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d unique keys of distributed tables", checked)
	}
}

// TestCitusForeignKeysJoinOnTheDistributionColumn: a foreign key between distributed tables must
// pair their distribution columns (so both rows live on one node); distributed to reference is
// fine; reference to distributed, and anything to or from a coordinator table, Citus refuses.
func TestCitusForeignKeysJoinOnTheDistributionColumn(t *testing.T) {
	t.Parallel()
	conn := connect(t)
	tables := loadTables(t, conn)
	rows, err := conn.Query(context.Background(), `
		SELECT con.conname, src.relname, dst.relname, con.conkey, con.confkey, pg_get_constraintdef(con.oid)
		FROM pg_constraint con
		JOIN pg_class src ON src.oid = con.conrelid
		JOIN pg_class dst ON dst.oid = con.confrelid
		WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace AND con.conparentid = 0`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	var checked int
	for rows.Next() {
		var name, srcName, dstName, def string
		var srcKeys, dstKeys []int16
		if err := rows.Scan(&name, &srcName, &dstName, &srcKeys, &dstKeys, &def); err != nil {
			t.Fatal(err)
		}
		seen[name] = true
		checked++
		src, dst := tables[srcName], tables[dstName]
		var problem string
		switch sk, dk := kind(src), kind(dst); {
		case sk == "distributed" && dk == "distributed":
			paired := false
			for i := range srcKeys {
				if i < len(dstKeys) && src.columns[srcKeys[i]] == distColumn(src) && dst.columns[dstKeys[i]] == distColumn(dst) {
					paired = true
				}
			}
			if !paired {
				problem = fmt.Sprintf("joins distributed tables without pairing %s.%s with %s.%s", srcName, distColumn(src), dstName, distColumn(dst))
			}
		case sk == "distributed" && dk == "reference", sk == "reference" && dk == "reference":
		default:
			problem = fmt.Sprintf("goes from a %s table to a %s table, which Citus refuses", sk, dk)
		}
		switch {
		case problem == "" && foreignKeyExceptions[name] != "":
			t.Errorf("foreign key %s is fine now: remove it from foreignKeyExceptions", name)
		case problem != "" && foreignKeyExceptions[name] == "":
			t.Errorf("foreign key %s on %s %s: %s", name, srcName, problem, def)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for name := range foreignKeyExceptions {
		if !seen[name] {
			t.Errorf("foreignKeyExceptions lists %s, which the schema no longer has", name)
		}
	}
	if checked == 0 {
		t.Fatal("found no foreign keys")
	}
}

// TestCitusPlanInREADME: the README's plan names every table with the call this file places it
// by, so the document and the schema move together.
func TestCitusPlanInREADME(t *testing.T) {
	t.Parallel()
	tables := loadTables(t, connect(t))
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	names := make([]string, 0, len(tables))
	for name := range tables {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		tb := tables[name]
		var want string
		switch kind(tb) {
		case "distributed":
			want = fmt.Sprintf("create_distributed_table('%s', '%s'", name, distColumn(tb))
		case "reference":
			want = fmt.Sprintf("create_reference_table('%s')", name)
		default:
			want = "`" + name + "`"
		}
		if !strings.Contains(doc, want) {
			t.Errorf("README's Citus plan lacks %s", want)
		}
	}
}
