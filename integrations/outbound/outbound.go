// Package outbound sends merchants' webhooks: events signed as Standard Webhooks do
// (webhook-id, webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>"),
// the id stable across retries, retried on a schedule that stretches over a day, every attempt
// logged, and an endpoint that keeps failing for days disabled with an alert to the merchant.
// Endpoints on loopback, private and other non-public addresses (netguard) are refused when they
// are saved and when they are connected to, unless the operator allows them.
package outbound

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/netguard"
)

// RetrySchedule is the wait before each retry after a failed attempt: eight attempts over about
// 28 hours, as Standard Webhooks senders do.
var RetrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultDisableAfter is how long an endpoint may fail every attempt before it is disabled.
const DefaultDisableAfter = 5 * 24 * time.Hour

// Sign returns the webhook-signature header value for a message.
func Sign(secret, id string, timestamp int64, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("outbound: the endpoint secret is not base64: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + strconv.FormatInt(timestamp, 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)), nil
}

// Verify checks a webhook-signature header (which may carry several space-separated
// signatures) in constant time, and that the timestamp is within tolerance of now.
func Verify(secret, id, timestamp, signatures string, body []byte, now time.Time, tolerance time.Duration) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || now.Sub(time.Unix(ts, 0)).Abs() > tolerance {
		return false
	}
	want, err := Sign(secret, id, ts, body)
	if err != nil {
		return false
	}
	ok := false
	for _, s := range strings.Fields(signatures) {
		if hmac.Equal([]byte(s), []byte(want)) {
			ok = true
		}
	}
	return ok
}

// Guard is the address check of webhook endpoints (core.AddressGuard) and the client that posts
// to them, both on netguard's one definition of a non-public address: refused when the URL is
// saved and again when each connection is made (so a name that resolves differently later cannot
// slip through).
type Guard struct {
	AllowPrivate bool
	Resolver     *net.Resolver
}

func (g Guard) dialGuard() netguard.Guard {
	return netguard.Guard{AllowPrivate: g.AllowPrivate, Resolver: g.Resolver}
}

// CheckURL implements core.AddressGuard: core.ErrPrivateEndpoint when the URL's host is, or
// resolves to, a non-public address. A name that does not resolve now is accepted: the
// connection is checked when it is made.
func (g Guard) CheckURL(ctx context.Context, rawURL string) error {
	if g.AllowPrivate {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return core.Invalid("url", "must be an absolute http(s) URL")
	}
	if err := g.dialGuard().CheckHost(ctx, u.Hostname()); errors.Is(err, netguard.ErrForbidden) {
		return core.ErrPrivateEndpoint
	}
	return nil
}

// Client returns an HTTP client whose connections refuse non-public addresses (unless allowed),
// follow no redirects, and time out after timeout.
func (g Guard) Client(timeout time.Duration) *http.Client {
	return g.dialGuard().Client(timeout)
}

// Store is what delivering needs from the database.
type Store interface {
	WebhookMessage(ctx context.Context, merchantID, endpointID uuid.UUID, id string) (core.WebhookMessage, error)
	GetEndpoint(ctx context.Context, merchantID, id uuid.UUID) (core.WebhookEndpoint, error)
	RecordWebhookAttempt(ctx context.Context, m core.WebhookMessage, a core.WebhookAttempt, ok, final bool, disableAfter time.Duration) (bool, error)
	FailWebhookMessage(ctx context.Context, merchantID, endpointID uuid.UUID, id string) error
}

// Deliverer posts webhook messages to endpoints. An endpoint it disables is announced to the
// merchant's alert addresses through the event outbox (endpoint.disabled).
type Deliverer struct {
	store Store
	http  *http.Client
	log   *slog.Logger
	// DisableAfter is how long an endpoint may fail before it is disabled.
	DisableAfter time.Duration
	now          func() time.Time
}

// NewDeliverer returns the deliverer; client should come from Guard.Client.
func NewDeliverer(store Store, client *http.Client, log *slog.Logger) *Deliverer {
	return &Deliverer{store: store, http: client, log: log, DisableAfter: DefaultDisableAfter, now: time.Now}
}

// retryError asks the task to come back after the schedule's next wait.
type retryError struct {
	reason string
	wait   time.Duration
}

func (e *retryError) Error() string             { return e.reason }
func (e *retryError) RetryAfter() time.Duration { return e.wait }

// Deliver makes one attempt of a message (attempt counts from 0). A 2xx delivers it; anything
// else is logged and retried on RetrySchedule until the last attempt, which fails it. A
// connection refused because the endpoint's host now resolves to a non-public address fails it
// at once.
func (d *Deliverer) Deliver(ctx context.Context, ref core.MessageRef, attempt int) error {
	m, err := d.store.WebhookMessage(ctx, ref.MerchantID, ref.EndpointID, ref.MessageID)
	if errors.Is(err, core.ErrEndpointNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Status != "pending" {
		return nil
	}
	// A task queued again after its first was lost counts its retries from 0: the message's
	// own count of attempts keeps the schedule where it was.
	attempt = max(attempt, m.Attempts)
	e, err := d.store.GetEndpoint(ctx, ref.MerchantID, ref.EndpointID)
	if errors.Is(err, core.ErrEndpointNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if e.State != core.EndpointActive {
		return d.store.FailWebhookMessage(ctx, ref.MerchantID, ref.EndpointID, ref.MessageID)
	}
	ts := d.now().Unix()
	sig, err := Sign(e.Secret, m.ID, ts, m.Payload)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Coupongate-Webhooks/1")
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	started := time.Now()
	resp, err := d.http.Do(req)
	a := core.WebhookAttempt{MessageID: m.ID, EventType: m.EventType, DurationMS: int(time.Since(started).Milliseconds())}
	// An endpoint whose name now resolves to a non-public address is not tried again: the
	// message fails with this attempt, which says why.
	forbidden := errors.Is(err, netguard.ErrForbidden)
	if err != nil {
		a.Error = err.Error()
		var fe *netguard.ForbiddenError
		if errors.As(err, &fe) {
			a.Error = "refused: " + fe.Error()
		}
	} else {
		a.StatusCode = resp.StatusCode
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	ok := err == nil && a.StatusCode >= 200 && a.StatusCode < 300
	final := attempt >= len(RetrySchedule) || forbidden
	if !ok && !final {
		a.RetryIn = RetrySchedule[attempt]
	}
	disabled, rerr := d.store.RecordWebhookAttempt(ctx, m, a, ok, final, d.DisableAfter)
	if rerr != nil {
		return rerr
	}
	if disabled {
		d.log.WarnContext(ctx, "webhook endpoint disabled after failing for days", "endpoint_id", e.ID, "merchant_id", e.MerchantID)
	}
	if ok || final || disabled {
		return nil
	}
	reason := a.Error
	if reason == "" {
		reason = "HTTP " + strconv.Itoa(a.StatusCode)
	}
	return &retryError{reason: "webhook " + m.ID + " to " + e.ID.String() + ": " + reason, wait: a.RetryIn}
}
