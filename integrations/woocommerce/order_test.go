package woocommerce_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce"
)

// orderFixtureDir holds real WooCommerce order bodies (see its README.md).
const orderFixtureDir = "testdata/orders"

// orderFixtures returns every fixture body by file name; it fails the test when the directory is
// missing or empty, since these bodies are what the parser is tested against.
func orderFixtures(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(orderFixtureDir, "*.json"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no WooCommerce fixtures in %s: %v", orderFixtureDir, err)
	}
	out := make(map[string][]byte, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("read fixture: %v", err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

func utc(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

// orderFixtureWants is what ParseOrder gives for each fixture.
var orderFixtureWants = map[string]woocommerce.Order{
	"order-processing-coupon.json": {
		ID: "963", Number: "963", Status: "processing", Codes: []string{"30$off"},
		Customer:   core.Recipient{Email: "scrambled@scrambled.com", ExternalID: "11"},
		ModifiedAt: utc("2018-04-03T23:05:14Z"), PaidAt: utc("2018-04-03T23:05:14Z"),
	},
	"order-processing-no-coupon.json": {
		ID: "727", Number: "727", Status: "processing",
		Customer:   core.Recipient{Email: "john.doe@example.com"},
		ModifiedAt: utc("2017-03-22T19:28:08Z"), PaidAt: utc("2017-03-22T19:28:08Z"), CreatedVia: "rest-api",
	},
}

// TestParseOrderFixtures parses every fixture. A new fixture without an expectation here
// fails the test, so it cannot go unchecked.
func TestParseOrderFixtures(t *testing.T) {
	t.Parallel()
	fixtures := orderFixtures(t)
	for name := range orderFixtureWants {
		if fixtures[name] == nil {
			t.Errorf("fixture %s is missing from %s", name, orderFixtureDir)
		}
	}
	for name, body := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want, ok := orderFixtureWants[name]
			if !ok {
				t.Fatalf("fixture %s has no expectation in orderFixtureWants: add one", name)
			}
			o, err := woocommerce.ParseOrder(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o, want) {
				t.Fatalf("got  %+v\nwant %+v", o, want)
			}
			if got := o.Statuses(nil); !slices.Equal(got, []core.OrderStatus{core.OrderPaid}) {
				t.Fatalf("processing order: statuses %v, want [paid]", got)
			}
			// The same order as a REST list element inside the WordPress.com envelope.
			wrapped, err := woocommerce.ParseOrder([]byte(`{"data":` + string(body) + `}`))
			if err != nil || !reflect.DeepEqual(wrapped, want) {
				t.Fatalf("wrapped: %+v, %v", wrapped, err)
			}
		})
	}
}

func TestParseOrderVariations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want woocommerce.Order
	}{
		{"numbers as strings", `{"id":"963","number":963,"status":"processing","customer_id":"11",
			"coupon_lines":[{"id":"894","code":"summer","discount":"30","discount_tax":"1.2"}]}`,
			woocommerce.Order{ID: "963", Number: "963", Status: "processing", Codes: []string{"summer"},
				Customer: core.Recipient{ExternalID: "11"}}},
		{"strings as numbers", `{"id":963,"status":"completed","customer_id":11,
			"coupon_lines":[{"id":894,"code":12345,"discount":30,"discount_tax":1.2}]}`,
			woocommerce.Order{ID: "963", Number: "963", Status: "completed", Codes: []string{"12345"},
				Customer: core.Recipient{ExternalID: "11"}}},
		{"id kept exact beyond float precision", `{"id":9007199254740993,"status":"pending"}`,
			woocommerce.Order{ID: "9007199254740993", Number: "9007199254740993", Status: "pending"}},
		{"id with leading zeros and spaces", `{"id":" 0963 ","status":"pending"}`,
			woocommerce.Order{ID: "963", Number: "963", Status: "pending"}},
		{"custom order number", `{"id":963,"number":" WC-2024-0042 ","status":"pending"}`,
			woocommerce.Order{ID: "963", Number: "WC-2024-0042", Status: "pending"}},
		{"status normalised", `{"id":1,"status":" WC-On-Hold "}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "on-hold"}},
		{"empty status", `{"id":1,"status":""}`, woocommerce.Order{ID: "1", Number: "1"}},
		{"nulls", `{"id":1,"number":null,"status":"processing","customer_id":null,"billing":null,"coupon_lines":null,
			"date_modified_gmt":null,"created_via":null}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"null email", `{"id":1,"status":"processing","billing":{"first_name":"A","email":null}}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"billing an empty PHP array", `{"id":1,"status":"processing","billing":[]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"email trimmed and lower-cased", `{"id":1,"status":"processing","billing":{"email":"  Jane.Doe@Example.COM "}}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Customer: core.Recipient{Email: "jane.doe@example.com"}}},
		{"guest customer", `{"id":1,"status":"processing","customer_id":0,"billing":{"email":"g@example.com"}}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Customer: core.Recipient{Email: "g@example.com"}}},
		{"guest customer as a string", `{"id":1,"status":"processing","customer_id":"0"}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"unusable customer ids ignored", `{"id":1,"status":"processing","customer_id":-4}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"customer id an object", `{"id":1,"status":"processing","customer_id":{"id":4}}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"coupon_data meta", `{"id":1,"status":"processing","coupon_lines":[{"id":9,"code":"30$off",
			"meta_data":[{"id":1,"key":"coupon_data","value":{"id":673,"code":"30$off","amount":"30","used_by":["1"]}}]}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"30$off"}}},
		{"coupon_info meta as stored (JSON text)", `{"id":1,"status":"processing","coupon_lines":[{"id":9,"code":"spring10",
			"meta_data":[{"id":1,"key":"coupon_info","value":"[673,\"spring10\",\"percent\",10]"}]}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"spring10"}}},
		{"coupon_info meta decoded, with free shipping", `{"id":1,"status":"processing","coupon_lines":[{"id":9,"code":"ship",
			"meta_data":[{"id":1,"key":"coupon_info","value":[674,"ship",null,0,true]}]}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"ship"}}},
		{"code missing, taken from coupon_info", `{"id":1,"status":"processing","coupon_lines":[{"id":9,"code":"",
			"meta_data":[{"key":"coupon_info","value":"[673,\"spring10\",\"percent\",10]"}]}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"spring10"}}},
		{"code null, taken from coupon_data", `{"id":1,"status":"processing","coupon_lines":[{"id":9,"code":null,
			"meta_data":[{"key":"coupon_data","value":{"id":673,"code":" old10 "}}]}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"old10"}}},
		{"meta of every odd shape never fails", `{"id":1,"status":"processing","coupon_lines":[{"code":"a","meta_data":[
			{"key":"coupon_info","value":"["},{"key":"coupon_info","value":"[1]"},{"key":"coupon_info","value":null},
			{"key":"coupon_info","value":42},{"key":"coupon_info","value":"{\"x\":1}"},{"key":"coupon_info","value":[1,{"c":2}]},
			{"key":"coupon_data","value":"text"},{"key":"coupon_data","value":[]},{"key":"coupon_data","value":{"code":{"x":1}}},
			{"key":null},{"key":7,"value":7},"x",null,[]]},
			{"code":"b","meta_data":{"key":"coupon_info"}},{"code":"c","meta_data":"oops"},{"code":"d","meta_data":null}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"a", "b", "c", "d"}}},
		{"line without code or meta skipped", `{"id":1,"status":"processing","coupon_lines":[{"id":9},{"code":"  "},{"code":"x"}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"x"}}},
		{"duplicates regardless of case, codes trimmed", `{"id":1,"status":"processing","coupon_lines":[
			{"code":" Ten "},{"code":"ten"},{"code":"TEN"},{"code":"other"},{"code":"ten "}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"Ten", "other"}}},
		{"coupon_lines an object (PHP array with gaps)", `{"id":1,"status":"processing","coupon_lines":{"10":{"code":"c"},"2":{"code":"b"},"x":{"code":"d"},"0":{"code":"a"}}}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"a", "b", "c", "d"}}},
		{"coupon_lines of another shape", `{"id":1,"status":"processing","coupon_lines":"none"}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"coupon line elements of another shape", `{"id":1,"status":"processing","coupon_lines":["x",3,null,[{"code":"no"}],{"code":"yes"}]}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", Codes: []string{"yes"}}},
		{"dates", `{"id":1,"status":"processing","date_modified":"2024-05-01T12:00:00","date_modified_gmt":"2024-05-01T10:00:00","created_via":"checkout"}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", ModifiedAt: utc("2024-05-01T10:00:00Z"), CreatedVia: "checkout"}},
		{"date with an offset", `{"id":1,"status":"processing","date_modified_gmt":"2024-05-01T12:00:00+02:00"}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing", ModifiedAt: utc("2024-05-01T10:00:00Z")}},
		{"unreadable date", `{"id":1,"status":"processing","date_modified_gmt":"yesterday"}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"local date only is not taken for UTC", `{"id":1,"status":"processing","date_modified":"2024-05-01T12:00:00"}`,
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
		{"envelope", `{"data":{"id":5,"status":"completed","coupon_lines":[{"code":"a"}]}}`,
			woocommerce.Order{ID: "5", Number: "5", Status: "completed", Codes: []string{"a"}}},
		{"an order's own data field is not an envelope", `{"id":5,"status":"completed","data":{"id":6,"status":"pending"}}`,
			woocommerce.Order{ID: "5", Number: "5", Status: "completed"}},
		{"unknown fields and whitespace", " \n{\"id\":1,\"status\":\"processing\",\"x\":{\"y\":[1,2,{}]},\"refunds\":[{\"id\":3,\"total\":\"-1.00\"}]}\n ",
			woocommerce.Order{ID: "1", Number: "1", Status: "processing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := woocommerce.ParseOrder([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", o, tt.want)
			}
		})
	}
}

func TestParseOrderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, body string
		want       error
		id         string // the ID of the returned Order
	}{
		{"bad JSON", `{"id":1,`, woocommerce.ErrInvalidPayload, ""},
		{"bad JSON inside a tolerated field", `{"id":1,"status":"processing","coupon_lines":[{]}`, woocommerce.ErrInvalidPayload, ""},
		{"trailing garbage", `{"id":1,"status":"processing"} x`, woocommerce.ErrInvalidPayload, ""},
		{"empty body", ``, woocommerce.ErrInvalidPayload, ""},
		{"null", `null`, woocommerce.ErrInvalidPayload, ""},
		{"array", `[{"id":1,"status":"processing"}]`, woocommerce.ErrInvalidPayload, ""},
		{"string", `"order"`, woocommerce.ErrInvalidPayload, ""},
		{"form body", `webhook_id=12`, woocommerce.ErrInvalidPayload, ""},
		{"no id", `{"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id null", `{"id":null,"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id zero", `{"id":0,"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id negative", `{"id":-5,"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id fractional", `{"id":4.5,"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id exponent", `{"id":1e3,"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id not a number", `{"id":"abc","status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id too large", `{"id":"99999999999999999999","status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id an object", `{"id":{"n":1},"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"id true", `{"id":true,"status":"processing"}`, woocommerce.ErrInvalidPayload, ""},
		{"empty envelope", `{"data":{}}`, woocommerce.ErrInvalidPayload, ""},
		{"envelope of a list", `{"data":[{"id":1,"status":"processing"}]}`, woocommerce.ErrInvalidPayload, ""},
		{"envelope of bad JSON", `{"data":{"id":1,}}`, woocommerce.ErrInvalidPayload, ""},
		{"REST error body", `{"code":"woocommerce_rest_shop_order_invalid_id","message":"Invalid ID.","data":{"status":404}}`, woocommerce.ErrInvalidPayload, ""},
		{"order.deleted body", `{"id":963}`, woocommerce.ErrNotAnOrder, "963"},
		{"order.deleted body, id a string", `{"id":"963"}`, woocommerce.ErrNotAnOrder, "963"},
		{"status null", `{"id":963,"status":null,"coupon_lines":[{"code":"a"}]}`, woocommerce.ErrNotAnOrder, "963"},
		{"order.deleted body in the envelope", `{"data":{"id":963}}`, woocommerce.ErrNotAnOrder, "963"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := woocommerce.ParseOrder([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseOrder = %+v, %v; want %v", o, err, tt.want)
			}
			if other := map[error]error{woocommerce.ErrInvalidPayload: woocommerce.ErrNotAnOrder, woocommerce.ErrNotAnOrder: woocommerce.ErrInvalidPayload}[tt.want]; errors.Is(err, other) {
				t.Fatalf("%v wraps both errors", err)
			}
			if !reflect.DeepEqual(o, woocommerce.Order{ID: tt.id}) {
				t.Fatalf("ParseOrder = %+v, want only the ID %q", o, tt.id)
			}
			t.Log(err)
		})
	}
}

func TestOrderStatuses(t *testing.T) {
	t.Parallel()
	var (
		paid      = []core.OrderStatus{core.OrderPaid}
		pending   = []core.OrderStatus{core.OrderPending}
		cancelled = []core.OrderStatus{core.OrderCancelled}
		refunded  = []core.OrderStatus{core.OrderRefunded}
	)
	tests := []struct {
		status string
		paid   []string
		want   []core.OrderStatus
	}{
		// The default paid statuses, and every status of WooCommerce core and Blocks.
		{"processing", nil, paid},
		{"completed", nil, paid},
		{"on-hold", nil, paid},
		{"pending", nil, pending},
		{"failed", nil, cancelled},
		{"cancelled", nil, cancelled},
		{"refunded", nil, refunded},
		{"checkout-draft", nil, pending},
		{"auto-draft", nil, pending},
		{"draft", nil, pending},
		{"new", nil, pending},
		{"trash", nil, cancelled},
		{"ready-for-pickup", nil, pending}, // a status of a plugin or a newer version: not paid unless configured
		{"", nil, pending},
		// Statuses as a caller may set them on an Order it built.
		{"WC-Completed", nil, paid},
		{" PROCESSING ", nil, paid},
		{"wc-cancelled", nil, cancelled},
		// A connection's own paid statuses.
		{"processing", []string{"completed"}, pending},
		{"on-hold", []string{"processing", "completed"}, pending},
		{"completed", []string{"completed"}, paid},
		{"ready-for-pickup", []string{"processing", "ready-for-pickup"}, paid},
		{"processing", []string{" WC-Processing "}, paid},
		{"processing", []string{}, paid}, // empty: the defaults
		// Never-paid statuses in the configuration are ignored.
		{"pending", []string{"pending", "processing"}, pending},
		{"checkout-draft", []string{"checkout-draft"}, pending},
		{"refunded", []string{"refunded"}, refunded},
		{"cancelled", []string{"cancelled"}, cancelled},
		{"failed", []string{"failed"}, cancelled},
		{"processing", []string{"pending", "cancelled", ""}, paid}, // nothing usable: the defaults
		{"on-hold", []string{"pending", "cancelled", ""}, paid},
	}
	for _, tt := range tests {
		if got := (woocommerce.Order{ID: "1", Status: tt.status}).Statuses(tt.paid); !slices.Equal(got, tt.want) {
			t.Errorf("Order{Status: %q}.Statuses(%q) = %v, want %v", tt.status, tt.paid, got, tt.want)
		}
	}
	if !slices.Equal(woocommerce.DefaultPaidStatuses, []string{"processing", "completed", "on-hold"}) {
		t.Fatalf("DefaultPaidStatuses = %q", woocommerce.DefaultPaidStatuses)
	}
}

func TestOrderEvents(t *testing.T) {
	t.Parallel()
	o, err := woocommerce.ParseOrder(orderFixtures(t)["order-processing-coupon.json"])
	if err != nil {
		t.Fatal(err)
	}
	evs := o.Events(" https://shop.example.com ", nil, " Order.Updated ")
	want := []core.OrderEvent{{
		Platform: "woocommerce", Shop: "https://shop.example.com", OrderID: "963", Status: core.OrderPaid,
		Codes: []string{"30$off"}, Customer: core.Recipient{Email: "scrambled@scrambled.com", ExternalID: "11"},
		Actor: "woocommerce:order.updated",
	}}
	if !reflect.DeepEqual(evs, want) {
		t.Fatalf("events = %+v\nwant %+v", evs, want)
	}
	evs[0].Codes[0] = "CHANGED"
	if o.Codes[0] != "30$off" {
		t.Fatal("the events share the order's codes slice")
	}

	// Refunded after payment: the use counts (paid), then the refund is recorded; refunded
	// without ever being paid counts nothing.
	o.Status = "refunded"
	evs = o.Events("https://shop.example.com", []string{"completed"}, "")
	if len(evs) != 2 || evs[0].Status != core.OrderPaid || evs[1].Status != core.OrderRefunded || evs[0].Actor != "woocommerce" {
		t.Fatalf("events = %+v", evs)
	}
	o.PaidAt = nil
	if evs = o.Events("https://shop.example.com", nil, ""); len(evs) != 1 || evs[0].Status != core.OrderRefunded {
		t.Fatalf("refunded, never paid: events = %+v", evs)
	}
	o.Status = "processing"
	if evs = o.Events("https://shop.example.com", []string{"completed"}, "order.created"); evs[0].Status != core.OrderPending {
		t.Fatalf("processing with paid [completed]: %+v", evs)
	}
	if evs := (woocommerce.Order{ID: "2", Status: "processing"}).Events("s", nil, "order.created"); evs[0].Codes != nil {
		t.Fatalf("an order without codes gives codes %q", evs[0].Codes)
	}
}

// FuzzParseOrder checks that no body makes ParseOrder panic, that its errors are the documented
// ones, and that what it accepts keeps every promise of Order.
func FuzzParseOrder(f *testing.F) {
	for _, body := range orderFixtures(f) {
		f.Add(body)
	}
	f.Add([]byte(`{"id":"5","status":"on-hold","customer_id":"0","coupon_lines":[{"code":"A"},{"code":"a"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		o, err := woocommerce.ParseOrder(body)
		if err != nil {
			invalid, notOrder := errors.Is(err, woocommerce.ErrInvalidPayload), errors.Is(err, woocommerce.ErrNotAnOrder)
			if invalid == notOrder {
				t.Fatalf("error %v wraps not exactly one of the documented errors", err)
			}
			if invalid && !reflect.DeepEqual(o, woocommerce.Order{}) || notOrder && !reflect.DeepEqual(o, woocommerce.Order{ID: o.ID}) {
				t.Fatalf("error %v with order %+v", err, o)
			}
			if notOrder && !canonicalID(o.ID) {
				t.Fatalf("ErrNotAnOrder with id %q", o.ID)
			}
			return
		}
		if !canonicalID(o.ID) {
			t.Fatalf("order id %q is not a canonical positive decimal", o.ID)
		}
		if o.Number == "" || o.Number != strings.TrimSpace(o.Number) {
			t.Fatalf("number %q", o.Number)
		}
		if o.Status != strings.ToLower(strings.TrimSpace(o.Status)) || strings.HasPrefix(o.Status, "wc-") {
			t.Fatalf("status %q not normalised", o.Status)
		}
		for i, c := range o.Codes {
			if c == "" || c != strings.TrimSpace(c) ||
				slices.ContainsFunc(o.Codes[:i], func(have string) bool { return strings.EqualFold(have, c) }) {
				t.Fatalf("codes %q", o.Codes)
			}
		}
		if e := o.Customer.Email; e != strings.ToLower(strings.TrimSpace(e)) {
			t.Fatalf("email %q not normalised", e)
		}
		if x := o.Customer.ExternalID; x != "" && !canonicalID(x) {
			t.Fatalf("external id %q", x)
		}
		if o.ModifiedAt != nil && o.ModifiedAt.Location() != time.UTC {
			t.Fatalf("modified at %v is not UTC", o.ModifiedAt)
		}
		statuses := o.Statuses(nil)
		if len(statuses) != 1 {
			t.Fatalf("statuses %v", statuses)
		}
		if _, ok := core.ParseOrderStatus(string(statuses[0])); !ok {
			t.Fatalf("status %q", statuses[0])
		}
		evs := o.Events("https://shop.example.com", nil, "order.updated")
		if len(evs) != 1 || evs[0].OrderID != o.ID || evs[0].Status != statuses[0] || !slices.Equal(evs[0].Codes, o.Codes) {
			t.Fatalf("events %+v of order %+v", evs, o)
		}
	})
}

func canonicalID(s string) bool {
	return s != "" && len(s) <= 20 && strings.Trim(s, "0123456789") == "" && s[0] != '0'
}
