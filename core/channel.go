package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// EmailChannel is a merchant's SMTP settings; Password is secret.
type EmailChannel struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
	From     string `json:"from"`
	// Security is starttls, tls (implicit) or none.
	Security string `json:"security"`
}

// SMSChannel is a merchant's Twilio settings; AuthToken is secret.
type SMSChannel struct {
	Provider   string `json:"provider"`
	AccountSID string `json:"account_sid"`
	AuthToken  string `json:"auth_token,omitempty"`
	// From is a phone number (E.164) or a Messaging Service SID (MG…).
	From string `json:"from"`
}

// PushChannel is a merchant's Firebase Cloud Messaging settings; ServiceAccount (the Google
// service-account JSON, with its private key) is secret.
type PushChannel struct {
	Provider       string          `json:"provider"`
	ProjectID      string          `json:"project_id"`
	ClientEmail    string          `json:"client_email"`
	ServiceAccount json.RawMessage `json:"service_account,omitempty"`
}

// ChannelConfig is a stored channel: what may be shown and, sealed by the store, the secrets.
type ChannelConfig struct {
	MerchantID uuid.UUID
	Channel    Channel
	// Public is the channel's settings without secrets (EmailChannel, SMSChannel or PushChannel
	// as JSON); Secret is the whole settings, secrets included.
	Public, Secret json.RawMessage
	// SecretSet tells whether the stored settings hold a secret (a password, an auth token, a
	// service account), without it; Get sets it.
	SecretSet bool
	UpdatedAt time.Time
}

// ErrChannelNotFound answers GET of a channel never configured.
var ErrChannelNotFound = newError(KindNotFound, "channel_not_configured", "the channel is not configured")

// ChannelStore keeps channel settings, sealing their secrets.
type ChannelStore interface {
	PutChannel(ctx context.Context, c ChannelConfig) (ChannelConfig, error)
	// GetChannel returns the channel (Secret opened) or ErrChannelNotFound.
	GetChannel(ctx context.Context, merchantID uuid.UUID, ch Channel) (ChannelConfig, error)
}

// ChannelTester sends one message with the settings given, not ones it keeps (a test right
// after the settings were saved must use them).
type ChannelTester interface {
	SendWith(ctx context.Context, cfg ChannelConfig, msg Message) (providerID string, err error)
}

// Channels keeps the merchant's message channels.
type Channels struct {
	store  ChannelStore
	guard  AddressGuard
	tester ChannelTester
	Clock
}

// UseTester sets what SendTest sends through.
func (s *Channels) UseTester(t ChannelTester) *Channels {
	s.tester = t
	return s
}

// NewChannels returns the service; guard refuses SMTP hosts and token URLs on loopback or
// private addresses (unless the operator allows them).
func NewChannels(store ChannelStore, guard AddressGuard) *Channels {
	return &Channels{store: store, guard: guard}
}

var (
	twilioSID   = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	twilioSvc   = regexp.MustCompile(`^MG[0-9a-fA-F]{32}$`)
	hostPattern = regexp.MustCompile(`^[A-Za-z0-9.-]{1,253}$|^\[[0-9A-Fa-f:.]+\]$`)
)

func (s *Channels) put(ctx context.Context, merchantID uuid.UUID, ch Channel, public, secret any) (ChannelConfig, error) {
	p, err := json.Marshal(public)
	if err != nil {
		return ChannelConfig{}, err
	}
	sec, err := json.Marshal(secret)
	if err != nil {
		return ChannelConfig{}, err
	}
	return s.store.PutChannel(ctx, ChannelConfig{MerchantID: merchantID, Channel: ch, Public: p, Secret: sec, UpdatedAt: s.Now().UTC()})
}

// PutEmail validates and stores the SMTP settings.
func (s *Channels) PutEmail(ctx context.Context, merchantID uuid.UUID, c EmailChannel) (ChannelConfig, error) {
	c.Host, c.Username, c.From = strings.TrimSpace(c.Host), strings.TrimSpace(c.Username), strings.TrimSpace(c.From)
	c.Security = strings.ToLower(strings.TrimSpace(c.Security))
	if c.Security == "" {
		c.Security = "starttls"
	}
	switch {
	case !hostPattern.MatchString(c.Host):
		return ChannelConfig{}, Invalid("host", "must be the SMTP server's host name")
	case c.Port < 1 || c.Port > 65535:
		return ChannelConfig{}, Invalid("port", "must be from 1 to 65535")
	case c.Security != "starttls" && c.Security != "tls" && c.Security != "none":
		return ChannelConfig{}, Invalid("security", "must be starttls, tls or none")
	case len(c.Username) > 255 || len(c.Password) > 1024:
		return ChannelConfig{}, Invalid("username", "username and password must be at most 255 and 1024 characters")
	}
	if _, err := mail.ParseAddress(c.From); err != nil || strings.ContainsAny(c.From, "\r\n") {
		return ChannelConfig{}, Invalid("from", `must be an address such as "Shop <codes@shop.example>"`)
	}
	if err := s.guard.CheckURL(ctx, "smtp://"+c.Host+":"+strconv.Itoa(c.Port)); err != nil {
		return ChannelConfig{}, Invalid("host", "is a loopback or private address, which this gateway does not call")
	}
	public := c
	public.Password = ""
	return s.put(ctx, merchantID, ChannelEmail, public, c)
}

// PutSMS validates and stores the Twilio settings.
func (s *Channels) PutSMS(ctx context.Context, merchantID uuid.UUID, c SMSChannel) (ChannelConfig, error) {
	c.Provider, c.AccountSID, c.From = strings.ToLower(strings.TrimSpace(c.Provider)), strings.TrimSpace(c.AccountSID), strings.TrimSpace(c.From)
	c.AuthToken = strings.TrimSpace(c.AuthToken)
	switch {
	case c.Provider != "twilio":
		return ChannelConfig{}, Invalid("provider", "must be twilio")
	case !twilioSID.MatchString(c.AccountSID):
		return ChannelConfig{}, Invalid("account_sid", "must be a Twilio account SID (AC followed by 32 hex digits)")
	case c.AuthToken == "" || len(c.AuthToken) > 200:
		return ChannelConfig{}, Invalid("auth_token", "is required")
	case !e164.MatchString(c.From) && !twilioSvc.MatchString(c.From):
		return ChannelConfig{}, Invalid("from", "must be a phone number in E.164 form or a Messaging Service SID (MG…)")
	}
	public := c
	public.AuthToken = ""
	return s.put(ctx, merchantID, ChannelSMS, public, c)
}

// serviceAccount is the part of a Google service-account JSON the push channel needs.
type serviceAccount struct {
	Type        string `json:"type"`
	ProjectID   string `json:"project_id"`
	PrivateKey  string `json:"private_key"`
	ClientEmail string `json:"client_email"`
	TokenURI    string `json:"token_uri"`
}

// PutPush validates and stores the FCM settings.
func (s *Channels) PutPush(ctx context.Context, merchantID uuid.UUID, c PushChannel) (ChannelConfig, error) {
	c.Provider = strings.ToLower(strings.TrimSpace(c.Provider))
	if c.Provider != "fcm" {
		return ChannelConfig{}, Invalid("provider", "must be fcm")
	}
	var sa serviceAccount
	if len(c.ServiceAccount) == 0 || len(c.ServiceAccount) > 64<<10 || json.Unmarshal(c.ServiceAccount, &sa) != nil {
		return ChannelConfig{}, Invalid("service_account", "must be the Google service-account JSON object")
	}
	u, err := url.Parse(sa.TokenURI)
	switch {
	case sa.Type != "service_account":
		return ChannelConfig{}, Invalid("service_account", `type must be "service_account"`)
	case strings.TrimSpace(sa.ProjectID) == "":
		return ChannelConfig{}, Invalid("service_account", "project_id is missing")
	case !strings.Contains(sa.PrivateKey, "PRIVATE KEY-----"):
		return ChannelConfig{}, Invalid("service_account", "private_key is missing")
	case !strings.Contains(sa.ClientEmail, "@"):
		return ChannelConfig{}, Invalid("service_account", "client_email is missing")
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return ChannelConfig{}, Invalid("service_account", "token_uri must be an https URL")
	}
	if err := s.guard.CheckURL(ctx, sa.TokenURI); err != nil {
		return ChannelConfig{}, Invalid("service_account", "token_uri is a loopback or private address, which this gateway does not call")
	}
	c.ProjectID, c.ClientEmail = sa.ProjectID, sa.ClientEmail
	public := c
	public.ServiceAccount = nil
	return s.put(ctx, merchantID, ChannelPush, public, c)
}

// Get returns a channel's settings without its secrets (SecretSet says whether one is stored).
func (s *Channels) Get(ctx context.Context, merchantID uuid.UUID, ch Channel) (ChannelConfig, error) {
	c, err := s.store.GetChannel(ctx, merchantID, ch)
	if err != nil {
		return ChannelConfig{}, err
	}
	var secret struct {
		Password       string          `json:"password"`
		AuthToken      string          `json:"auth_token"`
		ServiceAccount json.RawMessage `json:"service_account"`
	}
	if err := json.Unmarshal(c.Secret, &secret); err == nil {
		c.SecretSet = secret.Password != "" || secret.AuthToken != "" || len(secret.ServiceAccount) > 0
	}
	c.Secret = nil
	return c, nil
}

// storedSecret reads the stored settings of ch into v; found is false when there are none.
func (s *Channels) storedSecret(ctx context.Context, merchantID uuid.UUID, ch Channel, v any) (bool, error) {
	c, err := s.store.GetChannel(ctx, merchantID, ch)
	if errors.Is(err, ErrChannelNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, json.Unmarshal(c.Secret, v)
}

// EditEmail is PutEmail where an empty Password keeps the stored one (a form never shows it).
func (s *Channels) EditEmail(ctx context.Context, merchantID uuid.UUID, c EmailChannel) (ChannelConfig, error) {
	if c.Password == "" {
		var old EmailChannel
		if _, err := s.storedSecret(ctx, merchantID, ChannelEmail, &old); err != nil {
			return ChannelConfig{}, err
		}
		c.Password = old.Password
	}
	return s.PutEmail(ctx, merchantID, c)
}

// EditSMS is PutSMS where an empty AuthToken keeps the stored one.
func (s *Channels) EditSMS(ctx context.Context, merchantID uuid.UUID, c SMSChannel) (ChannelConfig, error) {
	if strings.TrimSpace(c.AuthToken) == "" {
		var old SMSChannel
		if _, err := s.storedSecret(ctx, merchantID, ChannelSMS, &old); err != nil {
			return ChannelConfig{}, err
		}
		c.AuthToken = old.AuthToken
	}
	return s.PutSMS(ctx, merchantID, c)
}

// EditPush is PutPush where an empty ServiceAccount keeps the stored one.
func (s *Channels) EditPush(ctx context.Context, merchantID uuid.UUID, c PushChannel) (ChannelConfig, error) {
	if len(bytes.TrimSpace(c.ServiceAccount)) == 0 {
		var old PushChannel
		if _, err := s.storedSecret(ctx, merchantID, ChannelPush, &old); err != nil {
			return ChannelConfig{}, err
		}
		c.ServiceAccount = old.ServiceAccount
	}
	return s.PutPush(ctx, merchantID, c)
}

// TestSend is a test message that the provider took.
type TestSend struct {
	Channel Channel
	To      string
	// ProviderID is the provider's id of the message (the email's Message-ID, Twilio's SID,
	// FCM's message name).
	ProviderID string
}

// testSendTimeout bounds a test send: the merchant is waiting for the page.
const testSendTimeout = 30 * time.Second

// SendTest sends one test message through the channel's stored settings to to (an email address,
// an E.164 phone number or a device token), and waits for the provider's answer: a refusal is a
// KindInvalid error with Code "test_send_failed" and the provider's reason. No code is handed
// out and nothing is recorded.
func (s *Channels) SendTest(ctx context.Context, merchantID uuid.UUID, ch Channel, to string) (TestSend, error) {
	var r MessageRecipient
	switch ch {
	case ChannelEmail:
		r.Email = to
	case ChannelSMS:
		r.Phone = to
	case ChannelPush:
		r.PushToken = to
	default:
		return TestSend{}, Invalid("channel", "must be email, sms or push")
	}
	r, err := NormalizeRecipient(ch, r)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) && len(ce.Details) == 1 {
			return TestSend{}, Invalid("to", ce.Details[0].Message)
		}
		return TestSend{}, err
	}
	cfg, err := s.store.GetChannel(ctx, merchantID, ch)
	if errors.Is(err, ErrChannelNotFound) {
		return TestSend{}, ErrChannelNotSet
	}
	if err != nil {
		return TestSend{}, err
	}
	if s.tester == nil {
		return TestSend{}, errors.New("core: no channel tester configured")
	}
	msg := Message{Channel: ch, MessageID: "<test-" + uuid.NewString() + "@coupongate>"}
	switch ch {
	case ChannelEmail:
		msg.To = r.Email
		msg.Subject = "Coupongate test message"
		msg.Text = "This is a test message from Coupongate.\n\nYour email settings work: codes you send by email reach your customers this way."
	case ChannelSMS:
		msg.To = r.Phone
		msg.Text = "Coupongate test message: your SMS settings work."
	case ChannelPush:
		msg.To = r.PushToken
		msg.Title = "Coupongate test message"
		msg.Body = "Your push settings work."
	}
	sendCtx, cancel := context.WithTimeout(ctx, testSendTimeout)
	defer cancel()
	id, err := s.tester.SendWith(sendCtx, cfg, msg)
	if err != nil {
		return TestSend{}, &Error{Kind: KindInvalid, Code: "test_send_failed", Message: "the test message was not sent: " + err.Error()}
	}
	return TestSend{Channel: ch, To: msg.To, ProviderID: id}, nil
}
