package core

import (
	"context"
	"net/mail"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// AlertStore keeps where a merchant's alerts go.
type AlertStore interface {
	PutAlertEmails(ctx context.Context, merchantID uuid.UUID, emails []string) error
	AlertEmails(ctx context.Context, merchantID uuid.UUID) ([]string, error)
}

// AlertSettings keeps the addresses low-stock, exhausted and expired alerts are emailed to.
type AlertSettings struct{ store AlertStore }

// NewAlertSettings returns the service.
func NewAlertSettings(store AlertStore) *AlertSettings { return &AlertSettings{store: store} }

// Put replaces the alert addresses (at most 20; an empty list stops the alerts).
func (s *AlertSettings) Put(ctx context.Context, merchantID uuid.UUID, emails []string) ([]string, error) {
	if len(emails) > 20 {
		return nil, Invalid("emails", "at most 20 addresses")
	}
	out := []string{}
	for _, given := range emails {
		e := strings.ToLower(strings.TrimSpace(given))
		if a, err := mail.ParseAddress(e); err != nil || a.Address != e {
			return nil, Invalid("emails", strconv.Quote(strings.TrimSpace(given))+" is not an email address")
		}
		out = append(out, e)
	}
	return out, s.store.PutAlertEmails(ctx, merchantID, out)
}

// Get returns the alert addresses.
func (s *AlertSettings) Get(ctx context.Context, merchantID uuid.UUID) ([]string, error) {
	return s.store.AlertEmails(ctx, merchantID)
}
