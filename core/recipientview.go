package core

import (
	"context"

	"github.com/google/uuid"
)

// RecipientCode names one code a recipient was handed.
type RecipientCode struct {
	ListID uuid.UUID
	Code   string
}

// RecipientStore finds the codes handed to a recipient.
type RecipientStore interface {
	// RecipientCodes returns the codes allocated under any of the recipient keys, newest first, at
	// most limit.
	RecipientCodes(ctx context.Context, merchantID uuid.UUID, keys []string, limit int) ([]RecipientCode, error)
}

// RecipientEntry is one code of the recipient view, with its list and timeline.
type RecipientEntry struct {
	List List
	Code Code
}

// maxRecipientCodes bounds the recipient view.
const maxRecipientCodes = 500

// RecipientView answers "which codes did this person get?" across a merchant's lists.
type RecipientView struct {
	lists      ListStore
	codes      CodeStore
	recipients RecipientStore
}

// NewRecipientView returns the recipient view service.
func NewRecipientView(lists ListStore, codes CodeStore, recipients RecipientStore) *RecipientView {
	return &RecipientView{lists: lists, codes: codes, recipients: recipients}
}

// Codes returns every code handed to the recipient, across lists, each with its timeline. Each
// identifier given is searched (an email and an external id find the codes of both).
func (v *RecipientView) Codes(ctx context.Context, merchantID uuid.UUID, r Recipient) ([]RecipientEntry, error) {
	var keys []string
	for _, one := range []Recipient{{ExternalID: r.ExternalID}, {Email: r.Email}, {Phone: r.Phone}} {
		if k := RecipientKey(one); k != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, Invalid("email", "give one of email, external_id or phone")
	}
	found, err := v.recipients.RecipientCodes(ctx, merchantID, keys, maxRecipientCodes)
	if err != nil {
		return nil, err
	}
	lists := map[uuid.UUID]List{}
	out := make([]RecipientEntry, 0, len(found))
	for _, rc := range found {
		l, ok := lists[rc.ListID]
		if !ok {
			if l, err = v.lists.GetList(ctx, merchantID, rc.ListID); err != nil {
				return nil, err
			}
			lists[rc.ListID] = l
		}
		c, err := v.codes.GetCode(ctx, l, rc.Code)
		if err != nil {
			return nil, err
		}
		out = append(out, RecipientEntry{List: l, Code: c})
	}
	return out, nil
}
