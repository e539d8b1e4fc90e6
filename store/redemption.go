package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// foundCodeColumns reads a code with its list for validation and redemption.
const foundCodeColumns = `l.id, l.name, l.kind, l.max_assignments, l.uses_per_code, l.require_issued, l.starts_at, l.expires_at,
	l.archived_at, l.case_insensitive, l.created_at, coalesce(l.valid_for, 0), c.seq, c.code, c.state, c.uses, c.available_from,
	c.available_till, c.delivered_at, c.recipient_external_id, c.recipient_email, c.recipient_phone, c.hold_id, c.held_until,
	coalesce(r.customer_key, '')`

// foundCodeScanner reads rows of foundCodeColumns into FoundCodes. Its targets are reused from row
// to row (pgx allocates what a pointer target points to afresh, so rows share nothing), so a batch
// of look-ups costs no allocation per row beyond the values themselves.
type foundCodeScanner struct {
	f                 core.FoundCode
	maxAssign         *int64
	ext, email, phone *string
	state             string
	validFor          int64
	dest              []any
}

// newFoundCodeScanner reads foundCodeColumns after the columns lead (if any) names.
func newFoundCodeScanner(lead ...any) *foundCodeScanner {
	s := &foundCodeScanner{}
	f := &s.f
	s.dest = append(lead, &f.List.ID, &f.List.Name, &f.List.Kind, &s.maxAssign, &f.List.UsesPerCode, &f.List.RequireIssued,
		&f.List.StartsAt, &f.List.ExpiresAt, &f.List.ArchivedAt, &f.List.CaseInsensitive, &f.List.CreatedAt, &s.validFor, &f.Seq, &f.Code, &s.state, &f.Uses,
		&f.AvailableFrom, &f.AvailableTill, &f.DeliveredAt, &s.ext, &s.email, &s.phone, &f.HoldID, &f.HeldUntil, &f.HoldCustomer)
	return s
}

// scan reads one row.
func (s *foundCodeScanner) scan(row pgx.Row) (core.FoundCode, error) {
	if err := row.Scan(s.dest...); err != nil {
		return core.FoundCode{}, err
	}
	f := s.f
	f.List.ValidFor = time.Duration(s.validFor) * time.Second
	f.List.MaxAssignments = deref(s.maxAssign)
	f.State = core.CodeState(s.state)
	f.Holder = core.Recipient{ExternalID: deref(s.ext), Email: deref(s.email), Phone: deref(s.phone)}
	return f, nil
}

// scanFoundCode reads one row of foundCodeColumns.
func scanFoundCode(row pgx.Row) (core.FoundCode, error) {
	return newFoundCodeScanner().scan(row)
}

// FindCode implements core.CodeFinder: one probe of the unique (merchant_id, lookup, list_id)
// index for the code as given and lower-cased, kept where the list's case rule matches. A code
// present in several lists resolves to a live one in the newest active list. Look-ups asked at the
// same time share one statement (lookupCode).
func (db *DB) FindCode(ctx context.Context, merchantID uuid.UUID, code string) (core.FoundCode, bool, error) {
	return db.lookupCode(ctx, merchantID, code)
}

// FindPushedCode implements core.CodeFinder: the code pushed to the shop (state pushed) or being
// pushed to it (state submitted: its batch's answer may never have come, yet the store has the
// coupon), by the pushes' folded key, then the code in its list. Each state is one probe of its
// own partial index (code_pushes_key for pushed, code_pushes_open for the few submitted rows of
// the merchant); a pushed row wins over a submitted one, a live code over a removed one.
func (db *DB) FindPushedCode(ctx context.Context, merchantID uuid.UUID, platform, shop, code string) (core.FoundCode, bool, error) {
	var listID uuid.UUID
	var exact string
	err := db.pool.QueryRow(ctx, `SELECT list_id, code FROM (
			SELECT s.list_id, k.code, k.state = 'removed' AS removed, 0 AS rank, s.updated_at FROM code_pushes s
			JOIN connections c ON c.merchant_id = s.merchant_id AND c.id = s.connection_id AND c.platform = $3 AND c.shop = $4
			JOIN codes k ON k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
			WHERE s.merchant_id = $1 AND s.code_key = $2 AND s.state = 'pushed'
			UNION ALL
			SELECT s.list_id, k.code, k.state = 'removed', 1, s.updated_at FROM code_pushes s
			JOIN connections c ON c.merchant_id = s.merchant_id AND c.id = s.connection_id AND c.platform = $3 AND c.shop = $4
			JOIN codes k ON k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
			WHERE s.merchant_id = $1 AND s.code_key = $2 AND s.state = 'submitted'
		) pushed ORDER BY removed, rank, updated_at DESC LIMIT 1`, merchantID, strings.ToLower(code), platform, shop).Scan(&listID, &exact)
	if err == pgx.ErrNoRows {
		return core.FoundCode{}, false, nil
	}
	if err != nil {
		return core.FoundCode{}, false, fmt.Errorf("db: find pushed code: %w", err)
	}
	f, err := db.FindListCode(ctx, merchantID, listID, exact)
	if errors.Is(err, core.ErrCodeNotFound) || errors.Is(err, core.ErrListNotFound) {
		return core.FoundCode{}, false, nil
	}
	return f, err == nil, err
}

// FindListCode implements core.CodeFinder.
func (db *DB) FindListCode(ctx context.Context, merchantID, listID uuid.UUID, code string) (core.FoundCode, error) {
	f, err := scanFoundCode(db.pool.QueryRow(ctx, `SELECT `+foundCodeColumns+`
		FROM code_lists l
		JOIN codes c ON c.merchant_id = l.merchant_id AND c.list_id = l.id
		 AND c.lookup = CASE WHEN l.case_insensitive THEN $4 ELSE $3 END
		LEFT JOIN reservations r ON r.merchant_id = c.merchant_id AND r.id = c.hold_id
		WHERE l.merchant_id = $1 AND l.id = $2`, merchantID, listID, code, strings.ToLower(code)))
	if err == pgx.ErrNoRows {
		var listExists bool
		if err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM code_lists WHERE merchant_id = $1 AND id = $2)`,
			merchantID, listID).Scan(&listExists); err != nil {
			return core.FoundCode{}, fmt.Errorf("db: find list: %w", err)
		}
		if listExists {
			return core.FoundCode{}, core.ErrCodeNotFound
		}
		return core.FoundCode{}, core.ErrListNotFound
	}
	if err != nil {
		return core.FoundCode{}, fmt.Errorf("db: find code: %w", err)
	}
	return f, nil
}

// Hold implements core.HoldStore. The guarded UPDATE takes the hold only when no other customer's
// hold is active at req.Now and a use is left, so two storefronts racing for one code get one hold.
func (db *DB) Hold(ctx context.Context, merchantID uuid.UUID, f core.FoundCode, req core.HoldRequest) (core.Reservation, bool, error) {
	var res core.Reservation
	held := false
	until, renew := req.Until, req.Renew && f.HoldID != nil
	err := db.tx(ctx, func(tx pgx.Tx) error {
		id := uuid.New()
		if renew {
			id = *f.HoldID
		}
		tag, err := tx.Exec(ctx, `UPDATE codes SET hold_id = $4, held_until = $5
			WHERE merchant_id = $1 AND list_id = $2 AND seq = $3 AND state <> 'removed' AND uses < $6
			  AND (hold_id IS NULL OR held_until <= $7 OR hold_id = $4)`,
			merchantID, f.List.ID, f.Seq, id, until, f.UseLimit(), req.Now)
		if err != nil {
			return fmt.Errorf("db: hold: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return nil
		}
		if renew {
			_, err = tx.Exec(ctx, `UPDATE reservations SET expires_at = $3 WHERE merchant_id = $1 AND id = $2`, merchantID, id, until)
		} else {
			_, err = tx.Exec(ctx, `INSERT INTO reservations (merchant_id, id, list_id, seq, customer_key, expires_at) VALUES ($1, $2, $3, $4, $5, $6)`,
				merchantID, id, f.List.ID, f.Seq, req.CustomerKey, until)
		}
		if err != nil {
			return fmt.Errorf("db: record reservation: %w", err)
		}
		if err := addEvent(ctx, tx, merchantID, f.List.ID, f.Seq, core.EventReserved, req.Actor, "storefront", nil, "",
			map[string]any{"reservation_id": id, "expires_at": until.UTC(), "renewed": renew}); err != nil {
			return err
		}
		res, held = core.Reservation{ID: id, ExpiresAt: until.UTC()}, true
		return nil
	})
	return res, held, err
}

// Release implements core.HoldStore. Releasing a hold that already ended (released, redeemed or
// run out) succeeds again; an id that never existed is ErrReservationGone.
func (db *DB) Release(ctx context.Context, merchantID, reservationID uuid.UUID, actor string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		var listID uuid.UUID
		var seq int64
		var active bool
		err := tx.QueryRow(ctx, `SELECT list_id, seq, ended_at IS NULL AND expires_at > now() FROM reservations
			WHERE merchant_id = $1 AND id = $2 FOR UPDATE`, merchantID, reservationID).Scan(&listID, &seq, &active)
		if err != nil {
			return notFound(err, core.ErrReservationGone)
		}
		if !active {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE reservations SET ended_at = now(), ended_by = 'released' WHERE merchant_id = $1 AND id = $2`,
			merchantID, reservationID); err != nil {
			return fmt.Errorf("db: release: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE codes SET hold_id = NULL, held_until = NULL
			WHERE merchant_id = $1 AND list_id = $2 AND seq = $3 AND hold_id = $4`, merchantID, listID, seq, reservationID); err != nil {
			return fmt.Errorf("db: release: %w", err)
		}
		return addEvent(ctx, tx, merchantID, listID, seq, core.EventReleased, actor, "storefront", nil, "",
			map[string]any{"reservation_id": reservationID})
	})
}

var _ core.RedemptionStore = (*DB)(nil)

// Redeem implements core.RedemptionStore in one transaction of two round trips (decideInTx): the
// row locks of the codes apps name, with the order keys and statuses recorded on them, read into
// a ledger; then the decisions core takes on it, persisted (nothing to persist rolls back). Every
// decision about a code is taken under its row lock, so concurrent and repeated events on it are
// decided one after the other, each on what the one before committed. PostgreSQL down or failing
// over answers core.ErrUnavailable (IsUnavailable).
func (db *DB) Redeem(ctx context.Context, merchantID uuid.UUID, apps []core.CodeApplication,
	decide func(*core.UseLedger, []core.CodeApplication) []core.UseDecision) ([]core.UseDecision, error) {
	if len(apps) == 0 {
		return nil, nil
	}
	reads := newUseReads(apps)
	var ledger *core.UseLedger
	var ds []core.UseDecision
	err := db.decideInTx(ctx, func(b *pgx.Batch) { reads.queue(b, merchantID) },
		func(br pgx.BatchResults) (err error) {
			ledger, err = reads.scan(br)
			return err
		},
		func(b *pgx.Batch) bool {
			ds = decide(ledger, apps)
			var w useWrites
			for i, d := range ds {
				w.add(apps[i], d)
			}
			w.queue(b, merchantID, ledger)
			return b.Len() > 0
		})
	if IsUnavailable(err) {
		return nil, core.Unavailable("PostgreSQL", fmt.Errorf("db: redeem: %w", err))
	}
	if err != nil {
		return nil, fmt.Errorf("db: redeem: %w", err)
	}
	return ds, nil
}

// addEvent writes one timeline event.
func addEvent(ctx context.Context, tx pgx.Tx, merchantID, listID uuid.UUID, seq int64, typ, actor, channel string, recipient any, orderRef string, details any) error {
	var rj, dj []byte
	if recipient != nil {
		rj, _ = json.Marshal(recipient)
	}
	if details != nil {
		dj, _ = json.Marshal(details)
	}
	_, err := tx.Exec(ctx, `INSERT INTO code_events (merchant_id, list_id, seq, type, actor, channel, recipient, order_ref, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, merchantID, listID, seq, typ, actor, channel, rj, orderRef, dj)
	if err != nil {
		return fmt.Errorf("db: record %s event: %w", typ, err)
	}
	return nil
}
