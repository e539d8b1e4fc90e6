// Package api is Coupongate's HTTP layer (gin). Handlers only bind and validate the request, call
// core with the request's context, and render core's answer; one error middleware turns core
// errors into the contract's error shape.
package api

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/woocommerce"
)

// HealthChecker pings one dependency.
type HealthChecker interface {
	Ping(ctx context.Context) error
}

// Deps is what the router needs; every field is required.
type Deps struct {
	Config     config.Config
	Log        *slog.Logger
	Postgres   HealthChecker
	Redis      HealthChecker
	Merchants  *core.Merchants
	Lists      *core.Lists
	Codes      *core.Codes
	Imports    *core.Imports
	Batches    *core.Batches
	Allocator  *core.Allocator
	Validator  *core.Validator
	Redeemer   *core.Redeemer
	Recipients *core.RecipientView
	// ShopifyWebhooks receives POST /webhooks/shopify.
	ShopifyWebhooks *shopify.Intake
	// ShopifyInstaller connects shops (install, OAuth callback, token exchange).
	ShopifyInstaller *shopify.Installer
	// Connections serves connections and pushes.
	Connections *core.Connections
	// ComplianceExports serves the documents of customer data requests.
	ComplianceExports *core.ComplianceExports
	// WooCommerce connects stores; WooCommerceWebhooks receives their deliveries.
	WooCommerce         *woocommerce.Connector
	WooCommerceWebhooks *woocommerce.Intake
	// Channels, Templates and Deliveries send codes by email, SMS and push.
	Channels   *core.Channels
	Templates  *core.Templates
	Deliveries *core.Deliveries
	BulkSends  *core.BulkSends
	// Endpoints and Alerts are where merchants hear about events.
	Endpoints *core.WebhookEndpoints
	Alerts    *core.AlertSettings
	// ShopRoutes finds a connected shop's merchant (session-token auth, the app page).
	ShopRoutes ShopRoutes
	// Users signs people in to the dashboard (/app) and manages their team.
	Users *core.Users
	// RedeemLinks manages redeem links and serves their public pages (/r/{slug}).
	RedeemLinks *core.RedeemLinks
	// Scanner marks codes used in the shop (/app/scan, a staff PIN on the redeem page).
	Scanner *core.Scanner
	// Observer is told of requests, allocations, validations and webhook intake (the operators'
	// metrics); optional.
	Observer Observer
	// Trace, when set, is the first middleware of every request (a trace span per request; see
	// internal/tracing); optional.
	Trace gin.HandlerFunc
}

// handlers carries the dependencies of the route handlers.
type handlers struct {
	Deps
	adminKeys      keyCache
	storefrontKeys keyCache
}

// newEngine is the gin engine of NewRouter before its routes: the settings, the middleware every
// request passes (renderErrors outside recovery, so that a panic is answered in the error shape)
// and the answers to unknown paths and methods.
func newEngine(cfg config.Config, log *slog.Logger) *gin.Engine {
	return newObservedEngine(cfg, log, nil, nil)
}

// newObservedEngine is newEngine with an observer beside the access log and, when trace is set,
// the trace middleware before everything else (so the request id and the logs are inside the span).
func newObservedEngine(cfg config.Config, log *slog.Logger, obs Observer, trace gin.HandlerFunc) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.ContextWithFallback = true
	r.HandleMethodNotAllowed = true
	// Route on the escaped path, so that a code holding '/' (sent as %2F) stays one path segment, and
	// let unescapeParams unescape the values with path rules (gin's own unescaping follows query
	// rules and would turn a '+' in a code into a space).
	r.UseEscapedPath = true
	r.UnescapePathValues = false
	// Client addresses (for rate limits) come from the connection unless the operator names the
	// proxies whose X-Forwarded-For may be believed.
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		log.Warn("TRUSTED_PROXIES ignored", "err", err)
		_ = r.SetTrustedProxies(nil)
	}
	if trace != nil {
		r.Use(trace)
	}
	r.Use(requestID(), accessLog(log, obs), renderErrors(log), recovery, unescapeParams)
	r.NoRoute(func(c *gin.Context) { fail(c, errRouteNotFound) })
	r.NoMethod(func(c *gin.Context) { fail(c, &methodNotAllowed{method: c.Request.Method}) })
	return r
}

// NewRouter builds the gateway's routes.
func NewRouter(d Deps) http.Handler {
	r := newObservedEngine(d.Config, d.Log, d.Observer, d.Trace)
	h := &handlers{Deps: d}
	// A body must arrive within BODY_READ_TIMEOUT; an upload within UPLOAD_READ_TIMEOUT, and only
	// MAX_CONCURRENT_UPLOADS at once.
	r.Use(bodyDeadline(d.Config.BodyReadTimeout))
	upload := uploadGate(d.Config)

	r.GET("/healthz", h.health)
	r.GET("/openapi.yaml", serveOpenAPI)
	// Platform webhooks authenticate by their signature, not by an API key.
	r.POST("/webhooks/shopify", h.shopifyWebhook)
	// The Shopify install, OAuth callback and app page authenticate by Shopify's query signature.
	r.GET("/shopify/install", h.shopifyInstall)
	r.GET("/shopify/callback", h.shopifyCallback)
	r.GET("/shopify/app", h.shopifyApp)
	// WooCommerce deliveries authenticate by their signature (pings by nothing, as WooCommerce
	// sends them); the authorization callback by the signed state it carries.
	r.POST("/webhooks/woocommerce/:connection_id", h.wooWebhook)
	r.POST("/woocommerce/callback", h.wooCallback)
	// Starting an authorization is the merchant's act: it takes the API key.
	r.GET("/woocommerce/connect", h.adminAuth, h.wooConnect)

	admin := r.Group("/api/v1", h.adminAuth, refuseUnstorable)
	admin.POST("/keys/:kind/rotate", h.rotateKey)
	admin.POST("/lists", h.createList)
	admin.GET("/lists", h.listLists)
	admin.GET("/lists/:list_id", h.getList)
	admin.PATCH("/lists/:list_id", h.updateList)
	admin.DELETE("/lists/:list_id", h.deleteList)

	admin.POST("/lists/:list_id/imports", upload, h.createImport)
	admin.GET("/lists/:list_id/imports", h.listImports)
	admin.GET("/lists/:list_id/imports/:import_id", h.getImport)

	admin.POST("/lists/:list_id/batches", h.createBatch)
	admin.GET("/lists/:list_id/batches", h.listBatches)
	admin.GET("/lists/:list_id/batches/:number/codes.csv", h.exportBatch)

	admin.GET("/lists/:list_id/codes", h.searchCodes)
	admin.DELETE("/lists/:list_id/codes", h.removeCodes)
	admin.GET("/lists/:list_id/codes/:code", h.getCode)
	admin.DELETE("/lists/:list_id/codes/:code", h.removeCode)
	admin.GET("/lists/:list_id/export", h.exportCodes)

	admin.POST("/lists/:list_id/allocations", h.allocate)
	admin.POST("/lists/:list_id/codes/:code/redeem", h.redeem)
	admin.GET("/lists/:list_id/codes/:code/qr.png", h.qrCode("png"))
	admin.GET("/lists/:list_id/codes/:code/qr.svg", h.qrCode("svg"))
	admin.POST("/orders", h.applyOrder)
	admin.GET("/recipients/codes", h.recipientCodes)

	admin.GET("/connections", h.listConnections)
	admin.POST("/connections/woocommerce", h.connectWooCommerce)
	admin.DELETE("/connections/:connection_id", h.disconnect)
	admin.POST("/connections/:connection_id/reconcile", h.reconcile)
	admin.POST("/lists/:list_id/connections", h.pushList)
	admin.GET("/lists/:list_id/connections", h.listPushes)
	admin.GET("/channels/:channel", h.getChannel)
	admin.PUT("/channels/:channel", h.putChannel)
	admin.POST("/lists/:list_id/templates", h.createTemplate)
	admin.GET("/lists/:list_id/templates", h.listTemplates)
	admin.PATCH("/templates/:template_id", h.patchTemplate)
	admin.PUT("/templates/:template_id", h.putTemplate)
	admin.DELETE("/templates/:template_id", h.deleteTemplate)
	admin.POST("/templates/:template_id/preview", h.previewTemplate)
	admin.POST("/lists/:list_id/deliveries", h.createDelivery)
	admin.GET("/lists/:list_id/deliveries", h.listDeliveries)
	admin.GET("/lists/:list_id/deliveries/:delivery_id", h.getDelivery)
	admin.POST("/lists/:list_id/deliveries/bulk", upload, h.createBulkSend)
	admin.GET("/lists/:list_id/deliveries/bulk", h.listBulkSends)
	admin.GET("/lists/:list_id/deliveries/bulk/:job_id", h.getBulkSend)
	admin.POST("/webhook-endpoints", h.createEndpoint)
	admin.GET("/webhook-endpoints", h.listEndpoints)
	admin.DELETE("/webhook-endpoints/:endpoint_id", h.deleteEndpoint)
	admin.GET("/webhook-endpoints/:endpoint_id/attempts", h.endpointAttempts)
	admin.POST("/webhook-endpoints/:endpoint_id/enable", h.enableEndpoint)
	admin.PUT("/settings/alerts", h.putAlerts)
	admin.GET("/settings/alerts", h.getAlerts)
	admin.GET("/compliance-exports", h.listComplianceExports)
	admin.POST("/lists/:list_id/redeem-links", h.createRedeemLink)
	admin.GET("/lists/:list_id/redeem-links", h.listRedeemLinks)
	admin.GET("/redeem-links/:link_id", h.getRedeemLink)
	admin.PATCH("/redeem-links/:link_id", h.updateRedeemLink)
	admin.DELETE("/redeem-links/:link_id", h.deleteRedeemLink)
	admin.GET("/compliance-exports/:export_id", h.getComplianceExport)

	storefront := r.Group("/storefront/v1", h.storefrontAuth, refuseUnstorable)
	storefront.POST("/validate", h.validate)
	storefront.DELETE("/reservations/:reservation_id", h.releaseReservation)

	h.registerDashboard(r)
	h.registerRedeemPages(r)
	return r
}
