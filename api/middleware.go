package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"runtime/debug"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

type ctxKey int

const requestIDKey ctxKey = iota

// RequestIDFrom returns the request id carried by ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	v, _ := ctx.Value(requestIDKey).(string)
	return v
}

// requestID takes X-Request-Id when the caller sends a sane one, else makes one, and puts it on the
// request context (so slog handlers can log it) and on the response.
func requestID() gin.HandlerFunc {
	return func(c *gin.Context) {
		id := c.GetHeader("X-Request-Id")
		if len(id) == 0 || len(id) > 128 {
			b := make([]byte, 12)
			_, _ = rand.Read(b)
			id = hex.EncodeToString(b)
		}
		c.Request = c.Request.WithContext(context.WithValue(c.Request.Context(), requestIDKey, id))
		c.Header("X-Request-Id", id)
		c.Next()
	}
}

// accessLog logs one line per request: method, route, status, duration. Never bodies, keys or codes.
// The observer, when there is one, is told of the same request with the same duration.
func accessLog(log *slog.Logger, obs Observer) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		if obs != nil {
			obs.ObserveRequest(c.FullPath(), c.Request.Method, status, time.Since(start))
		}
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelWarn
		}
		if !log.Enabled(c.Request.Context(), level) {
			return // the usual case in production: build nothing
		}
		log.Log(c.Request.Context(), level, "http request", "method", c.Request.Method, "route", c.FullPath(), "status", status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000, "bytes", c.Writer.Size())
	}
}

// recovery turns a handler's panic into an error for renderErrors, which sits outside it: the
// answer is a 500 in the error shape (never a 200 with an empty body, which would tell a platform
// that its webhook was taken), logged once with the request id and the stack.
func recovery(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			fail(c, &panicError{value: v, stack: debug.Stack()})
		}
	}()
	c.Next()
}

// panicError is a recovered panic; it logs as its value and the stack where it happened.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string { return fmt.Sprintf("panic: %v", e.value) }

// LogValue implements slog.LogValuer.
func (e *panicError) LogValue() slog.Value {
	return slog.GroupValue(slog.String("panic", fmt.Sprint(e.value)), slog.String("stack", string(e.stack)))
}

// refuseUnstorable refuses a code in the path or a query value holding text PostgreSQL cannot
// store (a NUL character, sent as %00, or bytes that are not UTF-8) before a handler passes it to
// the database: no code has such a name (404 code_not_found), and such a query value is not
// acceptable (422 naming it). The other path parameters are ids, numbers and names that their
// handlers parse, answering their own 404; bindJSON checks JSON bodies.
func refuseUnstorable(c *gin.Context) {
	if unstorable(c.Param("code")) {
		fail(c, core.ErrCodeNotFound)
		return
	}
	if c.Request.URL.RawQuery == "" {
		c.Next() // no query: nothing to parse (the storefront's validations)
		return
	}
	query := c.Request.URL.Query()
	names := slices.Sorted(maps.Keys(query))
	for _, name := range names {
		for _, v := range query[name] {
			if unstorable(v) {
				fail(c, core.Invalid(name, unstorableMessage))
				return
			}
		}
	}
	c.Next()
}

// ContextHandler is a slog handler that adds the request id (and task id, see worker) found on the
// context to every record.
type ContextHandler struct {
	slog.Handler
}

// Handle implements slog.Handler.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestIDFrom(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h ContextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return ContextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{h.Handler.WithGroup(name)}
}
