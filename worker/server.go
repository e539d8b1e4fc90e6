package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/coupongate/coupongate/core"
)

// ImportRunner runs one import to its end, resuming from its checkpoint.
type ImportRunner interface {
	Run(ctx context.Context, merchantID, importID uuid.UUID) error
}

// BatchRunner generates one batch to its end, resuming from its checkpoint.
type BatchRunner interface {
	Run(ctx context.Context, merchantID, listID uuid.UUID, number int) error
}

// Sweeper does the periodic upkeep: re-enqueues work whose task was lost, expires holds, records
// expiry events.
type Sweeper interface {
	Sweep(ctx context.Context) error
}

// PushRunner runs one push of a list's codes to a connection until every code is in the shop.
type PushRunner interface {
	RunPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error
}

// Reconciler fetches a connection's recently updated orders; ReconcileAll queues that for every
// active connection.
type Reconciler interface {
	Reconcile(ctx context.Context, merchantID, connectionID uuid.UUID) error
	ReconcileAll(ctx context.Context) error
}

// Disconnector removes a disconnected connection's platform webhooks and credentials.
type Disconnector interface {
	Disconnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// DeliverySender sends one delivery; lastAttempt says a passing failure now fails it.
type DeliverySender interface {
	Send(ctx context.Context, merchantID, deliveryID uuid.UUID, lastAttempt bool) error
}

// DeliveryJobRunner reads a CSV of recipients into deliveries, from its checkpoint.
type DeliveryJobRunner interface {
	Run(ctx context.Context, merchantID, jobID uuid.UUID) error
}

// DeliveryResumer gives a list's waiting deliveries the codes that arrived.
type DeliveryResumer interface {
	Resume(ctx context.Context, merchantID, listID uuid.UUID) error
}

// EventDispatcher hands new events out (Dispatch) and emails stock alerts (SendAlert).
type EventDispatcher interface {
	Dispatch(ctx context.Context) error
	SendAlert(ctx context.Context, merchantID uuid.UUID, eventID int64, lastAttempt bool) error
}

// WebhookDeliverer makes one attempt of a webhook message.
type WebhookDeliverer interface {
	Deliver(ctx context.Context, ref core.MessageRef, attempt int) error
}

// ConnectFinisher creates a newly authorized store's webhooks.
type ConnectFinisher interface {
	FinishConnect(ctx context.Context, merchantID, connectionID uuid.UUID) error
}

// Deps are the worker's collaborators; every field is required.
type Deps struct {
	Log         *slog.Logger
	Redis       asynq.RedisConnOpt
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
	Jobs    DeliveryJobRunner
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

// NewMux routes task types to handlers, with logging around each task.
func NewMux(d Deps) *asynq.ServeMux {
	mux := asynq.NewServeMux()
	if d.Tracer != nil {
		mux.Use(traceTasks(d.Tracer))
	}
	mux.Use(logTasks(d.Log))
	mux.HandleFunc(TypeImportRun, func(ctx context.Context, t *asynq.Task) error {
		var p ImportPayload
		if err := decode(t, &p); err != nil {
			return err
		}
		return d.Imports.Run(ctx, p.MerchantID, p.ImportID)
	})
	mux.HandleFunc(TypeBatchGenerate, func(ctx context.Context, t *asynq.Task) error {
		var p BatchPayload
		if err := decode(t, &p); err != nil {
			return err
		}
		return d.Batches.Run(ctx, p.MerchantID, p.ListID, p.Number)
	})
	mux.HandleFunc(TypeSweep, func(ctx context.Context, _ *asynq.Task) error {
		return d.Sweeper.Sweep(ctx)
	})
	handleWebhookBatches(mux, d)
	if d.Pushes != nil {
		mux.HandleFunc(TypePushRun, func(ctx context.Context, t *asynq.Task) error {
			var p PushPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			return d.Pushes.RunPush(ctx, p.MerchantID, p.ListID, p.ConnectionID)
		})
	}
	if d.Reconciler != nil {
		mux.HandleFunc(TypeReconcile, func(ctx context.Context, t *asynq.Task) error {
			var p ConnectionPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			return d.Reconciler.Reconcile(ctx, p.MerchantID, p.ConnectionID)
		})
		mux.HandleFunc(TypeReconcileAll, func(ctx context.Context, _ *asynq.Task) error {
			return d.Reconciler.ReconcileAll(ctx)
		})
	}
	if d.Sends != nil {
		mux.HandleFunc(TypeDeliverySend, func(ctx context.Context, t *asynq.Task) error {
			var p DeliveryPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			retried, _ := asynq.GetRetryCount(ctx)
			max, _ := asynq.GetMaxRetry(ctx)
			return d.Sends.Send(ctx, p.MerchantID, p.DeliveryID, retried >= max)
		})
	}
	handleSendBatches(mux, d)
	if d.Jobs != nil {
		mux.HandleFunc(TypeDeliveryJob, func(ctx context.Context, t *asynq.Task) error {
			var p JobPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			return d.Jobs.Run(ctx, p.MerchantID, p.JobID)
		})
	}
	if d.Resumes != nil {
		mux.HandleFunc(TypeDeliveryResume, func(ctx context.Context, t *asynq.Task) error {
			var p ListPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			return d.Resumes.Resume(ctx, p.MerchantID, p.ListID)
		})
	}
	if d.Events != nil {
		mux.HandleFunc(TypeDispatchEvents, func(ctx context.Context, _ *asynq.Task) error {
			return d.Events.Dispatch(ctx)
		})
		mux.HandleFunc(TypeAlertSend, func(ctx context.Context, t *asynq.Task) error {
			var p AlertPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			retried, _ := asynq.GetRetryCount(ctx)
			max, _ := asynq.GetMaxRetry(ctx)
			return d.Events.SendAlert(ctx, p.MerchantID, p.EventID, retried >= max)
		})
	}
	if d.Webhooks != nil {
		mux.HandleFunc(TypeWebhookSend, func(ctx context.Context, t *asynq.Task) error {
			var p MessagePayload
			if err := decode(t, &p); err != nil {
				return err
			}
			retried, _ := asynq.GetRetryCount(ctx)
			return d.Webhooks.Deliver(ctx, core.MessageRef{MerchantID: p.MerchantID, EndpointID: p.EndpointID, MessageID: p.MessageID}, retried)
		})
	}
	if d.ConnectFinisher != nil {
		mux.HandleFunc(TypeFinishConnect, func(ctx context.Context, t *asynq.Task) error {
			var p ConnectionPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			return d.ConnectFinisher.FinishConnect(ctx, p.MerchantID, p.ConnectionID)
		})
	}
	if d.Disconnector != nil {
		mux.HandleFunc(TypeDisconnect, func(ctx context.Context, t *asynq.Task) error {
			var p ConnectionPayload
			if err := decode(t, &p); err != nil {
				return err
			}
			return d.Disconnector.Disconnect(ctx, p.MerchantID, p.ConnectionID)
		})
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
		Queues:          Queues(),
		ShutdownTimeout: d.Shutdown,
		BaseContext:     func() context.Context { return context.WithoutCancel(ctx) },
		Logger:          asynqLogger{d.Log},
		LogLevel:        asynq.WarnLevel,
		RetryDelayFunc:  retryDelay,
		// An idle worker looks for new tasks five times a second rather than asynq's once, so an
		// import or a batch starts within 200 ms of its upload (one cheap Redis script per look).
		TaskCheckInterval: 200 * time.Millisecond,
	})
	sched := asynq.NewScheduler(d.Redis, &asynq.SchedulerOpts{Logger: asynqLogger{d.Log}, LogLevel: asynq.WarnLevel})
	// Every worker runs a scheduler; the unique option keeps a single sweep per interval.
	if _, err := sched.Register(fmt.Sprintf("@every %s", d.SweepEvery), asynq.NewTask(TypeSweep, nil),
		asynq.Queue(QueueMaintenance), asynq.Unique(d.SweepEvery-time.Second), asynq.MaxRetry(0), asynq.Timeout(d.SweepEvery)); err != nil {
		return fmt.Errorf("register sweep: %w", err)
	}
	if d.Reconciler != nil {
		if d.ReconcileEvery <= 0 {
			d.ReconcileEvery = 15 * time.Minute
		}
		if _, err := sched.Register(fmt.Sprintf("@every %s", d.ReconcileEvery), asynq.NewTask(TypeReconcileAll, nil),
			asynq.Queue(QueueMaintenance), asynq.Unique(d.ReconcileEvery-time.Second), asynq.MaxRetry(0), asynq.Timeout(d.ReconcileEvery)); err != nil {
			return fmt.Errorf("register reconciliation: %w", err)
		}
	}
	if d.Events != nil {
		if d.DispatchEvery <= 0 {
			d.DispatchEvery = 2 * time.Second
		}
		if _, err := sched.Register(fmt.Sprintf("@every %s", d.DispatchEvery), asynq.NewTask(TypeDispatchEvents, nil),
			asynq.Queue(QueueDefault), asynq.Unique(d.DispatchEvery), asynq.MaxRetry(0), asynq.Timeout(time.Minute)); err != nil {
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

// retryDelay backs off exponentially, 2 s doubling up to 10 min; an error that knows when to come
// back (a RetryAfter method, e.g. a platform's 429) sets the delay itself.
func retryDelay(n int, err error, t *asynq.Task) time.Duration {
	var ra interface{ RetryAfter() time.Duration }
	if errors.As(err, &ra) && ra.RetryAfter() > 0 {
		return ra.RetryAfter()
	}
	d := 2 * time.Second << min(n, 9)
	if d > 10*time.Minute {
		d = 10 * time.Minute
	}
	return d
}

// asynqLogger adapts slog to asynq's logger.
type asynqLogger struct{ log *slog.Logger }

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any)  { l.log.Warn(fmt.Sprint(args...)) }
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
