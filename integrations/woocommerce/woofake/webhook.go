package woofake

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// UserAgent is what the store's outgoing requests (pings, deliveries) send.
const UserAgent = "WooCommerce/" + WCVersion + " Hookshot (WordPress/" + WPVersion + ")"

// Webhook is a webhook in the store.
type Webhook struct {
	ID           int64
	Name         string
	Topic        string
	DeliveryURL  string
	Secret       string
	Status       string // active, paused or disabled
	FailureCount int
	// PendingDelivery is true until a ping or delivery succeeds.
	PendingDelivery bool
}

// Webhooks lists the store's webhooks by id.
func (f *Fake) Webhooks() []Webhook {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Webhook, 0, len(f.webhooks))
	for _, wh := range f.webhooks {
		out = append(out, Webhook{ID: wh.id, Name: wh.name, Topic: wh.topic, DeliveryURL: wh.deliveryURL, Secret: wh.secret,
			Status: wh.status, FailureCount: wh.failures, PendingDelivery: wh.pendingDelivery})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// SetWebhookStatus sets a webhook's status as the merchant can in the admin (e.g. "paused").
func (f *Fake) SetWebhookStatus(id int64, status string) error {
	if !validWebhookStatus(status) {
		return fmt.Errorf("woofake: webhook status %q is not one of active, paused, disabled", status)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	wh := f.webhooks[id]
	if wh == nil {
		return fmt.Errorf("woofake: no webhook %d", id)
	}
	wh.status = status
	return nil
}

// Ping is a ping the store sent when a webhook was created.
type Ping struct {
	WebhookID int64
	URL       string
	Status    int   // 0: no answer
	Err       error // transport error
}

// Pings lists the pings sent, oldest first.
func (f *Fake) Pings() []Ping {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Ping(nil), f.pings...)
}

// Delivery is one webhook delivery the store sent.
type Delivery struct {
	WebhookID int64
	Topic     string
	URL       string
	Header    http.Header
	Body      []byte
	Status    int   // 0: no answer
	Err       error // transport error
	At        time.Time
}

// Deliveries lists the deliveries sent, oldest first.
func (f *Fake) Deliveries() []Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Delivery(nil), f.deliveries...)
}

// outbound is the client for one outgoing request: Config.Outbound (or a new client) with
// timeout when it has none, and redirects refused when !follow.
func (f *Fake) outbound(timeout time.Duration, follow bool) *http.Client {
	var c http.Client
	if f.cfg.Outbound != nil {
		c = *f.cfg.Outbound
	}
	if c.Timeout == 0 {
		c.Timeout = timeout
	}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &c
}

// ping is WC_Webhook::deliver_ping: a form POST of "webhook_id=N", no X-WC-Webhook-* headers,
// WordPress's default 5 s timeout; only exactly 200 is a success. Unlike wp_safe_remote_post it
// reaches loopback addresses, so tests can receive it.
func (f *Fake) ping(id int64, deliveryURL string) {
	p := Ping{WebhookID: id, URL: deliveryURL}
	req, err := http.NewRequest(http.MethodPost, deliveryURL, strings.NewReader("webhook_id="+strconv.FormatInt(id, 10)))
	if err == nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		req.Header.Set("User-Agent", UserAgent)
		var resp *http.Response
		resp, err = f.outbound(5*time.Second, true).Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			p.Status = resp.StatusCode
		}
	}
	p.Err = err
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pings = append(f.pings, p)
	if wh := f.webhooks[id]; wh != nil && p.Status == http.StatusOK {
		wh.pendingDelivery = false
	}
}

// ErrNotDelivered is wrapped by the error Deliver returns for a webhook that is not active.
var ErrNotDelivered = errors.New("woofake: webhook not delivered")

// Deliver sends body (as is, trimmed) to a webhook's delivery URL as WC_Webhook::deliver does:
// POST, Content-Type application/json, User-Agent UserAgent, and the X-WC-Webhook-Source, -Topic,
// -Resource, -Event, -Signature (base64 of the HMAC-SHA256 of the body under the webhook's
// secret), -ID and -Delivery-ID headers; 60 s timeout, no redirects followed. It returns the
// answer's status, or an error when there was none (the store counts that as code 0).
//
// A status of 200 to 302 is a success and resets the webhook's failure count; anything else is a
// failure, which increments the count, or, when the count is already above Config.MaxFailures,
// disables the webhook (WC_Webhook::failed_delivery: with the default 5 the 7th failure in a row
// disables it). A webhook that is not active is not delivered: Deliver returns an error wrapping
// ErrNotDelivered.
func (f *Fake) Deliver(webhookID int64, body []byte) (int, error) {
	f.mu.Lock()
	wh := f.webhooks[webhookID]
	if wh == nil {
		f.mu.Unlock()
		return 0, fmt.Errorf("%w: no webhook %d", ErrNotDelivered, webhookID)
	}
	if wh.status != "active" {
		status := wh.status
		f.mu.Unlock()
		return 0, fmt.Errorf("%w: webhook %d is %s, and WooCommerce only delivers active webhooks", ErrNotDelivered, webhookID, status)
	}
	topic, deliveryURL, secret := wh.topic, wh.deliveryURL, wh.secret
	now := f.cfg.Now()
	f.mu.Unlock()

	body = bytes.TrimSpace(body)
	resource, event, _ := strings.Cut(topic, ".")
	d := Delivery{WebhookID: webhookID, Topic: topic, URL: deliveryURL, Body: append([]byte(nil), body...), At: now}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, deliveryURL, bytes.NewReader(body))
	if err == nil {
		h := req.Header
		h.Set("Content-Type", "application/json")
		h.Set("User-Agent", UserAgent)
		h.Set("X-WC-Webhook-Source", f.URL()+"/")
		h.Set("X-WC-Webhook-Topic", topic)
		h.Set("X-WC-Webhook-Resource", resource)
		h.Set("X-WC-Webhook-Event", event)
		h.Set("X-WC-Webhook-Signature", sign(body, secret))
		h.Set("X-WC-Webhook-ID", strconv.FormatInt(webhookID, 10))
		h.Set("X-WC-Webhook-Delivery-ID", wpHash(strconv.FormatInt(webhookID, 10)+strconv.FormatInt(now.Unix(), 10)))
		d.Header = h.Clone()
		var resp *http.Response
		resp, err = f.outbound(60*time.Second, false).Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			d.Status = resp.StatusCode
		}
	}
	d.Err = err

	f.mu.Lock()
	defer f.mu.Unlock()
	f.deliveries = append(f.deliveries, d)
	if wh := f.webhooks[webhookID]; wh != nil {
		if d.Status >= 200 && d.Status < 303 {
			wh.failures = 0
			wh.pendingDelivery = false
		} else if wh.failures > f.cfg.MaxFailures {
			wh.status = "disabled"
		} else {
			wh.failures++
		}
	}
	if err != nil {
		return 0, fmt.Errorf("woofake: deliver webhook %d: %w", webhookID, err)
	}
	return d.Status, nil
}

// DeliveryResult is the outcome of one delivery of DeliverOrder.
type DeliveryResult struct {
	WebhookID int64
	Status    int
	Err       error
}

// DeliverOrder delivers an order to every active webhook of topic (e.g. "order.updated"), in
// webhook id order. order is the payload: an order id stored with AddOrder (its REST body, read
// now, as WooCommerce builds the payload at delivery time; {"id":N} for order.deleted), raw JSON
// ([]byte or json.RawMessage, sent as is), or any other value, encoded as PHP's json_encode does
// (slashes escaped as \/, non-ASCII as \uXXXX).
func (f *Fake) DeliverOrder(topic string, order any) ([]DeliveryResult, error) {
	var body []byte
	switch o := order.(type) {
	case []byte:
		body = o
	case json.RawMessage:
		body = o
	case int, int64:
		id := int64(absint(json.Number(fmt.Sprint(o))))
		var payload any = map[string]any{"id": id}
		if !strings.HasSuffix(topic, ".deleted") {
			f.mu.Lock()
			rec := f.orders[id]
			if rec != nil {
				payload = rec.body
			}
			f.mu.Unlock()
			if rec == nil {
				return nil, fmt.Errorf("woofake: no order %d", id)
			}
		}
		var err error
		f.mu.Lock()
		body, err = phpJSON(payload)
		f.mu.Unlock()
		if err != nil {
			return nil, err
		}
	default:
		var err error
		if body, err = phpJSON(order); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	var ids []int64
	for id, wh := range f.webhooks {
		if wh.topic == topic && wh.status == "active" {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	out := make([]DeliveryResult, 0, len(ids))
	for _, id := range ids {
		status, err := f.Deliver(id, body)
		out = append(out, DeliveryResult{WebhookID: id, Status: status, Err: err})
	}
	return out, nil
}

// sign is WC_Webhook::generate_signature: base64 of the HMAC-SHA256 of the body keyed with the
// secret after wp_specialchars_decode(secret, ENT_QUOTES).
func sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(specialcharsDecode.Replace(secret)))
	m.Write(body)
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// specialcharsDecode covers the entities wp_specialchars_decode(…, ENT_QUOTES) decodes, in their
// usual spellings (not every zero-padded variant).
var specialcharsDecode = strings.NewReplacer(
	"&#039;", "'", "&#39;", "'", "&#x27;", "'", "&#X27;", "'",
	"&quot;", `"`, "&#034;", `"`, "&#34;", `"`, "&#x22;", `"`, "&#X22;", `"`,
	"&lt;", "<", "&#060;", "<", "&#60;", "<", "&gt;", ">", "&#062;", ">", "&#62;", ">",
	"&amp;", "&", "&#038;", "&", "&#38;", "&", "&#x26;", "&", "&#X26;", "&",
)

// wpHash stands in for wp_hash (an HMAC-MD5 keyed with the site's salts).
func wpHash(data string) string {
	m := hmac.New(md5.New, []byte("woofake nonce salt"))
	m.Write([]byte(data))
	return hex.EncodeToString(m.Sum(nil))
}

// passwordChars is wp_generate_password's alphabet with special and extra special characters.
const passwordChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" + "!@#$%^&*()" + "-_ []{}<>~`+=,.;:/?|"

// entityLike is text wp_specialchars_decode could change.
var entityLike = regexp.MustCompile(`&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);`)

// generatePassword is wp_generate_password(n, true, true), redrawn while it holds something that
// looks like an HTML entity, so the raw secret and the signing key agree.
func generatePassword(n int) string {
	for {
		b := make([]byte, n)
		for i := range b {
			k, err := rand.Int(rand.Reader, big.NewInt(int64(len(passwordChars))))
			if err != nil {
				panic(err)
			}
			b[i] = passwordChars[k.Int64()]
		}
		if !entityLike.Match(b) {
			return string(b)
		}
	}
}
