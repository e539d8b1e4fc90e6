package worker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/shopify/admin"
	"github.com/coupongate/coupongate/integrations/woocommerce"
)

type retryAfterError struct{ d time.Duration }

func (e retryAfterError) Error() string             { return "throttled" }
func (e retryAfterError) RetryAfter() time.Duration { return e.d }

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		err  error
		want time.Duration
	}{
		{0, errors.New("x"), 2 * time.Second},
		{3, errors.New("x"), 16 * time.Second},
		{20, errors.New("x"), 10 * time.Minute},
		{1, retryAfterError{7 * time.Second}, 7 * time.Second},
		{1, fmt.Errorf("push batch 3: %w", retryAfterError{9 * time.Second}), 9 * time.Second},
	}
	for _, tc := range tests {
		if got := retryDelay(tc.n, tc.err, nil); got != tc.want {
			t.Errorf("retryDelay(%d, %v) = %s, want %s", tc.n, tc.err, got, tc.want)
		}
	}
}

// TestIsFailure: a provider's rate limit and a dependency that is down do not use up a retry,
// found through any wrapping; every other error does, a provider's permanent refusal and a 5xx
// included.
func TestIsFailure(t *testing.T) {
	t.Parallel()
	pgDown := core.Unavailable("redis", errors.New("dial tcp 127.0.0.1:6379: connection refused"))
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"plain error", errors.New("boom"), true},
		{"context deadline", context.DeadlineExceeded, true},
		{"SMS 429 with a wait", &messaging.SendError{Channel: messaging.ChannelSMS, Code: "429", Wait: time.Second}, false},
		{"push quota, wrapped", fmt.Errorf("send batch: %w", &messaging.SendError{Channel: messaging.ChannelPush, Code: "QUOTA_EXCEEDED", Wait: time.Minute}), false},
		{"SMTP transient without a wait", &messaging.SendError{Channel: messaging.ChannelEmail, Code: "4.2.1"}, true},
		{"permanent refusal", &messaging.SendError{Channel: messaging.ChannelEmail, Permanent: true, Code: "5.1.1", Wait: time.Second}, true},
		{"WooCommerce 429", fmt.Errorf("push batch 3: %w", &woocommerce.APIError{Status: http.StatusTooManyRequests, Wait: 2 * time.Second}), false},
		{"WooCommerce 503", &woocommerce.APIError{Status: http.StatusServiceUnavailable, Wait: 2 * time.Second}, true},
		{"WooCommerce network failure", &woocommerce.APIError{Err: errors.New("connection reset")}, true},
		{"Shopify throttled", fmt.Errorf("push: %w", &admin.ThrottledError{Wait: 3 * time.Second}), false},
		{"Shopify 429", &admin.RateLimitedError{Wait: time.Second}, false},
		{"Shopify 5xx", &admin.ServerError{StatusCode: 502}, true},
		{"dependency unavailable", pgDown, false},
		{"dependency unavailable, wrapped", fmt.Errorf("queue batch: %w", pgDown), false},
		{"invalid", &core.Error{Kind: core.KindInvalid, Code: "invalid"}, true},
		{"a client's rate limit", &core.Error{Kind: core.KindRateLimited, Code: "rate_limited"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := isFailure(tc.err); got != tc.want {
				t.Fatalf("isFailure(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
