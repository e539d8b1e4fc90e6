package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
)

// idleTimeout is how long a keep-alive connection may wait for its next request.
const idleTimeout = 120 * time.Second

// NewHTTPServer is the gateway's http.Server for handler (the router), with the limits that keep
// slow and stalled clients from holding connections: the headers must arrive within
// ReadHeaderTimeout and an idle keep-alive connection is closed after two minutes. The router
// bounds the body: BodyReadTimeout, UploadReadTimeout for uploads.
func NewHTTPServer(cfg config.Config, handler http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           handler,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// errBodyTimeout answers a request whose body did not arrive in time.
var errBodyTimeout = &core.Error{Kind: core.KindMalformed, Code: "body_timeout",
	Message: "the request body did not arrive within the time allowed; send it without pausing"}

// errUploadsBusy answers an upload while the process already reads as many as it may.
var errUploadsBusy = &core.Error{Kind: core.KindUnavailable, Code: "uploads_busy",
	Message: "the gateway is reading as many uploads as it may at once; send this one again shortly"}

// bodyDeadline gives a request that has a body limit to send it: past it, reading the body fails
// (the request answers 400 body_timeout) and the connection is closed. Go's server lifts the
// deadline once the body is read to the end (it then watches the connection for the client going
// away, and a deadline there would cancel the request), so a long answer is never cut by it.
func bodyDeadline(limit time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		if c.Request.Body != nil && c.Request.Body != http.NoBody {
			b := &deadlineBody{ReadCloser: c.Request.Body, rc: http.NewResponseController(c.Writer)}
			if b.extend(limit) {
				c.Request.Body = b
			}
		}
		c.Next()
	}
}

// deadlineBody is a request body read under a deadline on the connection.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool // read to the end: the server lifted the deadline, and none may be set again
}

// extend sets the deadline to limit from now, and reports whether the connection takes one (a
// test's response recorder does not).
func (b *deadlineBody) extend(limit time.Duration) bool {
	return !b.done && b.rc.SetReadDeadline(time.Now().Add(limit)) == nil
}

// Read implements io.Reader.
func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		b.done = true
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errBodyTimeout
	}
	return n, err
}

// uploadGate admits at most MaxConcurrentUploads uploads (imports and bulk deliveries) at a time
// in the process, each with UploadReadTimeout to send its body; one more answers 503 uploads_busy
// with Retry-After. It runs after authentication, so only a merchant's uploads take a place.
func uploadGate(cfg config.Config) gin.HandlerFunc {
	places := make(chan struct{}, cfg.MaxConcurrentUploads)
	return func(c *gin.Context) {
		select {
		case places <- struct{}{}:
		default:
			fail(c, errUploadsBusy)
			return
		}
		defer func() { <-places }()
		if b, ok := c.Request.Body.(*deadlineBody); ok {
			b.extend(cfg.UploadReadTimeout)
		}
		c.Next()
	}
}
