package shopify

import "errors"

// Sentinel errors. Every error the package returns wraps exactly one of them, so a caller can map
// it with errors.Is (the first four mean 401 for a request, the last two mean the delivery cannot
// be used); the message of the returned error says what precisely was wrong.
var (
	// ErrSignature means the signature (query hmac, webhook header or token signature) is missing,
	// garbled, or does not match the signed data under any configured secret.
	ErrSignature = errors.New("shopify: invalid signature")

	// ErrExpired means a timestamp or token lifetime is outside the accepted window: a stale or
	// future query timestamp, an expired or not yet valid session token.
	ErrExpired = errors.New("shopify: outside the validity window")

	// ErrInvalidShop means the shop is missing or is not a "<name>.myshopify.com" domain.
	ErrInvalidShop = errors.New("shopify: invalid shop")

	// ErrInvalidToken means a session token is malformed or its header or claims do not fit
	// (algorithm, audience, issuer or destination).
	ErrInvalidToken = errors.New("shopify: invalid session token")

	// ErrNoSecret means the check was asked to run without a secret (or API key): a configuration
	// error, never the client's fault, but still nothing is accepted.
	ErrNoSecret = errors.New("shopify: no app secret configured")

	// ErrUnsupportedTopic means OrderEventFromWebhook was given a topic it does not reduce to an
	// order event; the caller acknowledges such deliveries without acting on them.
	ErrUnsupportedTopic = errors.New("shopify: not an order topic")

	// ErrInvalidPayload means a webhook body is not the JSON resource its topic promises.
	ErrInvalidPayload = errors.New("shopify: invalid webhook body")
)
