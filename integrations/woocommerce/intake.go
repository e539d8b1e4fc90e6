package woocommerce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// Answers of Intake.Receive, sent back as {"status": …} with a 200.
const (
	WebhookPong      = "pong"      // WooCommerce's ping: nothing to do
	WebhookAccepted  = "accepted"  // stored and queued
	WebhookDuplicate = "duplicate" // this very body was stored before
	WebhookIgnored   = "ignored"   // genuine, but for a connection that is no longer active
)

// Errors of the intake.
var (
	ErrWebhookSignature = &core.Error{Kind: core.KindUnauthorized, Code: "invalid_signature",
		Message: "the X-WC-Webhook-Signature does not match the body"}
	ErrUnknownConnection = &core.Error{Kind: core.KindNotFound, Code: "connection_not_found",
		Message: "no such connection: delivery URLs end in the connection's id"}
	ErrWebhookHeaders = &core.Error{Kind: core.KindMalformed, Code: "malformed_webhook",
		Message: "X-WC-Webhook-Topic is required"}
)

// IntakeStore is what the intake needs from the database.
type IntakeStore interface {
	// RoutedConnection finds a connection by its id alone, with its credentials.
	RoutedConnection(ctx context.Context, connectionID uuid.UUID) (core.Connection, core.Credentials, bool, error)
	// InsertWebhookReceipt stores d unless a receipt with its event key exists.
	InsertWebhookReceipt(ctx context.Context, d core.WebhookReceipt) (bool, error)
}

// WebhookQueue queues the processing of a merchant's stored receipts (worker.Queue implements
// it): one batch task for all the receipts stored until it reads them.
type WebhookQueue interface {
	EnqueueWebhookBatch(ctx context.Context, merchantID uuid.UUID) error
}

// Intake receives WooCommerce webhooks: it answers pings, verifies the signature with the
// connection's webhook secrets before reading anything, stores the receipt and queues it.
type Intake struct {
	store IntakeStore
	queue WebhookQueue
	log   *slog.Logger
}

// NewIntake returns the intake.
func NewIntake(store IntakeStore, queue WebhookQueue, log *slog.Logger) *Intake {
	return &Intake{store: store, queue: queue, log: log}
}

// Receive handles one webhook to POST /webhooks/woocommerce/{connection_id}; body is the raw
// body, capped by the caller at MaxWebhookBytes.
//
// WooCommerce sends the order as it is when it sends, and may send the same state twice:
// receipts are deduplicated on the body itself (topic and SHA-256), and core counts an order
// and code once however often it comes.
func (in *Intake) Receive(ctx context.Context, connectionID string, header http.Header, body []byte) (string, error) {
	if _, ok := PingWebhookID(header, body); ok {
		return WebhookPong, nil
	}
	id, err := uuid.Parse(connectionID)
	if err != nil {
		return "", ErrUnknownConnection
	}
	conn, creds, found, err := in.store.RoutedConnection(ctx, id)
	if err != nil {
		return "", fmt.Errorf("woocommerce webhook: find connection: %w", err)
	}
	if !found {
		return "", ErrUnknownConnection
	}
	signature := header.Get(HeaderSignature)
	verified := false
	for _, secret := range creds.WebhookSecrets {
		// Every secret is tried, so the time taken does not tell which one matched.
		if VerifyWebhook(body, signature, secret) {
			verified = true
		}
	}
	if !verified {
		return "", ErrWebhookSignature
	}
	// A connection in error (a refused key, say) still takes its receipts: they count once the
	// merchant fixes it. Only a store that was disconnected is ignored.
	if conn.State == core.ConnectionDisconnected || conn.State == core.ConnectionUninstalled {
		return WebhookIgnored, nil
	}
	topic := strings.ToLower(strings.TrimSpace(header.Get(HeaderTopic)))
	if topic == "" || len(topic) > 100 || !utf8.ValidString(topic) {
		return "", ErrWebhookHeaders
	}
	sum := sha256.Sum256(body)
	webhookID := strings.TrimSpace(header.Get(HeaderWebhookID))
	if len(webhookID) > 100 || !utf8.ValidString(webhookID) {
		webhookID = ""
	}
	// The key is the body as sent; what PostgreSQL cannot store as text (a NUL in a customer note,
	// say) is dropped from the stored body, so the order is applied without it.
	d := core.WebhookReceipt{MerchantID: conn.MerchantID, ID: uuid.New(), Platform: Platform, Shop: conn.Shop, Topic: topic,
		EventKey: topic + ":" + hex.EncodeToString(sum[:]), WebhookID: webhookID, Body: core.ScrubJSON(body), Status: "received"}
	inserted, err := in.store.InsertWebhookReceipt(ctx, d)
	if err != nil {
		return "", fmt.Errorf("woocommerce webhook: store receipt: %w", err)
	}
	if !inserted {
		return WebhookDuplicate, nil
	}
	if err := in.queue.EnqueueWebhookBatch(ctx, d.MerchantID); err != nil {
		// Stored: the sweeper queues receipts still received older than core.StallAfter again.
		in.log.WarnContext(ctx, "woocommerce webhook stored but not queued", "delivery_id", d.ID, "err", err)
	}
	return WebhookAccepted, nil
}

// ProcessStore is what processing a stored receipt needs.
type ProcessStore interface {
	WebhookReceipt(ctx context.Context, merchantID, id uuid.UUID) (core.WebhookReceipt, bool, error)
	FinishWebhookReceipt(ctx context.Context, merchantID, id uuid.UUID, status, note string) error
	// ConnectionOfShop returns the merchant's connection to a platform's shop.
	ConnectionOfShop(ctx context.Context, merchantID uuid.UUID, platform, shop string) (core.Connection, bool, error)
}

// OrderApplier applies a core order event (core.Redeemer implements it).
type OrderApplier interface {
	ApplyOrder(ctx context.Context, merchantID uuid.UUID, ev core.OrderEvent) (core.OrderResult, error)
}

// Processor turns stored order receipts into core order events, with the connection's paid
// statuses. Processing a receipt twice is harmless.
type Processor struct {
	store  ProcessStore
	orders OrderApplier
	log    *slog.Logger
}

// NewProcessor returns the processor.
func NewProcessor(store ProcessStore, orders OrderApplier, log *slog.Logger) *Processor {
	return &Processor{store: store, orders: orders, log: log}
}

// Process acts on one stored receipt and records its outcome; a transient error is returned
// for the task to retry.
func (p *Processor) Process(ctx context.Context, merchantID, receiptID uuid.UUID) error {
	d, found, err := p.store.WebhookReceipt(ctx, merchantID, receiptID)
	if err != nil {
		return err
	}
	if !found || d.Status != "received" {
		return nil
	}
	status, note, err := p.act(ctx, d)
	if err != nil {
		return err
	}
	return p.store.FinishWebhookReceipt(ctx, merchantID, receiptID, status, note)
}

var _ core.WebhookPlanner = (*Processor)(nil)

// PlanReceipts implements core.WebhookPlanner: each order receipt is read into its order
// events with its store's paid statuses (its connection looked up once per batch), to be applied
// with the other receipts of its batch, as Process applies one; an event core refuses is
// skipped, as Process skips it. A failed look-up of a connection is returned.
func (p *Processor) PlanReceipts(ctx context.Context, ds []core.WebhookReceipt) ([]core.WebhookPlan, error) {
	type lookup struct {
		conn  core.Connection
		found bool
	}
	conns := map[string]lookup{}
	plans := make([]core.WebhookPlan, len(ds))
	for i, d := range ds {
		o, status, note, ok, err := readOrder(d)
		if err != nil {
			plans[i] = core.WebhookPlan{Alone: true} // Process answers the error
			continue
		}
		if !ok {
			plans[i] = core.WebhookPlan{Status: status, Note: note}
			continue
		}
		plan := core.WebhookPlan{Status: "processed", Order: Platform + ":" + d.Shop + ":" + o.ID}
		if len(o.Codes) > 0 {
			l, seen := conns[d.Shop]
			if !seen {
				conn, found, err := p.store.ConnectionOfShop(ctx, d.MerchantID, Platform, d.Shop)
				if err != nil {
					return nil, err
				}
				l = lookup{conn, found}
				conns[d.Shop] = l
			}
			if !l.found {
				plan.Status, plan.Note = "ignored", "the store is no longer connected"
			} else {
				for _, ev := range orderEvents(l.conn, o, d.Topic) {
					if ev, err := core.CheckOrderEvent(ev); err == nil {
						plan.Events = append(plan.Events, ev)
					}
				}
			}
		}
		plans[i] = plan
	}
	return plans, nil
}

// readOrder reads a receipt's order; ok is false when the receipt is not one to apply, with
// the status and note to record. An error is one parsing should never give: passing.
func readOrder(d core.WebhookReceipt) (o Order, status, note string, ok bool, err error) {
	if !strings.HasPrefix(d.Topic, "order.") {
		return Order{}, "ignored", "topic not handled", false, nil
	}
	o, err = ParseOrder(core.ScrubJSON(d.Body)) // scrubbed at intake since; not a delivery stored before
	if errors.Is(err, ErrInvalidPayload) || errors.Is(err, ErrNotAnOrder) {
		return Order{}, "failed", err.Error(), false, nil
	}
	return o, "", "", err == nil, err
}

// orderEvents are the order's events as its store reports them: with the connection's paid
// statuses, codes matched without regard to case (WooCommerce lowercases them).
func orderEvents(conn core.Connection, o Order, topic string) []core.OrderEvent {
	evs := o.Events(conn.Shop, conn.PaidStatuses, topic)
	for i := range evs {
		evs[i].IgnoreCase = true
	}
	return evs
}

func (p *Processor) act(ctx context.Context, d core.WebhookReceipt) (string, string, error) {
	o, status, note, ok, err := readOrder(d)
	if err != nil || !ok {
		return status, note, err
	}
	if len(o.Codes) == 0 {
		return "processed", "", nil
	}
	conn, found, err := p.store.ConnectionOfShop(ctx, d.MerchantID, Platform, d.Shop)
	if err != nil {
		return "", "", err
	}
	if !found {
		return "ignored", "the store is no longer connected", nil
	}
	n, err := applyOrder(ctx, p.orders, d.MerchantID, conn, o, d.Topic)
	if err != nil {
		return "", "", err
	}
	p.log.DebugContext(ctx, "woocommerce order applied", "order_id", o.ID, "status", o.Status, "events", n)
	return "processed", "", nil
}

// applyOrder feeds one order through core; an order core refuses (a value it cannot take) is
// logged and skipped, anything else is returned.
func applyOrder(ctx context.Context, orders OrderApplier, merchantID uuid.UUID, conn core.Connection, o Order, topic string) (int, error) {
	n := 0
	for _, ev := range orderEvents(conn, o, topic) {
		if _, err := orders.ApplyOrder(ctx, merchantID, ev); err != nil {
			var ce *core.Error
			if errors.As(err, &ce) && ce.Kind == core.KindInvalid {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}
