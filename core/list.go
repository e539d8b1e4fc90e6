package core

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// ListKind says how a list hands out codes.
type ListKind string

// List kinds.
const (
	// KindUnique lists hold many codes, each handed to exactly one recipient.
	KindUnique ListKind = "unique"
	// KindFixed lists hold one shared code, handed out up to MaxAssignments times.
	KindFixed ListKind = "fixed"
)

// ListStatus is derived from a list's dates, archive flag and stock; it is never stored.
type ListStatus string

// List statuses.
const (
	StatusActive    ListStatus = "active"
	StatusArchived  ListStatus = "archived"
	StatusExpired   ListStatus = "expired"
	StatusExhausted ListStatus = "exhausted"
)

// DefaultReassignWindow is how long the same recipient and campaign get the same code back.
const DefaultReassignWindow = 24 * time.Hour

// Counts are a list's codes by state. Total is every code in the list that was not removed.
type Counts struct {
	Total     int64 `json:"total"`
	Available int64 `json:"available"`
	Delivered int64 `json:"delivered"`
	Redeemed  int64 `json:"redeemed"`
	Removed   int64 `json:"removed"`
}

// List is a code list.
type List struct {
	ID                uuid.UUID
	MerchantID        uuid.UUID
	Name              string
	Description       string
	Kind              ListKind
	FixedCode         string
	MaxAssignments    int64 // fixed lists; 0 means unlimited
	UsesPerCode       int
	RequireIssued     bool
	StartsAt          *time.Time
	ExpiresAt         *time.Time
	LowStockThreshold int64
	ReassignWindow    time.Duration
	// ValidFor is how long a code stays valid after it was handed out (unique lists); 0 means
	// no such rule. See CodeExpiresAt.
	ValidFor        time.Duration
	CaseInsensitive bool
	ArchivedAt      *time.Time
	CreatedAt       time.Time
	UpdatedAt       time.Time
	Counts          Counts
}

// Status derives the list's status at now.
func (l List) Status(now time.Time) ListStatus {
	switch {
	case l.ArchivedAt != nil:
		return StatusArchived
	case l.ExpiresAt != nil && !now.Before(*l.ExpiresAt):
		return StatusExpired
	case l.Kind == KindUnique && l.Counts.Available == 0 && l.Counts.Total > 0:
		return StatusExhausted // it had codes and handed out the last one; an empty list is active
	case l.Kind == KindFixed && l.MaxAssignments > 0 && l.Counts.Delivered >= l.MaxAssignments:
		return StatusExhausted
	}
	return StatusActive
}

// Lookup is the form in which a code of this list is matched and kept unique.
func (l List) Lookup(code string) string {
	if l.CaseInsensitive {
		return strings.ToLower(code)
	}
	return code
}

// ListInput is a list as a merchant creates it. Pointer fields are optional.
type ListInput struct {
	Name              string
	Description       string
	Kind              ListKind
	FixedCode         string
	MaxAssignments    int64
	UsesPerCode       *int
	RequireIssued     bool
	StartsAt          *time.Time
	ExpiresAt         *time.Time
	LowStockThreshold int64
	ReassignWindow    *int64 // seconds
	ValidFor          *int64 // seconds; nil for no validity after hand-out
	CaseInsensitive   bool
}

// ListPatch is a partial update; nil fields stay as they are. The immutable fields (kind,
// fixed_code, case_insensitive) are refused when they would change.
type ListPatch struct {
	Name              *string
	Description       *string
	Kind              *ListKind
	FixedCode         *string
	CaseInsensitive   *bool
	MaxAssignments    *int64
	UsesPerCode       *int
	RequireIssued     *bool
	StartsAt          **time.Time
	ExpiresAt         **time.Time
	LowStockThreshold *int64
	ReassignWindow    *int64
	ValidFor          **int64 // seconds; a pointer to nil clears it
	Archived          *bool
}

// Page asks for one page of a listing.
type Page struct {
	Limit  int
	Cursor string
}

// Normalize applies the contract's defaults and bounds (limit 50 by default, 500 at most).
func (p Page) Normalize() Page {
	if p.Limit <= 0 {
		p.Limit = 50
	}
	if p.Limit > 500 {
		p.Limit = 500
	}
	return p
}

// ListStore keeps code lists and their counters.
type ListStore interface {
	// CreateList stores a new list (and, for a fixed list, its one code).
	CreateList(ctx context.Context, l List) error
	// GetList returns the list with its counts, or ErrListNotFound.
	GetList(ctx context.Context, merchantID, listID uuid.UUID) (List, error)
	// ListLists pages through a merchant's lists, oldest first.
	ListLists(ctx context.Context, merchantID uuid.UUID, page Page) ([]List, string, error)
	// UpdateList loads the list under a row lock, applies change and saves it.
	UpdateList(ctx context.Context, merchantID, listID uuid.UUID, change func(*List) error) (List, error)
	// DeleteList removes the list and its codes unless it is connected to a shop or template and
	// still has codes (ErrListConnected), deciding both under the list's row lock.
	DeleteList(ctx context.Context, merchantID, listID uuid.UUID) error
}

// Lists is the code-list service.
type Lists struct {
	store ListStore
	Clock
}

// NewLists returns the code-list service.
func NewLists(store ListStore) *Lists { return &Lists{store: store} }

// Create validates in and stores a new list.
func (s *Lists) Create(ctx context.Context, merchantID uuid.UUID, in ListInput) (List, error) {
	now := s.Now().UTC()
	l := List{
		ID: uuid.New(), MerchantID: merchantID, Name: strings.TrimSpace(in.Name), Description: in.Description,
		Kind: in.Kind, FixedCode: strings.TrimSpace(in.FixedCode), MaxAssignments: in.MaxAssignments, UsesPerCode: 1,
		RequireIssued: in.RequireIssued, StartsAt: utc(in.StartsAt), ExpiresAt: utc(in.ExpiresAt),
		LowStockThreshold: in.LowStockThreshold, ReassignWindow: DefaultReassignWindow,
		CaseInsensitive: in.CaseInsensitive, CreatedAt: now, UpdatedAt: now,
	}
	if l.Kind == "" {
		l.Kind = KindUnique
	}
	if in.UsesPerCode != nil {
		l.UsesPerCode = *in.UsesPerCode
	}
	if in.ReassignWindow != nil {
		l.ReassignWindow = time.Duration(*in.ReassignWindow) * time.Second
		if *in.ReassignWindow < 0 || *in.ReassignWindow > 10*365*86400 {
			return List{}, Invalid("reassign_window", "must be between 0 and 315360000 seconds")
		}
	}
	if in.ValidFor != nil {
		if err := checkValidFor(*in.ValidFor); err != nil {
			return List{}, err
		}
		l.ValidFor = time.Duration(*in.ValidFor) * time.Second
	}
	if err := validateList(l); err != nil {
		return List{}, err
	}
	if l.Kind == KindFixed {
		l.Counts = Counts{Total: 1, Available: 1}
	}
	if err := s.store.CreateList(ctx, l); err != nil {
		return List{}, err
	}
	return l, nil
}

// Get returns one list with its counts.
func (s *Lists) Get(ctx context.Context, merchantID, listID uuid.UUID) (List, error) {
	return s.store.GetList(ctx, merchantID, listID)
}

// List pages through the merchant's lists.
func (s *Lists) List(ctx context.Context, merchantID uuid.UUID, page Page) ([]List, string, error) {
	return s.store.ListLists(ctx, merchantID, page.Normalize())
}

// Update applies a patch; immutable fields answer 422 when they would change.
func (s *Lists) Update(ctx context.Context, merchantID, listID uuid.UUID, p ListPatch) (List, error) {
	now := s.Now().UTC()
	return s.store.UpdateList(ctx, merchantID, listID, func(l *List) error {
		if p.Kind != nil && *p.Kind != l.Kind {
			return immutable("kind")
		}
		if p.FixedCode != nil && strings.TrimSpace(*p.FixedCode) != l.FixedCode {
			return immutable("fixed_code")
		}
		if p.CaseInsensitive != nil && *p.CaseInsensitive != l.CaseInsensitive {
			return immutable("case_insensitive")
		}
		set(&l.Name, p.Name)
		l.Name = strings.TrimSpace(l.Name)
		set(&l.Description, p.Description)
		set(&l.MaxAssignments, p.MaxAssignments)
		set(&l.UsesPerCode, p.UsesPerCode)
		set(&l.RequireIssued, p.RequireIssued)
		set(&l.LowStockThreshold, p.LowStockThreshold)
		if p.StartsAt != nil {
			l.StartsAt = utc(*p.StartsAt)
		}
		if p.ExpiresAt != nil {
			l.ExpiresAt = utc(*p.ExpiresAt)
		}
		if p.ReassignWindow != nil {
			if *p.ReassignWindow < 0 || *p.ReassignWindow > 10*365*86400 {
				return Invalid("reassign_window", "must be between 0 and 315360000 seconds")
			}
			l.ReassignWindow = time.Duration(*p.ReassignWindow) * time.Second
		}
		if p.ValidFor != nil {
			l.ValidFor = 0
			if *p.ValidFor != nil {
				if err := checkValidFor(**p.ValidFor); err != nil {
					return err
				}
				l.ValidFor = time.Duration(**p.ValidFor) * time.Second
			}
		}
		if p.Archived != nil {
			switch {
			case *p.Archived && l.ArchivedAt == nil:
				l.ArchivedAt = &now
			case !*p.Archived:
				l.ArchivedAt = nil
			}
		}
		l.UpdatedAt = now
		return validateList(*l)
	})
}

// Delete removes a list and its codes; 409 when it is connected and still has codes.
func (s *Lists) Delete(ctx context.Context, merchantID, listID uuid.UUID) error {
	return s.store.DeleteList(ctx, merchantID, listID)
}

func validateList(l List) error {
	switch {
	case l.Name == "" || utf8.RuneCountInString(l.Name) > 200:
		return Invalid("name", "is required, at most 200 characters")
	case utf8.RuneCountInString(l.Description) > 2000:
		return Invalid("description", "must be at most 2000 characters")
	case l.Kind != KindUnique && l.Kind != KindFixed:
		return Invalid("kind", "must be unique or fixed")
	case l.UsesPerCode < 1 || l.UsesPerCode > 1_000_000:
		return Invalid("uses_per_code", "must be between 1 and 1000000")
	case l.RequireIssued && l.UsesPerCode > 1:
		return Invalid("require_issued", "cannot be combined with uses_per_code greater than 1")
	case l.StartsAt != nil && l.ExpiresAt != nil && !l.ExpiresAt.After(*l.StartsAt):
		return Invalid("expires_at", "must be after starts_at")
	case l.LowStockThreshold < 0:
		return Invalid("low_stock_threshold", "must not be negative")
	case l.MaxAssignments < 0:
		return Invalid("max_assignments", "must not be negative")
	case l.Kind == KindUnique && l.FixedCode != "":
		return Invalid("fixed_code", "is only for lists of kind fixed")
	case l.Kind == KindUnique && l.MaxAssignments != 0:
		return Invalid("max_assignments", "is only for lists of kind fixed")
	case l.Kind == KindFixed && l.ValidFor != 0:
		// The shared code is handed out again and again: it has no one hand-out to count from.
		return Invalid("valid_for", "is only for lists of kind unique")
	case l.Kind == KindFixed:
		if _, ok := CheckCode(l.FixedCode); !ok {
			return Invalid("fixed_code", "is required for a fixed list: 1 to 100 characters, no whitespace or control characters")
		}
	}
	return nil
}

// CheckCode trims surrounding whitespace and reports whether what is left is a valid code: 1 to 100
// characters with no whitespace or control characters.
func CheckCode(raw string) (string, bool) {
	code := strings.TrimSpace(raw)
	if code == "" || utf8.RuneCountInString(code) > 100 || !utf8.ValidString(code) {
		return code, false
	}
	for _, r := range code {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return code, false
		}
	}
	return code, true
}

// maxValidFor bounds valid_for, as the reassign window is bounded: ten years in seconds.
const maxValidFor = 10 * 365 * 86400

// checkValidFor refuses a valid_for that is not a positive number of seconds (null, not zero,
// says there is no such rule).
func checkValidFor(seconds int64) error {
	if seconds <= 0 || seconds > maxValidFor {
		return Invalid("valid_for", "must be between 1 and 315360000 seconds, or null for no limit after hand-out")
	}
	return nil
}

func immutable(field string) error {
	return &Error{Kind: KindInvalid, Code: "immutable_field", Message: field + " cannot be changed after the list is created",
		Details: []FieldError{{Field: field, Message: "immutable"}}}
}

func set[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
