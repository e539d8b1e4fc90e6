package messaging

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

func TestSendErrorError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  *SendError
		want string
	}{
		{&SendError{Channel: ChannelEmail, Permanent: true, Code: "5.1.1", Reason: "RCPT TO <a@b>: 550 5.1.1 no such user"},
			"messaging: email: permanent failure (5.1.1): RCPT TO <a@b>: 550 5.1.1 no such user"},
		{&SendError{Channel: ChannelSMS, Code: "20429", Reason: "HTTP 429: Too Many Requests", Wait: 3 * time.Second},
			"messaging: sms: transient failure (20429): HTTP 429: Too Many Requests; retry in 3s"},
		{&SendError{Channel: ChannelPush}, "messaging: push: transient failure"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

func TestSendErrorHelpers(t *testing.T) {
	t.Parallel()
	auth := &SendError{Channel: ChannelEmail, Permanent: true, Code: CodeAuth}
	transient := &SendError{Channel: ChannelPush, Code: CodeTimeout, Err: context.DeadlineExceeded, Wait: time.Second}
	wrapped := fmt.Errorf("deliver: %w", auth)
	tests := []struct {
		name                string
		err                 error
		permanent, isAuth   bool
		code                string
		deadline            bool
		retryAfter          time.Duration
		retryAfterInterface bool
	}{
		{"auth", auth, true, true, CodeAuth, false, 0, true},
		{"wrapped auth", wrapped, true, true, CodeAuth, false, 0, true},
		{"transient", transient, false, false, CodeTimeout, true, time.Second, true},
		{"plain error", errors.New("x"), false, false, "", false, 0, false},
		{"nil", nil, false, false, "", false, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if IsPermanent(tc.err) != tc.permanent || IsAuth(tc.err) != tc.isAuth || ErrorCode(tc.err) != tc.code {
				t.Fatalf("IsPermanent %v IsAuth %v ErrorCode %q", IsPermanent(tc.err), IsAuth(tc.err), ErrorCode(tc.err))
			}
			if errors.Is(tc.err, context.DeadlineExceeded) != tc.deadline {
				t.Fatalf("errors.Is DeadlineExceeded = %v", !tc.deadline)
			}
			var ra interface{ RetryAfter() time.Duration }
			if errors.As(tc.err, &ra) != tc.retryAfterInterface || (ra != nil && ra.RetryAfter() != tc.retryAfter) {
				t.Fatalf("RetryAfter interface: %v", ra)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"5", 5 * time.Second},
		{" 1.5 ", 1500 * time.Millisecond},
		{"0", 0},
		{"-3", 0},
		{"NaN", 0},
		{"999999", 0},
		{now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestReplyError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code      int
		msg       string
		permanent bool
		want      string
	}{
		{550, "5.1.1 <a@b>: Recipient address rejected: User unknown", true, "5.1.1"},
		{550, "Mailbox unavailable", true, "550"},
		{552, "5.3.4 Message size exceeds fixed limit", true, "5.3.4"},
		{554, "4.7.1 mismatched class is ignored", true, "554"},
		{451, "4.3.0 Temporary failure", false, "4.3.0"},
		{421, "4.4.2 Idle timeout", false, "4.4.2"},
		{450, "Greylisted, try again later", false, "450"},
		{535, "5.7.8 Authentication credentials invalid", true, CodeAuth},
		{530, "5.7.0 Authentication required", true, CodeAuth},
		{534, "5.7.9 Please log in with your web browser", true, CodeAuth},
	}
	for _, tc := range tests {
		se := replyError("RCPT TO <a@b>", &textproto.Error{Code: tc.code, Msg: tc.msg})
		if se.Permanent != tc.permanent || se.Code != tc.want || se.Channel != ChannelEmail {
			t.Errorf("%d %s: got %+v, want permanent=%v code=%q", tc.code, tc.msg, se, tc.permanent, tc.want)
		}
		if !strings.Contains(se.Reason, fmt.Sprintf("%03d", tc.code)) {
			t.Errorf("reason %q lacks the reply", se.Reason)
		}
	}
}

func TestRedactAndClip(t *testing.T) {
	t.Parallel()
	if got := redact("token abc and abc again, def", "abc", "", "def"); got != "token [redacted] and [redacted] again, [redacted]" {
		t.Errorf("redact = %q", got)
	}
	if got := clip("héllo", 2); got != "h…" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("short", 10); got != "short" {
		t.Errorf("clip = %q", got)
	}
}

func TestValidMessageIDAndHeaderName(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{"a@b": true, "order.7+x@coupongate.test": true, "@b": false, "a@": false, "a b@c": false, "a<b@c": false, "nope": false}
	for id, want := range ids {
		if validMessageID(id) != want {
			t.Errorf("validMessageID(%q) = %v", id, !want)
		}
	}
	names := map[string]bool{"X-Campaign": true, "List-Unsubscribe-Post": true, "": false, "X Bad": false, "X:Bad": false, "Ünï": false}
	for n, want := range names {
		if validHeaderName(n) != want {
			t.Errorf("validHeaderName(%q) = %v", n, !want)
		}
	}
}
