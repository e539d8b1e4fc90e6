package app

// The worker's wiring: the services its tasks run, and the asynq server's dependencies.

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/internal/metrics"
	"github.com/coupongate/coupongate/internal/tracing"
	"github.com/coupongate/coupongate/worker"
)

// Worker is the worker process wired: the services its tasks run (Deps hands them to
// worker.Run).
type Worker struct {
	*Base
	// Importer and Generator fill lists (imports, generated batches); Sweeper does the upkeep.
	Importer  *core.ImportRunner
	Generator *core.BatchRunner
	Sweeper   *core.Sweeper
	// WebhookBatches applies the stored deliveries of both platforms, a batch at a time, planned
	// by ShopifyWebhooks and WooCommerceWebhooks.
	WebhookBatches      *core.WebhookBatches
	ShopifyWebhooks     *shopify.Processor
	WooCommerceWebhooks *woocommerce.Processor
	// ShopifyInstaller and WooCommerce disconnect (and WooCommerce finishes connecting) shops;
	// the pushers push codes into them and the reconcilers fetch their orders.
	ShopifyInstaller      *shopify.Installer
	ShopifyPusher         *shopify.Pusher
	ShopifyReconciler     *shopify.Reconciler
	WooCommerce           *woocommerce.Connector
	WooCommercePusher     *woocommerce.Pusher
	WooCommerceReconciler *woocommerce.Reconciler
	// Deliveries, Jobs, Sends and Sender deliver codes by message; Dispatcher and Webhooks tell
	// merchants about events.
	Deliveries *core.Deliveries
	Jobs       *core.BulkSends
	Sends      *core.DeliverySender
	Sender     *messaging.Router
	Dispatcher *core.Dispatcher
	Webhooks   *outbound.Deliverer
}

// OpenWorker opens the Base (refusing a schema that is behind) and wires the worker on it.
func OpenWorker(ctx context.Context, cfg config.Config, log *slog.Logger) (*Worker, error) {
	b, err := OpenBase(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return NewWorker(b), nil
}

// NewWorker wires the worker's services on b.
func NewWorker(b *Base) *Worker {
	cfg, db, q, log, m := b.Config, b.DB, b.Queue, b.Log, b.Metrics
	alloc := b.allocator()
	redeemer := b.redeemer()
	w := &Worker{Base: b,
		Importer:  core.NewImportRunner(db, db, log),
		Generator: core.NewBatchRunner(db, db, log),
		Sweeper:   core.NewSweeper(db, q, log),
	}
	w.ShopifyWebhooks = shopify.NewProcessor(db, redeemer, log)
	w.WooCommerceWebhooks = woocommerce.NewProcessor(db, redeemer, log)
	w.WebhookBatches = core.NewWebhookBatches(db, q, map[string]core.WebhookPlanner{
		shopify.Platform: w.ShopifyWebhooks, woocommerce.Platform: w.WooCommerceWebhooks}, log).Observe(webhookObserver{m})
	shopifyApp := b.shopifyApp()
	w.ShopifyInstaller = shopify.NewInstaller(shopifyApp, db, cfg.AppURL, log)
	w.ShopifyPusher = shopify.NewPusher(shopifyApp, countedPushes{db, m, shopify.Platform}, log)
	w.ShopifyReconciler = shopify.NewReconciler(shopifyApp, db, q, redeemer, log)
	w.WooCommerce = b.wooConnector()
	w.WooCommercePusher = woocommerce.NewPusher(countedPushes{db, m, woocommerce.Platform}, log)
	w.WooCommercePusher.HTTP = w.WooCommerce.HTTP
	w.WooCommerceReconciler = woocommerce.NewReconciler(db, q, redeemer, log)
	w.WooCommerceReconciler.HTTP = w.WooCommerce.HTTP
	w.WooCommerceReconciler.Webhooks = w.WooCommerce
	w.Deliveries, w.Jobs = b.deliveries(alloc)
	w.Sender = b.messages()
	sender := countedSender{w.Sender, m}
	w.Sends = core.NewDeliverySender(db, db, sender, log)
	w.Sends.RedeemLinks = b.redeemLinks(alloc)
	w.Dispatcher = core.NewDispatcher(db, q, sender, log)
	hooksHTTP := outbound.Guard{AllowPrivate: cfg.WebhooksAllowPrivate}.Client(15 * time.Second)
	if b.Tracing {
		hooksHTTP = tracing.Client(hooksHTTP)
	}
	w.Webhooks = outbound.NewDeliverer(db, hooksHTTP, log)
	// Pushes and waiting deliveries follow their lists: codes added by imports and batches.
	listeners := core.Listeners{b.connections(), w.Deliveries}
	w.Importer.Listener = listeners
	w.Generator.Listener = listeners
	return w
}

// Close releases the kept SMTP connections and the Base's connections.
func (w *Worker) Close() {
	w.Sender.Close()
	w.Base.Close()
}

// Deps are the worker's dependencies for worker.Run.
func (w *Worker) Deps() worker.Deps {
	byPlatform := worker.PlatformRouter{
		Connections:   w.DB,
		Pushers:       map[string]worker.PushRunner{shopify.Platform: w.ShopifyPusher, woocommerce.Platform: w.WooCommercePusher},
		Reconcilers:   map[string]worker.Reconciler{shopify.Platform: w.ShopifyReconciler, woocommerce.Platform: w.WooCommerceReconciler},
		Disconnectors: map[string]worker.Disconnector{shopify.Platform: w.ShopifyInstaller, woocommerce.Platform: w.WooCommerce},
	}
	return worker.Deps{
		Log: w.Log, Redis: w.RedisOpt, QueuePrefix: w.Config.QueuePrefix, Concurrency: w.Config.WorkerConcurrency, Shutdown: w.Config.ShutdownTimeout,
		Imports: w.Importer, Batches: w.Generator, Sweeper: w.Sweeper,
		WebhookBatches: w.WebhookBatches, ConnectFinisher: w.WooCommerce,
		Pushes: byPlatform, Reconciler: byPlatform, Disconnector: byPlatform,
		Sends: w.Sends, Resumes: w.Deliveries, Jobs: w.Jobs, Events: w.Dispatcher, Webhooks: w.Webhooks,
		ReconcileEvery: w.Config.ReconcileInterval, Tracer: w.tracer(),
	}
}

// ServeMetrics serves the worker's GET /metrics (see Base.serveMetrics): the tasks' counters,
// the PostgreSQL pool's use, asynq's queues and the platforms' webhook backlog.
func (w *Worker) ServeMetrics(ctx context.Context) string {
	return w.serveMetrics(ctx, "worker", metrics.NewPoolCollector(w.DB.Pool()),
		metrics.NewQueueCollector(w.Queue.Stats()),
		metrics.NewBacklogCollector(w.webhookBacklogs, shopify.Platform, woocommerce.Platform))
}

// tracer is the worker's tracer when tracing is on, else nil (no span per task).
func (w *Worker) tracer() trace.Tracer {
	if !w.Tracing {
		return nil
	}
	return tracing.Tracer()
}
