package messaging

// The router: which provider a merchant's message goes through, and the clients kept for it.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/netguard"
)

// Router sends core messages through the merchant's configured channel: SMTP with a Mailer kept
// open per merchant and settings, Twilio, and FCM with a PushSender (and its access token) kept
// per merchant and settings. It implements core.MessageSender, core.BatchMessageSender and
// core.ChannelTester.
type Router struct {
	// Clock is when channel settings read are reused until (SetClock in tests).
	core.Clock
	channels  core.ChannelStore
	twilioURL string
	fcmURL    string
	http      *http.Client
	// guard dials the hosts merchants supply (SMTP servers, service accounts' token_uri) and
	// refuses non-public addresses at connect time; pushHTTP is its HTTP client.
	guard    netguard.Guard
	pushHTTP *http.Client
	// TLSConfig trusts a test SMTP server's certificate (nil: the system roots).
	TLSConfig *tls.Config
	// span starts a span around an SMTP send (Trace sets it); nil: none.
	span SpanFunc

	// One client per merchant and channel, replaced (and closed) when the settings change.
	mu      sync.Mutex
	mailers map[uuid.UUID]cachedMailer
	pushers map[uuid.UUID]cachedPusher
	// configs keeps each merchant's channel settings for a few seconds, so a burst of messages
	// does not read and open them once per message.
	configs map[string]cachedConfig
}

type cachedConfig struct {
	cfg   core.ChannelConfig
	until time.Time
}

// channelConfigTTL is how long channel settings are reused before they are read again.
const channelConfigTTL = 5 * time.Second

func (s *Router) config(ctx context.Context, merchantID uuid.UUID, ch core.Channel) (core.ChannelConfig, error) {
	key := merchantID.String() + ":" + string(ch)
	s.mu.Lock()
	c, ok := s.configs[key]
	s.mu.Unlock()
	if ok && s.Now().Before(c.until) {
		return c.cfg, nil
	}
	cfg, err := s.channels.GetChannel(ctx, merchantID, ch)
	if err != nil {
		return cfg, err
	}
	s.mu.Lock()
	if len(s.configs) > 10_000 {
		s.configs = make(map[string]cachedConfig)
	}
	s.configs[key] = cachedConfig{cfg: cfg, until: s.Now().Add(channelConfigTTL)}
	s.mu.Unlock()
	return cfg, nil
}

type cachedMailer struct {
	settings string
	mailer   *Mailer
}

type cachedPusher struct {
	settings string
	sender   *PushSender
}

// NewRouter sends through the channels channels stores: Twilio's API at twilioURL, FCM's at
// fcmURL (empty: the providers' own), and every connection to a host a merchant supplied (an SMTP
// server, a service account's token_uri) dialed through guard.
func NewRouter(channels core.ChannelStore, twilioURL, fcmURL string, guard netguard.Guard) *Router {
	return &Router{channels: channels, twilioURL: twilioURL, fcmURL: fcmURL, guard: guard, pushHTTP: guard.Client(30 * time.Second),
		mailers: make(map[uuid.UUID]cachedMailer), pushers: make(map[uuid.UUID]cachedPusher), configs: make(map[string]cachedConfig)}
}

// SpanFunc starts a span named name around a provider call that is not HTTP (an SMTP send); the
// returned end records err and ends it.
type SpanFunc func(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(err error))

// Trace makes spans of the provider calls: client wraps the HTTP clients of Twilio's and FCM's
// requests (and the service accounts' token requests), span starts one around each SMTP send.
// Call it before the first send.
func (s *Router) Trace(client func(*http.Client) *http.Client, span SpanFunc) {
	s.span = span
	if s.http == nil {
		s.http = &http.Client{Timeout: 30 * time.Second} // SendSMS's own default
	}
	s.http = client(s.http)
	s.pushHTTP = client(s.pushHTTP)
}

// startSpan is span, or nothing when tracing is off.
func (s *Router) startSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, func(error)) {
	if s.span == nil {
		return ctx, func(error) {}
	}
	return s.span(ctx, name, attrs...)
}

// permanent marks a provider error that will not heal.
type permanent struct{ error }

func (permanent) Permanent() bool { return true }

// classify marks err permanent for core when the provider said trying again cannot help.
func classify(err error) error {
	if err != nil && IsPermanent(err) {
		return permanent{err}
	}
	return err
}

// settingsKey tells settings apart without keeping them.
func settingsKey(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:])
}

// Send implements core.MessageSender.
func (s *Router) Send(ctx context.Context, merchantID uuid.UUID, msg core.Message) (string, error) {
	cfg, err := s.config(ctx, merchantID, msg.Channel)
	if errors.Is(err, core.ErrChannelNotFound) {
		return "", core.ErrChannelNotSet
	}
	if err != nil {
		return "", err
	}
	return s.send(ctx, merchantID, cfg, msg, true)
}

// SendWith implements core.ChannelTester: one message with cfg's settings, on a connection (and,
// for push, an access token) of its own that is not kept.
func (s *Router) SendWith(ctx context.Context, cfg core.ChannelConfig, msg core.Message) (string, error) {
	return s.send(ctx, cfg.MerchantID, cfg, msg, false)
}

// send sends msg with cfg's settings; keep reuses and keeps the merchant's SMTP connection and
// push sender.
func (s *Router) send(ctx context.Context, merchantID uuid.UUID, cfg core.ChannelConfig, msg core.Message, keep bool) (string, error) {
	key := settingsKey(cfg.Secret)
	switch msg.Channel {
	case core.ChannelEmail:
		var c core.EmailChannel
		if err := json.Unmarshal(cfg.Secret, &c); err != nil {
			return "", err
		}
		var m *Mailer
		if keep {
			m = s.mailer(merchantID, key, c)
		} else {
			m = s.newMailer(c)
			defer func() { _ = m.Close() }()
		}
		sendCtx, end := s.startSpan(ctx, "smtp send", attribute.String("server.address", c.Host))
		err := m.Send(sendCtx, Email{To: msg.To, Subject: msg.Subject, Text: msg.Text, HTML: msg.HTML, MessageID: msg.MessageID})
		end(err)
		if err != nil {
			return "", classify(err)
		}
		return msg.MessageID, nil
	case core.ChannelSMS:
		var c core.SMSChannel
		if err := json.Unmarshal(cfg.Secret, &c); err != nil {
			return "", err
		}
		sid, err := SendSMS(ctx, TwilioSettings{BaseURL: s.twilioURL, AccountSID: c.AccountSID, AuthToken: c.AuthToken,
			From: c.From, HTTP: s.http}, msg.To, msg.Text)
		return sid, classify(err)
	case core.ChannelPush:
		var c core.PushChannel
		if err := json.Unmarshal(cfg.Secret, &c); err != nil {
			return "", err
		}
		newSender := func() (*PushSender, error) {
			return NewPushSender(FCMSettings{BaseURL: s.fcmURL, ServiceAccount: c.ServiceAccount, HTTP: s.pushHTTP})
		}
		var p *PushSender
		if keep {
			s.mu.Lock()
			cached := s.pushers[merchantID]
			if cached.sender == nil || cached.settings != key {
				fresh, err := newSender()
				if err != nil {
					s.mu.Unlock()
					return "", permanent{err}
				}
				cached = cachedPusher{settings: key, sender: fresh}
				s.pushers[merchantID] = cached
			}
			p = cached.sender
			s.mu.Unlock()
		} else {
			fresh, err := newSender()
			if err != nil {
				return "", permanent{err}
			}
			p = fresh
		}
		name, err := p.Send(ctx, msg.To, msg.Title, msg.Body, nil)
		return name, classify(err)
	}
	return "", permanent{errors.New("unknown channel " + string(msg.Channel))}
}

func (s *Router) newMailer(c core.EmailChannel) *Mailer {
	return NewMailer(SMTPSettings{Host: c.Host, Port: c.Port, Username: c.Username, Password: c.Password,
		From: c.From, Security: c.Security, TLSConfig: s.TLSConfig, Dial: s.guard.DialContext})
}

// mailer is the merchant's kept Mailer for the settings named key (a new one, and the old one
// closed, when they changed).
func (s *Router) mailer(merchantID uuid.UUID, key string, c core.EmailChannel) *Mailer {
	s.mu.Lock()
	defer s.mu.Unlock()
	cached := s.mailers[merchantID]
	if cached.mailer == nil || cached.settings != key {
		if cached.mailer != nil {
			_ = cached.mailer.Close()
		}
		cached = cachedMailer{settings: key, mailer: s.newMailer(c)}
		s.mailers[merchantID] = cached
	}
	return cached.mailer
}

// Close closes the open SMTP connections.
func (s *Router) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, m := range s.mailers {
		_ = m.mailer.Close()
		delete(s.mailers, k)
	}
}
