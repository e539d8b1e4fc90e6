package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/coupongate/coupongate/core"
)

const pushColumns = `p.merchant_id, p.list_id, p.connection_id, c.platform, c.shop, p.state, p.discount, p.remote_id,
	p.pushed, p.failed, p.deleted, p.error, p.created_at, p.updated_at,
	(SELECT count(*) FROM codes k WHERE k.merchant_id = p.merchant_id AND k.list_id = p.list_id
		AND k.seq >= p.next_seq AND k.state <> 'removed')
	+ (SELECT count(*) FROM code_pushes s WHERE s.merchant_id = p.merchant_id AND s.list_id = p.list_id
		AND s.connection_id = p.connection_id AND s.state = 'submitted')`

const pushFrom = ` FROM list_connections p JOIN connections c ON c.merchant_id = p.merchant_id AND c.id = p.connection_id`

func scanPush(row pgx.Row) (core.Push, error) {
	var p core.Push
	var discount []byte
	err := row.Scan(&p.MerchantID, &p.ListID, &p.ConnectionID, &p.Platform, &p.Shop, &p.State, &discount, &p.RemoteID,
		&p.Pushed, &p.Failed, &p.Deleted, &p.Error, &p.CreatedAt, &p.UpdatedAt, &p.Pending)
	if err != nil {
		return p, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return p, json.Unmarshal(discount, &p.Discount)
}

// CreatePush implements core.ConnectionStore. The list row is locked so that a list being
// deleted is not pushed.
func (db *DB) CreatePush(ctx context.Context, p core.Push) (core.Push, bool, error) {
	var out core.Push
	created := false
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM code_lists WHERE merchant_id = $1 AND id = $2 FOR SHARE`,
			p.MerchantID, p.ListID).Scan(&one); err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		discount, err := json.Marshal(p.Discount)
		if err != nil {
			return err
		}
		// A push asked for again before its discount exists (it was refused) takes the discount
		// as given now; once the shop has the discount, it stays.
		err = tx.QueryRow(ctx, `INSERT INTO list_connections (merchant_id, list_id, connection_id, state, discount)
			VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (merchant_id, list_id, connection_id) DO UPDATE SET discount = EXCLUDED.discount
				WHERE list_connections.remote_id = ''
			RETURNING xmax = 0`, p.MerchantID, p.ListID, p.ConnectionID, p.State, discount).Scan(&created)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		out, err = scanPush(tx.QueryRow(ctx, `SELECT `+pushColumns+pushFrom+`
			WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.connection_id = $3`, p.MerchantID, p.ListID, p.ConnectionID))
		return err
	})
	return out, created, err
}

// RestartPush implements core.ConnectionStore.
func (db *DB) RestartPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) (core.Push, error) {
	ref := core.PushRef{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID}
	if _, err := db.pool.Exec(ctx, `UPDATE list_connections SET state = 'pending', error = '', updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3 AND state IN ('error', 'stopped')`, merchantID, listID, connectionID); err != nil {
		return core.Push{}, err
	}
	return db.GetPush(ctx, ref)
}

// ListPushes implements core.ConnectionStore.
func (db *DB) ListPushes(ctx context.Context, merchantID, listID uuid.UUID) ([]core.Push, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+pushColumns+pushFrom+`
		WHERE p.merchant_id = $1 AND p.list_id = $2 ORDER BY p.created_at, p.connection_id`, merchantID, listID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Push, error) { return scanPush(r) })
}

// ConnectionPushes implements core.ConnectionStore.
func (db *DB) ConnectionPushes(ctx context.Context, merchantID, connectionID uuid.UUID) ([]core.Push, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+pushColumns+pushFrom+`
		WHERE p.merchant_id = $1 AND p.connection_id = $2 ORDER BY p.created_at, p.list_id`, merchantID, connectionID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Push, error) { return scanPush(r) })
}

// FailedPushCodes implements core.ConnectionStore: the push's failed codes by seq (a partial
// index), each with its code.
func (db *DB) FailedPushCodes(ctx context.Context, ref core.PushRef, page core.Page) ([]core.FailedPushCode, string, error) {
	var after struct {
		Seq int64 `json:"seq"`
	}
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	rows, err := db.pool.Query(ctx, `SELECT s.seq, k.code, s.error, s.updated_at FROM code_pushes s
		JOIN codes k ON k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
		WHERE s.merchant_id = $1 AND s.list_id = $2 AND s.connection_id = $3 AND s.state = 'failed' AND s.seq > $4
		ORDER BY s.seq LIMIT $5`, ref.MerchantID, ref.ListID, ref.ConnectionID, after.Seq, page.Limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.FailedPushCode, error) {
		var f core.FailedPushCode
		err := r.Scan(&f.Seq, &f.Code, &f.Reason, &f.At)
		f.At = f.At.UTC()
		return f, err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > page.Limit {
		out = out[:page.Limit]
		after.Seq = out[len(out)-1].Seq
		next = encodeCursor(after)
	}
	return out, next, nil
}

// GetPush implements core.PushStore.
func (db *DB) GetPush(ctx context.Context, ref core.PushRef) (core.Push, error) {
	p, err := scanPush(db.pool.QueryRow(ctx, `SELECT `+pushColumns+pushFrom+`
		WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.connection_id = $3`, ref.MerchantID, ref.ListID, ref.ConnectionID))
	if err != nil {
		return p, notFound(err, core.ErrListNotFound)
	}
	return p, nil
}

// SetPushState implements core.PushStore; a stopped push stays stopped.
func (db *DB) SetPushState(ctx context.Context, ref core.PushRef, state, reason string) error {
	_, err := db.pool.Exec(ctx, `UPDATE list_connections SET state = $4, error = $5, updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3 AND state <> 'stopped'`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, state, truncateText(reason, 1000))
	return err
}

// FirstPushCode implements core.PushStore.
func (db *DB) FirstPushCode(ctx context.Context, ref core.PushRef) (core.PushCode, bool, error) {
	var c core.PushCode
	err := db.pool.QueryRow(ctx, `WITH head AS (
			SELECT k.seq, k.code FROM codes k JOIN list_connections p
				ON p.merchant_id = k.merchant_id AND p.list_id = k.list_id AND p.connection_id = $3
			WHERE k.merchant_id = $1 AND k.list_id = $2 AND k.seq >= p.next_seq AND k.state <> 'removed'
			ORDER BY k.seq LIMIT 1)
		UPDATE list_connections p SET creating_seq = head.seq, creating_at = now(), updated_at = now() FROM head
		WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.connection_id = $3
		RETURNING head.seq, head.code`, ref.MerchantID, ref.ListID, ref.ConnectionID).Scan(&c.Seq, &c.Code)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// CreatingPushCode implements core.PushStore. A code recorded since (failed as taken by another
// discount) is not the one the discount is being created with any more.
func (db *DB) CreatingPushCode(ctx context.Context, ref core.PushRef) (core.PushCode, time.Time, bool, error) {
	var c core.PushCode
	var at time.Time
	err := db.pool.QueryRow(ctx, `SELECT k.seq, k.code, p.creating_at FROM list_connections p
		JOIN codes k ON k.merchant_id = p.merchant_id AND k.list_id = p.list_id AND k.seq = p.creating_seq
		WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.connection_id = $3 AND p.remote_id = ''
			AND NOT EXISTS (SELECT 1 FROM code_pushes s WHERE s.merchant_id = p.merchant_id AND s.list_id = p.list_id
				AND s.connection_id = p.connection_id AND s.seq = p.creating_seq)`,
		ref.MerchantID, ref.ListID, ref.ConnectionID).Scan(&c.Seq, &c.Code, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, at, false, nil
	}
	return c, at, err == nil, err
}

// LockPush implements core.PushStore with a session advisory lock held on a connection of its
// own until release (or until that connection dies with its process).
func (db *DB) LockPush(ctx context.Context, ref core.PushRef) (func(), bool, error) {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	key := "push:" + ref.MerchantID.String() + ":" + ref.ListID.String() + ":" + ref.ConnectionID.String()
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil || !ok {
		conn.Release()
		return nil, false, err
	}
	return func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
			// The session must not keep the lock: close it rather than return it to the pool.
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
		conn.Release()
	}, true, nil
}

// BeginPushRun implements core.PushStore.
func (db *DB) BeginPushRun(ctx context.Context, _ core.PushRef) (time.Time, error) {
	var now time.Time
	err := db.pool.QueryRow(ctx, `SELECT now()`).Scan(&now)
	return now, err
}

// FinishPushRun implements core.PushStore.
func (db *DB) FinishPushRun(ctx context.Context, ref core.PushRef, startedAt time.Time) (bool, error) {
	var changed bool
	err := db.pool.QueryRow(ctx, `UPDATE list_connections SET state = CASE WHEN state = 'stopped' THEN state ELSE 'active' END,
			error = CASE WHEN state = 'stopped' THEN error ELSE '' END, synced_through = $4, updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3
		RETURNING coalesce(changed_at > $4, false)`, ref.MerchantID, ref.ListID, ref.ConnectionID, startedAt).Scan(&changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return changed, err
}

// CaseClashes implements core.ConnectionStore: one pass over the list's codes.
func (db *DB) CaseClashes(ctx context.Context, merchantID, listID uuid.UUID, limit int) ([][]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT array_agg(code ORDER BY seq) FROM codes
		WHERE merchant_id = $1 AND list_id = $2 AND state <> 'removed'
		GROUP BY lower(code) HAVING count(*) > 1 ORDER BY min(seq) LIMIT $3`, merchantID, listID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]string])
}

// CaseTwin returns another code of the list (not removed) that equals code but for case.
func (db *DB) CaseTwin(ctx context.Context, merchantID, listID uuid.UUID, code string) (string, bool, error) {
	var twin string
	err := db.pool.QueryRow(ctx, `SELECT code FROM codes WHERE merchant_id = $1 AND list_id = $2 AND state <> 'removed'
		AND lower(code) = lower($3) AND code <> $3 LIMIT 1`, merchantID, listID, code).Scan(&twin)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	return twin, err == nil, err
}

// MarkPushesChanged implements core.ConnectionStore.
func (db *DB) MarkPushesChanged(ctx context.Context, merchantID, listID uuid.UUID) error {
	_, err := db.pool.Exec(ctx, `UPDATE list_connections SET changed_at = now() WHERE merchant_id = $1 AND list_id = $2`, merchantID, listID)
	return err
}

// SetPushRemote implements core.PushStore: the discount id, and its first code as pushed (the
// cursor moves past it).
func (db *DB) SetPushRemote(ctx context.Context, ref core.PushRef, remoteID string, first core.PushOutcome) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE list_connections SET remote_id = $4, creating_seq = NULL,
			next_seq = GREATEST(next_seq, $5 + 1), updated_at = now()
			WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3`,
			ref.MerchantID, ref.ListID, ref.ConnectionID, remoteID, first.Seq); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO code_pushes (merchant_id, list_id, connection_id, seq, state, code_key)
			SELECT merchant_id, list_id, $3, seq, 'submitted', lower(code) FROM codes
			WHERE merchant_id = $1 AND list_id = $2 AND seq = $4
			ON CONFLICT DO NOTHING`, ref.MerchantID, ref.ListID, ref.ConnectionID, first.Seq); err != nil {
			return err
		}
		return finishPushCodes(ctx, tx, ref, []core.PushOutcome{first})
	})
}

// ClaimPushCodes implements core.PushStore (ClaimPushBatch without what it tells beside).
func (db *DB) ClaimPushCodes(ctx context.Context, ref core.PushRef, limit int) ([]core.PushCode, error) {
	codes, _, _, err := db.ClaimPushBatch(ctx, ref, limit)
	return codes, err
}

// ClaimPushBatch takes up to limit codes past the push's cursor that are not removed and not
// recorded yet, records them submitted (no batch) and moves the cursor past them, in one
// statement; atEnd tells that fewer than limit were left past the cursor, stopped that the push
// was stopped (its store disconnected): a stopped push claims nothing, or, stopped while the
// statement ran, codes the caller must not send (they stay submitted, for a restart). A code
// recorded already (a row of this push at or past the cursor) is passed over. A push that is
// gone answers core.ErrListNotFound.
//
// The push's row is updated last, so a claim and FinishPushCodes of the same push running at
// the same time (a pusher claims ahead while it records answers) wait for each other only for
// the commit. Claims need no lock of their own: a push has one runner (LockPush), and two claims
// of the same codes would still each get only the rows they inserted.
func (db *DB) ClaimPushBatch(ctx context.Context, ref core.PushRef, limit int) (claimed []core.PushCode, atEnd, stopped bool, err error) {
	var state string
	var picked int
	var seqs []int64
	var codes []string
	// next_seq's new value is read from picked and ins together so that ins (the heavy part) runs
	// before the row is updated and locked; ins holds only rows of picked, so the maximum is
	// picked's.
	err = db.pool.QueryRow(ctx, `WITH cur AS (
			SELECT p.next_seq, p.state FROM list_connections p
			WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.connection_id = $3),
		picked AS (
			SELECT k.seq, k.code FROM codes k
			WHERE (SELECT state FROM cur) <> 'stopped' AND k.merchant_id = $1 AND k.list_id = $2
				AND k.seq >= (SELECT next_seq FROM cur) AND k.state <> 'removed'
			ORDER BY k.seq LIMIT $4),
		ins AS (
			INSERT INTO code_pushes (merchant_id, list_id, connection_id, seq, state, code_key)
			SELECT $1, $2, $3, picked.seq, 'submitted', lower(picked.code) FROM picked
			ON CONFLICT DO NOTHING
			RETURNING seq),
		upd AS (
			UPDATE list_connections p SET next_seq = GREATEST(p.next_seq,
					coalesce((SELECT max(seq) + 1 FROM (SELECT seq FROM ins UNION ALL SELECT seq FROM picked) s), p.next_seq)),
				updated_at = now()
			WHERE p.merchant_id = $1 AND p.list_id = $2 AND p.connection_id = $3
			RETURNING p.state)
		SELECT upd.state, (SELECT count(*) FROM picked),
			ARRAY(SELECT picked.seq FROM picked JOIN ins ON ins.seq = picked.seq ORDER BY picked.seq),
			ARRAY(SELECT picked.code FROM picked JOIN ins ON ins.seq = picked.seq ORDER BY picked.seq)
		FROM upd`, ref.MerchantID, ref.ListID, ref.ConnectionID, max(limit, 0)).Scan(&state, &picked, &seqs, &codes)
	if err != nil {
		return nil, false, false, notFound(err, core.ErrListNotFound)
	}
	claimed = make([]core.PushCode, len(seqs))
	for i := range seqs {
		claimed[i] = core.PushCode{Seq: seqs[i], Code: codes[i]}
	}
	return claimed, picked < limit, state == core.PushStopped, nil
}

func scanPushCode(r pgx.CollectableRow) (core.PushCode, error) {
	var c core.PushCode
	return c, r.Scan(&c.Seq, &c.Code, &c.BatchID, &c.RemoteID)
}

// pushCodesWhere selects a push's code rows joined to their codes.
const pushCodesSelect = `SELECT s.seq, k.code, s.batch_id, s.remote_id FROM code_pushes s
	JOIN codes k ON k.merchant_id = s.merchant_id AND k.list_id = s.list_id AND k.seq = s.seq
	WHERE s.merchant_id = $1 AND s.list_id = $2 AND s.connection_id = $3 `

// UnsentPushCodes implements core.PushStore.
func (db *DB) UnsentPushCodes(ctx context.Context, ref core.PushRef, limit int) ([]core.PushCode, error) {
	rows, err := db.pool.Query(ctx, pushCodesSelect+`AND s.state = 'submitted' AND s.batch_id = '' ORDER BY s.seq LIMIT $4`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanPushCode)
}

// SetPushBatch implements core.PushStore.
func (db *DB) SetPushBatch(ctx context.Context, ref core.PushRef, seqs []int64, batchID string) error {
	_, err := db.pool.Exec(ctx, `UPDATE code_pushes SET batch_id = $5, updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3 AND seq = ANY($4) AND state = 'submitted'`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, seqs, batchID)
	return err
}

// OpenPushBatches implements core.PushStore.
func (db *DB) OpenPushBatches(ctx context.Context, ref core.PushRef) ([]string, error) {
	rows, err := db.pool.Query(ctx, `SELECT batch_id FROM code_pushes
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3 AND state = 'submitted' AND batch_id <> ''
		GROUP BY batch_id ORDER BY min(seq)`, ref.MerchantID, ref.ListID, ref.ConnectionID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// PushBatchCodes implements core.PushStore.
func (db *DB) PushBatchCodes(ctx context.Context, ref core.PushRef, batchID string) ([]core.PushCode, error) {
	rows, err := db.pool.Query(ctx, pushCodesSelect+`AND s.state = 'submitted' AND s.batch_id = $4 ORDER BY s.seq`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, batchID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanPushCode)
}

// FinishPushCodes implements core.PushStore: one statement for any number of outcomes (a pusher
// records every answer that came while it recorded the last ones in one call).
func (db *DB) FinishPushCodes(ctx context.Context, ref core.PushRef, outcomes []core.PushOutcome) error {
	if len(outcomes) == 0 {
		return nil
	}
	// One statement: atomic without a transaction of its own (one round trip, not three).
	return finishPushCodes(ctx, db.pool, ref, outcomes)
}

// execer runs a statement: the pool or a transaction.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// finishPushCodes moves submitted codes to pushed or failed and adds them to the push's counts, in
// one set-based statement. Each row is its code's timeline event (outcome_at, read by pushEvents),
// where a code_events row was written beside it before: a third of the bookkeeping of a code.
//
// The submitted rows are read through the primary key over the outcomes' span of seqs (the
// batches answered since the last call, and those still in flight between them), whatever the
// table's statistics say: "state NOT IN (the other states)" is "state = 'submitted'" in words the
// planner cannot match to code_pushes_open, whose entries for every code pushed since the last
// vacuum are still there, dead, and were walked through on every call. The push's row is updated
// last (its new counts are computed from done first), so a claim running beside waits only for
// the commit.
func finishPushCodes(ctx context.Context, tx execer, ref core.PushRef, outcomes []core.PushOutcome) error {
	seqs := make([]int64, len(outcomes))
	pushed := make([]bool, len(outcomes))
	remote := make([]string, len(outcomes))
	reasons := make([]string, len(outcomes))
	lo, hi := outcomes[0].Seq, outcomes[0].Seq
	for i, o := range outcomes {
		seqs[i], pushed[i], remote[i], reasons[i] = o.Seq, o.Pushed, o.RemoteID, truncateText(o.Error, 500)
		lo, hi = min(lo, o.Seq), max(hi, o.Seq)
	}
	_, err := tx.Exec(ctx, `WITH o AS (
			SELECT * FROM unnest($4::bigint[], $5::boolean[], $6::text[], $7::text[]) AS o(seq, pushed, remote_id, error)),
		done AS (
			UPDATE code_pushes s SET state = CASE WHEN o.pushed THEN 'pushed' ELSE 'failed' END,
				remote_id = o.remote_id, error = CASE WHEN o.pushed THEN '' ELSE o.error END, updated_at = now(), outcome_at = now()
			FROM o WHERE s.merchant_id = $1 AND s.list_id = $2 AND s.connection_id = $3 AND s.seq BETWEEN $8 AND $9
				AND s.seq = o.seq AND s.state NOT IN ('pushed', 'failed', 'deleted')
			RETURNING o.pushed)
		UPDATE list_connections SET
			pushed = pushed + (SELECT count(*) FROM done WHERE done.pushed),
			failed = failed + (SELECT count(*) FROM done WHERE NOT done.pushed), updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, seqs, pushed, remote, reasons, lo, hi)
	return err
}

// pushEvents are a code's push outcomes recorded with their time (outcome_at, see
// finishPushCodes): one event per shop the code went to, pushed (also when since deleted
// from the shop, which is its own unpushed event) or push_failed, carrying what a code_events row
// of the outcome carries. Each is one probe of code_pushes' primary key per push of the list.
func (db *DB) pushEvents(ctx context.Context, list core.List, seq int64) ([]core.Event, error) {
	rows, err := db.pool.Query(ctx, `SELECT s.outcome_at, CASE WHEN s.state = 'failed' THEN 'push_failed' ELSE 'pushed' END, c.platform,
			jsonb_strip_nulls(jsonb_build_object('connection_id', s.connection_id::text, 'platform', c.platform, 'shop', c.shop,
				'discount_id', NULLIF(p.remote_id, ''), 'remote_id', NULLIF(s.remote_id, ''),
				'error', NULLIF(CASE WHEN s.state = 'failed' THEN s.error ELSE '' END, '')))
		FROM list_connections p
		JOIN code_pushes s ON s.merchant_id = p.merchant_id AND s.list_id = p.list_id AND s.connection_id = p.connection_id
			AND s.seq = $3
		JOIN connections c ON c.merchant_id = p.merchant_id AND c.id = p.connection_id
		WHERE p.merchant_id = $1 AND p.list_id = $2 AND s.outcome_at IS NOT NULL`, list.MerchantID, list.ID, seq)
	if err != nil {
		return nil, fmt.Errorf("db: code push events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.Event, error) {
		var e core.Event
		var details []byte
		err := r.Scan(&e.At, &e.Type, &e.Actor, &details)
		e.At, e.Details = e.At.UTC(), details
		return e, err
	})
}

// RemovedPushedCodes implements core.PushStore.
func (db *DB) RemovedPushedCodes(ctx context.Context, ref core.PushRef, limit int) ([]core.PushCode, error) {
	rows, err := db.pool.Query(ctx, pushCodesSelect+`AND s.state = 'pushed' AND k.state = 'removed' ORDER BY s.seq LIMIT $4`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanPushCode)
}

// MarkPushCodesDeleted implements core.PushStore.
func (db *DB) MarkPushCodesDeleted(ctx context.Context, ref core.PushRef, seqs []int64) error {
	_, err := db.pool.Exec(ctx, `WITH done AS (
			UPDATE code_pushes SET state = 'deleted', updated_at = now()
			WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3 AND seq = ANY($4) AND state = 'pushed'
			RETURNING seq),
		conn AS (
			SELECT c.platform, c.shop FROM connections c WHERE c.merchant_id = $1 AND c.id = $3),
		events AS (
			INSERT INTO code_events (merchant_id, list_id, seq, type, actor, details)
			SELECT $1, $2, done.seq, 'unpushed', conn.platform,
				jsonb_build_object('connection_id', $3::text, 'platform', conn.platform, 'shop', conn.shop)
			FROM done, conn)
		UPDATE list_connections SET deleted = deleted + (SELECT count(*) FROM done), updated_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND connection_id = $3`,
		ref.MerchantID, ref.ListID, ref.ConnectionID, seqs)
	return err
}

// PushesBehind implements core.SweepStore. It scans pushes across merchants; the EXISTS is one
// index probe on the codes' primary key per active push, and a change (a removal) that no run
// covered is a comparison of two columns.
func (db *DB) PushesBehind(ctx context.Context, before time.Time, limit int) ([]core.PushRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT p.merchant_id, p.list_id, p.connection_id FROM list_connections p
		JOIN connections c ON c.merchant_id = p.merchant_id AND c.id = p.connection_id AND c.state = 'active'
		WHERE (p.state IN ('pending', 'pushing') AND p.updated_at < $1)
			OR (p.state = 'active' AND EXISTS (SELECT 1 FROM codes k WHERE k.merchant_id = p.merchant_id
				AND k.list_id = p.list_id AND k.seq >= p.next_seq AND k.state <> 'removed'))
			OR (p.state = 'active' AND p.changed_at > coalesce(p.synced_through, '-infinity'))
		ORDER BY p.updated_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.PushRef, error) {
		var p core.PushRef
		return p, r.Scan(&p.MerchantID, &p.ListID, &p.ConnectionID)
	})
}

var _ core.PushStore = (*DB)(nil)
