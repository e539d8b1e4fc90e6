package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	lists     ListSummaries
	sender    MessageSender
	log       *slog.Logger
}

// ListSummaries reads what a message needs of a list (its name and expiry), cheaply.
type ListSummaries interface {
	// ListSummary returns the list with its name and dates, without counts; ErrListNotFound.
	ListSummary(ctx context.Context, merchantID, listID uuid.UUID) (List, error)
}

// NewDeliverySender returns the sender.
func NewDeliverySender(store DeliveryStore, templates TemplateStore, lists ListSummaries, sender MessageSender, log *slog.Logger) *DeliverySender {
	return &DeliverySender{store: store, templates: templates, lists: lists, sender: sender, log: log}
}

// Send sends one delivery. A permanent provider error fails it with the provider's reason at
// once; a passing one is returned for the task to retry, until lastAttempt, which fails it.
func (s *DeliverySender) Send(ctx context.Context, merchantID, deliveryID uuid.UUID, lastAttempt bool) error {
	d, err := s.store.DeliveryByID(ctx, merchantID, deliveryID)
	if errors.Is(err, ErrDeliveryNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if d.Status == DeliverySending {
		// A worker stopped while this message was with the provider: it may have gone out, so
		// it is not sent again.
		_, err := s.store.FinishDelivery(ctx, merchantID, deliveryID, DeliveryFailed, "",
			"the worker stopped while sending; not sent again so that it is never sent twice")
		return err
	}
	if d.Status != DeliveryQueued {
		return nil
	}
	fail := func(reason string) error {
		_, err := s.store.FinishDelivery(context.WithoutCancel(ctx), merchantID, deliveryID, DeliveryFailed, "", reason)
		return err
	}
	t, err := s.templates.GetTemplate(ctx, merchantID, d.TemplateID)
	if errors.Is(err, ErrTemplateNotFound) {
		return fail("the template was deleted")
	}
	if err != nil {
		return err
	}
	list, err := s.lists.ListSummary(ctx, merchantID, d.ListID)
	if errors.Is(err, ErrListNotFound) {
		return fail("the list was deleted")
	}
	if err != nil {
		return err
	}
	r, err := t.Render(RenderData{Code: d.Code, ExpiresAt: list.ExpiresAt, ListName: list.Name, FirstName: d.Recipient.FirstName,
		LastName: d.Recipient.LastName, Email: d.Recipient.Email, Phone: d.Recipient.Phone, ExternalID: d.Recipient.ExternalID, Campaign: d.Campaign})
	if err != nil {
		return fail("the template does not render: " + err.Error())
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
	// From here the message may reach the recipient: the delivery is marked sending first, so
	// that a worker killed mid-send never sends it a second time.
	ok, err := s.store.StartSending(ctx, merchantID, deliveryID)
	if err != nil || !ok {
		return err
	}
	started := time.Now()
	providerID, sendErr := s.sender.Send(ctx, merchantID, msg)
	// The outcome is recorded even if the task's context ends now.
	rec := context.WithoutCancel(ctx)
	switch {
	case sendErr == nil:
		return retryWrite(func() error {
			_, err := s.store.FinishDelivery(rec, merchantID, deliveryID, DeliverySent, providerID, "")
			return err
		})
	case IsPermanent(sendErr):
		s.log.InfoContext(ctx, "delivery refused by the provider", "delivery_id", deliveryID, "channel", d.Channel, "reason", sendErr.Error())
		return retryWrite(func() error { return fail(sendErr.Error()) })
	case errors.Is(sendErr, ErrChannelNotSet):
		return retryWrite(func() error { return fail("the " + string(d.Channel) + " channel is not configured") })
	case lastAttempt:
		return retryWrite(func() error { return fail(fmt.Sprintf("gave up after the last attempt: %v", sendErr)) })
	}
	s.log.WarnContext(ctx, "delivery will be retried", "delivery_id", deliveryID, "channel", d.Channel, "err", sendErr,
		"duration_ms", time.Since(started).Milliseconds())
	if err := retryWrite(func() error { return s.store.RequeueDelivery(rec, merchantID, deliveryID, sendErr.Error()) }); err != nil {
		return err
	}
	return sendErr
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
