package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// scriptedSender is the provider: it answers each send with the next scripted error (nil: took
// it) and remembers what it was given.
type scriptedSender struct {
	mu      sync.Mutex
	answers []error
	sent    []core.Message
}

func (s *scriptedSender) Send(_ context.Context, _ uuid.UUID, msg core.Message) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, msg)
	var err error
	if len(s.answers) > 0 {
		err, s.answers = s.answers[0], s.answers[1:]
	}
	if err != nil {
		return "", err
	}
	return "provider-1", nil
}

func (s *scriptedSender) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sent)
}

// refusal is an error that will not heal.
type refusal string

func (r refusal) Error() string   { return string(r) }
func (r refusal) Permanent() bool { return true }

// queuedDelivery stores a queued email delivery of a fresh list's only code. The code is valid
// until codeTill, the list until listTill.
func queuedDelivery(t *testing.T, db *store.DB, listTill, codeTill time.Time) core.Delivery {
	t.Helper()
	ctx := context.Background()
	m, _, err := core.NewMerchants(db).Create(ctx, "Sender Shop")
	if err != nil {
		t.Fatal(err)
	}
	l, err := core.NewLists(db).Create(ctx, m.ID, core.ListInput{Name: "Autumn", ExpiresAt: &listTill})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.AddCodes(ctx, l, []string{"AUTUMN-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool().Exec(ctx, `UPDATE codes SET available_till = $3 WHERE merchant_id = $1 AND list_id = $2`, m.ID, l.ID, codeTill); err != nil {
		t.Fatal(err)
	}
	tpl, err := core.NewTemplates(db, db).Create(ctx, m.ID, l.ID, core.TemplateInput{Channel: "email", Subject: "For <firstname>",
		Text: "<couponcode> until <expirydate> (<listname>)", Locale: "en-GB", TimeZone: "UTC"})
	if err != nil {
		t.Fatal(err)
	}
	d, created, err := db.CreateDelivery(ctx, core.Delivery{MerchantID: m.ID, ID: uuid.New(), ListID: l.ID, Channel: core.ChannelEmail,
		TemplateID: tpl.ID, Recipient: core.MessageRecipient{Email: "ann@example.com", FirstName: "Ann"}, Status: core.DeliveryQueued,
		Seq: 1, Code: "AUTUMN-1", CreatedAt: time.Now().UTC()})
	if err != nil || !created {
		t.Fatalf("delivery: created %v, %v", created, err)
	}
	return d
}

// TestDeliveryIsSentOnce: whatever the provider answers and however often the send task runs, a
// delivery reaches the provider again only after a send that left nothing with it.
func TestDeliveryIsSentOnce(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	passing := errors.New("provider: 503")
	tests := []struct {
		name string
		// before runs before the sends: a worker that claimed the delivery and died.
		before  func(t *testing.T, d core.Delivery)
		answers []error
		// runs is how many times the send task runs; the last one is the last attempt when
		// lastAttempt is set.
		runs        int
		lastAttempt bool
		wantCalls   int
		wantStatus  string
		wantError   string
		wantTries   int
	}{
		{name: "taken at once, run again", answers: []error{nil}, runs: 3, wantCalls: 1, wantStatus: core.DeliverySent, wantTries: 1},
		{name: "a passing error is retried", answers: []error{passing, passing, nil}, runs: 4, wantCalls: 3, wantStatus: core.DeliverySent, wantTries: 3},
		{name: "a refusal fails at once", answers: []error{refusal("550 no such user")}, runs: 2, wantCalls: 1,
			wantStatus: core.DeliveryFailed, wantError: "550 no such user", wantTries: 1},
		{name: "the last attempt gives up", answers: []error{passing}, runs: 1, lastAttempt: true, wantCalls: 1,
			wantStatus: core.DeliveryFailed, wantError: "gave up after the last attempt", wantTries: 1},
		{name: "a worker that stopped mid-send is not sent again", runs: 2, wantCalls: 0, wantStatus: core.DeliveryFailed,
			wantError: "the worker stopped while sending", wantTries: 1,
			before: func(t *testing.T, d core.Delivery) {
				if _, claimed, err := db.ClaimDelivery(ctx, d.MerchantID, d.ID); err != nil || !claimed {
					t.Fatalf("claim: %v %v", claimed, err)
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			till := time.Date(2031, 5, 31, 12, 0, 0, 0, time.UTC)
			d := queuedDelivery(t, db, till.AddDate(0, 1, 0), till)
			if tc.before != nil {
				tc.before(t, d)
			}
			provider := &scriptedSender{answers: tc.answers}
			sender := core.NewDeliverySender(db, db, provider, slog.New(slog.NewTextHandler(io.Discard, nil)))
			for i := 0; i < tc.runs; i++ {
				_ = sender.Send(ctx, d.MerchantID, d.ID, tc.lastAttempt && i == tc.runs-1)
			}
			got, err := db.GetDelivery(ctx, d.MerchantID, d.ListID, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			if provider.calls() != tc.wantCalls || got.Status != tc.wantStatus || got.Attempts != tc.wantTries ||
				!strings.Contains(got.Error, tc.wantError) {
				t.Fatalf("provider called %d times, delivery %s after %d attempts (%q); want %d, %s, %d (%q)",
					provider.calls(), got.Status, got.Attempts, got.Error, tc.wantCalls, tc.wantStatus, tc.wantTries, tc.wantError)
			}
			for _, msg := range provider.sent {
				// The code's own expiry, which is earlier than the list's.
				if msg.To != "ann@example.com" || msg.Subject != "For Ann" || msg.Text != "AUTUMN-1 until 31 May 2031 (Autumn)" {
					t.Fatalf("message: %+v", msg)
				}
			}
		})
	}
}

// countingQueue counts the sends queued.
type countingQueue struct {
	mu    sync.Mutex
	sends []uuid.UUID
}

func (q *countingQueue) EnqueueSend(_ context.Context, _ uuid.UUID, id uuid.UUID) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sends = append(q.sends, id)
	return nil
}

func (q *countingQueue) EnqueueResumeDeliveries(context.Context, uuid.UUID, uuid.UUID) error {
	return nil
}

// TestFailedDeliveryIsSentAgainWhenAskedAgain: after a refusal (a wrong SMTP password, say) the
// merchant asks again for the same recipient and campaign: the same delivery, with the same code,
// is queued again; a sent one is not.
func TestFailedDeliveryIsSentAgainWhenAskedAgain(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	d := queuedDelivery(t, db, time.Now().AddDate(1, 0, 0), time.Now().AddDate(1, 0, 0))
	provider := &scriptedSender{answers: []error{refusal("535 authentication failed"), nil}}
	sender := core.NewDeliverySender(db, db, provider, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := sender.Send(ctx, d.MerchantID, d.ID, false); err != nil {
		t.Fatal(err)
	}
	queue := &countingQueue{}
	deliveries := core.NewDeliveries(db, db, db, nil, channelsOn{}, queue)
	in := core.DeliveryInput{Recipient: d.Recipient, Channel: core.ChannelEmail, TemplateID: d.TemplateID}
	for i, want := range []string{core.DeliveryQueued, core.DeliverySent} {
		again, created, err := deliveries.Create(ctx, d.MerchantID, d.ListID, in)
		if err != nil {
			t.Fatal(err)
		}
		if created || again.ID != d.ID || again.Code != "AUTUMN-1" || again.Status != want {
			t.Fatalf("ask %d: created %v, %+v; want the same delivery %s", i+1, created, again, want)
		}
		if err := sender.Send(ctx, d.MerchantID, d.ID, false); err != nil {
			t.Fatal(err)
		}
	}
	if provider.calls() != 2 || len(queue.sends) != 1 {
		t.Fatalf("provider called %d times, %d sends queued; want 2 and 1", provider.calls(), len(queue.sends))
	}
}

// channelsOn says every channel is configured.
type channelsOn struct{}

func (channelsOn) ChannelConfigured(context.Context, uuid.UUID, core.Channel) (bool, error) {
	return true, nil
}
