package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/google/uuid"
)

// MessageRef names one webhook message of an endpoint.
type MessageRef struct {
	MerchantID uuid.UUID
	EndpointID uuid.UUID
	MessageID  string
}

// AlertRef names an alert email.
type AlertRef struct {
	MerchantID uuid.UUID
	EventID    int64
}

// Dispatched is what one dispatch round made: webhook messages to send and alerts to email.
type Dispatched struct {
	Messages []MessageRef
	Alerts   []int64
}

// WebhookMessage is one event for one endpoint, with the id it keeps across retries.
type WebhookMessage struct {
	MerchantID uuid.UUID
	ID         string
	EndpointID uuid.UUID
	EventType  string
	Payload    json.RawMessage
	Status     string
	Attempts   int
	CreatedAt  time.Time
}

// AlertEvent is a stock event to email the merchant about.
type AlertEvent struct {
	MerchantID uuid.UUID
	ID         int64
	Type       string
	ListID     *uuid.UUID
	ListName   string
	Data       map[string]any
	At         time.Time
	Status     string
	// SentTo are the alert addresses the alert reached; RefusedBy those that refused it for good.
	SentTo, RefusedBy []string
}

// DispatchStore is what dispatching needs from the database.
type DispatchStore interface {
	EventSubscribers(ctx context.Context) ([]uuid.UUID, error)
	DispatchEvents(ctx context.Context, merchantID uuid.UUID, lag time.Duration, limit int) (Dispatched, error)
	// PendingWebhookMessages returns pending messages whose next attempt was due before before
	// (a message never tried is due when it is made), the longest due first: their task may be
	// lost.
	PendingWebhookMessages(ctx context.Context, before time.Time, limit int) ([]MessageRef, error)
	PendingAlerts(ctx context.Context, before time.Time, limit int) ([]AlertRef, error)
	AlertEvent(ctx context.Context, merchantID uuid.UUID, eventID int64) (AlertEvent, error)
	FinishAlert(ctx context.Context, merchantID uuid.UUID, eventID int64, status, reason string) error
	// RecordAlertRecipient records that address got the alert (refusal empty) or refused it
	// for good, saying why.
	RecordAlertRecipient(ctx context.Context, merchantID uuid.UUID, eventID int64, address, refusal string) error
	AlertEmails(ctx context.Context, merchantID uuid.UUID) ([]string, error)
}

// OutboundQueue queues webhook sends and alert emails.
type OutboundQueue interface {
	EnqueueWebhookMessage(ctx context.Context, m MessageRef) error
	EnqueueAlert(ctx context.Context, merchantID uuid.UUID, eventID int64) error
}

// DispatchLag is how old an event must be before it is handed out, so that a transaction that
// committed a little late is not skipped by the cursor.
const DispatchLag = 5 * time.Second

// Dispatcher hands recorded events (codes delivered and redeemed, stock crossings, finished
// imports) to merchants' webhook endpoints and alert addresses.
type Dispatcher struct {
	store  DispatchStore
	queue  OutboundQueue
	sender MessageSender
	log    *slog.Logger
}

// NewDispatcher returns the dispatcher; sender sends alert emails.
func NewDispatcher(store DispatchStore, queue OutboundQueue, sender MessageSender, log *slog.Logger) *Dispatcher {
	return &Dispatcher{store: store, queue: queue, sender: sender, log: log}
}

// Dispatch runs one round for every merchant that listens, and queues again messages whose task
// was lost.
func (d *Dispatcher) Dispatch(ctx context.Context) error {
	merchants, err := d.store.EventSubscribers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range merchants {
		for {
			out, err := d.store.DispatchEvents(ctx, m, DispatchLag, 500)
			if err != nil {
				errs = append(errs, err)
				break
			}
			for _, msg := range out.Messages {
				errs = append(errs, d.queue.EnqueueWebhookMessage(ctx, msg))
			}
			for _, id := range out.Alerts {
				errs = append(errs, d.queue.EnqueueAlert(ctx, m, id))
			}
			if len(out.Messages)+len(out.Alerts) == 0 {
				break
			}
		}
	}
	// A message or alert whose task was lost (an enqueue that failed after the commit, or Redis
	// lost its queue) is queued again; a task that still exists is not duplicated (task ids are
	// the message's). A message is looked at a minute after its next attempt was due: a message
	// never tried a minute after it was made, one being retried a minute after its retry.
	now := time.Now()
	stalled, err := d.store.PendingWebhookMessages(ctx, now.Add(-time.Minute), 1000)
	errs = append(errs, err)
	for _, msg := range stalled {
		errs = append(errs, d.queue.EnqueueWebhookMessage(ctx, msg))
	}
	alerts, err := d.store.PendingAlerts(ctx, now.Add(-time.Hour), 1000)
	errs = append(errs, err)
	for _, a := range alerts {
		errs = append(errs, d.queue.EnqueueAlert(ctx, a.MerchantID, a.EventID))
	}
	return errors.Join(errs...)
}

// alertText is the alert email for a stock event.
func alertText(a AlertEvent) (subject, text string) {
	name := a.ListName
	if name == "" {
		name = "a code list"
	}
	switch a.Type {
	case EventTypeLowStock:
		subject = fmt.Sprintf("Coupongate: %q is running low on codes", name)
		text = fmt.Sprintf("The list %q has fallen below its low-stock threshold (%v codes left). Import or generate more codes so customers keep getting theirs.", name, a.Data["available"])
	case EventTypeExhausted:
		subject = fmt.Sprintf("Coupongate: %q has no codes left", name)
		text = fmt.Sprintf("The list %q has handed out its last code. Deliveries wait until codes arrive: import or generate more.", name)
	case EventTypeExpired:
		subject = fmt.Sprintf("Coupongate: %q has expired", name)
		text = fmt.Sprintf("The list %q reached its expiry; its codes no longer validate.", name)
	case EventTypeEndpointDisabled:
		subject = "Coupongate: webhook endpoint disabled"
		text = fmt.Sprintf("Every delivery to %v has failed since %v, so Coupongate disabled the endpoint (id %v). "+
			"Its attempts are listed at GET /api/v1/webhook-endpoints/%v/attempts. Once it answers again, re-enable it "+
			"in the dashboard (Settings, Outgoing webhooks) or with POST /api/v1/webhook-endpoints/%v/enable.",
			a.Data["url"], a.Data["failing_since"], a.Data["endpoint_id"], a.Data["endpoint_id"], a.Data["endpoint_id"])
		return subject, text + "\n"
	default:
		subject = "Coupongate: " + a.Type
		text = "Event " + a.Type + " for " + name + "."
	}
	if a.ListID != nil {
		text += "\n\nList id: " + a.ListID.String()
	}
	return subject, text + "\n\nYou get this email because this address is set in Coupongate's alert settings.\n"
}

// SendAlert emails one stock event to each of the merchant's alert addresses, through the
// merchant's email channel. Each address gets it once: the addresses it reached are recorded as
// it goes, so a retry after a passing failure sends only to those still owed, and an address
// that refuses it for good does not keep the others from getting it.
func (d *Dispatcher) SendAlert(ctx context.Context, merchantID uuid.UUID, eventID int64, lastAttempt bool) error {
	a, err := d.store.AlertEvent(ctx, merchantID, eventID)
	if err != nil {
		return err
	}
	if a.Status != "pending" {
		return nil
	}
	to, err := d.store.AlertEmails(ctx, merchantID)
	if err != nil {
		return err
	}
	if len(to) == 0 {
		return d.store.FinishAlert(ctx, merchantID, eventID, "failed", "no alert addresses")
	}
	subject, text := alertText(a)
	sent := len(a.SentTo)
	var passing error
	for _, addr := range to {
		if slices.Contains(a.SentTo, addr) || slices.Contains(a.RefusedBy, addr) {
			continue
		}
		msg := Message{Channel: ChannelEmail, To: addr, Subject: subject, Text: text,
			MessageID: fmt.Sprintf("<alert-%s-%d@coupongate>", merchantID, eventID)}
		_, err := d.sender.Send(ctx, merchantID, msg)
		switch {
		case err == nil:
			sent++
			err = d.store.RecordAlertRecipient(context.WithoutCancel(ctx), merchantID, eventID, addr, "")
		case errors.Is(err, ErrChannelNotSet):
			d.log.WarnContext(ctx, "alert email not sent", "merchant_id", merchantID, "event_id", eventID, "err", err)
			return d.store.FinishAlert(ctx, merchantID, eventID, "failed", err.Error())
		case IsPermanent(err) || lastAttempt:
			d.log.WarnContext(ctx, "alert email not sent", "merchant_id", merchantID, "event_id", eventID, "err", err)
			err = d.store.RecordAlertRecipient(context.WithoutCancel(ctx), merchantID, eventID, addr, err.Error())
		default:
			passing = errors.Join(passing, err) // tried again later, for this address only
			continue
		}
		if err != nil {
			return err
		}
	}
	if passing != nil {
		return passing
	}
	status := "sent"
	if sent == 0 {
		status = "failed" // no address took it
	}
	return d.store.FinishAlert(ctx, merchantID, eventID, status, "") // the refusals are recorded
}
