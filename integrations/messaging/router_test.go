package messaging_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/netguard"
)

// channels is an in-memory core.ChannelStore that counts its reads.
type channels struct {
	mu    sync.Mutex
	m     map[string]core.ChannelConfig
	reads int
}

func (c *channels) put(t *testing.T, merchantID uuid.UUID, ch core.Channel, settings any) core.ChannelConfig {
	t.Helper()
	secret, err := json.Marshal(settings)
	if err != nil {
		t.Fatal(err)
	}
	cfg := core.ChannelConfig{MerchantID: merchantID, Channel: ch, Secret: secret}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]core.ChannelConfig{}
	}
	c.m[merchantID.String()+string(ch)] = cfg
	return cfg
}

func (c *channels) PutChannel(_ context.Context, cfg core.ChannelConfig) (core.ChannelConfig, error) {
	return cfg, errors.New("not used")
}

func (c *channels) GetChannel(_ context.Context, merchantID uuid.UUID, ch core.Channel) (core.ChannelConfig, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	cfg, ok := c.m[merchantID.String()+string(ch)]
	if !ok {
		return core.ChannelConfig{}, core.ErrChannelNotFound
	}
	return cfg, nil
}

// emailSettings are a merchant's settings for the sink, sending from from.
func emailSettings(sink *messagingfake.SMTPSink, from string) core.EmailChannel {
	host, port := sink.Addr()
	return core.EmailChannel{Host: host, Port: port, From: from, Security: messaging.SecurityNone}
}

// eventually polls cond for up to ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func email(to string) core.Message {
	return core.Message{Channel: core.ChannelEmail, To: to, Subject: "Your code", Text: "CODE-1", MessageID: uuid.NewString() + "@coupongate.test"}
}

// A merchant without the channel gets core's "not configured" error, alone or in a batch.
func TestRouterWithoutChannel(t *testing.T) {
	t.Parallel()
	r := messaging.NewRouter(&channels{}, "", "", netguard.Guard{AllowPrivate: true})
	defer r.Close()
	merchant := uuid.New()
	if _, err := r.Send(context.Background(), merchant, email("ada@example.com")); !errors.Is(err, core.ErrChannelNotSet) {
		t.Fatalf("send without a channel: %v, want ErrChannelNotSet", err)
	}
	for i, res := range r.SendBatch(context.Background(), merchant, []core.Message{email("a@example.com"), email("b@example.com")}) {
		if !errors.Is(res.Err, core.ErrChannelNotSet) {
			t.Fatalf("batch message %d without a channel: %v, want ErrChannelNotSet", i, res.Err)
		}
	}
}

// A merchant's emails go over one kept SMTP connection, single or batched, with the settings read
// once per five seconds. Changed settings are seen once that time has passed: a new connection,
// the old one closed. A test send with other settings uses a connection of its own, not kept;
// Close closes the kept ones.
func TestRouterKeepsAConnectionPerMerchantAndSettings(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	store := &channels{}
	merchant := uuid.New()
	store.put(t, merchant, core.ChannelEmail, emailSettings(sink, "shop@example.com"))
	r := messaging.NewRouter(store, "", "", netguard.Guard{AllowPrivate: true})
	defer r.Close()
	now := time.Now()
	r.SetClock(func() time.Time { return now })
	ctx := context.Background()

	for range 3 {
		if _, err := r.Send(ctx, merchant, email("ada@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	for i, res := range r.SendBatch(ctx, merchant, []core.Message{email("a@example.com"), email("b@example.com"), email("c@example.com")}) {
		if res.Err != nil || res.ProviderID == "" {
			t.Fatalf("batch message %d: %+v", i, res)
		}
	}
	if sink.Count() != 6 || sink.Connections() != 1 || store.reads != 1 {
		t.Fatalf("6 emails: %d received over %d connections, settings read %d times; want 6 over 1, read once",
			sink.Count(), sink.Connections(), store.reads)
	}

	store.put(t, merchant, core.ChannelEmail, emailSettings(sink, "news@example.com"))
	if _, err := r.Send(ctx, merchant, email("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	if got := sink.Messages(); sink.Connections() != 1 || got[len(got)-1].From != "shop@example.com" {
		t.Fatalf("within five seconds of the read the old settings are used: %d connections, from %q", sink.Connections(), got[len(got)-1].From)
	}
	now = now.Add(5 * time.Second)
	if _, err := r.Send(ctx, merchant, email("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	if got := sink.Messages(); sink.Connections() != 2 || got[len(got)-1].From != "news@example.com" {
		t.Fatalf("after five seconds the new settings are used: %d connections, from %q", sink.Connections(), got[len(got)-1].From)
	}
	eventually(t, "the old settings' connection closed", func() bool { return sink.OpenConnections() == 1 })

	tested := core.ChannelConfig{MerchantID: merchant, Channel: core.ChannelEmail}
	tested.Secret, _ = json.Marshal(emailSettings(sink, "test@example.com"))
	if _, err := r.SendWith(ctx, tested, email("ada@example.com")); err != nil {
		t.Fatal(err)
	}
	if sink.Connections() != 3 {
		t.Fatalf("a test send made %d connections in all, want its own third", sink.Connections())
	}
	eventually(t, "the test send's connection closed", func() bool { return sink.OpenConnections() == 1 })
	r.Close()
	eventually(t, "Close to close the kept connection", func() bool { return sink.OpenConnections() == 0 })
}

// One batch of email and SMS goes to each provider; a number that unsubscribed fails for good,
// the others are sent.
func TestRouterBatchGoesToEachChannelsProvider(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	twilio := messagingfake.NewTwilio(t, messagingfake.TwilioConfig{Unsubscribed: []string{"+15550000002"}})
	store := &channels{}
	merchant := uuid.New()
	store.put(t, merchant, core.ChannelEmail, emailSettings(sink, "shop@example.com"))
	store.put(t, merchant, core.ChannelSMS, core.SMSChannel{Provider: "twilio", AccountSID: messagingfake.DefaultTwilioAccountSID,
		AuthToken: messagingfake.DefaultTwilioAuthToken, From: messagingfake.DefaultTwilioFrom})
	r := messaging.NewRouter(store, twilio.URL(), "", netguard.Guard{AllowPrivate: true})
	defer r.Close()
	sms := func(to string) core.Message { return core.Message{Channel: core.ChannelSMS, To: to, Text: "CODE-2"} }
	msgs := []core.Message{email("a@example.com"), sms("+15550000001"), email("b@example.com"), sms("+15550000002"), sms("+15550000003")}
	out := r.SendBatch(context.Background(), merchant, msgs)
	for i, res := range out {
		var perm interface{ Permanent() bool }
		switch {
		case msgs[i].To == "+15550000002":
			if !errors.As(res.Err, &perm) || !perm.Permanent() {
				t.Errorf("the unsubscribed number: %v, want a permanent error", res.Err)
			}
		case res.Err != nil || res.ProviderID == "":
			t.Errorf("message %d to %s: %+v", i, msgs[i].To, res)
		}
	}
	if sink.Count() != 2 || len(twilio.Messages()) != 2 {
		t.Fatalf("%d emails and %d SMS received, want 2 and 2", sink.Count(), len(twilio.Messages()))
	}
}

// A batch of SMS stops starting requests once Twilio asks it to wait: the messages not sent by
// then carry that answer (with its Retry-After), so they are sent again later.
func TestRouterBatchStopsWhenAskedToWait(t *testing.T) {
	t.Parallel()
	twilio := messagingfake.NewTwilio(t, messagingfake.TwilioConfig{})
	twilio.FailNext(1, 429, "30")
	store := &channels{}
	merchant := uuid.New()
	store.put(t, merchant, core.ChannelSMS, core.SMSChannel{Provider: "twilio", AccountSID: messagingfake.DefaultTwilioAccountSID,
		AuthToken: messagingfake.DefaultTwilioAuthToken, From: messagingfake.DefaultTwilioFrom})
	r := messaging.NewRouter(store, twilio.URL(), "", netguard.Guard{AllowPrivate: true})
	defer r.Close()
	msgs := make([]core.Message, 100)
	for i := range msgs {
		msgs[i] = core.Message{Channel: core.ChannelSMS, To: "+1555100" + string(rune('0'+i/10)) + string(rune('0'+i%10)), Text: "CODE-3"}
	}
	sent, waiting := 0, 0
	for i, res := range r.SendBatch(context.Background(), merchant, msgs) {
		var ra interface{ RetryAfter() time.Duration }
		switch {
		case res.Err == nil:
			sent++
		case errors.As(res.Err, &ra) && ra.RetryAfter() == 30*time.Second:
			waiting++
		default:
			t.Fatalf("message %d: %v, want sent or told to wait 30 s", i, res.Err)
		}
	}
	if waiting < 2 || twilio.Requests() >= len(msgs) || sent != len(twilio.Messages()) {
		t.Fatalf("%d sent, %d told to wait, %d requests: want the requests to stop after the 429", sent, waiting, twilio.Requests())
	}
}
