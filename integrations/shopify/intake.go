package shopify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// MaxWebhookBytes is the largest webhook body accepted (413 above). Shopify's order bodies are a
// few tens of kilobytes; the cap keeps an unsigned flood from costing memory.
const MaxWebhookBytes = 2 << 20

// Answers of Intake.Receive, sent back as {"status": …} with a 200.
const (
	WebhookAccepted  = "accepted"  // stored and queued for processing
	WebhookDuplicate = "duplicate" // this event was stored before: dropped
	WebhookIgnored   = "ignored"   // a genuine delivery for a shop that is not (or no longer) ours
)

// Receipt statuses kept on webhook_deliveries.
const (
	ReceiptReceived  = "received"
	ReceiptProcessed = "processed"
	ReceiptFailed    = "failed"
	ReceiptIgnored   = "ignored"
)

// Errors of the intake, in core's shape so the API renders them.
var (
	// ErrWebhookSignature answers a receipt whose X-Shopify-Hmac-Sha256 does not verify, or any
	// receipt when no app secret is configured.
	ErrWebhookSignature = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_signature", Message: "the X-Shopify-Hmac-Sha256 signature does not match the body"}
	// ErrWebhookShop answers a signed receipt whose X-Shopify-Shop-Domain is not a shop domain.
	ErrWebhookShop = &core.Error{Kind: core.KindMalformed, Code: "invalid_shop", Message: "X-Shopify-Shop-Domain is not a <name>.myshopify.com domain"}
	// ErrWebhookHeaders answers a signed receipt without a topic or without an event or webhook id.
	ErrWebhookHeaders = &core.Error{Kind: core.KindMalformed, Code: "malformed_webhook", Message: "X-Shopify-Topic and X-Shopify-Event-Id (or X-Shopify-Webhook-Id) are required"}
)

// ShopRoute is the merchant and connection a shop belongs to.
type ShopRoute = core.ShopRoute

// WebhookReceipt is one stored webhook receipt.
type WebhookReceipt = core.WebhookReceipt

// WebhookIntakeStore is what the intake needs from the database.
type WebhookIntakeStore interface {
	// StoreWebhookReceipt finds the merchant the receipt's shop is routed to and stores d for
	// it (d.MerchantID is filled in), unless a receipt with the same (merchant, platform, shop,
	// event key) exists, in one round trip. found is false for a shop that is not routed;
	// inserted tells whether d was stored.
	StoreWebhookReceipt(ctx context.Context, d *WebhookReceipt) (found, inserted bool, err error)
}

// WebhookQueue queues the processing of a merchant's stored receipts (worker.Queue implements
// it): one batch task for all the receipts stored until it reads them.
type WebhookQueue interface {
	EnqueueWebhookBatch(ctx context.Context, merchantID uuid.UUID) error
}

// Intake receives Shopify webhook receipts: it verifies, stores and queues them, and nothing
// more, so it answers well within Shopify's 5 s.
type Intake struct {
	secrets []string
	store   WebhookIntakeStore
	queue   WebhookQueue
	log     *slog.Logger
}

// NewIntake returns the intake. secrets are the app secret and, during a rotation, the previous
// one; with no non-empty secret every receipt is refused.
func NewIntake(store WebhookIntakeStore, queue WebhookQueue, log *slog.Logger, secrets ...string) *Intake {
	return &Intake{secrets: secrets, store: store, queue: queue, log: log}
}

// Receive handles one webhook: header are the request's headers and body its raw bytes (the
// caller caps them at MaxWebhookBytes). The signature is checked before anything is parsed, then
// that the body fits the topic and names the shop of the headers (CheckWebhook), which the
// signature does not cover. It answers WebhookAccepted, WebhookDuplicate or WebhookIgnored, or an
// error: ErrWebhookSignature, ErrWebhookShop, ErrWebhookHeaders, ErrWebhookMismatch (logged, with
// the topic and shop but not the body), or a store error (the receipt was not stored; Shopify
// retries). The body is stored scrubbed of what PostgreSQL cannot store (core.ScrubJSON).
// A failed enqueue after the receipt was stored is logged and still accepted: the receipt is durable.
func (in *Intake) Receive(ctx context.Context, header http.Header, body []byte) (string, error) {
	if err := VerifyWebhook(body, header.Get(HeaderHmac), in.secrets...); err != nil {
		if errors.Is(err, ErrNoSecret) {
			in.log.ErrorContext(ctx, "shopify webhook refused: SHOPIFY_API_SECRET is not configured")
		}
		return "", ErrWebhookSignature
	}
	shop, ok := CanonicalShop(strings.TrimSpace(header.Get(HeaderShopDomain)))
	if !ok {
		return "", ErrWebhookShop
	}
	topic := strings.ToLower(strings.TrimSpace(header.Get(HeaderTopic)))
	webhookID := strings.TrimSpace(header.Get(HeaderWebhookID))
	key := strings.TrimSpace(header.Get(HeaderEventID))
	if key == "" {
		key = webhookID
	}
	if topic == "" || key == "" || len(topic) > 255 || len(key) > 255 || len(webhookID) > 255 ||
		!utf8.ValidString(topic) || !utf8.ValidString(key) || !utf8.ValidString(webhookID) {
		return "", ErrWebhookHeaders
	}
	if err := CheckWebhook(topic, shop, body); err != nil {
		// Recorded here, and only here: the body is not stored, nor logged (it may be personal data).
		in.log.WarnContext(ctx, "shopify webhook refused: the body does not match its headers",
			"topic", topic, "shop", shop, "webhook_id", webhookID, "event_key", key, "reason", err.Error())
		return "", ErrWebhookMismatch
	}
	// What PostgreSQL cannot store as text (a NUL in a note, say) is dropped from the stored body,
	// so the receipt is applied without it rather than failing for good.
	d := WebhookReceipt{
		ID: uuid.New(), Platform: Platform, Shop: shop, Topic: topic,
		EventKey: key, WebhookID: webhookID, Body: core.ScrubJSON(body), Compliance: IsComplianceTopic(topic),
		Status: ReceiptReceived,
	}
	if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(header.Get(HeaderTriggeredAt))); err == nil {
		t = t.UTC()
		d.TriggeredAt = &t
	}
	found, inserted, err := in.store.StoreWebhookReceipt(ctx, &d)
	if err != nil {
		return "", fmt.Errorf("shopify webhook: store receipt: %w", err)
	}
	if !found {
		in.log.InfoContext(ctx, "shopify webhook for an unknown shop ignored", "shop", shop, "topic", topic)
		return WebhookIgnored, nil
	}
	if !inserted {
		return WebhookDuplicate, nil
	}
	if err := in.queue.EnqueueWebhookBatch(ctx, d.MerchantID); err != nil {
		// Stored: the sweeper queues receipts still received older than core.StallAfter again.
		in.log.WarnContext(ctx, "shopify webhook stored but not queued", "delivery_id", d.ID, "merchant_id", d.MerchantID, "err", err)
	}
	return WebhookAccepted, nil
}
