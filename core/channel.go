package core

import (
	"context"
	"encoding/json"
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
	UpdatedAt      time.Time
}

// ErrChannelNotFound answers GET of a channel never configured.
var ErrChannelNotFound = newError(KindNotFound, "channel_not_configured", "the channel is not configured")

// ChannelStore keeps channel settings, sealing their secrets.
type ChannelStore interface {
	PutChannel(ctx context.Context, c ChannelConfig) (ChannelConfig, error)
	// GetChannel returns the channel (Secret opened) or ErrChannelNotFound.
	GetChannel(ctx context.Context, merchantID uuid.UUID, ch Channel) (ChannelConfig, error)
}

// Channels keeps the merchant's message channels.
type Channels struct {
	store ChannelStore
	guard AddressGuard
	now   func() time.Time
}

// NewChannels returns the service; guard refuses SMTP hosts and token URLs on loopback or
// private addresses (unless the operator allows them).
func NewChannels(store ChannelStore, guard AddressGuard) *Channels {
	return &Channels{store: store, guard: guard, now: time.Now}
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
	return s.store.PutChannel(ctx, ChannelConfig{MerchantID: merchantID, Channel: ch, Public: p, Secret: sec, UpdatedAt: s.now().UTC()})
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

// Get returns a channel's settings without its secrets.
func (s *Channels) Get(ctx context.Context, merchantID uuid.UUID, ch Channel) (ChannelConfig, error) {
	c, err := s.store.GetChannel(ctx, merchantID, ch)
	if err != nil {
		return ChannelConfig{}, err
	}
	c.Secret = nil
	return c, nil
}
