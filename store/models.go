// The gorm models of the tables the store reads and writes as plain rows (see doc.go for which
// functions use them). Each model names its table (TableName) and each column exactly, with the
// table's primary key; the goose migrations in migrations/ own the schema, and nothing here ever
// runs AutoMigrate. A model holds the columns its functions use: code_lists' counters, sequence
// positions and stock state, for instance, are left to the pgx statements that move them.

package store

import (
	"database/sql/driver"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// merchantRow is a row of merchants (migrations 00001, 00012): the merchant and the hashes of its
// keys, with the previous key of each kind while it still works after a rotation.
type merchantRow struct {
	ID                             uuid.UUID  `gorm:"column:id;primaryKey"`
	Name                           string     `gorm:"column:name"`
	APIKeyHash                     []byte     `gorm:"column:api_key_hash"`
	StorefrontKeyHash              []byte     `gorm:"column:storefront_key_hash"`
	PreviousAPIKeyHash             []byte     `gorm:"column:previous_api_key_hash"`
	PreviousAPIKeyExpiresAt        *time.Time `gorm:"column:previous_api_key_expires_at"`
	PreviousStorefrontKeyHash      []byte     `gorm:"column:previous_storefront_key_hash"`
	PreviousStorefrontKeyExpiresAt *time.Time `gorm:"column:previous_storefront_key_expires_at"`
	CreatedAt                      timeUTC    `gorm:"column:created_at;autoCreateTime:false"`
}

// TableName is merchants.
func (merchantRow) TableName() string { return "merchants" }

// listRow is the plain part of a row of code_lists (migrations 00001, 00016): what a merchant
// sets on a list, and next_seq, written once when the list is made. The allocation, import and
// sweeper statements move next_seq, next_batch, next_import, stock_state and expired_event_at
// afterwards (pgx), and the counts live in list_counters.
type listRow struct {
	MerchantID        uuid.UUID  `gorm:"column:merchant_id;primaryKey"`
	ID                uuid.UUID  `gorm:"column:id;primaryKey"`
	Name              string     `gorm:"column:name"`
	Description       string     `gorm:"column:description"`
	Kind              string     `gorm:"column:kind"`
	FixedCode         *string    `gorm:"column:fixed_code"`
	MaxAssignments    *int64     `gorm:"column:max_assignments"`
	UsesPerCode       int        `gorm:"column:uses_per_code"`
	RequireIssued     bool       `gorm:"column:require_issued"`
	StartsAt          *time.Time `gorm:"column:starts_at"`
	ExpiresAt         *time.Time `gorm:"column:expires_at"`
	LowStockThreshold int64      `gorm:"column:low_stock_threshold"`
	ReassignWindow    int64      `gorm:"column:reassign_window"` // seconds
	ValidFor          *int64     `gorm:"column:valid_for"`       // seconds; NULL for no validity after hand-out
	CaseInsensitive   bool       `gorm:"column:case_insensitive"`
	ArchivedAt        *time.Time `gorm:"column:archived_at"`
	CreatedAt         time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt         time.Time  `gorm:"column:updated_at;autoUpdateTime:false"`
	NextSeq           int64      `gorm:"column:next_seq;<-:create"` // the next code's position
}

// TableName is code_lists.
func (listRow) TableName() string { return "code_lists" }

// batchRow is a row of batches (migration 00001): a run of generated codes of a list, numbered
// 1, 2, 3 … per list (CreateBatch takes the number on the list row, with pgx).
type batchRow struct {
	MerchantID uuid.UUID  `gorm:"column:merchant_id;primaryKey"`
	ListID     uuid.UUID  `gorm:"column:list_id;primaryKey"`
	Number     int        `gorm:"column:number;primaryKey"`
	Count      int64      `gorm:"column:count"`
	Generated  int64      `gorm:"column:generated"`
	Prefix     string     `gorm:"column:prefix"`
	Length     int        `gorm:"column:length"`
	Charset    string     `gorm:"column:charset"`
	Separator  string     `gorm:"column:separator"`
	Status     string     `gorm:"column:status"`
	Error      string     `gorm:"column:error"`
	Exported   bool       `gorm:"column:exported"`
	CreatedBy  string     `gorm:"column:created_by"`
	CreatedAt  time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	FinishedAt *time.Time `gorm:"column:finished_at"`
}

// TableName is batches.
func (batchRow) TableName() string { return "batches" }

// templateRow is a row of templates (migrations 00001, 00009): a message of one channel for a
// list's codes. The fields a channel does not use stay empty.
type templateRow struct {
	MerchantID uuid.UUID `gorm:"column:merchant_id;primaryKey"`
	ID         uuid.UUID `gorm:"column:id;primaryKey"`
	ListID     uuid.UUID `gorm:"column:list_id"`
	Channel    string    `gorm:"column:channel"`
	Subject    string    `gorm:"column:subject"`
	Text       string    `gorm:"column:text"`
	HTML       string    `gorm:"column:html"`
	Title      string    `gorm:"column:title"`
	Body       string    `gorm:"column:body"`
	Locale     string    `gorm:"column:locale"`
	TimeZone   string    `gorm:"column:time_zone"`
	CreatedAt  time.Time `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt  time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
}

// TableName is templates.
func (templateRow) TableName() string { return "templates" }

// channelRow is a row of channels (migration 00009): a merchant's settings of one message
// channel, the readable part as JSON and the whole settings sealed (AES-256-GCM, see Sealer).
type channelRow struct {
	MerchantID uuid.UUID `gorm:"column:merchant_id;primaryKey"`
	Channel    string    `gorm:"column:channel;primaryKey"`
	Settings   []byte    `gorm:"column:settings"` // jsonb
	Secrets    []byte    `gorm:"column:secrets"`  // sealed
	UpdatedAt  time.Time `gorm:"column:updated_at;autoUpdateTime:false"`
}

// TableName is channels.
func (channelRow) TableName() string { return "channels" }

// endpointRow is a row of webhook_endpoints (migration 00009): where a merchant's outgoing
// webhooks go, with the signing secret sealed.
type endpointRow struct {
	MerchantID   uuid.UUID  `gorm:"column:merchant_id;primaryKey"`
	ID           uuid.UUID  `gorm:"column:id;primaryKey"`
	URL          string     `gorm:"column:url"`
	Events       textArray  `gorm:"column:events;type:text[]"`
	Secret       []byte     `gorm:"column:secret"` // sealed
	State        string     `gorm:"column:state"`
	FailingSince *time.Time `gorm:"column:failing_since"`
	DisabledAt   *time.Time `gorm:"column:disabled_at"`
	CreatedAt    time.Time  `gorm:"column:created_at;autoCreateTime:false"`
}

// TableName is webhook_endpoints.
func (endpointRow) TableName() string { return "webhook_endpoints" }

// redeemLinkRow is a row of redeem_links (migration 00018): a public page that hands out a list's
// codes. HandedOut is read only: the sum of the link's redeem_link_counters shards, selected by
// redeemLinkSelect.
type redeemLinkRow struct {
	MerchantID  uuid.UUID  `gorm:"column:merchant_id;primaryKey"`
	ID          uuid.UUID  `gorm:"column:id;primaryKey"`
	ListID      uuid.UUID  `gorm:"column:list_id"`
	Slug        string     `gorm:"column:slug"`
	Name        string     `gorm:"column:name"`
	IdentifyBy  string     `gorm:"column:identify_by"`
	StartsAt    *time.Time `gorm:"column:starts_at"`
	EndsAt      *time.Time `gorm:"column:ends_at"`
	Page        []byte     `gorm:"column:page"` // jsonb, core.RedeemPage
	Redirect    string     `gorm:"column:redirect"`
	RedirectURL string     `gorm:"column:redirect_url"`
	CreatedAt   time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	UpdatedAt   time.Time  `gorm:"column:updated_at;autoUpdateTime:false"`
	HandedOut   int64      `gorm:"column:handed_out;->"`
}

// TableName is redeem_links.
func (redeemLinkRow) TableName() string { return "redeem_links" }

// userRow is a row of dashboard_users (migrations 00013, 00017, 00019): a person of a merchant's
// team. PasswordHash is NULL until the invite is accepted; RemovedAt marks a removed person,
// whose row stays for the history it is named in. The scanner's columns (scanner_pin_digest,
// scan_lists) are read and written by scanner.go.
type userRow struct {
	MerchantID   uuid.UUID  `gorm:"column:merchant_id;primaryKey"`
	ID           uuid.UUID  `gorm:"column:id;primaryKey"`
	Email        string     `gorm:"column:email"`
	Role         string     `gorm:"column:role"`
	PasswordHash *string    `gorm:"column:password_hash"`
	CreatedAt    time.Time  `gorm:"column:created_at;autoCreateTime:false"`
	InvitedBy    *uuid.UUID `gorm:"column:invited_by"`
	RemovedAt    *time.Time `gorm:"column:removed_at"`
}

// TableName is dashboard_users.
func (userRow) TableName() string { return "dashboard_users" }

// sessionRow is a row of dashboard_sessions (migration 00013): a signed-in browser, found by the
// SHA-256 of its cookie.
type sessionRow struct {
	MerchantID uuid.UUID `gorm:"column:merchant_id;primaryKey"`
	IDHash     []byte    `gorm:"column:id_hash;primaryKey"`
	UserID     uuid.UUID `gorm:"column:user_id"`
	CSRFToken  string    `gorm:"column:csrf_token"`
	CreatedAt  time.Time `gorm:"column:created_at;autoCreateTime:false"`
	LastSeenAt time.Time `gorm:"column:last_seen_at"`
	ExpiresAt  time.Time `gorm:"column:expires_at"`
}

// TableName is dashboard_sessions.
func (sessionRow) TableName() string { return "dashboard_sessions" }

// textArray is a text[] column through database/sql: Scan reads the array's text form and Value
// writes it (gorm takes a slice field only when it is a Valuer).
type textArray []string

// Scan implements sql.Scanner.
func (a *textArray) Scan(src any) error {
	var s []string
	if err := pgtype.NewMap().SQLScanner(&s).Scan(src); err != nil {
		return fmt.Errorf("scan text[]: %w", err)
	}
	*a = s
	return nil
}

// Value implements driver.Valuer: the array in PostgreSQL's text form.
func (a textArray) Value() (driver.Value, error) {
	buf, err := pgtype.NewMap().Encode(pgtype.TextArrayOID, pgtype.TextFormatCode, []string(a), nil)
	if err != nil {
		return nil, fmt.Errorf("encode text[]: %w", err)
	}
	if buf == nil {
		return nil, nil // a nil slice is NULL
	}
	return string(buf), nil
}
