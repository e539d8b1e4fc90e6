package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/core"
)

// TypeWebhookBatch applies a merchant's stored platform webhook receipts (Shopify and
// WooCommerce order events, uninstalls, compliance requests), many per transaction, until none
// is left (core.WebhookBatches).
const TypeWebhookBatch = "platform-webhooks:batch"

// WebhookBatchPayload names the merchant whose receipts are applied.
type WebhookBatchPayload struct {
	MerchantID uuid.UUID `json:"merchant_id"`
}

// WebhookBatchRunner applies a merchant's receipts still received (core.WebhookBatches).
type WebhookBatchRunner interface {
	Run(ctx context.Context, merchantID uuid.UUID) error
}

// webhookMarkTTL bounds how long a mark stays up without a task reading after it: a mark whose
// task was never queued (a process that stopped between the two) or was lost (a Redis master
// failed before its replica had the task, or the task holding the merchant's lock failed on a
// Redis that was failing over) holds back new tasks this long at most; the sweeper queues one
// for receipts older than core.StallAfter in any case. A running batch lowers the mark before
// each read, so the mark outlives it only while a queued task waits for a worker: then the next
// receipt after ten seconds queues one more task, which finds the merchant's lock taken or
// nothing to read.
const webhookMarkTTL = 10 * time.Second

// webhookMarkKey is the merchant's webhook mark (core.WebhookSignals), hash-tagged by merchant.
func webhookMarkKey(merchantID uuid.UUID) string {
	return "cg:webhooks:{" + merchantID.String() + "}"
}

var _ core.WebhookSignals = (*Queue)(nil)

// NewWebhookBatchTask is the batch task queued with the mark named token: on the merchant's
// webhooks-N queue, one per mark, retried 25 times, an hour an attempt.
func NewWebhookBatchTask(merchantID uuid.UUID, token string) Task {
	return Task{Type: TypeWebhookBatch, Payload: WebhookBatchPayload{MerchantID: merchantID},
		ID: "platform-webhooks:" + merchantID.String() + ":" + token, Queue: WebhookQueue(merchantID),
		Options: []asynq.Option{asynq.MaxRetry(25), asynq.Timeout(time.Hour)}}
}

// EnqueueWebhookBatch implements core.TaskQueue, shopify.WebhookQueue and woocommerce.WebhookQueue:
// it raises the merchant's webhook mark and, when the mark was down, queues a batch task, named
// after the mark it raised. While the mark is up a task that has not read yet is queued (or the
// task holding the merchant's lock will look at the mark), so a burst of receipts costs one SET
// each and one task per batch read.
func (q *Queue) EnqueueWebhookBatch(ctx context.Context, merchantID uuid.UUID) error {
	token := uuid.NewString()
	raised, err := q.rdb.SetNX(ctx, webhookMarkKey(merchantID), token, webhookMarkTTL).Result()
	if err != nil {
		return fmt.Errorf("raise webhook mark: %w", err)
	}
	if !raised {
		return nil
	}
	err = q.enqueue(ctx, NewWebhookBatchTask(merchantID, token))
	if err != nil {
		// No task behind the mark: lower it (when it is still ours) so the next receipt queues one.
		_ = q.rdb.Eval(context.WithoutCancel(ctx), `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`,
			[]string{webhookMarkKey(merchantID)}, token).Err()
	}
	return err
}

// RaiseWebhookMark implements core.WebhookSignals.
func (q *Queue) RaiseWebhookMark(ctx context.Context, merchantID uuid.UUID) error {
	return q.rdb.Set(ctx, webhookMarkKey(merchantID), "batch", webhookMarkTTL).Err()
}

// LowerWebhookMark implements core.WebhookSignals.
func (q *Queue) LowerWebhookMark(ctx context.Context, merchantID uuid.UUID) error {
	return q.rdb.Del(ctx, webhookMarkKey(merchantID)).Err()
}

// WebhookMarkRaised implements core.WebhookSignals.
func (q *Queue) WebhookMarkRaised(ctx context.Context, merchantID uuid.UUID) (bool, error) {
	n, err := q.rdb.Exists(ctx, webhookMarkKey(merchantID)).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	return n > 0, err
}

// runWebhookBatch is TypeWebhookBatch's handler.
func runWebhookBatch(r WebhookBatchRunner) func(context.Context, WebhookBatchPayload) error {
	return func(ctx context.Context, p WebhookBatchPayload) error { return r.Run(ctx, p.MerchantID) }
}
