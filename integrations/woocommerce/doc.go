// Package woocommerce is Coupongate's WooCommerce connector: a store connected with a REST API key
// delivers its order webhooks here, and the list codes are pushed to it as coupons.
//
// Pure pieces (no I/O, no state):
//   - VerifyWebhook checks the X-WC-Webhook-Signature of a delivery: the base64 HMAC-SHA256 of the
//     raw body, keyed with the webhook's secret after WordPress's HTML-entity decoding. SignWebhook
//     computes it, for fakes and tests.
//   - PingWebhookID recognises the unsigned "webhook_id=<id>" form post a store sends to a new
//     delivery URL, to be answered 200 before any signature check.
//   - ParseOrder reads a REST order (a webhook body or a listed order) into an Order: its id,
//     status, coupon codes and customer. Order.Statuses maps the status to core's order statuses
//     under the connection's paid statuses (DefaultPaidStatuses by default), and Order.Events
//     makes core's order events of it.
//
// WooCommerce lower-cases coupon codes and sends them so. It retries no failed delivery and may
// fold quick status changes into one delivery built when it is sent, so an order is applied by
// its id and current status, idempotently.
//
// Every secret is compared in constant time (hmac.Equal).
package woocommerce
