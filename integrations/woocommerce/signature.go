package woocommerce

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// MaxWebhookBytes bounds the body of a webhook delivery read before it is verified: an order with
// many lines and meta data stays far below it.
const MaxWebhookBytes = 2 << 20

// Webhook request headers WooCommerce sets on every delivery (WC_Webhook::deliver); net/http
// canonicalises header names, so any case works with http.Header.Get. The ping sends none of them.
const (
	// HeaderSignature is the base64 of the HMAC-SHA256 of the raw body (see SignWebhook).
	HeaderSignature = "X-WC-Webhook-Signature"
	// HeaderTopic is the webhook's topic, e.g. "order.updated".
	HeaderTopic = "X-WC-Webhook-Topic"
	// HeaderResource is the topic's resource, e.g. "order".
	HeaderResource = "X-WC-Webhook-Resource"
	// HeaderEvent is the topic's event, e.g. "updated".
	HeaderEvent = "X-WC-Webhook-Event"
	// HeaderWebhookID is the webhook's numeric id in the store.
	HeaderWebhookID = "X-WC-Webhook-ID"
	// HeaderDeliveryID is wp_hash(webhook id . current second): two deliveries of one webhook in
	// the same second share it, so it is no idempotency key.
	HeaderDeliveryID = "X-WC-Webhook-Delivery-ID"
	// HeaderSource is the store's home_url('/'), e.g. "https://shop.example.com/".
	HeaderSource = "X-WC-Webhook-Source"
)

// SignWebhook returns the X-WC-Webhook-Signature value WooCommerce sends with body: the standard,
// padded base64 of the HMAC-SHA256 of the raw body, keyed with the webhook's secret after
// WordPress's wp_specialchars_decode(secret, ENT_QUOTES) (WC_Webhook::generate_signature). So a
// secret stored as "a&amp;b" signs with the key "a&b", as the store does. It is what a fake store
// or a test signs a delivery with.
func SignWebhook(body []byte, secret string) string {
	return base64.StdEncoding.EncodeToString(webhookSum(body, secret))
}

// VerifyWebhook reports whether signature (the X-WC-Webhook-Signature value, surrounding space
// allowed) is the signature SignWebhook gives body under secret. Call it on the exact bytes
// received, before parsing them. The comparison is constant-time (hmac.Equal); an empty secret,
// an empty signature, or a signature that is not the strict, padded base64 of a SHA-256 digest
// never verifies. Only SHA-256 is accepted: a store whose woocommerce_webhook_hash_algorithm
// filter picks another algorithm does not verify.
func VerifyWebhook(body []byte, signature, secret string) bool {
	sig := strings.TrimSpace(signature)
	if secret == "" || sig == "" || len(sig) != base64.StdEncoding.EncodedLen(sha256.Size) {
		return false
	}
	// Strict refuses non-zero padding bits, so each digest has exactly one accepted spelling.
	sum, err := base64.StdEncoding.Strict().DecodeString(sig)
	if err != nil || len(sum) != sha256.Size {
		return false
	}
	return hmac.Equal(sum, webhookSum(body, secret))
}

func webhookSum(body []byte, secret string) []byte {
	m := hmac.New(sha256.New, []byte(specialcharsDecode(secret)))
	m.Write(body)
	return m.Sum(nil)
}

// The zero-padding normalisation of WordPress's wp_specialchars_decode with ENT_QUOTES, applied
// one pattern after the other over the whole text, in WordPress's order.
var entityPadding = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`&#0*39;`), "&#039;"},
	{regexp.MustCompile(`(?i)&#x0*27;`), "&#x27;"},
	{regexp.MustCompile(`&#0*34;`), "&#034;"},
	{regexp.MustCompile(`(?i)&#x0*22;`), "&#x22;"},
	{regexp.MustCompile(`&#0*60;`), "&#060;"},
	{regexp.MustCompile(`&#0*62;`), "&#062;"},
	{regexp.MustCompile(`&#0*38;`), "&#038;"},
	{regexp.MustCompile(`(?i)&#x0*26;`), "&#x26;"},
}

// entityReplacer is the translation table of wp_specialchars_decode with ENT_QUOTES. No key is a
// prefix of another, so strings.Replacer's single left-to-right pass does what PHP's strtr does:
// replaced text is never searched again ("&amp;lt;" decodes to "&lt;").
var entityReplacer = strings.NewReplacer(
	"&#039;", "'", "&#x27;", "'",
	"&quot;", `"`, "&#034;", `"`, "&#x22;", `"`,
	"&lt;", "<", "&#060;", "<", "&gt;", ">", "&#062;", ">",
	"&amp;", "&", "&#038;", "&", "&#x26;", "&",
)

// specialcharsDecode is WordPress's wp_specialchars_decode(text, ENT_QUOTES): it decodes &amp;
// &lt; &gt; &quot; &#039; (and their zero-padded decimal and hex forms, such as &#39; and &#x27;)
// and nothing else.
func specialcharsDecode(text string) string {
	if !strings.Contains(text, "&") {
		return text
	}
	for _, p := range entityPadding {
		text = p.re.ReplaceAllLiteralString(text, p.with)
	}
	return entityReplacer.Replace(text)
}

// PingWebhookID recognises WooCommerce's webhook ping (WC_Webhook::deliver_ping), which a store
// sends when a webhook is created or its delivery URL changes, before the webhook's id is known to
// the caller: a POST whose form body is exactly "webhook_id=<digits>", with no
// X-WC-Webhook-Signature header, and a Content-Type that is application/x-www-form-urlencoded
// (any parameters, such as a charset) or absent. It returns the id as a canonical decimal. Anything
// else is not a ping (ok false), in particular every signed delivery. Answer a ping with exactly
// 200 (WooCommerce counts any other code as a failure) and act on nothing: it is unsigned.
func PingWebhookID(header http.Header, body []byte) (id string, ok bool) {
	if header != nil {
		if len(header.Values(HeaderSignature)) > 0 {
			return "", false
		}
		if ct := header.Values("Content-Type"); len(ct) > 1 {
			return "", false
		} else if len(ct) == 1 {
			mt, _, err := mime.ParseMediaType(ct[0])
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return "", false
			}
		}
	}
	digits, found := strings.CutPrefix(string(body), "webhook_id=")
	if !found || digits == "" || len(digits) > 20 || strings.Trim(digits, "0123456789") != "" {
		return "", false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return "", false
	}
	return strconv.FormatUint(n, 10), true
}
