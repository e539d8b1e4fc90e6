package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// importChunkSize is the size of the pieces an upload is stored in.
const importChunkSize = 1 << 20

var (
	_ core.ImportStore    = (*DB)(nil)
	_ core.ImportRunStore = (*DB)(nil)
	_ core.SweepStore     = (*DB)(nil)
)

const importCols = `merchant_id, id, list_id, number, status, format, filename, size_bytes, rows, imported,
	duplicates_in_file, duplicates_in_list, invalid, errors, error, bytes_done, lines_done, actor, created_at,
	started_at, finished_at`

// scanImport reads a row selected with importCols, plus any extra destinations after them.
func scanImport(row pgx.Row, extra ...any) (core.Import, error) {
	var imp core.Import
	var status, format string
	var errs []byte
	dest := append([]any{&imp.MerchantID, &imp.ID, &imp.ListID, &imp.Number, &status, &format, &imp.Filename,
		&imp.SizeBytes, &imp.Rows, &imp.Imported, &imp.DuplicatesInFile, &imp.DuplicatesInList, &imp.Invalid, &errs,
		&imp.Error, &imp.BytesDone, &imp.LinesDone, &imp.Actor, &imp.CreatedAt, &imp.StartedAt, &imp.FinishedAt}, extra...)
	if err := row.Scan(dest...); err != nil {
		return core.Import{}, err
	}
	imp.Status, imp.Format = core.ImportStatus(status), core.ImportFormat(format)
	imp.Errors = []core.RowError{}
	if err := json.Unmarshal(errs, &imp.Errors); err != nil {
		return core.Import{}, fmt.Errorf("db: import errors: %w", err)
	}
	imp.CreatedAt = imp.CreatedAt.UTC()
	imp.StartedAt, imp.FinishedAt = ptrUTC(imp.StartedAt), ptrUTC(imp.FinishedAt)
	return imp, nil
}

// CreateImport implements core.ImportStore: the import takes the list's next import number.
func (db *DB) CreateImport(ctx context.Context, imp *core.Import) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `UPDATE code_lists SET next_import = next_import + 1
			WHERE merchant_id = $1 AND id = $2 RETURNING next_import - 1`, imp.MerchantID, imp.ListID).Scan(&imp.Number); err != nil {
			return notFound(err, core.ErrListNotFound)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO imports (merchant_id, id, list_id, number, status, format, filename, actor, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			imp.MerchantID, imp.ID, imp.ListID, imp.Number, string(imp.Status), string(imp.Format), imp.Filename, imp.Actor,
			imp.CreatedAt.UTC()); err != nil {
			return fmt.Errorf("db: insert import: %w", err)
		}
		return nil
	})
}

// WriteImportFile implements core.ImportStore: r is read in 1 MiB pieces, each stored as it
// arrives, so neither the gateway nor PostgreSQL holds more than a piece of an upload at once. A
// body cut by http.MaxBytesReader or longer than limit is core.ErrUploadTooLarge; one that breaks
// off is a 400.
func (db *DB) WriteImportFile(ctx context.Context, merchantID, importID uuid.UUID, r io.Reader, limit int64) (int64, error) {
	return db.writeChunks(ctx, `INSERT INTO import_chunks (merchant_id, import_id, n, data) VALUES ($1, $2, $3, $4)`, merchantID, importID, r, limit)
}

// writeChunks stores an upload in 1 MiB pieces with insert (taking merchant, owner id, piece
// number and bytes), and returns its size; it stops with ErrUploadTooLarge past limit bytes.
func (db *DB) writeChunks(ctx context.Context, insert string, merchantID, ownerID uuid.UUID, r io.Reader, limit int64) (int64, error) {
	buf := make([]byte, importChunkSize)
	var size int64
	for n := 0; ; n++ {
		k, err := fill(r, buf)
		size += int64(k)
		if size > limit {
			return size, core.ErrUploadTooLarge
		}
		if err != nil && !errors.Is(err, io.EOF) {
			// The upload is refused, so the piece read before the break is not stored (and a
			// client that went away has cancelled ctx by now).
			return size, uploadError(ctx, err)
		}
		if k > 0 {
			if _, err := db.pool.Exec(ctx, insert, merchantID, ownerID, n, buf[:k]); err != nil {
				return size, fmt.Errorf("db: write upload chunk: %w", err)
			}
		}
		if err != nil {
			return size, nil // io.EOF: the whole upload is stored
		}
	}
}

// uploadError says why reading an upload failed: too large, cut off (a body shorter than its
// Content-Length or a multipart body without its end is a 400, even when the client has gone), or
// ctx's error.
func uploadError(ctx context.Context, err error) error {
	var maxErr *http.MaxBytesError
	var coreErr *core.Error
	switch {
	case errors.As(err, &maxErr):
		return core.ErrUploadTooLarge
	case errors.As(err, &coreErr):
		return err
	case errors.Is(err, io.ErrUnexpectedEOF):
		return core.Malformed("the upload broke off: " + err.Error())
	case ctx.Err() != nil:
		return ctx.Err()
	default:
		return core.Malformed("the upload broke off: " + err.Error())
	}
}

// fill reads into buf until it is full or r ends; err is r's error (io.EOF at the end).
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		k, err := r.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// MarkImportQueued implements core.ImportStore.
func (db *DB) MarkImportQueued(ctx context.Context, merchantID, importID uuid.UUID, size int64) error {
	tag, err := db.pool.Exec(ctx, `UPDATE imports SET status = 'queued', size_bytes = $3
		WHERE merchant_id = $1 AND id = $2 AND status = 'uploading'`, merchantID, importID, size)
	if err != nil {
		return fmt.Errorf("db: queue import: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return core.ErrImportNotFound
	}
	return nil
}

// Domain events recorded when an import ends, in the transaction that ends it.
const (
	EventImportSucceeded = "import.succeeded"
	EventImportFailed    = "import.failed"
)

// endedImportEvent is the tail of a statement that ends imports: for every import its CTE "ended"
// returns, one domain event with the import's report; typeParam is the placeholder holding the
// event's type.
func endedImportEvent(typeParam string) string {
	return `INSERT INTO domain_events (merchant_id, type, list_id, payload)
		SELECT merchant_id, ` + typeParam + `, list_id, jsonb_build_object('import_id', id, 'number', number, 'rows', rows,
			'imported', imported, 'duplicates_in_file', duplicates_in_file, 'duplicates_in_list', duplicates_in_list,
			'invalid', invalid, 'error', error)
		FROM ended`
}

// FailImport implements core.ImportRunStore: an import that has not ended
// fails with message (recording import.failed), and its file goes.
func (db *DB) FailImport(ctx context.Context, merchantID, importID uuid.UUID, message string) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `WITH ended AS (
				UPDATE imports SET status = 'failed', error = $3, finished_at = now()
				WHERE merchant_id = $1 AND id = $2 AND status IN ('uploading', 'queued', 'running')
				RETURNING merchant_id, id, list_id, number, rows, imported, duplicates_in_file, duplicates_in_list, invalid, error)
			`+endedImportEvent("$4::text"), merchantID, importID, message, EventImportFailed); err != nil {
			return fmt.Errorf("db: fail import: %w", err)
		}
		return deleteChunks(ctx, tx, merchantID, importID)
	})
}

// DiscardImport implements core.ImportStore: an import still uploading goes with its pieces, and
// the list takes its number back when no later import has taken the next one.
func (db *DB) DiscardImport(ctx context.Context, merchantID, importID uuid.UUID) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if err := deleteChunks(ctx, tx, merchantID, importID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `WITH gone AS (
				DELETE FROM imports WHERE merchant_id = $1 AND id = $2 AND status = 'uploading'
				RETURNING list_id, number)
			UPDATE code_lists l SET next_import = l.next_import - 1 FROM gone
			WHERE l.merchant_id = $1 AND l.id = gone.list_id AND l.next_import = gone.number + 1`, merchantID, importID); err != nil {
			return fmt.Errorf("db: discard import: %w", err)
		}
		return nil
	})
}

func deleteChunks(ctx context.Context, tx pgx.Tx, merchantID, importID uuid.UUID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM import_chunks WHERE merchant_id = $1 AND import_id = $2`, merchantID, importID); err != nil {
		return fmt.Errorf("db: delete import file: %w", err)
	}
	return nil
}

// listTotalSQL is the list's total (every code not removed), from its counter shards.
const listTotalSQL = `(SELECT coalesce(sum(available + delivered + redeemed), 0) FROM list_counters
	WHERE merchant_id = $1 AND list_id = $2)`

// GetImport implements core.ImportStore.
func (db *DB) GetImport(ctx context.Context, merchantID, listID, importID uuid.UUID) (core.Import, error) {
	var total int64
	imp, err := scanImport(db.pool.QueryRow(ctx, `SELECT `+importCols+`, `+listTotalSQL+`
		FROM imports WHERE merchant_id = $1 AND list_id = $2 AND id = $3`, merchantID, listID, importID), &total)
	if err != nil {
		return core.Import{}, notFound(err, core.ErrImportNotFound)
	}
	imp.ListTotal = total
	return imp, nil
}

// ListImports implements core.ImportStore: newest first, keyed on the import's number.
func (db *DB) ListImports(ctx context.Context, merchantID, listID uuid.UUID, page core.Page) ([]core.Import, string, error) {
	var after struct {
		N int `json:"n"`
	}
	before := math.MaxInt32 // numbers are integer
	if page.Cursor != "" {
		if err := decodeCursor(page.Cursor, &after); err != nil {
			return nil, "", err
		}
		before = after.N
	}
	rows, err := db.pool.Query(ctx, `SELECT `+importCols+`, `+listTotalSQL+` FROM imports
		WHERE merchant_id = $1 AND list_id = $2 AND number < $3 ORDER BY number DESC LIMIT $4`,
		merchantID, listID, before, page.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("db: list imports: %w", err)
	}
	defer rows.Close()
	out := []core.Import{}
	for rows.Next() {
		var total int64
		imp, err := scanImport(rows, &total)
		if err != nil {
			return nil, "", fmt.Errorf("db: list imports: %w", err)
		}
		imp.ListTotal = total
		out = append(out, imp)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("db: list imports: %w", err)
	}
	next := ""
	if len(out) > page.Limit {
		out = out[:page.Limit]
		after.N = out[len(out)-1].Number
		next = encodeCursor(after)
	}
	return out, next, nil
}

// StartImport implements core.ImportRunStore.
func (db *DB) StartImport(ctx context.Context, merchantID, importID uuid.UUID) (core.Import, error) {
	imp, err := scanImport(db.pool.QueryRow(ctx, `UPDATE imports SET status = 'running', started_at = coalesce(started_at, now())
		WHERE merchant_id = $1 AND id = $2 AND status IN ('queued', 'running') RETURNING `+importCols, merchantID, importID))
	if errors.Is(err, pgx.ErrNoRows) {
		imp, err = scanImport(db.pool.QueryRow(ctx, `SELECT `+importCols+` FROM imports WHERE merchant_id = $1 AND id = $2`,
			merchantID, importID))
	}
	if err != nil {
		return core.Import{}, notFound(err, core.ErrImportNotFound)
	}
	return imp, nil
}

// OpenImportFile implements core.ImportRunStore: the returned reader fetches one stored piece at a
// time, and fails when the pieces end before the recorded size.
func (db *DB) OpenImportFile(ctx context.Context, merchantID, importID uuid.UUID) (io.ReadCloser, error) {
	var size int64
	if err := db.pool.QueryRow(ctx, `SELECT size_bytes FROM imports WHERE merchant_id = $1 AND id = $2`,
		merchantID, importID).Scan(&size); err != nil {
		return nil, notFound(err, core.ErrImportNotFound)
	}
	return &chunkReader{ctx: ctx, db: db, merchantID: merchantID, importID: importID, size: size,
		query: `SELECT data FROM import_chunks WHERE merchant_id = $1 AND import_id = $2 AND n = $3`}, nil
}

// chunkReader reads an upload back piece by piece; size < 0 reads until a piece is missing.
type chunkReader struct {
	ctx        context.Context
	db         *DB
	merchantID uuid.UUID
	importID   uuid.UUID
	query      string
	size, read int64
	next       int
	cur        []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.cur) == 0 {
		if c.size >= 0 && c.read >= c.size {
			return 0, io.EOF
		}
		err := c.db.pool.QueryRow(c.ctx, c.query, c.merchantID, c.importID, c.next).Scan(&c.cur)
		if errors.Is(err, pgx.ErrNoRows) && c.size < 0 {
			return 0, io.EOF
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("db: import file ends at %d of %d bytes: %w", c.read, c.size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			return 0, fmt.Errorf("db: read import file: %w", err)
		}
		c.next++
	}
	n := copy(p, c.cur)
	c.cur = c.cur[n:]
	c.read += int64(n)
	return n, nil
}

func (c *chunkReader) Close() error {
	c.cur = nil
	return nil
}

// SaveImportBatch implements core.ImportRunStore.
func (db *DB) SaveImportBatch(ctx context.Context, imp core.Import, list core.List, b core.ImportBatch) (core.Import, error) {
	codes := make([]NewCode, len(b.Codes))
	for i, c := range b.Codes {
		codes[i] = NewCode{Code: c.Code, AvailableFrom: c.AvailableFrom, AvailableTill: c.AvailableTill,
			IssueStart: c.IssueStart, IssueEnd: c.IssueEnd}
	}
	var out core.Import
	err := db.tx(ctx, func(tx pgx.Tx) error {
		inserted, err := db.insertCodes(ctx, tx, list, codes, Origin{ImportNo: imp.Number})
		if err != nil {
			return err
		}
		var imported int64
		var rejected []string
		for i, ok := range inserted {
			if ok {
				imported++
			} else {
				rejected = append(rejected, list.Lookup(b.Codes[i].Code))
			}
		}
		// A code the list already holds from this very import is a duplicate inside the file (an
		// earlier row, in this batch or a saved one); from anywhere else, a duplicate in the list.
		fromThisImport := map[string]bool{}
		if len(rejected) > 0 {
			rows, err := tx.Query(ctx, `SELECT lookup FROM codes WHERE merchant_id = $1 AND list_id = $2
				AND lookup = ANY($3::text[]) AND import_no = $4`, list.MerchantID, list.ID, rejected, imp.Number)
			if err != nil {
				return fmt.Errorf("db: classify duplicates: %w", err)
			}
			lookups, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("db: classify duplicates: %w", err)
			}
			for _, l := range lookups {
				fromThisImport[l] = true
			}
		}
		var inFile, inList int64
		room := core.MaxImportErrors - len(imp.Errors)
		dups := make([]core.RowError, 0, min(len(rejected), max(room, 0)))
		for i, ok := range inserted {
			if ok {
				continue
			}
			c := b.Codes[i]
			reason := core.ReasonDuplicateInList
			if fromThisImport[list.Lookup(c.Code)] {
				reason = core.ReasonDuplicateInFile
				inFile++
			} else {
				inList++
			}
			if len(dups) < room {
				dups = append(dups, core.RowError{Line: c.Line, Code: c.Code, Reason: reason})
			}
		}
		errs, err := json.Marshal(mergeByLine(b.Errors, dups, room))
		if err != nil {
			return err
		}
		out, err = scanImport(tx.QueryRow(ctx, `UPDATE imports SET
				rows = rows + $4, imported = imported + $5, duplicates_in_file = duplicates_in_file + $6,
				duplicates_in_list = duplicates_in_list + $7, invalid = invalid + $8,
				errors = errors || coalesce((SELECT jsonb_agg(e ORDER BY o) FROM jsonb_array_elements($9::text::jsonb)
					WITH ORDINALITY AS t(e, o) WHERE o <= $10 - jsonb_array_length(imports.errors)), '[]'::jsonb),
				lines_done = $11, bytes_done = $12
			WHERE merchant_id = $1 AND id = $2 AND status = 'running' AND lines_done = $3
			RETURNING `+importCols,
			imp.MerchantID, imp.ID, b.After, b.Rows(), imported, inFile, inList, b.Invalid, string(errs),
			core.MaxImportErrors, b.LinesDone, b.BytesDone))
		if errors.Is(err, pgx.ErrNoRows) {
			return core.ErrImportMoved
		}
		if err != nil {
			return fmt.Errorf("db: save import progress: %w", err)
		}
		return nil
	})
	if err != nil {
		return core.Import{}, err
	}
	return out, nil
}

// mergeByLine merges two line-ordered lists of rejections and keeps the first limit.
func mergeByLine(a, b []core.RowError, limit int) []core.RowError {
	out := make([]core.RowError, 0, max(min(len(a)+len(b), limit), 0))
	for len(out) < limit && (len(a) > 0 || len(b) > 0) {
		if len(b) == 0 || (len(a) > 0 && a[0].Line <= b[0].Line) {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return out
}

// FinishImport implements core.ImportRunStore: the import succeeds (recording import.succeeded)
// and its file goes.
func (db *DB) FinishImport(ctx context.Context, merchantID, importID uuid.UUID) error {
	return db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `WITH ended AS (
				UPDATE imports SET status = 'succeeded', finished_at = now(), bytes_done = size_bytes
				WHERE merchant_id = $1 AND id = $2 AND status = 'running'
				RETURNING merchant_id, id, list_id, number, rows, imported, duplicates_in_file, duplicates_in_list, invalid, error)
			`+endedImportEvent("$3::text"), merchantID, importID, EventImportSucceeded); err != nil {
			return fmt.Errorf("db: finish import: %w", err)
		}
		return deleteChunks(ctx, tx, merchantID, importID)
	})
}

// StalledImports implements core.SweepStore.
func (db *DB) StalledImports(ctx context.Context, before time.Time, limit int) ([]core.ImportRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, id FROM imports
		WHERE status IN ('queued', 'running') AND created_at < $1 ORDER BY created_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("db: stalled imports: %w", err)
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[core.ImportRef])
	if err != nil {
		return nil, fmt.Errorf("db: stalled imports: %w", err)
	}
	return refs, nil
}

// StalledBatches implements core.SweepStore.
func (db *DB) StalledBatches(ctx context.Context, before time.Time, limit int) ([]core.BatchRef, error) {
	rows, err := db.pool.Query(ctx, `SELECT merchant_id, list_id, number FROM batches
		WHERE status IN ('queued', 'running') AND created_at < $1 ORDER BY created_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("db: stalled batches: %w", err)
	}
	refs, err := pgx.CollectRows(rows, pgx.RowToStructByPos[core.BatchRef])
	if err != nil {
		return nil, fmt.Errorf("db: stalled batches: %w", err)
	}
	return refs, nil
}

// FailStaleImports implements core.SweepStore, in one statement (recording import.failed).
func (db *DB) FailStaleImports(ctx context.Context, statuses []core.ImportStatus, before time.Time, message string) (int64, error) {
	names := make([]string, len(statuses))
	for i, s := range statuses {
		names[i] = string(s)
	}
	var n int64
	err := db.pool.QueryRow(ctx, `WITH ended AS (
			UPDATE imports SET status = 'failed', error = $2, finished_at = now()
			WHERE status = ANY($4::text[]) AND created_at < $1
			RETURNING merchant_id, id, list_id, number, rows, imported, duplicates_in_file, duplicates_in_list, invalid, error),
		gone AS (
			DELETE FROM import_chunks c USING ended f WHERE c.merchant_id = f.merchant_id AND c.import_id = f.id),
		events AS (`+endedImportEvent("$3::text")+`)
		SELECT count(*) FROM ended`, before, message, EventImportFailed, names).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("db: fail stale imports: %w", err)
	}
	return n, nil
}
