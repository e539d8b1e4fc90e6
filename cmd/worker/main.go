// Command worker runs Coupongate's background tasks (imports, generation, upkeep) and the scheduler
// that enqueues periodic ones. It is stateless; run as many as the queue needs. It does not
// migrate: on a database whose schema is behind its build it exits 1, saying to run
// `couponctl migrate`.
package main

import (
	"context"
	"log/slog"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
	"github.com/coupongate/coupongate/worker"
)

func main() { app.Main("worker", run) }

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log.Info("worker starting", cfg.Fields()...)
	stopTracing, err := app.StartTracing(ctx, cfg, "worker", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	a, err := app.OpenWorker(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	app.ServeDebug(ctx, cfg.DebugAddr, log)
	a.ServeMetrics(ctx)
	// Start serving tasks only once Redis answers: one line says it does not, then quiet retries.
	if err := a.AwaitRedis(ctx); err != nil {
		log.Info("worker stopped before redis answered")
		return nil
	}
	return worker.Run(ctx, a.Deps())
}
