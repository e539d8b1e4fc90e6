package messaging

// The router's batches: many messages of one merchant at once.

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/coupongate/coupongate/core"
)

// A batch keeps this many requests in flight with Twilio and with FCM. Twilio queues what an
// account sends beyond its sending rate and answers 429 past its limit of concurrent requests
// (100 per account by default); FCM allows 600,000 messages a minute per project. Either way a
// batch stops starting requests at the first answer that asks it to wait.
const (
	smsInFlight  = 8
	pushInFlight = 16
)

var _ core.BatchMessageSender = (*Router)(nil)

// SendBatch implements core.BatchMessageSender: email over one of the merchant's kept SMTP
// connections, pipelined (Mailer.SendBatch); SMS and push with several requests in
// flight. Each message is answered as Send answers it.
func (s *Router) SendBatch(ctx context.Context, merchantID uuid.UUID, msgs []core.Message) []core.SendResult {
	out := make([]core.SendResult, len(msgs))
	byChannel := map[core.Channel][]int{}
	for i, m := range msgs {
		byChannel[m.Channel] = append(byChannel[m.Channel], i)
	}
	for ch, idx := range byChannel {
		cfg, err := s.config(ctx, merchantID, ch)
		if errors.Is(err, core.ErrChannelNotFound) {
			err = core.ErrChannelNotSet
		}
		if err != nil {
			for _, i := range idx {
				out[i].Err = err
			}
			continue
		}
		switch ch {
		case core.ChannelEmail:
			s.sendEmails(ctx, merchantID, cfg, msgs, idx, out)
		case core.ChannelSMS:
			s.inFlight(ctx, merchantID, cfg, msgs, idx, out, smsInFlight)
		case core.ChannelPush:
			s.inFlight(ctx, merchantID, cfg, msgs, idx, out, pushInFlight)
		default:
			for _, i := range idx {
				out[i].Err = permanent{errors.New("unknown channel " + string(ch))}
			}
		}
	}
	return out
}

// sendEmails sends the emails msgs[idx] over one connection of the merchant's kept Mailer.
func (s *Router) sendEmails(ctx context.Context, merchantID uuid.UUID, cfg core.ChannelConfig, msgs []core.Message, idx []int, out []core.SendResult) {
	var c core.EmailChannel
	if err := json.Unmarshal(cfg.Secret, &c); err != nil {
		for _, i := range idx {
			out[i].Err = err
		}
		return
	}
	emails := make([]Email, len(idx))
	for k, i := range idx {
		m := msgs[i]
		emails[k] = Email{To: m.To, Subject: m.Subject, Text: m.Text, HTML: m.HTML, MessageID: m.MessageID}
	}
	sendCtx, end := s.startSpan(ctx, "smtp send batch", attribute.String("server.address", c.Host), attribute.Int("messages", len(emails)))
	errs := s.mailer(merchantID, settingsKey(cfg.Secret), c).SendBatch(sendCtx, emails)
	end(nil)
	for k, i := range idx {
		if errs[k] != nil {
			out[i].Err = classify(errs[k])
		} else {
			out[i].ProviderID = msgs[i].MessageID
		}
	}
}

// inFlight sends msgs[idx] (SMS or push) one request each, up to n at once. After an answer that
// asks to wait (a 429, or a 5xx with Retry-After) it starts no more: those left get that answer,
// so they are sent again when the provider is ready.
func (s *Router) inFlight(ctx context.Context, merchantID uuid.UUID, cfg core.ChannelConfig, msgs []core.Message, idx []int, out []core.SendResult, n int) {
	var (
		mu    sync.Mutex
		wait  error
		wg    sync.WaitGroup
		slots = make(chan struct{}, n)
	)
	for _, i := range idx {
		slots <- struct{}{}
		mu.Lock()
		stop := wait
		mu.Unlock()
		if stop != nil {
			<-slots
			out[i].Err = stop
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer func() { <-slots; wg.Done() }()
			id, err := s.send(ctx, merchantID, cfg, msgs[i], true)
			out[i].ProviderID, out[i].Err = id, err
			var ra interface{ RetryAfter() time.Duration }
			if err != nil && !IsPermanent(err) && errors.As(err, &ra) && ra.RetryAfter() > 0 {
				mu.Lock()
				if wait == nil {
					wait = err
				}
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
}
