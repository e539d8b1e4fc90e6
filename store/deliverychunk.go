package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// DeliverChunk implements core.BulkSendStore with cg_deliver_chunk (migrations/00024): the
// chunk's codes are allocated and its deliveries stored in one statement and one commit.
func (db *DB) DeliverChunk(ctx context.Context, c core.DeliveryChunk) (core.ChunkResult, error) {
	db.keepStatistics(ctx)
	n := len(c.Recipients)
	keys := make([]string, n)
	ext, email, phone := make([]*string, n), make([]*string, n), make([]*string, n)
	recipients := make([][]byte, n)
	for i, r := range c.Recipients {
		rr := r.Recipient()
		keys[i] = core.RecipientKey(rr)
		ext[i], email[i], phone[i] = nullable(rr.ExternalID), nullable(rr.Email), nullable(rr.Phone)
		b, err := json.Marshal(r)
		if err != nil {
			return core.ChunkResult{}, err
		}
		recipients[i] = b
	}
	var start *int64
	if c.Start > 0 {
		start = &c.Start
	}
	rows, err := db.pool.Query(ctx, `SELECT idx, id, status, seq, code, error, created, outcome, available, low_stock_threshold,
			stock_state, last_seq
		FROM cg_deliver_chunk($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb[], $15)`,
		c.MerchantID, c.ListID, c.JobID, string(c.Channel), c.TemplateID, c.Campaign, c.Actor, start, c.IDs, keys, ext, email, phone,
		recipients, c.CreatedAt)
	if err != nil {
		return core.ChunkResult{}, fmt.Errorf("db: deliver chunk: %w", err)
	}
	defer rows.Close()
	res := core.ChunkResult{Deliveries: make([]core.Delivery, n), Created: make([]bool, n)}
	seen := 0
	for rows.Next() {
		var (
			idx                         int
			id                          *uuid.UUID
			status, code, reason        *string
			seq, avail, thresh, lastSeq *int64
			stock                       *string
			created                     bool
		)
		if err := rows.Scan(&idx, &id, &status, &seq, &code, &reason, &created, &res.Outcome, &avail, &thresh, &stock, &lastSeq); err != nil {
			return core.ChunkResult{}, fmt.Errorf("db: deliver chunk: %w", err)
		}
		if res.Outcome != core.OutcomeOK {
			return core.ChunkResult{Outcome: res.Outcome}, nil
		}
		if idx < 1 || idx > n {
			return core.ChunkResult{}, fmt.Errorf("db: deliver chunk: row %d of %d", idx, n)
		}
		res.Available, res.LowStockThreshold, res.StockState, res.LastSeq = deref(avail), deref(thresh), deref(stock), deref(lastSeq)
		jobID := c.JobID
		res.Deliveries[idx-1] = core.Delivery{MerchantID: c.MerchantID, ID: deref(id), ListID: c.ListID, JobID: &jobID, Channel: c.Channel,
			TemplateID: c.TemplateID, Campaign: c.Campaign, Recipient: c.Recipients[idx-1], Status: deref(status), Seq: deref(seq),
			Code: deref(code), Error: deref(reason), CreatedAt: c.CreatedAt}
		res.Created[idx-1] = created
		seen++
	}
	if err := rows.Err(); err != nil {
		return core.ChunkResult{}, fmt.Errorf("db: deliver chunk: %w", err)
	}
	if seen != n {
		return core.ChunkResult{}, fmt.Errorf("db: deliver chunk: %d deliveries for %d recipients", seen, n)
	}
	return res, nil
}

// claimedColumns are a claimed delivery's columns with what its message needs of its list, code
// and template, read from d (the deliveries' columns and claimed) joined to them.
const claimedColumns = `d.*, l.name, cg_code_expires_at(l.expires_at, c.available_till, c.delivered_at, l.valid_for), t.updated_at`

// ClaimDeliveries implements core.DeliveryStore: the outcomes of the group before, the claim and
// the reads of the deliveries, their lists' names, their codes' expiries and their templates'
// versions are one statement (the two updates touch different deliveries). The ids are claimed in
// order, so two batches that share a delivery lock it in the same order.
func (db *DB) ClaimDeliveries(ctx context.Context, merchantID uuid.UUID, finished []core.BatchOutcome, ids []uuid.UUID) ([]core.ClaimedDelivery, error) {
	sorted := slices.Clone(ids)
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	o := outcomeArrays(finished)
	rows, err := db.pool.Query(ctx, `WITH finished AS (`+finishDeliveries+`), claimed AS (
			UPDATE deliveries SET status = 'sending', attempts = attempts + 1, batch_claimed = true, updated_at = now()
			WHERE merchant_id = $1 AND id = ANY($6) AND status = 'queued'
			RETURNING `+deliveryColumns+`)
		SELECT `+claimedColumns+` FROM claimed
			d (merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient, status, seq)
		LEFT JOIN code_lists l ON l.merchant_id = d.merchant_id AND l.id = d.list_id
		LEFT JOIN codes c ON c.merchant_id = d.merchant_id AND c.list_id = d.list_id AND c.seq = d.seq
		LEFT JOIN templates t ON t.merchant_id = d.merchant_id AND t.id = d.template_id`,
		merchantID, o.ids, o.statuses, o.providers, o.reasons, sorted)
	if err != nil {
		return nil, fmt.Errorf("db: claim deliveries: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (core.ClaimedDelivery, error) {
		var out core.ClaimedDelivery
		var listName *string
		d, err := scanDelivery(r, &listName, &out.ExpiresAt, &out.TemplateUpdatedAt)
		out.Delivery, out.ListName, out.ExpiresAt, out.TemplateUpdatedAt = d, deref(listName), ptrUTC(out.ExpiresAt), ptrUTC(out.TemplateUpdatedAt)
		return out, err
	})
}

// finishDeliveries records outcomes ($2…$5) of deliveries of merchant $1: a sent or failed
// outcome on a delivery still queued or sending (never over a recorded send), a queued one only
// on a delivery still sending.
const finishDeliveries = `UPDATE deliveries d SET status = o.status, provider_id = o.provider_id, error = o.error,
			sent_at = CASE WHEN o.status = 'sent' THEN now() ELSE d.sent_at END, updated_at = now()
		FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[]) AS o (id, status, provider_id, error)
		WHERE d.merchant_id = $1 AND d.id = o.id
		  AND (d.status = 'sending' OR (d.status = 'queued' AND o.status <> 'queued'))`

// outcomes are DeliveryOutcomes as the arrays finishDeliveries reads.
type outcomes struct {
	ids                          []uuid.UUID
	statuses, providers, reasons []string
}

func outcomeArrays(in []core.BatchOutcome) outcomes {
	o := outcomes{ids: make([]uuid.UUID, len(in)), statuses: make([]string, len(in)), providers: make([]string, len(in)),
		reasons: make([]string, len(in))}
	for i, x := range in {
		o.ids[i], o.statuses[i], o.providers[i], o.reasons[i] = x.ID, x.Status, x.ProviderID, truncateText(x.Reason, 1000)
	}
	return o
}

// FinishDeliveries implements core.DeliveryStore: one statement for the batch's group.
func (db *DB) FinishDeliveries(ctx context.Context, merchantID uuid.UUID, finished []core.BatchOutcome) error {
	if len(finished) == 0 {
		return nil
	}
	o := outcomeArrays(finished)
	if _, err := db.pool.Exec(ctx, finishDeliveries, merchantID, o.ids, o.statuses, o.providers, o.reasons); err != nil {
		return fmt.Errorf("db: finish deliveries: %w", err)
	}
	return nil
}

// keepStatistics analyzes deliveries and allocations when PostgreSQL has no statistics of them
// and they passed 128 kB (a thousand rows or so), or they hold sixteen times the rows they held
// when it last gathered some. A bulk send adds thousands of rows a second to both, faster than
// autovacuum analyzes them (it visits a database once a minute at best, and less on a busy
// server); planned without statistics, the batch's claim read every queued delivery through two
// partial indexes (a bitmap AND of deliveries_unsent_template and deliveries_stalled) and the
// chunk's probes a list's every row (measured on a fresh database at 10,000 deliveries: 14 ms a
// probe instead of 0.05). Statistics gathered once from a thousand rows keep these plans right as
// the tables grow (the columns probed are unique, and PostgreSQL scales row counts by the size of
// the file), so ANALYZE runs a few times in a job, not at every doubling, and on a small sample of
// the planned columns (a full ANALYZE at every fourfold growth cost 9 % of the database's time in
// a 20,000-message job). It does not block writers; a role that does not own the tables gets a
// warning and nothing is done.
func (db *DB) keepStatistics(ctx context.Context) {
	rows, err := db.pool.Query(ctx, `SELECT c.relname FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid
		WHERE c.oid IN ('deliveries'::regclass, 'allocations'::regclass)
		  AND ((c.reltuples < 0 AND pg_relation_size(c.oid) > 16 * current_setting('block_size')::bigint)
		       OR s.n_live_tup > greatest(1000, 16 * c.reltuples))`)
	if err != nil {
		return // only a help to the planner
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, t := range tables {
		_ = db.tx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL default_statistics_target = 10`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "ANALYZE "+pgx.Identifier{t}.Sanitize()+" "+plannedColumns[t])
			return err
		})
	}
}

// plannedColumns are the columns of each table that the job's and the batch's statements filter,
// join or sort on: keepStatistics gathers theirs alone, from a sample of 3,000 rows (ten times
// fewer than ANALYZE takes by default, and enough for their plans; autovacuum gathers the full
// statistics when it comes).
var plannedColumns = map[string]string{
	"deliveries":  "(merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient_key, status, created_at, updated_at)",
	"allocations": "(merchant_id, id, list_id, seq, recipient_key, campaign, allocated_at)",
}

// batchClaimFresh is how long a batch's claim of a delivery keeps a single send off it
// (core.StallAfter: the sweeper queues a delivery left sending longer again, and its send then
// fails it as the remains of a stopped worker).
var batchClaimFresh = core.StallAfter

// inBatch is the SQL of a claimed delivery's InBatch, on deliveries d.
func inBatch() string {
	return fmt.Sprintf("(d.batch_claimed AND d.updated_at > now() - interval '%d milliseconds')", batchClaimFresh/time.Millisecond)
}
