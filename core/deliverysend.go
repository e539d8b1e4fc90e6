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
	lists     ListStore
	sender    MessageSender
	log       *slog.Logger
}

// NewDeliverySender returns the sender.
func NewDeliverySender(store DeliveryStore, templates TemplateStore, lists ListStore, sender MessageSender, log *slog.Logger) *DeliverySender {
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
	if d.Status != DeliveryQueued {
		return nil
	}
	fail := func(reason string) error {
		_, err := s.store.FinishDelivery(ctx, merchantID, deliveryID, DeliveryFailed, "", reason)
		return err
	}
	t, err := s.templates.GetTemplate(ctx, merchantID, d.TemplateID)
	if errors.Is(err, ErrTemplateNotFound) {
		return fail("the template was deleted")
	}
	if err != nil {
		return err
	}
	list, err := s.lists.GetList(ctx, merchantID, d.ListID)
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
	if err := s.store.CountAttempt(ctx, merchantID, deliveryID); err != nil {
		return err
	}
	started := time.Now()
	providerID, err := s.sender.Send(ctx, merchantID, msg)
	switch {
	case err == nil:
		_, err := s.store.FinishDelivery(ctx, merchantID, deliveryID, DeliverySent, providerID, "")
		return err
	case IsPermanent(err):
		s.log.InfoContext(ctx, "delivery refused by the provider", "delivery_id", deliveryID, "channel", d.Channel, "reason", err.Error())
		return fail(err.Error())
	case errors.Is(err, ErrChannelNotSet):
		return fail("the " + string(d.Channel) + " channel is not configured")
	case lastAttempt:
		return fail(fmt.Sprintf("gave up after the last attempt: %v", err))
	}
	s.log.WarnContext(ctx, "delivery will be retried", "delivery_id", deliveryID, "channel", d.Channel, "err", err,
		"duration_ms", time.Since(started).Milliseconds())
	return err
}
