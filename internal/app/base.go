// Package app wires Coupongate's processes from config. Each process has its own wiring, which
// builds only what that process uses: Gateway (gateway.go) the services the HTTP API and the
// dashboard call and the router; Worker (worker.go) the services its tasks run and the asynq
// server's dependencies; Ctl (ctl.go) what couponctl's commands call. All three stand on a Base
// (this file): the configuration, the logger, the store, Redis, the task queue and the metrics.
//
// The gateway and the worker do not migrate: OpenBase refuses a database whose schema lacks a
// migration of this build, saying to run `couponctl migrate` (store.CheckSchema).
package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/internal/metrics"
	"github.com/coupongate/coupongate/internal/netguard"
	"github.com/coupongate/coupongate/internal/tracing"
	"github.com/coupongate/coupongate/store"
	"github.com/coupongate/coupongate/store/redisstore"
	"github.com/coupongate/coupongate/worker"
)

// Base is what every process opens: its configuration and logger, the store on PostgreSQL,
// the Redis client, the task queue (the gateway and the worker both queue tasks) and the metrics
// registry. A test harness builds a Gateway and a Worker on one Base.
type Base struct {
	Config   config.Config
	Log      *slog.Logger
	DB       *store.DB
	Redis    redis.UniversalClient
	RedisOpt asynq.RedisConnOpt
	Queue    *worker.Queue
	// Metrics are what operators watch (ServeMetrics serves them); Tracing says OpenTelemetry
	// traces are on (OTEL_EXPORTER_OTLP_ENDPOINT, started by StartTracing in the process's main).
	Metrics *metrics.Metrics
	Tracing bool
}

// postgresTryTime bounds one try to reach PostgreSQL at start (the store's connect timeout is 5 s).
const postgresTryTime = 10 * time.Second

// postgresAddr names DATABASE_URL's hosts for logs (never its password).
func postgresAddr(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.Host == "" {
		return "(DATABASE_URL)"
	}
	return u.Host
}

// OpenBase connects to PostgreSQL (waiting while it does not answer), checks that its schema holds every migration of this build
// (a *store.SchemaBehindError when not: run `couponctl migrate`), reads or generates the app
// secret when APP_SECRET is unset, and makes the Redis client and the task queue.
func OpenBase(ctx context.Context, cfg config.Config, log *slog.Logger) (*Base, error) {
	// PostgreSQL not answering yet (a process started before it, a failover under way) is waited
	// for as Redis is: one warn line, quiet retries with a growing wait, one info line once it
	// answers. Anything else (a wrong password, no such database) ends the start at once.
	var db *store.DB
	err := awaitDependency(ctx, "postgresql", func(ctx context.Context) error {
		var err error
		db, err = store.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, log)
		if err != nil && !store.IsUnavailable(err) {
			return permanent{err}
		}
		return err
	}, postgresAddr(cfg.DatabaseURL), log, postgresTryTime, retryFirst, retryMax, sleepCtx)
	if store.IsNoDatabase(err) {
		latest, lerr := store.LatestMigration()
		if lerr != nil {
			return nil, lerr
		}
		return nil, &store.SchemaBehindError{Latest: latest, NoDatabase: true}
	}
	if err != nil {
		return nil, err
	}
	if err := db.CheckSchema(ctx); err != nil {
		db.Close()
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
	return &Base{Config: cfg, Log: log, DB: db, Redis: rdb, RedisOpt: redisOpt, Queue: worker.NewPrefixedQueue(redisOpt, cfg.QueuePrefix),
		Metrics: metrics.New(), Tracing: cfg.OTelEndpoint != ""}, nil
}

// Close releases the queue's, Redis's and PostgreSQL's connections.
func (b *Base) Close() {
	_ = b.Queue.Close()
	_ = b.Redis.Close()
	b.DB.Close()
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

// RedisPing adapts the Redis client to api.HealthChecker.
type RedisPing struct{ redis.UniversalClient }

// Ping implements api.HealthChecker.
func (r RedisPing) Ping(ctx context.Context) error { return r.UniversalClient.Ping(ctx).Err() }

// ShopifyApp is the Shopify app's settings from config.
func ShopifyApp(cfg config.Config) shopify.App {
	return shopify.App{
		APIKey: cfg.ShopifyAPIKey, APISecret: cfg.ShopifyAPISecret, Scopes: shopify.ParseScopes(cfg.ShopifyScopes),
		APIVersion: cfg.ShopifyAPIVersion, AdminURL: cfg.ShopifyAdminURL,
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// The services below are built by more than one process's wiring, each its own instance.

// shopifyApp is the Shopify app's settings, its client traced when tracing is on.
func (b *Base) shopifyApp() shopify.App {
	a := ShopifyApp(b.Config)
	if b.Tracing {
		a.HTTP = tracing.Client(&http.Client{Timeout: 30 * time.Second})
	}
	return a
}

// guard dials every connection to a host a merchant supplied (a WooCommerce store, an SMTP
// server, a service account's token_uri) and refuses non-public addresses at connect time unless
// ALLOW_PRIVATE_NETWORKS (webhook endpoints have their own: WEBHOOKS_ALLOW_PRIVATE).
func (b *Base) guard() netguard.Guard {
	return netguard.Guard{AllowPrivate: b.Config.AllowPrivateNetworks}
}

// wooHTTP is the client of WooCommerce stores' REST APIs.
func (b *Base) wooHTTP() *http.Client {
	c := b.guard().Client(30 * time.Second)
	if b.Tracing {
		c = tracing.Client(c)
	}
	return c
}

// wooConnector connects WooCommerce stores: the gateway starts a connection, the worker
// finishes it, disconnects it and registers its webhooks again.
func (b *Base) wooConnector() *woocommerce.Connector {
	c := woocommerce.NewConnector(b.DB, b.Queue, b.Config.AppURL, b.Config.AppSecret, b.Log)
	c.AllowPrivate = b.Config.AllowPrivateNetworks
	c.HTTP = b.wooHTTP()
	return c
}

// redeemer records uses: the gateway's API, the worker's webhooks and reconciliation. Each use it
// counts is counted in the metrics.
func (b *Base) redeemer() *core.Redeemer {
	return core.NewRedeemer(b.DB, countedRedemptions{b.DB, b.Metrics})
}

// allocator hands out codes, drawing positions from the list's cursor in Redis.
func (b *Base) allocator() *core.Allocator {
	return core.NewAllocator(b.DB, redisstore.NewCursor(b.Redis), b.Log)
}

// failureLimiter counts failures (or hand-outs) per client in Redis, up to limit a window, under
// the installation's QUEUE_PREFIX so that installations sharing a Redis count apart.
func (b *Base) failureLimiter(limit int, window time.Duration) *redisstore.FailureLimiter {
	return redisstore.NewFailureLimiter(b.Redis, limit, window).WithLogger(b.Log).WithKeyPrefix(b.Config.QueuePrefix)
}

// redeemLinks hands out codes through public pages (the gateway) and puts a link in messages
// (the worker's sends), with the hand-out limits in Redis.
func (b *Base) redeemLinks(alloc *core.Allocator) *core.RedeemLinks {
	return core.NewRedeemLinks(b.DB, b.DB, b.DB, alloc, core.RedeemLimits{
		PerClient: b.failureLimiter(b.Config.RedeemHandOutsPerClient, time.Hour),
		PerLink:   b.failureLimiter(b.Config.RedeemHandOutsPerLink, time.Minute),
	}, b.Config.AppSecret, b.Config.AppURL, b.Log)
}

// connections starts and follows pushes to connected shops.
func (b *Base) connections() *core.Connections {
	return core.NewConnections(b.DB, b.DB, b.Queue, shopify.Platform, woocommerce.Platform).IgnoringCase(woocommerce.Platform)
}

// deliveries and their bulk sends deliver codes by message.
func (b *Base) deliveries(alloc *core.Allocator) (*core.Deliveries, *core.BulkSends) {
	d := core.NewDeliveries(b.DB, b.DB, b.DB, alloc, b.DB, b.Queue)
	jobs := core.NewBulkSends(d, b.DB, b.Queue, b.Log)
	jobs.Positions = redisstore.NewCursor(b.Redis)
	return d, jobs
}

// messages routes messages to each merchant's channel (SMTP, Twilio, FCM), traced when tracing
// is on; Close it with the process.
func (b *Base) messages() *messaging.Router {
	r := messaging.NewRouter(b.DB, b.Config.TwilioAPIURL, b.Config.FCMAPIURL, b.guard())
	if b.Tracing {
		r.Trace(tracing.Client, func(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
			return tracing.Span(ctx, true, name, attrs...)
		})
	}
	return r
}
