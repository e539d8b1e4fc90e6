package messaging_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/netguard"
)

// localhost is u with its host replaced by the name "localhost", which resolves to a loopback
// address: what a merchant's host name may come to resolve to after it was checked.
func localhost(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p.Host = "localhost:" + p.Port()
	return p.String()
}

// wantRefused checks err is the permanent address refusal, naming the address.
func wantRefused(t *testing.T, err error) {
	t.Helper()
	var se *messaging.SendError
	if !errors.As(err, &se) || !se.Permanent || se.Code != messaging.CodeAddressRefused ||
		!errors.Is(err, netguard.ErrForbidden) || !strings.Contains(se.Reason, "non-public address") {
		t.Fatalf("got %v, want a permanent %s error naming the address", err, messaging.CodeAddressRefused)
	}
}

func TestMailerDialsThroughTheGuard(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	s := sink.Settings("")
	s.Host = "localhost"
	s.Dial = netguard.Guard{}.DialContext
	m := messaging.NewMailer(s)
	defer m.Close()
	mail := messaging.Email{To: "ana@example.com", Subject: "Code", Text: "SAVE10"}
	wantRefused(t, m.Send(context.Background(), mail))
	if sink.Connections() != 0 {
		t.Fatalf("the sink was reached %d times", sink.Connections())
	}

	s.Dial = netguard.Guard{AllowPrivate: true}.DialContext
	open := messaging.NewMailer(s)
	defer open.Close()
	if err := open.Send(context.Background(), mail); err != nil || sink.Count() != 1 {
		t.Fatalf("with private networks allowed: %v, %d messages", err, sink.Count())
	}
}

func TestPushTokenURIDialsThroughTheGuard(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	s := fcm.Settings()
	s.ServiceAccount = editJSON(t, s.ServiceAccount, map[string]any{"token_uri": localhost(t, fcm.URL()+"/token")})
	s.HTTP = netguard.Guard{}.Client(10 * time.Second)
	p, err := messaging.NewPushSender(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(context.Background(), "device-1", "Code", "SAVE10", nil)
	wantRefused(t, err)
	if !strings.Contains(err.Error(), "minting an access token") || fcm.Tokens() != 0 {
		t.Fatalf("%v; %d tokens minted", err, fcm.Tokens())
	}

	s = fcm.Settings()
	s.HTTP = netguard.Guard{AllowPrivate: true}.Client(10 * time.Second)
	open, err := messaging.NewPushSender(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Send(context.Background(), "device-1", "Code", "SAVE10", nil); err != nil || len(fcm.Messages()) != 1 {
		t.Fatalf("with private networks allowed: %v, %d pushes", err, len(fcm.Messages()))
	}
}

// byPath sends requests for /token through token and the others through rest.
type byPath struct{ token, rest http.RoundTripper }

func (b byPath) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/token" {
		return b.token.RoundTrip(r)
	}
	return b.rest.RoundTrip(r)
}

// TestPushSendDialsThroughTheGuard: the send itself (messages:send) is refused at dial time too,
// when the token was minted elsewhere.
func TestPushSendDialsThroughTheGuard(t *testing.T) {
	t.Parallel()
	fcm := messagingfake.NewFCM(t)
	s := fcm.Settings()
	s.BaseURL = localhost(t, fcm.URL())
	s.HTTP = &http.Client{Timeout: 10 * time.Second,
		Transport: byPath{token: netguard.Guard{AllowPrivate: true}.Transport(), rest: netguard.Guard{}.Transport()}}
	p, err := messaging.NewPushSender(s)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Send(context.Background(), "device-1", "Code", "SAVE10", nil)
	wantRefused(t, err)
	if !strings.Contains(err.Error(), "messages:send") || fcm.Tokens() != 1 || len(fcm.Messages()) != 0 {
		t.Fatalf("%v; %d tokens, %d pushes", err, fcm.Tokens(), len(fcm.Messages()))
	}
}

// TestTwilioRefusalIsPermanent: the SMS client classifies a refused address the same way (its
// host is the operator's TWILIO_API_URL, but a client that dials through the guard is refused
// for good rather than retried).
func TestTwilioRefusalIsPermanent(t *testing.T) {
	t.Parallel()
	twilio := messagingfake.NewTwilio(t, messagingfake.TwilioConfig{})
	s := twilio.Settings("+15005550006")
	s.BaseURL = localhost(t, twilio.URL())
	s.HTTP = netguard.Guard{}.Client(10 * time.Second)
	_, err := messaging.SendSMS(context.Background(), s, "+4915112345678", "Code SAVE10")
	wantRefused(t, err)
	if n := len(twilio.Messages()); n != 0 {
		t.Fatalf("%d messages reached Twilio", n)
	}
}
