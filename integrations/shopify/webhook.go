package shopify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// Webhook request headers Shopify sets on every delivery (net/http canonicalises header names, so
// any case works with http.Header.Get).
const (
	HeaderHmac        = "X-Shopify-Hmac-Sha256"
	HeaderTopic       = "X-Shopify-Topic"
	HeaderShopDomain  = "X-Shopify-Shop-Domain"
	HeaderAPIVersion  = "X-Shopify-API-Version"
	HeaderWebhookID   = "X-Shopify-Webhook-Id"
	HeaderEventID     = "X-Shopify-Event-Id"
	HeaderTriggeredAt = "X-Shopify-Triggered-At"
)

// VerifyWebhook checks a webhook delivery: signatureHeader (the X-Shopify-Hmac-Sha256 value) must
// be the standard, padded base64 of the HMAC-SHA256 of the raw body keyed with one of secrets.
// Pass the current app secret and, during a rotation, the previous one (Shopify may sign with the
// old secret for up to an hour); empty secrets are skipped. Call it on the exact bytes received,
// before parsing them.
//
// The error wraps ErrSignature (missing, not base64, not 32 bytes, or matching no secret) or
// ErrNoSecret (no non-empty secret given).
func VerifyWebhook(body []byte, signatureHeader string, secrets ...string) error {
	var keys int
	for _, s := range secrets {
		if s != "" {
			keys++
		}
	}
	if keys == 0 {
		return fmt.Errorf("%w: VerifyWebhook was given no app secret", ErrNoSecret)
	}
	h := strings.TrimSpace(signatureHeader)
	if h == "" {
		return fmt.Errorf("%w: the delivery has no %s header", ErrSignature, HeaderHmac)
	}
	// Strict refuses non-zero padding bits, so each signature has exactly one accepted spelling; the
	// length check also catches the \r and \n the decoder would otherwise skip.
	sum, err := base64.StdEncoding.Strict().DecodeString(h)
	if err != nil || len(sum) != sha256.Size || len(h) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return fmt.Errorf("%w: the %s header is not the base64 of a SHA-256 digest", ErrSignature, HeaderHmac)
	}
	ok := false
	for _, s := range secrets {
		if s != "" && hmac.Equal(sum, webhookSum(body, s)) {
			ok = true // keep going: the time taken does not depend on which secret matched
		}
	}
	if !ok {
		return fmt.Errorf("%w: the %s header does not match the body under any configured secret", ErrSignature, HeaderHmac)
	}
	return nil
}

// SignWebhook returns the X-Shopify-Hmac-Sha256 value Shopify sends with body: what a fake Shopify
// or a test signs a delivery with.
func SignWebhook(body []byte, secret string) string {
	return base64.StdEncoding.EncodeToString(webhookSum(body, secret))
}

func webhookSum(body []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}
