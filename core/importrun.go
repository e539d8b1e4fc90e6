package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core/codefile"
)

// DefaultImportBatchSize is how many rows an import saves in one transaction: large enough that
// the per-statement cost disappears next to the rows, small enough that a batch (and a retried
// one) stays a fraction of a second and a few megabytes.
const DefaultImportBatchSize = 16_384

// ErrImportMoved is returned when an import's checkpoint is no longer the one a batch continues
// from: another run of the same import saved rows meanwhile. The batch is not saved; a retry
// resumes from the new checkpoint.
var ErrImportMoved = newError(KindConflict, "import_moved", "another run of this import saved rows meanwhile")

// ImportCode is a valid row of an import file.
type ImportCode struct {
	Line          int64
	Code          string
	AvailableFrom *time.Time
	AvailableTill *time.Time
	IssueStart    *time.Time
	IssueEnd      *time.Time
}

// ImportBatch is a run of rows of an import file, saved in one transaction together with the
// checkpoint after its last row, so that a restarted import neither loses nor repeats a row.
type ImportBatch struct {
	// Codes are the valid rows, in file order.
	Codes []ImportCode
	// Invalid is how many rows the reader rejected (bad code or bad date).
	Invalid int64
	// Errors are the reader's rejections for the report, in line order; the store keeps the first
	// MaxImportErrors of the import's rejections.
	Errors []RowError
	// After is the checkpoint the batch continues from: the import's LinesDone when it was read.
	After int64
	// LinesDone is the line of the batch's last row; BytesDone the file offset just after it.
	LinesDone int64
	BytesDone int64
}

// Rows is how many rows the batch holds.
func (b ImportBatch) Rows() int64 { return int64(len(b.Codes)) + b.Invalid }

// ImportRunStore is what the import runner needs from the store.
type ImportRunStore interface {
	// StartImport moves a queued import to running (keeping its first start time) and returns it;
	// an import in another state is returned as it is. ErrImportNotFound when it is gone.
	StartImport(ctx context.Context, merchantID, importID uuid.UUID) (Import, error)
	// OpenImportFile streams the stored upload back, fetching one piece at a time.
	OpenImportFile(ctx context.Context, merchantID, importID uuid.UUID) (io.ReadCloser, error)
	// SaveImportBatch adds the batch's codes to the list (Origin: the import's number) and, in the
	// same transaction, adds to the import's counters: rows, imported, duplicates in the file (the
	// code is already in the list from this import), duplicates in the list (from elsewhere),
	// invalid; appends rejections up to MaxImportErrors; and moves the checkpoint to the batch's
	// end. It returns the import as saved, or ErrImportMoved when the import's checkpoint is not
	// b.After (nothing is saved then).
	SaveImportBatch(ctx context.Context, imp Import, list List, b ImportBatch) (Import, error)
	// FinishImport ends a running import as succeeded and deletes its file.
	FinishImport(ctx context.Context, merchantID, importID uuid.UUID) error
	// FailImport ends an import with an error for the whole file and deletes its file.
	FailImport(ctx context.Context, merchantID, importID uuid.UUID, message string) error
}

// ImportRunner runs imports in the worker: it streams the stored file through the reader for its
// format and saves the rows in batches, each batch with its checkpoint, so a run that is killed
// and started again finishes with exact counts.
type ImportRunner struct {
	lists ListStore
	store ImportRunStore
	log   *slog.Logger
	// BatchSize is how many rows are saved per transaction (DefaultImportBatchSize when 0).
	BatchSize int
	// Listener hears that the list gained codes (optional).
	Listener CodeListener
}

// NewImportRunner returns the import runner.
func NewImportRunner(lists ListStore, store ImportRunStore, log *slog.Logger) *ImportRunner {
	return &ImportRunner{lists: lists, store: store, log: log, BatchSize: DefaultImportBatchSize}
}

// Run runs one import to its end, resuming after its checkpoint. An import that already ended, or
// no longer exists, is left alone. Problems with the file's content end the import as failed and
// return nil; anything else (the database, a cancelled context) returns an error so the task is
// retried.
func (r *ImportRunner) Run(ctx context.Context, merchantID, importID uuid.UUID) error {
	started := time.Now()
	imp, err := r.store.StartImport(ctx, merchantID, importID)
	if errors.Is(err, ErrImportNotFound) {
		r.log.WarnContext(ctx, "import gone before it ran", "import_id", importID)
		return nil
	}
	if err != nil {
		return err
	}
	if imp.Status != ImportRunning {
		r.log.InfoContext(ctx, "import not runnable, skipped", "import_id", importID, "status", imp.Status)
		return nil
	}
	list, err := r.lists.GetList(ctx, merchantID, imp.ListID)
	if errors.Is(err, ErrListNotFound) {
		return r.fail(ctx, imp, "the list was deleted")
	}
	if err != nil {
		return err
	}
	if list.Kind != KindUnique {
		return r.fail(ctx, imp, "a fixed list holds its one code; imports are for unique lists")
	}
	r.log.InfoContext(ctx, "import running", "import_id", imp.ID, "list_id", imp.ListID, "number", imp.Number,
		"format", imp.Format, "size_bytes", imp.SizeBytes, "resume_after_line", imp.LinesDone)

	file, err := r.store.OpenImportFile(ctx, merchantID, importID)
	if err != nil {
		return err
	}
	defer file.Close()
	var rows *codefile.Reader
	if imp.Format == FormatText {
		rows = codefile.NewText(file, CheckCode)
	} else {
		rows = codefile.NewCSV(file, CheckCode)
	}

	size := r.BatchSize
	if size <= 0 {
		size = DefaultImportBatchSize
	}
	b := ImportBatch{After: imp.LinesDone, Codes: make([]ImportCode, 0, size)}
	for {
		row, err := rows.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var fe *codefile.FileError
			switch {
			case errors.Is(err, codefile.ErrNoCodeColumn):
				return r.fail(ctx, imp, err.Error())
			case errors.As(err, &fe):
				return r.fail(ctx, imp, "the file cannot be read on from "+fe.Error())
			}
			if r.endedElsewhere(ctx, merchantID, importID) {
				// Another run (a task delivered twice, or queued again by the sweeper) finished or
				// failed the import, and deleted its file, while this one read it.
				r.log.InfoContext(ctx, "import ended by another run meanwhile", "import_id", importID)
				return nil
			}
			return fmt.Errorf("read import file: %w", err)
		}
		if row.Line <= imp.LinesDone {
			continue // saved by an earlier run
		}
		if row.Reason == "" {
			b.Codes = append(b.Codes, ImportCode{Line: row.Line, Code: row.Code, AvailableFrom: row.AvailableFrom,
				AvailableTill: row.AvailableTill, IssueStart: row.IssueStart, IssueEnd: row.IssueEnd})
		} else {
			b.Invalid++
			if len(imp.Errors)+len(b.Errors) < MaxImportErrors {
				b.Errors = append(b.Errors, RowError{Line: row.Line, Code: reportCode(row.Code), Reason: row.Reason})
			}
		}
		b.LinesDone, b.BytesDone = row.Line, rows.Offset()
		if b.Rows() >= int64(size) {
			if imp, err = r.store.SaveImportBatch(ctx, imp, list, b); err != nil {
				return err
			}
			b = ImportBatch{After: imp.LinesDone, Codes: b.Codes[:0]}
		}
	}
	if b.Rows() > 0 {
		if imp, err = r.store.SaveImportBatch(ctx, imp, list, b); err != nil {
			return err
		}
	}
	if err := r.store.FinishImport(ctx, merchantID, importID); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "import succeeded", "import_id", imp.ID, "rows", imp.Rows, "imported", imp.Imported,
		"duplicates_in_file", imp.DuplicatesInFile, "duplicates_in_list", imp.DuplicatesInList, "invalid", imp.Invalid,
		"duration_ms", time.Since(started).Milliseconds())
	notifyCodesChanged(ctx, r.Listener, r.log, merchantID, imp.ListID)
	return nil
}

// endedElsewhere reports whether the import has ended, or is gone, since this run started it.
func (r *ImportRunner) endedElsewhere(ctx context.Context, merchantID, importID uuid.UUID) bool {
	imp, err := r.store.StartImport(ctx, merchantID, importID) // a running import is answered as it is
	return errors.Is(err, ErrImportNotFound) || (err == nil && imp.Status != ImportRunning)
}

// fail ends the import with message for the whole file.
func (r *ImportRunner) fail(ctx context.Context, imp Import, message string) error {
	if err := r.store.FailImport(ctx, imp.MerchantID, imp.ID, message); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "import failed", "import_id", imp.ID, "reason", message)
	return nil
}

// reportCode makes a rejected row's text safe to keep and show: valid UTF-8 without control
// characters, at most 100 characters (longer text is cut and marked with an ellipsis).
func reportCode(s string) string { return cut(printableText(s), 100) }

// printableText is s as valid UTF-8 with control characters replaced by U+FFFD.
func printableText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

// cut shortens s to n characters, marking a cut with an ellipsis.
func cut(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}
