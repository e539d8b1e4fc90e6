package store

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

var (
	_ core.BatchStore    = (*DB)(nil)
	_ core.BatchRunStore = (*DB)(nil)
)

func (r batchRow) toCore() core.Batch {
	return core.Batch{
		MerchantID: r.MerchantID, ListID: r.ListID, Number: r.Number,
		BatchSpec: core.BatchSpec{Count: r.Count, Prefix: r.Prefix, Length: r.Length, Charset: r.Charset, Separator: r.Separator},
		Generated: r.Generated, Status: core.BatchStatus(r.Status), Error: r.Error, Exported: r.Exported,
		CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt.UTC(), FinishedAt: ptrUTC(r.FinishedAt),
	}
}

// CreateBatch implements core.BatchStore: the batch takes the list's next batch number, counted
// on the list row so numbers run 1, 2, 3 … per list without gaps or races.
func (db *DB) CreateBatch(ctx context.Context, b *core.Batch) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE code_lists SET next_batch = next_batch + 1 WHERE merchant_id = $1 AND id = $2
			RETURNING next_batch - 1`, b.MerchantID, b.ListID).Scan(&b.Number); err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		_, err := tx.Exec(ctx, `INSERT INTO batches (merchant_id, list_id, number, count, prefix, length, charset, separator,
				status, created_by, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			b.MerchantID, b.ListID, b.Number, b.Count, b.Prefix, b.Length, b.Charset, b.Separator, string(b.Status),
			b.CreatedBy, b.CreatedAt.UTC())
		if err != nil {
			return fmt.Errorf("db: insert batch: %w", err)
		}
		return nil
	})
}

// GetBatch implements core.BatchStore.
func (db *DB) GetBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) (core.Batch, error) {
	var r batchRow
	if err := db.gorm.WithContext(ctx).Take(&r, "merchant_id = ? AND list_id = ? AND number = ?", merchantID, listID, number).Error; err != nil {
		return core.Batch{}, notFound(err, core.ErrBatchNotFound)
	}
	return r.toCore(), nil
}

// ListBatches implements core.BatchStore, oldest (lowest number) first.
func (db *DB) ListBatches(ctx context.Context, merchantID, listID uuid.UUID, page core.Page) ([]core.Batch, string, error) {
	var after struct {
		Number int `json:"n"`
	}
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
	}
	var rows []batchRow
	if err := db.gorm.WithContext(ctx).Where("merchant_id = ? AND list_id = ? AND number > ?", merchantID, listID, after.Number).
		Order("number").Limit(page.Limit + 1).Find(&rows).Error; err != nil {
		return nil, "", fmt.Errorf("db: list batches: %w", err)
	}
	next := ""
	if len(rows) > page.Limit {
		rows = rows[:page.Limit]
		after.Number = rows[len(rows)-1].Number
		next = encodeCursor(after)
	}
	out := make([]core.Batch, len(rows))
	for i, r := range rows {
		out[i] = r.toCore()
	}
	return out, next, nil
}

// ExportBatch implements core.BatchStore: a CSV with the header "code" and the batch's codes that
// were not removed since, in list order, streamed by COPY straight into w; then the batch is marked
// exported. Codes that a spreadsheet would run as a formula are written with a leading quote.
func (db *DB) ExportBatch(ctx context.Context, list core.List, number int, w io.Writer) error {
	// COPY takes no bind parameters; every value below is a uuid or an integer formatted here.
	sql := `COPY (SELECT ` + guardCode + ` AS code FROM codes
		WHERE merchant_id = ` + quoteUUID(list.MerchantID) + ` AND list_id = ` + quoteUUID(list.ID) + `
		  AND batch_no = ` + strconv.Itoa(number) + ` AND state <> 'removed'
		ORDER BY seq) TO STDOUT WITH (FORMAT csv, HEADER)`
	if err := db.copyTo(ctx, w, "", sql); err != nil {
		return err
	}
	return db.markBatchExported(ctx, list, number)
}

// ExportBatchInfo implements core.BatchStore: every code of the batch, removed ones included, with
// its batch number, state, uses and recipient, in list order, streamed by COPY into w under
// core.BatchInfoHeader; then the batch is marked exported. Codes and recipients a spreadsheet would
// run as a formula are written with a leading quote.
func (db *DB) ExportBatchInfo(ctx context.Context, list core.List, number int, w io.Writer) error {
	// COPY takes no bind parameters; every value below is a uuid or an integer formatted here.
	sql := `COPY (SELECT ` + guardCode + `, batch_no, state, uses, ` + guardText("recipient_external_id") + `, ` +
		guardText("recipient_email") + `, ` + guardText("recipient_phone") + ` FROM codes
		WHERE merchant_id = ` + quoteUUID(list.MerchantID) + ` AND list_id = ` + quoteUUID(list.ID) + `
		  AND batch_no = ` + strconv.Itoa(number) + `
		ORDER BY seq) TO STDOUT WITH (FORMAT csv)`
	if err := db.copyTo(ctx, w, core.BatchInfoHeader+"\n", sql); err != nil {
		return err
	}
	return db.markBatchExported(ctx, list, number)
}

func (db *DB) markBatchExported(ctx context.Context, list core.List, number int) error {
	if _, err := db.pool.Exec(ctx, `UPDATE batches SET exported = true WHERE merchant_id = $1 AND list_id = $2 AND number = $3`,
		list.MerchantID, list.ID, number); err != nil {
		return fmt.Errorf("db: mark batch exported: %w", err)
	}
	return nil
}

// StartBatch implements core.BatchRunStore.
func (db *DB) StartBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) (core.Batch, error) {
	if _, err := db.pool.Exec(ctx, `UPDATE batches SET status = 'running'
		WHERE merchant_id = $1 AND list_id = $2 AND number = $3 AND status = 'queued'`, merchantID, listID, number); err != nil {
		return core.Batch{}, fmt.Errorf("db: start batch: %w", err)
	}
	return db.GetBatch(ctx, merchantID, listID, number)
}

// AddBatchCodes implements core.BatchRunStore. Locks are taken list row first, then batch row, the
// order DeleteList uses too, so the two never deadlock.
func (db *DB) AddBatchCodes(ctx context.Context, list core.List, number int, codes []string) (int64, error) {
	var generated int64
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM code_lists WHERE merchant_id = $1 AND id = $2 FOR NO KEY UPDATE`,
			list.MerchantID, list.ID).Scan(&one); err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		var count int64
		if err := tx.QueryRow(ctx, `SELECT count, generated FROM batches WHERE merchant_id = $1 AND list_id = $2 AND number = $3
			FOR UPDATE`, list.MerchantID, list.ID, number).Scan(&count, &generated); err != nil {
			return notFound(err, core.ErrBatchNotFound)
		}
		// Never more than the batch misses, even if two runners raced on it.
		need := count - generated
		if need <= 0 {
			return nil
		}
		if int64(len(codes)) > need {
			codes = codes[:need]
		}
		nc := make([]NewCode, len(codes))
		for i, c := range codes {
			nc[i].Code = c
		}
		inserted, err := db.insertCodes(ctx, tx, list, nc, Origin{BatchNo: number})
		if err != nil {
			return err
		}
		var n int64
		for _, ok := range inserted {
			if ok {
				n++
			}
		}
		if err := tx.QueryRow(ctx, `UPDATE batches SET generated = generated + $4 WHERE merchant_id = $1 AND list_id = $2 AND number = $3
			RETURNING generated`, list.MerchantID, list.ID, number, n).Scan(&generated); err != nil {
			return fmt.Errorf("db: advance batch: %w", err)
		}
		return nil
	})
	return generated, err
}

// FinishBatch implements core.BatchRunStore. A succeeded batch stays succeeded.
func (db *DB) FinishBatch(ctx context.Context, merchantID, listID uuid.UUID, number int, status core.BatchStatus, reason string) error {
	if _, err := db.pool.Exec(ctx, `UPDATE batches SET status = $4, error = $5, finished_at = now()
		WHERE merchant_id = $1 AND list_id = $2 AND number = $3 AND status <> 'succeeded'`,
		merchantID, listID, number, string(status), reason); err != nil {
		return fmt.Errorf("db: finish batch: %w", err)
	}
	return nil
}

// copyTo writes header, then runs a COPY … TO STDOUT and streams its output into w as it arrives,
// through a 64 KiB buffer (PostgreSQL sends one message per row; the buffer turns them into few
// large writes, and a COPY that fails at once fails before anything reached w).
func (db *DB) copyTo(ctx context.Context, w io.Writer, header, sql string) error {
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("db: acquire connection: %w", err)
	}
	defer conn.Release()
	bw := bufio.NewWriterSize(w, 64<<10)
	_, _ = bw.WriteString(header) // a bufio.Writer reports write errors on Flush
	if _, err := conn.Conn().PgConn().CopyTo(ctx, bw, sql); err != nil {
		return fmt.Errorf("db: copy out: %w", err)
	}
	return bw.Flush()
}

// quoteUUID is a uuid as an SQL literal (a uuid's text form has only hex digits and dashes).
func quoteUUID(id uuid.UUID) string { return "'" + id.String() + "'::uuid" }

// guardCode is an SQL expression that writes the code with a leading single quote when it starts
// with a character a spreadsheet reads as a formula (=, +, -, @), as the OWASP CSV-injection
// guidance says; the importer strips the quote back. It tests the C-collated lookup column with
// byte-range comparisons, which cost next to nothing per row (lower-casing never makes or unmakes
// one of these first characters, so lookup starts with one exactly when the code does).
const guardCode = `CASE WHEN lookup < 'A' AND (lookup >= '@' OR (lookup >= '=' AND lookup < '>')
	OR (lookup >= '+' AND lookup < ',') OR (lookup >= '-' AND lookup < '.')) THEN '''' || code ELSE code END`

// guardText is guardCode for a free-text column (recipient, campaign), which may also start with a
// tab, a carriage return or another control character; NULL and the empty string pass through untouched.
func guardText(col string) string {
	c := col + ` COLLATE "C"`
	return `CASE WHEN ` + col + ` IS NULL THEN NULL WHEN ` + c + ` < 'A' AND ((` + c + ` > '' AND ` + c + ` < ' ') OR ` + c + ` >= '@'
		OR (` + c + ` >= '=' AND ` + c + ` < '>') OR (` + c + ` >= '+' AND ` + c + ` < ',') OR (` + c + ` >= '-' AND ` + c + ` < '.'))
		THEN '''' || ` + col + ` ELSE ` + col + ` END`
}
