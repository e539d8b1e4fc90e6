// Command worker runs Coupongate's background tasks (imports, generation, upkeep) and the scheduler
// that enqueues periodic ones. It is stateless; run as many as the queue needs.
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
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	app.ServeDebug(ctx, cfg.DebugAddr, log)
	a.ServeMetrics(ctx, "worker")
	// Start serving tasks only once Redis answers: one line says it does not, then quiet retries.
	if err := a.AwaitRedis(ctx); err != nil {
		log.Info("worker stopped before redis answered")
		return nil
	}
	return worker.Run(ctx, a.WorkerDeps())
}
