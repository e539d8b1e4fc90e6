package app

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/coupongate/coupongate/api"
	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/worker"
)

// NewLogger builds the process logger: JSON or text on stderr, with request and task ids added
// from the context. go-redis's own messages go through it too (see redisLogger).
func NewLogger(cfg config.Config) *slog.Logger { return NewLoggerTo(cfg, os.Stderr) }

// NewLoggerTo is NewLogger writing to w (tests read what a process logs).
func NewLoggerTo(cfg config.Config, w io.Writer) *slog.Logger {
	log := newLogger(cfg, w)
	redis.SetLogger(redisLogger{log})
	return log
}

// newLogger is NewLogger writing to w.
func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewJSONHandler(w, opts)
	if cfg.LogFormat == "text" {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(taskIDHandler{api.ContextHandler{Handler: h}})
}

// taskIDHandler adds the asynq task id to records logged inside a task, once: a record that
// carries task_id already keeps its own.
type taskIDHandler struct{ slog.Handler }

func (h taskIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := worker.TaskIDFrom(ctx); id != "" && !hasAttr(r, "task_id") {
		r.AddAttrs(slog.String("task_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// hasAttr says whether r carries a top-level attribute named key.
func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

func (h taskIDHandler) WithAttrs(a []slog.Attr) slog.Handler {
	return taskIDHandler{h.Handler.WithAttrs(a)}
}
func (h taskIDHandler) WithGroup(n string) slog.Handler { return taskIDHandler{h.Handler.WithGroup(n)} }
