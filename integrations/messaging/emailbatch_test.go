package messaging_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
)

// batchOf is n emails to b0@example.com … with their own Message-IDs; the text of each starts
// a line with a dot, which the content must carry through (dot-stuffing).
func batchOf(n int) []messaging.Email {
	out := make([]messaging.Email, n)
	for i := range out {
		out[i] = messaging.Email{To: fmt.Sprintf("b%d@example.com", i), Subject: fmt.Sprintf("Code %d", i),
			Text: fmt.Sprintf("Your code is C%04d\n.\n..and a line that starts with dots", i), MessageID: fmt.Sprintf("<batch-%d@coupongate>", i)}
	}
	return out
}

// received maps each recipient the sink got mail for to its messages' texts.
func received(sink *messagingfake.SMTPSink) map[string][]string {
	out := map[string][]string{}
	for _, m := range sink.Messages() {
		out[m.To[0]] = append(out[m.To[0]], m.Text)
	}
	return out
}

// TestMailerSendBatch: a batch goes over one pipelined connection; the server's refusal of one
// email (at RCPT, or at the end of DATA) is that email's error, permanent or not as in Send, and
// the others are taken, each once, with their content intact; a server that closes the
// connection (421) or drops it between batches costs a new connection, not an email.
func TestMailerSendBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     messagingfake.SinkConfig
		prepare func(*messagingfake.SMTPSink)
		// refused maps an email of the batch to whether its error is permanent.
		refused map[int]bool
		conns   int
	}{
		{name: "plain", conns: 1},
		{name: "STARTTLS and AUTH", cfg: messagingfake.SinkConfig{StartTLS: true, Username: sinkUser, Password: sinkPassword}, conns: 1},
		{name: "a recipient refused for good and one for now",
			cfg:     messagingfake.SinkConfig{RejectRecipients: map[string]int{"b3@example.com": 550, "b7@example.com": 450}},
			refused: map[int]bool{3: true, 7: false}, conns: 1},
		{name: "the first email refused at the end of DATA", prepare: func(s *messagingfake.SMTPSink) { s.FailNext(1, 554) },
			refused: map[int]bool{0: true}, conns: 1},
		{name: "the server closes the connection after the first", prepare: func(s *messagingfake.SMTPSink) { s.FailNext(1, 421) },
			refused: map[int]bool{0: false}, conns: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := messagingfake.NewSMTPSink(t, tc.cfg)
			m := messaging.NewMailer(sink.Settings(""))
			defer m.Close()
			if tc.prepare != nil {
				tc.prepare(sink)
			}
			emails := batchOf(12)
			errs := m.SendBatch(context.Background(), emails)
			if len(errs) != len(emails) {
				t.Fatalf("%d answers for %d emails", len(errs), len(emails))
			}
			got := received(sink)
			for i, err := range errs {
				permanent, refused := tc.refused[i]
				switch {
				case refused && err == nil:
					t.Errorf("email %d: taken, want refused", i)
				case refused && messaging.IsPermanent(err) != permanent:
					t.Errorf("email %d: %v, want permanent %v", i, err, permanent)
				case !refused && err != nil:
					t.Errorf("email %d: %v", i, err)
				case !refused && (len(got[emails[i].To]) != 1 || !strings.Contains(got[emails[i].To][0], "\n..and a line") ||
					!strings.HasPrefix(got[emails[i].To][0], fmt.Sprintf("Your code is C%04d\n.\n", i))):
					t.Errorf("email %d: received %q", i, got[emails[i].To])
				}
			}
			if want := len(emails) - len(tc.refused); len(sink.Messages()) != want {
				t.Errorf("the sink holds %d messages, want %d", len(sink.Messages()), want)
			}
			if c := sink.Connections(); c != tc.conns {
				t.Errorf("%d connections, want %d", c, tc.conns)
			}
		})
	}
}

// TestMailerSendBatchAfterTheServerDroppedTheConnection: the pooled connection of an earlier batch
// was dropped by the server while idle; the next batch finds it dead before offering anything and
// goes on over a new one.
func TestMailerSendBatchAfterTheServerDroppedTheConnection(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	m := messaging.NewMailer(sink.Settings(""))
	defer m.Close()
	for round := range 2 {
		for i, err := range m.SendBatch(context.Background(), batchOf(5)) {
			if err != nil {
				t.Fatalf("round %d, email %d: %v", round, i, err)
			}
		}
		if round == 0 && sink.DropConnections() != 1 {
			t.Fatal("no connection to drop")
		}
	}
	if sink.Count() != 10 || sink.Connections() != 2 {
		t.Fatalf("%d messages over %d connections, want 10 over 2", sink.Count(), sink.Connections())
	}
}

// TestMailerSendBatchRefusesBadEmailsAlone: an email that cannot be built (no address, no body)
// gets its permanent error and the others go out.
func TestMailerSendBatchRefusesBadEmailsAlone(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	m := messaging.NewMailer(sink.Settings(""))
	defer m.Close()
	emails := batchOf(4)
	emails[1].To = "not an address"
	emails[2].Text = ""
	errs := m.SendBatch(context.Background(), emails)
	for i, err := range errs {
		if bad := i == 1 || i == 2; bad != (err != nil) || (bad && !messaging.IsPermanent(err)) {
			t.Errorf("email %d: %v", i, err)
		}
	}
	if sink.Count() != 2 {
		t.Fatalf("the sink got %d messages, want 2", sink.Count())
	}
}

// TestMailerSendBatchAfterClose: a closed Mailer refuses the batch.
func TestMailerSendBatchAfterClose(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	m := messaging.NewMailer(sink.Settings(""))
	_ = m.Close()
	for _, err := range m.SendBatch(context.Background(), batchOf(2)) {
		if err != messaging.ErrMailerClosed {
			t.Fatalf("after Close: %v", err)
		}
	}
}
