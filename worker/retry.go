package worker

// This file decides what a failed task's error means to asynq: how long before the task runs
// again (retryDelay) and whether the attempt counts against its retries (isFailure).

import (
	"errors"
	"net/http"
	"time"

	"github.com/hibiken/asynq"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/shopify/admin"
	"github.com/coupongate/coupongate/integrations/woocommerce"
)

// retryDelay backs off exponentially, 2 s doubling up to 10 min; an error that knows when to come
// back (a RetryAfter method, e.g. a platform's 429) sets the delay itself.
func retryDelay(n int, err error, _ *asynq.Task) time.Duration {
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

// isFailure reports whether a task's error counts as a failure: one that uses up a retry and is
// counted in asynq's failed statistics. A provider that asked us to slow down, and a dependency
// that is down, say nothing of the task itself: the task is retried after retryDelay without
// coming closer to its last attempt, so that a delivery or an alert is not failed, nor an import
// archived, for a rate limit or a database failover. They are:
//   - a message provider's transient refusal that says when to come back (messaging.SendError
//     with a Wait: Twilio or FCM answering 429, or with a Retry-After);
//   - a WooCommerce store's 429 (woocommerce.APIError);
//   - Shopify's GraphQL throttle and its HTTP 429 (admin.ThrottledError, admin.RateLimitedError);
//   - a dependency that is not answering (a core.Error of KindUnavailable: PostgreSQL or Redis).
func isFailure(err error) bool {
	if err == nil {
		return false
	}
	var send *messaging.SendError
	if errors.As(err, &send) && !send.Permanent && send.Wait > 0 {
		return false
	}
	var woo *woocommerce.APIError
	if errors.As(err, &woo) && woo.Status == http.StatusTooManyRequests {
		return false
	}
	var throttled *admin.ThrottledError
	var limited *admin.RateLimitedError
	if errors.As(err, &throttled) || errors.As(err, &limited) {
		return false
	}
	var ce *core.Error
	if errors.As(err, &ce) && ce.Kind == core.KindUnavailable {
		return false
	}
	return true
}
