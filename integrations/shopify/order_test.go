package shopify_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

var (
	paid      = core.OrderPaid
	pending   = core.OrderPending
	cancelled = core.OrderCancelled
	refunded  = core.OrderRefunded
)

// fixtureWant is what every order topic but orders/cancelled gives for a fixture.
type fixtureWant struct {
	orderID, name, financial string
	statuses                 []core.OrderStatus
	codes, manual            []string
	customer                 core.Recipient
}

var fixtureWants = map[string]fixtureWant{
	"order-authorized-TENOFF.json": {
		orderID: "450789469", name: "#1001", financial: "authorized",
		statuses: []core.OrderStatus{pending}, codes: []string{"TENOFF"},
		customer: core.Recipient{Email: "bob.norman@mail.example.com", ExternalID: "207119551"},
	},
	"order-partially-refunded-TENOFF.json": {
		orderID: "450789469", name: "#1001", financial: "partially_refunded",
		statuses: []core.OrderStatus{paid, refunded}, codes: []string{"TENOFF"},
		customer: core.Recipient{Email: "bob.norman@mail.example.com", ExternalID: "207119551"},
	},
	"order-paid-no-code.json": {
		orderID: "1073459969", name: "#1002", financial: "paid",
		statuses: []core.OrderStatus{paid},
	},
	"order-paid-manual-FAKE30.json": {
		orderID: "1073459981", name: "#1002", financial: "paid",
		statuses: []core.OrderStatus{paid}, manual: []string{"FAKE30"},
		customer: core.Recipient{Email: "jane@example.com", ExternalID: "1073339475"},
	},
}

// TestOrderEventFromWebhookFixtures runs every fixture through every order topic. A new
// fixture without an expectation here fails the test, so it cannot go unchecked.
func TestOrderEventFromWebhookFixtures(t *testing.T) {
	t.Parallel()
	fixtures := readFixtures(t)
	for name := range fixtureWants {
		if fixtures[name] == nil {
			t.Errorf("fixture %s is missing from %s", name, fixtureDir)
		}
	}
	for name, body := range fixtures {
		want, ok := fixtureWants[name]
		if !ok {
			t.Errorf("fixture %s has no expectation in fixtureWants: add one", name)
			continue
		}
		for _, topic := range []string{shopify.TopicOrdersCreate, shopify.TopicOrdersPaid, shopify.TopicOrdersUpdated, shopify.TopicOrdersCancelled} {
			t.Run(name+"/"+topic, func(t *testing.T) {
				t.Parallel()
				w, err := shopify.OrderEventFromWebhook(topic, body)
				if err != nil {
					t.Fatal(err)
				}
				statuses := want.statuses
				if topic == shopify.TopicOrdersCancelled {
					statuses = shopify.OrderStatuses(want.financial, true)
				}
				wantW := shopify.OrderWebhook{
					Topic: topic, OrderID: want.orderID, Name: want.name, FinancialStatus: want.financial,
					Cancelled: topic == shopify.TopicOrdersCancelled, Statuses: statuses,
					Codes: want.codes, ManualDiscountTitles: want.manual, Customer: want.customer,
				}
				if !reflect.DeepEqual(w, wantW) {
					t.Fatalf("got  %+v\nwant %+v", w, wantW)
				}
			})
		}
	}
}

// editFixture returns a fixture body with edit applied to its decoded JSON.
func editFixture(t *testing.T, name string, edit func(o map[string]any)) []byte {
	t.Helper()
	body := readFixtures(t)[name]
	if body == nil {
		t.Fatalf("fixture %s is missing from %s", name, fixtureDir)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var o map[string]any
	if err := d.Decode(&o); err != nil {
		t.Fatal(err)
	}
	edit(o)
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOrderEventFromWebhookVariations(t *testing.T) {
	t.Parallel()
	const paidTEN = "order-partially-refunded-TENOFF.json"
	refund := func(t *testing.T) []byte {
		// The real Refund inside the fixture is exactly what refunds/create delivers.
		var o struct{ Refunds []json.RawMessage }
		if err := json.Unmarshal(readFixtures(t)[paidTEN], &o); err != nil || len(o.Refunds) == 0 {
			t.Fatalf("no refund in %s: %v", paidTEN, err)
		}
		return o.Refunds[0]
	}
	type want struct {
		orderID  string
		statuses []core.OrderStatus
		codes    []string
		manual   []string
		customer *core.Recipient
	}
	tests := []struct {
		name  string
		topic string
		body  func(t *testing.T) []byte
		want  want
	}{
		{"refund body", shopify.TopicRefundsCreate, refund, want{orderID: "450789469", statuses: []core.OrderStatus{refunded}}},
		{"refund wrapped", shopify.TopicRefundsCreate, func(t *testing.T) []byte {
			return []byte(`{"refund":` + string(refund(t)) + `}`)
		}, want{orderID: "450789469", statuses: []core.OrderStatus{refunded}}},
		{"refund with string ids", shopify.TopicRefundsCreate, func(*testing.T) []byte {
			return []byte(`{"id":"509562969","order_id":"450789469"}`)
		}, want{orderID: "450789469", statuses: []core.OrderStatus{refunded}}},
		{"paid then cancelled (cancelled_at on orders/updated)", shopify.TopicOrdersUpdated, func(t *testing.T) []byte {
			return editFixture(t, "order-paid-manual-FAKE30.json", func(o map[string]any) {
				o["cancelled_at"] = "2025-04-03T10:00:00-05:00"
				o["cancel_reason"] = "customer"
			})
		}, want{orderID: "1073459981", statuses: []core.OrderStatus{paid, cancelled}, manual: []string{"FAKE30"}}},
		{"refunded and cancelled", shopify.TopicOrdersCancelled, func(t *testing.T) []byte {
			return editFixture(t, paidTEN, func(o map[string]any) {
				o["financial_status"] = "refunded"
				o["cancelled_at"] = "2025-04-03T10:00:00-05:00"
			})
		}, want{orderID: "450789469", statuses: []core.OrderStatus{paid, refunded, cancelled}, codes: []string{"TENOFF"}}},
		{"unpaid and cancelled", shopify.TopicOrdersUpdated, func(t *testing.T) []byte {
			return editFixture(t, "order-authorized-TENOFF.json", func(o map[string]any) {
				o["financial_status"] = "voided"
				o["cancelled_at"] = "2025-04-03T10:00:00-05:00"
			})
		}, want{orderID: "450789469", statuses: []core.OrderStatus{cancelled}, codes: []string{"TENOFF"}}},
		{"ids and codes as strings and numbers", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":"5001","financial_status":"paid","customer":{"id":"77"},
				"discount_codes":[{"code":12345,"amount":"1.00","type":"fixed_amount"},"SPRING-1"],
				"discount_applications":[{"type":"discount_code","code":12345},{"type":"discount_code","code":"SPRING-1"}]}`)
		}, want{orderID: "5001", statuses: []core.OrderStatus{paid}, codes: []string{"12345", "SPRING-1"}, customer: &core.Recipient{ExternalID: "77"}}},
		{"numeric id kept exact beyond float precision", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":9007199254740993,"financial_status":"paid"}`)
		}, want{orderID: "9007199254740993", statuses: []core.OrderStatus{paid}}},
		{"order wrapped as the REST API answers", shopify.TopicOrdersPaid, func(t *testing.T) []byte {
			return []byte(`{"order":` + string(readFixtures(t)[paidTEN]) + `}`)
		}, want{orderID: "450789469", statuses: []core.OrderStatus{paid, refunded}, codes: []string{"TENOFF"}}},
		{"only a GraphQL id", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"admin_graphql_api_id":"gid://shopify/Order/42","financial_status":"PAID"}`)
		}, want{orderID: "42", statuses: []core.OrderStatus{paid}}},
		{"code and manual discount together", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid",
				"discount_codes":[{"code":"TENOFF"},{"code":"FAKE30"}],
				"discount_applications":[{"type":"discount_code","code":"TENOFF"},{"type":"manual","title":"FAKE30"}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, codes: []string{"TENOFF"}, manual: []string{"FAKE30"}}},
		{"application without a discount_codes entry", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","discount_applications":[{"type":"discount_code","code":"TENOFF"}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, codes: []string{"TENOFF"}}},
		{"discount_codes entry with no application at all", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","discount_codes":[{"code":"TENOFF"}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, manual: []string{"TENOFF"}}},
		{"automatic and script applications are not codes", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","discount_codes":[],
				"discount_applications":[{"type":"automatic","title":"SUMMER"},{"type":"script","title":"X","code":"X"}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}}},
		{"case differs between entry and application", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","discount_codes":[{"code":"tenoff"}],
				"discount_applications":[{"type":"discount_code","code":"TENOFF"}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, codes: []string{"TENOFF"}}},
		{"duplicates, blanks and spaces", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","discount_codes":[{"code":" A "},{"code":""},{"code":null},{"code":"M"},{"code":"M"}],
				"discount_applications":[{"type":"discount_code","code":"A"},{"type":"discount_code","code":" A"},{"type":"discount_code","code":""}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, codes: []string{"A"}, manual: []string{"M"}}},
		{"email falls back to contact_email, then the customer's", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","email":"","contact_email":null,
				"customer":{"id":9,"email":"c@example.com","admin_graphql_api_id":"gid://shopify/Customer/9"}}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, customer: &core.Recipient{Email: "c@example.com", ExternalID: "9"}}},
		{"customer with only a GraphQL id", shopify.TopicOrdersPaid, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid","contact_email":"x@example.com","customer":{"admin_graphql_api_id":"gid://shopify/Customer/9"}}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}, customer: &core.Recipient{Email: "x@example.com", ExternalID: "9"}}},
		{"unknown financial status is not paid", shopify.TopicOrdersUpdated, func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"expired","discount_applications":[{"type":"discount_code","code":"A"}]}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{pending}, codes: []string{"A"}}},
		{"topic in another case", "Orders/Paid", func(*testing.T) []byte {
			return []byte(`{"id":1,"financial_status":"paid"}`)
		}, want{orderID: "1", statuses: []core.OrderStatus{paid}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := shopify.OrderEventFromWebhook(tt.topic, tt.body(t))
			if err != nil {
				t.Fatal(err)
			}
			if w.OrderID != tt.want.orderID || !slices.Equal(w.Statuses, tt.want.statuses) ||
				!slices.Equal(w.Codes, tt.want.codes) || !slices.Equal(w.ManualDiscountTitles, tt.want.manual) {
				t.Fatalf("got order %q statuses %v codes %q manual %q\nwant order %q statuses %v codes %q manual %q",
					w.OrderID, w.Statuses, w.Codes, w.ManualDiscountTitles, tt.want.orderID, tt.want.statuses, tt.want.codes, tt.want.manual)
			}
			if tt.want.customer != nil && w.Customer != *tt.want.customer {
				t.Fatalf("customer = %+v, want %+v", w.Customer, *tt.want.customer)
			}
			if isRefund := tt.topic == shopify.TopicRefundsCreate; w.NeedsOrderCodes != isRefund || (w.RefundID != "") != isRefund {
				t.Fatalf("NeedsOrderCodes = %v, RefundID = %q for %s", w.NeedsOrderCodes, w.RefundID, tt.topic)
			}
		})
	}
}

func TestOrderEventFromWebhookErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, topic, body string
		want              error
	}{
		{"bad JSON", shopify.TopicOrdersPaid, `{"id":1,`, shopify.ErrInvalidPayload},
		{"trailing garbage", shopify.TopicOrdersPaid, `{"id":1} x`, shopify.ErrInvalidPayload},
		{"empty body", shopify.TopicOrdersPaid, ``, shopify.ErrInvalidPayload},
		{"null", shopify.TopicOrdersPaid, `null`, shopify.ErrInvalidPayload},
		{"array", shopify.TopicOrdersPaid, `[{"id":1}]`, shopify.ErrInvalidPayload},
		{"string", shopify.TopicOrdersPaid, `"order"`, shopify.ErrInvalidPayload},
		{"no id", shopify.TopicOrdersPaid, `{"financial_status":"paid"}`, shopify.ErrInvalidPayload},
		{"id zero", shopify.TopicOrdersPaid, `{"id":0}`, shopify.ErrInvalidPayload},
		{"id negative", shopify.TopicOrdersPaid, `{"id":-5}`, shopify.ErrInvalidPayload},
		{"id fractional", shopify.TopicOrdersPaid, `{"id":4.5e8}`, shopify.ErrInvalidPayload},
		{"id not a number", shopify.TopicOrdersPaid, `{"id":"abc"}`, shopify.ErrInvalidPayload},
		{"id too large", shopify.TopicOrdersPaid, `{"id":"99999999999999999999"}`, shopify.ErrInvalidPayload},
		{"id an object", shopify.TopicOrdersPaid, `{"id":{"n":1}}`, shopify.ErrInvalidPayload},
		{"gid of another resource", shopify.TopicOrdersPaid, `{"admin_graphql_api_id":"gid://shopify/Customer/1"}`, shopify.ErrInvalidPayload},
		{"discount_codes an object", shopify.TopicOrdersPaid, `{"id":1,"discount_codes":{"code":"A"}}`, shopify.ErrInvalidPayload},
		{"empty wrapper", shopify.TopicOrdersPaid, `{"order":{}}`, shopify.ErrInvalidPayload},
		{"refund without order_id", shopify.TopicRefundsCreate, `{"id":1}`, shopify.ErrInvalidPayload},
		{"refund given an order", shopify.TopicRefundsCreate, `{"id":1,"financial_status":"refunded"}`, shopify.ErrInvalidPayload},
		{"orders/edited is an OrderEdit", "orders/edited", `{"order_edit":{"id":1}}`, shopify.ErrUnsupportedTopic},
		{"app/uninstalled", "app/uninstalled", `{"id":1}`, shopify.ErrUnsupportedTopic},
		{"no topic", "", `{"id":1}`, shopify.ErrUnsupportedTopic},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := shopify.OrderEventFromWebhook(tt.topic, []byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("OrderEventFromWebhook = %+v, %v; want %v", w, err, tt.want)
			}
			t.Log(err)
		})
	}
}

func TestOrderStatuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		financial string
		cancelled bool
		want      []core.OrderStatus
	}{
		{"paid", false, []core.OrderStatus{paid}},
		{"PAID", false, []core.OrderStatus{paid}},
		{"partially_refunded", false, []core.OrderStatus{paid, refunded}},
		{"refunded", false, []core.OrderStatus{paid, refunded}},
		{"pending", false, []core.OrderStatus{pending}},
		{"authorized", false, []core.OrderStatus{pending}},
		{"partially_paid", false, []core.OrderStatus{pending}},
		{"voided", false, []core.OrderStatus{pending}},
		{"EXPIRED", false, []core.OrderStatus{pending}},
		{"", false, []core.OrderStatus{pending}},
		{"paid", true, []core.OrderStatus{paid, cancelled}},
		{"refunded", true, []core.OrderStatus{paid, refunded, cancelled}},
		{"pending", true, []core.OrderStatus{cancelled}},
		{"voided", true, []core.OrderStatus{cancelled}},
	}
	for _, tt := range tests {
		if got := shopify.OrderStatuses(tt.financial, tt.cancelled); !slices.Equal(got, tt.want) {
			t.Errorf("OrderStatuses(%q, %v) = %v, want %v", tt.financial, tt.cancelled, got, tt.want)
		}
	}
}

func TestOrderWebhookEvents(t *testing.T) {
	t.Parallel()
	w, err := shopify.OrderEventFromWebhook(shopify.TopicOrdersCancelled, readFixtures(t)["order-partially-refunded-TENOFF.json"])
	if err != nil {
		t.Fatal(err)
	}
	evs := w.Events("Some-Shop.myshopify.com")
	var got []core.OrderStatus
	for _, ev := range evs {
		got = append(got, ev.Status)
		want := core.OrderEvent{Platform: "shopify", Shop: "some-shop.myshopify.com", OrderID: "450789469", Status: ev.Status,
			Codes: []string{"TENOFF"}, Customer: core.Recipient{Email: "bob.norman@mail.example.com", ExternalID: "207119551"},
			Actor: "shopify:orders/cancelled"}
		if !reflect.DeepEqual(ev, want) {
			t.Fatalf("event = %+v\nwant %+v", ev, want)
		}
	}
	if !slices.Equal(got, []core.OrderStatus{paid, refunded, cancelled}) {
		t.Fatalf("statuses = %v", got)
	}
	evs[0].Codes[0] = "CHANGED"
	if w.Codes[0] != "TENOFF" || evs[1].Codes[0] != "TENOFF" {
		t.Fatal("events share their codes slice")
	}
}

// FuzzOrderFromWebhook checks that no topic and body make OrderEventFromWebhook panic, that its
// errors are the documented ones, and that what it accepts keeps every promise of OrderWebhook.
func FuzzOrderFromWebhook(f *testing.F) {
	for _, body := range readFixtures(f) {
		f.Add(shopify.TopicOrdersPaid, body)
	}
	f.Add(shopify.TopicRefundsCreate, []byte(`{"id":1,"order_id":"2"}`))
	f.Fuzz(func(t *testing.T, topic string, body []byte) {
		w, err := shopify.OrderEventFromWebhook(topic, body)
		if err != nil {
			if !errors.Is(err, shopify.ErrInvalidPayload) && !errors.Is(err, shopify.ErrUnsupportedTopic) {
				t.Fatalf("undocumented error %v", err)
			}
			return
		}
		if w.OrderID == "" || strings.Trim(w.OrderID, "0123456789") != "" || w.OrderID[0] == '0' {
			t.Fatalf("order id %q is not a canonical decimal", w.OrderID)
		}
		if len(w.Statuses) == 0 {
			t.Fatal("no statuses")
		}
		for i, s := range w.Statuses {
			if _, ok := core.ParseOrderStatus(string(s)); !ok || slices.Contains(w.Statuses[:i], s) {
				t.Fatalf("statuses %v", w.Statuses)
			}
		}
		for i, c := range w.Codes {
			if c == "" || c != strings.TrimSpace(c) || slices.Contains(w.Codes[:i], c) {
				t.Fatalf("codes %q", w.Codes)
			}
			if slices.ContainsFunc(w.ManualDiscountTitles, func(m string) bool { return strings.EqualFold(m, c) }) {
				t.Fatalf("%q is both a code and a manual title", c)
			}
		}
		if w.NeedsOrderCodes && len(w.Codes) > 0 {
			t.Fatal("a refund carries codes")
		}
		if evs := w.Events("a.myshopify.com"); len(evs) != len(w.Statuses) {
			t.Fatalf("%d events for %d statuses", len(evs), len(w.Statuses))
		}
	})
}

func TestOrderFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body            string
		test, cancelled bool
	}{
		{`{"id":1,"test":true,"cancelled_at":null}`, true, false},
		{`{"id":1,"test":"true","cancelled_at":""}`, true, false},
		{`{"id":1,"test":false,"cancelled_at":"2025-01-01T00:00:00Z"}`, false, true},
		{`{"id":1,"test":null}`, false, false},
	}
	for _, tt := range tests {
		w, err := shopify.OrderEventFromWebhook(shopify.TopicOrdersUpdated, []byte(tt.body))
		if err != nil || w.Test != tt.test || w.Cancelled != tt.cancelled {
			t.Errorf("%s: test %v cancelled %v, %v; want %v %v", tt.body, w.Test, w.Cancelled, err, tt.test, tt.cancelled)
		}
	}
}
