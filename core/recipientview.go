package core

import (
	"context"
	"errors"

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

// Search answers "which codes did this person get?" for one search string, which may be an
// external id, an email address or a phone number (RecipientKeys): every code handed out under
// any of them, across lists, newest hand-out first, at most 500. The codes come without their
// timelines (a customer page lists them; each code's page has its timeline).
func (v *RecipientView) Search(ctx context.Context, merchantID uuid.UUID, q string) ([]RecipientEntry, error) {
	if !storableText(q) {
		return nil, Invalid("q", "must be UTF-8 text without NUL characters")
	}
	keys := RecipientKeys(q)
	if len(keys) == 0 {
		return nil, Invalid("q", "give an email address, a phone number or an external id")
	}
	found, err := v.recipients.RecipientCodes(ctx, merchantID, keys, maxRecipientCodes)
	if err != nil {
		return nil, err
	}
	// One read of the codes per list, then back into hand-out order.
	var order []uuid.UUID
	byList := map[uuid.UUID][]string{}
	for _, rc := range found {
		if _, ok := byList[rc.ListID]; !ok {
			order = append(order, rc.ListID)
		}
		byList[rc.ListID] = append(byList[rc.ListID], rc.Code)
	}
	type key struct {
		list uuid.UUID
		code string
	}
	got := map[key]RecipientEntry{}
	for _, id := range order {
		l, err := v.lists.GetList(ctx, merchantID, id)
		if errors.Is(err, ErrListNotFound) {
			continue // deleted since
		}
		if err != nil {
			return nil, err
		}
		codes, err := v.codes.GetCodes(ctx, l, byList[id])
		if err != nil {
			return nil, err
		}
		for _, c := range codes {
			got[key{id, c.Code}] = RecipientEntry{List: l, Code: c}
		}
	}
	out := make([]RecipientEntry, 0, len(found))
	for _, rc := range found {
		if e, ok := got[key{rc.ListID, rc.Code}]; ok {
			out = append(out, e)
		}
	}
	return out, nil
}
