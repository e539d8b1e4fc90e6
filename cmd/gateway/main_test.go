package main

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/migrations"
	"github.com/coupongate/coupongate/store"
)

var env dbtest.Env

// TestMain runs the gateway's own main instead of the tests when GATEWAY_TEST_MAIN is set: the
// tests start the test binary so, to see the process's exit code and log.
func TestMain(m *testing.M) {
	if os.Getenv("GATEWAY_TEST_MAIN") != "" {
		main()
		return
	}
	dbtest.Main(m, &env)
}

// dialOnListening tries, the moment "gateway listening" is logged and before the gateway goes
// on, to connect to the address the line names.
type dialOnListening struct {
	slog.Handler
	mu     sync.Mutex
	logged bool
	addr   string
	err    error
}

func (h *dialOnListening) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "gateway listening" {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.logged = true
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "addr" {
				h.addr = a.Value.String()
			}
			return true
		})
		conn, err := net.DialTimeout("tcp", h.addr, 2*time.Second)
		if err == nil {
			conn.Close()
		}
		h.err = err
	}
	return h.Handler.Handle(ctx, r)
}

func (h *dialOnListening) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *dialOnListening) WithGroup(string) slog.Handler      { return h }

func TestListeningIsLoggedOnceThePortIsBound(t *testing.T) {
	t.Parallel()
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = env.DatabaseURL
	cfg.RedisURL = env.RedisURL()
	cfg.HTTPAddr = "127.0.0.1:0" // the system picks the port: the log must name it
	cfg.DBMaxConns = 4
	cfg.ShutdownTimeout = 5 * time.Second
	h := &dialOnListening{Handler: dbtest.Logger(t).Handler()}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, slog.New(h)) }()

	deadline := time.After(60 * time.Second)
	for {
		h.mu.Lock()
		logged := h.logged
		h.mu.Unlock()
		if logged {
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("the gateway stopped before logging that it listens: %v", err)
		case <-deadline:
			cancel()
			t.Fatal("the gateway never logged that it listens")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("the gateway stopped with an error: %v", err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		t.Fatalf("\"gateway listening\" was logged with addr %q, which takes no connection yet: %v", h.addr, h.err)
	}
}

// TestRefusesASchemaBehind starts the gateway as a process on a database one migration behind its
// build: it exits 1 with one error line saying to run couponctl migrate and naming both versions,
// and listens nowhere. Once the database is migrated the same gateway starts, and stops cleanly
// on SIGTERM.
func TestRefusesASchemaBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL, drop, err := dbtest.NewDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	latest, err := store.LatestMigration()
	if err != nil {
		t.Fatal(err)
	}
	pgCfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	sqlDB := stdlib.OpenDB(*pgCfg)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.DownTo(ctx, latest-1); err != nil {
		t.Fatal(err)
	}

	// start runs the gateway; lines receives its log, one JSON record each.
	start := func() (*exec.Cmd, chan map[string]any) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "GATEWAY_TEST_MAIN=1", "DATABASE_URL="+dbURL, "REDIS_URL="+env.RedisURL(),
			"HTTP_ADDR=127.0.0.1:0", "METRICS_ADDR=off", "LOG_FORMAT=json", "LOG_LEVEL=info", "DB_MAX_CONNS=4")
		out, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill() })
		lines := make(chan map[string]any, 100)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var rec map[string]any
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					rec = map[string]any{"level": "NOT JSON", "msg": sc.Text()}
				}
				lines <- rec
			}
		}()
		return cmd, lines
	}

	cmd, lines := start()
	var errorLines []map[string]any
	for rec := range lines {
		if rec["msg"] == "gateway listening" {
			t.Fatalf("the gateway listens on a schema one migration behind: %v", rec)
		}
		if rec["level"] != "INFO" && rec["level"] != "WARN" {
			errorLines = append(errorLines, rec)
		}
	}
	if err := cmd.Wait(); cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("the gateway on a schema behind ended with %v, want exit code 1", err)
	}
	want := "gateway not started: the database schema is at migration " + itoa(latest-1) + " and this build needs " + itoa(latest) + "; run `couponctl migrate`"
	if len(errorLines) != 1 || errorLines[0]["level"] != "ERROR" || errorLines[0]["msg"] != want ||
		errorLines[0]["schema_version"] != float64(latest-1) || errorLines[0]["latest_migration"] != float64(latest) {
		t.Fatalf("error lines %v, want one: %q with schema_version %d and latest_migration %d", errorLines, want, latest-1, latest)
	}

	if err := store.Migrate(ctx, dbURL, dbtest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	cmd, lines = start()
	deadline := time.After(time.Minute)
	for listening := false; !listening; {
		select {
		case rec, ok := <-lines:
			if !ok {
				t.Fatalf("the migrated gateway stopped before listening: %v", cmd.Wait())
			}
			if rec["level"] == "ERROR" {
				t.Fatalf("the migrated gateway logged an error: %v", rec)
			}
			listening = rec["msg"] == "gateway listening"
		case <-deadline:
			t.Fatal("the migrated gateway did not listen within a minute")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the migrated gateway's stop: %v, want exit code 0", err)
	}
}

// itoa formats a migration version.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }
