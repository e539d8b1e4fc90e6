package core

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
)

// BatchOutcome is what became of one delivery of a send batch (DeliveryStore.FinishDeliveries).
type BatchOutcome struct {
	ID uuid.UUID
	// Status is DeliverySent (with ProviderID), DeliveryFailed (Reason says why), or
	// DeliveryQueued: a passing failure, the delivery is sent again later (Reason says what
	// happened).
	Status     string
	ProviderID string
	Reason     string
}

// sendLanes is how many batches of one merchant send at once in a worker. A batch holds its lane
// from its first claim to its last outcome, so at most sendLanes groups of a merchant are claimed
// and not yet recorded at any time (a worker that stops leaves those failed, never sent twice),
// none waits claimed for a connection, and each lane has one of the merchant's SMTP connections
// (messaging.DefaultMailerConns).
const sendLanes = 4

// laneSet hands out the lanes of each merchant (a worker has few merchants sending at once; the
// map keeps one small channel for each merchant that ever sent).
type laneSet struct {
	mu sync.Mutex
	m  map[uuid.UUID]chan struct{}
}

// take waits for a lane of the merchant and returns its release.
func (l *laneSet) take(ctx context.Context, merchantID uuid.UUID) (func(), error) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[uuid.UUID]chan struct{})
	}
	c := l.m[merchantID]
	if c == nil {
		c = make(chan struct{}, sendLanes)
		l.m[merchantID] = c
	}
	l.mu.Unlock()
	select {
	case c <- struct{}{}:
		return func() { <-c }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// SendResult is the provider's answer to one message of a batch: its id for the message, or the
// error MessageSender.Send would have returned.
type SendResult struct {
	ProviderID string
	Err        error
}

// BatchMessageSender sends many messages at once through one merchant's channels: email over SMTP
// connections kept open and pipelined, SMS and push with requests in flight together. It answers
// each message as MessageSender.Send would, in the order given.
type BatchMessageSender interface {
	SendBatch(ctx context.Context, merchantID uuid.UUID, msgs []Message) []SendResult
}

// A batch is claimed, sent and recorded sendGroup deliveries at a time: a worker that stops
// mid-batch leaves at most one group sending (failed later, never sent twice, as a single send
// that stopped is). The outcomes of a group are recorded in the statement that claims the next.
const sendGroup = 32

// groupDeadline bounds the sends of one group, well inside StallAfter: a delivery claimed by a
// batch longer ago than that is taken for the remains of a stopped worker (Send).
const groupDeadline = 60 * time.Second

// SendBatch sends the queued deliveries among ids, a group at a time: each group is claimed in
// one statement (queued → sending, so that no other task sends them), composed, handed to the
// provider together (BatchMessageSender when the sender is one), and its outcomes recorded with
// the claim of the next group (the last group's on their own). Deliveries that are not queued
// (sent, failed, waiting, or being sent by another task) are left alone. Outcomes are those of
// Send: a refusal fails a delivery at once; a passing failure queues it again and is returned, so
// the task runs again for those (lastAttempt fails them instead).
func (s *DeliverySender) SendBatch(ctx context.Context, merchantID uuid.UUID, ids []uuid.UUID, lastAttempt bool) error {
	release, err := s.lanes.take(ctx, merchantID)
	if err != nil {
		return err // nothing claimed: the task runs again
	}
	defer release()
	var passing error
	var sent []BatchOutcome // the last group's outcomes, not yet recorded
	// record writes the outcomes on their own, even if the task's context ends now: a send that
	// is not recorded would be failed later although it went out.
	record := func() error {
		rec := context.WithoutCancel(ctx)
		err := retryWrite(func() error { return s.store.FinishDeliveries(rec, merchantID, sent) })
		sent = nil
		return err
	}
	for start := 0; start < len(ids); start += sendGroup {
		if err := ctx.Err(); err != nil {
			if rerr := record(); rerr != nil {
				return rerr
			}
			return err // the rest are still queued: the task runs again
		}
		claimed, err := s.store.ClaimDeliveries(ctx, merchantID, sent, ids[start:min(start+sendGroup, len(ids))])
		if err != nil {
			if len(sent) > 0 {
				if rerr := record(); rerr != nil {
					return rerr
				}
			}
			return err
		}
		sent = nil
		if len(claimed) == 0 {
			continue
		}
		sent, err = s.sendGroup(ctx, merchantID, claimed, lastAttempt)
		passing = laterRetry(passing, err)
	}
	if len(sent) > 0 {
		if err := record(); err != nil {
			return err
		}
	}
	return passing
}

// sendGroup composes and sends a claimed group and says what became of each delivery; the error
// is a passing failure of one of them (the one asking to wait longest).
func (s *DeliverySender) sendGroup(ctx context.Context, merchantID uuid.UUID, claimed []ClaimedDelivery, lastAttempt bool) ([]BatchOutcome, error) {
	outcomes := make([]BatchOutcome, len(claimed))
	msgs := make([]Message, 0, len(claimed))
	at := make([]int, 0, len(claimed)) // at[k] is the delivery of msgs[k]
	var passing error
	for i, d := range claimed {
		outcomes[i].ID = d.ID
		msg, reason, err := s.compose(ctx, merchantID, d)
		switch {
		case err != nil:
			outcomes[i].Status, outcomes[i].Reason = DeliveryQueued, err.Error()
			passing = laterRetry(passing, err)
		case reason != "":
			outcomes[i].Status, outcomes[i].Reason = DeliveryFailed, reason
		default:
			msgs = append(msgs, msg)
			at = append(at, i)
		}
	}
	if len(msgs) == 0 {
		return outcomes, passing
	}
	sendCtx, cancel := context.WithTimeout(ctx, groupDeadline)
	defer cancel()
	started := time.Now()
	results := s.sendMessages(sendCtx, merchantID, msgs)
	retried := 0
	for k, r := range results {
		i := at[k]
		outcomes[i] = s.outcome(ctx, claimed[i].Delivery, r.ProviderID, r.Err, lastAttempt)
		if outcomes[i].Status == DeliveryQueued {
			retried++
			passing = laterRetry(passing, r.Err)
		}
	}
	if retried > 0 {
		s.log.WarnContext(ctx, "deliveries of a batch will be retried", "count", retried, "of", len(msgs), "err", passing,
			"duration_ms", time.Since(started).Milliseconds())
	}
	return outcomes, passing
}

// sendMessages hands msgs to the provider: together when the sender sends batches, else one
// after the other.
func (s *DeliverySender) sendMessages(ctx context.Context, merchantID uuid.UUID, msgs []Message) []SendResult {
	if b, ok := s.sender.(BatchMessageSender); ok {
		return b.SendBatch(ctx, merchantID, msgs)
	}
	out := make([]SendResult, len(msgs))
	for i, m := range msgs {
		out[i].ProviderID, out[i].Err = s.sender.Send(ctx, merchantID, m)
	}
	return out
}

// laterRetry is the passing failure a batch returns: the one that asks to wait longest (a
// provider's Retry-After), else the first.
func laterRetry(kept, err error) error {
	if kept == nil {
		return err
	}
	if err != nil && retryAfter(err) > retryAfter(kept) {
		return err
	}
	return kept
}

func retryAfter(err error) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfter()
	}
	return 0
}
