// Package app wires Coupongate's processes from config: logger, database (created and migrated
// when needed), Redis, the store, core services and the task queue. cmd/gateway, cmd/worker and
// cmd/couponctl each build what they need from it.
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/internal/metrics"
	"github.com/coupongate/coupongate/internal/netguard"
	"github.com/coupongate/coupongate/internal/tracing"
	"github.com/coupongate/coupongate/store"
	"github.com/coupongate/coupongate/store/redisstore"
	"github.com/coupongate/coupongate/worker"
)

// NewLogger builds the process logger: JSON or text on stderr, with request and task ids added
// from the context. go-redis's own messages go through it too (see redisLogger).
func NewLogger(cfg config.Config) *slog.Logger { return NewLoggerTo(cfg, os.Stderr) }

// NewLoggerTo is NewLogger writing to w (tests read what a process logs).
func NewLoggerTo(cfg config.Config, w io.Writer) *slog.Logger {
	log := newLogger(cfg, w)
	redis.SetLogger(redisLogger{log})
	return log
}

// newLogger is NewLogger writing to w.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(taskIDHandler{api.ContextHandler{Handler: h}})
}

// taskIDHandler adds the asynq task id to records logged inside a task, once: a record that
// carries task_id already keeps its own.
type taskIDHandler struct{ slog.Handler }

func (h taskIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := worker.TaskIDFrom(ctx); id != "" && !hasAttr(r, "task_id") {
		r.AddAttrs(slog.String("task_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// hasAttr says whether r carries a top-level attribute named key.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

func (h taskIDHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return taskIDHandler{h.Handler.WithAttrs(a)}
}
func (h taskIDHandler) WithGroup(n string) slog.Handler { return taskIDHandler{h.Handler.WithGroup(n)} }

// App is a wired process.
type App struct {
	Config    config.Config
	Log       *slog.Logger
	DB        *store.DB
	Redis     redis.UniversalClient
	RedisOpt  asynq.RedisConnOpt
	Queue     *worker.Queue
	Merchants *core.Merchants
	Lists     *core.Lists
	Codes     *core.Codes
	Imports   *core.Imports
	Batches   *core.Batches
	Importer  *core.ImportRunner
	Generator *core.BatchRunner
	Sweeper   *core.Sweeper
	Allocator *core.Allocator
	Validator *core.Validator
	Redeemer  *core.Redeemer
	Recipient *core.RecipientView
	// ShopifyIntake receives Shopify webhooks; ShopifyWebhooks processes them in the worker.
	ShopifyIntake   *shopify.Intake
	ShopifyWebhooks *shopify.Processor
	// ShopifyInstaller connects and disconnects shops; ShopifyPusher pushes codes into them and
	// ShopifyReconciler fetches their orders.
	ShopifyInstaller  *shopify.Installer
	ShopifyPusher     *shopify.Pusher
	ShopifyReconciler *shopify.Reconciler
	// WooCommerce connects stores, WooCommerceIntake receives their deliveries and
	// WooCommerceWebhooks processes them; WooCommercePusher and WooCommerceReconciler push coupons
	// and fetch orders.
	WooCommerce           *woocommerce.Connector
	WooCommerceIntake     *woocommerce.Intake
	WooCommerceWebhooks   *woocommerce.Processor
	WooCommercePusher     *woocommerce.Pusher
	WooCommerceReconciler *woocommerce.Reconciler
	// WebhookBatches applies the stored deliveries of both platforms in the worker, a batch at a
	// time, read through ShopifyWebhooks and WooCommerceWebhooks.
	WebhookBatches *core.WebhookBatches
	// Channels, Templates, Deliveries and Sender deliver codes by message; Endpoints, Alerts,
	// Dispatcher and Webhooks tell merchants about events.
	Channels    *core.Channels
	Templates   *core.Templates
	Deliveries  *core.Deliveries
	Jobs        *core.DeliveryJobs
	Sends       *core.DeliverySender
	Sender      *channelSender
	Endpoints   *core.WebhookEndpoints
	Alerts      *core.AlertSettings
	Dispatcher  *core.Dispatcher
	Webhooks    *outbound.Deliverer
	Connections *core.Connections
	// Users signs people in to the dashboard.
	Users *core.Users
	// RedeemLinks hands out codes through public pages.
	RedeemLinks *core.RedeemLinks
	// Scanner marks codes used in the shop.
	Scanner *core.Scanner
	// Metrics are what operators watch (ServeMetrics serves them); Tracing says OpenTelemetry
	// traces are on (OTEL_EXPORTER_OTLP_ENDPOINT, started by tracing.Start in the process's main).
	Metrics *metrics.Metrics
	Tracing bool
}

// Open prepares the database (creating and migrating it when needed) and wires everything.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger) (*App, error) {
	if err := store.EnsureDatabase(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if err := store.Migrate(ctx, cfg.DatabaseURL, log); err != nil {
		return nil, err
	}
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, log)
	if err != nil {
		return nil, err
	}
	if cfg.AppSecret == "" {
		secret, created, err := db.Secret(ctx, "app_secret", func() string { return randomHex(32) })
		if err != nil {
			db.Close()
			return nil, err
		}
		cfg.AppSecret = secret
		log.Warn("APP_SECRET is not set: using a generated secret kept in the database; set APP_SECRET in production", "generated_now", created)
	}
	sealer, err := store.NewSealer(cfg.AppSecret)
	if err != nil {
		db.Close()
		return nil, err
	}
	db.UseSealer(sealer)
	redisOpt, err := RedisOptions(cfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	rdb, ok := redisOpt.MakeRedisClient().(redis.UniversalClient)
	if !ok {
		db.Close()
		return nil, fmt.Errorf("REDIS_URL: unsupported redis connection")
	}
	q := worker.NewQueue(redisOpt)
	m := metrics.New()
	a := &App{
		Config: cfg, Log: log, DB: db, Redis: rdb, RedisOpt: redisOpt, Queue: q, Metrics: m, Tracing: cfg.OTelEndpoint != "",
		Merchants: core.NewMerchants(db),
		Lists:     core.NewLists(db),
		Codes:     core.NewCodes(db, db),
		Imports:   core.NewImports(db, db, q),
		Batches:   core.NewBatches(db, db, q),
		Importer:  core.NewImportRunner(db, db, log),
		Generator: core.NewBatchRunner(db, db, log),
		Sweeper:   core.NewSweeper(db, q, log),
		Allocator: core.NewAllocator(db, redisstore.NewCursor(rdb), log),
		Validator: core.NewValidator(db, db, redisstore.NewFailureLimiter(rdb, cfg.ValidationFailuresPerMinute, time.Minute).WithLogger(log), cfg.HoldDuration, log),
		Redeemer:  core.NewRedeemer(db, countedRedemptions{db, m}),
		Recipient: core.NewRecipientView(db, db, db),
	}
	a.ShopifyIntake = shopify.NewIntake(db, q, log, cfg.ShopifyAPISecret)
	a.ShopifyWebhooks = shopify.NewProcessor(db, a.Redeemer, log)
	shopifyApp := ShopifyApp(cfg)
	if a.Tracing {
		shopifyApp.HTTP = tracing.Client(&http.Client{Timeout: 30 * time.Second})
	}
	a.ShopifyInstaller = shopify.NewInstaller(shopifyApp, db, cfg.AppURL, log)
	a.ShopifyPusher = shopify.NewPusher(shopifyApp, countedPushes{db, m, shopify.Platform}, log)
	a.ShopifyReconciler = shopify.NewReconciler(shopifyApp, db, q, a.Redeemer, log)
	// Every connection to a host a merchant supplied (a WooCommerce store, an SMTP server, a
	// service account's token_uri) is dialed through one guard, which refuses non-public
	// addresses at connect time unless ALLOW_PRIVATE_NETWORKS (webhook endpoints: below).
	guard := netguard.Guard{AllowPrivate: cfg.AllowPrivateNetworks}
	wooHTTP := guard.Client(30 * time.Second)
	if a.Tracing {
		wooHTTP = tracing.Client(wooHTTP)
	}
	a.WooCommerce = woocommerce.NewConnector(db, q, cfg.AppURL, cfg.AppSecret, log)
	a.WooCommerce.AllowPrivate = cfg.AllowPrivateNetworks
	a.WooCommerce.HTTP = wooHTTP
	a.WooCommerceIntake = woocommerce.NewIntake(db, q, log)
	a.WooCommerceWebhooks = woocommerce.NewProcessor(db, a.Redeemer, log)
	a.WebhookBatches = core.NewWebhookBatches(db, q, map[string]core.WebhookPlanner{
		shopify.Platform: a.ShopifyWebhooks, woocommerce.Platform: a.WooCommerceWebhooks}, log).Observe(webhookObserver{m})
	a.WooCommercePusher = woocommerce.NewPusher(countedPushes{db, m, woocommerce.Platform}, log)
	a.WooCommercePusher.HTTP = wooHTTP
	a.WooCommerceReconciler = woocommerce.NewReconciler(db, q, a.Redeemer, log)
	a.WooCommerceReconciler.HTTP = wooHTTP
	a.WooCommerceReconciler.Webhooks = a.WooCommerce
	a.Connections = core.NewConnections(db, db, q, shopify.Platform, woocommerce.Platform).IgnoringCase(woocommerce.Platform)
	a.Users = core.NewUsers(db, redisstore.NewFailureLimiter(rdb, core.SignInFailures, core.SignInWindow).WithLogger(log), core.DefaultPasswordParams, log)
	a.RedeemLinks = core.NewRedeemLinks(db, db, db, a.Allocator, core.RedeemLimits{
		PerClient: redisstore.NewFailureLimiter(rdb, cfg.RedeemHandOutsPerClient, time.Hour).WithLogger(log),
		PerLink:   redisstore.NewFailureLimiter(rdb, cfg.RedeemHandOutsPerLink, time.Minute).WithLogger(log),
	}, cfg.AppSecret, cfg.AppURL, log)
	a.Scanner = core.NewScanner(db, a.Redeemer, core.ScannerLimits{
		PerClient:   redisstore.NewFailureLimiter(rdb, core.ScannerPINClientFailures, core.ScannerPINWindow).WithLogger(log),
		PerMerchant: redisstore.NewFailureLimiter(rdb, core.ScannerPINMerchantFailures, core.ScannerPINWindow).WithLogger(log),
	}, cfg.AppSecret, log)
	a.Channels = core.NewChannels(db, outbound.Guard{AllowPrivate: cfg.AllowPrivateNetworks})
	a.Templates = core.NewTemplates(db, db)
	a.Deliveries = core.NewDeliveries(db, db, db, a.Allocator, db, q)
	a.Jobs = core.NewDeliveryJobs(a.Deliveries, db, q, log)
	a.Jobs.Positions = redisstore.NewCursor(rdb)
	a.Sender = newChannelSender(db, cfg.TwilioAPIURL, cfg.FCMAPIURL, guard)
	if a.Tracing {
		a.Sender.trace()
	}
	a.Channels.UseTester(a.Sender)
	sender := countedSender{a.Sender, m}
	a.Sends = core.NewDeliverySender(db, db, sender, log)
	a.Sends.RedeemLinks = a.RedeemLinks
	hooks := outbound.Guard{AllowPrivate: cfg.WebhooksAllowPrivate}
	a.Endpoints = core.NewWebhookEndpoints(db, hooks)
	a.Alerts = core.NewAlertSettings(db)
	a.Dispatcher = core.NewDispatcher(db, q, sender, log)
	hooksHTTP := hooks.Client(15 * time.Second)
	if a.Tracing {
		hooksHTTP = tracing.Client(hooksHTTP)
	}
	a.Webhooks = outbound.NewDeliverer(db, hooksHTTP, log)
	// Pushes and waiting deliveries follow their lists: codes added by imports and batches,
	// codes removed.
	listeners := core.Listeners{a.Connections, a.Deliveries}
	a.Importer.Listener = listeners
	a.Generator.Listener = listeners
	a.Codes.Listener = listeners
	return a, nil
}

// ShopifyApp is the Shopify app's settings from config.
func ShopifyApp(cfg config.Config) shopify.App {
	return shopify.App{
		APIKey: cfg.ShopifyAPIKey, APISecret: cfg.ShopifyAPISecret, Scopes: shopify.ParseScopes(cfg.ShopifyScopes),
		APIVersion: cfg.ShopifyAPIVersion, AdminURL: cfg.ShopifyAdminURL,
	}
}

// RedisOptions are asynq's connection options for the configured Redis: a cluster when
// REDIS_CLUSTER_ADDRS is set, else REDIS_URL (redis://, rediss:// or redis-sentinel://).
func RedisOptions(cfg config.Config) (asynq.RedisConnOpt, error) {
	if len(cfg.RedisClusterAddrs) > 0 {
		return ClusterOpt{Addrs: cfg.RedisClusterAddrs}, nil
	}
	opt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return opt, nil
}

// Close releases connections.
func (a *App) Close() {
	a.Sender.Close()
	_ = a.Queue.Close()
	_ = a.Redis.Close()
	a.DB.Close()
}

// RedisPing adapts the Redis client to api.HealthChecker.
type RedisPing struct{ redis.UniversalClient }

// Ping implements api.HealthChecker.
func (r RedisPing) Ping(ctx context.Context) error { return r.UniversalClient.Ping(ctx).Err() }

// Router builds the gateway's HTTP handler.
func (a *App) Router() http.Handler {
	return api.NewRouter(api.Deps{
		Config: a.Config, Log: a.Log, Postgres: a.DB, Redis: RedisPing{a.Redis},
		Merchants: a.Merchants, Lists: a.Lists, Codes: a.Codes, Imports: a.Imports, Batches: a.Batches,
		Allocator: a.Allocator, Validator: a.Validator, Redeemer: a.Redeemer,
		Recipients: a.Recipient, ShopifyWebhooks: a.ShopifyIntake,
		ShopifyInstaller: a.ShopifyInstaller, Connections: a.Connections, ComplianceExports: core.NewComplianceExports(a.DB),
		WooCommerce: a.WooCommerce, WooCommerceWebhooks: a.WooCommerceIntake,
		Channels: a.Channels, Templates: a.Templates, Deliveries: a.Deliveries, DeliveryJobs: a.Jobs, Endpoints: a.Endpoints, Alerts: a.Alerts,
		ShopRoutes: a.DB, Users: a.Users, RedeemLinks: a.RedeemLinks, Scanner: a.Scanner,
		Observer: a.Metrics, Trace: a.traceMiddleware(),
	})
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// WorkerDeps builds the worker's dependencies.
func (a *App) WorkerDeps() worker.Deps {
	byPlatform := platforms{
		conns:         a.DB,
		pushers:       map[string]worker.PushRunner{shopify.Platform: a.ShopifyPusher, woocommerce.Platform: a.WooCommercePusher},
		reconcilers:   map[string]worker.Reconciler{shopify.Platform: a.ShopifyReconciler, woocommerce.Platform: a.WooCommerceReconciler},
		disconnectors: map[string]worker.Disconnector{shopify.Platform: a.ShopifyInstaller, woocommerce.Platform: a.WooCommerce},
	}
	return worker.Deps{
		Log: a.Log, Redis: a.RedisOpt, Concurrency: a.Config.WorkerConcurrency, Shutdown: a.Config.ShutdownTimeout,
		Imports: a.Importer, Batches: a.Generator, Sweeper: a.Sweeper,
		WebhookBatches: a.WebhookBatches, ConnectFinisher: a.WooCommerce,
		Pushes: byPlatform, Reconciler: byPlatform, Disconnector: byPlatform,
		Sends: a.Sends, Resumes: a.Deliveries, Jobs: a.Jobs, Events: a.Dispatcher, Webhooks: a.Webhooks,
		ReconcileEvery: a.Config.ReconcileInterval, Tracer: a.tracer(),
	}
}
