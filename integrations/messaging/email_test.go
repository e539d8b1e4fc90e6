package messaging_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
)

const (
	sinkUser     = "mailer@coupongate.test"
	sinkPassword = "s3cret-smtp-password"
)

// sendErr asserts err is a *SendError and returns it.
func sendErr(t *testing.T, err error) *messaging.SendError {
	t.Helper()
	var se *messaging.SendError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *SendError", err, err)
	}
	return se
}

// noSecret fails when err's message contains any of the secrets.
func noSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("error message leaks a secret: %q", err.Error())
		}
	}
}

func TestSMTPSettingsValidate(t *testing.T) {
	t.Parallel()
	good := messaging.SMTPSettings{Host: "smtp.example.com", Port: 587, Username: "u", Password: "p",
		From: "Shop <no-reply@example.com>", Security: messaging.SecurityStartTLS}
	tests := []struct {
		name   string
		change func(*messaging.SMTPSettings)
		want   string // "" = valid
	}{
		{"valid", func(*messaging.SMTPSettings) {}, ""},
		{"valid without auth", func(s *messaging.SMTPSettings) { s.Username, s.Password = "", "" }, ""},
		{"valid tls", func(s *messaging.SMTPSettings) { s.Security, s.Port = messaging.SecurityTLS, 465 }, ""},
		{"none with auth on loopback", func(s *messaging.SMTPSettings) { s.Security, s.Host = messaging.SecurityNone, "127.0.0.1" }, ""},
		{"no host", func(s *messaging.SMTPSettings) { s.Host = " " }, "host is required"},
		{"host with scheme", func(s *messaging.SMTPSettings) { s.Host = "smtp://x" }, "not a host name"},
		{"port zero", func(s *messaging.SMTPSettings) { s.Port = 0 }, "port 0"},
		{"port too big", func(s *messaging.SMTPSettings) { s.Port = 65536 }, "port 65536"},
		{"no from", func(s *messaging.SMTPSettings) { s.From = "" }, "from is required"},
		{"bad from", func(s *messaging.SMTPSettings) { s.From = "not an address" }, "not an e-mail address"},
		{"unknown security", func(s *messaging.SMTPSettings) { s.Security = "ssl" }, `security "ssl"`},
		{"empty security", func(s *messaging.SMTPSettings) { s.Security = "" }, `security ""`},
		{"user without password", func(s *messaging.SMTPSettings) { s.Password = "" }, "needs a password"},
		{"password without user", func(s *messaging.SMTPSettings) { s.Username = "" }, "needs a username"},
		{"clear-text password to a remote host", func(s *messaging.SMTPSettings) { s.Security = messaging.SecurityNone }, "clear text"},
		{"negative timeout", func(s *messaging.SMTPSettings) { s.Timeout = -time.Second }, "timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := good
			s.Password = "p4ssw0rd-value"
			tc.change(&s)
			err := s.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want it to mention %q", err, tc.want)
			}
			noSecret(t, err, "p4ssw0rd-value")
		})
	}
}

func TestSettingsPrintWithoutSecrets(t *testing.T) {
	t.Parallel()
	smtpS := messaging.SMTPSettings{Host: "h", Port: 25, Username: "u", Password: "smtp-pw-123", From: "a@b.c", Security: "none"}
	twS := messaging.TwilioSettings{AccountSID: "AC123", AuthToken: "twilio-tok-456", From: "+15005550006"}
	fcmS := messaging.FCMSettings{ServiceAccount: []byte(`{"private_key":"-----BEGIN PRIVATE KEY-----xyz"}`)}
	for _, v := range []any{smtpS, &smtpS, twS, fcmS} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, v)
			for _, secret := range []string{"smtp-pw-123", "twilio-tok-456", "PRIVATE KEY"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s of %T prints a secret: %s", verb, v, out)
				}
			}
		}
	}
}

func TestMailerSendsOverEverySecurity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     messagingfake.SinkConfig
		wantTLS bool
	}{
		{"plain", messagingfake.SinkConfig{}, false},
		{"plain with auth on loopback", messagingfake.SinkConfig{Username: sinkUser, Password: sinkPassword}, false},
		{"starttls", messagingfake.SinkConfig{StartTLS: true}, true},
		{"starttls with auth", messagingfake.SinkConfig{StartTLS: true, Username: sinkUser, Password: sinkPassword}, true},
		{"implicit tls", messagingfake.SinkConfig{TLS: true}, true},
		{"implicit tls with auth", messagingfake.SinkConfig{TLS: true, Username: sinkUser, Password: sinkPassword}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := messagingfake.NewSMTPSink(t, tc.cfg)
			m := messaging.NewMailer(sink.Settings(""))
			defer m.Close()
			err := m.Send(context.Background(), messaging.Email{
				To: "Ana <ana@example.com>", Subject: "Your code: SAVE10 – thanks", Text: "Use SAVE10.\nBye.",
				HTML: "<p>Use <b>SAVE10</b>.</p>", MessageID: "<code-42@coupongate.test>",
				Headers: map[string]string{"List-Unsubscribe": "<mailto:unsub@coupongate.test>"},
			})
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := sink.Messages()
			if len(msgs) != 1 {
				t.Fatalf("sink got %d messages", len(msgs))
			}
			got := msgs[0]
			if got.From != "no-reply@coupongate.test" || len(got.To) != 1 || got.To[0] != "ana@example.com" {
				t.Errorf("envelope %q → %q", got.From, got.To)
			}
			if got.Subject != "Your code: SAVE10 – thanks" || got.Text != "Use SAVE10.\nBye." || got.HTML != "<p>Use <b>SAVE10</b>.</p>" {
				t.Errorf("content: subject %q text %q html %q", got.Subject, got.Text, got.HTML)
			}
			if got.MessageID != "code-42@coupongate.test" {
				t.Errorf("Message-ID %q", got.MessageID)
			}
			if got.Header.Get("List-Unsubscribe") != "<mailto:unsub@coupongate.test>" {
				t.Errorf("List-Unsubscribe %q", got.Header.Get("List-Unsubscribe"))
			}
			if !strings.HasPrefix(got.Header.Get("Content-Type"), "multipart/alternative") {
				t.Errorf("Content-Type %q", got.Header.Get("Content-Type"))
			}
			if got.TLS != tc.wantTLS {
				t.Errorf("TLS = %v, want %v", got.TLS, tc.wantTLS)
			}
			if want := tc.cfg.Username; got.AuthUser != want {
				t.Errorf("AuthUser = %q, want %q", got.AuthUser, want)
			}
		})
	}
}

func TestMailerBodies(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{StartTLS: true})
	m := messaging.NewMailer(sink.Settings("shop@coupongate.test"))
	defer m.Close()
	tests := []struct {
		name, text, html, wantType string
	}{
		{"text only", "Ünïcode text line\nsecond line", "", "text/plain"},
		{"html only", "", "<h1>Hi</h1>", "text/html"},
		{"both", "plain", "<i>rich</i>", "multipart/alternative"},
		{"long line", strings.Repeat("abcdefghij", 50), "", "text/plain"},
	}
	// Not parallel: the cases share one sink, which each resets and reads.
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink.Reset()
			if err := m.Send(context.Background(), messaging.Email{To: "b@example.com", Subject: tc.name, Text: tc.text, HTML: tc.html}); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := sink.Messages()[0]
			if got.Text != tc.text || got.HTML != tc.html {
				t.Errorf("text %q html %q", got.Text, got.HTML)
			}
			if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
				t.Errorf("Content-Type %q, want %s", ct, tc.wantType)
			}
			if !strings.HasSuffix(got.MessageID, "@coupongate.test") || len(got.MessageID) < 20 {
				t.Errorf("generated Message-ID %q is not on the sender's domain", got.MessageID)
			}
		})
	}
}

func TestMailerMessageIDIsStable(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	m := messaging.NewMailer(sink.Settings(""))
	defer m.Close()
	for _, id := range []string{"order-7.code-1@coupongate.test", "<order-7.code-1@coupongate.test>"} {
		if err := m.Send(context.Background(), messaging.Email{To: "c@example.com", Text: "x", MessageID: id}); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	msgs := sink.Messages()
	if msgs[0].MessageID != "order-7.code-1@coupongate.test" || msgs[1].MessageID != msgs[0].MessageID {
		t.Fatalf("Message-IDs %q, %q", msgs[0].MessageID, msgs[1].MessageID)
	}
}

func TestMailerReusesOneConnection(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{StartTLS: true, Username: sinkUser, Password: sinkPassword})
	m := messaging.NewMailer(sink.Settings(""))
	defer m.Close()
	for i := range 50 {
		if err := m.Send(context.Background(), messaging.Email{To: fmt.Sprintf("u%d@example.com", i), Subject: "s", Text: "t"}); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
	}
	if sink.Count() != 50 || sink.Connections() != 1 {
		t.Fatalf("count %d over %d connections, want 50 over 1", sink.Count(), sink.Connections())
	}
}

func TestMailerConcurrentSendsShareAPool(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{TLS: true})
	s := sink.Settings("")
	s.MaxConns = 3
	m := messaging.NewMailer(s)
	defer m.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 300)
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				errs <- m.Send(context.Background(), messaging.Email{To: fmt.Sprintf("g%d-%d@example.com", g, i), Text: "t"})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if sink.Count() != 300 {
		t.Fatalf("count %d, want 300", sink.Count())
	}
	if c := sink.Connections(); c > 3 {
		t.Fatalf("%d connections, want at most MaxConns 3", c)
	}
}

func TestMailerReconnectsAfterTheServerDropsTheConnection(t *testing.T) {
	t.Parallel()
	for _, cfg := range []messagingfake.SinkConfig{{}, {StartTLS: true, Username: sinkUser, Password: sinkPassword}, {TLS: true}} {
		t.Run(fmt.Sprintf("tls=%v starttls=%v", cfg.TLS, cfg.StartTLS), func(t *testing.T) {
			t.Parallel()
			sink := messagingfake.NewSMTPSink(t, cfg)
			m := messaging.NewMailer(sink.Settings(""))
			defer m.Close()
			send := func(i int) {
				t.Helper()
				if err := m.Send(context.Background(), messaging.Email{To: fmt.Sprintf("r%d@example.com", i), Text: "t"}); err != nil {
					t.Fatalf("Send %d: %v", i, err)
				}
			}
			send(1)
			if n := sink.DropConnections(); n != 1 {
				t.Fatalf("dropped %d connections", n)
			}
			send(2)
			send(3)
			if sink.Count() != 3 || sink.Connections() != 2 {
				t.Fatalf("count %d over %d connections, want 3 over 2", sink.Count(), sink.Connections())
			}
		})
	}
}

func TestMailerErrors(t *testing.T) {
	t.Parallel()
	closedPort := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return port
	}()
	tests := []struct {
		name      string
		cfg       messagingfake.SinkConfig
		settings  func(messaging.SMTPSettings) messaging.SMTPSettings
		prepare   func(*messagingfake.SMTPSink)
		email     messaging.Email
		permanent bool
		code      string
		wait      time.Duration
	}{
		{name: "recipient rejected 550", cfg: messagingfake.SinkConfig{RejectRecipients: map[string]int{"gone@example.com": 550}},
			email: messaging.Email{To: "gone@example.com", Text: "t"}, permanent: true, code: "5.1.1"},
		{name: "recipient deferred 451", cfg: messagingfake.SinkConfig{RejectRecipients: map[string]int{"Busy@Example.com": 451}},
			email: messaging.Email{To: "busy@example.com", Text: "t"}, code: "4.2.1"},
		{name: "DATA deferred 451", prepare: func(s *messagingfake.SMTPSink) { s.FailNext(1, 451) },
			email: messaging.Email{To: "x@example.com", Text: "t"}, code: "4.3.0"},
		{name: "DATA rejected 554", prepare: func(s *messagingfake.SMTPSink) { s.FailNext(1, 554) },
			email: messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: "5.3.0"},
		{name: "wrong password", cfg: messagingfake.SinkConfig{StartTLS: true, Username: sinkUser, Password: sinkPassword},
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings { s.Password = "wrong-password-789"; return s },
			email:    messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeAuth},
		{name: "auth required but not configured", cfg: messagingfake.SinkConfig{StartTLS: true, Username: sinkUser, Password: sinkPassword},
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings { s.Username, s.Password = "", ""; return s },
			email:    messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeAuth},
		{name: "auth configured but not offered", cfg: messagingfake.SinkConfig{StartTLS: true},
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings {
				s.Username, s.Password = sinkUser, sinkPassword
				return s
			},
			email: messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeAuth},
		{name: "untrusted certificate", cfg: messagingfake.SinkConfig{TLS: true},
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings { s.TLSConfig = nil; return s },
			email:    messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeTLS},
		{name: "untrusted certificate on STARTTLS", cfg: messagingfake.SinkConfig{StartTLS: true},
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings { s.TLSConfig = nil; return s },
			email:    messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeTLS},
		{name: "STARTTLS required but not offered", cfg: messagingfake.SinkConfig{},
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings {
				s.Security = messaging.SecurityStartTLS
				return s
			},
			email: messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeTLS},
		{name: "connection refused",
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings { s.Port = closedPort; return s },
			email:    messaging.Email{To: "x@example.com", Text: "t"}, code: messaging.CodeNetwork},
		{name: "invalid settings",
			settings: func(s messaging.SMTPSettings) messaging.SMTPSettings { s.Security = "ssl"; return s },
			email:    messaging.Email{To: "x@example.com", Text: "t"}, permanent: true, code: messaging.CodeSettings},
		{name: "bad recipient", email: messaging.Email{To: "not-an-address", Text: "t"}, permanent: true, code: messaging.CodeInvalid},
		{name: "no body", email: messaging.Email{To: "x@example.com"}, permanent: true, code: messaging.CodeInvalid},
		{name: "header injection", email: messaging.Email{To: "x@example.com", Text: "t", Headers: map[string]string{"X-A": "1\r\nBcc: y@example.com"}},
			permanent: true, code: messaging.CodeInvalid},
		{name: "reserved header", email: messaging.Email{To: "x@example.com", Text: "t", Headers: map[string]string{"bcc": "y@example.com"}},
			permanent: true, code: messaging.CodeInvalid},
		{name: "subject injection", email: messaging.Email{To: "x@example.com", Subject: "a\nBcc: y@example.com", Text: "t"},
			permanent: true, code: messaging.CodeInvalid},
		{name: "bad message ID", email: messaging.Email{To: "x@example.com", Text: "t", MessageID: "no-at-sign"},
			permanent: true, code: messaging.CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sink := messagingfake.NewSMTPSink(t, tc.cfg)
			s := sink.Settings("")
			if tc.settings != nil {
				s = tc.settings(s)
			}
			if tc.prepare != nil {
				tc.prepare(sink)
			}
			m := messaging.NewMailer(s)
			defer m.Close()
			err := m.Send(context.Background(), tc.email)
			se := sendErr(t, err)
			if se.Permanent != tc.permanent || se.Code != tc.code || se.Channel != messaging.ChannelEmail {
				t.Fatalf("got %+v (%v), want permanent=%v code=%q", se, err, tc.permanent, tc.code)
			}
			if messaging.IsPermanent(err) != tc.permanent {
				t.Fatalf("IsPermanent = %v", !tc.permanent)
			}
			if se.RetryAfter() != tc.wait {
				t.Fatalf("RetryAfter = %s", se.RetryAfter())
			}
			noSecret(t, err, sinkPassword, "wrong-password-789")
			if sink.Count() != 0 {
				t.Fatalf("sink accepted %d messages", sink.Count())
			}
		})
	}
}

func TestMailerKeepsTheConnectionAfterARefusal(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{RejectRecipients: map[string]int{"gone@example.com": 550}})
	m := messaging.NewMailer(sink.Settings(""))
	defer m.Close()
	sink.FailNext(1, 451)
	ctx := context.Background()
	if err := m.Send(ctx, messaging.Email{To: "a@example.com", Text: "t"}); err == nil || messaging.IsPermanent(err) {
		t.Fatalf("first send: %v, want a transient error", err)
	}
	if err := m.Send(ctx, messaging.Email{To: "gone@example.com", Text: "t"}); !messaging.IsPermanent(err) {
		t.Fatalf("second send: %v, want a permanent error", err)
	}
	if err := m.Send(ctx, messaging.Email{To: "a@example.com", Text: "t"}); err != nil {
		t.Fatalf("third send: %v", err)
	}
	if sink.Count() != 1 || sink.Connections() != 1 {
		t.Fatalf("count %d over %d connections, want 1 over 1", sink.Count(), sink.Connections())
	}
}

func TestMailerContext(t *testing.T) {
	t.Parallel()
	t.Run("canceled before", func(t *testing.T) {
		t.Parallel()
		sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
		m := messaging.NewMailer(sink.Settings(""))
		defer m.Close()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := m.Send(ctx, messaging.Email{To: "x@example.com", Text: "t"})
		if se := sendErr(t, err); se.Permanent || se.Code != messaging.CodeTimeout || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("server that never greets", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var held []net.Conn
		var mu sync.Mutex
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		defer func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range held {
				c.Close()
			}
		}()
		s := messaging.SMTPSettings{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, From: "a@b.example", Security: messaging.SecurityNone}
		for _, tc := range []struct {
			name    string
			timeout time.Duration
			ctx     time.Duration
		}{{"settings timeout", 200 * time.Millisecond, time.Minute}, {"context deadline", time.Minute, 200 * time.Millisecond}} {
			s.Timeout = tc.timeout
			m := messaging.NewMailer(s)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
			start := time.Now()
			err := m.Send(ctx, messaging.Email{To: "x@example.com", Text: "t"})
			cancel()
			m.Close()
			if se := sendErr(t, err); se.Permanent || (se.Code != messaging.CodeTimeout && se.Code != messaging.CodeNetwork) {
				t.Fatalf("%s: got %v", tc.name, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("%s: took %s", tc.name, d)
			}
		}
	})
}

func TestMailerClose(t *testing.T) {
	t.Parallel()
	sink := messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{})
	m := messaging.NewMailer(sink.Settings(""))
	if err := m.Send(context.Background(), messaging.Email{To: "x@example.com", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := m.Send(context.Background(), messaging.Email{To: "x@example.com", Text: "t"}); !errors.Is(err, messaging.ErrMailerClosed) {
		t.Fatalf("Send after Close = %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for sink.OpenConnections() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Close", sink.OpenConnections())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func BenchmarkMailerSend(b *testing.B) {
	sink := messagingfake.NewSMTPSink(b, messagingfake.SinkConfig{StartTLS: true, Username: sinkUser, Password: sinkPassword, CountOnly: true})
	m := messaging.NewMailer(sink.Settings(""))
	defer m.Close()
	e := messaging.Email{To: "bench@example.com", Subject: "Your code", Text: "Use SAVE10.", HTML: "<p>Use SAVE10.</p>"}
	b.SetParallelism(4) // 8 senders on 2 CPUs, over DefaultMailerConns connections
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := m.Send(context.Background(), e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if sink.Count() < b.N {
		b.Fatalf("sink counted %d of %d", sink.Count(), b.N)
	}
}

// TestMailerNeverQuotesThePassword talks to a server that quotes the AUTH command back.
func TestMailerNeverQuotesThePassword(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				fmt.Fprintf(c, "220 echo ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch {
					case strings.HasPrefix(line, "EHLO"):
						fmt.Fprintf(c, "250-echo\r\n250 AUTH PLAIN\r\n")
					case strings.HasPrefix(line, "AUTH"):
						fmt.Fprintf(c, "535 5.7.8 Authentication failed for %q\r\n", line)
					default:
						fmt.Fprintf(c, "221 bye\r\n")
						return
					}
				}
			}()
		}
	}()
	const password = "hunter2-very-secret"
	s := messaging.SMTPSettings{Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, Username: "user@example.com",
		Password: password, From: "a@example.com", Security: messaging.SecurityNone}
	m := messaging.NewMailer(s)
	defer m.Close()
	err = m.Send(context.Background(), messaging.Email{To: "x@example.com", Text: "t"})
	if se := sendErr(t, err); !se.Permanent || se.Code != messaging.CodeAuth || !strings.Contains(se.Reason, "[redacted]") {
		t.Fatalf("got %v", err)
	}
	blob := base64.StdEncoding.EncodeToString([]byte("\x00user@example.com\x00" + password))
	noSecret(t, err, password, blob)
}
