// Command gateway is Coupongate's HTTP server: the admin API, the storefront API and the platform
// webhooks. It is stateless; run as many as the load needs behind a load balancer.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
)

func main() { app.Main("gateway", run) }

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log.Info("gateway starting", cfg.Fields()...)
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	app.ServeDebug(ctx, cfg.DebugAddr, log)
	// The gateway serves without Redis (health says so); one line says it is unreachable, then
	// quiet retries until it answers.
	go func() { _ = a.AwaitRedis(ctx) }()
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           a.Router(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	go func() {
		log.Info("gateway listening", "addr", cfg.HTTPAddr)
		serveErr <- srv.ListenAndServe()
	}()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("gateway shutting down", "timeout", cfg.ShutdownTimeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("gateway stopped")
	return nil
}
