package metrics

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// ReadTimeout bounds what a collector that asks Redis or PostgreSQL waits for on a scrape; past
// it the scrape goes on without that collector's figures, and its _up gauge says 0.
const ReadTimeout = 2 * time.Second

// QueueInspector is the part of asynq's Inspector the queue collector reads.
type QueueInspector interface {
	Queues() ([]string, error)
	GetQueueInfo(queue string) (*asynq.QueueInfo, error)
}

// QueueCollector reads asynq's queues on each scrape: tasks per queue and state, and the age of
// each queue's oldest pending task.
type QueueCollector struct {
	inspector QueueInspector
	timeout   time.Duration
	busy      atomic.Bool
	tasks     *prometheus.Desc
	latency   *prometheus.Desc
	up        *prometheus.Desc
}

// NewQueueCollector returns the collector of inspector's queues.
func NewQueueCollector(inspector QueueInspector) *QueueCollector {
	return &QueueCollector{
		inspector: inspector, timeout: ReadTimeout,
		tasks: prometheus.NewDesc(Namespace+"_queue_tasks", "Tasks in an asynq queue, by queue and state: pending, active, scheduled, retry, archived.",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc(Namespace+"_queue_latency_seconds", "Age of the oldest pending task of an asynq queue (0 when none waits).",
			[]string{"queue"}, nil),
		up: prometheus.NewDesc(Namespace+"_queue_up", "1 when the queues were read from Redis within the scrape's time limit, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.tasks
	ch <- c.latency
	ch <- c.up
}

// Collect implements prometheus.Collector. The read runs beside the scrape, which waits for it
// up to the timeout; while a read that outlived its scrape still runs, no other starts.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	infos, ok := readWithin(&c.busy, c.timeout, func() ([]*asynq.QueueInfo, error) {
		names, err := c.inspector.Queues()
		if err != nil {
			return nil, err
		}
		out := make([]*asynq.QueueInfo, 0, len(names))
		for _, q := range names {
			info, err := c.inspector.GetQueueInfo(q)
			if err != nil {
				return nil, err
			}
			out = append(out, info)
		}
		return out, nil
	})
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(ok))
	for _, q := range infos {
		for _, s := range []struct {
			state string
			n     int
		}{{"pending", q.Pending}, {"active", q.Active}, {"scheduled", q.Scheduled}, {"retry", q.Retry}, {"archived", q.Archived}} {
			ch <- prometheus.MustNewConstMetric(c.tasks, prometheus.GaugeValue, float64(s.n), q.Queue, s.state)
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, q.Latency.Seconds(), q.Queue)
	}
}

// PoolCollector reports a pgx pool's use on each scrape.
type PoolCollector struct {
	stat                                      func() *pgxpool.Stat
	acquired, idle, total, max, waits, waited *prometheus.Desc
	constructing                              *prometheus.Desc
}

// NewPoolCollector returns the collector of pool.
func NewPoolCollector(pool *pgxpool.Pool) *PoolCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(Namespace+"_db_pool_"+name, help, nil, nil)
	}
	return &PoolCollector{
		stat:         pool.Stat,
		acquired:     d("acquired_conns", "PostgreSQL connections of the pool in use now."),
		idle:         d("idle_conns", "PostgreSQL connections of the pool idle now."),
		constructing: d("constructing_conns", "PostgreSQL connections of the pool being opened now."),
		total:        d("total_conns", "PostgreSQL connections of the pool: acquired, idle and being opened."),
		max:          d("max_conns", "The pool's limit of connections (DB_MAX_CONNS)."),
		waits:        d("acquire_waits_total", "Acquisitions that had to wait for a connection, since the process started."),
		waited:       d("acquire_wait_seconds_total", "Time acquisitions spent waiting for a connection, since the process started."),
	}
}

// Describe implements prometheus.Collector.
func (c *PoolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.acquired, c.idle, c.constructing, c.total, c.max, c.waits, c.waited} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; the pool's statistics are in memory, so it never waits.
func (c *PoolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stat()
	ch <- prometheus.MustNewConstMetric(c.acquired, prometheus.GaugeValue, float64(s.AcquiredConns()))
	ch <- prometheus.MustNewConstMetric(c.idle, prometheus.GaugeValue, float64(s.IdleConns()))
	ch <- prometheus.MustNewConstMetric(c.constructing, prometheus.GaugeValue, float64(s.ConstructingConns()))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(s.TotalConns()))
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}

// Backlog is a platform's received webhook deliveries not yet applied.
type Backlog struct {
	Platform string
	Count    int64
	// Oldest is the age of the oldest of them.
	Oldest time.Duration
}

// BacklogCollector reports the platforms' webhook backlogs on each scrape, read by read (the
// store's WebhookBacklog); a platform with nothing waiting reports 0.
type BacklogCollector struct {
	read      func(ctx context.Context) ([]Backlog, error)
	platforms []string
	timeout   time.Duration
	busy      atomic.Bool
	count     *prometheus.Desc
	oldest    *prometheus.Desc
	up        *prometheus.Desc
}

// NewBacklogCollector returns the collector; platforms are reported even when nothing waits.
func NewBacklogCollector(read func(ctx context.Context) ([]Backlog, error), platforms ...string) *BacklogCollector {
	return &BacklogCollector{
		read: read, platforms: platforms, timeout: ReadTimeout,
		count: prometheus.NewDesc(Namespace+"_webhook_backlog", "Platform webhook deliveries received and not yet applied, by platform.",
			[]string{"platform"}, nil),
		oldest: prometheus.NewDesc(Namespace+"_webhook_backlog_oldest_seconds", "Age of the oldest platform webhook delivery received and not yet applied, by platform (0 when none waits).",
			[]string{"platform"}, nil),
		up: prometheus.NewDesc(Namespace+"_webhook_backlog_up", "1 when the backlog was read from PostgreSQL within the scrape's time limit, else 0.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *BacklogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.count
	ch <- c.oldest
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *BacklogCollector) Collect(ch chan<- prometheus.Metric) {
	bs, ok := readWithin(&c.busy, c.timeout, func() ([]Backlog, error) {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		return c.read(ctx)
	})
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, boolValue(ok))
	if !ok {
		return
	}
	seen := map[string]bool{}
	for _, b := range bs {
		seen[b.Platform] = true
		ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, float64(b.Count), b.Platform)
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, b.Oldest.Seconds(), b.Platform)
	}
	for _, p := range c.platforms {
		if !seen[p] {
			ch <- prometheus.MustNewConstMetric(c.count, prometheus.GaugeValue, 0, p)
			ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, 0, p)
		}
	}
}

// readWithin runs read beside the caller and waits for it up to timeout; ok is false when it
// failed, did not end in time, or an earlier read that outlived its wait still runs (busy).
func readWithin[T any](busy *atomic.Bool, timeout time.Duration, read func() (T, error)) (v T, ok bool) {
	if !busy.CompareAndSwap(false, true) {
		return v, false
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer busy.Store(false)
		v, err := read()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err == nil
	case <-time.After(timeout):
		return v, false
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
