package core

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Connection states, as the contract names them.
const (
	ConnectionActive       = "active"
	ConnectionUninstalled  = "uninstalled"
	ConnectionDisconnected = "disconnected"
	ConnectionError        = "error"
)

// Connection is a shop connected to a merchant: a Shopify shop or a WooCommerce store.
type Connection struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	Platform   string
	// Shop is the shop domain (Shopify) or the site URL (WooCommerce).
	Shop  string
	State string
	// Scopes are the access scopes the platform granted.
	Scopes string
	// SyncedAt is how far orders were reconciled: orders updated up to here were fetched.
	SyncedAt *time.Time
	// PaidStatuses are the order statuses that count as paid (WooCommerce; nil: the platform's
	// defaults).
	PaidStatuses []string
	// Error says why the connection is in state error.
	Error     string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Push states.
const (
	PushPending = "pending" // queued, nothing sent yet
	PushPushing = "pushing" // codes are being sent
	PushActive  = "active"  // every code so far is in the shop; later codes follow
	PushError   = "error"   // the shop refused the discount; Error says why
	PushStopped = "stopped" // the connection went away
)

// Discount value types of a push.
const (
	ValuePercentage  = "percentage"
	ValueFixedAmount = "fixed_amount"
)

// Discount is what a pushed list's codes give at the shop's checkout.
type Discount struct {
	Title string `json:"title"`
	// ValueType is ValuePercentage (Value 10 means 10 %) or ValueFixedAmount (in the shop's
	// currency).
	ValueType              string  `json:"value_type"`
	Value                  float64 `json:"value"`
	AppliesOncePerCustomer bool    `json:"applies_once_per_customer"`
}

// Push is a list's codes pushed into a connected shop.
type Push struct {
	MerchantID   uuid.UUID
	ListID       uuid.UUID
	ConnectionID uuid.UUID
	Platform     string
	Shop         string
	State        string
	Discount     Discount
	// RemoteID is the shop's id of the discount holding the codes.
	RemoteID string
	// Pushed and Failed count codes the shop took and refused; Deleted counts pushed codes
	// removed from the list and deleted from the shop; Pending counts codes of the list not in
	// the shop yet.
	Pushed, Failed, Deleted, Pending int64
	Error                            string
	CreatedAt, UpdatedAt             time.Time
}

// PushInput is the body of a push request.
type PushInput struct {
	ConnectionID uuid.UUID
	Discount     Discount
}

// Errors of connections and pushes.
var (
	ErrConnectionNotFound = newError(KindNotFound, "connection_not_found", "no such connection")
	ErrConnectionInactive = newError(KindConflict, "connection_inactive", "the connection is not active; reconnect the shop first")
	ErrPushUnsupported    = newError(KindInvalid, "push_unsupported", "codes cannot be pushed to this connection's platform yet")
	// ErrCaseClash answers a push of a list whose codes differ only by case to a platform that
	// ignores case (WooCommerce lowercases coupon codes); Details name the clashing codes.
	ErrCaseClash = newError(KindInvalid, "codes_differ_by_case",
		"the list has codes that differ only by case, which this platform cannot tell apart; remove one of each pair first")
)

// ConnectionStore keeps connections and pushes.
type ConnectionStore interface {
	// ListConnections pages through a merchant's connections, oldest first.
	ListConnections(ctx context.Context, merchantID uuid.UUID, page Page) ([]Connection, string, error)
	// GetConnection returns one connection or ErrConnectionNotFound.
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (Connection, error)
	// DisconnectConnection moves the connection to disconnected, stops its routing and its
	// pushes, and returns it; ErrConnectionNotFound when there is none.
	DisconnectConnection(ctx context.Context, merchantID, id uuid.UUID) (Connection, error)
	// CreatePush stores p unless the list is already pushed to that connection; it returns the
	// push as stored and whether it was created now.
	CreatePush(ctx context.Context, p Push) (Push, bool, error)
	// MarkPushesChanged records that the list's codes changed now, for every push of the list.
	MarkPushesChanged(ctx context.Context, merchantID, listID uuid.UUID) error
	// RestartPush moves a push in state error or stopped back to pending (a retry asked for by the
	// merchant, or a push of a shop that was reconnected).
	RestartPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) (Push, error)
	// ListPushes returns every push of a list, with counts.
	ListPushes(ctx context.Context, merchantID, listID uuid.UUID) ([]Push, error)
	// CaseClashes returns up to limit groups of the list's codes (not removed) that differ only
	// by case.
	CaseClashes(ctx context.Context, merchantID, listID uuid.UUID, limit int) ([][]string, error)
	// GetPush returns one push with its counts (ErrListNotFound when there is none).
	GetPush(ctx context.Context, ref PushRef) (Push, error)
	// ConnectionPushes returns every push to a connection, with counts, oldest first.
	ConnectionPushes(ctx context.Context, merchantID, connectionID uuid.UUID) ([]Push, error)
	// FailedPushCodes pages through the codes the shop refused in a push, in the list's order,
	// with the shop's reasons.
	FailedPushCodes(ctx context.Context, ref PushRef, page Page) ([]FailedPushCode, string, error)
}

// FailedPushCode is a code the shop refused, with the shop's reason.
type FailedPushCode struct {
	Seq    int64
	Code   string
	Reason string
	At     time.Time
}

// ErrPushNotFound answers a push that does not exist: the list was never pushed to that shop.
var ErrPushNotFound = newError(KindNotFound, "push_not_found", "the list was not pushed to this shop")

// ConnectionQueue queues the background work of connections.
type ConnectionQueue interface {
	// EnqueuePush runs (or resumes) the push of a list to a connection.
	EnqueuePush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error
	// EnqueueReconcile fetches the shop's recently updated orders.
	EnqueueReconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error
	// EnqueueDisconnect removes the platform webhooks and forgets the credentials.
	EnqueueDisconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// Connections is the service behind the connection and push endpoints.
type Connections struct {
	store ConnectionStore
	lists ListStore
	queue ConnectionQueue
	// pushable are the platforms a push can be run for; caseless those that ignore case in codes.
	pushable map[string]bool
	caseless map[string]bool
}

// NewConnections returns the service; pushable names the platforms codes can be pushed to.
func NewConnections(store ConnectionStore, lists ListStore, queue ConnectionQueue, pushable ...string) *Connections {
	c := &Connections{store: store, lists: lists, queue: queue, pushable: make(map[string]bool), caseless: make(map[string]bool)}
	for _, p := range pushable {
		c.pushable[p] = true
	}
	return c
}

// IgnoringCase names the platforms that do not tell codes apart by case: a list with codes that
// differ only by case is not pushed to them.
func (s *Connections) IgnoringCase(platforms ...string) *Connections {
	for _, p := range platforms {
		s.caseless[p] = true
	}
	return s
}

// List pages through the merchant's connections.
func (s *Connections) List(ctx context.Context, merchantID uuid.UUID, page Page) ([]Connection, string, error) {
	return s.store.ListConnections(ctx, merchantID, page.Normalize())
}

// Get returns one of the merchant's connections.
func (s *Connections) Get(ctx context.Context, merchantID, id uuid.UUID) (Connection, error) {
	return s.store.GetConnection(ctx, merchantID, id)
}

// ConnectionPushes returns every push of the merchant's lists to a connection, oldest first.
func (s *Connections) ConnectionPushes(ctx context.Context, merchantID, connectionID uuid.UUID) ([]Push, error) {
	if _, err := s.store.GetConnection(ctx, merchantID, connectionID); err != nil {
		return nil, err
	}
	return s.store.ConnectionPushes(ctx, merchantID, connectionID)
}

// Push returns the push of a list to a connection (ErrPushNotFound when it was never pushed).
func (s *Connections) Push(ctx context.Context, merchantID, listID, connectionID uuid.UUID) (Push, error) {
	p, err := s.store.GetPush(ctx, PushRef{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID})
	if errors.Is(err, ErrListNotFound) {
		return Push{}, ErrPushNotFound
	}
	return p, err
}

// FailedCodes pages through the codes the shop refused in a push, with its reasons.
func (s *Connections) FailedCodes(ctx context.Context, merchantID, listID, connectionID uuid.UUID, page Page) ([]FailedPushCode, string, error) {
	return s.store.FailedPushCodes(ctx, PushRef{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID}, page.Normalize())
}

// Disconnect stops using a connection at once (no more webhooks are accepted for it and its
// pushes stop) and queues the removal of its platform webhooks and credentials.
func (s *Connections) Disconnect(ctx context.Context, merchantID, id uuid.UUID) (Connection, error) {
	c, err := s.store.DisconnectConnection(ctx, merchantID, id)
	if err != nil {
		return Connection{}, err
	}
	return c, s.queue.EnqueueDisconnect(ctx, merchantID, id)
}

// Reconcile queues a fetch of the shop's recently updated orders, as the schedule does.
func (s *Connections) Reconcile(ctx context.Context, merchantID, id uuid.UUID) (Connection, error) {
	c, err := s.store.GetConnection(ctx, merchantID, id)
	if err != nil {
		return Connection{}, err
	}
	if c.State != ConnectionActive {
		return Connection{}, ErrConnectionInactive
	}
	return c, s.queue.EnqueueReconcile(ctx, merchantID, id)
}

// ValidateDiscount checks a push's discount; the shop would refuse what it refuses.
func ValidateDiscount(d Discount) error {
	title := strings.TrimSpace(d.Title)
	switch {
	case title == "":
		return Invalid("discount.title", "is required")
	case utf8.RuneCountInString(title) > 255:
		return Invalid("discount.title", "must be at most 255 characters")
	}
	if math.IsNaN(d.Value) || math.IsInf(d.Value, 0) || d.Value <= 0 {
		return Invalid("discount.value", "must be greater than 0")
	}
	switch d.ValueType {
	case ValuePercentage:
		if d.Value > 100 {
			return Invalid("discount.value", "a percentage must be at most 100")
		}
	case ValueFixedAmount:
		if d.Value > 1e9 {
			return Invalid("discount.value", "is too large")
		}
	default:
		return Invalid("discount.value_type", "must be percentage or fixed_amount")
	}
	return nil
}

// StartPush pushes a list's codes to a connected shop. A list already pushed to that connection
// is not pushed twice: its push is resumed (or, after an error or a reconnection, started again
// where it stopped) and returned with created false.
func (s *Connections) StartPush(ctx context.Context, merchantID, listID uuid.UUID, in PushInput) (Push, bool, error) {
	in.Discount.Title = strings.TrimSpace(in.Discount.Title)
	if err := ValidateDiscount(in.Discount); err != nil {
		return Push{}, false, err
	}
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return Push{}, false, err
	}
	conn, err := s.store.GetConnection(ctx, merchantID, in.ConnectionID)
	if err != nil {
		return Push{}, false, err
	}
	if conn.State != ConnectionActive {
		return Push{}, false, ErrConnectionInactive
	}
	if !s.pushable[conn.Platform] {
		return Push{}, false, ErrPushUnsupported
	}
	if s.caseless[conn.Platform] {
		clashes, err := s.store.CaseClashes(ctx, merchantID, listID, 20)
		if err != nil {
			return Push{}, false, err
		}
		if len(clashes) > 0 {
			e := *ErrCaseClash
			for _, group := range clashes {
				e.Details = append(e.Details, FieldError{Field: "codes", Message: strings.Join(group, ", ")})
			}
			return Push{}, false, &e
		}
	}
	p, created, err := s.store.CreatePush(ctx, Push{
		MerchantID: merchantID, ListID: listID, ConnectionID: conn.ID,
		Platform: conn.Platform, Shop: conn.Shop, State: PushPending, Discount: in.Discount,
	})
	if err != nil {
		return Push{}, false, err
	}
	if !created && (p.State == PushError || p.State == PushStopped) {
		if p, err = s.store.RestartPush(ctx, merchantID, listID, conn.ID); err != nil {
			return Push{}, false, err
		}
	}
	if err := s.queue.EnqueuePush(ctx, merchantID, listID, conn.ID); err != nil {
		return Push{}, false, err
	}
	return p, created, nil
}

// Pushes returns every push of a list.
func (s *Connections) Pushes(ctx context.Context, merchantID, listID uuid.UUID) ([]Push, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, err
	}
	return s.store.ListPushes(ctx, merchantID, listID)
}

// Credentials are what Coupongate holds to call a connected shop. The store keeps them sealed
// (encrypted and authenticated) and never logs them.
type Credentials struct {
	// AccessToken and RefreshToken are OAuth tokens (Shopify); ExpiresAt and RefreshExpiresAt are
	// nil for tokens that do not expire.
	AccessToken      string     `json:"access_token,omitempty"`
	RefreshToken     string     `json:"refresh_token,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	RefreshExpiresAt *time.Time `json:"refresh_expires_at,omitempty"`
	// ConsumerKey and ConsumerSecret are REST API keys (WooCommerce).
	ConsumerKey    string `json:"consumer_key,omitempty"`
	ConsumerSecret string `json:"consumer_secret,omitempty"`
	// WebhookSecrets sign the platform's deliveries to this connection, one per webhook, when
	// they are per connection (WooCommerce).
	WebhookSecrets []string `json:"webhook_secrets,omitempty"`
}

// String keeps credentials out of logs and error messages.
func (Credentials) String() string { return "core.Credentials{…}" }

// LogValue keeps credentials out of structured logs (slog's JSON handler would otherwise
// marshal the fields).
func (Credentials) LogValue() slog.Value { return slog.StringValue("core.Credentials{…}") }

// GoString keeps credentials out of %#v.
func (c Credentials) GoString() string { return c.String() }

// PushCode is one code of a push, as the platform sees it.
type PushCode struct {
	Seq  int64
	Code string
	// BatchID is the platform's id of the batch the code was submitted in ("" before the call).
	BatchID string
	// RemoteID is the platform's id of the code once pushed.
	RemoteID string
}

// PushOutcome is what the platform did with one submitted code.
type PushOutcome struct {
	Seq      int64
	Pushed   bool
	RemoteID string
	// Error is the platform's reason when the code was refused.
	Error string
}

// PushRef names a push.
type PushRef struct {
	MerchantID, ListID, ConnectionID uuid.UUID
}

// PushStore is what a platform's push runner needs: the push, its cursor over the list's codes,
// and the state of every submitted code. Every step is recorded before or after the platform
// call so that a rerun never submits a code twice without knowing it.
type PushStore interface {
	// GetPush returns the push with its counts (ErrListNotFound when it is gone).
	GetPush(ctx context.Context, ref PushRef) (Push, error)
	// SetPushState records the push's state and error.
	SetPushState(ctx context.Context, ref PushRef, state, reason string) error
	// FirstPushCode records that the discount is being created with the first code not yet
	// submitted and returns it (found false when the list has none).
	FirstPushCode(ctx context.Context, ref PushRef) (code PushCode, found bool, err error)
	// CreatingPushCode returns the code recorded by FirstPushCode and when (database time), if
	// the discount's creation was started and neither finished nor given up on that code.
	CreatingPushCode(ctx context.Context, ref PushRef) (code PushCode, startedAt time.Time, found bool, err error)
	// LockPush takes the push's run lock, so two runs never interleave (a task whose lease ran
	// out can be started again while it still runs); ok is false when another run holds it.
	LockPush(ctx context.Context, ref PushRef) (release func(), ok bool, err error)
	// BeginPushRun returns the database's time at the start of a run.
	BeginPushRun(ctx context.Context, ref PushRef) (time.Time, error)
	// FinishPushRun ends a run begun at startedAt: the push becomes active and covers every
	// change made before startedAt. changed tells that the list changed since, so the run should
	// go round again instead.
	FinishPushRun(ctx context.Context, ref PushRef, startedAt time.Time) (changed bool, err error)
	// SetPushRemote records the platform's discount id and that code as pushed.
	SetPushRemote(ctx context.Context, ref PushRef, remoteID string, first PushOutcome) error
	// ClaimPushCodes takes up to limit codes past the cursor that are not removed, records them
	// submitted (no batch yet) and moves the cursor past them.
	ClaimPushCodes(ctx context.Context, ref PushRef, limit int) ([]PushCode, error)
	// UnsentPushCodes returns codes recorded submitted with no batch: a call that may not have
	// reached the platform.
	UnsentPushCodes(ctx context.Context, ref PushRef, limit int) ([]PushCode, error)
	// SetPushBatch records the platform's batch id for submitted codes.
	SetPushBatch(ctx context.Context, ref PushRef, seqs []int64, batchID string) error
	// OpenPushBatches returns the batches with codes still submitted, oldest first.
	OpenPushBatches(ctx context.Context, ref PushRef) ([]string, error)
	// PushBatchCodes returns the codes of a batch that are still submitted.
	PushBatchCodes(ctx context.Context, ref PushRef, batchID string) ([]PushCode, error)
	// FinishPushCodes records outcomes (pushed or failed), their timeline events and the
	// counts, for codes still submitted.
	FinishPushCodes(ctx context.Context, ref PushRef, outcomes []PushOutcome) error
	// RemovedPushedCodes returns pushed codes that were since removed from the list.
	RemovedPushedCodes(ctx context.Context, ref PushRef, limit int) ([]PushCode, error)
	// MarkPushCodesDeleted records pushed codes as deleted from the platform.
	MarkPushCodesDeleted(ctx context.Context, ref PushRef, seqs []int64) error
}

// Timeline events of pushes.
const (
	// EventPushFailed is a code the shop refused, with the shop's reason.
	EventPushFailed = "push_failed"
	// EventUnpushed is a removed code deleted from the shop.
	EventUnpushed = "unpushed"
)

// CodeListener hears that a list's codes changed: codes were added (an import or a batch
// finished) or removed. Connections implements it, so pushes follow the list.
type CodeListener interface {
	CodesChanged(ctx context.Context, merchantID, listID uuid.UUID) error
}

// notifyCodesChanged tells l, if set; a failure is logged, not returned: the work that changed
// the codes is done, and the sweeper starts pushes that fell behind.
func notifyCodesChanged(ctx context.Context, l CodeListener, log *slog.Logger, merchantID, listID uuid.UUID) {
	if l == nil {
		return
	}
	if err := l.CodesChanged(ctx, merchantID, listID); err != nil {
		log.WarnContext(ctx, "could not start the list's pushes", "list_id", listID, "err", err)
	}
}

// CodesChanged implements CodeListener: it records the change on the list's pushes (a run that
// is already going sees it before it finishes, the sweeper after) and runs every live push.
func (s *Connections) CodesChanged(ctx context.Context, merchantID, listID uuid.UUID) error {
	if err := s.store.MarkPushesChanged(ctx, merchantID, listID); err != nil {
		return err
	}
	pushes, err := s.store.ListPushes(ctx, merchantID, listID)
	if err != nil {
		return err
	}
	for _, p := range pushes {
		if p.State == PushStopped || p.State == PushError {
			continue
		}
		if err := s.queue.EnqueuePush(ctx, merchantID, listID, p.ConnectionID); err != nil {
			return err
		}
	}
	return nil
}

// ActiveConnectionLister pages through a platform's active connections across merchants.
type ActiveConnectionLister interface {
	ActiveConnections(ctx context.Context, platform string, afterMerchant, afterID uuid.UUID, limit int) ([]Connection, error)
}

// ForEachActiveConnection calls fn for every active connection of a platform, 500 at a time
// (the schedulers' reconciliation).
func ForEachActiveConnection(ctx context.Context, store ActiveConnectionLister, platform string, fn func(Connection) error) error {
	var afterM, afterID uuid.UUID
	for {
		conns, err := store.ActiveConnections(ctx, platform, afterM, afterID, 500)
		if err != nil {
			return err
		}
		for _, c := range conns {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(conns) < 500 {
			return nil
		}
		afterM, afterID = conns[len(conns)-1].MerchantID, conns[len(conns)-1].ID
	}
}
