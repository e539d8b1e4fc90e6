package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Delivery statuses, as the contract names them.
const (
	DeliveryQueued  = "queued"  // a code is allocated; the message waits for the worker
	DeliverySent    = "sent"    // the provider took the message
	DeliveryFailed  = "failed"  // the provider refused it for good (Error says why)
	DeliveryWaiting = "waiting" // the list had no code left; it resumes when codes arrive
	// DeliverySending is internal: the message is with the provider (the API shows queued).
	DeliverySending = "sending"
)

// MessageRecipient is who a message goes to.
type MessageRecipient struct {
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
	PushToken  string `json:"push_token,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
	FirstName  string `json:"first_name,omitempty"`
	LastName   string `json:"last_name,omitempty"`
}

// Recipient is the part of the message recipient a code is allocated to. A push recipient known
// only by a device token is that token (external id "push:" and a digest of the token).
func (r MessageRecipient) Recipient() Recipient {
	out := Recipient{ExternalID: r.ExternalID, Email: r.Email, Phone: r.Phone}
	if out == (Recipient{}) && r.PushToken != "" {
		// Tokens can be long: the recipient is a digest of the token.
		sum := sha256.Sum256([]byte(r.PushToken))
		out.ExternalID = "push:" + hex.EncodeToString(sum[:16])
	}
	return out
}

// Delivery is one message of a list's code to one recipient.
type Delivery struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	ListID     uuid.UUID
	JobID      *uuid.UUID
	Channel    Channel
	TemplateID uuid.UUID
	Campaign   string
	Recipient  MessageRecipient
	Status     string
	Seq        int64
	Code       string
	Error      string
	Attempts   int
	ProviderID string
	CreatedAt  time.Time
	SentAt     *time.Time
}

// ClaimedDelivery is a delivery with what its message needs of its list and code.
type ClaimedDelivery struct {
	Delivery
	ListName string
	// ExpiresAt is when the code stops working: its own expiry (CodeExpiresAt, read through the
	// SQL twin cg_code_expires_at), nil when nothing ends it.
	ExpiresAt *time.Time
	// TemplateUpdatedAt is when the delivery's template was last saved, nil when it was deleted:
	// the sender uses a template it keeps only when it is that version.
	TemplateUpdatedAt *time.Time
	// InBatch says a batch send task claimed the delivery less than StallAfter ago: it is that
	// task's to finish, not the remains of a stopped worker.
	InBatch bool
}

// DeliveryInput asks for one delivery.
type DeliveryInput struct {
	Recipient  MessageRecipient
	Campaign   string
	Channel    Channel
	TemplateID uuid.UUID
	Actor      string
}

// Errors of deliveries.
var (
	ErrDeliveryNotFound  = newError(KindNotFound, "delivery_not_found", "no such delivery")
	ErrTemplateNotFound  = newError(KindNotFound, "template_not_found", "no such template")
	ErrChannelNotSet     = newError(KindConflict, "channel_not_configured", "the channel is not configured: PUT /api/v1/channels/{channel} first")
	ErrTemplateOtherList = newError(KindInvalid, "template_mismatch", "the template belongs to another list or channel")
	ErrBulkSendMissing   = newError(KindNotFound, "delivery_job_not_found", "no such bulk send")
)

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// NormalizeRecipient trims the recipient and checks it has what the channel needs: an email
// address for email, an E.164 phone number (+4915112345678) for SMS, a device token for push.
func NormalizeRecipient(ch Channel, r MessageRecipient) (MessageRecipient, error) {
	r = MessageRecipient{
		Email: strings.ToLower(strings.TrimSpace(r.Email)), Phone: strings.ReplaceAll(strings.TrimSpace(r.Phone), " ", ""),
		PushToken: strings.TrimSpace(r.PushToken), ExternalID: strings.TrimSpace(r.ExternalID),
		FirstName: strings.TrimSpace(r.FirstName), LastName: strings.TrimSpace(r.LastName),
	}
	for field, v := range map[string]string{"recipient.first_name": r.FirstName, "recipient.last_name": r.LastName, "recipient.external_id": r.ExternalID} {
		if utf8.RuneCountInString(v) > 200 {
			return r, Invalid(field, "must be at most 200 characters")
		}
	}
	switch ch {
	case ChannelEmail:
		a, err := mail.ParseAddress(r.Email)
		if err != nil || a.Address != r.Email || len(r.Email) > 254 {
			return r, Invalid("recipient.email", "an email address is required for the email channel")
		}
	case ChannelSMS:
		if !e164.MatchString(r.Phone) {
			return r, Invalid("recipient.phone", "a phone number in E.164 form (+4915112345678) is required for the sms channel")
		}
	case ChannelPush:
		if r.PushToken == "" || len(r.PushToken) > 4096 {
			return r, Invalid("recipient.push_token", "a device token is required for the push channel")
		}
	default:
		return r, Invalid("channel", "must be email, sms or push")
	}
	return r, nil
}

// DeliveryStore keeps deliveries.
type DeliveryStore interface {
	// CreateDelivery stores d unless the list already has a delivery on that channel for the
	// recipient and campaign; it returns the stored one and whether it was created now.
	CreateDelivery(ctx context.Context, d Delivery) (Delivery, bool, error)
	GetDelivery(ctx context.Context, merchantID, listID, id uuid.UUID) (Delivery, error)
	// ListDeliveries pages through a list's deliveries, newest first.
	ListDeliveries(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Delivery, string, error)
	// ClaimDelivery moves a queued delivery to sending, counting the attempt, and returns it with
	// what its message needs (claimed true), in one statement. A delivery in any other state
	// comes back as it is, claimed false; one that does not exist is ErrDeliveryNotFound.
	ClaimDelivery(ctx context.Context, merchantID, id uuid.UUID) (d ClaimedDelivery, claimed bool, err error)
	// AssignDeliveryCode gives a waiting delivery its code and moves it to queued.
	AssignDeliveryCode(ctx context.Context, merchantID, id uuid.UUID, seq int64, code string) error
	// FinishDelivery records a send: sent with the provider's id, or failed with the reason; a
	// delivery already sent is left alone (sent reports whether this call recorded the send).
	FinishDelivery(ctx context.Context, merchantID, id uuid.UUID, status, providerID, reason string) (bool, error)
	// ClaimDeliveries moves the queued deliveries among ids to sending for a batch send task,
	// counting the attempt, and returns them with what their messages need; in the same statement
	// it records finished, the outcomes of the group the batch sent before (as FinishDeliveries).
	// Deliveries in any other state are left alone and not returned.
	ClaimDeliveries(ctx context.Context, merchantID uuid.UUID, finished []BatchOutcome, ids []uuid.UUID) ([]ClaimedDelivery, error)
	// FinishDeliveries records the outcomes of a batch's sends in one statement: sent and failed
	// as FinishDelivery does, queued as RequeueDelivery does.
	FinishDeliveries(ctx context.Context, merchantID uuid.UUID, outcomes []BatchOutcome) error
	// RetryDelivery moves a failed delivery back to queued (its code stays); retried is false
	// when it was not failed any more.
	RetryDelivery(ctx context.Context, merchantID, id uuid.UUID) (retried bool, err error)
	// RequeueDelivery moves a sending delivery back to queued after a send that failed for a
	// passing reason (nothing reached the recipient).
	RequeueDelivery(ctx context.Context, merchantID, id uuid.UUID, reason string) error
	// FindDelivery returns the list's delivery on channel for the recipient and campaign.
	FindDelivery(ctx context.Context, merchantID, listID uuid.UUID, ch Channel, r MessageRecipient, campaign string) (Delivery, bool, error)
	// FindDeliveries returns the list's deliveries on channel of the campaign to any of the
	// recipients, by DeliveryKey.
	FindDeliveries(ctx context.Context, merchantID, listID uuid.UUID, ch Channel, campaign string, rs []MessageRecipient) (map[string]Delivery, error)
	// FailWaiting fails the list's waiting deliveries with reason (the list can no longer give codes).
	FailWaiting(ctx context.Context, merchantID, listID uuid.UUID, reason string) error
	// WaitingDeliveries returns the list's waiting deliveries, oldest first.
	WaitingDeliveries(ctx context.Context, merchantID, listID uuid.UUID, limit int) ([]Delivery, error)
}

// TemplateStore keeps templates.
type TemplateStore interface {
	CreateTemplate(ctx context.Context, t Template) error
	// GetTemplate returns a template of the merchant, or ErrTemplateNotFound.
	GetTemplate(ctx context.Context, merchantID, id uuid.UUID) (Template, error)
	// ListTemplates pages through a list's templates, newest first.
	ListTemplates(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Template, string, error)
	// UpdateTemplate saves a changed template's parts, locale, time zone and UpdatedAt
	// (ErrTemplateNotFound when it is gone).
	UpdateTemplate(ctx context.Context, t Template) error
	// DeleteTemplate removes a template unless deliveries made with it are queued, sending or
	// waiting, or a bulk send with it is not finished (ErrTemplateInUse).
	DeleteTemplate(ctx context.Context, merchantID, id uuid.UUID) error
}

// DeliveryQueue queues sends.
type DeliveryQueue interface {
	EnqueueSend(ctx context.Context, merchantID, deliveryID uuid.UUID) error
	EnqueueResumeDeliveries(ctx context.Context, merchantID, listID uuid.UUID) error
}

// Allocating hands codes out (the Allocator).
type Allocating interface {
	Allocate(ctx context.Context, merchantID, listID uuid.UUID, req AllocationRequest) (Allocation, error)
}

// ChannelChecker tells whether a merchant configured a channel.
type ChannelChecker interface {
	ChannelConfigured(ctx context.Context, merchantID uuid.UUID, ch Channel) (bool, error)
}

// Deliveries sends a list's codes to recipients through the merchant's channels.
type Deliveries struct {
	store     DeliveryStore
	templates TemplateStore
	lists     ListStore
	alloc     Allocating
	channels  ChannelChecker
	queue     DeliveryQueue
	Clock
}

// NewDeliveries returns the service.
func NewDeliveries(store DeliveryStore, templates TemplateStore, lists ListStore, alloc Allocating, channels ChannelChecker, queue DeliveryQueue) *Deliveries {
	return &Deliveries{store: store, templates: templates, lists: lists, alloc: alloc, channels: channels, queue: queue}
}

// check validates a delivery request against its list, template and channel.
func (s *Deliveries) check(ctx context.Context, merchantID, listID uuid.UUID, in *DeliveryInput) error {
	in.Campaign = strings.TrimSpace(in.Campaign)
	if utf8.RuneCountInString(in.Campaign) > 200 {
		return Invalid("campaign", "must be at most 200 characters")
	}
	r, err := NormalizeRecipient(in.Channel, in.Recipient)
	if err != nil {
		return err
	}
	in.Recipient = r
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return err
	}
	t, err := s.templates.GetTemplate(ctx, merchantID, in.TemplateID)
	if err != nil {
		return err
	}
	if t.ListID != listID || t.Channel != in.Channel {
		return ErrTemplateOtherList
	}
	ok, err := s.channels.ChannelConfigured(ctx, merchantID, in.Channel)
	if err != nil {
		return err
	}
	if !ok {
		return ErrChannelNotSet
	}
	return nil
}

// Create allocates a code to the recipient (the same one again for the same recipient and
// campaign) and queues its message. When the list has no code left the delivery waits, and
// resumes when codes arrive. Asking twice for the same recipient, campaign and channel answers
// the same delivery (created false).
func (s *Deliveries) Create(ctx context.Context, merchantID, listID uuid.UUID, in DeliveryInput) (Delivery, bool, error) {
	if err := s.check(ctx, merchantID, listID, &in); err != nil {
		return Delivery{}, false, err
	}
	return s.create(ctx, merchantID, listID, nil, in)
}

func (s *Deliveries) create(ctx context.Context, merchantID, listID uuid.UUID, jobID *uuid.UUID, in DeliveryInput) (Delivery, bool, error) {
	// Asked before: the same delivery, and no code handed out for nothing.
	if d, found, err := s.store.FindDelivery(ctx, merchantID, listID, in.Channel, in.Recipient, in.Campaign); err != nil {
		return Delivery{}, false, err
	} else if found {
		return s.existing(ctx, d)
	}
	return s.createNew(ctx, merchantID, listID, jobID, in)
}

// existing answers a delivery asked for again: a failed one is sent again with the same code
// (the merchant fixed the channel, or the address), and a queued one has its send queued again
// (the task id keeps it to one send task). A sent or waiting one is left as it is.
func (s *Deliveries) existing(ctx context.Context, d Delivery) (Delivery, bool, error) {
	if d.Status == DeliveryFailed && d.Code != "" {
		retried, err := s.store.RetryDelivery(ctx, d.MerchantID, d.ID)
		if err != nil {
			return Delivery{}, false, err
		}
		if retried {
			d.Status, d.Error = DeliveryQueued, ""
		}
	}
	if d.Status == DeliveryQueued {
		if err := s.queue.EnqueueSend(ctx, d.MerchantID, d.ID); err != nil {
			return Delivery{}, false, Unavailable("redis", err)
		}
	}
	return d, false, nil
}

// createNew allocates a code and stores the delivery of a recipient who had none (a concurrent
// request for the same recipient gets the stored one back from CreateDelivery).
func (s *Deliveries) createNew(ctx context.Context, merchantID, listID uuid.UUID, jobID *uuid.UUID, in DeliveryInput) (Delivery, bool, error) {
	d := Delivery{MerchantID: merchantID, ID: uuid.New(), ListID: listID, JobID: jobID, Channel: in.Channel, TemplateID: in.TemplateID,
		Campaign: in.Campaign, Recipient: in.Recipient, Status: DeliveryQueued, CreatedAt: s.Now().UTC()}
	a, err := s.alloc.Allocate(ctx, merchantID, listID, AllocationRequest{Recipient: in.Recipient.Recipient(), Campaign: in.Campaign,
		Channel: string(in.Channel), Actor: in.Actor})
	switch {
	case errors.Is(err, ErrListExhausted):
		d.Status = DeliveryWaiting
	case err != nil:
		return Delivery{}, false, err
	default:
		d.Seq, d.Code = a.Seq, a.Code
	}
	stored, created, err := s.store.CreateDelivery(ctx, d)
	if err != nil {
		return Delivery{}, false, err
	}
	if stored.Status == DeliveryQueued {
		if err := s.queue.EnqueueSend(ctx, merchantID, stored.ID); err != nil {
			// Stored: the sweeper queues it later; the caller hears Redis is down.
			return Delivery{}, false, Unavailable("redis", err)
		}
	}
	return stored, created, nil
}

// DeliveryKey is the recipient part of a delivery's identity: a list has one delivery on a
// channel per recipient and campaign.
func DeliveryKey(r MessageRecipient) string {
	return RecipientKey(r.Recipient())
}

// Get returns a delivery of a list.
func (s *Deliveries) Get(ctx context.Context, merchantID, listID, id uuid.UUID) (Delivery, error) {
	return s.store.GetDelivery(ctx, merchantID, listID, id)
}

// List pages through a list's deliveries, newest first.
func (s *Deliveries) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Delivery, string, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	return s.store.ListDeliveries(ctx, merchantID, listID, page.Normalize())
}

// Resume gives waiting deliveries of a list the codes that arrived, oldest first, and queues
// their messages; it stops when the list runs out again.
func (s *Deliveries) Resume(ctx context.Context, merchantID, listID uuid.UUID) error {
	for {
		waiting, err := s.store.WaitingDeliveries(ctx, merchantID, listID, 500)
		if err != nil || len(waiting) == 0 {
			return err
		}
		for _, d := range waiting {
			a, err := s.alloc.Allocate(ctx, merchantID, listID, AllocationRequest{Recipient: d.Recipient.Recipient(), Campaign: d.Campaign,
				Channel: string(d.Channel), Actor: "delivery:" + d.ID.String()})
			if errors.Is(err, ErrListExhausted) {
				return nil
			}
			if errors.Is(err, ErrListNotFound) || errors.Is(err, ErrListArchived) || errors.Is(err, ErrListExpired) {
				// The list will give no code any more: the waiting deliveries end.
				return s.store.FailWaiting(ctx, merchantID, listID, "the list can give no code any more: "+err.Error())
			}
			if err != nil {
				return err
			}
			if err := s.store.AssignDeliveryCode(ctx, merchantID, d.ID, a.Seq, a.Code); err != nil {
				return err
			}
			if err := s.queue.EnqueueSend(ctx, merchantID, d.ID); err != nil {
				return err
			}
		}
	}
}

// CodesChanged implements CodeListener: waiting deliveries of the list resume.
func (s *Deliveries) CodesChanged(ctx context.Context, merchantID, listID uuid.UUID) error {
	return s.queue.EnqueueResumeDeliveries(ctx, merchantID, listID)
}

// Listeners is several CodeListeners heard in turn; every one is told, and their errors joined.
type Listeners []CodeListener

// CodesChanged implements CodeListener.
func (ls Listeners) CodesChanged(ctx context.Context, merchantID, listID uuid.UUID) error {
	var errs []error
	for _, l := range ls {
		errs = append(errs, l.CodesChanged(ctx, merchantID, listID))
	}
	return errors.Join(errs...)
}
