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
// transaction allocates their codes and stores their deliveries (BulkSendStore.DeliverChunk), as
// DecideChunk decides.
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
	// CreatedAt is the chunk's time: its deliveries are created, its codes handed out and the
	// list's dates checked at it.
	CreatedAt time.Time
}

// AllocationItems are the chunk's recipients as allocation requests, in its order: each takes the
// first free code the store found (position 0), through the job's channel, by the job.
func (c DeliveryChunk) AllocationItems() []AllocationBatchItem {
	items := make([]AllocationBatchItem, len(c.Recipients))
	for i, r := range c.Recipients {
		rr := r.Recipient()
		items[i] = AllocationBatchItem{RecipientKey: RecipientKey(rr),
			Req: AllocationRequest{Recipient: rr, Campaign: c.Campaign, Channel: string(c.Channel), Actor: c.Actor}}
	}
	return items
}

// ChunkLedger is what a chunk is decided on: its list's allocation ledger, read as for the
// chunk's recipients' allocations, and the deliveries of the list, channel and campaign they have
// already, by their index in the chunk (as stored, with the chunk's job).
type ChunkLedger struct {
	*AllocationLedger
	Existing map[int]Delivery
}

// CodesWanted is how many free codes of a unique list the chunk's recipients will take, decided
// on what the ledger read besides the codes: none when the list hands out nothing or its one
// code is a fixed list's, else one for each recipient who has no delivery and is handed back no
// code. The store locks that many before it decides (too many would keep them from others until
// the commit).
func (l *ChunkLedger) CodesWanted(c DeliveryChunk) int {
	if l.refusal(c.CreatedAt) != "" || l.List.Kind != KindUnique {
		return 0
	}
	n := 0
	for i, r := range c.Recipients {
		_, has := l.Existing[i]
		if !has && !l.withinWindow(RecipientCampaign{RecipientKey: DeliveryKey(r), Campaign: c.Campaign}, c.CreatedAt) {
			n++
		}
	}
	return n
}

// ChunkDecision is what a chunk does: the result to answer, and the allocation decisions the
// store persists with it (one for each recipient, in the chunk's order; the zero decision for one
// who keeps a delivery).
type ChunkDecision struct {
	ChunkResult
	Allocations []AllocationDecision
}

// DecideChunk decides a chunk of a bulk send, at its CreatedAt:
//
//   - a list that does not exist, is archived, has not started or has expired refuses the whole
//     chunk, and nothing is stored;
//   - a recipient who has a delivery of the list on the channel for the campaign keeps it (a
//     rerun of the chunk, a request made before) and is handed no code;
//   - every other recipient is decided as an allocation is (AllocationLedger.Decide: a code
//     handed back within the reassign window, a fixed list's code up to max_assignments, the
//     first issuable code the store found) and gets a new delivery: queued with the code, or
//     waiting for one when the list has none to give.
//
// Available is the list's count after the chunk, and LastSeq the last position handed out.
func DecideChunk(l *ChunkLedger, c DeliveryChunk) ChunkDecision {
	now := c.CreatedAt
	if refusal := l.refusal(now); refusal != "" {
		return ChunkDecision{ChunkResult: ChunkResult{Outcome: refusal}}
	}
	n := len(c.Recipients)
	out := ChunkDecision{ChunkResult: ChunkResult{Outcome: OutcomeOK, Deliveries: make([]Delivery, n), Created: make([]bool, n)},
		Allocations: make([]AllocationDecision, n)}
	for i, it := range c.AllocationItems() {
		if d, ok := l.Existing[i]; ok {
			out.Deliveries[i] = d
			continue
		}
		a := l.Decide(it, now)
		out.Allocations[i] = a
		jobID := c.JobID
		d := Delivery{MerchantID: c.MerchantID, ID: c.IDs[i], ListID: c.ListID, JobID: &jobID, Channel: c.Channel,
			TemplateID: c.TemplateID, Campaign: c.Campaign, Recipient: c.Recipients[i], Status: DeliveryWaiting, CreatedAt: now}
		if a.Outcome == OutcomeOK {
			d.Status, d.Seq, d.Code = DeliveryQueued, a.Seq, a.Code
		}
		if a.Take {
			out.LastSeq = max(out.LastSeq, a.Seq)
		}
		out.Deliveries[i], out.Created[i] = d, true
	}
	out.Available, out.LowStockThreshold, out.StockState = l.Available, l.List.LowStockThreshold, l.StockState
	return out
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
// transaction (DecideChunk decides them), then queues their sends in batches. A recipient who had a delivery already is
// answered as a request made again is (Deliveries.existing): a failed one is sent again with its
// code, a queued one has its send queued (again). It returns how many rows it refused, and moves
// next, the job's own hint of where the list's free codes are, past the codes it handed out.
//
// The chunk's send batches are named after the job and the chunk's last row, so a rerun of the
// chunk queues each at most once more while the first is waiting or running.
func (s *BulkSends) deliverChunk(ctx context.Context, j BulkSend, chunk []DeliveryInput, lastRow int64, next *atomic.Int64) (int64, error) {
	var refused int64
	in := DeliveryChunk{MerchantID: j.MerchantID, ListID: j.ListID, JobID: j.ID, Channel: j.Channel, TemplateID: j.TemplateID,
		Campaign: j.Campaign, Actor: "delivery_job:" + j.ID.String(), CreatedAt: s.deliveries.Now().UTC().Truncate(time.Microsecond)}
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
	res, err := s.store.DeliverChunk(ctx, in, func(l *ChunkLedger) ChunkDecision { return DecideChunk(l, in) })
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
