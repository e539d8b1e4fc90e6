// Package config reads Coupongate's settings from environment variables. Every setting has a
// default that works on a developer machine; Load validates them and Fields lists them for the
// start-up log with secrets masked.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the gateway, the worker and couponctl.
type Config struct {
	// DatabaseURL is the PostgreSQL connection URL; the database is created when missing.
	DatabaseURL string
	// RedisURL is the Redis URL used by asynq, allocation cursors and rate limits.
	RedisURL string
	// RedisClusterAddrs, when set, names the nodes of a Redis Cluster to use instead of RedisURL.
	RedisClusterAddrs []string
	// QueuePrefix goes before the name of every asynq queue the processes queue tasks in and the
	// worker serves, so that installations sharing one Redis (a Redis Cluster has no database
	// numbers to tell them apart) never take each other's tasks. Every gateway and worker of an
	// installation must have the same one; empty keeps the plain names (default, bulk, …).
	QueuePrefix string
	// HTTPAddr is where the gateway listens.
	HTTPAddr string
	// DebugAddr, when set, serves Go's pprof profiles there (keep it on a private address).
	DebugAddr string
	// MetricsAddr is where GET /metrics (Prometheus) listens, off the public port: empty means
	// the process's default (MetricsAddrFor), "off" serves no metrics.
	MetricsAddr string
	// OTelEndpoint is OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT: when
	// set, traces are sent there over OTLP (internal/tracing reads the other OTEL_* variables);
	// OTelProtocol is the OTLP protocol asked for (grpc or http/protobuf, "" for the latter).
	OTelEndpoint string
	OTelProtocol string
	// CPUProfile, when set, is a file the process writes a CPU profile of its whole run to when
	// it stops cleanly (`make pgo` collects them from the bench).
	CPUProfile string
	// AppURL is the public base URL of the gateway (webhook addresses, OAuth redirects). When
	// APP_URL is unset it is the local address HTTPAddr listens on (":9090" gives
	// http://localhost:9090).
	AppURL string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// LogFormat is json or text.
	LogFormat string
	// MaxUploadBytes caps an import upload; larger bodies answer 413.
	MaxUploadBytes int64
	// MaxJSONBytes caps a JSON request body.
	MaxJSONBytes int64
	// ReadHeaderTimeout bounds reading a request's headers; BodyReadTimeout bounds reading its
	// body, UploadReadTimeout an upload's (imports and bulk deliveries). A client that stalls past
	// them is cut off, so stalled clients cannot hold connections for long.
	ReadHeaderTimeout time.Duration
	BodyReadTimeout   time.Duration
	UploadReadTimeout time.Duration
	// MaxConcurrentUploads is how many uploads one gateway process reads at once; one more answers
	// 503 with Retry-After.
	MaxConcurrentUploads int
	// HoldDuration is how long a storefront reservation holds a code.
	HoldDuration time.Duration
	// ReconcileInterval is how often every shop's recently updated orders are fetched.
	ReconcileInterval time.Duration
	// ShutdownTimeout bounds graceful shutdown of the server and the worker.
	ShutdownTimeout time.Duration
	// WorkerConcurrency is the number of tasks a worker process runs at once.
	WorkerConcurrency int
	// DBMaxConns is the size of each process's PostgreSQL pool.
	DBMaxConns int
	// AppSecret signs cookies and cursors and derives the key that encrypts tokens at rest. When
	// unset it is generated on first start and kept in the database (with a warning).
	AppSecret string
	// ShopifyAPIKey, ShopifyAPISecret, ShopifyScopes, ShopifyAPIVersion and ShopifyAdminURL configure
	// the Shopify app (see the README).
	ShopifyAPIKey     string
	ShopifyAPISecret  string
	ShopifyScopes     string
	ShopifyAPIVersion string
	ShopifyAdminURL   string
	// ValidationFailuresPerMinute is how many failed storefront validations one client address and
	// storefront key may make in a minute before answering 429.
	ValidationFailuresPerMinute int
	// RedeemHandOutsPerClient is how many codes one client address may ask for through one redeem
	// link in an hour; RedeemHandOutsPerLink how many one link hands out in a minute. Past either
	// the public page answers 429 with Retry-After.
	RedeemHandOutsPerClient int
	RedeemHandOutsPerLink   int
	// TrustedProxies are the addresses or CIDRs of load balancers whose X-Forwarded-For is believed
	// (comma-separated); empty means the connection's address is the client's.
	TrustedProxies []string
	// AllowPrivateNetworks lets the gateway call stores (and other endpoints merchants give it) on
	// loopback and private addresses; off by default, so a merchant cannot point it into the
	// operator's network.
	AllowPrivateNetworks bool
	// TwilioAPIURL and FCMAPIURL are the SMS and push providers' hosts (tests point them at local
	// fakes); WebhooksAllowPrivate lets outgoing webhooks reach loopback and private addresses.
	TwilioAPIURL         string
	FCMAPIURL            string
	WebhooksAllowPrivate bool
	// AppBridgeURL is where the dashboard's pages inside the Shopify admin load App Bridge from
	// (tests point it at a local stand-in).
	AppBridgeURL string
}

// Load reads the environment and validates the result.
func Load() (Config, error) {
	return load(os.Getenv)
}

func load(getenv func(string) string) (Config, error) {
	r := reader{getenv: getenv}
	httpAddr := r.str("HTTP_ADDR", ":8080")
	c := Config{
		DatabaseURL:                 r.str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coupons?sslmode=disable"),
		RedisURL:                    r.str("REDIS_URL", "redis://127.0.0.1:6379/0"),
		RedisClusterAddrs:           r.list("REDIS_CLUSTER_ADDRS"),
		QueuePrefix:                 r.str("QUEUE_PREFIX", ""),
		HTTPAddr:                    httpAddr,
		DebugAddr:                   r.str("DEBUG_ADDR", ""),
		MetricsAddr:                 r.str("METRICS_ADDR", ""),
		OTelEndpoint:                r.str("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", r.str("OTEL_EXPORTER_OTLP_ENDPOINT", "")),
		OTelProtocol:                r.str("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", r.str("OTEL_EXPORTER_OTLP_PROTOCOL", "")),
		CPUProfile:                  r.str("CPU_PROFILE", ""),
		AppURL:                      strings.TrimRight(r.str("APP_URL", localURL(httpAddr)), "/"),
		LogLevel:                    r.str("LOG_LEVEL", "info"),
		LogFormat:                   r.str("LOG_FORMAT", "json"),
		MaxUploadBytes:              r.int64("MAX_UPLOAD_BYTES", 1<<30),
		MaxJSONBytes:                r.int64("MAX_JSON_BYTES", 1<<20),
		ReadHeaderTimeout:           r.duration("READ_HEADER_TIMEOUT", 10*time.Second),
		BodyReadTimeout:             r.duration("BODY_READ_TIMEOUT", 30*time.Second),
		UploadReadTimeout:           r.duration("UPLOAD_READ_TIMEOUT", 5*time.Minute),
		MaxConcurrentUploads:        int(r.int64("MAX_CONCURRENT_UPLOADS", 8)),
		HoldDuration:                r.duration("HOLD_DURATION", 15*time.Minute),
		ReconcileInterval:           r.duration("RECONCILE_INTERVAL", 15*time.Minute),
		ShutdownTimeout:             r.duration("SHUTDOWN_TIMEOUT", 20*time.Second),
		WorkerConcurrency:           int(r.int64("WORKER_CONCURRENCY", 8)),
		DBMaxConns:                  int(r.int64("DB_MAX_CONNS", 32)),
		AppSecret:                   r.str("APP_SECRET", ""),
		ShopifyAPIKey:               r.str("SHOPIFY_API_KEY", ""),
		ShopifyAPISecret:            r.str("SHOPIFY_API_SECRET", ""),
		ShopifyScopes:               r.str("SHOPIFY_SCOPES", "read_orders,write_discounts,read_discounts"),
		ShopifyAPIVersion:           r.str("SHOPIFY_API_VERSION", "2025-01"),
		ShopifyAdminURL:             r.str("SHOPIFY_ADMIN_URL", "https://{shop}"),
		ValidationFailuresPerMinute: int(r.int64("VALIDATION_FAILURES_PER_MINUTE", 30)),
		RedeemHandOutsPerClient:     int(r.int64("REDEEM_HANDOUTS_PER_CLIENT", 20)),
		RedeemHandOutsPerLink:       int(r.int64("REDEEM_HANDOUTS_PER_LINK", 6000)),
		TrustedProxies:              r.list("TRUSTED_PROXIES"),
		AllowPrivateNetworks:        r.boolean("ALLOW_PRIVATE_NETWORKS", false),
		TwilioAPIURL:                r.str("TWILIO_API_URL", "https://api.twilio.com"),
		FCMAPIURL:                   r.str("FCM_API_URL", "https://fcm.googleapis.com"),
		WebhooksAllowPrivate:        r.boolean("WEBHOOKS_ALLOW_PRIVATE", false),
		AppBridgeURL:                r.str("APP_BRIDGE_URL", "https://cdn.shopify.com/shopifycloud/app-bridge.js"),
	}
	if len(r.errs) > 0 {
		return Config{}, errors.Join(r.errs...)
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	for name, raw := range map[string]string{"DATABASE_URL": c.DatabaseURL, "REDIS_URL": c.RedisURL, "APP_URL": c.AppURL, "APP_BRIDGE_URL": c.AppBridgeURL} {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme == "" || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: %q is not a URL with a scheme and a host", name, mask(raw)))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel))
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT: %q is not json or text", c.LogFormat))
	}
	positive := map[string]int64{
		"MAX_UPLOAD_BYTES": c.MaxUploadBytes, "MAX_JSON_BYTES": c.MaxJSONBytes,
		"WORKER_CONCURRENCY": int64(c.WorkerConcurrency), "DB_MAX_CONNS": int64(c.DBMaxConns),
		"READ_HEADER_TIMEOUT": int64(c.ReadHeaderTimeout), "BODY_READ_TIMEOUT": int64(c.BodyReadTimeout),
		"UPLOAD_READ_TIMEOUT": int64(c.UploadReadTimeout), "MAX_CONCURRENT_UPLOADS": int64(c.MaxConcurrentUploads),
		"HOLD_DURATION": int64(c.HoldDuration), "RECONCILE_INTERVAL": int64(c.ReconcileInterval), "SHUTDOWN_TIMEOUT": int64(c.ShutdownTimeout),
		"VALIDATION_FAILURES_PER_MINUTE": int64(c.ValidationFailuresPerMinute),
		"REDEEM_HANDOUTS_PER_CLIENT":     int64(c.RedeemHandOutsPerClient), "REDEEM_HANDOUTS_PER_LINK": int64(c.RedeemHandOutsPerLink),
	}
	for name, v := range positive {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	if c.MetricsAddr != "" && c.MetricsAddr != MetricsOff {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			errs = append(errs, fmt.Errorf("METRICS_ADDR: %q is not host:port or %q", c.MetricsAddr, MetricsOff))
		}
	}
	switch c.OTelProtocol {
	case "", "grpc", "http/protobuf":
	default:
		errs = append(errs, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL: %q is not grpc or http/protobuf", c.OTelProtocol))
	}
	if !validQueuePrefix(c.QueuePrefix) {
		errs = append(errs, fmt.Errorf("QUEUE_PREFIX: %q may hold only letters, digits, '-', '_' and '.', at most %d", c.QueuePrefix, maxQueuePrefix))
	}
	if c.AppSecret != "" && len(c.AppSecret) < 32 {
		errs = append(errs, errors.New("APP_SECRET must be at least 32 characters"))
	}
	if !strings.Contains(c.ShopifyAdminURL, "{shop}") {
		errs = append(errs, errors.New("SHOPIFY_ADMIN_URL must contain {shop}"))
	}
	return errors.Join(errs...)
}

// maxQueuePrefix bounds QUEUE_PREFIX's length: it is in every key of every queue.
const maxQueuePrefix = 32

// validQueuePrefix says whether prefix can go before asynq's queue names: asynq puts a queue's
// name inside the hash tag of its keys (asynq:{name}:…), where a brace would change the tag (asynq
// issue #480) and a colon or a space would blur the key's parts, so only letters, digits, '-',
// '_' and '.' are allowed.
func validQueuePrefix(prefix string) bool {
	if len(prefix) > maxQueuePrefix {
		return false
	}
	for _, r := range prefix {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// MetricsOff is the METRICS_ADDR that serves no metrics.
const MetricsOff = "off"

// Default metrics addresses of the processes, on loopback: a Prometheus on the same host (or a
// METRICS_ADDR such as ":9090" in a container) scrapes them.
const (
	DefaultGatewayMetricsAddr = "127.0.0.1:9090"
	DefaultWorkerMetricsAddr  = "127.0.0.1:9091"
)

// MetricsAddrFor is where process ("gateway" or "worker") serves its metrics: METRICS_ADDR, else
// the process's default; "" when METRICS_ADDR is "off".
func (c Config) MetricsAddrFor(process string) string {
	switch {
	case c.MetricsAddr == MetricsOff:
		return ""
	case c.MetricsAddr != "":
		return c.MetricsAddr
	case process == "worker":
		return DefaultWorkerMetricsAddr
	}
	return DefaultGatewayMetricsAddr
}

// localURL is the http URL of the listening address addr as seen from the same machine: an
// address that names no host (":9090", "0.0.0.0:9090", "[::]:9090") is localhost.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://localhost:8080"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Fields lists the settings for the start-up log as slog key/value pairs, secrets masked.
func (c Config) Fields() []any {
	return []any{
		"database_url", mask(c.DatabaseURL), "redis_url", mask(c.RedisURL), "redis_cluster_addrs", c.RedisClusterAddrs,
		"queue_prefix", c.QueuePrefix,
		"http_addr", c.HTTPAddr, "metrics_addr", c.MetricsAddr, "otel_endpoint", mask(c.OTelEndpoint),
		"app_url", c.AppURL, "log_level", c.LogLevel, "max_upload_bytes", c.MaxUploadBytes,
		"hold_duration", c.HoldDuration.String(), "reconcile_interval", c.ReconcileInterval.String(), "worker_concurrency", c.WorkerConcurrency,
		"db_max_conns", c.DBMaxConns, "app_secret", secretState(c.AppSecret),
		"shopify_api_key", c.ShopifyAPIKey, "shopify_api_secret", secretState(c.ShopifyAPISecret),
		"shopify_api_version", c.ShopifyAPIVersion, "shopify_admin_url", c.ShopifyAdminURL, "app_bridge_url", c.AppBridgeURL,
	}
}

// mask hides the password of a URL.
func mask(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

func secretState(s string) string {
	if s == "" {
		return "(unset)"
	}
	return "(set, masked)"
}

type reader struct {
	getenv func(string) string
	errs   []error
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) list(name string) []string {
	var out []string
	for _, v := range strings.Split(r.getenv(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (r *reader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not true or false", name, v))
	}
	return b
}

func (r *reader) int64(name string, def int64) int64 {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a whole number", name, v))
	}
	return n
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%s: %q is not a duration such as 15m or 30s", name, v))
	}
	return d
}
