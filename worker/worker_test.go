package worker

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/internal/dbtest"
)

var env dbtest.Env

func TestMain(m *testing.M) { dbtest.Main(m, &env) }

func TestEnqueueTwiceIsOneTask(t *testing.T) {
	t.Parallel()
	opt, err := asynq.ParseRedisURI(env.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(opt)
	defer q.Close()
	ctx := context.Background()
	merchant, imp := uuid.New(), uuid.New()
	for i := 0; i < 3; i++ {
		if err := q.EnqueueImport(ctx, merchant, imp); err != nil {
			t.Fatalf("enqueue %d: %v", i, err)
		}
		if err := q.EnqueueBatch(ctx, merchant, imp, 7); err != nil {
			t.Fatalf("enqueue batch %d: %v", i, err)
		}
	}
	inspector := asynq.NewInspector(opt)
	defer inspector.Close()
	tasks, err := inspector.ListPendingTasks(QueueBulk)
	if err != nil {
		t.Fatal(err)
	}
	// Other tests share the queue: count the tasks of this test's import only.
	mine := 0
	for _, task := range tasks {
		if strings.Contains(task.ID, imp.String()) {
			mine++
		}
	}
	if mine != 2 {
		t.Fatalf("%d pending tasks after enqueueing two tasks three times each, want 2", mine)
	}
}

// TestArchivedTaskDoesNotBlockItsID: a push whose task used up its retries (archived, a record
// asynq keeps for months) can be enqueued again; one that is waiting is not enqueued twice.
func TestArchivedTaskDoesNotBlockItsID(t *testing.T) {
	t.Parallel()
	opt, err := asynq.ParseRedisURI(env.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(opt)
	defer q.Close()
	inspector := asynq.NewInspector(opt)
	defer inspector.Close()
	ctx := context.Background()
	merchant, list, conn := uuid.New(), uuid.New(), uuid.New()
	id := "push:" + list.String() + ":" + conn.String()
	if err := q.EnqueuePush(ctx, merchant, list, conn); err != nil {
		t.Fatal(err)
	}
	if err := inspector.ArchiveTask(QueueBulk, id); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := q.EnqueuePush(ctx, merchant, list, conn); err != nil {
			t.Fatalf("enqueue after archive: %v", err)
		}
	}
	info, err := inspector.GetTaskInfo(QueueBulk, id)
	if err != nil || info.State != asynq.TaskStatePending {
		t.Fatalf("the push after its archived task: %v, %v", info, err)
	}
	archived, err := inspector.ListArchivedTasks(QueueBulk)
	if err != nil || len(archived) != 0 {
		t.Fatalf("archived tasks left: %d (%v)", len(archived), err)
	}
}
