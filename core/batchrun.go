package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/google/uuid"
)

// DefaultBatchChunk is how many codes the batch runner generates and saves per transaction.
const DefaultBatchChunk = 20_000

// maxStalledRounds is how many chunks in a row may add no code at all before a batch is failed:
// under the 100x headroom rule a chunk loses about 1 % of its codes to collisions, so a chunk that
// adds nothing means the code space is full (codes were added to the list since the batch was
// checked, or the randomness source is broken).
const maxStalledRounds = 20

// BatchRunStore is what the batch runner needs from the store.
type BatchRunStore interface {
	// StartBatch returns the batch, marking it running when it was queued. A finished batch is
	// returned as it is.
	StartBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) (Batch, error)
	// AddBatchCodes adds codes to the list as codes of batch number, in one transaction that also
	// advances the batch's generated count (its checkpoint) by the number of codes added. It adds at
	// most as many codes as the batch still misses, skips codes whose lookup is already in the list,
	// and returns the batch's generated count after the transaction.
	AddBatchCodes(ctx context.Context, list List, number int, codes []string) (int64, error)
	// FinishBatch records the end of a batch: succeeded, or failed with a reason.
	FinishBatch(ctx context.Context, merchantID, listID uuid.UUID, number int, status BatchStatus, reason string) error
}

// BatchRunner generates batches in the worker.
//
// A batch is generated in chunks; each chunk is saved in one transaction together with the batch's
// generated count, so a restarted task resumes from the last saved chunk with the exact count and
// never a code twice. Codes that collide with codes already in the list (imported or generated)
// are simply not counted, and the next chunk draws again until count new codes exist.
type BatchRunner struct {
	lists ListStore
	store BatchRunStore
	log   *slog.Logger
	// Chunk is how many codes are saved per transaction (DefaultBatchChunk when 0).
	Chunk int
	// Rand is the randomness source (crypto/rand when nil); tests replace it.
	Rand io.Reader
	// Listener hears that the list gained codes (optional).
	Listener CodeListener
}

// NewBatchRunner returns the batch runner.
func NewBatchRunner(lists ListStore, store BatchRunStore, log *slog.Logger) *BatchRunner {
	return &BatchRunner{lists: lists, store: store, log: log}
}

// Run generates one batch to its end. It is idempotent: a finished batch returns nil at once, a
// half-done one resumes from its checkpoint. Errors that a retry may cure (the database, a
// cancelled context) are returned; a batch that cannot be completed is marked failed instead.
func (r *BatchRunner) Run(ctx context.Context, merchantID, listID uuid.UUID, number int) error {
	b, err := r.store.StartBatch(ctx, merchantID, listID, number)
	if errors.Is(err, ErrBatchNotFound) || errors.Is(err, ErrListNotFound) {
		r.log.InfoContext(ctx, "batch is gone; nothing to generate", "list_id", listID, "batch", number)
		return nil
	}
	if err != nil {
		return fmt.Errorf("start batch: %w", err)
	}
	if b.Status == BatchSucceeded || b.Status == BatchFailed {
		return nil
	}
	list, err := r.lists.GetList(ctx, merchantID, listID)
	if errors.Is(err, ErrListNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("load list: %w", err)
	}
	chunk := r.Chunk
	if chunk <= 0 {
		chunk = DefaultBatchChunk
	}
	gen := NewCodeGenerator(b.BatchSpec, r.Rand)
	codes := make([]string, 0, min(int64(chunk), b.Count))
	generated, stalled := b.Generated, 0
	for generated < b.Count {
		if err := ctx.Err(); err != nil {
			return err
		}
		codes = codes[:0]
		for n := min(int64(chunk), b.Count-generated); n > 0; n-- {
			c, err := gen.Next()
			if err != nil {
				return fmt.Errorf("draw random code: %w", err)
			}
			codes = append(codes, c)
		}
		now, err := r.store.AddBatchCodes(ctx, list, number, codes)
		if errors.Is(err, ErrListNotFound) || errors.Is(err, ErrBatchNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("save batch codes: %w", err)
		}
		if now <= generated {
			stalled++
			if stalled >= maxStalledRounds {
				reason := fmt.Sprintf("only %d of %d codes could be generated: the code space is too crowded; use a longer length or a larger charset", now, b.Count)
				r.log.WarnContext(ctx, "batch failed", "list_id", listID, "batch", number, "generated", now, "count", b.Count)
				return r.store.FinishBatch(ctx, merchantID, listID, number, BatchFailed, reason)
			}
		} else {
			stalled = 0
		}
		generated = now
	}
	if err := r.store.FinishBatch(ctx, merchantID, listID, number, BatchSucceeded, ""); err != nil {
		return fmt.Errorf("finish batch: %w", err)
	}
	r.log.InfoContext(ctx, "batch generated", "list_id", listID, "batch", number, "count", b.Count)
	notifyCodesChanged(ctx, r.Listener, r.log, merchantID, listID)
	return nil
}
