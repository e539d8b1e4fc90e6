// Package dbtest gives tests the real PostgreSQL and Redis of the machine: a database per test
// package cloned from a template that holds the migrated schema, and a Redis database index leased
// to one package at a time. Set TEST_DATABASE_URL and TEST_REDIS_ADDR to point elsewhere.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/migrations"
	"github.com/coupongate/coupongate/store"
)

// ServerURL is the PostgreSQL server the tests use (its postgres database).
func ServerURL() string {
	if v := os.Getenv("TEST_DATABASE_URL"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisAddr is the Redis server the tests use.
func RedisAddr() string {
	if v := os.Getenv("TEST_REDIS_ADDR"); v != "" {
		return v
	}
	return "127.0.0.1:6379"
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

// templateName names the template by a hash of the migrations, so a changed schema gets a new one.
func templateName() string {
	h := sha256.New()
	entries, _ := fs.ReadDir(migrations.FS, ".")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		b, _ := fs.ReadFile(migrations.FS, n)
		h.Write([]byte(n))
		h.Write(b)
	}
	return "cg_template_" + hex.EncodeToString(h.Sum(nil))[:12]
}

// NewDatabase creates a fresh database with the migrated schema and returns its URL and a
// function that drops it. Main calls it once for a package, and apptest once for each app it starts.
func NewDatabase(ctx context.Context) (string, func(), error) {
	admin, err := pgx.Connect(ctx, ServerURL())
	if err != nil {
		return "", nil, fmt.Errorf("dbtest: connect to %s: %w (is PostgreSQL running?)", ServerURL(), err)
	}
	defer admin.Close(ctx)
	// One process at a time builds the template or clones it.
	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return "", nil, err
	}
	defer admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(727274)")

	tmpl := templateName()
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return "", nil, err
	}
	if !exists {
		if err := buildTemplate(ctx, admin, tmpl); err != nil {
			return "", nil, err
		}
	}
	name := "cg_test_" + randomHex(6)
	if _, err := admin.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tmpl)); err != nil {
		return "", nil, fmt.Errorf("dbtest: clone template: %w", err)
	}
	dbURL := withDatabase(ServerURL(), name)
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, ServerURL())
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	}
	return dbURL, drop, nil
}

func buildTemplate(ctx context.Context, admin *pgx.Conn, tmpl string) error {
	// Databases other runs created (their templates, their test databases, a killed run's leftovers)
	// are never touched here: another suite may be using them. `make testdb-clean` drops the idle
	// ones when an operator asks.
	build := tmpl + "_build"
	_, _ = admin.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", build))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+build); err != nil {
		return fmt.Errorf("dbtest: create template: %w", err)
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := store.Migrate(ctx, withDatabase(ServerURL(), build), quiet); err != nil {
		return fmt.Errorf("dbtest: migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", build, tmpl)); err != nil {
		return err
	}
	_, err := admin.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s IS_TEMPLATE true", tmpl))
	return err
}

// Redis leases a Redis database index (1 to 15) for the calling test package, flushes it and
// returns a client on it; release gives the index back. Leases expire by themselves after an hour,
// so a killed test run does not hold one forever.
func Redis(ctx context.Context) (*redis.Client, int, func(), error) {
	ctl := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: 0})
	defer ctl.Close()
	if err := ctl.Ping(ctx).Err(); err != nil {
		return nil, 0, nil, fmt.Errorf("dbtest: redis at %s: %w (is Redis running?)", RedisAddr(), err)
	}
	token := randomHex(8)
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for db := 1; db <= 15; db++ {
			key := fmt.Sprintf("coupongate:test:lease:%d", db)
			ok, err := ctl.SetNX(ctx, key, token, time.Hour).Result()
			if err != nil {
				return nil, 0, nil, err
			}
			if !ok {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: db})
			if err := c.FlushDB(ctx).Err(); err != nil {
				return nil, 0, nil, err
			}
			release := func() {
				_ = c.Close()
				rel := redis.NewClient(&redis.Options{Addr: RedisAddr(), DB: 0})
				defer rel.Close()
				bg := context.Background()
				if v, _ := rel.Get(bg, key).Result(); v == token {
					rel.Del(bg, key)
				}
			}
			return c, db, release, nil
		}
	}
	return nil, 0, nil, fmt.Errorf("dbtest: no free Redis database index")
}

// Env is what a test package gets from Main: its database and Redis.
type Env struct {
	DatabaseURL string
	RedisDB     int
	Redis       *redis.Client
}

// RedisURL is the redis:// URL of the leased database.
func (e Env) RedisURL() string { return fmt.Sprintf("redis://%s/%d", RedisAddr(), e.RedisDB) }

// Main sets up the package's database and Redis, runs the tests and cleans up. Use it from TestMain:
//
//	var env dbtest.Env
//	func TestMain(m *testing.M) { dbtest.Main(m, &env) }
func Main(m *testing.M, env *Env) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	dbURL, drop, err := NewDatabase(ctx)
	if err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	client, db, release, err := Redis(ctx)
	cancel()
	if err != nil {
		drop()
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*env = Env{DatabaseURL: dbURL, RedisDB: db, Redis: client}
	code := m.Run()
	release()
	if os.Getenv("DBTEST_KEEP") == "" {
		drop()
	} else {
		fmt.Fprintln(os.Stderr, "dbtest: kept", dbURL)
	}
	os.Exit(code)
}

// Logger writes a test's logs to its output, shown only when the test fails or runs with -v. It
// logs from info up (per-request lines are debug); DBTEST_LOG=debug shows everything.
func Logger(t testing.TB) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("DBTEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
