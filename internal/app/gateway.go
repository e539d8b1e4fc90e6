package app

// The gateway's wiring: the services the HTTP API and the dashboard call, and the router.

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/internal/metrics"
	"github.com/coupongate/coupongate/internal/tracing"
)

// Gateway is the gateway process wired: what its HTTP handlers call. Work the handlers queue
// (imports, pushes, sends) runs in the worker.
type Gateway struct {
	*Base
	Merchants *core.Merchants
	Lists     *core.Lists
	Codes     *core.Codes
	Imports   *core.Imports
	Batches   *core.Batches
	Allocator *core.Allocator
	Validator *core.Validator
	Redeemer  *core.Redeemer
	Recipient *core.RecipientView
	// ShopifyIntake stores Shopify's webhooks; ShopifyInstaller connects and disconnects shops.
	ShopifyIntake    *shopify.Intake
	ShopifyInstaller *shopify.Installer
	// WooCommerce connects stores; WooCommerceIntake stores their deliveries.
	WooCommerce       *woocommerce.Connector
	WooCommerceIntake *woocommerce.Intake
	Connections       *core.Connections
	// Channels, Templates, Deliveries and Jobs set up and queue deliveries of codes by message;
	// Sender sends a channel's test message. Endpoints and Alerts are the merchant's webhook
	// endpoints and alert settings.
	Channels   *core.Channels
	Templates  *core.Templates
	Deliveries *core.Deliveries
	Jobs       *core.BulkSends
	Sender     *messaging.Router
	Endpoints  *core.WebhookEndpoints
	Alerts     *core.AlertSettings
	// Users signs people in to the dashboard; RedeemLinks hands out codes through public pages;
	// Scanner marks codes used in the shop.
	Users       *core.Users
	RedeemLinks *core.RedeemLinks
	Scanner     *core.Scanner
}

// OpenGateway opens the Base (refusing a schema that is behind) and wires the gateway on it.
func OpenGateway(ctx context.Context, cfg config.Config, log *slog.Logger) (*Gateway, error) {
	b, err := OpenBase(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	return NewGateway(b), nil
}

// NewGateway wires the gateway's services on b.
func NewGateway(b *Base) *Gateway {
	cfg, db, q, log := b.Config, b.DB, b.Queue, b.Log
	g := &Gateway{Base: b,
		Merchants: core.NewMerchants(db),
		Lists:     core.NewLists(db),
		Codes:     core.NewCodes(db, db),
		Imports:   core.NewImports(db, db, q),
		Batches:   core.NewBatches(db, db, q),
		Allocator: b.allocator(),
		Validator: core.NewValidator(db, db, b.failureLimiter(cfg.ValidationFailuresPerMinute, time.Minute), cfg.HoldDuration, log),
		Redeemer:  b.redeemer(),
		Recipient: core.NewRecipientView(db, db, db),
	}
	g.ShopifyIntake = shopify.NewIntake(db, q, log, cfg.ShopifyAPISecret)
	g.ShopifyInstaller = shopify.NewInstaller(b.shopifyApp(), db, cfg.AppURL, log)
	g.WooCommerce = b.wooConnector()
	g.WooCommerceIntake = woocommerce.NewIntake(db, q, log)
	g.Connections = b.connections()
	g.Users = core.NewUsers(db, b.failureLimiter(core.SignInFailures, core.SignInWindow), core.DefaultPasswordParams, log)
	g.RedeemLinks = b.redeemLinks(g.Allocator)
	g.Scanner = core.NewScanner(db, g.Redeemer, core.ScannerLimits{
		PerClient:   b.failureLimiter(core.ScannerPINClientFailures, core.ScannerPINWindow),
		PerMerchant: b.failureLimiter(core.ScannerPINMerchantFailures, core.ScannerPINWindow),
	}, cfg.AppSecret, log)
	g.Channels = core.NewChannels(db, outbound.Guard{AllowPrivate: cfg.AllowPrivateNetworks})
	g.Sender = b.messages()
	g.Channels.UseTester(g.Sender)
	g.Templates = core.NewTemplates(db, db)
	g.Deliveries, g.Jobs = b.deliveries(g.Allocator)
	g.Endpoints = core.NewWebhookEndpoints(db, outbound.Guard{AllowPrivate: cfg.WebhooksAllowPrivate})
	g.Alerts = core.NewAlertSettings(db)
	// Pushes and waiting deliveries follow their lists: codes removed.
	g.Codes.Listener = core.Listeners{g.Connections, g.Deliveries}
	return g
}

// Close releases the kept SMTP connections and the Base's connections.
func (g *Gateway) Close() {
	g.Sender.Close()
	g.Base.Close()
}

// Router builds the gateway's HTTP handler.
func (g *Gateway) Router() http.Handler {
	return api.NewRouter(api.Deps{
		Config: g.Config, Log: g.Log, Postgres: g.DB, Redis: RedisPing{g.Redis},
		Merchants: g.Merchants, Lists: g.Lists, Codes: g.Codes, Imports: g.Imports, Batches: g.Batches,
		Allocator: g.Allocator, Validator: g.Validator, Redeemer: g.Redeemer,
		Recipients: g.Recipient, ShopifyWebhooks: g.ShopifyIntake,
		ShopifyInstaller: g.ShopifyInstaller, Connections: g.Connections, ComplianceExports: core.NewComplianceExports(g.DB),
		WooCommerce: g.WooCommerce, WooCommerceWebhooks: g.WooCommerceIntake,
		Channels: g.Channels, Templates: g.Templates, Deliveries: g.Deliveries, BulkSends: g.Jobs, Endpoints: g.Endpoints, Alerts: g.Alerts,
		ShopRoutes: g.DB, Users: g.Users, RedeemLinks: g.RedeemLinks, Scanner: g.Scanner,
		Observer: g.Metrics, Trace: g.traceMiddleware(),
	})
}

// ServeMetrics serves the gateway's GET /metrics (see Base.serveMetrics): the requests' and the
// outcomes' counters, and the PostgreSQL pool's use.
func (g *Gateway) ServeMetrics(ctx context.Context) string {
	return g.serveMetrics(ctx, "gateway", metrics.NewPoolCollector(g.DB.Pool()))
}

// traceMiddleware is the gateway's span per request when tracing is on, else nil.
func (g *Gateway) traceMiddleware() gin.HandlerFunc {
	if !g.Tracing {
		return nil
	}
	return tracing.Middleware()
}
