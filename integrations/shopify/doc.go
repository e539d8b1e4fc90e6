// Package shopify holds the pure, self-contained pieces of Coupongate's Shopify app: the checks
// that tell a genuine Shopify request from a forged one, and the reduction of Shopify's order
// webhooks to core's platform-neutral order event.
//
//   - VerifyQuery checks the hex HMAC Shopify puts on install, OAuth callback and embedded-app
//     URLs, with its timestamp and shop.
//   - VerifyWebhook checks the base64 HMAC of a webhook delivery's raw body.
//   - VerifySessionToken checks the HS256 session token (JWT) of calls from the embedded app.
//   - ValidShopDomain and CanonicalShop accept only "<name>.myshopify.com" shop domains.
//   - OrderEventFromWebhook turns an orders/* or refunds/create body into the statuses to apply,
//     the discount codes to redeem and the manual discount titles merely to record.
//
// Nothing here does I/O, keeps state or reads the clock: every check takes the current time from
// its caller. Every secret is compared in constant time (hmac.Equal). The Sign* functions compute
// what Shopify sends, for fakes and tests.
//
// The package imports core only; it knows nothing of gin, gorm, asynq or the store.
package shopify
