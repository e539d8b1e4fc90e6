package api

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// errorBody is the contract's error shape.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Details []core.FieldError `json:"details"`
}

var statusOfKind = map[core.Kind]int{
	core.KindInternal:     http.StatusInternalServerError,
	core.KindMalformed:    http.StatusBadRequest,
	core.KindUnauthorized: http.StatusUnauthorized,
	core.KindNotFound:     http.StatusNotFound,
	core.KindConflict:     http.StatusConflict,
	core.KindTooLarge:     http.StatusRequestEntityTooLarge,
	core.KindInvalid:      http.StatusUnprocessableEntity,
	core.KindRateLimited:  http.StatusTooManyRequests,
	core.KindUnavailable:  http.StatusServiceUnavailable,
	core.KindForbidden:    http.StatusForbidden,
}

// unavailableRetryAfter is the Retry-After of a 503 whose error names no wait of its own: long
// enough for a restarted or failed-over database to take connections again.
const unavailableRetryAfter = 5 * time.Second

// outageEvery is how often a dependency that stays down is logged at warn again.
const outageEvery = time.Minute

// outageLog remembers when each dependency's failure was last logged at warn.
type outageLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	now  func() time.Time
}

// loud reports whether a failure of the dependency (its error's message) is to be logged at warn:
// the first, and then one each outageEvery.
func (o *outageLog) loud(dependency string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.now()
	if last, ok := o.last[dependency]; ok && now.Sub(last) < outageEvery {
		return false
	}
	o.last[dependency] = now
	return true
}

// renderErrors is the one place errors become responses: a core *Error maps to its status and
// code; PostgreSQL down, failing over or out of connections (store.IsUnavailable) is a 503
// dependency_unavailable, and every 503 carries Retry-After; anything else is logged with the
// request id and answered with a generic 500 that reveals nothing internal.
//
// A dependency that is down fails every request while it is: the first such failure of each
// dependency is logged at warn, then at most one a minute (outageEvery), the rest at debug, so an
// outage is one clear line rather than a line per request.
func renderErrors(log *slog.Logger) gin.HandlerFunc {
	outages := &outageLog{last: map[string]time.Time{}, now: time.Now}
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 {
			return
		}
		err := c.Errors.Last().Err
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			err = core.ErrBodyTooLarge
		}
		var ce *core.Error
		if (!errors.As(err, &ce) || ce.Kind == core.KindInternal) && store.IsUnavailable(err) {
			// PostgreSQL is down, failing over or out of connections: the client may come back.
			err = core.Unavailable("PostgreSQL", err)
		}
		if !errors.As(err, &ce) {
			log.ErrorContext(c.Request.Context(), "request failed", "err", err)
			ce = &core.Error{Kind: core.KindInternal, Code: "internal_error", Message: "something went wrong on our side; the request id identifies it in our logs"}
		} else if ce.Kind == core.KindUnavailable {
			ctx := c.Request.Context()
			if outages.loud(ce.Message) {
				log.WarnContext(ctx, ce.Message+"; answering 503 dependency_unavailable while it does not", "err", err)
			} else {
				log.DebugContext(ctx, "request failed", "err", err)
			}
		} else if ce.Kind == core.KindInternal {
			log.ErrorContext(c.Request.Context(), "request failed", "err", err)
		}
		if c.Writer.Written() {
			// A streamed response already started: the status is out, so the best we can do is stop.
			log.WarnContext(c.Request.Context(), "error after the response started", "err", err)
			return
		}
		switch {
		case ce.Kind == core.KindRateLimited && ce.RetryAfter > 0:
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(ce.RetryAfter.Seconds()))))
		case ce.Kind == core.KindUnavailable:
			after := ce.RetryAfter
			if after <= 0 {
				after = unavailableRetryAfter
			}
			c.Header("Retry-After", strconv.Itoa(int(math.Ceil(after.Seconds()))))
		}
		details := ce.Details
		if details == nil {
			details = []core.FieldError{}
		}
		status := statusOfKind[ce.Kind]
		if errors.As(err, new(*methodNotAllowed)) {
			status = http.StatusMethodNotAllowed
		}
		if isDashboardPath(c.Request.URL.Path) {
			renderErrorPage(c, status, ce) // the dashboard's pages answer in HTML
			return
		}
		c.JSON(status, errorBody{Error: errorDetail{Code: ce.Code, Message: ce.Message, Details: details}})
	}
}

// fail records err for renderErrors and stops the handler chain.
func fail(c *gin.Context, err error) {
	_ = c.Error(err)
	c.Abort()
}

// errRouteNotFound answers a path no route takes.
var errRouteNotFound = &core.Error{Kind: core.KindNotFound, Code: "route_not_found", Message: "no such endpoint"}

// methodNotAllowed answers a method its path does not take: 405 method_not_allowed, beside the
// Allow header gin sets with the methods the path takes. No core kind has that status, so
// renderErrors knows it by its type.
type methodNotAllowed struct{ method string }

func (e *methodNotAllowed) Error() string { return e.Unwrap().Error() }

// Unwrap gives the error's contract code and message.
func (e *methodNotAllowed) Unwrap() error {
	return &core.Error{Kind: core.KindMalformed, Code: "method_not_allowed", Message: "this endpoint does not take " + e.method}
}
