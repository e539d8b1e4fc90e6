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
	// WebhookReceipt loads a stored receipt; found is false when there is none.
	WebhookReceipt(ctx context.Context, merchantID, id uuid.UUID) (d WebhookReceipt, found bool, err error)
	// FinishWebhookReceipt records the receipt's final status and note.
	FinishWebhookReceipt(ctx context.Context, merchantID, id uuid.UUID, status, note string) error
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

// Processor acts on stored webhook receipts, in the worker. Processing a receipt twice is
// harmless: a finished receipt is skipped, and core counts each order and code once.
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

// Process acts on one receipt and records its outcome. A receipt that can never be processed
// (a body that is not its topic's resource) is recorded failed and answers nil; a transient error
// is returned for the task to retry, the receipt staying received.
func (p *Processor) Process(ctx context.Context, merchantID, receiptID uuid.UUID) error {
	d, found, err := p.store.WebhookReceipt(ctx, merchantID, receiptID)
	if err != nil {
		return err
	}
	if !found || d.Status != ReceiptReceived {
		return nil
	}
	status, note, err := p.act(ctx, d)
	if err != nil {
		return err
	}
	if status == ReceiptFailed {
		p.log.WarnContext(ctx, "shopify webhook failed", "delivery_id", d.ID, "topic", d.Topic, "shop", d.Shop, "reason", note)
	}
	return p.store.FinishWebhookReceipt(ctx, merchantID, receiptID, status, note)
}

var _ core.WebhookPlanner = (*Processor)(nil)

// PlanReceipts implements core.WebhookPlanner: an order receipt is read into its order events,
// to be applied with the other receipts of its batch; an uninstall, a compliance request, a
// refund (its codes are the ones its order recorded before) and an order carrying manual
// discounts are processed alone (Process), in their place. A receipt that can never be applied
// (a body that does not fit its headers or is not its topic's resource, an event core refuses) is
// planned failed, as Process records it.
func (p *Processor) PlanReceipts(_ context.Context, ds []WebhookReceipt) ([]core.WebhookPlan, error) {
	plans := make([]core.WebhookPlan, len(ds))
	for i, d := range ds {
		plans[i] = p.plan(d)
	}
	return plans, nil
}

func (p *Processor) plan(d WebhookReceipt) core.WebhookPlan {
	if err := CheckWebhook(d.Topic, d.Shop, d.Body); err != nil {
		return core.WebhookPlan{Status: ReceiptFailed, Note: "the body does not match the delivery's headers: " + err.Error()}
	}
	if !isOrderTopic(d.Topic) {
		return core.WebhookPlan{Alone: true}
	}
	w, err := OrderEventFromWebhook(d.Topic, core.ScrubJSON(d.Body))
	if errors.Is(err, ErrInvalidPayload) || errors.Is(err, ErrUnsupportedTopic) {
		return core.WebhookPlan{Status: ReceiptFailed, Note: err.Error()}
	}
	if err != nil {
		return core.WebhookPlan{Alone: true}
	}
	order := Platform + ":" + d.Shop + ":" + w.OrderID
	if _, manual := w.ManualDiscountEvent(d.Shop); manual || w.NeedsOrderCodes {
		return core.WebhookPlan{Alone: true, Order: order}
	}
	plan := core.WebhookPlan{Status: ReceiptProcessed, Order: order}
	if len(w.Codes) == 0 {
		return plan
	}
	for _, ev := range w.Events(d.Shop) {
		ev, err := core.CheckOrderEvent(ev)
		if err != nil {
			// As Process: the events before it are applied, and the receipt is recorded failed.
			plan.Status, plan.Note = ReceiptFailed, fmt.Sprintf("order event refused: %v", err)
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

// act does the topic's work and says what to record. A receipt stored before the intake checked
// bodies against headers, or scrubbed them, is checked and scrubbed here.
func (p *Processor) act(ctx context.Context, d WebhookReceipt) (status, note string, err error) {
	if err := CheckWebhook(d.Topic, d.Shop, d.Body); err != nil {
		return ReceiptFailed, "the body does not match the delivery's headers: " + err.Error(), nil
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
		return ReceiptProcessed, "", nil
	case TopicCustomersDataRequest, TopicCustomersRedact, TopicShopRedact:
		return p.compliance(ctx, d)
	}
	return ReceiptIgnored, "topic not handled", nil
}

func (p *Processor) order(ctx context.Context, d WebhookReceipt) (string, string, error) {
	w, err := OrderEventFromWebhook(d.Topic, d.Body)
	if errors.Is(err, ErrInvalidPayload) || errors.Is(err, ErrUnsupportedTopic) {
		return ReceiptFailed, err.Error(), nil
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
					return ReceiptFailed, fmt.Sprintf("order event refused: %v", err), nil
				}
				return "", "", err
			}
		}
	}
	if err := recordManualDiscounts(ctx, p.manual, p.log, d.MerchantID, d.Shop, w); err != nil {
		return "", "", err
	}
	return ReceiptProcessed, "", nil
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
