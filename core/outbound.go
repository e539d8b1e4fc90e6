package core

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Event types merchants' endpoints can subscribe to.
const (
	EventTypeCodeDelivered  = "code.delivered"
	EventTypeCodeRedeemed   = "code.redeemed"
	EventTypeLowStock       = "list.low_stock"
	EventTypeExhausted      = "list.exhausted"
	EventTypeExpired        = "list.expired"
	EventTypeImportFinished = "import.finished"
	// EventTypeEndpointDisabled is for the merchant's alert addresses only: an endpoint that
	// failed for days was disabled.
	EventTypeEndpointDisabled = "endpoint.disabled"
)

// EventTypes are every event type, in the order the documentation lists them.
var EventTypes = []string{EventTypeCodeDelivered, EventTypeCodeRedeemed, EventTypeLowStock, EventTypeExhausted, EventTypeExpired, EventTypeImportFinished}

// Webhook endpoint states.
const (
	EndpointActive   = "active"
	EndpointDisabled = "disabled"
)

// WebhookEndpoint is a merchant's URL that hears about events, signed as Standard Webhooks do.
type WebhookEndpoint struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	URL        string
	Events     []string
	// Secret is "whsec_" and base64 of 32 random bytes; shown once, when created.
	Secret       string
	State        string
	FailingSince *time.Time
	DisabledAt   *time.Time
	CreatedAt    time.Time
}

// WebhookAttempt is one delivery attempt to an endpoint.
type WebhookAttempt struct {
	ID         int64
	MessageID  string
	EventType  string
	StatusCode int
	Error      string
	DurationMS int
	At         time.Time
	// RetryIn is how long until the message's next attempt, when the attempt failed and it is
	// tried again (0 when it is not).
	RetryIn time.Duration
}

// Errors of endpoints.
var (
	ErrEndpointNotFound = newError(KindNotFound, "webhook_endpoint_not_found", "no such webhook endpoint")
	ErrPrivateEndpoint  = newError(KindInvalid, "invalid_field", "url: points to a loopback or private address, which this gateway does not call")
)

// EndpointStore keeps endpoints and their attempts.
type EndpointStore interface {
	CreateEndpoint(ctx context.Context, e WebhookEndpoint) error
	GetEndpoint(ctx context.Context, merchantID, id uuid.UUID) (WebhookEndpoint, error)
	ListEndpoints(ctx context.Context, merchantID uuid.UUID) ([]WebhookEndpoint, error)
	DeleteEndpoint(ctx context.Context, merchantID, id uuid.UUID) error
	ListAttempts(ctx context.Context, merchantID, endpointID uuid.UUID, page Page) ([]WebhookAttempt, string, error)
	// LastAttempts returns the newest attempt of each of the merchant's endpoints that has one.
	LastAttempts(ctx context.Context, merchantID uuid.UUID) (map[uuid.UUID]WebhookAttempt, error)
	// EnableEndpoint makes a disabled endpoint active again, with no failing mark, and returns it
	// (without its secret); the endpoint hears the events that happen from then on.
	EnableEndpoint(ctx context.Context, merchantID, id uuid.UUID) (WebhookEndpoint, error)
}

// AddressGuard refuses URLs whose host is a loopback or private address (unless the operator
// allows them).
type AddressGuard interface {
	CheckURL(ctx context.Context, rawURL string) error
}

// WebhookEndpoints is the service behind the endpoint routes.
type WebhookEndpoints struct {
	store EndpointStore
	guard AddressGuard
	Clock
}

// NewWebhookEndpoints returns the service.
func NewWebhookEndpoints(store EndpointStore, guard AddressGuard) *WebhookEndpoints {
	return &WebhookEndpoints{store: store, guard: guard}
}

// Create checks and stores an endpoint, with a fresh signing secret returned only here.
func (s *WebhookEndpoints) Create(ctx context.Context, merchantID uuid.UUID, rawURL string, events []string) (WebhookEndpoint, error) {
	rawURL = strings.TrimSpace(rawURL)
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(rawURL) > 2000 {
		return WebhookEndpoint{}, Invalid("url", "must be an absolute http(s) URL")
	}
	if err := s.guard.CheckURL(ctx, rawURL); err != nil {
		return WebhookEndpoint{}, err
	}
	if len(events) == 0 {
		return WebhookEndpoint{}, Invalid("events", "name at least one event: "+strings.Join(EventTypes, ", "))
	}
	var clean []string
	for _, e := range events {
		e = strings.TrimSpace(e)
		if !slices.Contains(EventTypes, e) {
			return WebhookEndpoint{}, Invalid("events", "unknown event "+strconvQuote(e)+"; events are "+strings.Join(EventTypes, ", "))
		}
		if !slices.Contains(clean, e) {
			clean = append(clean, e)
		}
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return WebhookEndpoint{}, err
	}
	e := WebhookEndpoint{MerchantID: merchantID, ID: uuid.New(), URL: rawURL, Events: clean, Secret: "whsec_" + base64.StdEncoding.EncodeToString(b),
		State: EndpointActive, CreatedAt: s.Now().UTC()}
	return e, s.store.CreateEndpoint(ctx, e)
}

// List returns the merchant's endpoints (without secrets).
func (s *WebhookEndpoints) List(ctx context.Context, merchantID uuid.UUID) ([]WebhookEndpoint, error) {
	return s.store.ListEndpoints(ctx, merchantID)
}

// Get returns one endpoint (without its secret).
func (s *WebhookEndpoints) Get(ctx context.Context, merchantID, id uuid.UUID) (WebhookEndpoint, error) {
	e, err := s.store.GetEndpoint(ctx, merchantID, id)
	e.Secret = ""
	return e, err
}

// Delete removes an endpoint; its pending messages are dropped.
func (s *WebhookEndpoints) Delete(ctx context.Context, merchantID, id uuid.UUID) error {
	return s.store.DeleteEndpoint(ctx, merchantID, id)
}

// Enable turns a disabled endpoint back on (re-enable, once it answers again). It hears the
// events that happen from now on, not those it missed while disabled, and its failing streak
// starts afresh, so it has the whole disable period again before it can be disabled anew. An
// active endpoint is returned as it is.
func (s *WebhookEndpoints) Enable(ctx context.Context, merchantID, id uuid.UUID) (WebhookEndpoint, error) {
	e, err := s.Get(ctx, merchantID, id)
	if err != nil {
		return WebhookEndpoint{}, err
	}
	if e.State == EndpointActive {
		return e, nil
	}
	return s.store.EnableEndpoint(ctx, merchantID, id)
}

// LastAttempts returns the newest delivery attempt of each of the merchant's endpoints, by
// endpoint id (an endpoint never tried has none).
func (s *WebhookEndpoints) LastAttempts(ctx context.Context, merchantID uuid.UUID) (map[uuid.UUID]WebhookAttempt, error) {
	return s.store.LastAttempts(ctx, merchantID)
}

// Attempts pages through an endpoint's delivery attempts, newest first.
func (s *WebhookEndpoints) Attempts(ctx context.Context, merchantID, id uuid.UUID, page Page) ([]WebhookAttempt, string, error) {
	if _, err := s.store.GetEndpoint(ctx, merchantID, id); err != nil {
		return nil, "", err
	}
	return s.store.ListAttempts(ctx, merchantID, id, page.Normalize())
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
