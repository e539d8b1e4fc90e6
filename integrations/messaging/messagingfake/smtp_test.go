package messagingfake

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// dial connects a go-smtp client to the sink the way its config asks.
func dial(t *testing.T, s *SMTPSink) *smtp.Client {
	t.Helper()
	host, port := s.Addr()
	addr := fmt.Sprintf("%s:%d", host, port)
	var c *smtp.Client
	var err error
	switch {
	case s.cfg.TLS:
		c, err = smtp.DialTLS(addr, s.TLSConfig())
	case s.cfg.StartTLS:
		c, err = smtp.DialStartTLS(addr, s.TLSConfig())
	default:
		c, err = smtp.Dial(addr)
	}
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// smtpCode returns the reply code of an *smtp.SMTPError, or 0.
func smtpCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

const mixedMessage = "From: Shop <shop@coupongate.test>\r\n" +
	"To: ana@example.com\r\n" +
	"Subject: =?UTF-8?B?RGVpbiBDb2RlOiDDvGJlcg==?=\r\n" +
	"Message-ID: <m-1@coupongate.test>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=outer\r\n" +
	"\r\n" +
	"--outer\r\n" +
	"Content-Type: multipart/alternative; boundary=inner\r\n" +
	"\r\n" +
	"--inner\r\n" +
	"Content-Type: text/plain; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"Gr=C3=BC=C3=9Fe, your code is SAVE10.\r\n" +
	"Second line.\r\n" +
	"--inner\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"PHA+WW91ciBjb2RlIGlzIDxiPlNBVkUxMDwvYj48L3A+\r\n" +
	"--inner--\r\n" +
	"--outer\r\n" +
	"Content-Type: application/pdf\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"JVBERi0=\r\n" +
	"--outer--\r\n"

func TestSMTPSinkParsesWhatItReceives(t *testing.T) {
	t.Parallel()
	for _, cfg := range []SinkConfig{{}, {StartTLS: true, Username: "u", Password: "pw"}, {TLS: true, Username: "u", Password: "pw"}} {
		t.Run(fmt.Sprintf("tls=%v starttls=%v", cfg.TLS, cfg.StartTLS), func(t *testing.T) {
			t.Parallel()
			s := NewSMTPSink(t, cfg)
			c := dial(t, s)
			if cfg.Username != "" {
				if err := c.Auth(sasl.NewPlainClient("", "u", "pw")); err != nil {
					t.Fatalf("Auth: %v", err)
				}
			}
			if err := c.SendMail("shop@coupongate.test", []string{"ana@example.com", "bob@example.com"}, strings.NewReader(mixedMessage)); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			msgs := s.Messages()
			if len(msgs) != 1 || s.Count() != 1 {
				t.Fatalf("%d messages, count %d", len(msgs), s.Count())
			}
			m := msgs[0]
			if m.From != "shop@coupongate.test" || strings.Join(m.To, ",") != "ana@example.com,bob@example.com" {
				t.Errorf("envelope %q → %q", m.From, m.To)
			}
			if m.Subject != "Dein Code: über" || m.MessageID != "m-1@coupongate.test" {
				t.Errorf("subject %q, id %q", m.Subject, m.MessageID)
			}
			if m.Text != "Grüße, your code is SAVE10.\nSecond line." || m.HTML != "<p>Your code is <b>SAVE10</b></p>" {
				t.Errorf("text %q html %q", m.Text, m.HTML)
			}
			if string(m.Raw) != mixedMessage {
				t.Errorf("raw differs:\n%s", m.Raw)
			}
			if m.TLS != (cfg.TLS || cfg.StartTLS) || m.AuthUser != cfg.Username {
				t.Errorf("TLS %v AuthUser %q", m.TLS, m.AuthUser)
			}
		})
	}
}

func TestSMTPSinkRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  SinkConfig
		run  func(*testing.T, *SMTPSink, *smtp.Client)
	}{
		{"MAIL before AUTH is refused", SinkConfig{Username: "u", Password: "pw"}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			if code := smtpCode(c.Mail("a@b.c", nil)); code != 530 {
				t.Fatalf("MAIL answered %d, want 530", code)
			}
		}},
		{"wrong password", SinkConfig{Username: "u", Password: "pw"}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			if code := smtpCode(c.Auth(sasl.NewPlainClient("", "u", "nope"))); code != 535 {
				t.Fatalf("AUTH answered %d, want 535", code)
			}
		}},
		{"no AUTH without credentials", SinkConfig{}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			if err := c.Hello("localhost"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := c.Extension("AUTH"); ok {
				t.Fatal("AUTH offered")
			}
		}},
		{"AUTH only after STARTTLS", SinkConfig{StartTLS: true, Username: "u", Password: "pw"}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			host, port := s.Addr()
			plain, err := smtp.Dial(fmt.Sprintf("%s:%d", host, port))
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			if err := plain.Hello("localhost"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := plain.Extension("STARTTLS"); !ok {
				t.Fatal("STARTTLS not offered")
			}
			if ok, _ := plain.Extension("AUTH"); ok {
				t.Fatal("AUTH offered before STARTTLS")
			}
			if code := smtpCode(plain.Auth(sasl.NewPlainClient("", "u", "pw"))); code < 500 {
				t.Fatalf("AUTH in clear text answered %d", code)
			}
			if err := c.Hello("localhost"); err != nil { // c went through STARTTLS
				t.Fatal(err)
			}
			if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN" {
				t.Fatalf("AUTH after STARTTLS: %v %q", ok, mechs)
			}
		}},
		{"rejected recipients", SinkConfig{RejectRecipients: map[string]int{"Gone@Example.com": 550, "later@example.com": 451}}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			if err := c.Mail("a@b.c", nil); err != nil {
				t.Fatal(err)
			}
			for to, want := range map[string]int{"gone@example.com": 550, "later@example.com": 451, "ok@example.com": 0} {
				if code := smtpCode(c.Rcpt(to, nil)); code != want {
					t.Errorf("RCPT %s answered %d, want %d", to, code, want)
				}
			}
		}},
		{"FailNext on DATA", SinkConfig{}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			s.FailNext(1, 451)
			err := c.SendMail("a@b.c", []string{"x@example.com"}, strings.NewReader("Subject: 1\r\n\r\nbody\r\n"))
			var se *smtp.SMTPError
			if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
				t.Fatalf("first DATA: %v", err)
			}
			if err := c.SendMail("a@b.c", []string{"x@example.com"}, strings.NewReader("Subject: 2\r\n\r\nbody\r\n")); err != nil {
				t.Fatalf("second DATA: %v", err)
			}
			if s.Count() != 1 || s.Messages()[0].Subject != "2" || s.Messages()[0].Text != "body" {
				t.Fatalf("count %d, messages %+v", s.Count(), s.Messages())
			}
		}},
		{"DropConnections", SinkConfig{}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			if err := c.Noop(); err != nil {
				t.Fatal(err)
			}
			if s.OpenConnections() != 1 {
				t.Fatalf("%d open connections", s.OpenConnections())
			}
			if n := s.DropConnections(); n != 1 {
				t.Fatalf("dropped %d", n)
			}
			if err := c.Noop(); err == nil {
				t.Fatal("NOOP worked on a dropped connection")
			}
			if s.OpenConnections() != 0 || s.Connections() != 1 {
				t.Fatalf("open %d, total %d", s.OpenConnections(), s.Connections())
			}
		}},
		{"CountOnly keeps nothing", SinkConfig{CountOnly: true}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			for i := range 3 {
				if err := c.SendMail("a@b.c", []string{"x@example.com"}, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nb\r\n", i))); err != nil {
					t.Fatal(err)
				}
			}
			if s.Count() != 3 || len(s.Messages()) != 0 {
				t.Fatalf("count %d, %d messages kept", s.Count(), len(s.Messages()))
			}
		}},
		{"Reset forgets messages", SinkConfig{}, func(t *testing.T, s *SMTPSink, c *smtp.Client) {
			if err := c.SendMail("a@b.c", []string{"x@example.com"}, strings.NewReader("Subject: x\r\n\r\nb\r\n")); err != nil {
				t.Fatal(err)
			}
			s.Reset()
			if s.Count() != 1 || len(s.Messages()) != 0 {
				t.Fatalf("count %d, %d messages", s.Count(), len(s.Messages()))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewSMTPSink(t, tc.cfg)
			tc.run(t, s, dial(t, s))
		})
	}
}

func TestSMTPSinkSettings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  SinkConfig
		want string
	}{
		{SinkConfig{}, "none"},
		{SinkConfig{StartTLS: true}, "starttls"},
		{SinkConfig{TLS: true}, "tls"},
		{SinkConfig{TLS: true, StartTLS: true}, "tls"},
	}
	for _, tc := range tests {
		s := NewSMTPSink(t, tc.cfg)
		got := s.Settings("")
		if got.Security != tc.want || got.From != DefaultSinkFrom || got.Host != "127.0.0.1" || got.TLSConfig == nil {
			t.Errorf("%+v: settings %v", tc.cfg, got)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}
