// Package outbound sends merchants' webhooks: events signed as Standard Webhooks do
// (webhook-id, webhook-timestamp, webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>"),
// the id stable across retries, retried on a schedule that stretches over a day, every attempt
// logged, and an endpoint that keeps failing for days disabled with an alert to the merchant.
// Endpoints on loopback or private addresses are refused unless the operator allows them.
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
	"syscall"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
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

// Guard refuses addresses on loopback, private, link-local and unspecified networks, when the
// URL is checked and again when the connection is made (so a name that resolves differently later
// cannot slip through).
type Guard struct {
	AllowPrivate bool
	Resolver     *net.Resolver
}

// specialNets are ranges that are not the public internet beyond what net.IP's methods know:
// carrier-grade NAT, "this network", benchmarking, NAT64.
var specialNets = func() []*net.IPNet {
	var out []*net.IPNet
	for _, c := range []string{"100.64.0.0/10", "0.0.0.0/8", "198.18.0.0/15", "64:ff9b::/96", "64:ff9b:1::/48"} {
		_, n, _ := net.ParseCIDR(c)
		out = append(out, n)
	}
	return out
}()

func forbidden(ip net.IP) bool {
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified() || ip.IsMulticast() {
		return true
	}
	for _, n := range specialNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckURL implements core.AddressGuard.
func (g Guard) CheckURL(ctx context.Context, rawURL string) error {
	if g.AllowPrivate {
		return nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return core.Invalid("url", "must be an absolute http(s) URL")
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if forbidden(ip) {
			return core.ErrPrivateEndpoint
		}
		return nil
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return core.ErrPrivateEndpoint
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupIPAddr(ctx, host)
	if err != nil {
		return nil // it may resolve later; the dialer checks again
	}
	for _, a := range addrs {
		if forbidden(a.IP) {
			return core.ErrPrivateEndpoint
		}
	}
	return nil
}

// Client returns an HTTP client whose connections refuse forbidden addresses (unless allowed),
// follow no redirects, and time out after timeout.
func (g Guard) Client(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !g.AllowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip != nil && forbidden(ip) {
				return errForbidden
			}
			return nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = dialer.DialContext
	tr.Proxy = nil // a proxy would dial for us, past the address check
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var errForbidden = errors.New("the address is on a loopback or private network")

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
// else is logged and retried on RetrySchedule until the last attempt, which fails it.
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
	if err != nil {
		a.Error = err.Error()
		if errors.Is(err, errForbidden) {
			a.Error = errForbidden.Error()
		}
	} else {
		a.StatusCode = resp.StatusCode
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}
	ok := err == nil && a.StatusCode >= 200 && a.StatusCode < 300
	final := attempt >= len(RetrySchedule)
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
	return &retryError{reason: "webhook " + m.ID + " to " + e.ID.String() + ": " + reason, wait: RetrySchedule[attempt]}
}
