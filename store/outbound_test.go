package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// TestEndpointDisabledOnlyAfterFailingForDays: an endpoint is disabled when its failures have
// gone on without a break for longer than the limit, not when an old failure was followed by a
// quiet stretch (an endpoint that hears one event a week fails once, ten days after the last).
func TestEndpointDisabledOnlyAfterFailingForDays(t *testing.T) {
	t.Parallel()
	db := sealed(t)
	ctx := context.Background()
	const limit = 5 * 24 * time.Hour
	tests := []struct {
		name string
		// failingFor is how long ago the endpoint started failing; lastAttempt how long ago its
		// previous attempt was (0: none).
		failingFor, lastAttempt time.Duration
		wantDisabled            bool
		wantRestarted           bool
	}{
		{name: "failing for six days, last try two hours ago", failingFor: 6 * 24 * time.Hour, lastAttempt: 2 * time.Hour, wantDisabled: true},
		{name: "failing for four days", failingFor: 4 * 24 * time.Hour, lastAttempt: time.Hour},
		{name: "an old failure, then ten quiet days", failingFor: 10 * 24 * time.Hour, lastAttempt: 10 * 24 * time.Hour, wantRestarted: true},
		{name: "a mark without any attempt", failingFor: 10 * 24 * time.Hour, wantRestarted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, err := core.NewMerchants(db).Create(ctx, "Hooks Shop")
			if err != nil {
				t.Fatal(err)
			}
			e := core.WebhookEndpoint{MerchantID: m.ID, ID: uuid.New(), URL: "https://hooks.example/in", Events: []string{"code.redeemed"},
				Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", State: core.EndpointActive, CreatedAt: time.Now().UTC()}
			if err := db.CreateEndpoint(ctx, e); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Pool().Exec(ctx, `UPDATE webhook_endpoints SET failing_since = now() - make_interval(secs => $3)
				WHERE merchant_id = $1 AND id = $2`, m.ID, e.ID, tc.failingFor.Seconds()); err != nil {
				t.Fatal(err)
			}
			if tc.lastAttempt > 0 {
				if _, err := db.Pool().Exec(ctx, `INSERT INTO webhook_attempts (merchant_id, endpoint_id, message_id, event_type, status_code, at)
					VALUES ($1, $2, 'msg_earlier', 'code.redeemed', 503, now() - make_interval(secs => $3))`, m.ID, e.ID, tc.lastAttempt.Seconds()); err != nil {
					t.Fatal(err)
				}
			}
			msg := core.WebhookMessage{MerchantID: m.ID, ID: "msg_now", EndpointID: e.ID, EventType: "code.redeemed", Status: "pending"}
			disabled, err := db.RecordWebhookAttempt(ctx, msg, core.WebhookAttempt{MessageID: msg.ID, EventType: msg.EventType, StatusCode: 503},
				false, false, limit)
			if err != nil {
				t.Fatal(err)
			}
			got, err := db.GetEndpoint(ctx, m.ID, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			restarted := got.FailingSince != nil && time.Since(*got.FailingSince) < time.Hour
			if disabled != tc.wantDisabled || (got.State == "disabled") != tc.wantDisabled || restarted != tc.wantRestarted {
				t.Fatalf("disabled %v (state %s), failing since %v; want disabled %v, streak restarted %v",
					disabled, got.State, got.FailingSince, tc.wantDisabled, tc.wantRestarted)
			}
		})
	}
}

// TestLostWebhookTasksAreFoundSoon: a message whose task was never queued (Redis failed after
// the commit) is found a minute after it was made; one being retried is found a minute after its
// retry was due (its task lost with Redis), and not before; a failed attempt records when the
// next is due.
func TestLostWebhookTasksAreFoundSoon(t *testing.T) {
	t.Parallel()
	db := sealed(t)
	ctx := context.Background()
	m, _, err := core.NewMerchants(db).Create(ctx, "Lost Hooks")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := uuid.New()
	for _, msg := range []struct {
		id       string
		attempts int
		age      time.Duration // since it was made
		due      time.Duration // since its next attempt was due (negative: not yet)
	}{
		{"msg_new", 0, 10 * time.Second, 10 * time.Second},
		{"msg_untried", 0, 3 * time.Minute, 3 * time.Minute},
		{"msg_retrying", 2, 3 * time.Hour, -25 * time.Minute},
		{"msg_retry_lost", 3, 2 * time.Hour, 4 * time.Minute},
	} {
		if _, err := db.Pool().Exec(ctx, `INSERT INTO webhook_messages (merchant_id, id, endpoint_id, event_type, payload, attempts, created_at, next_attempt_at)
			VALUES ($1, $2, $3, 'code.redeemed', '{}', $4, now() - make_interval(secs => $5), now() - make_interval(secs => $6))`,
			m.ID, msg.id, endpoint, msg.attempts, msg.age.Seconds(), msg.due.Seconds()); err != nil {
			t.Fatal(err)
		}
	}
	found := func(before time.Time) []string {
		t.Helper()
		refs, err := db.PendingWebhookMessages(ctx, before, 100)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range refs {
			if r.MerchantID == m.ID {
				got = append(got, r.MessageID)
			}
		}
		return got
	}
	if got := found(time.Now().Add(-time.Minute)); strings.Join(got, " ") != "msg_retry_lost msg_untried" {
		t.Fatalf("found %v; want the retry due four minutes ago, then the message never tried (the longest due first)", got)
	}

	// A failed attempt of the untried message: its next attempt is due in five minutes.
	msg := core.WebhookMessage{MerchantID: m.ID, ID: "msg_untried", EndpointID: endpoint, EventType: "code.redeemed", Status: "pending"}
	if _, err := db.RecordWebhookAttempt(ctx, msg, core.WebhookAttempt{MessageID: msg.ID, EventType: msg.EventType, StatusCode: 503,
		RetryIn: 5 * time.Minute}, false, false, 5*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := found(time.Now().Add(-time.Minute)); strings.Join(got, " ") != "msg_retry_lost" {
		t.Fatalf("after a failed attempt: found %v; want the untried message off the list until its retry is due", got)
	}
	if got := found(time.Now().Add(5*time.Minute + time.Second)); !slices.Contains(got, "msg_untried") {
		t.Fatalf("found %v as of five minutes on; want the message whose retry is due then", got)
	}
}

// TestAlertReachesEachAddressOnce: three alert addresses; the first takes the alert, the second
// refuses it for now, the third for good. The retry sends to the second only, and the alert is
// then done: nobody got it twice, and the refusal of one kept nobody else from getting it.
func TestAlertReachesEachAddressOnce(t *testing.T) {
	t.Parallel()
	db := sealed(t)
	ctx := context.Background()
	m, _, err := core.NewMerchants(db).Create(ctx, "Alert Shop")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutAlertEmails(ctx, m.ID, []string{"ops@shop.example", "busy@shop.example", "gone@shop.example"}); err != nil {
		t.Fatal(err)
	}
	var eventID int64
	if err := db.Pool().QueryRow(ctx, `INSERT INTO domain_events (merchant_id, type, payload) VALUES ($1, 'list.exhausted', '{}') RETURNING id`,
		m.ID).Scan(&eventID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `INSERT INTO alert_messages (merchant_id, event_id) VALUES ($1, $2)`, m.ID, eventID); err != nil {
		t.Fatal(err)
	}
	provider := &addressedSender{answers: map[string][]error{
		"busy@shop.example": {errors.New("451 try again later"), nil},
		"gone@shop.example": {refusal("550 no such mailbox")},
	}}
	d := core.NewDispatcher(db, nil, provider, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := d.SendAlert(ctx, m.ID, eventID, false); err == nil {
		t.Fatal("a passing refusal should leave the alert to be retried")
	}
	if err := d.SendAlert(ctx, m.ID, eventID, false); err != nil {
		t.Fatal(err)
	}
	if err := d.SendAlert(ctx, m.ID, eventID, false); err != nil { // done: nothing more
		t.Fatal(err)
	}
	want := map[string]int{"ops@shop.example": 1, "busy@shop.example": 2, "gone@shop.example": 1}
	for addr, n := range want {
		if provider.tries[addr] != n {
			t.Errorf("%s tried %d times, want %d (tries %v)", addr, provider.tries[addr], n, provider.tries)
		}
	}
	var status, reason string
	_ = db.Pool().QueryRow(ctx, `SELECT status, error FROM alert_messages WHERE merchant_id = $1 AND event_id = $2`, m.ID, eventID).Scan(&status, &reason)
	if status != "sent" || !strings.Contains(reason, "550") {
		t.Fatalf("alert %s (%q), want sent, naming the refusal", status, reason)
	}
}

// addressedSender answers each address with its own script (nil: took it).
type addressedSender struct {
	answers map[string][]error
	tries   map[string]int
}

func (s *addressedSender) Send(_ context.Context, _ uuid.UUID, msg core.Message) (string, error) {
	if s.tries == nil {
		s.tries = map[string]int{}
	}
	s.tries[msg.To]++
	if script := s.answers[msg.To]; len(script) > 0 {
		s.answers[msg.To] = script[1:]
		return "", script[0]
	}
	return msg.MessageID, nil
}
