package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/core"
)

// DeliverChunk implements core.BulkSendStore. A chunk is decided in core (core.DecideChunk) on
// what one transaction reads, in the shape of an allocation's (store/allocation.go):
//
//   - the first round trip begins it and takes the recipients' advisory locks (sorted, the keys
//     allocations take) and a fixed list's code lock, then reads the recipients' deliveries of the
//     list, channel and campaign, their last hand-outs and the list with its counts;
//   - the next takes as many free codes as core says the chunk wants (ChunkLedger.CodesWanted)
//     from the chunk's start (SKIP LOCKED: codes other transactions are taking are passed over),
//     and, when they fall short, a third those before it (holes other processes left);
//   - core decides; the last writes the codes handed out, their allocations and the counters,
//     stores the new deliveries (ON CONFLICT DO NOTHING), reads the list's available count back,
//     and commits. A recipient whose delivery a concurrent request stored first is answered with
//     that delivery, read after the commit.
//
// A deadlock PostgreSQL broke is retried; PostgreSQL down or failing over answers
// core.ErrUnavailable.
func (db *DB) DeliverChunk(ctx context.Context, c core.DeliveryChunk, decide func(*core.ChunkLedger) core.ChunkDecision) (core.ChunkResult, error) {
	db.keepStatistics(ctx)
	items := c.AllocationItems()
	reads := newAllocationReads(items)
	reads.scans = 0 // the chunk's scan is a round trip of its own, for the codes it wants
	recipients := make([][]byte, len(c.Recipients))
	for i, r := range c.Recipients {
		b, err := json.Marshal(r)
		if err != nil {
			return core.ChunkResult{}, err
		}
		recipients[i] = b
	}
	for attempt := 1; ; attempt++ {
		var res core.ChunkResult
		err := db.onTxConn(ctx, func(conn *pgxpool.Conn) (committed bool, err error) {
			res, committed, err = deliverChunk(ctx, conn, c, items, reads, recipients, decide)
			return committed, err
		})
		switch {
		case err == nil:
			return res, nil
		case isDeadlock(err) && attempt < 3:
			continue
		case IsUnavailable(err):
			return core.ChunkResult{}, core.Unavailable("PostgreSQL", fmt.Errorf("db: deliver chunk: %w", err))
		default:
			return core.ChunkResult{}, fmt.Errorf("db: deliver chunk: %w", err)
		}
	}
}

// deliverChunk runs the chunk's transaction once on conn (DeliverChunk), and says whether it
// committed.
func deliverChunk(ctx context.Context, conn *pgxpool.Conn, c core.DeliveryChunk, items []core.AllocationBatchItem, reads *allocationReads,
	recipients [][]byte, decide func(*core.ChunkLedger) core.ChunkDecision) (core.ChunkResult, bool, error) {
	now := c.CreatedAt
	ledger := &core.ChunkLedger{}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	reads.queue(b, c.MerchantID, c.ListID, now)
	queueDeliveriesOf(b, c, reads.keys)
	if err := sendBatch(ctx, conn, b, afterBegin(func(br pgx.BatchResults) (err error) {
		if ledger.AllocationLedger, err = reads.scan(br); err != nil {
			return err
		}
		ledger.Existing, err = scanDeliveriesOf(br, c, reads.keys)
		return err
	})); err != nil {
		return core.ChunkResult{}, false, err
	}
	// The free codes the chunk wants, from its start, then (when short) from the list's.
	from, wanted := max(c.Start, 1), ledger.CodesWanted(c)
	for _, r := range [][2]int64{{from, math.MaxInt64}, {1, from}} {
		want := wanted - len(ledger.Scanned)
		if want <= 0 || r[0] >= r[1] {
			break
		}
		b := &pgx.Batch{}
		queueFreeCodes(b, c.MerchantID, c.ListID, now, r[0], r[1], want)
		if err := sendBatch(ctx, conn, b, func(br pgx.BatchResults) error {
			seqs, err := scanOfferedCodes(br, ledger.Codes)
			ledger.Scanned = append(seqs, ledger.Scanned...) // those before the start first, in order
			return err
		}); err != nil {
			return core.ChunkResult{}, false, err
		}
	}
	d := decide(ledger)
	if d.Outcome != core.OutcomeOK {
		return core.ChunkResult{Outcome: d.Outcome}, false, nil
	}

	// The deliveries first: their insert may wait for a concurrent one of the same key, and the
	// counters' shard row, which the allocation writes lock last, is then not held meanwhile.
	b = &pgx.Batch{}
	inserting := queueNewDeliveries(b, c, d.ChunkResult, reads.keys, recipients)
	queued := b.Len()
	queueAllocationWrites(b, c.MerchantID, c.ListID, items, ledger.AllocationLedger, d.Allocations, now)
	writes := b.Len() - queued
	// The count after the chunk, read after its own writes, so it sees the chunks that committed
	// meanwhile: the last of two chunks in flight notices the crossing they made together.
	b.Queue(`SELECT coalesce(sum(available), 0) FROM list_counters WHERE merchant_id = $1 AND list_id = $2`, c.MerchantID, c.ListID)
	b.Queue("COMMIT")
	made := map[uuid.UUID]bool{}
	if err := sendBatch(ctx, conn, b, func(br pgx.BatchResults) error {
		if inserting {
			var id uuid.UUID
			rows, _ := br.Query()
			if _, err := pgx.ForEachRow(rows, []any{&id}, func() error {
				made[id] = true
				return nil
			}); err != nil {
				return err
			}
		}
		if err := execAnswers(br, writes); err != nil {
			return err
		}
		return br.QueryRow().Scan(&d.Available)
	}); err != nil {
		return core.ChunkResult{}, false, err
	}

	// A recipient whose delivery a concurrent request stored first (the insert met the unique
	// key) is answered with that delivery, as stored.
	late := map[int]bool{}
	var lateKeys []string
	for i, dv := range d.Deliveries {
		if d.Created[i] && !made[dv.ID] {
			late[i], lateKeys = true, append(lateKeys, reads.keys[i])
		}
	}
	if len(late) > 0 {
		b := &pgx.Batch{}
		queueDeliveriesOf(b, c, lateKeys)
		if err := sendBatch(ctx, conn, b, func(br pgx.BatchResults) error {
			stored, err := scanDeliveriesOf(br, c, reads.keys)
			for i, dv := range stored {
				d.Deliveries[i], d.Created[i] = dv, false
				delete(late, i)
			}
			return err
		}); err != nil {
			return core.ChunkResult{}, true, err
		}
		if len(late) > 0 {
			// Stored by another and gone again (a list deleted meanwhile): the chunk is run again.
			return core.ChunkResult{}, true, fmt.Errorf("%d deliveries neither stored nor found", len(late))
		}
	}
	return d.ChunkResult, true, nil
}

// queueDeliveriesOf queues the read of the deliveries of c's list, channel and campaign to the
// recipients of keys: one probe of the deliveries' unique key each (LIMIT 1 keeps it a probe
// whatever the statistics say).
func queueDeliveriesOf(b *pgx.Batch, c core.DeliveryChunk, keys []string) {
	b.Queue(`SELECT u.k, d.id, d.status, d.seq, d.code, d.error FROM unnest($5::text[]) AS u(k)
		CROSS JOIN LATERAL (SELECT d.id, d.status, d.seq, d.code, d.error FROM deliveries d
			WHERE d.merchant_id = $1 AND d.list_id = $2 AND d.channel = $3 AND d.recipient_key = u.k AND d.campaign = $4
			LIMIT 1) d`, c.MerchantID, c.ListID, string(c.Channel), c.Campaign, keys)
}

// scanDeliveriesOf reads the answer of queueDeliveriesOf as deliveries of the chunk's
// recipients, by their index in it (keys are the chunk's recipients' keys, in its order).
func scanDeliveriesOf(br pgx.BatchResults, c core.DeliveryChunk, keys []string) (map[int]core.Delivery, error) {
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		index[k] = i
	}
	out := map[int]core.Delivery{}
	var (
		key, status  string
		id           uuid.UUID
		seq          *int64
		code, reason *string
	)
	rows, _ := br.Query()
	_, err := pgx.ForEachRow(rows, []any{&key, &id, &status, &seq, &code, &reason}, func() error {
		i, ok := index[key]
		if !ok {
			return fmt.Errorf("a delivery of recipient %q, not in the chunk", key)
		}
		jobID := c.JobID
		out[i] = core.Delivery{MerchantID: c.MerchantID, ID: id, ListID: c.ListID, JobID: &jobID, Channel: c.Channel,
			TemplateID: c.TemplateID, Campaign: c.Campaign, Recipient: c.Recipients[i], Status: status, Seq: deref(seq),
			Code: deref(code), Error: deref(reason), CreatedAt: c.CreatedAt}
		return nil
	})
	return out, err
}

// queueNewDeliveries queues the insert of the deliveries r made (ON CONFLICT DO NOTHING, answering
// the ids stored), and answers false when it made none.
func queueNewDeliveries(b *pgx.Batch, c core.DeliveryChunk, r core.ChunkResult, keys []string, recipients [][]byte) bool {
	var (
		ids             []uuid.UUID
		rkeys, statuses []string
		rows            [][]byte
		seqs            []*int64
		codes           []*string
	)
	for i, d := range r.Deliveries {
		if !r.Created[i] {
			continue
		}
		ids, rkeys, statuses, rows = append(ids, d.ID), append(rkeys, keys[i]), append(statuses, d.Status), append(rows, recipients[i])
		if d.Status == core.DeliveryWaiting {
			seqs, codes = append(seqs, nil), append(codes, nil)
		} else {
			seqs, codes = append(seqs, &d.Seq), append(codes, &d.Code)
		}
	}
	if len(ids) == 0 {
		return false
	}
	b.Queue(`INSERT INTO deliveries (merchant_id, id, list_id, job_id, channel, template_id, campaign, recipient_key, recipient,
			status, seq, code, created_at)
		SELECT $1, u.id, $2, $3, $4, $5, $6, u.k, u.r, u.status, u.seq, u.code, $7
		FROM unnest($8::uuid[], $9::text[], $10::jsonb[], $11::text[], $12::bigint[], $13::text[]) AS u(id, k, r, status, seq, code)
		ON CONFLICT (merchant_id, list_id, channel, recipient_key, campaign) DO NOTHING
		RETURNING id`, c.MerchantID, c.ListID, c.JobID, string(c.Channel), c.TemplateID, c.Campaign, c.CreatedAt,
		ids, rkeys, rows, statuses, seqs, codes)
	return true
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
