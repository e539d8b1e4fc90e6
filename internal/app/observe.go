package app

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/internal/metrics"
	"github.com/coupongate/coupongate/internal/tracing"
	"github.com/coupongate/coupongate/store"
)

// serveMetrics serves process's GET /metrics on METRICS_ADDR (MetricsAddrFor(process)) until
// ctx ends, with collectors, which read on each scrape. It answers the address it listens on, ""
// when METRICS_ADDR is off. An address that cannot be bound (another process of the machine has
// it) is logged once and the process runs without metrics: they are not worth refusing traffic
// for.
func (b *Base) serveMetrics(ctx context.Context, process string, collectors ...prometheus.Collector) string {
	for _, c := range collectors {
		b.Metrics.Register(c)
	}
	addr := b.Config.MetricsAddrFor(process)
	if addr == "" {
		b.Log.Info("metrics off (METRICS_ADDR=off)")
		return ""
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		b.Log.Warn("metrics not served: METRICS_ADDR cannot be bound", "addr", addr, "err", err)
		return ""
	}
	b.Metrics.Serve(ctx, ln, b.Log)
	b.Log.Info("metrics listening", "addr", ln.Addr().String(), "path", "/metrics")
	return ln.Addr().String()
}

// webhookBacklogs reads the platforms' webhook backlogs for the backlog collector.
func (b *Base) webhookBacklogs(ctx context.Context) ([]metrics.Backlog, error) {
	bs, err := b.DB.WebhookBacklogs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]metrics.Backlog, len(bs))
	for i, bl := range bs {
		out[i] = metrics.Backlog{Platform: bl.Platform, Count: bl.Count, Oldest: bl.Oldest}
	}
	return out, nil
}

// countedRedemptions counts the uses Redeem counts (outcome redeemed), by the event's platform
// and channel.
type countedRedemptions struct {
	core.RedemptionStore
	m *metrics.Metrics
}

// Redeem implements core.RedemptionStore.
func (r countedRedemptions) Redeem(ctx context.Context, merchantID uuid.UUID, apps []core.CodeApplication,
	decide func(*core.UseLedger, []core.CodeApplication) []core.UseDecision) ([]core.UseDecision, error) {
	ds, err := r.RedemptionStore.Redeem(ctx, merchantID, apps, decide)
	if err != nil {
		return nil, err
	}
	for i, d := range ds {
		if d.Outcome == core.OutcomeRedeemed {
			ev := apps[i].Event
			r.m.Redemption(platformLabel(ev.Platform), channelLabel(ev.EventChannel()))
		}
	}
	return ds, nil
}

// platformLabel keeps a label's platforms to the known ones: the neutral API's platform is the
// merchant's own word, so anything else is "other".
func platformLabel(p string) string {
	switch p {
	case shopify.Platform, woocommerce.Platform, "custom":
		return p
	}
	return "other"
}

// channelLabel keeps a label's channels to the timeline's known ones.
func channelLabel(c string) string {
	switch c {
	case shopify.Platform, woocommerce.Platform, "custom", "manual", "in_store":
		return c
	}
	return "other"
}

// countedPushes counts the outcomes a platform's pusher records.
type countedPushes struct {
	*store.DB
	m        *metrics.Metrics
	platform string
}

// FinishPushCodes implements the pushers' PushStore.
func (p countedPushes) FinishPushCodes(ctx context.Context, ref core.PushRef, outcomes []core.PushOutcome) error {
	err := p.DB.FinishPushCodes(ctx, ref, outcomes)
	if err == nil {
		pushed := 0
		for _, o := range outcomes {
			if o.Pushed {
				pushed++
			}
		}
		p.m.PushedCodes(p.platform, pushed, len(outcomes)-pushed)
	}
	return err
}

// countedSender counts the messages handed to the providers, by channel and result.
type countedSender struct {
	*messaging.Router
	m *metrics.Metrics
}

// Send implements core.MessageSender.
func (s countedSender) Send(ctx context.Context, merchantID uuid.UUID, msg core.Message) (string, error) {
	id, err := s.Router.Send(ctx, merchantID, msg)
	s.m.Message(string(msg.Channel), err == nil)
	return id, err
}

// SendBatch implements core.BatchMessageSender.
func (s countedSender) SendBatch(ctx context.Context, merchantID uuid.UUID, msgs []core.Message) []core.SendResult {
	out := s.Router.SendBatch(ctx, merchantID, msgs)
	for i, r := range out {
		s.m.Message(string(msgs[i].Channel), r.Err == nil)
	}
	return out
}

// webhookObserver tells the metrics of each webhook receipt the worker applied: the delay since it was
// received, the order events applied in its batch by status, and the uses they counted.
type webhookObserver struct{ m *metrics.Metrics }

// WebhookApplied implements core.WebhookObserver.
func (o webhookObserver) WebhookApplied(d core.WebhookReceipt, batched, redeemed []core.OrderEvent) {
	platform := platformLabel(d.Platform)
	o.m.WebhookApplied(platform, d.ReceivedAt)
	for _, ev := range batched {
		o.m.WebhookOrderEvents(platform, string(ev.Status), 1)
	}
	for _, ev := range redeemed {
		o.m.Redemption(platformLabel(ev.Platform), channelLabel(ev.EventChannel()))
	}
}

// StartTracing starts OpenTelemetry traces for process when OTEL_EXPORTER_OTLP_ENDPOINT is set
// (see internal/tracing); the returned function flushes the spans still buffered, within five
// seconds, when the process stops. Unset, it creates nothing.
func StartTracing(ctx context.Context, cfg config.Config, process string, log *slog.Logger) (stop func(), err error) {
	on, shutdown, err := tracing.Start(ctx, cfg, process)
	if err != nil {
		return nil, err
	}
	if !on {
		return func() {}, nil
	}
	log.Info("tracing on", "otel_endpoint", cfg.OTelEndpoint, "protocol", cmp.Or(cfg.OTelProtocol, "http/protobuf"))
	return func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := shutdown(flushCtx); err != nil {
			log.Warn("traces not flushed", "err", err)
		}
	}, nil
}
