package main

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/dbtest"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

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
