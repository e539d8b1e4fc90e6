package worker

// This file holds Queue, the asynq client that core enqueues through; its Enqueue methods live
// with their task types.

import (
	"context"
	"errors"
	"fmt"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/core"
)

// Queue enqueues tasks on asynq; it implements core.TaskQueue. It also keeps the merchants'
// webhook marks (core.WebhookSignals), which say when a batch task must be queued.
type Queue struct {
	client    *asynq.Client
	inspector *asynq.Inspector
	rdb       redis.UniversalClient
}

var _ core.TaskQueue = (*Queue)(nil)

// NewQueue returns a queue on the given Redis connection options.
func NewQueue(opt asynq.RedisConnOpt) *Queue {
	rdb, _ := opt.MakeRedisClient().(redis.UniversalClient)
	return &Queue{client: asynq.NewClient(opt), inspector: asynq.NewInspector(opt), rdb: rdb}
}

// Inspector is the queue's asynq inspector (the operators' queue metrics read it).
func (q *Queue) Inspector() *asynq.Inspector { return q.inspector }

// Close closes the Redis connections.
func (q *Queue) Close() error {
	_ = q.inspector.Close()
	if q.rdb != nil {
		_ = q.rdb.Close()
	}
	return q.client.Close()
}

// enqueue sends a task with a deterministic id (t.ID) on its queue. A task with that id already
// waiting or running counts as enqueued; one that asynq keeps only as a record (archived after
// its last retry, or completed) would block the id, so it is deleted and the task enqueued again.
func (q *Queue) enqueue(ctx context.Context, t Task) error {
	task, err := t.Asynq(ctx)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		_, err = q.client.EnqueueContext(ctx, task)
		if errors.Is(err, asynq.ErrDuplicateTask) {
			return nil
		}
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			return err
		}
		info, ierr := q.inspector.GetTaskInfo(t.Queue, t.ID)
		if ierr != nil || attempt > 0 || (info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted) {
			return nil // waiting, scheduled, retrying or running: it will do the work
		}
		if derr := q.inspector.DeleteTask(t.Queue, t.ID); derr != nil && !errors.Is(derr, asynq.ErrTaskNotFound) {
			return fmt.Errorf("enqueue %s: delete the archived task: %w", t.ID, derr)
		}
	}
}
