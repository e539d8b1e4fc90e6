package shopifyfake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"
)

// Webhook is one delivery to sign and send. Empty IDs, time and version are
// filled in; reuse the IDs to replay a duplicate delivery.
type Webhook struct {
	Topic       string
	Shop        string
	Body        []byte
	WebhookID   string
	EventID     string
	TriggeredAt time.Time
	APIVersion  string
}

// SignWebhook returns Shopify's X-Shopify-Hmac-Sha256 value: base64 of the
// HMAC-SHA256 of the raw body keyed with the app's client secret.
func SignWebhook(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// WebhookRequest builds a delivery of wh to callbackURL as Shopify sends it:
// the raw body, signed with the fake's client secret, and the X-Shopify-*
// headers (Topic, Hmac-Sha256, Shop-Domain, Webhook-Id, Event-Id,
// Triggered-At, API-Version). It returns wh with its defaults filled in.
func (f *Fake) WebhookRequest(ctx context.Context, callbackURL string, wh Webhook) (*http.Request, Webhook, error) {
	if wh.WebhookID == "" {
		wh.WebhookID = randomUUID()
	}
	if wh.EventID == "" {
		wh.EventID = randomUUID()
	}
	if wh.TriggeredAt.IsZero() {
		wh.TriggeredAt = f.cfg.Now()
	}
	if wh.APIVersion == "" {
		wh.APIVersion = f.cfg.APIVersion
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callbackURL, bytes.NewReader(wh.Body))
	if err != nil {
		return nil, wh, err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Shopify-Captain-Hook")
	h.Set("X-Shopify-Topic", wh.Topic)
	h.Set("X-Shopify-Hmac-Sha256", SignWebhook(f.cfg.ClientSecret, wh.Body))
	h.Set("X-Shopify-Shop-Domain", wh.Shop)
	h.Set("X-Shopify-Webhook-Id", wh.WebhookID)
	h.Set("X-Shopify-Event-Id", wh.EventID)
	h.Set("X-Shopify-Triggered-At", wh.TriggeredAt.UTC().Format(time.RFC3339Nano))
	h.Set("X-Shopify-API-Version", wh.APIVersion)
	return req, wh, nil
}

// DeliverWebhook sends wh to callbackURL with client (nil: a client with
// Shopify's 5 s timeout).
func (f *Fake) DeliverWebhook(ctx context.Context, client *http.Client, callbackURL string, wh Webhook) (*http.Response, Webhook, error) {
	req, wh, err := f.WebhookRequest(ctx, callbackURL, wh)
	if err != nil {
		return nil, wh, err
	}
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := client.Do(req)
	return resp, wh, err
}

func randomUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}
