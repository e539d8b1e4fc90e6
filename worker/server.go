package worker

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Deps are the worker's collaborators; every field is required.
type Deps struct {
	Log   *slog.Logger
	Redis asynq.RedisConnOpt
	// QueuePrefix goes before the name of every queue served and scheduled into (QUEUE_PREFIX),
	// as before those of the Queue that feeds it (NewPrefixedQueue): a worker takes no task of
	// another prefix. Empty for the plain names.
	QueuePrefix string
	Concurrency int
	Shutdown    time.Duration
	Imports     ImportRunner
	Batches     BatchRunner
	Sweeper     Sweeper
	// WebhookBatches applies merchants' stored platform webhook deliveries, Shopify's and
	// WooCommerce's, a batch at a time (optional: without it the task types are not routed).
	WebhookBatches WebhookBatchRunner
	// SweepEvery is how often the scheduler enqueues the sweep (default one minute).
	SweepEvery time.Duration
	// Pushes, Reconciler and Disconnector do the connections' work (optional).
	Pushes       PushRunner
	Reconciler   Reconciler
	Disconnector Disconnector
	// ConnectFinisher finishes WooCommerce app authorizations (optional).
	ConnectFinisher ConnectFinisher
	// Sends and Resumes deliver codes by message (optional).
	Sends   DeliverySender
	Resumes DeliveryResumer
	Jobs    BulkSendRunner
	// Events and Webhooks send events out to merchants' endpoints and alert addresses
	// (optional); DispatchEvery is how often new events are looked for (default 2 s).
	Events        EventDispatcher
	Webhooks      WebhookDeliverer
	DispatchEvery time.Duration
	// ReconcileEvery is how often every connection's orders are reconciled (default 15 minutes).
	ReconcileEvery time.Duration
	// Tracer, when set, makes a span of every task, continuing the trace its headers carry
	// (optional: nil when tracing is off).
	Tracer trace.Tracer
}

// TaskIDFrom returns the asynq task id carried by ctx, for logs.
func TaskIDFrom(ctx context.Context) string {
	id, _ := asynq.GetTaskID(ctx)
	return id
}

// NewMux routes every task type to its handler (each in its task type's file), with tracing and
// logging around each task. The optional collaborators that are nil leave their task types
// unrouted.
func NewMux(d Deps) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	if d.Tracer != nil {
		mux.Use(traceTasks(d.Tracer))
	}
	mux.Use(logTasks(d.Log))
	handle(mux, TypeImportRun, runImport(d.Imports))
	handle(mux, TypeBatchGenerate, runBatch(d.Batches))
	handle(mux, TypeSweep, runSweep(d.Sweeper))
	if d.WebhookBatches != nil {
		handle(mux, TypeWebhookBatch, runWebhookBatch(d.WebhookBatches))
		handle(mux, TypeShopifyWebhook, runLegacyWebhook(d.WebhookBatches))
		handle(mux, TypeWooCommerceWebhook, runLegacyWebhook(d.WebhookBatches))
	}
	if d.Pushes != nil {
		handle(mux, TypePushRun, runPush(d.Pushes))
	}
	if d.Reconciler != nil {
		handle(mux, TypeReconcile, runReconcile(d.Reconciler))
		handle(mux, TypeReconcileAll, runReconcileAll(d.Reconciler))
	}
	if d.Sends != nil {
		handle(mux, TypeDeliverySend, runDeliverySend(d.Sends))
		// A sender that sends batches gets the bulk sends' batch tasks too.
		if b, ok := d.Sends.(DeliveryBatchSender); ok {
			handle(mux, TypeDeliverySendBatch, runDeliveryBatch(b))
		}
	}
	if d.Jobs != nil {
		handle(mux, TypeBulkSend, runBulkSend(d.Jobs))
	}
	if d.Resumes != nil {
		handle(mux, TypeDeliveryResume, runDeliveryResume(d.Resumes))
	}
	if d.Events != nil {
		handle(mux, TypeDispatchEvents, runDispatchEvents(d.Events))
		handle(mux, TypeAlertSend, runAlertSend(d.Events))
	}
	if d.Webhooks != nil {
		handle(mux, TypeWebhookSend, runWebhookSend(d.Webhooks))
	}
	if d.ConnectFinisher != nil {
		handle(mux, TypeFinishConnect, runFinishConnect(d.ConnectFinisher))
	}
	if d.Disconnector != nil {
		handle(mux, TypeDisconnect, runDisconnect(d.Disconnector))
	}
	return mux
}

// logTasks logs each task's end: a failure at warn, a success at info, except the periodic
// upkeep (event dispatch every two seconds, the sweep, the reconciliation round), whose routine
// successes are at debug so that an idle worker is quiet. The task id is not added here: the
// process logger adds it from the context (app.NewLogger), once.
func logTasks(log *slog.Logger) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			start := time.Now()
			retry, _ := asynq.GetRetryCount(ctx)
			err := next.ProcessTask(ctx, t)
			attrs := []any{"task_type", t.Type(), "retry", retry, "duration_ms", time.Since(start).Milliseconds()}
			if err != nil {
				log.WarnContext(ctx, "task failed", append(attrs, "err", err)...)
				return err
			}
			level := slog.LevelInfo
			if periodic[t.Type()] {
				level = slog.LevelDebug
			}
			log.Log(ctx, level, "task done", attrs...)
			return nil
		})
	}
}

// traceTasks makes a consumer span of each task, named by its type, child of the span whose
// traceparent the task's headers carry (the request or task that queued it), or a new trace.
func traceTasks(tracer trace.Tracer) asynq.MiddlewareFunc {
	return func(next asynq.Handler) asynq.Handler {
		return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
			if h := t.Headers(); len(h) > 0 {
				ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(h))
			}
			retry, _ := asynq.GetRetryCount(ctx)
			queue, _ := asynq.GetQueueName(ctx)
			ctx, span := tracer.Start(ctx, t.Type(), trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
				attribute.String("messaging.system", "asynq"), attribute.String("messaging.destination.name", queue),
				attribute.String("coupongate.task.type", t.Type()), attribute.Int("coupongate.task.retry", retry)))
			err := next.ProcessTask(ctx, t)
			if err != nil {
				span.SetStatus(codes.Error, "task failed")
			}
			span.End()
			return err
		})
	}
}

// periodic are the task types the scheduler enqueues on a timer.
var periodic = map[string]bool{TypeDispatchEvents: true, TypeSweep: true, TypeReconcileAll: true}

// Run serves tasks and runs the scheduler until ctx is cancelled, then shuts both down gracefully:
// running tasks get Shutdown to finish, after which asynq hands them back to the queue.
func Run(ctx context.Context, d Deps) error {
	if d.SweepEvery <= 0 {
		d.SweepEvery = time.Minute
	}
	srv := asynq.NewServer(d.Redis, asynq.Config{
		Concurrency:     d.Concurrency,
		Queues:          PrefixedQueues(d.QueuePrefix),
		ShutdownTimeout: d.Shutdown,
		BaseContext:     func() context.Context { return context.WithoutCancel(ctx) },
		Logger:          asynqLogger{d.Log},
		LogLevel:        asynq.WarnLevel,
		RetryDelayFunc:  retryDelay,
		IsFailure:       isFailure,
		// An idle worker looks for new tasks five times a second rather than asynq's once, so an
		// import or a batch starts within 200 ms of its upload (one cheap Redis script per look).
		TaskCheckInterval: 200 * time.Millisecond,
	})
	sched := asynq.NewScheduler(d.Redis, &asynq.SchedulerOpts{Logger: asynqLogger{d.Log}, LogLevel: asynq.WarnLevel})
	// Every worker runs a scheduler; the unique option keeps a single sweep per interval.
	if err := schedule(sched, d.QueuePrefix, d.SweepEvery, NewSweepTask(d.SweepEvery)); err != nil {
		return fmt.Errorf("register sweep: %w", err)
	}
	if d.Reconciler != nil {
		if d.ReconcileEvery <= 0 {
			d.ReconcileEvery = 15 * time.Minute
		}
		if err := schedule(sched, d.QueuePrefix, d.ReconcileEvery, NewReconcileAllTask(d.ReconcileEvery)); err != nil {
			return fmt.Errorf("register reconciliation: %w", err)
		}
	}
	if d.Events != nil {
		if d.DispatchEvery <= 0 {
			d.DispatchEvery = 2 * time.Second
		}
		if err := schedule(sched, d.QueuePrefix, d.DispatchEvery, NewDispatchEventsTask(d.DispatchEvery)); err != nil {
			return fmt.Errorf("register event dispatch: %w", err)
		}
	}
	if err := srv.Start(NewMux(d)); err != nil {
		return fmt.Errorf("start asynq server: %w", err)
	}
	if err := sched.Start(); err != nil {
		srv.Shutdown()
		return fmt.Errorf("start scheduler: %w", err)
	}
	d.Log.InfoContext(ctx, "worker started", "concurrency", d.Concurrency)
	<-ctx.Done()
	d.Log.Info("worker shutting down")
	sched.Shutdown()
	srv.Shutdown()
	d.Log.Info("worker stopped")
	return nil
}

// schedule registers a periodic task to be queued every interval on its queue under prefix (it
// continues no trace).
func schedule(sched *asynq.Scheduler, prefix string, every time.Duration, t Task) error {
	t.Queue = prefix + t.Queue
	task, err := t.Asynq(context.Background())
	if err != nil {
		return err
	}
	_, err = sched.Register(fmt.Sprintf("@every %s", every), task)
	return err
}

// asynqLogger adapts slog to asynq's logger.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
