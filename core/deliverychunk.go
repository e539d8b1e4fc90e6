package core

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DeliveryChunk is a chunk of a bulk send's recipients, handed to the store at once: one
// statement allocates their codes and stores their deliveries (BulkSendStore.DeliverChunk).
type DeliveryChunk struct {
	MerchantID, ListID, JobID uuid.UUID
	Channel                   Channel
	TemplateID                uuid.UUID
	Campaign, Actor           string
	// Start is the first position of the chunk's range of the list's allocation cursor, where its
	// codes are looked for first; 0 looks from the start of the list.
	Start int64
	// Recipients are normalized and distinct by DeliveryKey; IDs[i] is the id the delivery of
	// Recipients[i] gets if this call stores it.
	Recipients []MessageRecipient
	IDs        []uuid.UUID
	CreatedAt  time.Time
}

// ChunkResult is what DeliverChunk did.
type ChunkResult struct {
	// Outcome is OutcomeOK, or the list's refusal (OutcomeListNotFound, …) when nothing was done.
	Outcome string
	// Deliveries are the recipients' deliveries as stored now, in the order of the chunk;
	// Created[i] says this call stored Deliveries[i] (else the recipient had it already).
	Deliveries []Delivery
	Created    []bool
	// Available is the list's available count after the chunk, beside its low-stock threshold and
	// the stock state last recorded: core records a crossing from them.
	Available, LowStockThreshold int64
	StockState                   string
	// LastSeq is the last position the chunk handed out (0: none).
	LastSeq int64
}

// PositionRange reserves a range of a list's allocation cursor (the AllocationCursor's
// positions): a chunk of a job looks for its codes there first, so the API's allocations, which
// draw positions one by one, do not meet them. It is only a hint, as the cursor is.
type PositionRange interface {
	// Range reserves n positions and returns the first.
	Range(ctx context.Context, listID uuid.UUID, n int64) (int64, error)
}

// Sends of a job's chunk are queued sendBatchSize deliveries to a task.
const sendBatchSize = 128

// maxRecipientKey is the longest recipient key Allocate accepts.
const maxRecipientKey = 320

// deliverChunk allocates codes to the chunk's recipients and stores their deliveries in one
// statement, then queues their sends in batches. A recipient who had a delivery already is
// answered as a request made again is (Deliveries.existing): a failed one is sent again with its
// code, a queued one has its send queued (again). It returns how many rows it refused, and moves
// next, the job's own hint of where the list's free codes are, past the codes it handed out.
//
// The chunk's send batches are named after the job and the chunk's last row, so a rerun of the
// chunk queues each at most once more while the first is waiting or running.
func (s *BulkSends) deliverChunk(ctx context.Context, j BulkSend, chunk []DeliveryInput, lastRow int64, next *atomic.Int64) (int64, error) {
	var refused int64
	in := DeliveryChunk{MerchantID: j.MerchantID, ListID: j.ListID, JobID: j.ID, Channel: j.Channel, TemplateID: j.TemplateID,
		Campaign: j.Campaign, Actor: "delivery_job:" + j.ID.String(), CreatedAt: s.deliveries.Now().UTC()}
	seen := make(map[string]bool, len(chunk))
	for _, c := range chunk {
		key := DeliveryKey(c.Recipient)
		switch {
		case seen[key]:
			continue // named twice in the chunk: one delivery
		case key == "" || utf8.RuneCountInString(key) > maxRecipientKey:
			refused++ // as Allocate refuses it
			continue
		}
		seen[key] = true
		in.Recipients = append(in.Recipients, c.Recipient)
		in.IDs = append(in.IDs, uuid.New())
	}
	if len(in.Recipients) == 0 {
		return refused, nil
	}
	// The chunk looks for codes from its range of the cursor, or after the last code the job took
	// when the cursor is behind that (reset, or Redis not answering).
	in.Start = next.Load()
	if s.Positions != nil {
		if pos, err := s.Positions.Range(ctx, j.ListID, int64(len(in.Recipients))); err != nil {
			s.log.WarnContext(ctx, "allocation cursor unavailable; the job looks for codes after its last", "err", err)
		} else {
			in.Start = max(pos, in.Start)
		}
	}
	res, err := s.store.DeliverChunk(ctx, in)
	if err != nil {
		return refused, err
	}
	switch res.Outcome {
	case OutcomeOK:
	case OutcomeListNotFound:
		return refused, ErrListNotFound
	case OutcomeListArchived:
		return refused, ErrListArchived
	case OutcomeListNotStarted:
		return refused, ErrListNotStarted
	case OutcomeListExpired:
		return refused, ErrListExpired
	default:
		return refused, &Error{Kind: KindInternal, Code: "internal_error", Message: "unexpected chunk outcome " + res.Outcome}
	}
	for v := next.Load(); res.LastSeq >= v && !next.CompareAndSwap(v, res.LastSeq+1); v = next.Load() {
	}
	sends := make([]uuid.UUID, 0, len(res.Deliveries))
	waiting := false
	for i, d := range res.Deliveries {
		if !res.Created[i] && d.Status == DeliveryFailed && d.Code != "" {
			// Asked for again: sent again with the same code (the merchant fixed the channel).
			retried, err := s.deliveries.store.RetryDelivery(ctx, d.MerchantID, d.ID)
			if err != nil {
				return refused, err
			}
			if retried {
				d.Status = DeliveryQueued
			}
		}
		switch d.Status {
		case DeliveryQueued:
			sends = append(sends, d.ID)
		case DeliveryWaiting:
			waiting = waiting || res.Created[i]
		}
	}
	s.recordStock(ctx, j, res, waiting)
	for b := 0; b*sendBatchSize < len(sends); b++ {
		batch := sends[b*sendBatchSize : min((b+1)*sendBatchSize, len(sends))]
		if err := s.queue.EnqueueSendBatch(ctx, j.MerchantID, fmt.Sprintf("%s:%d:%d", j.ID, lastRow, b), batch); err != nil {
			// Stored: the sweeper queues stalled deliveries; the task is retried meanwhile.
			return refused, Unavailable("redis", err)
		}
	}
	return refused, nil
}

// recordStock records the low-stock and exhausted crossings the chunk made, as the Allocator
// does after an allocation: only when the counts suggest one; RecordStockCrossings records each
// crossing once however many notice it, and the sweeper catches any that all missed.
func (s *BulkSends) recordStock(ctx context.Context, j BulkSend, res ChunkResult, exhausted bool) {
	crossing := exhausted || (res.Available < res.LowStockThreshold && res.StockState == "ok") ||
		(res.Available <= 0 && res.StockState != "out")
	if !crossing {
		return
	}
	events, err := s.store.RecordStockCrossings(context.WithoutCancel(ctx), j.MerchantID, j.ListID)
	if err != nil {
		s.log.WarnContext(ctx, "stock crossing not recorded yet; the sweeper will", "err", err)
		return
	}
	for _, e := range events {
		s.log.InfoContext(ctx, "stock event", "type", e, "list_id", j.ListID)
	}
}
