package core

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Templates keeps a list's message templates.
type Templates struct {
	store TemplateStore
	lists ListStore
	Clock
}

// NewTemplates returns the service.
func NewTemplates(store TemplateStore, lists ListStore) *Templates {
	return &Templates{store: store, lists: lists}
}

// ErrTemplateInUse refuses to delete a template that messages still wait to be sent with.
var ErrTemplateInUse = newError(KindConflict, "template_in_use",
	"messages made with this template are still waiting to be sent (queued, or waiting for codes, or in a bulk send that is running); delete it once they are sent or failed")

// TemplatePatch changes a template: nil fields keep their value. A template keeps its channel
// (its deliveries were made for it); Channel, when set, must be the template's own.
type TemplatePatch struct {
	Channel  *string
	Subject  *string
	Text     *string
	HTML     *string
	Title    *string
	Body     *string
	Locale   *string
	TimeZone *string
}

// Create validates a template (refusing unknown placeholders by name) and stores it for the list.
func (s *Templates) Create(ctx context.Context, merchantID, listID uuid.UUID, in TemplateInput) (Template, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return Template{}, err
	}
	t, err := NewTemplate(in, s.Now())
	if err != nil {
		return Template{}, err
	}
	t.ID, t.MerchantID, t.ListID = uuid.New(), merchantID, listID
	return t, s.store.CreateTemplate(ctx, t)
}

// Get returns one of the merchant's templates.
func (s *Templates) Get(ctx context.Context, merchantID, id uuid.UUID) (Template, error) {
	return s.store.GetTemplate(ctx, merchantID, id)
}

// List pages through a list's templates, newest first.
func (s *Templates) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Template, string, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	return s.store.ListTemplates(ctx, merchantID, listID, page.Normalize())
}

// Update applies p to a template and validates the result as Create does. Messages still to be
// sent with the template are sent with what it says now.
func (s *Templates) Update(ctx context.Context, merchantID, id uuid.UUID, p TemplatePatch) (Template, error) {
	t, err := s.store.GetTemplate(ctx, merchantID, id)
	if err != nil {
		return Template{}, err
	}
	if p.Channel != nil {
		if ch, ok := ParseChannel(*p.Channel); !ok || ch != t.Channel {
			return Template{}, Invalid("channel", "cannot change: this is a "+string(t.Channel)+" template; create a new template for another channel")
		}
	}
	for _, f := range []struct {
		to   *string
		from *string
	}{{&t.Subject, p.Subject}, {&t.Text, p.Text}, {&t.HTML, p.HTML}, {&t.Title, p.Title}, {&t.Body, p.Body},
		{&t.Locale, p.Locale}, {&t.TimeZone, p.TimeZone}} {
		if f.from != nil {
			*f.to = *f.from
		}
	}
	t, err = ValidateTemplate(t)
	if err != nil {
		return Template{}, err
	}
	t.UpdatedAt = s.Now().UTC()
	if err := s.store.UpdateTemplate(ctx, t); err != nil {
		return Template{}, err
	}
	return t, nil
}

// Delete removes a template, unless messages made with it still wait to be sent
// (ErrTemplateInUse). Sent and failed deliveries keep naming it.
func (s *Templates) Delete(ctx context.Context, merchantID, id uuid.UUID) error {
	return s.store.DeleteTemplate(ctx, merchantID, id)
}

// Preview renders a template with a sample code and recipient, and the list's name and expiry.
func (s *Templates) Preview(ctx context.Context, merchantID, id uuid.UUID) (Template, Rendered, error) {
	t, err := s.store.GetTemplate(ctx, merchantID, id)
	if err != nil {
		return Template{}, Rendered{}, err
	}
	list, err := s.lists.GetList(ctx, merchantID, t.ListID)
	if err != nil {
		return Template{}, Rendered{}, err
	}
	r, err := t.Render(SampleRenderData(list.Name, sampleExpiry(list, s.Now())))
	return t, r, err
}

// PreviewDraft renders a template that is not saved (what an editor holds) as Preview renders a
// saved one, after the checks Create makes; the list gives its name and expiry.
func (s *Templates) PreviewDraft(ctx context.Context, merchantID, listID uuid.UUID, in TemplateInput) (Template, Rendered, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return Template{}, Rendered{}, err
	}
	t, err := NewTemplate(in, s.Now())
	if err != nil {
		return Template{}, Rendered{}, err
	}
	t.MerchantID, t.ListID = merchantID, listID
	r, err := t.Render(SampleRenderData(list.Name, sampleExpiry(list, s.Now())))
	return t, r, err
}

// sampleExpiry is the expiry a preview shows: that of a code of the list handed out at now
// (CodeExpiresAt), so a list with valid_for previews now + valid_for unless its own end is sooner.
func sampleExpiry(list List, now time.Time) *time.Time {
	return CodeExpiresAt(list, nil, &now)
}
