package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/coupongate/coupongate/core"
)

func endpointAD(merchantID, id uuid.UUID) []byte {
	return []byte("webhook_endpoints:" + merchantID.String() + ":" + id.String())
}

// startEventCursor makes the merchant's event cursor start at the events there are now, so a
// new endpoint or alert address hears what happens from now on, not the past.
func startEventCursor(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, merchantID uuid.UUID) error {
	_, err := q.Exec(ctx, `INSERT INTO event_cursors (merchant_id, domain_event_id, code_event_id, allocation_id)
		SELECT $1, coalesce((SELECT max(id) FROM domain_events WHERE merchant_id = $1), 0),
			coalesce((SELECT max(id) FROM code_events WHERE merchant_id = $1), 0),
			coalesce((SELECT max(id) FROM allocations WHERE merchant_id = $1), 0)
		ON CONFLICT (merchant_id) DO NOTHING`, merchantID)
	return err
}

// restartIdleCursor moves the merchant's event cursor to now when nothing listened (no active
// endpoint, no alert address): whoever subscribes hears what happens from now on, not the backlog.
func restartIdleCursor(ctx context.Context, tx pgx.Tx, merchantID uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE event_cursors SET
			domain_event_id = coalesce((SELECT max(id) FROM domain_events WHERE merchant_id = $1), 0),
			code_event_id = coalesce((SELECT max(id) FROM code_events WHERE merchant_id = $1), 0),
			allocation_id = coalesce((SELECT max(id) FROM allocations WHERE merchant_id = $1), 0), updated_at = now()
		WHERE merchant_id = $1
			AND NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE merchant_id = $1 AND state = 'active')
			AND NOT EXISTS (SELECT 1 FROM alert_settings WHERE merchant_id = $1 AND emails <> '{}')`, merchantID)
	return err
}

// CreateEndpoint implements core.EndpointStore; the secret is sealed.
func (db *DB) CreateEndpoint(ctx context.Context, e core.WebhookEndpoint) error {
	if db.sealer == nil {
		return errors.New("db: no sealer configured for endpoint secrets")
	}
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := restartIdleCursor(ctx, tx, e.MerchantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (merchant_id, id, url, events, secret, state, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, e.MerchantID, e.ID, e.URL, e.Events, db.sealer.Seal([]byte(e.Secret), endpointAD(e.MerchantID, e.ID)),
			e.State, e.CreatedAt); err != nil {
			return err
		}
		return startEventCursor(ctx, tx, e.MerchantID)
	})
}

const endpointColumns = `merchant_id, id, url, events, secret, state, failing_since, disabled_at, created_at`

// scanEndpoint reads the endpointColumns of a row (EnableEndpoint's read inside its transaction).
func (db *DB) scanEndpoint(row pgx.Row) (core.WebhookEndpoint, error) {
	var r endpointRow
	if err := row.Scan(&r.MerchantID, &r.ID, &r.URL, (*[]string)(&r.Events), &r.Secret, &r.State, &r.FailingSince,
		&r.DisabledAt, &r.CreatedAt); err != nil {
		return core.WebhookEndpoint{}, err
	}
	return db.endpoint(r)
}

// endpoint turns a row into the endpoint with its secret opened.
func (db *DB) endpoint(r endpointRow) (core.WebhookEndpoint, error) {
	e := core.WebhookEndpoint{
		MerchantID: r.MerchantID, ID: r.ID, URL: r.URL, Events: []string(r.Events), State: r.State,
		FailingSince: ptrUTC(r.FailingSince), DisabledAt: ptrUTC(r.DisabledAt), CreatedAt: r.CreatedAt.UTC(),
	}
	if db.sealer == nil {
		return e, errors.New("db: no sealer configured for endpoint secrets")
	}
	secret, err := db.sealer.Open(r.Secret, endpointAD(e.MerchantID, e.ID))
	e.Secret = string(secret)
	return e, err
}

// GetEndpoint implements core.EndpointStore (with the secret, for signing).
func (db *DB) GetEndpoint(ctx context.Context, merchantID, id uuid.UUID) (core.WebhookEndpoint, error) {
	var r endpointRow
	if err := db.gorm.WithContext(ctx).Take(&r, "merchant_id = ? AND id = ?", merchantID, id).Error; err != nil {
		return core.WebhookEndpoint{}, notFound(err, core.ErrEndpointNotFound)
	}
	return db.endpoint(r)
}

// ListEndpoints implements core.EndpointStore (without secrets), oldest first.
func (db *DB) ListEndpoints(ctx context.Context, merchantID uuid.UUID) ([]core.WebhookEndpoint, error) {
	var rows []endpointRow
	if err := db.gorm.WithContext(ctx).Where("merchant_id = ?", merchantID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, err
	}
	out := make([]core.WebhookEndpoint, 0, len(rows))
	for _, r := range rows {
		e, err := db.endpoint(r)
		if err != nil {
			return nil, err
		}
		e.Secret = ""
		out = append(out, e)
	}
	return out, nil
}

// DeleteEndpoint implements core.EndpointStore: the endpoint and its pending messages.
func (db *DB) DeleteEndpoint(ctx context.Context, merchantID, id uuid.UUID) error {
	// Messages first, then the endpoint: the order a delivery attempt locks them in, so the two
	// never deadlock.
	return db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`DELETE FROM webhook_messages WHERE merchant_id = ? AND endpoint_id = ? AND status = 'pending'`,
			merchantID, id).Error; err != nil {
			return err
		}
		res := tx.Where("merchant_id = ? AND id = ?", merchantID, id).Delete(&endpointRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return core.ErrEndpointNotFound
		}
		return nil
	})
}

// EnableEndpoint implements core.EndpointStore. Like a new endpoint, the one enabled hears what
// happens from now on: when nothing listened meanwhile, the merchant's event cursor moves to now
// first, so the backlog of the disabled time is not sent.
func (db *DB) EnableEndpoint(ctx context.Context, merchantID, id uuid.UUID) (core.WebhookEndpoint, error) {
	var e core.WebhookEndpoint
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := restartIdleCursor(ctx, tx, merchantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET state = 'active', failing_since = NULL, disabled_at = NULL
			WHERE merchant_id = $1 AND id = $2 AND state = 'disabled'`, merchantID, id); err != nil {
			return err
		}
		var err error
		e, err = db.scanEndpoint(tx.QueryRow(ctx, `SELECT `+endpointColumns+` FROM webhook_endpoints WHERE merchant_id = $1 AND id = $2`, merchantID, id))
		if err != nil {
			return notFound(err, core.ErrEndpointNotFound)
		}
		return startEventCursor(ctx, tx, merchantID)
	})
	e.Secret = ""
	return e, err
}

// LastAttempts implements core.EndpointStore: one index probe per endpoint.
func (db *DB) LastAttempts(ctx context.Context, merchantID uuid.UUID) (map[uuid.UUID]core.WebhookAttempt, error) {
	rows, err := db.pool.Query(ctx, `SELECT w.id, a.id, a.message_id, a.event_type, a.status_code, a.error, a.duration_ms, a.at
		FROM webhook_endpoints w CROSS JOIN LATERAL (
			SELECT id, message_id, event_type, status_code, error, duration_ms, at FROM webhook_attempts
			WHERE merchant_id = w.merchant_id AND endpoint_id = w.id ORDER BY id DESC LIMIT 1) a
		WHERE w.merchant_id = $1`, merchantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uuid.UUID]core.WebhookAttempt{}
	for rows.Next() {
		var endpoint uuid.UUID
		var a core.WebhookAttempt
		if err := rows.Scan(&endpoint, &a.ID, &a.MessageID, &a.EventType, &a.StatusCode, &a.Error, &a.DurationMS, &a.At); err != nil {
			return nil, err
		}
		a.At = a.At.UTC()
		out[endpoint] = a
	}
	return out, rows.Err()
}

// ListAttempts implements core.EndpointStore: newest first.
func (db *DB) ListAttempts(ctx context.Context, merchantID, endpointID uuid.UUID, page core.Page) ([]core.WebhookAttempt, string, error) {
	var before struct {
		ID int64 `json:"id"`
	}
	before.ID = 1<<62 - 1
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &before); err != nil {
			return nil, "", err
		}
	}
	rows, err := db.pool.Query(ctx, `SELECT id, message_id, event_type, status_code, error, duration_ms, at FROM webhook_attempts
		WHERE merchant_id = $1 AND endpoint_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4`, merchantID, endpointID, before.ID, page.Limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.WebhookAttempt, error) {
		var a core.WebhookAttempt
		err := r.Scan(&a.ID, &a.MessageID, &a.EventType, &a.StatusCode, &a.Error, &a.DurationMS, &a.At)
		a.At = a.At.UTC()
		return a, err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > page.Limit {
		out = out[:page.Limit]
		next = encodeCursor(struct {
			ID int64 `json:"id"`
		}{out[len(out)-1].ID})
	}
	return out, next, nil
}

// PutAlertEmails stores where a merchant's alerts go.
func (db *DB) PutAlertEmails(ctx context.Context, merchantID uuid.UUID, emails []string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := restartIdleCursor(ctx, tx, merchantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_settings (merchant_id, emails, updated_at) VALUES ($1, $2, now())
			ON CONFLICT (merchant_id) DO UPDATE SET emails = EXCLUDED.emails, updated_at = now()`, merchantID, emails); err != nil {
			return err
		}
		return startEventCursor(ctx, tx, merchantID)
	})
}

// AlertEmails returns where a merchant's alerts go (none when never set).
func (db *DB) AlertEmails(ctx context.Context, merchantID uuid.UUID) ([]string, error) {
	var emails []string
	err := db.pool.QueryRow(ctx, `SELECT emails FROM alert_settings WHERE merchant_id = $1`, merchantID).Scan(&emails)
	if errors.Is(err, pgx.ErrNoRows) {
		return []string{}, nil
	}
	return emails, err
}

// EventSubscribers returns the merchants with an active endpoint or alert addresses.
func (db *DB) EventSubscribers(ctx context.Context) ([]uuid.UUID, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id FROM webhook_endpoints WHERE state = 'active'
		UNION SELECT merchant_id FROM alert_settings WHERE emails <> '{}'`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// DispatchEvents hands a merchant's new events to its endpoints and alert addresses, in one
// transaction under the merchant's cursor: one webhook message per event and subscribed endpoint
// (its id stable: msg_d<domain event id> or msg_c<code event id>), one alert per stock event.
// Events younger than lag are left for the next round, so a transaction that committed late is
// not skipped.
func (db *DB) DispatchEvents(ctx context.Context, merchantID uuid.UUID, lag time.Duration, limit int) (core.Dispatched, error) {
	var out core.Dispatched
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if err := startEventCursor(ctx, tx, merchantID); err != nil {
			return err
		}
		var domainID, codeID, allocID int64
		if err := tx.QueryRow(ctx, `SELECT domain_event_id, code_event_id, allocation_id FROM event_cursors WHERE merchant_id = $1 FOR UPDATE`,
			merchantID).Scan(&domainID, &codeID, &allocID); err != nil {
			return err
		}
		lagSecs := lag.Seconds()
		// Three sources, each in id order up to its first row younger than lag (an older-looking
		// row after it may belong to a transaction that began earlier and committed later).
		var events []outboundEvent
		for _, src := range []struct {
			query  string
			prefix string
			cursor *int64
		}{
			{domainEventsQuery, "msg_d", &domainID},
			{allocationEventsQuery, "msg_a", &allocID},
			{redeemedEventsQuery, "msg_c", &codeID},
		} {
			got, err := takeEvents(ctx, tx, src.query, src.prefix, src.cursor, merchantID, lagSecs, limit)
			if err != nil {
				return err
			}
			events = append(events, got...)
		}
		if len(events) == 0 {
			return nil
		}
		keys, types, bodies := make([]string, len(events)), make([]string, len(events)), make([]string, len(events))
		var alertIDs []int64
		for i, e := range events {
			keys[i], types[i], bodies[i] = e.key, e.typ, string(e.body)
			if e.key[4] == 'd' && (e.typ == core.EventTypeLowStock || e.typ == core.EventTypeExhausted || e.typ == core.EventTypeExpired ||
				e.typ == core.EventTypeEndpointDisabled) {
				alertIDs = append(alertIDs, e.id)
			}
		}
		rows, err := tx.Query(ctx, `INSERT INTO webhook_messages (merchant_id, id, endpoint_id, event_type, payload)
			SELECT $1, ev.key, w.id, ev.type, ev.body::jsonb
			FROM unnest($2::text[], $3::text[], $4::text[]) AS ev(key, type, body)
			JOIN webhook_endpoints w ON w.merchant_id = $1 AND w.state = 'active' AND ev.type = ANY(w.events)
			ON CONFLICT DO NOTHING
			RETURNING endpoint_id, id`, merchantID, keys, types, bodies)
		if err != nil {
			return err
		}
		for rows.Next() {
			var m core.MessageRef
			m.MerchantID = merchantID
			if err := rows.Scan(&m.EndpointID, &m.MessageID); err != nil {
				rows.Close()
				return err
			}
			out.Messages = append(out.Messages, m)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(alertIDs) > 0 {
			rows, err = tx.Query(ctx, `INSERT INTO alert_messages (merchant_id, event_id)
				SELECT $1, id FROM unnest($2::bigint[]) AS id
				WHERE EXISTS (SELECT 1 FROM alert_settings WHERE merchant_id = $1 AND emails <> '{}')
				ON CONFLICT DO NOTHING RETURNING event_id`, merchantID, alertIDs)
			if err != nil {
				return err
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			out.Alerts = ids
		}
		_, err = tx.Exec(ctx, `UPDATE event_cursors SET domain_event_id = $2, code_event_id = $3, allocation_id = $4, updated_at = now()
			WHERE merchant_id = $1`, merchantID, domainID, codeID, allocID)
		return err
	})
	return out, err
}

// WebhookMessage returns a message with its payload and status.
func (db *DB) WebhookMessage(ctx context.Context, merchantID, endpointID uuid.UUID, id string) (core.WebhookMessage, error) {
	var m core.WebhookMessage
	err := db.pool.QueryRow(ctx, `SELECT id, endpoint_id, event_type, payload, status, attempts, created_at FROM webhook_messages
		WHERE merchant_id = $1 AND endpoint_id = $2 AND id = $3`, merchantID, endpointID, id).
		Scan(&m.ID, &m.EndpointID, &m.EventType, &m.Payload, &m.Status, &m.Attempts, &m.CreatedAt)
	if err != nil {
		return m, notFound(err, core.ErrEndpointNotFound)
	}
	m.MerchantID = merchantID
	return m, nil
}

// RecordWebhookAttempt logs one attempt and moves the message and endpoint along: a success
// delivers the message and clears the endpoint's failing mark; a failure counts the attempt,
// records when the next is due (a.RetryIn from now),
// marks the endpoint failing since now (if it was not, or if its previous attempt was longer
// ago than failingStreakGap), and fails the message when final. It
// answers whether the endpoint has been failing for longer than disableAfter (and disables it).
func (db *DB) RecordWebhookAttempt(ctx context.Context, m core.WebhookMessage, a core.WebhookAttempt, ok, final bool, disableAfter time.Duration) (bool, error) {
	disabled := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		// A failure starts a new failing streak when the endpoint's previous attempt is older than
		// any wait of the retry schedule: it was quiet in between, not failing.
		var newStreak bool
		if err := tx.QueryRow(ctx, `SELECT coalesce(bool_and(at < now() - make_interval(secs => $3)), true) FROM (
				SELECT at FROM webhook_attempts WHERE merchant_id = $1 AND endpoint_id = $2 ORDER BY id DESC LIMIT 1) p`,
			m.MerchantID, m.EndpointID, failingStreakGap.Seconds()).Scan(&newStreak); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO webhook_attempts (merchant_id, endpoint_id, message_id, event_type, status_code, error, duration_ms)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, m.MerchantID, m.EndpointID, m.ID, m.EventType, a.StatusCode, truncateText(a.Error, 500), a.DurationMS); err != nil {
			return err
		}
		status := "pending"
		switch {
		case ok:
			status = "delivered"
		case final:
			status = "failed"
		}
		if _, err := tx.Exec(ctx, `UPDATE webhook_messages SET attempts = attempts + 1, status = $4,
				next_attempt_at = now() + make_interval(secs => $5)
			WHERE merchant_id = $1 AND endpoint_id = $2 AND id = $3 AND status = 'pending'`,
			m.MerchantID, m.EndpointID, m.ID, status, a.RetryIn.Seconds()); err != nil {
			return err
		}
		if ok {
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET failing_since = NULL WHERE merchant_id = $1 AND id = $2`, m.MerchantID, m.EndpointID)
			return err
		}
		// Failing for longer than disableAfter: disabled now, and a domain event for the merchant's
		// alert addresses (sent once, with retries, like the stock alerts).
		return tx.QueryRow(ctx, `WITH upd AS (
				UPDATE webhook_endpoints SET failing_since = CASE WHEN $4 THEN now() ELSE coalesce(failing_since, now()) END,
					state = CASE WHEN NOT $4 AND failing_since < now() - make_interval(secs => $3) THEN 'disabled' ELSE state END,
					disabled_at = CASE WHEN NOT $4 AND failing_since < now() - make_interval(secs => $3) AND state = 'active' THEN now() ELSE disabled_at END
				WHERE merchant_id = $1 AND id = $2
				RETURNING id, url, failing_since, state = 'disabled' AND disabled_at = now() AS just_disabled),
			ev AS (
				INSERT INTO domain_events (merchant_id, type, payload)
				SELECT $1, 'endpoint.disabled', jsonb_build_object('endpoint_id', id, 'url', url, 'failing_since', failing_since)
				FROM upd WHERE just_disabled)
			SELECT coalesce((SELECT just_disabled FROM upd), false)`, m.MerchantID, m.EndpointID, disableAfter.Seconds(), newStreak).Scan(&disabled)
	})
	return disabled, err
}

// failingStreakGap is longer than the longest wait of the outgoing webhooks' retry schedule
// (10 h): while anything is pending for a failing endpoint, attempts come closer together.
const failingStreakGap = 12 * time.Hour

// FailWebhookMessage ends a pending message that will not be sent (its endpoint was disabled).
func (db *DB) FailWebhookMessage(ctx context.Context, merchantID, endpointID uuid.UUID, id string) error {
	_, err := db.pool.Exec(ctx, `UPDATE webhook_messages SET status = 'failed'
		WHERE merchant_id = $1 AND endpoint_id = $2 AND id = $3 AND status = 'pending'`, merchantID, endpointID, id)
	return err
}

// PendingAlerts returns alert emails still pending that were made before before (their task may
// be lost).
func (db *DB) PendingAlerts(ctx context.Context, before time.Time, limit int) ([]core.AlertRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, event_id FROM alert_messages WHERE status = 'pending' AND created_at < $1
		ORDER BY created_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.AlertRef, error) {
		var a core.AlertRef
		return a, r.Scan(&a.MerchantID, &a.EventID)
	})
}

// PendingWebhookMessages implements core.DispatchStore.
func (db *DB) PendingWebhookMessages(ctx context.Context, before time.Time, limit int) ([]core.MessageRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, endpoint_id, id FROM webhook_messages
		WHERE status = 'pending' AND next_attempt_at < $1
		ORDER BY next_attempt_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.MessageRef, error) {
		var m core.MessageRef
		return m, r.Scan(&m.MerchantID, &m.EndpointID, &m.MessageID)
	})
}

// AlertEvent returns a domain event for an alert email, with the list's name.
func (db *DB) AlertEvent(ctx context.Context, merchantID uuid.UUID, eventID int64) (core.AlertEvent, error) {
	var a core.AlertEvent
	var payload []byte
	err := db.pool.QueryRow(ctx, `SELECT e.id, e.type, e.list_id, coalesce(l.name, ''), e.payload, e.created_at, m.status, m.sent_to, m.refused_by
		FROM domain_events e JOIN alert_messages m ON m.merchant_id = e.merchant_id AND m.event_id = e.id
		LEFT JOIN code_lists l ON l.merchant_id = e.merchant_id AND l.id = e.list_id
		WHERE e.merchant_id = $1 AND e.id = $2`, merchantID, eventID).Scan(&a.ID, &a.Type, &a.ListID, &a.ListName, &payload, &a.At, &a.Status, &a.SentTo, &a.RefusedBy)
	if err != nil {
		return a, err
	}
	a.MerchantID = merchantID
	_ = json.Unmarshal(payload, &a.Data)
	return a, nil
}

// FinishAlert records an alert email as sent or failed.
func (db *DB) FinishAlert(ctx context.Context, merchantID uuid.UUID, eventID int64, status, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE alert_messages SET status = $3, error = CASE WHEN $4 = '' THEN error ELSE $4 END
		WHERE merchant_id = $1 AND event_id = $2 AND status = 'pending'`,
		merchantID, eventID, status, truncateText(reason, 500))
	return err
}

// RecordAlertRecipient implements core.DispatchStore.
func (db *DB) RecordAlertRecipient(ctx context.Context, merchantID uuid.UUID, eventID int64, address, refusal string) error {
	_, err := db.pool.Exec(ctx, `UPDATE alert_messages SET
			sent_to = CASE WHEN $4 = '' THEN array_append(sent_to, $3) ELSE sent_to END,
			refused_by = CASE WHEN $4 = '' THEN refused_by ELSE array_append(refused_by, $3) END,
			error = CASE WHEN $4 = '' THEN error ELSE left(error || CASE WHEN error = '' THEN '' ELSE '; ' END || $3 || ': ' || $4, 500) END
		WHERE merchant_id = $1 AND event_id = $2 AND status = 'pending' AND NOT $3 = ANY(sent_to || refused_by)`,
		merchantID, eventID, address, refusal)
	return err
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// outboundEvent is one event for webhook endpoints and alerts: its stable message id, type and body.
type outboundEvent struct {
	key  string
	typ  string
	body []byte
	id   int64
}

// takeEvents reads one source of events after *cursor, in id order, stopping at the first row
// younger than the lag, and moves *cursor to the last row taken. The query returns id, type, body
// and whether the row is young, for ($1 merchant, $2 cursor, $3 lag seconds, $4 limit).
func takeEvents(ctx context.Context, tx pgx.Tx, query, prefix string, cursor *int64, merchantID uuid.UUID, lagSecs float64, limit int) ([]outboundEvent, error) {
	rows, err := tx.Query(ctx, query, merchantID, *cursor, lagSecs, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []outboundEvent
	for rows.Next() {
		var e outboundEvent
		var young bool
		if err := rows.Scan(&e.id, &e.typ, &e.body, &young); err != nil {
			return nil, err
		}
		if young {
			break
		}
		e.key = prefix + itoa(e.id)
		out = append(out, e)
		*cursor = max(*cursor, e.id)
	}
	return out, rows.Err()
}

// domainEventsQuery reads stock crossings, ended imports (as import.finished) and disabled
// endpoints.
const domainEventsQuery = `SELECT id, CASE WHEN type IN ('import.succeeded', 'import.failed') THEN 'import.finished' ELSE type END,
		jsonb_build_object('type', CASE WHEN type IN ('import.succeeded', 'import.failed') THEN 'import.finished' ELSE type END,
			'timestamp', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'data', payload || jsonb_strip_nulls(jsonb_build_object('list_id', list_id,
				'status', CASE type WHEN 'import.succeeded' THEN 'succeeded' WHEN 'import.failed' THEN 'failed' END))),
		created_at >= now() - make_interval(secs => $3)
	FROM domain_events WHERE merchant_id = $1 AND id > $2
	ORDER BY id LIMIT $4`

// allocationEventsQuery reads codes handed out (code.delivered), from the allocations.
const allocationEventsQuery = `SELECT a.id, 'code.delivered',
		jsonb_build_object('type', 'code.delivered', 'timestamp', to_char(a.allocated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'data', jsonb_strip_nulls(jsonb_build_object('list_id', a.list_id, 'code', k.code, 'channel', a.channel,
				'campaign', NULLIF(a.campaign, ''), 'actor', a.actor,
				'recipient', jsonb_strip_nulls(jsonb_build_object('external_id', a.recipient_external_id,
					'email', a.recipient_email, 'phone', a.recipient_phone))))),
		a.allocated_at >= now() - make_interval(secs => $3)
	FROM allocations a JOIN codes k ON k.merchant_id = a.merchant_id AND k.list_id = a.list_id AND k.seq = a.seq
	WHERE a.merchant_id = $1 AND a.id > $2
	ORDER BY a.id LIMIT $4`

// redeemedEventsQuery reads uses counted (code.redeemed), from the codes' timelines.
const redeemedEventsQuery = `SELECT e.id, 'code.redeemed',
		jsonb_build_object('type', 'code.redeemed',
			'timestamp', to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
			'data', jsonb_strip_nulls(jsonb_build_object('list_id', e.list_id, 'code', k.code, 'channel', NULLIF(e.channel, ''),
				'recipient', e.recipient, 'order', NULLIF(e.order_ref, ''), 'actor', e.actor, 'details', e.details))),
		e.at >= now() - make_interval(secs => $3)
	FROM code_events e JOIN codes k ON k.merchant_id = e.merchant_id AND k.list_id = e.list_id AND k.seq = e.seq
	WHERE e.merchant_id = $1 AND e.id > $2 AND e.type = 'redeemed'
	ORDER BY e.id LIMIT $4`
