package worker

import (
	"context"

	"github.com/google/uuid"
)

// The one-receipt webhook tasks that older gateways queue: nothing enqueues them any more, and
// each runs the receipt's merchant's batch (TypeWebhookBatch), so that every receipt is
// applied by a batch that holds the merchant's lock.
const (
	// TypeShopifyWebhook processed one stored Shopify webhook receipt.
	TypeShopifyWebhook = "shopify:webhook"
	// TypeWooCommerceWebhook processed one stored WooCommerce webhook receipt.
	TypeWooCommerceWebhook = "woocommerce:webhook"
)

// WebhookPayload names a stored webhook receipt (of either platform): the payload of the
// one-receipt tasks older gateways queue.
type WebhookPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	// ReceiptID keeps its JSON name: queued tasks carry it.
	ReceiptID uuid.UUID `json:"delivery_id"`
}

// runLegacyWebhook is the handler of TypeShopifyWebhook and TypeWooCommerceWebhook: the
// merchant's batch.
func runLegacyWebhook(r WebhookBatchRunner) func(context.Context, WebhookPayload) error {
	return func(ctx context.Context, p WebhookPayload) error { return r.Run(ctx, p.MerchantID) }
}
