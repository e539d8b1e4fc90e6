package shopify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// Webhook topics beyond the order topics.
const (
	TopicAppUninstalled       = "app/uninstalled"
	TopicCustomersDataRequest = "customers/data_request"
	TopicCustomersRedact      = "customers/redact"
	TopicShopRedact           = "shop/redact"
)

// WebhookProcessStore is what the processor needs from the database.
type WebhookProcessStore interface {
	// WebhookDelivery loads a stored delivery; found is false when there is none.
	WebhookDelivery(ctx context.Context, merchantID, id uuid.UUID) (d WebhookDelivery, found bool, err error)
	// FinishWebhookDelivery records the delivery's final status and note.
	FinishWebhookDelivery(ctx context.Context, merchantID, id uuid.UUID, status, note string) error
	// OrderCodes returns the codes recorded for an order of a shop (from its redemptions).
	OrderCodes(ctx context.Context, merchantID uuid.UUID, platform, shop, orderID string) ([]string, error)
	// UninstallShop marks the merchant's connections to shop uninstalled, forgets their tokens,
	// stops their pushes and deletes the route, unless the shop was installed again after
	// triggeredAt (nil: unknown).
	UninstallShop(ctx context.Context, merchantID uuid.UUID, platform, shop string, triggeredAt *time.Time) error
	ComplianceStore
	ManualDiscountStore
}

// ManualDiscountStore is what recording manual discounts needs from the database: the code
// lookup orders use, and the timeline record.
type ManualDiscountStore interface {
	core.CodeFinder
	core.ManualDiscountStore
}

// OrderApplier applies a core order event (core.Redeemer implements it).
type OrderApplier interface {
	ApplyOrder(ctx context.Context, merchantID uuid.UUID, ev core.OrderEvent) (core.OrderResult, error)
}

// Processor acts on stored webhook deliveries, in the worker. Processing a delivery twice is
// harmless: a finished delivery is skipped, and core counts each order and code once.
type Processor struct {
	store  WebhookProcessStore
	orders OrderApplier
	manual *core.ManualDiscounts
	log    *slog.Logger
}

// NewProcessor returns the processor.
func NewProcessor(store WebhookProcessStore, orders OrderApplier, log *slog.Logger) *Processor {
	return &Processor{store: store, orders: orders, manual: core.NewManualDiscounts(store, store), log: log}
}

// Process acts on one delivery and records its outcome. A delivery that can never be processed
// (a body that is not its topic's resource) is recorded failed and answers nil; a transient error
// is returned for the task to retry, the delivery staying received.
func (p *Processor) Process(ctx context.Context, merchantID, deliveryID uuid.UUID) error {
	d, found, err := p.store.WebhookDelivery(ctx, merchantID, deliveryID)
	if err != nil {
		return err
	}
	if !found || d.Status != DeliveryReceived {
		return nil
	}
	status, note, err := p.act(ctx, d)
	if err != nil {
		return err
	}
	if status == DeliveryFailed {
		p.log.WarnContext(ctx, "shopify webhook failed", "delivery_id", d.ID, "topic", d.Topic, "shop", d.Shop, "reason", note)
	}
	return p.store.FinishWebhookDelivery(ctx, merchantID, deliveryID, status, note)
}

var _ core.WebhookPlanner = (*Processor)(nil)

// PlanDeliveries implements core.WebhookPlanner: an order delivery is read into its order events,
// to be applied with the other deliveries of its batch; an uninstall, a compliance request, a
// refund (its codes are the ones its order recorded before) and an order carrying manual
// discounts are processed alone (Process), in their place. A delivery that can never be applied
// (a body that does not fit its headers or is not its topic's resource, an event core refuses) is
// planned failed, as Process records it.
func (p *Processor) PlanDeliveries(_ context.Context, ds []WebhookDelivery) ([]core.WebhookPlan, error) {
	plans := make([]core.WebhookPlan, len(ds))
	for i, d := range ds {
		plans[i] = p.plan(d)
	}
	return plans, nil
}

func (p *Processor) plan(d WebhookDelivery) core.WebhookPlan {
	if err := CheckDelivery(d.Topic, d.Shop, d.Body); err != nil {
		return core.WebhookPlan{Status: DeliveryFailed, Note: "the body does not match the delivery's headers: " + err.Error()}
	}
	if !isOrderTopic(d.Topic) {
		return core.WebhookPlan{Alone: true}
	}
	w, err := OrderEventFromWebhook(d.Topic, core.ScrubJSON(d.Body))
	if errors.Is(err, ErrInvalidPayload) || errors.Is(err, ErrUnsupportedTopic) {
		return core.WebhookPlan{Status: DeliveryFailed, Note: err.Error()}
	}
	if err != nil {
		return core.WebhookPlan{Alone: true}
	}
	order := Platform + ":" + d.Shop + ":" + w.OrderID
	if _, manual := w.ManualDiscountEvent(d.Shop); manual || w.NeedsOrderCodes {
		return core.WebhookPlan{Alone: true, Order: order}
	}
	plan := core.WebhookPlan{Status: DeliveryProcessed, Order: order}
	if len(w.Codes) == 0 {
		return plan
	}
	for _, ev := range w.Events(d.Shop) {
		ev, err := core.CheckOrderEvent(ev)
		if err != nil {
			// As Process: the events before it are applied, and the delivery is recorded failed.
			plan.Status, plan.Note = DeliveryFailed, fmt.Sprintf("order event refused: %v", err)
			break
		}
		plan.Events = append(plan.Events, ev)
	}
	return plan
}

// isOrderTopic reports whether topic is one the order path reads.
func isOrderTopic(topic string) bool {
	switch topic {
	case TopicOrdersCreate, TopicOrdersPaid, TopicOrdersUpdated, TopicOrdersCancelled, TopicRefundsCreate:
		return true
	}
	return false
}

// act does the topic's work and says what to record. A delivery stored before the intake checked
// bodies against headers, or scrubbed them, is checked and scrubbed here.
func (p *Processor) act(ctx context.Context, d WebhookDelivery) (status, note string, err error) {
	if err := CheckDelivery(d.Topic, d.Shop, d.Body); err != nil {
		return DeliveryFailed, "the body does not match the delivery's headers: " + err.Error(), nil
	}
	d.Body = core.ScrubJSON(d.Body)
	if isOrderTopic(d.Topic) {
		return p.order(ctx, d)
	}
	switch d.Topic {
	case TopicAppUninstalled:
		if err := p.store.UninstallShop(ctx, d.MerchantID, d.Platform, d.Shop, d.TriggeredAt); err != nil {
			return "", "", err
		}
		p.log.InfoContext(ctx, "shopify app uninstalled", "merchant_id", d.MerchantID, "shop", d.Shop)
		return DeliveryProcessed, "", nil
	case TopicCustomersDataRequest, TopicCustomersRedact, TopicShopRedact:
		return p.compliance(ctx, d)
	}
	return DeliveryIgnored, "topic not handled", nil
}

func (p *Processor) order(ctx context.Context, d WebhookDelivery) (string, string, error) {
	w, err := OrderEventFromWebhook(d.Topic, d.Body)
	if errors.Is(err, ErrInvalidPayload) || errors.Is(err, ErrUnsupportedTopic) {
		return DeliveryFailed, err.Error(), nil
	}
	if err != nil {
		return "", "", err
	}
	if w.NeedsOrderCodes {
		codes, err := p.store.OrderCodes(ctx, d.MerchantID, Platform, d.Shop, w.OrderID)
		if err != nil {
			return "", "", err
		}
		w.Codes = codes
	}
	if len(w.Codes) > 0 {
		for _, ev := range w.Events(d.Shop) {
			if _, err := p.orders.ApplyOrder(ctx, d.MerchantID, ev); err != nil {
				var ce *core.Error
				if errors.As(err, &ce) && ce.Kind == core.KindInvalid {
					return DeliveryFailed, fmt.Sprintf("order event refused: %v", err), nil
				}
				return "", "", err
			}
		}
	}
	if err := recordManualDiscounts(ctx, p.manual, p.log, d.MerchantID, d.Shop, w); err != nil {
		return "", "", err
	}
	return DeliveryProcessed, "", nil
}

// recordManualDiscounts records on the matching codes' timelines the manual discounts of w whose
// title is a code of the merchant: recorded, never redeemed (see OrderWebhook.ManualDiscountTitles).
// A refused event is logged and dropped: it must not hold back the order's codes.
func recordManualDiscounts(ctx context.Context, m *core.ManualDiscounts, log *slog.Logger, merchantID uuid.UUID, shop string, w OrderWebhook) error {
	ev, ok := w.ManualDiscountEvent(shop)
	if !ok {
		return nil
	}
	if _, err := m.Record(ctx, merchantID, ev); err != nil {
		var ce *core.Error
		if errors.As(err, &ce) && ce.Kind == core.KindInvalid {
			log.WarnContext(ctx, "manual discounts not recorded", "shop", shop, "order_id", w.OrderID, "err", err)
			return nil
		}
		return err
	}
	return nil
}
