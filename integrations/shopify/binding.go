package shopify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/coupongate/coupongate/core"
)

// ErrWebhookMismatch answers a signed webhook whose X-Shopify-Topic or X-Shopify-Shop-Domain the
// body contradicts (see CheckWebhook). Shopify signs the body alone, so the headers of a captured
// webhook can be changed without breaking the signature; Shopify itself never sends such a
// webhook, so it is refused as unauthenticated (401) and nothing is stored or done.
var ErrWebhookMismatch = &core.Error{Kind: core.KindUnauthorized, Code: "webhook_mismatch",
	Message: "the X-Shopify-Topic or X-Shopify-Shop-Domain header does not match the signed body"}

// webhookBody holds the fields of a webhook body that tie it to a topic and a shop.
type webhookBody struct {
	ID              flexString      `json:"id"`
	GID             flexString      `json:"admin_graphql_api_id"`
	OrderID         json.RawMessage `json:"order_id"`
	OrderStatusURL  flexString      `json:"order_status_url"`
	CancelledAt     present         `json:"cancelled_at"`
	MyshopifyDomain json.RawMessage `json:"myshopify_domain"`
	ShopDomain      json.RawMessage `json:"shop_domain"`
	Customer        json.RawMessage `json:"customer"`
	DataRequest     json.RawMessage `json:"data_request"`
	OrdersRequested json.RawMessage `json:"orders_requested"`
	OrdersToRedact  json.RawMessage `json:"orders_to_redact"`
	Order           json.RawMessage `json:"order"`
	Refund          json.RawMessage `json:"refund"`
}

// CheckWebhook reports whether a verified webhook's body fits its topic and names its shop (the
// canonical X-Shopify-Shop-Domain), the two headers the signature does not cover. The error wraps
// ErrInvalidPayload and says what does not fit; topics Coupongate does not act on are not checked.
//
//   - An order topic (orders/create, orders/paid, orders/updated, orders/cancelled) needs an Order:
//     an id, an admin_graphql_api_id (when present) naming an Order, no order_id (a Refund's), no
//     myshopify_domain (a Shop's) and no shop_domain (a compliance request's). orders/cancelled
//     needs cancelled_at set. An order_status_url on a myshopify.com host must be on the shop's.
//     An order on a custom domain names no shop Coupongate can compare: only the shape is checked.
//   - refunds/create needs a Refund: an order_id, an admin_graphql_api_id (when present) naming a
//     Refund, and neither shop field.
//   - app/uninstalled needs a Shop whose myshopify_domain is the shop.
//   - customers/data_request, customers/redact and shop/redact need shop_domain to be the shop.
//     customers/redact needs a customer and carries no data_request or orders_requested;
//     customers/data_request needs a customer and carries no orders_to_redact; shop/redact carries
//     no customer and neither request's order list.
//
// A body wrapped as the REST API answers ({"order": {...}}, {"refund": {...}}) is checked inside,
// as OrderEventFromWebhook reads it.
func CheckWebhook(topic, shop string, body []byte) error {
	switch topic {
	case TopicOrdersCreate, TopicOrdersPaid, TopicOrdersUpdated, TopicOrdersCancelled, TopicRefundsCreate,
		TopicAppUninstalled, TopicCustomersDataRequest, TopicCustomersRedact, TopicShopRedact:
	default:
		return nil
	}
	var b webhookBody
	if !isObject(body) || json.Unmarshal(body, &b) != nil {
		return mismatch("the body is not a JSON object")
	}
	switch topic {
	case TopicOrdersCreate, TopicOrdersPaid, TopicOrdersUpdated, TopicOrdersCancelled:
		if b.ID == "" && b.GID == "" && isObject(b.Order) {
			inner := b.Order
			if b = (webhookBody{}); json.Unmarshal(inner, &b) != nil {
				return mismatch("the wrapped order is not readable")
			}
		}
		if err := notShopOrRequest(b); err != nil {
			return err
		}
		switch {
		case set(b.OrderID):
			return mismatch("the body is a Refund (it has an order_id), not an Order")
		case b.ID == "" && b.GID == "":
			return mismatch("the body is not an Order: it has no id")
		case b.GID != "" && !strings.HasPrefix(string(b.GID), "gid://shopify/Order/"):
			return mismatch(fmt.Sprintf("the body is not an Order: its admin_graphql_api_id is %.60q", string(b.GID)))
		case topic == TopicOrdersCancelled && !bool(b.CancelledAt):
			return mismatch("an orders/cancelled body is an order with cancelled_at set")
		}
		if host, ok := myshopifyHost(string(b.OrderStatusURL)); ok && host != shop {
			return mismatch(fmt.Sprintf("the order's order_status_url is on %s, not on the shop", host))
		}
	case TopicRefundsCreate:
		if !set(b.OrderID) && isObject(b.Refund) {
			inner := b.Refund
			if b = (webhookBody{}); json.Unmarshal(inner, &b) != nil {
				return mismatch("the wrapped refund is not readable")
			}
		}
		if err := notShopOrRequest(b); err != nil {
			return err
		}
		switch {
		case !set(b.OrderID):
			return mismatch("the body is not a Refund: it has no order_id")
		case b.GID != "" && !strings.HasPrefix(string(b.GID), "gid://shopify/Refund/"):
			return mismatch(fmt.Sprintf("the body is not a Refund: its admin_graphql_api_id is %.60q", string(b.GID)))
		}
	case TopicAppUninstalled:
		if err := sameShop("myshopify_domain", b.MyshopifyDomain, shop); err != nil {
			return err
		}
	default: // the compliance topics
		if err := sameShop("shop_domain", b.ShopDomain, shop); err != nil {
			return err
		}
		switch topic {
		case TopicCustomersRedact:
			if !isObject(b.Customer) {
				return mismatch("a customers/redact body names a customer")
			}
			if set(b.DataRequest) || set(b.OrdersRequested) {
				return mismatch("the body is a customers/data_request, not a customers/redact")
			}
		case TopicCustomersDataRequest:
			if !isObject(b.Customer) {
				return mismatch("a customers/data_request body names a customer")
			}
			if set(b.OrdersToRedact) {
				return mismatch("the body is a customers/redact, not a customers/data_request")
			}
		case TopicShopRedact:
			if set(b.Customer) || set(b.DataRequest) || set(b.OrdersRequested) || set(b.OrdersToRedact) {
				return mismatch("the body is a customer's request, not a shop/redact")
			}
		}
	}
	return nil
}

func mismatch(reason string) error { return fmt.Errorf("%w: %s", ErrInvalidPayload, reason) }

// notShopOrRequest refuses a Shop or compliance body sent under an order topic.
func notShopOrRequest(b webhookBody) error {
	switch {
	case set(b.MyshopifyDomain):
		return mismatch("the body is a Shop (it has a myshopify_domain)")
	case set(b.ShopDomain):
		return mismatch("the body is a compliance request (it has a shop_domain)")
	}
	return nil
}

// sameShop checks that field, a JSON string, is the shop.
func sameShop(field string, raw json.RawMessage, shop string) error {
	var s string
	if !set(raw) || json.Unmarshal(raw, &s) != nil || strings.TrimSpace(s) == "" {
		return mismatch("the body has no " + field)
	}
	if c, ok := CanonicalShop(strings.TrimSpace(s)); !ok || c != shop {
		return mismatch(fmt.Sprintf("the body's %s is %.80q, not the shop", field, s))
	}
	return nil
}

// myshopifyHost returns the host of u, lower-cased, when it is a shop domain.
func myshopifyHost(u string) (string, bool) {
	if u = strings.TrimSpace(u); u == "" {
		return "", false
	}
	p, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	return CanonicalShop(p.Hostname())
}

// set reports whether a field was sent with a value other than null.
func set(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}
