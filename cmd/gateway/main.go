// Command gateway is Coupongate's HTTP server: the admin API, the storefront API and the platform
// webhooks. It is stateless; run as many as the load needs behind a load balancer. It does not
// migrate: on a database whose schema is behind its build it exits 1, saying to run
// `couponctl migrate`.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/internal/app"
)

func main() { app.Main("gateway", run) }

func run(ctx context.Context, cfg config.Config, log *slog.Logger) error {
	log.Info("gateway starting", cfg.Fields()...)
	stopTracing, err := app.StartTracing(ctx, cfg, "gateway", log)
	if err != nil {
		return err
	}
	defer stopTracing()
	a, err := app.OpenGateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	app.ServeDebug(ctx, cfg.DebugAddr, log)
	a.ServeMetrics(ctx)
	// The gateway serves without Redis (health says so); one line says it is unreachable, then
	// quiet retries until it answers.
	go func() { _ = a.AwaitRedis(ctx) }()
	srv := api.NewHTTPServer(cfg, a.Router(), log)
	// Bind first: "listening" is logged only once connections are taken (and names the port
	// the system chose for HTTP_ADDR=:0).
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("gateway listening", "addr", ln.Addr().String())
	serveErr := make(chan error, 1)
	// api.Listener answers in the error shape the requests Go's server refuses itself (a bad escape).
	go func() { serveErr <- srv.Serve(api.Listener(ln)) }()
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
