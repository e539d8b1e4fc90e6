package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// customerMatch is a compliance customer in the forms the SQL below compares: the recipient keys,
// the external ids (plain and GraphQL), the lower-cased email and the normalized phone.
type customerMatch struct {
	keys  []string
	ext   []string
	email string
	phone string
	raw   []string // the values a storefront customer key may hold verbatim
}

func matchOf(c core.ComplianceCustomer) customerMatch {
	m := customerMatch{keys: c.RecipientKeys(), email: strings.ToLower(c.Email), ext: []string{}}
	if len(c.ExternalIDs) > 0 {
		m.ext = c.ExternalIDs
	}
	if k := core.RecipientKey(core.Recipient{Phone: c.Phone}); len(k) > len("phone:")+1 {
		m.phone = strings.TrimPrefix(k, "phone:")
	}
	m.raw = append(append([]string{}, m.keys...), m.ext...)
	for _, s := range []string{c.Email, m.email, c.Phone, m.phone} {
		if s != "" {
			m.raw = append(m.raw, s)
		}
	}
	return m
}

// recipientMatchSQL is true when the recipient columns prefixed p (p_external_id, p_email,
// p_phone) name the customer; $ext, $email and $phone are the parameter numbers.
func recipientMatchSQL(ext, email, phone string, extNo, emailNo, phoneNo int) string {
	return fmt.Sprintf(`(%s = ANY($%d::text[]) OR ($%d <> '' AND lower(%s) = $%d) OR ($%d <> '' AND regexp_replace(%s, '[^0-9+]', '', 'g') = $%d))`,
		ext, extNo, emailNo, email, emailNo, phoneNo, phone, phoneNo)
}

func orderRefs(platform, shop string, ids []string) []string {
	refs := make([]string, len(ids))
	for i, id := range ids {
		refs[i] = platform + ":" + shop + ":" + id
	}
	return refs
}

// SaveCustomerExport implements shopify.ComplianceStore (checked in internal/app). The document holds every code handed to
// the customer (allocations under one of the customer's recipient keys) or redeemed in the
// requested orders of the shop, each with the customer's deliveries and the timeline events that
// are the customer's: all events of a unique code handed to them, and otherwise the events of the
// requested orders or naming the customer. A second run for the same delivery stores nothing.
func (db *DB) SaveCustomerExport(ctx context.Context, merchantID uuid.UUID, req core.CustomerDataRequest) error {
	m := matchOf(req.Customer)
	orders := req.OrderIDs
	if orders == nil {
		orders = []string{}
	}
	evMatch := recipientMatchSQL("e.recipient->>'external_id'", "e.recipient->>'email'", "e.recipient->>'phone'", 6, 7, 8)
	customer := map[string]string{"id": req.Customer.ID, "email": req.Customer.Email, "phone": req.Customer.Phone}
	_, err := db.pool.Exec(ctx, `WITH codeset AS (
			SELECT list_id, seq FROM allocations WHERE merchant_id = $1 AND recipient_key = ANY($2::text[])
			UNION SELECT list_id, seq FROM redemptions WHERE merchant_id = $1 AND platform = $3 AND shop = $4 AND order_id = ANY($5::text[])
			UNION SELECT list_id, seq FROM order_codes WHERE merchant_id = $1 AND platform = $3 AND shop = $4 AND order_id = ANY($5::text[])
		), items AS (
			SELECT c.list_id, c.seq, jsonb_build_object(
				'list_id', c.list_id, 'list_name', l.name, 'code', c.code, 'state', c.state, 'uses', c.uses,
				'campaign', c.campaign, 'delivered_at', c.delivered_at, 'redeemed_at', c.redeemed_at,
				'deliveries', (SELECT coalesce(jsonb_agg(jsonb_build_object('at', a.allocated_at, 'channel', a.channel,
						'campaign', a.campaign, 'recipient', jsonb_strip_nulls(jsonb_build_object('external_id', a.recipient_external_id,
						'email', a.recipient_email, 'phone', a.recipient_phone))) ORDER BY a.allocated_at, a.id), '[]')
					FROM allocations a WHERE a.merchant_id = c.merchant_id AND a.list_id = c.list_id AND a.seq = c.seq
					  AND a.recipient_key = ANY($2::text[])),
				'events', (SELECT coalesce(jsonb_agg(jsonb_build_object('at', e.at, 'type', e.type, 'channel', e.channel,
						'order_ref', e.order_ref, 'recipient', e.recipient) ORDER BY e.at, e.id), '[]')
					FROM code_events e WHERE e.merchant_id = c.merchant_id AND e.list_id = c.list_id AND e.seq = c.seq
					  AND ((l.kind <> 'fixed' AND EXISTS (SELECT 1 FROM allocations a WHERE a.merchant_id = c.merchant_id
							AND a.list_id = c.list_id AND a.seq = c.seq AND a.recipient_key = ANY($2::text[])))
						OR e.order_ref = ANY($9::text[]) OR `+evMatch+`))
			) AS item
			FROM codeset s
			JOIN codes c ON c.merchant_id = $1 AND c.list_id = s.list_id AND c.seq = s.seq
			JOIN code_lists l ON l.merchant_id = $1 AND l.id = c.list_id
		)
		INSERT INTO compliance_exports (merchant_id, id, delivery_id, platform, shop, customer_ref, request_id, document)
		SELECT $1, $10, $11, $3, $4, $12, $13, jsonb_build_object(
			'platform', $3::text, 'shop', $4::text, 'data_request_id', $13::text, 'customer', $14::jsonb,
			'orders_requested', to_jsonb($5::text[]), 'generated_at', now(),
			'codes', coalesce((SELECT jsonb_agg(item ORDER BY list_id, seq) FROM items), '[]'))
		ON CONFLICT (merchant_id, delivery_id) DO NOTHING`,
		merchantID, m.keys, req.Platform, req.Shop, orders, m.ext, m.email, m.phone,
		orderRefs(req.Platform, req.Shop, orders), uuid.New(), req.ReceiptID, req.Customer.ID, req.RequestID, customer)
	if err != nil {
		return fmt.Errorf("db: save customer export: %w", err)
	}
	return nil
}

// RedactCustomer implements shopify.ComplianceStore (checked in internal/app). Within the merchant it erases the customer's
// identifiers: the recipient columns of their allocations (whose recipient_key becomes
// 'redacted:<random uuid>', so the reassign index stays valid and nothing can find them again) and
// of the codes handed to them, the recipient of timeline events naming them or of the orders to
// redact, the customer key of their storefront reservations, their compliance exports, and the
// raw bodies of the shop's stored webhook deliveries that carry them (see redactDeliveryBodies).
// Codes, states, uses, counts, order ids and the events themselves are kept: the timeline still
// shows the delivery and the redemption, with no recipient. Matching rows are searched
// merchant-wide by value (a sequential scan of the merchant's rows for the non-key columns); a
// second run finds nothing left to change.
func (db *DB) RedactCustomer(ctx context.Context, merchantID uuid.UUID, req core.CustomerRedact) error {
	m := matchOf(req.Customer)
	refs := orderRefs(req.Platform, req.Shop, req.OrderIDs)
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := redactDeliveryBodies(ctx, tx, merchantID, req); err != nil {
			return fmt.Errorf("db: redact customer webhook deliveries: %w", err)
		}
		steps := []struct {
			what string
			sql  string
			args []any
		}{
			{"allocations", `UPDATE allocations SET recipient_key = 'redacted:' || gen_random_uuid(),
				recipient_external_id = NULL, recipient_email = NULL, recipient_phone = NULL
				WHERE merchant_id = $1 AND (recipient_key = ANY($2::text[]) OR ` +
				recipientMatchSQL("recipient_external_id", "recipient_email", "recipient_phone", 3, 4, 5) + `)`,
				[]any{merchantID, m.keys, m.ext, m.email, m.phone}},
			{"codes", `UPDATE codes SET recipient_external_id = NULL, recipient_email = NULL, recipient_phone = NULL
				WHERE merchant_id = $1 AND ` + recipientMatchSQL("recipient_external_id", "recipient_email", "recipient_phone", 2, 3, 4),
				[]any{merchantID, m.ext, m.email, m.phone}},
			{"code events", `UPDATE code_events SET recipient = NULL
				WHERE merchant_id = $1 AND recipient IS NOT NULL AND (order_ref = ANY($5::text[]) OR ` +
				recipientMatchSQL("recipient->>'external_id'", "recipient->>'email'", "recipient->>'phone'", 2, 3, 4) + `)`,
				[]any{merchantID, m.ext, m.email, m.phone, refs}},
			{"reservations", `UPDATE reservations SET customer_key = ''
				WHERE merchant_id = $1 AND customer_key <> '' AND customer_key = ANY($2::text[])`,
				[]any{merchantID, m.raw}},
			{"deliveries", `UPDATE deliveries SET recipient = '{}'::jsonb, recipient_key = 'redacted:' || id::text
				WHERE merchant_id = $1 AND (recipient_key = ANY($2::text[]) OR ` +
				recipientMatchSQL("recipient->>'external_id'", "recipient->>'email'", "recipient->>'phone'", 3, 4, 5) + `)`,
				[]any{merchantID, m.keys, m.ext, m.email, m.phone}},
			{"webhook messages", `UPDATE webhook_messages SET payload = payload #- '{data,recipient}'
				WHERE merchant_id = $1 AND status = 'pending' AND payload->'data' ? 'recipient' AND ` +
				recipientMatchSQL("payload->'data'->'recipient'->>'external_id'", "payload->'data'->'recipient'->>'email'",
					"payload->'data'->'recipient'->>'phone'", 2, 3, 4),
				[]any{merchantID, m.ext, m.email, m.phone}},
			{"exports", `DELETE FROM compliance_exports WHERE merchant_id = $1 AND platform = $2 AND shop = $3
				AND ((customer_ref <> '' AND customer_ref = $4) OR ($5 <> '' AND lower(document->'customer'->>'email') = $5))`,
				[]any{merchantID, req.Platform, req.Shop, req.Customer.ID, m.email}},
		}
		for _, s := range steps {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("db: redact customer %s: %w", s.what, err)
			}
		}
		return nil
	})
}

// redactDeliveryBodies erases the customer from the raw bodies of the shop's stored webhook
// deliveries, processed or not, with req.EraseFromBody (the platform's package knows what its
// bodies hold and what of them must stay); nothing when req has none.
//
// Candidates are the shop's deliveries (the (merchant_id, platform, shop, event_key) index) whose
// bytes contain an order id, the customer id or the email; EraseFromBody then parses and matches
// each exactly.
func redactDeliveryBodies(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID, req core.CustomerRedact) error {
	if req.EraseFromBody == nil {
		return nil
	}
	var needles [][]byte
	for _, id := range req.OrderIDs {
		if id = strings.TrimSpace(id); id != "" {
			needles = append(needles, []byte(id))
		}
	}
	email := strings.TrimSpace(req.Customer.Email)
	for _, n := range []string{strings.TrimSpace(req.Customer.ID), email, strings.ToLower(email)} {
		if n != "" {
			needles = append(needles, []byte(n))
		}
	}
	if len(needles) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT id, topic, body FROM webhook_deliveries
		WHERE merchant_id = $1 AND platform = $2 AND shop = $3
		  AND EXISTS (SELECT 1 FROM unnest($4::bytea[]) n WHERE position(n IN body) > 0)`,
		merchantID, req.Platform, req.Shop, needles)
	if err != nil {
		return err
	}
	type change struct {
		id   uuid.UUID
		body []byte
	}
	var changes []change
	for rows.Next() {
		var id uuid.UUID
		var topic string
		var body []byte
		if err := rows.Scan(&id, &topic, &body); err != nil {
			rows.Close()
			return err
		}
		if out, ok := req.EraseFromBody(strings.ToLower(strings.TrimSpace(topic)), body); ok && !bytes.Equal(out, body) {
			changes = append(changes, change{id, out})
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET body = $3 WHERE merchant_id = $1 AND id = $2`, merchantID, c.id, c.body); err != nil {
			return err
		}
	}
	return nil
}

// RedactShop implements shopify.ComplianceStore (checked in internal/app) (shop/redact, 48 hours after the uninstall). For
// the merchant and the shop it deletes exactly:
//   - the connections rows of the shop and the list_connections rows pointing at them,
//   - the shop's route (later deliveries for the shop are ignored at intake),
//   - every webhook delivery of the shop (bodies hold the shop's orders and customers), this one
//     included,
//   - the compliance exports of the shop,
//
// and erases the recipient (the shop's customer) of the timeline events of the shop's orders.
// It keeps the merchant, its lists, codes, counts, uses and allocations, and the redemptions and
// order_codes rows of the shop (order ids only, no personal data): they keep every redemption
// counted once should the shop be installed again. Nothing more is deleted when the merchant has
// no other connection: removing the merchant's own data is left to the merchant.
func (db *DB) RedactShop(ctx context.Context, merchantID uuid.UUID, platform, shop string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM connections WHERE merchant_id = $1 AND platform = $2 AND shop = $3 RETURNING id`,
			merchantID, platform, shop)
		if err != nil {
			return fmt.Errorf("db: redact shop connections: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return fmt.Errorf("db: redact shop connections: %w", err)
		}
		prefix := platform + ":" + shop + ":"
		steps := []struct {
			what string
			sql  string
			args []any
		}{
			{"list connections", `DELETE FROM list_connections WHERE merchant_id = $1 AND connection_id = ANY($2::uuid[])`, []any{merchantID, ids}},
			{"pushed codes", `DELETE FROM code_pushes WHERE merchant_id = $1 AND connection_id = ANY($2::uuid[])`, []any{merchantID, ids}},
			{"route", `DELETE FROM shop_routes WHERE platform = $2 AND shop = $3 AND merchant_id = $1`, []any{merchantID, platform, shop}},
			{"deliveries", `DELETE FROM webhook_deliveries WHERE merchant_id = $1 AND platform = $2 AND shop = $3`, []any{merchantID, platform, shop}},
			{"exports", `DELETE FROM compliance_exports WHERE merchant_id = $1 AND platform = $2 AND shop = $3`, []any{merchantID, platform, shop}},
			{"events", `UPDATE code_events SET recipient = NULL WHERE merchant_id = $1 AND recipient IS NOT NULL
				AND left(order_ref, length($2)) = $2`, []any{merchantID, prefix}},
		}
		for _, s := range steps {
			if _, err := tx.Exec(ctx, s.sql, s.args...); err != nil {
				return fmt.Errorf("db: redact shop %s: %w", s.what, err)
			}
		}
		return nil
	})
}

// ListComplianceExports implements core.ComplianceStore.
func (db *DB) ListComplianceExports(ctx context.Context, merchantID uuid.UUID, page core.Page) ([]core.ComplianceExport, string, error) {
	after := timePosition{At: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	rows, err := db.pool.Query(ctx, `SELECT id, platform, shop, customer_ref, request_id, created_at FROM compliance_exports
		WHERE merchant_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4`,
		merchantID, after.At, after.ID, page.Limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.ComplianceExport, error) {
		var e core.ComplianceExport
		err := r.Scan(&e.ID, &e.Platform, &e.Shop, &e.CustomerRef, &e.RequestID, &e.CreatedAt)
		e.CreatedAt = e.CreatedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, "", err
	}
	out, next := trimPage(out, page.Limit, func(e core.ComplianceExport) timePosition { return timePosition{At: e.CreatedAt, ID: e.ID} })
	return out, next, nil
}

// GetComplianceExport implements core.ComplianceStore.
func (db *DB) GetComplianceExport(ctx context.Context, merchantID, id uuid.UUID) (core.ComplianceExport, error) {
	e := core.ComplianceExport{ID: id}
	err := db.pool.QueryRow(ctx, `SELECT platform, shop, customer_ref, request_id, document, created_at FROM compliance_exports
		WHERE merchant_id = $1 AND id = $2`, merchantID, id).Scan(&e.Platform, &e.Shop, &e.CustomerRef, &e.RequestID, &e.Document, &e.CreatedAt)
	if err != nil {
		return core.ComplianceExport{}, notFound(err, core.ErrComplianceExportNotFound)
	}
	e.CreatedAt = e.CreatedAt.UTC()
	return e, nil
}

var _ core.ComplianceStore = (*DB)(nil)
