// Package shopify is Coupongate's Shopify app: the checks that tell a genuine Shopify request from
// a forged one, the reduction of Shopify's order webhooks to core's platform-neutral order event,
// and the webhook intake and processing built on them.
//
// Pure pieces (no I/O, no state, the current time passed in):
//   - VerifyQuery checks the hex HMAC Shopify puts on install, OAuth callback and embedded-app
//     URLs, with its timestamp and shop.
//   - VerifyWebhook checks the base64 HMAC of a webhook delivery's raw body.
//   - VerifySessionToken checks the HS256 session token (JWT) of calls from the embedded app.
//   - ValidShopDomain and CanonicalShop accept only "<name>.myshopify.com" shop domains.
//   - OrderEventFromWebhook turns an orders/* or refunds/create body into the statuses to apply,
//     the discount codes to redeem and the manual discount titles merely to record.
//
// Services, over the ports they declare (implemented by the store and the worker's queue):
//   - Intake verifies a delivery before reading it, stores it durably once (deduplicated on
//     X-Shopify-Event-Id) and queues it.
//   - Processor applies a stored delivery: order topics through core.Redeemer, app/uninstalled,
//     and the compliance topics (customers/data_request stores an export of the customer's codes
//     and timelines, customers/redact erases their personal data, shop/redact deletes the shop's).
//
// Every secret is compared in constant time (hmac.Equal). The Sign* functions compute what Shopify
// sends, for fakes and tests. Subpackages: admin (the genqlient Admin GraphQL client) and
// shopifyfake (a fake Shopify for tests). The package imports core only; it knows nothing of gin,
// gorm, asynq or the store.
package shopify
