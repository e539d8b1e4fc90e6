package shopify

import (
	"strings"
	"testing"
)

// TestErasedBody: which stored webhook bodies name the customer, and what is left of them.
func TestErasedBody(t *testing.T) {
	t.Parallel()
	orders := map[string]bool{"450789469": true}
	for _, tc := range []struct {
		name, topic, body string
		named             bool
		want              string // the redacted body; "" when not named
	}{
		{"an order to redact", "orders/paid",
			`{"id": 450789469, "email": "bob@example.com", "financial_status": "paid", "customer": {"id": 1}, "billing_address": {"phone": "555"},
			  "discount_codes": [{"code": "TENOFF"}], "note": "leave at the door"}`,
			true, `{"discount_codes":[{"code": "TENOFF"}],"financial_status":"paid","id":450789469}`},
		{"another order of the customer, by customer id", "orders/create",
			`{"id": 1, "customer": {"id": "207119551"}, "phone": "555"}`, true, `{"id":1}`},
		{"another order of the customer, by email in another case", "orders/updated",
			`{"id": 2, "contact_email": "Bob@Example.com"}`, true, `{"id":2}`},
		{"a wrapped order", "orders/paid", `{"order": {"id": "450789469", "email": "x@example.com", "test": true}}`,
			true, `{"order":{"id":"450789469","test":true}}`},
		{"another customer's order", "orders/paid", `{"id": 7, "email": "alice@example.com", "customer": {"id": 3}}`, false, ""},
		{"a refund of the order", "refunds/create", `{"id": 9, "order_id": 450789469, "note": "bob asked"}`, true, `{"id":9,"order_id":450789469}`},
		{"a refund of another order", "refunds/create", `{"id": 9, "order_id": 1}`, false, ""},
		{"the redaction itself", "customers/redact",
			`{"shop_domain": "s", "customer": {"id": 207119551, "email": "bob@example.com", "phone": "555"}, "orders_to_redact": [450789469]}`,
			true, `{"customer":{"id":207119551},"orders_to_redact":[450789469],"shop_domain":"s"}`},
		{"another customer's data request", "customers/data_request", `{"customer": {"id": 5, "email": "alice@example.com"}}`, false, ""},
		{"not JSON, with the email", "orders/paid", `oops BOB@example.com`, true, `{}`},
		{"not JSON, without it", "orders/paid", `oops`, false, ""},
		{"another topic", "app/uninstalled", `{"id": 450789469, "email": "bob@example.com"}`, false, ""},
	} {
		got, named := erasedBody(tc.topic, []byte(tc.body), "207119551", "bob@example.com", orders)
		if named != tc.named || (named && strings.ReplaceAll(string(got), " ", "") != strings.ReplaceAll(tc.want, " ", "")) {
			t.Errorf("%s: %v %s, want %v %s", tc.name, named, got, tc.named, tc.want)
		}
	}
}
