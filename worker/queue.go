package worker

// This file holds Queue, the asynq client that core enqueues through; its Enqueue methods live
// with their task types.

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	// prefix goes before every queue name (QUEUE_PREFIX), as the worker's (Deps.QueuePrefix).
	prefix string
}

var _ core.TaskQueue = (*Queue)(nil)

// NewQueue returns a queue on the given Redis connection options, its queues named as Queues
// names them.
func NewQueue(opt asynq.RedisConnOpt) *Queue { return NewPrefixedQueue(opt, "") }

// NewPrefixedQueue returns a queue whose tasks go to the queues PrefixedQueues(prefix) names, the
// ones a worker with the same Deps.QueuePrefix serves, and no other.
func NewPrefixedQueue(opt asynq.RedisConnOpt, prefix string) *Queue {
	rdb, _ := opt.MakeRedisClient().(redis.UniversalClient)
	return &Queue{client: asynq.NewClient(opt), inspector: asynq.NewInspector(opt), rdb: rdb, prefix: prefix}
}

// Name is the name asynq knows queue by (QueueBulk, SendQueue(id), …): the queue's prefix and it.
func (q *Queue) Name(queue string) string { return q.prefix + queue }

// Stats reads this queue's asynq queues, named without the prefix: what the operators' queue
// metrics show (metrics.QueueInspector) and what a test waits on to drain.
func (q *Queue) Stats() QueueStats { return QueueStats{inspector: q.inspector, prefix: q.prefix} }

// QueueStats reads the asynq queues of one prefix, those PrefixedQueues names. Queues of other
// prefixes on the same Redis (another installation's, another test harness's) are not its own:
// it neither lists nor reads them, even when one prefix begins another.
type QueueStats struct {
	inspector *asynq.Inspector
	prefix    string
}

// Queues are the names, without the prefix, of the prefix's queues that hold or held tasks.
func (s QueueStats) Queues() ([]string, error) {
	all, err := s.inspector.Queues()
	if err != nil {
		return nil, err
	}
	served := PrefixedQueues(s.prefix)
	own := make([]string, 0, len(served))
	for _, name := range all {
		if _, ok := served[name]; ok {
			own = append(own, strings.TrimPrefix(name, s.prefix))
		}
	}
	return own, nil
}

// GetQueueInfo is asynq's information on the prefix's queue named queue (without the prefix),
// which it names without the prefix too.
func (s QueueStats) GetQueueInfo(queue string) (*asynq.QueueInfo, error) {
	info, err := s.inspector.GetQueueInfo(s.prefix + queue)
	if err != nil {
		return nil, err
	}
	info.Queue = queue
	return info, nil
}

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
	t.Queue = q.Name(t.Queue)
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
