package core

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// CodeState is where a code is in its life.
type CodeState string

// Code states. A code moves available → delivered → redeemed (or straight to redeemed when used
// without being handed out); only never-delivered codes can become removed. A used code is never reset.
const (
	StateAvailable CodeState = "available"
	StateDelivered CodeState = "delivered"
	StateRedeemed  CodeState = "redeemed"
	StateRemoved   CodeState = "removed"
)

// ParseCodeState accepts the four states; ok is false for anything else.
func ParseCodeState(s string) (CodeState, bool) {
	switch CodeState(s) {
	case StateAvailable, StateDelivered, StateRedeemed, StateRemoved:
		return CodeState(s), true
	}
	return "", false
}

// Recipient is who a code was handed to. At least one of the identifiers is set.
type Recipient struct {
	ExternalID string `json:"external_id,omitempty"`
	Email      string `json:"email,omitempty"`
	Phone      string `json:"phone,omitempty"`
}

// IsZero reports whether no identifier is set.
func (r Recipient) IsZero() bool { return r.ExternalID == "" && r.Email == "" && r.Phone == "" }

// Code is one code of a list.
type Code struct {
	ListID      uuid.UUID
	Seq         int64
	Code        string
	State       CodeState
	Uses        int
	Recipient   *Recipient
	Campaign    string
	DeliveredAt *time.Time
	RedeemedAt  *time.Time
	ExpiresAt   *time.Time
	// HeldUntil is the end of the checkout hold (reservation) the code is under, when one is
	// active as the code is read; nil otherwise.
	HeldUntil *time.Time
	Timeline  []Event
}

// CodeExpiresAt is a code's own expiry, the one rule every answer uses (allocation, GET code,
// validation, searches, exports, <expirydate>): the earliest of the list's expires_at, the code's
// own available_till and, when the list has ValidFor, delivered + ValidFor. Nil when none
// applies (an undelivered code of a valid_for list has no hand-out to count from yet). Queries
// that must filter by it call the SQL twin cg_code_expires_at (migrations/00016); keep them alike.
func CodeExpiresAt(list List, till, delivered *time.Time) *time.Time {
	var out *time.Time
	earliest := func(t *time.Time) {
		if t != nil && (out == nil || t.Before(*out)) {
			u := t.UTC()
			out = &u
		}
	}
	earliest(list.ExpiresAt)
	earliest(till)
	if list.ValidFor > 0 && delivered != nil {
		end := delivered.Add(list.ValidFor)
		earliest(&end)
	}
	return out
}

// Expired reports whether the code can no longer be used at now because its list's or its own
// expiry has passed (a used-up or removed code is not counted as expired: that says more).
func (c Code) Expired(now time.Time) bool {
	return (c.State == StateAvailable || c.State == StateDelivered) && c.ExpiresAt != nil && !now.Before(*c.ExpiresAt)
}

// Reserved reports whether a checkout holds the code at now.
func (c Code) Reserved(now time.Time) bool { return c.HeldUntil != nil && now.Before(*c.HeldUntil) }

// Event types on a code's timeline.
const (
	EventCreated   = "created" // a fixed list's code, made with the list
	EventImported  = "imported"
	EventGenerated = "generated"
	EventDelivered = "delivered"
	EventReserved  = "reserved"
	EventReleased  = "released"
	EventRedeemed  = "redeemed"
	EventOverUse   = "over_use"
	EventCancelled = "cancelled"
	EventRefunded  = "refunded"
	EventPending   = "order_pending"
	EventRemoved   = "removed"
	EventPushed    = "pushed"
)

// Event is one entry of a code's timeline.
type Event struct {
	At        time.Time       `json:"at"`
	Type      string          `json:"type"`
	Actor     string          `json:"actor"`
	Channel   string          `json:"channel"`
	Recipient *Recipient      `json:"recipient"`
	Order     string          `json:"order"`
	Details   json.RawMessage `json:"details"`
}

// CodeFilter narrows a search by something true of a code now that is not one of its states.
type CodeFilter string

// Code filters.
const (
	// FilterReserved is a code a checkout holds now (an active reservation).
	FilterReserved CodeFilter = "reserved"
	// FilterExpired is an available or delivered code whose list's or own expiry has passed.
	FilterExpired CodeFilter = "expired"
)

// ParseCodeFilter accepts reserved and expired; ok is false for anything else.
func ParseCodeFilter(s string) (CodeFilter, bool) {
	switch CodeFilter(s) {
	case FilterReserved, FilterExpired:
		return CodeFilter(s), true
	}
	return "", false
}

// CodeQuery filters a list's codes. A search narrowed by State or Filter (and not by a
// recipient) reads a bounded stretch of the list per page, so a page may hold fewer codes than
// its limit, even none, and still have a next cursor: more of the list is left to search.
type CodeQuery struct {
	Prefix    string
	State     CodeState
	Filter    CodeFilter
	Recipient string // matches external id, email or phone exactly
	Page      Page
}

// CodeMatch is a code with its list.
type CodeMatch struct {
	List List
	Code Code
}

// ExportFilter is the export's state filter: all, delivered, undelivered or redeemed.
type ExportFilter string

// Export filters.
const (
	// ExportAll is every code of the list, removed ones included (their state column says so).
	ExportAll ExportFilter = "all"
	// ExportDelivered is every code that was handed out (delivered_at set), used since or not.
	ExportDelivered ExportFilter = "delivered"
	// ExportUndelivered is the codes still to hand out: state available.
	ExportUndelivered ExportFilter = "undelivered"
	// ExportRedeemed is every code used at least once (state redeemed or a redemption time).
	ExportRedeemed ExportFilter = "redeemed"
)

// ExportHeader is the header row of a code export.
const ExportHeader = "code,state,recipient_external_id,recipient_email,recipient_phone,campaign,delivered_at,redeemed_at,expires_at,uses"

// CodeStore reads and manages codes.
type CodeStore interface {
	// SearchCodes pages through a list's codes matching q.
	SearchCodes(ctx context.Context, list List, q CodeQuery) ([]Code, string, error)
	// GetCode returns one code with its timeline, or ErrCodeNotFound.
	GetCode(ctx context.Context, list List, code string) (Code, error)
	// GetCodes returns the codes of a list among codes (as stored; no timelines), in the order
	// asked; codes the list does not have are left out.
	GetCodes(ctx context.Context, list List, codes []string) ([]Code, error)
	// CodeLists returns the ids of the merchant's lists that hold code (matched without regard
	// to case in case-insensitive lists), newest list first.
	CodeLists(ctx context.Context, merchantID uuid.UUID, code string) ([]uuid.UUID, error)
	// RemoveCode removes one never-delivered code (ErrCodeInUse otherwise).
	RemoveCode(ctx context.Context, list List, code string, actor string) error
	// RemoveAvailable removes every never-delivered code and returns how many went.
	RemoveAvailable(ctx context.Context, list List, actor string) (int64, error)
	// ExportCodes streams the list's codes as CSV rows (header included) to w.
	ExportCodes(ctx context.Context, list List, filter ExportFilter, w io.Writer) error
}

// Codes is the service for finding and managing codes.
type Codes struct {
	lists ListStore
	store CodeStore
	// Listener hears that codes were removed (optional), so pushes delete them from shops.
	Listener CodeListener
}

// NewCodes returns the code service.
func NewCodes(lists ListStore, store CodeStore) *Codes { return &Codes{lists: lists, store: store} }

// Search finds codes of a list.
func (s *Codes) Search(ctx context.Context, merchantID, listID uuid.UUID, q CodeQuery) ([]Code, string, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return nil, "", err
	}
	q.Page = q.Page.Normalize()
	q.Recipient = strings.TrimSpace(q.Recipient)
	if !storableText(q.Prefix) {
		return nil, "", Invalid("q", "must be UTF-8 text without NUL characters")
	}
	if !storableText(q.Recipient) {
		return nil, "", Invalid("recipient", "must be UTF-8 text without NUL characters")
	}
	if q.Filter != "" {
		if _, ok := ParseCodeFilter(string(q.Filter)); !ok {
			return nil, "", Invalid("state", "must be available, delivered, reserved, redeemed, removed or expired")
		}
	}
	if q.Prefix != "" {
		q.Prefix = list.Lookup(q.Prefix)
	}
	return s.store.SearchCodes(ctx, list, q)
}

// Get returns a code with its timeline.
func (s *Codes) Get(ctx context.Context, merchantID, listID uuid.UUID, code string) (Code, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return Code{}, err
	}
	code, ok := CheckCode(code)
	if !ok {
		return Code{}, ErrCodeNotFound
	}
	return s.store.GetCode(ctx, list, code)
}

// maxLookupLists bounds how many lists Lookup answers with.
const maxLookupLists = 100

// Lookup finds a whole code across the merchant's lists (as a till types it): each list that
// holds it, newest list first, removed codes included. A string that cannot be a code finds
// nothing.
func (s *Codes) Lookup(ctx context.Context, merchantID uuid.UUID, raw string) ([]CodeMatch, error) {
	code, ok := CheckCode(raw)
	if !ok {
		return nil, nil
	}
	ids, err := s.store.CodeLists(ctx, merchantID, code)
	if err != nil {
		return nil, err
	}
	if len(ids) > maxLookupLists {
		ids = ids[:maxLookupLists]
	}
	out := make([]CodeMatch, 0, len(ids))
	for _, id := range ids {
		list, err := s.lists.GetList(ctx, merchantID, id)
		if errors.Is(err, ErrListNotFound) {
			continue // deleted since
		}
		if err != nil {
			return nil, err
		}
		codes, err := s.store.GetCodes(ctx, list, []string{code})
		if err != nil {
			return nil, err
		}
		for _, c := range codes {
			out = append(out, CodeMatch{List: list, Code: c})
		}
	}
	return out, nil
}

// storableText reports whether s can be sent to the database as text (valid UTF-8, no NUL), so
// that a malformed search answers 422, not a database error.
func storableText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// ErrFixedListCode answers a removal from a fixed list, whose one code is the list itself.
var ErrFixedListCode = newError(KindConflict, "fixed_list", "a fixed list's code is the list itself; archive or delete the list instead")

// Remove removes one never-delivered code. Removing a code that is already removed is a no-op.
func (s *Codes) Remove(ctx context.Context, merchantID, listID uuid.UUID, code, actor string) error {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return err
	}
	if list.Kind == KindFixed {
		return ErrFixedListCode
	}
	code, ok := CheckCode(code)
	if !ok {
		return ErrCodeNotFound
	}
	if err := s.store.RemoveCode(ctx, list, code, actor); err != nil {
		return err
	}
	if s.Listener != nil {
		return s.Listener.CodesChanged(ctx, merchantID, listID)
	}
	return nil
}

// RemoveAvailable removes every never-delivered code of the list that is not held by a
// reservation.
func (s *Codes) RemoveAvailable(ctx context.Context, merchantID, listID uuid.UUID, actor string) (int64, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return 0, err
	}
	if list.Kind == KindFixed {
		return 0, ErrFixedListCode
	}
	n, err := s.store.RemoveAvailable(ctx, list, actor)
	if err != nil || n == 0 || s.Listener == nil {
		return n, err
	}
	return n, s.Listener.CodesChanged(ctx, merchantID, listID)
}

// Export streams the list's codes as CSV to w.
func (s *Codes) Export(ctx context.Context, merchantID, listID uuid.UUID, filter ExportFilter, w io.Writer) error {
	switch filter {
	case "":
		filter = ExportAll
	case ExportAll, ExportDelivered, ExportUndelivered, ExportRedeemed:
	default:
		return Invalid("state", "must be all, delivered, undelivered or redeemed")
	}
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return err
	}
	return s.store.ExportCodes(ctx, list, filter, w)
}
