package core

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
)

// Sweeper timings.
const (
	// StallAfter is how old queued or running work must be before the sweeper enqueues it again.
	// Enqueueing work whose task is still waiting or running is harmless (task ids are derived
	// from the work), so this only keeps the sweeper from racing the first enqueue.
	StallAfter = 90 * time.Second
	// UploadTimeout is how long an upload may take before the sweeper declares it broken off.
	UploadTimeout = time.Hour
	// ImportDeadline is how long an import may stay queued or running before the sweeper gives up
	// on it: by then its task has failed every retry, and the import would otherwise stay running.
	ImportDeadline = 24 * time.Hour
	// sweepLimit bounds how much work one sweep enqueues again; the next sweep takes the rest.
	sweepLimit = 1000
)

// ImportRef names an import.
type ImportRef struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
}

// BatchRef names a batch.
type BatchRef struct {
	MerchantID uuid.UUID
	ListID     uuid.UUID
	Number     int
}

// WebhookReceipt is a platform webhook we received (a Shopify or WooCommerce call to our
// intake) as it is stored, verified, before the 2xx: the worker processes it from there. Its
// table keeps the name webhook_deliveries (a schema name, like the delivery_id log key).
type WebhookReceipt struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	Platform   string
	// Shop is the shop domain (Shopify) or the site URL (WooCommerce).
	Shop  string
	Topic string
	// EventKey is what duplicates are dropped on (unique per merchant, platform and shop).
	EventKey    string
	WebhookID   string
	TriggeredAt *time.Time
	Body        []byte
	// Compliance marks a mandatory privacy topic (Shopify's customers/data_request,
	// customers/redact, shop/redact), stored even for a shop no longer routed; the platform's
	// intake sets it.
	Compliance bool
	Status     string
	Error      string
	// ReceivedAt is when the gateway stored it (read with the worker's batches, for the
	// receive→apply delay operators watch).
	ReceivedAt time.Time
}

// WebhookRef names a stored row the sweeper queues again: a webhook receipt, a message delivery
// or a bulk send.
type WebhookRef struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	Platform   string
}

// SweepStore finds work whose task may have been lost. Its queries cross merchants.
type SweepStore interface {
	// StalledImports returns imports queued or running that were created before before, oldest
	// first, at most limit.
	StalledImports(ctx context.Context, before time.Time, limit int) ([]ImportRef, error)
	// StalledBatches returns batches queued or running that were created before before, oldest
	// first, at most limit.
	StalledBatches(ctx context.Context, before time.Time, limit int) ([]BatchRef, error)
	// FailStaleImports fails the imports in one of statuses that were created before before, with
	// message, deletes their stored files and returns how many it failed.
	FailStaleImports(ctx context.Context, statuses []ImportStatus, before time.Time, message string) (int64, error)
	// RecordExpirations records one list.expired event for every list whose expiry has passed at
	// now and was not recorded yet, and returns how many.
	RecordExpirations(ctx context.Context, now time.Time) (int64, error)
	// ListsPastAStockCrossing returns lists whose available count is below their stock state (a
	// crossing that two racing allocations both missed), at most limit.
	ListsPastAStockCrossing(ctx context.Context, limit int) ([]ListRef, error)
	// RecordStockCrossings records the list's stock crossings (see AllocationStore).
	RecordStockCrossings(ctx context.Context, merchantID, listID uuid.UUID) ([]string, error)
	// StalledWebhookReceipts returns webhook receipts still received (not processed) that
	// arrived before before, oldest first, at most limit.
	StalledWebhookReceipts(ctx context.Context, before time.Time, limit int) ([]WebhookRef, error)
	// PushesBehind returns pushes whose run stalled (pending or pushing, untouched since before)
	// and active pushes of connected shops with codes not submitted yet, at most limit.
	PushesBehind(ctx context.Context, before time.Time, limit int) ([]PushRef, error)
	// StalledDeliveries returns deliveries still queued and untouched since before (their send
	// task was lost), at most limit.
	StalledDeliveries(ctx context.Context, before time.Time, limit int) ([]WebhookRef, error)
	// ListsWithWaitingDeliveries returns lists with waiting deliveries, at most limit.
	ListsWithWaitingDeliveries(ctx context.Context, limit int) ([]ListRef, error)
	// StalledBulkSends returns bulk sends queued or running, untouched since before.
	StalledBulkSends(ctx context.Context, before time.Time, limit int) ([]WebhookRef, error)
}

// ListRef names a list.
type ListRef struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
}

// Sweeper does periodic upkeep: it enqueues again the imports, batches and webhook deliveries whose task was lost (a
// Redis that forgot it, an enqueue that failed after the row was written), fails uploads that
// never finished and imports that never end, records list expirations, and records the stock
// crossings that racing allocations both missed. Runners resume from their checkpoints, so enqueueing
// again is always safe.
type Sweeper struct {
	store SweepStore
	queue TaskQueue
	log   *slog.Logger
	Clock
}

// NewSweeper returns the sweeper.
func NewSweeper(store SweepStore, queue TaskQueue, log *slog.Logger) *Sweeper {
	return &Sweeper{store: store, queue: queue, log: log}
}

// Sweep runs one round of upkeep. It carries on past a failing step and returns every failure.
func (s *Sweeper) Sweep(ctx context.Context) error {
	now := s.Now().UTC()
	var errs []error
	for _, stale := range []struct {
		statuses []ImportStatus
		age      time.Duration
		message  string
	}{
		{[]ImportStatus{ImportUploading}, UploadTimeout, "upload did not finish"},
		{[]ImportStatus{ImportQueued, ImportRunning}, ImportDeadline, "the import did not finish within 24 hours; upload the file again"},
	} {
		failed, err := s.store.FailStaleImports(ctx, stale.statuses, now.Add(-stale.age), stale.message)
		if err != nil {
			errs = append(errs, err)
		} else if failed > 0 {
			s.log.WarnContext(ctx, "sweep: failed imports that did not finish", "count", failed, "reason", stale.message)
		}
	}

	imports, err := s.store.StalledImports(ctx, now.Add(-StallAfter), sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, imp := range imports {
		if err := s.queue.EnqueueImport(ctx, imp.MerchantID, imp.ID); err != nil {
			errs = append(errs, err)
			break // Redis is not answering: the next sweep tries again
		}
	}

	batches, err := s.store.StalledBatches(ctx, now.Add(-StallAfter), sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, b := range batches {
		if err := s.queue.EnqueueBatch(ctx, b.MerchantID, b.ListID, b.Number); err != nil {
			errs = append(errs, err)
			break
		}
	}
	// Webhook receipts are stored before they are queued; a merchant's receipts whose batch
	// task was not queued (or Redis forgot it), or that a batch left received, are queued again here.
	webhooks, err := s.store.StalledWebhookReceipts(ctx, now.Add(-StallAfter), sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	queuedMerchants := map[uuid.UUID]bool{}
	for _, w := range webhooks {
		if queuedMerchants[w.MerchantID] {
			continue
		}
		queuedMerchants[w.MerchantID] = true
		if err := s.queue.EnqueueWebhookBatch(ctx, w.MerchantID); err != nil {
			errs = append(errs, err)
			break
		}
	}
	// A push whose task was lost, or codes added while its last run was finishing.
	pushes, err := s.store.PushesBehind(ctx, now.Add(-StallAfter), sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range pushes {
		if err := s.queue.EnqueuePush(ctx, p.MerchantID, p.ListID, p.ConnectionID); err != nil {
			errs = append(errs, err)
			break
		}
	}
	// A queued delivery whose send task was lost (deliveries are stored before they are queued).
	deliveries, err := s.store.StalledDeliveries(ctx, now.Add(-StallAfter), sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, d := range deliveries {
		if err := s.queue.EnqueueSend(ctx, d.MerchantID, d.ID); err != nil {
			errs = append(errs, err)
			break
		}
	}
	jobs, err := s.store.StalledBulkSends(ctx, now.Add(-StallAfter), sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, j := range jobs {
		if err := s.queue.EnqueueBulkSend(ctx, j.MerchantID, j.ID); err != nil {
			errs = append(errs, err)
			break
		}
	}
	// Waiting deliveries: codes can become free without a change that tells them (a hold that
	// runs out, a code's window opening), so their lists are resumed on every sweep.
	waiting, err := s.store.ListsWithWaitingDeliveries(ctx, sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range waiting {
		if err := s.queue.EnqueueResumeDeliveries(ctx, l.MerchantID, l.ID); err != nil {
			errs = append(errs, err)
			break
		}
	}
	if len(imports)+len(batches)+len(webhooks)+len(pushes)+len(deliveries) > 0 {
		s.log.DebugContext(ctx, "sweep: enqueued pending work again", "imports", len(imports), "batches", len(batches),
			"webhooks", len(webhooks), "pushes", len(pushes))
	}

	if n, err := s.store.RecordExpirations(ctx, now); err != nil {
		errs = append(errs, err)
	} else if n > 0 {
		s.log.InfoContext(ctx, "sweep: recorded list expirations", "count", n)
	}
	lists, err := s.store.ListsPastAStockCrossing(ctx, sweepLimit)
	if err != nil {
		errs = append(errs, err)
	}
	for _, l := range lists {
		if _, err := s.store.RecordStockCrossings(ctx, l.MerchantID, l.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
