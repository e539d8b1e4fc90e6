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
}

// NewTemplates returns the service.
func NewTemplates(store TemplateStore, lists ListStore) *Templates {
	return &Templates{store: store, lists: lists}
}

// Create validates a template (refusing unknown placeholders by name) and stores it for the list.
func (s *Templates) Create(ctx context.Context, merchantID, listID uuid.UUID, in TemplateInput) (Template, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return Template{}, err
	}
	t, err := NewTemplate(in, time.Now())
	if err != nil {
		return Template{}, err
	}
	t.ID, t.MerchantID, t.ListID = uuid.New(), merchantID, listID
	return t, s.store.CreateTemplate(ctx, t)
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
	r, err := t.Render(SampleRenderData(list.Name, list.ExpiresAt))
	return t, r, err
}
