package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// lineWriter hands each line written to it to a channel, so a test follows a log as it is written.
type lineWriter struct {
	mu      sync.Mutex
	partial string
	lines   chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	text := w.partial + string(p)
	for {
		i := strings.IndexByte(text, '\n')
		if i < 0 {
			break
		}
		w.lines <- text[:i]
		text = text[i+1:]
	}
	w.partial = text
	return len(p), nil
}

// proxy forwards connections on ln to addr until ln is closed.
func proxy(ln net.Listener, addr string) {
	for {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer out.Close()
			go func() { _, _ = io.Copy(out, in) }()
			_, _ = io.Copy(in, out)
		}()
	}
}

// TestWorkerWaitsQuietlyForRedis starts the worker with nothing listening at REDIS_URL's
// address: it logs one warn line naming the address, retries quietly (debug only, JSON only, no
// library noise) and starts serving once Redis answers there. Not parallel, nor is the other test
// here: app.NewLoggerTo sets go-redis's process-wide logger, whose lines this test reads.
func TestWorkerWaitsQuietlyForRedis(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg, err := config.Load()
	if err != nil {
		t.Fatal(err)
	}
	cfg.DatabaseURL = env.DatabaseURL
	cfg.RedisURL = strings.Replace(env.RedisURL(), dbtest.RedisAddr(), addr, 1)
	cfg.AppSecret = strings.Repeat("s", 32)
	cfg.LogLevel, cfg.LogFormat = "debug", "json"
	cfg.WorkerConcurrency, cfg.DBMaxConns = 2, 4
	cfg.MetricsAddr = "off" // the default port may be another process's: its warn line would be a second one
	out := &lineWriter{lines: make(chan string, 1000)}
	log := app.NewLoggerTo(cfg, out)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx, cfg, log) }()

	var all []string
	deadline := time.After(time.Minute)
	// follow reads the log until a line satisfies cond.
	follow := func(what string, cond func(map[string]any) bool) {
		t.Helper()
		for {
			select {
			case line := <-out.lines:
				all = append(all, line)
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("a line that is not JSON: %q", line)
				}
				if cond(rec) {
					return
				}
			case err := <-stopped:
				t.Fatalf("the worker stopped (%v) before %s:\n%s", err, what, strings.Join(all, "\n"))
			case <-deadline:
				t.Fatalf("no %s within a minute:\n%s", what, strings.Join(all, "\n"))
			}
		}
	}
	retries := 0
	follow("two quiet retries", func(rec map[string]any) bool {
		if rec["msg"] == "redis still unreachable" {
			retries++
		}
		return retries == 2
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen where Redis is expected: %v", err)
	}
	defer ln.Close()
	go proxy(ln, dbtest.RedisAddr())
	follow("the worker's start", func(rec map[string]any) bool { return rec["msg"] == "worker started" })
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	var loud []string
	reachable := 0
	for _, line := range all {
		var rec map[string]any
		_ = json.Unmarshal([]byte(line), &rec)
		switch rec["level"] {
		case "WARN", "ERROR":
			loud = append(loud, line)
		}
		if rec["msg"] == "redis reachable at "+addr {
			reachable++
		}
	}
	if len(loud) != 1 || !strings.Contains(loud[0], `"msg":"redis unreachable at `+addr+`; retrying"`) || reachable != 1 {
		t.Fatalf("warn and error lines while Redis was down: %d, want the one unreachable line (and one reachable line, got %d):\n%s",
			len(loud), reachable, strings.Join(all, "\n"))
	}
}

// TestRefusesASchemaBehind: the worker does not start on a database whose goose version table
// lacks the build's last migration, nor on one that does not exist; it says which migration the
// schema is at and which it needs (app.Main logs that as one line naming couponctl migrate).
func TestRefusesASchemaBehind(t *testing.T) {
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
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// What goose's down leaves in its table (the schema itself is not read by the check).
	if _, err := conn.Exec(ctx, "DELETE FROM goose_db_version WHERE version_id = $1", latest); err != nil {
		t.Fatal(err)
	}
	missing := strings.Replace(dbURL, "/cg_test_", "/cg_absent_", 1)
	for _, tc := range []struct {
		name, url string
		want      store.SchemaBehindError
	}{
		{"one migration behind", dbURL, store.SchemaBehindError{Applied: latest - 1, Latest: latest}},
		{"no database", missing, store.SchemaBehindError{Latest: latest, NoDatabase: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Load()
			if err != nil {
				t.Fatal(err)
			}
			cfg.DatabaseURL, cfg.RedisURL, cfg.MetricsAddr, cfg.DBMaxConns = tc.url, env.RedisURL(), "off", 2
			var out strings.Builder
			err = run(ctx, cfg, app.NewLoggerTo(cfg, &out))
			var behind *store.SchemaBehindError
			if !errors.As(err, &behind) || *behind != tc.want || !strings.Contains(err.Error(), "run `couponctl migrate`") {
				t.Fatalf("the worker's run: %v, want %+v saying to run couponctl migrate", err, tc.want)
			}
			if strings.Contains(out.String(), "worker started") {
				t.Fatalf("the worker started:\n%s", out.String())
			}
		})
	}
}
