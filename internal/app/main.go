package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/store"
)

// Main is the whole main of a long-running process: it loads and validates the configuration
// (exit 2 when it is wrong), builds the logger, runs until SIGINT or SIGTERM cancels the context,
// and exits 1 when run fails: with one line naming `couponctl migrate` when the database's schema
// is behind this build (store.SchemaBehindError).
func Main(name string, run func(ctx context.Context, cfg config.Config, log *slog.Logger) error) {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "configuration:", err)
		os.Exit(2)
	}
	log := NewLogger(cfg)
	stopProfile := startCPUProfile(cfg.CPUProfile, log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, cfg, log)
	stop()
	stopProfile()
	var behind *store.SchemaBehindError
	switch {
	case errors.As(err, &behind):
		// One line that says what to run.
		log.Error(name+" not started: "+behind.Error(), "schema_version", behind.Applied, "latest_migration", behind.Latest)
		os.Exit(1)
	case err != nil:
		log.Error(name+" stopped with an error", "err", err)
		os.Exit(1)
	}
}

// startCPUProfile profiles the process's CPU from now until the returned function runs (at a
// clean shutdown), into path; nothing when path is empty. `make pgo` merges these profiles of
// the bench's processes into the default.pgo files the builds optimise with.
func startCPUProfile(path string, log *slog.Logger) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		log.Warn("CPU profile not taken", "path", path, "err", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("CPU profile not written", "path", path, "err", err)
		}
	}
}
