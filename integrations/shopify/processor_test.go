package shopify_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

type fakeProcessStore struct {
	d            shopify.WebhookReceipt
	orderCodes   []string
	uninstalled  int
	finished     []string
	exports      []shopify.CustomerDataRequest
	redactions   []shopify.CustomerRedact
	shopRedacted int
	manual       []core.ManualDiscountEvent
}

// FindCode knows every code: each is a live code of one list.
func (s *fakeProcessStore) FindCode(_ context.Context, _ uuid.UUID, code string) (core.FoundCode, bool, error) {
	return core.FoundCode{Code: code, State: core.StateAvailable}, true, nil
}

func (s *fakeProcessStore) FindListCode(context.Context, uuid.UUID, uuid.UUID, string) (core.FoundCode, error) {
	return core.FoundCode{}, core.ErrCodeNotFound
}

func (s *fakeProcessStore) FindPushedCode(context.Context, uuid.UUID, string, string, string) (core.FoundCode, bool, error) {
	return core.FoundCode{}, false, nil
}

func (s *fakeProcessStore) RecordManualDiscount(_ context.Context, _ uuid.UUID, ev core.ManualDiscountEvent, _ string, _ core.FoundCode) (bool, error) {
	s.manual = append(s.manual, ev)
	return true, nil
}

func (s *fakeProcessStore) WebhookReceipt(context.Context, uuid.UUID, uuid.UUID) (shopify.WebhookReceipt, bool, error) {
	return s.d, true, nil
}

func (s *fakeProcessStore) FinishWebhookReceipt(_ context.Context, _, _ uuid.UUID, status, _ string) error {
	s.d.Status = status
	s.finished = append(s.finished, status)
	return nil
}

func (s *fakeProcessStore) OrderCodes(context.Context, uuid.UUID, string, string, string) ([]string, error) {
	return s.orderCodes, nil
}

func (s *fakeProcessStore) UninstallShop(context.Context, uuid.UUID, string, string, *time.Time) error {
	s.uninstalled++
	return nil
}

func (s *fakeProcessStore) SaveCustomerExport(_ context.Context, _ uuid.UUID, req shopify.CustomerDataRequest) error {
	s.exports = append(s.exports, req)
	return nil
}

func (s *fakeProcessStore) RedactCustomer(_ context.Context, _ uuid.UUID, req shopify.CustomerRedact) error {
	s.redactions = append(s.redactions, req)
	return nil
}

func (s *fakeProcessStore) RedactShop(context.Context, uuid.UUID, string, string) error {
	s.shopRedacted++
	return nil
}

type fakeOrders struct{ events []core.OrderEvent }

func (o *fakeOrders) ApplyOrder(_ context.Context, _ uuid.UUID, ev core.OrderEvent) (core.OrderResult, error) {
	o.events = append(o.events, ev)
	return core.OrderResult{}, nil
}

func TestProcessor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fx := readFixtures(t)
	const shop = "jsmith.myshopify.com" // the fixtures' shop (their order_status_url)
	run := func(topic string, body []byte, orderCodes ...string) (*fakeProcessStore, *fakeOrders) {
		t.Helper()
		s := &fakeProcessStore{d: shopify.WebhookReceipt{Shop: shop, Platform: shopify.Platform, Topic: topic, Body: body, Status: shopify.ReceiptReceived}, orderCodes: orderCodes}
		o := &fakeOrders{}
		p := shopify.NewProcessor(s, o, slog.New(slog.DiscardHandler))
		for range 2 { // the second run finds the delivery finished and does nothing
			if err := p.Process(ctx, uuid.New(), uuid.New()); err != nil {
				t.Fatal(err)
			}
		}
		return s, o
	}

	s, o := run("orders/updated", fx["order-partially-refunded-TENOFF.json"])
	if len(o.events) != 2 || o.events[0].Status != core.OrderPaid || o.events[0].Codes[0] != "TENOFF" || o.events[0].Shop != shop || len(s.finished) != 1 || s.finished[0] != shopify.ReceiptProcessed {
		t.Fatalf("paid order: events %+v, finished %v", o.events, s.finished)
	}
	if len(s.manual) != 0 {
		t.Fatalf("an order without manual discounts recorded one: %+v", s.manual)
	}
	// A manual discount carrying a code's text is recorded, not redeemed.
	s, o = run("orders/paid", fx["order-paid-manual-FAKE30.json"])
	if len(o.events) != 0 {
		t.Fatalf("a manual discount was applied: %+v", o.events)
	}
	if len(s.manual) != 1 || s.manual[0].OrderID != "1073459981" || s.manual[0].Shop != shop ||
		s.manual[0].Actor != "shopify:orders/paid" || len(s.manual[0].Titles) != 1 || s.manual[0].Titles[0] != "FAKE30" ||
		s.d.Status != shopify.ReceiptProcessed {
		t.Fatalf("manual discount: recorded %+v, status %q", s.manual, s.d.Status)
	}
	if _, o := run("refunds/create", []byte(`{"id": 9, "order_id": 450789469}`), "TENOFF"); len(o.events) != 1 || o.events[0].Status != core.OrderRefunded || o.events[0].Codes[0] != "TENOFF" {
		t.Fatalf("refund: %+v", o.events)
	}
	if s, _ := run("orders/paid", []byte(`not json`)); s.d.Status != shopify.ReceiptFailed {
		t.Fatalf("invalid body: status %q", s.d.Status)
	}
	if s, _ := run("app/uninstalled", []byte(`{"id": 1, "myshopify_domain": "`+shop+`"}`)); s.uninstalled != 1 || s.d.Status != shopify.ReceiptProcessed {
		t.Fatalf("uninstall: %d, %q", s.uninstalled, s.d.Status)
	}
	if s, o := run("shop/redact", []byte(`{"shop_id": 1, "shop_domain": "`+shop+`"}`)); len(o.events) != 0 || s.d.Status != shopify.ReceiptProcessed || s.shopRedacted != 1 {
		t.Fatalf("shop/redact: %q, %d", s.d.Status, s.shopRedacted)
	}
	// A delivery stored before the intake checked bodies against headers is checked here: another
	// shop's body, or another topic's, fails and does nothing.
	if s, _ := run("app/uninstalled", []byte(`{"id": 2, "myshopify_domain": "other.myshopify.com"}`)); s.uninstalled != 0 || s.d.Status != shopify.ReceiptFailed {
		t.Fatalf("another shop's uninstall: %d, %q", s.uninstalled, s.d.Status)
	}
	if s, _ := run("app/uninstalled", fx["order-paid-no-code.json"]); s.uninstalled != 0 || s.d.Status != shopify.ReceiptFailed {
		t.Fatalf("an order as app/uninstalled: %d, %q", s.uninstalled, s.d.Status)
	}
	if s, _ := run("shop/redact", []byte(`{"shop_domain": "other.myshopify.com"}`)); s.shopRedacted != 0 || s.d.Status != shopify.ReceiptFailed {
		t.Fatalf("another shop's shop/redact: %d, %q", s.shopRedacted, s.d.Status)
	}
	s, _ = run("customers/data_request", []byte(`{"shop_domain": "`+shop+`", "orders_requested": [299938, "gid://shopify/Order/280263551"],
		"customer": {"id": 191167, "email": " John@Example.com", "phone": "555-625-1199"}, "data_request": {"id": 9999}}`))
	if len(s.exports) != 1 || s.d.Status != shopify.ReceiptProcessed {
		t.Fatalf("data request: %q, %+v", s.d.Status, s.exports)
	}
	if e := s.exports[0]; e.RequestID != "9999" || e.Customer.ID != "191167" || len(e.OrderIDs) != 2 || e.OrderIDs[1] != "280263551" {
		t.Fatalf("data request parsed as %+v", e)
	}
	if keys := s.exports[0].Customer.RecipientKeys(); len(keys) != 4 || keys[0] != "ext:191167" || keys[2] != "email:john@example.com" || keys[3] != "phone:5556251199" {
		t.Fatalf("recipient keys %q", keys)
	}
	s, _ = run("customers/redact", []byte(`{"shop_domain": "`+shop+`", "customer": {"id": 191167}, "orders_to_redact": [299938]}`))
	if len(s.redactions) != 1 || s.redactions[0].Customer.ID != "191167" || s.redactions[0].OrderIDs[0] != "299938" {
		t.Fatalf("redact: %+v", s.redactions)
	}
	for _, body := range []string{`not json`, `{"shop_domain": "` + shop + `", "customer": {}}`, `{}`,
		`{"shop_domain": "other.myshopify.com", "customer": {"id": 191167}}`} {
		if s, _ := run("customers/redact", []byte(body)); s.d.Status != shopify.ReceiptFailed || len(s.redactions) != 0 {
			t.Fatalf("redact %s: %q", body, s.d.Status)
		}
	}
}
