package worker

import (
	"context"

	"github.com/google/uuid"
)

// The one-delivery webhook tasks that older gateways queue: nothing enqueues them any more, and
// each runs the delivery's merchant's batch (TypeWebhookBatch), so that every delivery is
// applied by a batch that holds the merchant's lock.
const (
	// TypeShopifyWebhook processed one stored Shopify webhook delivery.
	TypeShopifyWebhook = "shopify:webhook"
	// TypeWooCommerceWebhook processed one stored WooCommerce delivery.
	TypeWooCommerceWebhook = "woocommerce:webhook"
)

// WebhookPayload names a stored webhook delivery (of either platform): the payload of the
// one-delivery tasks older gateways queue.
type WebhookPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// runLegacyWebhook is the handler of TypeShopifyWebhook and TypeWooCommerceWebhook: the
// merchant's batch.
func runLegacyWebhook(r WebhookBatchRunner) func(context.Context, WebhookPayload) error {
	return func(ctx context.Context, p WebhookPayload) error { return r.Run(ctx, p.MerchantID) }
}
