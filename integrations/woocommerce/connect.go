package woocommerce

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/netguard"
)

// WebhookTopics are the topics a connected store delivers, each to a webhook with a secret of
// its own.
var WebhookTopics = []string{"order.created", "order.updated"}

// Errors of connecting, in core's shape.
var (
	ErrSiteURL = &core.Error{Kind: core.KindInvalid, Code: "invalid_site_url",
		Message: "site_url must be the store's http:// or https:// address, such as https://shop.example.com"}
	ErrKeysRefused = &core.Error{Kind: core.KindInvalid, Code: "invalid_credentials",
		Message: "the store refused the consumer key and secret; create a REST API key with read/write access in WooCommerce → Settings → Advanced → REST API"}
	ErrStoreUnreachable = &core.Error{Kind: core.KindInvalid, Code: "store_unreachable",
		Message: "the store's REST API could not be reached at site_url (is it a WooCommerce store, with pretty permalinks on?)"}
	ErrWebhooksRefused = &core.Error{Kind: core.KindInvalid, Code: "webhooks_refused",
		Message: "the store refused to create the order webhooks (the key needs read/write access)"}
	ErrConnectState = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_state",
		Message: "the authorization's user_id is not one Coupongate issued, or it expired; connect the store again"}
	ErrPaidStatuses = &core.Error{Kind: core.KindInvalid, Code: "invalid_field",
		Message: "paid_statuses: each must be a WooCommerce order status such as processing, completed or on-hold",
		Details: []core.FieldError{{Field: "paid_statuses", Message: "each must be a WooCommerce order status"}}}
)

// NotPaidStatuses can never count as paid.
var NotPaidStatuses = []string{"pending", "failed", "cancelled", "refunded", "checkout-draft", "auto-draft", "draft", "trash"}

// CanonicalSiteURL checks a store address and returns it without a trailing slash, query or
// fragment; ok is false for anything but an absolute http(s) URL with a host.
func CanonicalSiteURL(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	host := u.Hostname()
	if host == "" || strings.ContainsAny(host, " \t") {
		return "", false
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	// One store, one address: the scheme's default port is not part of it.
	if port := u.Port(); (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		u.Host = strings.ToLower(u.Hostname())
		if strings.Contains(u.Host, ":") {
			u.Host = "[" + u.Host + "]"
		}
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), true
}

// ConnectStore is what connecting needs from the database.
type ConnectStore interface {
	// ConnectStore connects the site to the merchant with its credentials (reconnecting the
	// merchant's connection to the same site when there is one).
	ConnectStore(ctx context.Context, c core.Connection, creds core.Credentials) (core.Connection, bool, error)
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	Credentials(ctx context.Context, merchantID, connectionID uuid.UUID) (core.Credentials, int64, error)
	SetRemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID, ids []string) error
	RemoteWebhooks(ctx context.Context, merchantID, connectionID uuid.UUID) ([]string, error)
	ForgetCredentials(ctx context.Context, merchantID, connectionID uuid.UUID) error
	MarkConnectionError(ctx context.Context, merchantID, connectionID uuid.UUID, reason string) error
	// LockConnection serialises setup work on one store of a merchant across processes.
	LockConnection(ctx context.Context, merchantID, key uuid.UUID) (func(), error)
	// UseConnectNonce records an authorization's nonce; fresh is false when it was used before.
	UseConnectNonce(ctx context.Context, merchantID uuid.UUID, nonce string) (fresh bool, err error)
}

// ConnectQueue queues the second half of an app authorization (creating the webhooks).
type ConnectQueue interface {
	EnqueueFinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// Connector connects WooCommerce stores: with keys the merchant copied, or through WooCommerce's
// app authorization; and disconnects them.
type Connector struct {
	store  ConnectStore
	queue  ConnectQueue
	appURL string
	// stateKey signs the app authorization's user_id.
	stateKey []byte
	HTTP     *http.Client
	// AllowPrivate lets stores on loopback and private addresses be connected (tests, a store on
	// the same network); off, such an address is refused, so the gateway is not a way into the
	// operator's network.
	AllowPrivate bool
	log          *slog.Logger
	now          func() time.Time
	resolver     *net.Resolver
}

// NewConnector returns the connector; appURL is the public base URL deliveries are sent to and
// appSecret keys the app authorization's state.
func NewConnector(store ConnectStore, queue ConnectQueue, appURL, appSecret string, log *slog.Logger) *Connector {
	m := hmac.New(sha256.New, []byte(appSecret))
	m.Write([]byte("coupongate woocommerce connect state v1"))
	return &Connector{store: store, queue: queue, appURL: strings.TrimRight(appURL, "/"), stateKey: m.Sum(nil), log: log, now: time.Now,
		resolver: net.DefaultResolver}
}

// ConnectInput is what a merchant gives to connect a store with keys.
type ConnectInput struct {
	SiteURL        string
	ConsumerKey    string
	ConsumerSecret string
	// PaidStatuses overrides DefaultPaidStatuses.
	PaidStatuses []string
}

// lock serialises connect, webhook creation and disconnect of one merchant's store.
func (c *Connector) lock(ctx context.Context, merchantID uuid.UUID, site string) (func(), error) {
	return c.store.LockConnection(ctx, merchantID, uuid.NewSHA1(uuid.NameSpaceURL, []byte(site)))
}

// ErrPrivateSite refuses a store on a loopback or private address (unless the operator allows it).
var ErrPrivateSite = &core.Error{Kind: core.KindInvalid, Code: "invalid_site_url",
	Message: "site_url points to a loopback or private network address, which this gateway does not call"}

// checkAddress refuses a site whose host is or resolves to a non-public address (netguard's
// definition), unless AllowPrivate. The connections to the store are checked again when they are
// made (HTTP should dial through netguard).
func (c *Connector) checkAddress(ctx context.Context, site string) error {
	u, err := url.Parse(site)
	if err != nil {
		return ErrSiteURL
	}
	err = netguard.Guard{AllowPrivate: c.AllowPrivate, Resolver: c.resolver}.CheckHost(ctx, u.Hostname())
	switch {
	case err == nil:
		return nil
	case errors.Is(err, netguard.ErrForbidden):
		return ErrPrivateSite
	}
	e := *ErrStoreUnreachable
	e.Details = []core.FieldError{{Field: "site_url", Message: "the host name does not resolve"}}
	return &e
}

func (c *Connector) client(site string, creds core.Credentials) Store {
	return Store{SiteURL: site, ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, HTTP: c.HTTP}
}

func checkPaidStatuses(in []string) ([]string, error) {
	if in == nil {
		return nil, nil
	}
	var out []string
	for _, s := range in {
		s = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(s, "wc-")))
		if s == "" || len(s) > 40 || slices.Contains(NotPaidStatuses, s) || strings.ContainsAny(s, " \t/") {
			return nil, ErrPaidStatuses
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrPaidStatuses
	}
	return out, nil
}

// Connect checks the keys against the store, stores them sealed, and creates the store's order
// webhooks, each with a secret of its own, delivering to APP_URL/webhooks/woocommerce/{id}.
func (c *Connector) Connect(ctx context.Context, merchantID uuid.UUID, in ConnectInput) (core.Connection, bool, error) {
	site, ok := CanonicalSiteURL(in.SiteURL)
	if !ok {
		return core.Connection{}, false, ErrSiteURL
	}
	in.ConsumerKey, in.ConsumerSecret = strings.TrimSpace(in.ConsumerKey), strings.TrimSpace(in.ConsumerSecret)
	if in.ConsumerKey == "" || in.ConsumerSecret == "" || len(in.ConsumerKey) > 200 || len(in.ConsumerSecret) > 200 {
		return core.Connection{}, false, core.Invalid("consumer_key", "consumer_key and consumer_secret are required")
	}
	paid, err := checkPaidStatuses(in.PaidStatuses)
	if err != nil {
		return core.Connection{}, false, err
	}
	if err := c.checkAddress(ctx, site); err != nil {
		return core.Connection{}, false, err
	}
	creds := core.Credentials{ConsumerKey: in.ConsumerKey, ConsumerSecret: in.ConsumerSecret}
	if err := c.checkKeys(ctx, site, creds); err != nil {
		return core.Connection{}, false, err
	}
	release, err := c.lock(ctx, merchantID, site)
	if err != nil {
		return core.Connection{}, false, err
	}
	conn, created, err := c.connect(ctx, merchantID, site, creds, paid)
	release()
	if err != nil {
		return core.Connection{}, false, err
	}
	if err := c.FinishConnect(ctx, merchantID, conn.ID); err != nil {
		var ce *core.Error
		if errors.As(err, &ce) {
			return core.Connection{}, false, err
		}
		// The store stumbled while the webhooks were made (5xx, a timeout): the worker tries
		// again; the connection stands.
		c.log.WarnContext(ctx, "woocommerce webhooks not created yet; the worker retries", "site", site, "err", err)
		if err := c.queue.EnqueueFinishConnect(ctx, merchantID, conn.ID); err != nil {
			return core.Connection{}, false, err
		}
	}
	conn, err = c.store.GetConnection(ctx, merchantID, conn.ID)
	return conn, created, err
}

func (c *Connector) checkKeys(ctx context.Context, site string, creds core.Credentials) error {
	err := c.client(site, creds).SystemStatus(ctx)
	var apiErr *APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden):
		return ErrKeysRefused
	default:
		// What went wrong, without echoing what the address answered.
		reason := "no answer"
		if errors.As(err, &apiErr) && apiErr.Status != 0 {
			reason = fmt.Sprintf("HTTP %d %s", apiErr.Status, apiErr.Code)
		} else if errors.Is(err, context.DeadlineExceeded) {
			reason = "timed out"
		}
		e := *ErrStoreUnreachable
		e.Details = []core.FieldError{{Field: "site_url", Message: reason}}
		return &e
	}
}

// connect stores the connection with fresh webhook secrets (stored before the webhooks exist, so
// the first delivery verifies).
func (c *Connector) connect(ctx context.Context, merchantID uuid.UUID, site string, creds core.Credentials, paid []string) (core.Connection, bool, error) {
	creds.WebhookSecrets = nil
	for range WebhookTopics {
		creds.WebhookSecrets = append(creds.WebhookSecrets, randomSecret())
	}
	return c.store.ConnectStore(ctx, core.Connection{MerchantID: merchantID, Platform: Platform, Shop: site, PaidStatuses: paid}, creds)
}

// FinishConnect creates the store's webhooks for a connection whose keys are stored, replacing
// webhooks made by an earlier connection to the same store. Running it twice makes no second
// pair: the webhooks of the first run are deleted first.
func (c *Connector) FinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	conn, err := c.store.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	release, err := c.lock(ctx, merchantID, conn.Shop)
	if err != nil {
		return err
	}
	defer release()
	// Read again under the lock: a reconnect or a disconnect may have come first.
	if conn, err = c.store.GetConnection(ctx, merchantID, connectionID); err != nil {
		return err
	}
	if conn.State != core.ConnectionActive {
		return nil
	}
	creds, _, err := c.store.Credentials(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	if len(creds.WebhookSecrets) < len(WebhookTopics) {
		return fmt.Errorf("woocommerce connect: the connection has %d webhook secrets", len(creds.WebhookSecrets))
	}
	api := c.client(conn.Shop, creds)
	old, err := c.store.RemoteWebhooks(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	for _, id := range old {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil {
			if err := api.DeleteWebhook(ctx, n); err != nil {
				return err
			}
		}
	}
	delivery := c.appURL + "/webhooks/woocommerce/" + connectionID.String()
	var ids []string
	for i, topic := range WebhookTopics {
		w, err := api.CreateWebhook(ctx, WebhookInput{Name: "Coupongate " + topic, Topic: topic, DeliveryURL: delivery,
			Secret: creds.WebhookSecrets[i], Status: "active"})
		if err != nil {
			if reason, ok := AddressRefused(err); ok {
				_ = c.store.SetRemoteWebhooks(ctx, merchantID, connectionID, ids)
				_ = c.store.MarkConnectionError(ctx, merchantID, connectionID, reason)
				return ErrPrivateSite
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) && !apiErr.Retryable() {
				e := *ErrWebhooksRefused
				e.Details = []core.FieldError{{Field: "consumer_key", Message: apiErr.Code + ": " + apiErr.Message}}
				_ = c.store.SetRemoteWebhooks(ctx, merchantID, connectionID, ids)
				_ = c.store.MarkConnectionError(ctx, merchantID, connectionID, e.Message)
				return &e
			}
			_ = c.store.SetRemoteWebhooks(ctx, merchantID, connectionID, ids)
			return err
		}
		ids = append(ids, strconv.FormatInt(w.ID, 10))
	}
	if err := c.store.SetRemoteWebhooks(ctx, merchantID, connectionID, ids); err != nil {
		return err
	}
	c.log.InfoContext(ctx, "woocommerce store connected", "site", conn.Shop, "merchant_id", merchantID, "connection_id", connectionID, "webhooks", ids)
	return nil
}

// Disconnect deletes a disconnected store's webhooks and forgets its keys. Running it twice is
// harmless.
func (c *Connector) Disconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error {
	conn, err := c.store.GetConnection(ctx, merchantID, connectionID)
	if errors.Is(err, core.ErrConnectionNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	release, err := c.lock(ctx, merchantID, conn.Shop)
	if err != nil {
		return err
	}
	defer release()
	if conn, err = c.store.GetConnection(ctx, merchantID, connectionID); err != nil {
		return err
	}
	if conn.State == core.ConnectionActive {
		return nil // connected again meanwhile
	}
	creds, _, err := c.store.Credentials(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	ids, err := c.store.RemoteWebhooks(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	if creds.ConsumerKey != "" {
		api := c.client(conn.Shop, creds)
		for _, id := range ids {
			n, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				continue
			}
			err = api.DeleteWebhook(ctx, n)
			var apiErr *APIError
			if errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden) {
				break // the key was revoked: WooCommerce keeps the webhooks, which fail and get disabled
			}
			if err != nil {
				return err
			}
		}
	}
	return c.store.ForgetCredentials(ctx, merchantID, connectionID)
}

// State lifetime of an app authorization.
const connectStateTTL = 30 * time.Minute

// AuthorizeURL starts WooCommerce's app authorization for the merchant: the store's
// /wc-auth/v1/authorize with a signed, expiring user_id that names the merchant and the site.
// returnURL is where the merchant lands afterwards ("" for APP_URL).
func (c *Connector) AuthorizeURL(ctx context.Context, merchantID uuid.UUID, siteURL, returnURL string) (string, error) {
	site, ok := CanonicalSiteURL(siteURL)
	if !ok {
		return "", ErrSiteURL
	}
	if err := c.checkAddress(ctx, site); err != nil {
		return "", err
	}
	if returnURL == "" {
		returnURL = c.appURL + "/"
	} else if u, err := url.Parse(returnURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", core.Invalid("return_url", "must be an absolute http(s) URL")
	}
	q := url.Values{}
	q.Set("app_name", "Coupongate")
	q.Set("scope", "read_write")
	q.Set("user_id", c.signState(merchantID, site, c.now().Add(connectStateTTL)))
	q.Set("return_url", returnURL)
	q.Set("callback_url", c.appURL+"/woocommerce/callback")
	return site + "/wc-auth/v1/authorize?" + q.Encode(), nil
}

// signState makes the user_id: merchant, expiry, a nonce (it is taken once) and site, with an
// HMAC over them.
func (c *Connector) signState(merchantID uuid.UUID, site string, expires time.Time) string {
	payload := merchantID.String() + "|" + strconv.FormatInt(expires.Unix(), 10) + "|" + randomSecret()[:24] + "|" + site
	m := hmac.New(sha256.New, c.stateKey)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// openState checks a user_id made by signState and returns its merchant, nonce and site.
func (c *Connector) openState(state string) (uuid.UUID, string, string, error) {
	p, sig, ok := strings.Cut(state, ".")
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if !ok || err1 != nil || err2 != nil {
		return uuid.Nil, "", "", ErrConnectState
	}
	m := hmac.New(sha256.New, c.stateKey)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return uuid.Nil, "", "", ErrConnectState
	}
	parts := strings.SplitN(string(payload), "|", 4)
	if len(parts) != 4 {
		return uuid.Nil, "", "", ErrConnectState
	}
	merchantID, err := uuid.Parse(parts[0])
	exp, err2 := strconv.ParseInt(parts[1], 10, 64)
	if err != nil || err2 != nil || c.now().After(time.Unix(exp, 0)) {
		return uuid.Nil, "", "", ErrConnectState
	}
	return merchantID, parts[2], parts[3], nil
}

// AuthorizedKeys is the body WooCommerce posts to the callback URL.
type AuthorizedKeys struct {
	KeyID          string
	UserID         string
	ConsumerKey    string
	ConsumerSecret string
	Permissions    string
}

// AcceptKeys takes the keys WooCommerce posts after the merchant approved: it checks the state,
// stores the connection, and queues the webhooks' creation (WooCommerce is waiting for this
// answer, so nothing calls the store from here).
func (c *Connector) AcceptKeys(ctx context.Context, k AuthorizedKeys) (core.Connection, error) {
	merchantID, nonce, site, err := c.openState(k.UserID)
	if err != nil {
		return core.Connection{}, err
	}
	if k.Permissions != "read_write" {
		return core.Connection{}, core.Invalid("key_permissions", "must be read_write")
	}
	if k.ConsumerKey == "" || k.ConsumerSecret == "" || len(k.ConsumerKey) > 200 || len(k.ConsumerSecret) > 200 {
		return core.Connection{}, core.Invalid("consumer_key", "consumer_key and consumer_secret are required")
	}
	fresh, err := c.store.UseConnectNonce(ctx, merchantID, nonce)
	if err != nil {
		return core.Connection{}, err
	}
	if !fresh {
		return core.Connection{}, ErrConnectState // a replayed callback
	}
	release, err := c.lock(ctx, merchantID, site)
	if err != nil {
		return core.Connection{}, err
	}
	conn, _, err := c.connect(ctx, merchantID, site, core.Credentials{ConsumerKey: k.ConsumerKey, ConsumerSecret: k.ConsumerSecret}, nil)
	release()
	if err != nil {
		return core.Connection{}, err
	}
	// The keys are stored: the answer must be 200 whatever happens next, or WooCommerce deletes
	// the key. A failed enqueue is caught by reconciliation, which makes missing webhooks.
	if err := c.queue.EnqueueFinishConnect(ctx, merchantID, conn.ID); err != nil {
		c.log.ErrorContext(ctx, "woocommerce webhooks not queued; reconciliation will create them", "connection_id", conn.ID, "err", err)
	}
	return conn, nil
}

func randomSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
