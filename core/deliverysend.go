package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Message is one rendered message for a channel's provider.
type Message struct {
	Channel Channel
	// To is the email address, the E.164 phone number or the device token.
	To                  string
	Subject, Text, HTML string
	Title, Body         string
	// MessageID names the message stably (the same for every attempt of a delivery).
	MessageID string
}

// MessageSender sends through the merchant's configured channel. An error that will not heal
// (an invalid number, a rejected address) implements Permanent() bool returning true.
type MessageSender interface {
	Send(ctx context.Context, merchantID uuid.UUID, msg Message) (providerID string, err error)
}

// IsPermanent reports whether a send error will not heal with a retry.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

// DeliverySender renders and sends queued deliveries, in the worker. A delivery is sent once:
// one that is already sent (or failed, or waiting) is left alone, and only a send the provider
// took is recorded sent.
type DeliverySender struct {
	store     DeliveryStore
	templates TemplateStore
	sender    MessageSender
	log       *slog.Logger
	// cache keeps templates the sender has read, by the version (UpdatedAt) it read.
	cache templateCache
	// RedeemLinks, when set, fills <redeemlink> with the recipient's personal redeem link.
	RedeemLinks PersonalLinker
	// lanes limits the batches of a merchant sending at once (SendBatch).
	lanes laneSet
}

// PersonalLinker gives a recipient's personal link to a list's redeem link (RedeemLinks).
type PersonalLinker interface {
	PersonalLink(ctx context.Context, merchantID, listID uuid.UUID, r Recipient) (string, error)
}

// NewDeliverySender returns the sender.
func NewDeliverySender(store DeliveryStore, templates TemplateStore, sender MessageSender, log *slog.Logger) *DeliverySender {
	return &DeliverySender{store: store, templates: templates, sender: sender, log: log}
}

// Send sends one delivery. A permanent provider error fails it with the provider's reason at
// once; a passing one is returned for the task to retry, until lastAttempt, which fails it.
//
// The delivery is claimed (queued → sending) before anything else, in the statement that reads
// it: from then on the message may reach the recipient, so a worker killed mid-send never sends
// it a second time. What goes wrong before the provider is called puts it back to queued.
func (s *DeliverySender) Send(ctx context.Context, merchantID, deliveryID uuid.UUID, lastAttempt bool) error {
	d, claimed, err := s.store.ClaimDelivery(ctx, merchantID, deliveryID)
	if errors.Is(err, ErrDeliveryNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if !claimed {
		if d.Status == DeliverySending && d.InBatch {
			return nil // a batch send task is sending it now
		}
		if d.Status == DeliverySending {
			// A worker stopped while this message was with the provider: it may have gone out,
			// so it is not sent again.
			_, err := s.store.FinishDelivery(ctx, merchantID, deliveryID, DeliveryFailed, "",
				"the worker stopped while sending; not sent again so that it is never sent twice")
			return err
		}
		return nil // sent, failed, waiting, or claimed by a run of this task that is still going
	}
	// The outcome is recorded even if the task's context ends now.
	rec := context.WithoutCancel(ctx)
	fail := func(reason string) error {
		return retryWrite(func() error {
			_, err := s.store.FinishDelivery(rec, merchantID, deliveryID, DeliveryFailed, "", reason)
			return err
		})
	}
	requeue := func(cause error) error {
		if err := retryWrite(func() error { return s.store.RequeueDelivery(rec, merchantID, deliveryID, cause.Error()) }); err != nil {
			return err
		}
		return cause
	}
	msg, reason, err := s.compose(ctx, merchantID, d)
	switch {
	case err != nil:
		return requeue(err)
	case reason != "":
		return fail(reason)
	}
	started := time.Now()
	providerID, sendErr := s.sender.Send(ctx, merchantID, msg)
	o := s.outcome(ctx, d.Delivery, providerID, sendErr, lastAttempt)
	switch o.Status {
	case DeliverySent:
		return retryWrite(func() error {
			_, err := s.store.FinishDelivery(rec, merchantID, deliveryID, DeliverySent, providerID, "")
			return err
		})
	case DeliveryFailed:
		return fail(o.Reason)
	}
	s.log.WarnContext(ctx, "delivery will be retried", "delivery_id", deliveryID, "channel", d.Channel, "err", sendErr,
		"duration_ms", time.Since(started).Milliseconds())
	return requeue(sendErr)
}

// compose renders a claimed delivery's message. A reason says why it can never be sent (its
// template was deleted or does not render); an error is a passing failure (a read that failed).
func (s *DeliverySender) compose(ctx context.Context, merchantID uuid.UUID, d ClaimedDelivery) (Message, string, error) {
	t, err := s.template(ctx, merchantID, d.TemplateID, d.TemplateUpdatedAt)
	if errors.Is(err, ErrTemplateNotFound) {
		return Message{}, "the template was deleted", nil
	}
	if err != nil {
		return Message{}, "", err
	}
	data := RenderData{Code: d.Code, ExpiresAt: d.ExpiresAt, ListName: d.ListName, FirstName: d.Recipient.FirstName,
		LastName: d.Recipient.LastName, Email: d.Recipient.Email, Phone: d.Recipient.Phone, ExternalID: d.Recipient.ExternalID, Campaign: d.Campaign}
	if s.RedeemLinks != nil && t.Uses("redeemlink") {
		link, err := s.RedeemLinks.PersonalLink(ctx, merchantID, d.ListID,
			Recipient{ExternalID: d.Recipient.ExternalID, Email: d.Recipient.Email, Phone: d.Recipient.Phone})
		if err != nil {
			return Message{}, "", err
		}
		data.RedeemLink = link
	}
	r, err := t.Render(data)
	if err != nil {
		return Message{}, "the template does not render: " + err.Error(), nil
	}
	msg := Message{Channel: d.Channel, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Title: r.Title, Body: r.Body,
		MessageID: "<delivery-" + d.ID.String() + "@coupongate>"}
	switch d.Channel {
	case ChannelEmail:
		msg.To = d.Recipient.Email
	case ChannelSMS:
		msg.To = d.Recipient.Phone
	case ChannelPush:
		msg.To = d.Recipient.PushToken
	}
	return msg, "", nil
}

// outcome is what the provider's answer makes of a delivery: sent; failed at once for a refusal
// that will not heal, a channel that is not configured, or a passing failure on the last
// attempt; else queued, to be sent again (Reason says why).
func (s *DeliverySender) outcome(ctx context.Context, d Delivery, providerID string, sendErr error, lastAttempt bool) BatchOutcome {
	o := BatchOutcome{ID: d.ID}
	switch {
	case sendErr == nil:
		o.Status, o.ProviderID = DeliverySent, providerID
	case IsPermanent(sendErr):
		s.log.InfoContext(ctx, "delivery refused by the provider", "delivery_id", d.ID, "channel", d.Channel, "reason", sendErr.Error())
		o.Status, o.Reason = DeliveryFailed, sendErr.Error()
	case errors.Is(sendErr, ErrChannelNotSet):
		o.Status, o.Reason = DeliveryFailed, "the "+string(d.Channel)+" channel is not configured"
	case lastAttempt:
		o.Status, o.Reason = DeliveryFailed, fmt.Sprintf("gave up after the last attempt: %v", sendErr)
	default:
		o.Status, o.Reason = DeliveryQueued, sendErr.Error()
	}
	return o
}

// template reads a template through the sender's cache: a kept template is used when it is the
// version the claim saw (saved at version); a template deleted since is ErrTemplateNotFound.
func (s *DeliverySender) template(ctx context.Context, merchantID, id uuid.UUID, version *time.Time) (Template, error) {
	if version == nil {
		s.cache.drop(merchantID, id)
		return Template{}, ErrTemplateNotFound
	}
	if t, ok := s.cache.get(merchantID, id); ok && t.UpdatedAt.Equal(*version) {
		return t, nil
	}
	t, err := s.templates.GetTemplate(ctx, merchantID, id)
	if err != nil {
		return Template{}, err
	}
	s.cache.put(t)
	return t, nil
}

// templateCacheSize bounds the templates a sender keeps; past it the cache starts over.
const templateCacheSize = 4096

// templateCache holds templates by merchant and id. A template can be edited or deleted, so an
// entry is used only when its UpdatedAt is the one the delivery's claim read (see
// DeliverySender.template).
type templateCache struct {
	mu sync.Mutex
	m  map[[2]uuid.UUID]Template
}

func (c *templateCache) get(merchantID, id uuid.UUID) (Template, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.m[[2]uuid.UUID{merchantID, id}]
	return t, ok
}

func (c *templateCache) put(t Template) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= templateCacheSize {
		c.m = make(map[[2]uuid.UUID]Template)
	}
	c.m[[2]uuid.UUID{t.MerchantID, t.ID}] = t
}

func (c *templateCache) drop(merchantID, id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, [2]uuid.UUID{merchantID, id})
}

// retryWrite tries a bookkeeping write a few times: after a send, losing the record would mean
// sending again.
func retryWrite(write func() error) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = write(); err == nil {
			return nil
		}
		time.Sleep(time.Duration(i+1) * 200 * time.Millisecond)
	}
	return err
}
