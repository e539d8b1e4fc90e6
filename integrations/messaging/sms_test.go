package messaging_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
)

func TestSendSMS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, from, wantFrom, wantService string
	}{
		{"from a number", "+15005550006", "+15005550006", ""},
		{"from an alphanumeric sender", "Coupongate", "Coupongate", ""},
		{"through a messaging service", "MG0123456789abcdef0123456789abcdef", "", "MG0123456789abcdef0123456789abcdef"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tw := messagingfake.NewTwilio(t, messagingfake.TwilioConfig{})
			sid, err := messaging.SendSMS(context.Background(), tw.Settings(tc.from), "+447700900123", "Your code: SAVE10 ✓")
			if err != nil {
				t.Fatalf("SendSMS: %v", err)
			}
			if !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
				t.Fatalf("sid %q", sid)
			}
			msgs := tw.Messages()
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			want := messagingfake.SMS{SID: sid, To: "+447700900123", From: tc.wantFrom, MessagingServiceSID: tc.wantService, Body: "Your code: SAVE10 ✓"}
			if msgs[0] != want {
				t.Fatalf("got %+v, want %+v", msgs[0], want)
			}
		})
	}
}

func TestSendSMSErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		prepare   func(*messagingfake.Twilio, *messaging.TwilioSettings)
		to        string
		permanent bool
		code      string
		wait      time.Duration
		reason    string
	}{
		{name: "invalid number", to: "07700 900123", permanent: true, code: "21211", reason: "is not a valid phone number"},
		{name: "too short", to: "+1234", permanent: true, code: "21211"},
		{name: "unsubscribed", prepare: func(f *messagingfake.Twilio, _ *messaging.TwilioSettings) { f.Unsubscribe("+15005550009") },
			to: "+15005550009", permanent: true, code: "21610"},
		{name: "landline", to: "+15005550011", permanent: true, code: "21614"},
		{name: "wrong auth token", prepare: func(_ *messagingfake.Twilio, s *messaging.TwilioSettings) { s.AuthToken = "wrong-token-abc" },
			to: "+15005550010", permanent: true, code: messaging.CodeAuth, reason: "credentials refused"},
		{name: "wrong account", prepare: func(_ *messagingfake.Twilio, s *messaging.TwilioSettings) {
			s.AccountSID = "AC99999999999999999999999999999999"
		},
			to: "+15005550010", permanent: true, code: messaging.CodeAuth},
		{name: "rate limited with Retry-After", prepare: func(f *messagingfake.Twilio, _ *messaging.TwilioSettings) { f.FailNext(1, 429, "7") },
			to: "+15005550010", code: "20429", wait: 7 * time.Second},
		{name: "rate limited without Retry-After", prepare: func(f *messagingfake.Twilio, _ *messaging.TwilioSettings) { f.FailNext(1, 429, "") },
			to: "+15005550010", code: "20429", wait: messaging.DefaultSMSRateLimitWait},
		{name: "503 with Retry-After", prepare: func(f *messagingfake.Twilio, _ *messaging.TwilioSettings) { f.FailNext(1, 503, "2") },
			to: "+15005550010", code: "20503", wait: 2 * time.Second},
		{name: "500", prepare: func(f *messagingfake.Twilio, _ *messaging.TwilioSettings) { f.FailNext(1, 500, "") },
			to: "+15005550010", code: "20500"},
		{name: "server gone", prepare: func(f *messagingfake.Twilio, _ *messaging.TwilioSettings) { f.Close() },
			to: "+15005550010", code: messaging.CodeNetwork},
		{name: "invalid settings", prepare: func(_ *messagingfake.Twilio, s *messaging.TwilioSettings) { s.AccountSID = "bogus" },
			to: "+15005550010", permanent: true, code: messaging.CodeSettings},
		{name: "no recipient", to: "", permanent: true, code: messaging.CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tw := messagingfake.NewTwilio(t, messagingfake.TwilioConfig{Landlines: []string{"+15005550011"}})
			s := tw.Settings("")
			if tc.prepare != nil {
				tc.prepare(tw, &s)
			}
			sid, err := messaging.SendSMS(context.Background(), s, tc.to, "Your code: SAVE10")
			if sid != "" {
				t.Fatalf("sid %q with an error", sid)
			}
			se := sendErr(t, err)
			if se.Permanent != tc.permanent || se.Code != tc.code || se.Wait != tc.wait || se.Channel != messaging.ChannelSMS {
				t.Fatalf("got %+v (%v), want permanent=%v code=%q wait=%s", se, err, tc.permanent, tc.code, tc.wait)
			}
			if !strings.Contains(se.Reason, tc.reason) {
				t.Fatalf("reason %q does not say %q", se.Reason, tc.reason)
			}
			noSecret(t, err, messagingfake.DefaultTwilioAuthToken, "wrong-token-abc")
		})
	}
}

// retryAfterDateIn90s stands, in a case's Retry-After, for the HTTP date 90 seconds after the answer.
const retryAfterDateIn90s = "<an HTTP date 90 s on>"

// TestSendSMSClassifiesTwilioAnswers checks answers the fake does not make.
func TestSendSMSClassifiesTwilioAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		status     int
		body       string
		retryAfter string
		permanent  bool
		code       string
		wait       time.Duration
	}{
		{"region not enabled", 400, `{"code":21408,"message":"Permission to send an SMS has not been enabled for the region indicated by the 'To' number: +86…","more_info":"https://www.twilio.com/docs/errors/21408","status":400}`, "", true, "21408", 0},
		{"not a mobile number", 400, `{"code":21614,"message":"'To' number is not a valid mobile number","status":400}`, "", true, "21614", 0},
		{"auth on 403", 403, `{"code":20003,"message":"Authenticate","status":403}`, "", true, messaging.CodeAuth, 0},
		{"404 without body", 404, ``, "", true, "404", 0},
		{"redirect", 301, ``, "", true, "301", 0},
		{"502 from a proxy", 502, `<html>Bad Gateway</html>`, "", false, "502", 0},
		{"429 with an HTTP date", 429, `{"code":20429,"message":"Too Many Requests","status":429}`, retryAfterDateIn90s, false, "20429", 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch tc.retryAfter {
				case "":
				case retryAfterDateIn90s: // dated when the answer is made, not when the table was: a parallel case may start seconds later
					w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
				default:
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.status == 301 {
					w.Header().Set("Location", "https://elsewhere.example/")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			s := messaging.TwilioSettings{BaseURL: srv.URL, AccountSID: messagingfake.DefaultTwilioAccountSID, AuthToken: "tok-secret-xyz", From: "+15005550006"}
			_, err := messaging.SendSMS(context.Background(), s, "+8613800138000", "hi")
			se := sendErr(t, err)
			if se.Permanent != tc.permanent || se.Code != tc.code {
				t.Fatalf("got %+v, want permanent=%v code=%q", se, tc.permanent, tc.code)
			}
			if d := se.RetryAfter() - tc.wait; d < -2*time.Second || d > 2*time.Second {
				t.Fatalf("RetryAfter %s, want about %s", se.RetryAfter(), tc.wait)
			}
			noSecret(t, err, "tok-secret-xyz")
		})
	}
}

// TestSendSMSTakenWithAnUnreadableAnswer: Twilio answered 201 but the body is cut off or not
// JSON. The message is queued at Twilio: it counts as sent, so no retry sends it twice.
func TestSendSMSTakenWithAnUnreadableAnswer(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `{"sid": "SM12`, `<html>ok</html>`} {
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write([]byte(body))
		}))
		s := messaging.TwilioSettings{BaseURL: srv.URL, AccountSID: messagingfake.DefaultTwilioAccountSID, AuthToken: "tok-secret-xyz", From: "+15005550006"}
		sid, err := messaging.SendSMS(context.Background(), s, "+447700900123", "hi")
		srv.Close()
		if err != nil || sid != "" || calls != 1 {
			t.Fatalf("answer %q: sid %q, err %v, %d calls; want sent, without an id", body, sid, err, calls)
		}
	}
}

func TestSendSMSContextDeadline(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	s := messaging.TwilioSettings{BaseURL: srv.URL, AccountSID: messagingfake.DefaultTwilioAccountSID, AuthToken: "t", From: "+15005550006"}
	_, err := messaging.SendSMS(ctx, s, "+15005550010", "hi")
	if se := sendErr(t, err); se.Permanent || se.Code != messaging.CodeTimeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}
