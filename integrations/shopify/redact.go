package shopify

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Erasing a customer from the raw bodies of stored webhook deliveries (customers/redact). The
// store finds the shop's stored bodies that may name the customer (their bytes hold an order id,
// the customer id or the email) and rewrites each with what CustomerRedact.EraseFromBody returns;
// what a Shopify body holds, and what of it must stay, is known here.

// bodyEraser is req's EraseFromBody.
func bodyEraser(req CustomerRedact) func(topic string, body []byte) ([]byte, bool) {
	email := strings.ToLower(strings.TrimSpace(req.Customer.Email))
	orders := map[string]bool{}
	for _, id := range req.OrderIDs {
		if id = strings.TrimSpace(id); id != "" {
			orders[id] = true
		}
	}
	return func(topic string, body []byte) ([]byte, bool) {
		return erasedBody(topic, body, req.Customer.ID, email, orders)
	}
}

// orderBodyKeys are the fields of a stored order body that survive a customer's redaction: what
// OrderEventFromWebhook reads to apply the order (its id, name, financial status,
// cancellation, test flag and discount codes), and dates and currency, none of them personal. The
// customer, email, contact_email, phone, addresses, note, note_attributes, browser_ip,
// client_details, line items, fulfillments, refunds and every other field go.
var orderBodyKeys = []string{"id", "admin_graphql_api_id", "name", "number", "order_number", "financial_status", "fulfillment_status",
	"cancelled_at", "cancel_reason", "test", "discount_codes", "discount_applications", "currency", "created_at", "updated_at", "processed_at"}

// refundBodyKeys are the fields of a stored refunds/create body that survive a redaction.
var refundBodyKeys = []string{"id", "order_id", "admin_graphql_api_id", "created_at", "processed_at"}

// erasedBody is a stored body of topic with the customer erased, and whether it named the customer
// at all: an order body (orders/*) of one of the orders to redact or naming the customer (customer
// id or email) keeps only orderBodyKeys, so a delivery still to be processed applies the same order
// and codes, with no customer; a refunds/create body of one of those orders keeps only
// refundBodyKeys; a customers/data_request or customers/redact body naming the customer keeps the
// customer's id and loses the email and phone. A body that is not JSON but holds the customer's
// email is emptied.
func erasedBody(topic string, body []byte, customerID, email string, orders map[string]bool) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		if email != "" && bytes.Contains(bytes.ToLower(body), []byte(email)) {
			return []byte("{}"), true
		}
		return nil, false
	}
	customerOf := func(o map[string]json.RawMessage) (id, mail string) {
		var c map[string]json.RawMessage
		if json.Unmarshal(o["customer"], &c) == nil {
			id, mail = rawText(c["id"]), rawText(c["email"])
		}
		return id, mail
	}
	names := func(id string, mails ...string) bool {
		if customerID != "" && strings.TrimPrefix(id, "gid://shopify/Customer/") == customerID {
			return true
		}
		for _, m := range mails {
			if email != "" && strings.ToLower(strings.TrimSpace(m)) == email {
				return true
			}
		}
		return false
	}
	// A body wrapped as the REST API answers ({"order": {...}}) is redacted inside.
	inner, wrapKey := obj, ""
	for _, k := range []string{"order", "refund"} {
		var o map[string]json.RawMessage
		if raw, ok := obj[k]; ok && json.Unmarshal(raw, &o) == nil && o != nil {
			inner, wrapKey = o, k
		}
	}
	var keep []string
	switch {
	case strings.HasPrefix(topic, "orders/"):
		id := strings.TrimPrefix(rawText(inner["admin_graphql_api_id"]), "gid://shopify/Order/")
		if v := rawText(inner["id"]); v != "" {
			id = v
		}
		cid, cmail := customerOf(inner)
		if !orders[id] && !names(cid, cmail, rawText(inner["email"]), rawText(inner["contact_email"])) {
			return nil, false
		}
		keep = orderBodyKeys
	case topic == TopicRefundsCreate:
		if !orders[rawText(inner["order_id"])] {
			return nil, false
		}
		keep = refundBodyKeys
	case topic == TopicCustomersDataRequest || topic == TopicCustomersRedact:
		cid, cmail := customerOf(obj)
		if !names(cid, cmail) {
			return nil, false
		}
		out := map[string]json.RawMessage{}
		for k, v := range obj {
			out[k] = v
		}
		out["customer"], _ = json.Marshal(map[string]json.RawMessage{"id": customerIDRaw(obj)})
		b, err := json.Marshal(out)
		return b, err == nil
	default:
		return nil, false
	}
	out := map[string]json.RawMessage{}
	for _, k := range keep {
		if v, ok := inner[k]; ok {
			out[k] = v
		}
	}
	var v any = out
	if wrapKey != "" {
		v = map[string]any{wrapKey: out}
	}
	b, err := json.Marshal(v)
	return b, err == nil
}

// customerIDRaw is the customer id of a compliance body as sent (null when there is none).
func customerIDRaw(obj map[string]json.RawMessage) json.RawMessage {
	var c map[string]json.RawMessage
	if json.Unmarshal(obj["customer"], &c) == nil {
		if id, ok := c["id"]; ok {
			return id
		}
	}
	return json.RawMessage("null")
}

// rawText is a JSON string's or number's text, trimmed ("" for null, objects and arrays).
func rawText(r json.RawMessage) string {
	r = bytes.TrimSpace(r)
	if len(r) == 0 {
		return ""
	}
	var s string
	if r[0] == '"' {
		if json.Unmarshal(r, &s) != nil {
			return ""
		}
		return strings.TrimSpace(s)
	}
	var n json.Number
	if json.Unmarshal(r, &n) != nil {
		return ""
	}
	return n.String()
}
