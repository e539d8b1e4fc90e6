package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store"
	"github.com/coupongate/coupongate/worker"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns what was written, a line each.
func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	text := strings.TrimSpace(s.b.String())
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// logLine is one JSON log line: its keys in order and its values.
type logLine struct {
	keys   []string
	values map[string]any
}

// parseLine reads a JSON log line, keeping every key as written (a repeated key included).
func parseLine(line string) (logLine, error) {
	out := logLine{values: map[string]any{}}
	dec := json.NewDecoder(strings.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return out, fmt.Errorf("not a JSON object: %q", line)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out, err
		}
		key, _ := tok.(string)
		var v any
		if err := dec.Decode(&v); err != nil {
			return out, err
		}
		out.keys = append(out.keys, key)
		out.values[key] = v
	}
	return out, nil
}

// repeated returns a key the line carries more than once, or "".
func (l logLine) repeated() string {
	seen := map[string]bool{}
	for _, k := range l.keys {
		if seen[k] {
			return k
		}
		seen[k] = true
	}
	return ""
}

// loggingImports logs a line inside each import task, as the import runner does, and reports the
// import it ran.
type loggingImports struct {
	log *slog.Logger
	ran chan<- uuid.UUID
}

func (l loggingImports) Run(ctx context.Context, _, importID uuid.UUID) error {
	l.log.InfoContext(ctx, "import running", "import_id", importID)
	l.ran <- importID
	return nil
}

type nopBatches struct{}

func (nopBatches) Run(context.Context, uuid.UUID, uuid.UUID, int) error { return nil }

type nopSweeper struct{}

func (nopSweeper) Sweep(context.Context) error { return nil }

// TestWorkerLogsEachKeyOnce runs the worker with the process logger over a few tasks: no line
// carries a key twice, and every line of a task carries its task_id once.
func TestWorkerLogsEachKeyOnce(t *testing.T) {
	t.Parallel()
	var out syncBuffer
	log := newLogger(config.Config{LogLevel: "debug", LogFormat: "json"}, &out)
	opt, err := asynq.ParseRedisURI(env.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan uuid.UUID, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopped := make(chan error, 1)
	go func() {
		stopped <- worker.Run(ctx, worker.Deps{Log: log, Redis: opt, Concurrency: 2, Shutdown: 10 * time.Second,
			Imports: loggingImports{log, ran}, Batches: nopBatches{}, Sweeper: nopSweeper{}})
	}()
	q := worker.NewQueue(opt)
	defer q.Close()
	merchant := uuid.New()
	for range 3 {
		if err := q.EnqueueImport(ctx, merchant, uuid.New()); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		select {
		case <-ran:
		case err := <-stopped:
			t.Fatalf("the worker stopped after %d tasks: %v", i, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("%d of 3 tasks ran in 30 s", i)
		}
	}
	cancel() // the worker lets running tasks end (and log) before Run returns
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	var done, running int
	for _, raw := range out.lines() {
		l, err := parseLine(raw)
		if err != nil {
			t.Fatal(err)
		}
		if k := l.repeated(); k != "" {
			t.Errorf("%q appears twice in %s", k, raw)
		}
		switch l.values["msg"] {
		case "task done":
			done++
		case "import running":
			running++
		default:
			continue
		}
		if id, _ := l.values["task_id"].(string); !strings.HasPrefix(id, "import:") {
			t.Errorf("a task's line without its task_id: %s", raw)
		}
	}
	if done != 3 || running != 3 {
		t.Fatalf("%d task done and %d import running lines, want 3 each:\n%s", done, running, strings.Join(out.lines(), "\n"))
	}
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestAwaitRedisSaysOnceAndRetriesQuietly waits for a Redis that is not there through the real
// client, with go-redis's own logging routed as the process routes it: over many tries the log
// holds one warn line naming the address, then debug only, all of it JSON; when Redis answers,
// one info line says so. Not parallel: it points go-redis's process-wide logger at its cases' logs.
func TestAwaitRedisSaysOnceAndRetriesQuietly(t *testing.T) {
	addr := closedAddr(t)
	client := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, DialerRetryTimeout: time.Millisecond})
	defer client.Close()
	down := RedisPing{client}.Ping
	up := RedisPing{redis.NewClient(&redis.Options{Addr: dbtest.RedisAddr()})}
	defer up.Close()
	tests := []struct {
		name     string
		downFor  int // tries that fail before Redis answers; 0: it never does
		wantErr  error
		wantInfo int
	}{
		{"never answers", 0, context.Canceled, 0},
		{"answers at the sixth try", 5, nil, 1},
		{"answers at once", -1, nil, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out syncBuffer
			log := newLogger(config.Config{LogLevel: "debug", LogFormat: "json"}, &out)
			redis.SetLogger(redisLogger{log})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tries, waits := 0, []time.Duration{}
			ping := func(ctx context.Context) error {
				tries++
				if tc.downFor < 0 || (tc.downFor > 0 && tries > tc.downFor) {
					return up.Ping(ctx)
				}
				return down(ctx)
			}
			// Sleeping is counted, not done; a Redis that never answers is given up on after 8 waits.
			sleep := func(ctx context.Context, d time.Duration) error {
				waits = append(waits, d)
				if tc.downFor == 0 && len(waits) == 8 {
					cancel()
					return ctx.Err()
				}
				return nil
			}
			err := awaitDependency(ctx, "redis", ping, addr, log, time.Second, 100*time.Millisecond, time.Second, sleep)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("awaitDependency: %v, want %v", err, tc.wantErr)
			}
			var warns, infos, debugs, library int
			for _, raw := range out.lines() {
				l, err := parseLine(raw)
				if err != nil {
					t.Fatal(err) // go-redis's plain text would land here
				}
				if l.values["component"] == "go-redis" {
					library++
				}
				switch l.values["level"] {
				case "WARN":
					warns++
					if l.values["msg"] != "redis unreachable at "+addr+"; retrying" {
						t.Errorf("warn line %s", raw)
					}
				case "INFO":
					infos++
					if l.values["msg"] != "redis reachable at "+addr {
						t.Errorf("info line %s", raw)
					}
				case "DEBUG":
					debugs++
				default:
					t.Errorf("line %s", raw)
				}
			}
			wantWarns := 1
			if tc.downFor < 0 {
				wantWarns = 0
			}
			if warns != wantWarns || infos != tc.wantInfo {
				t.Fatalf("%d warn and %d info lines over %d tries, want %d and %d:\n%s", warns, infos, tries, wantWarns, tc.wantInfo,
					strings.Join(out.lines(), "\n"))
			}
			if tc.downFor == 0 && (tries != 8 || debugs < 7 || library == 0) {
				t.Fatalf("%d tries, %d debug lines (%d of go-redis) before giving up, want 8, at least 7 (some of go-redis)", tries, debugs, library)
			}
			for i := 1; i < len(waits); i++ {
				if waits[i] < waits[i-1] || waits[i] > time.Second {
					t.Fatalf("waits %v do not grow up to 1 s", waits)
				}
			}
		})
	}
}

// TestRedisLoggerLevels: go-redis's messages become JSON lines, failing to reach the server at
// debug and other failures at warn.
func TestRedisLoggerLevels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		format string
		args   []any
		level  string
	}{
		{"redis: connection pool: failed to dial after %d attempts: %v", []any{5, errors.New("dial tcp 127.0.0.1:6390: connect: connection refused")}, "DEBUG"},
		{"sentinel: GetMasterAddrByName name=%q failed: %s", []any{"main", "i/o timeout"}, "DEBUG"},
		{"csc: failed to register invalidate handler: %v", []any{errors.New("ERR unknown command")}, "WARN"},
		{"sentinel: new master=%q addr=%q", []any{"main", "10.0.0.2:6379"}, "DEBUG"},
	}
	for _, tc := range tests {
		var out syncBuffer
		redisLogger{newLogger(config.Config{LogLevel: "debug", LogFormat: "json"}, &out)}.Printf(context.Background(), tc.format, tc.args...)
		lines := out.lines()
		if len(lines) != 1 {
			t.Fatalf("%q: %d lines", tc.format, len(lines))
		}
		l, err := parseLine(lines[0])
		if err != nil {
			t.Fatal(err)
		}
		if l.values["level"] != tc.level || l.values["msg"] != fmt.Sprintf(tc.format, tc.args...) || l.values["component"] != "go-redis" {
			t.Errorf("%s, want level %s", lines[0], tc.level)
		}
	}
}

// TestOpenBaseWaitsQuietlyForPostgreSQL: a process started while PostgreSQL does not answer yet
// says so once at warn, retries quietly, says once at info when it answers, and starts; a wrong
// database is not waited for.
func TestOpenBaseWaitsQuietlyForPostgreSQL(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(env.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	addr := closedAddr(t)
	u.Host = addr
	cfg := config.Config{DatabaseURL: u.String(), RedisURL: env.RedisURL(), DBMaxConns: 2, AppSecret: strings.Repeat("s", 40),
		LogLevel: "debug", LogFormat: "json"}
	var out syncBuffer
	log := newLogger(cfg, &out)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		b, err := OpenBase(ctx, cfg, log)
		if err == nil {
			b.Close()
		}
		opened <- err
	}()
	warn := "postgresql unreachable at " + addr + "; retrying"
	for !strings.Contains(strings.Join(out.lines(), "\n"), warn) {
		select {
		case err := <-opened:
			t.Fatalf("OpenBase returned %v before PostgreSQL answered", err)
		case <-time.After(10 * time.Millisecond): // polling the log for the warn line
		}
	}
	// PostgreSQL "comes up": a proxy to it starts listening on the address.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go func() { _, _ = io.Copy(up, c) }()
				_, _ = io.Copy(c, up)
			}()
		}
	}()
	if err := <-opened; err != nil {
		t.Fatalf("OpenBase once PostgreSQL answered: %v", err)
	}
	var warns, infos int
	for _, raw := range out.lines() {
		l, err := parseLine(raw)
		if err != nil {
			t.Fatal(err)
		}
		switch l.values["level"] {
		case "WARN":
			if l.values["msg"] == warn {
				warns++
			}
		case "INFO":
			if l.values["msg"] == "postgresql reachable at "+addr {
				infos++
			}
		case "ERROR":
			t.Errorf("error line while waiting: %s", raw)
		}
	}
	if warns != 1 || infos != 1 {
		t.Errorf("%d warn and %d info lines about PostgreSQL, want one each:\n%s", warns, infos, strings.Join(out.lines(), "\n"))
	}

	// A database that does not exist is not waited for.
	u.Host, u.Path = target, "/cg_no_such_database"
	cfg.DatabaseURL = u.String()
	var behind *store.SchemaBehindError
	if _, err := OpenBase(ctx, cfg, log); !errors.As(err, &behind) || !behind.NoDatabase {
		t.Fatalf("OpenBase on a missing database: %v, want the schema-behind error at once", err)
	}
}
