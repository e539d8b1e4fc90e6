package shopify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/coupongate/coupongate/core"
)

// Platform is the platform name of Shopify's order events in core.
const Platform = "shopify"

// The webhook topics OrderEventFromWebhook reduces to order events.
const (
	TopicOrdersCreate    = "orders/create"
	TopicOrdersPaid      = "orders/paid"
	TopicOrdersUpdated   = "orders/updated"
	TopicOrdersCancelled = "orders/cancelled"
	TopicRefundsCreate   = "refunds/create"
)

// OrderWebhook is an order webhook reduced to what core needs. It knows nothing of the shop, which
// comes from the verified delivery's X-Shopify-Shop-Domain header (see Events).
type OrderWebhook struct {
	// Topic is the webhook topic, lower-cased (one of the Topic constants).
	Topic string
	// OrderID is Shopify's numeric order id in decimal, the same for every topic of one order and
	// for the order's GraphQL id gid://shopify/Order/<OrderID>.
	OrderID string
	// Name is the order's name as the merchant sees it ("#1001"); empty for refunds/create.
	Name string
	// FinancialStatus is the order's financial_status as sent, lower-cased; empty for refunds/create.
	FinancialStatus string
	// Cancelled is true for orders/cancelled and for any order whose cancelled_at is set.
	Cancelled bool
	// Test is true for a test order (Shopify's bogus gateway, a development store's checkout).
	Test bool
	// Statuses are the core statuses to apply, in this order, one core.OrderEvent each; never
	// empty. See OrderStatuses; refunds/create gives [refunded].
	Statuses []core.OrderStatus
	// Codes are the discount codes the customer entered: the code of each discount application of
	// type discount_code (discount_codes entries naming one of them are the same code). Only these
	// may be redeemed. Trimmed, in order, without duplicates.
	Codes []string
	// ManualDiscountTitles are discount_codes entries that no discount_code application backs:
	// Shopify lists the title of a manual (staff or draft-order) discount there, so the text can
	// equal one of the merchant's codes without anyone having entered it. Record them for the
	// merchant to see; never redeem them.
	ManualDiscountTitles []string
	// Customer identifies the buyer: Email is the order's email (falling back to contact_email,
	// then the customer's email), ExternalID the Shopify customer id in decimal. Either may be
	// empty (guest checkouts, refunds/create).
	Customer core.Recipient
	// RefundID is the refund's id for refunds/create, empty otherwise.
	RefundID string
	// NeedsOrderCodes is true for refunds/create: a Refund body names its order but not the order's
	// discount codes, so Codes is empty and the caller applies Statuses to the codes it recorded
	// for OrderID before (or fetches the order).
	NeedsOrderCodes bool
}

// OrderEventFromWebhook parses the body of an order webhook: orders/create, orders/paid,
// orders/updated and orders/cancelled carry a REST Order, refunds/create a REST Refund. Unknown
// fields are ignored; ids and codes may be JSON strings or numbers; a body wrapped as the REST API
// answers ({"order": {...}} or {"refund": {...}}) is unwrapped. Verify the delivery (VerifyWebhook)
// before calling it.
//
// Any other topic answers an error wrapping ErrUnsupportedTopic; a body that is not JSON, not an
// object, or has no usable order id answers one wrapping ErrInvalidPayload. It never panics.
func OrderEventFromWebhook(topic string, body []byte) (OrderWebhook, error) {
	topic = strings.ToLower(strings.TrimSpace(topic))
	switch topic {
	case TopicOrdersCreate, TopicOrdersPaid, TopicOrdersUpdated, TopicOrdersCancelled:
		return parseOrder(topic, body)
	case TopicRefundsCreate:
		return parseRefund(body)
	}
	return OrderWebhook{}, fmt.Errorf("%w: %q carries no order event (expected %s, %s, %s, %s or %s)", ErrUnsupportedTopic, topic,
		TopicOrdersCreate, TopicOrdersPaid, TopicOrdersUpdated, TopicOrdersCancelled, TopicRefundsCreate)
}

// OrderStatuses maps an order's financial status and cancellation to the core statuses to apply,
// in order:
//   - paid → [paid]; partially_refunded and refunded → [paid, refunded] (money was taken, so the
//     code counts, and the refund is recorded after it);
//   - pending, authorized, partially_paid, voided, expired, an empty or an unknown status → not
//     paid: [pending];
//   - cancelled appends cancelled to a paid sequence ([paid, cancelled], [paid, refunded,
//     cancelled]) so that a paid order cancelled later still counts, and replaces pending
//     ([cancelled]) for an order never paid.
//
// Core counts paid once per order and code and records every other status once, so applying the
// whole sequence on every delivery, in any order of deliveries, is safe. The status is matched
// case-insensitively, so GraphQL's displayFinancialStatus (PAID, PARTIALLY_REFUNDED, …) works too.
func OrderStatuses(financialStatus string, cancelled bool) []core.OrderStatus {
	var out []core.OrderStatus
	switch strings.ToLower(strings.TrimSpace(financialStatus)) {
	case "paid":
		out = []core.OrderStatus{core.OrderPaid}
	case "partially_refunded", "refunded":
		out = []core.OrderStatus{core.OrderPaid, core.OrderRefunded}
	}
	if cancelled {
		return append(out, core.OrderCancelled)
	}
	if len(out) == 0 {
		return []core.OrderStatus{core.OrderPending}
	}
	return out
}

// Events returns the core order events of w for shop, one per status in Statuses and in that
// order, each with the same codes and customer, platform "shopify" and actor "shopify:<topic>".
// shop is lower-cased when it is a valid shop domain. For refunds/create, set w.Codes to the
// order's recorded codes first (see NeedsOrderCodes).
func (w OrderWebhook) Events(shop string) []core.OrderEvent {
	if c, ok := CanonicalShop(shop); ok {
		shop = c
	}
	evs := make([]core.OrderEvent, 0, len(w.Statuses))
	for _, s := range w.Statuses {
		evs = append(evs, core.OrderEvent{
			Platform: Platform, Shop: shop, OrderID: w.OrderID, Status: s,
			Codes: slices.Clone(w.Codes), Customer: w.Customer, Actor: Platform + ":" + w.Topic,
		})
	}
	return evs
}

// ManualDiscountEvent returns the core manual discount event of w for shop (shop canonicalised
// as in Events, actor "shopify:<topic>"); ok is false when w has no manual discount titles. The
// titles and the customer are scrubbed of text PostgreSQL cannot store (core.ScrubText), as
// core.Redeemer.ApplyOrder does for the order's events.
func (w OrderWebhook) ManualDiscountEvent(shop string) (ev core.ManualDiscountEvent, ok bool) {
	if len(w.ManualDiscountTitles) == 0 {
		return core.ManualDiscountEvent{}, false
	}
	if c, ok := CanonicalShop(shop); ok {
		shop = c
	}
	titles := make([]string, len(w.ManualDiscountTitles))
	for i, t := range w.ManualDiscountTitles {
		titles[i] = core.ScrubText(t)
	}
	customer := core.Recipient{ExternalID: core.ScrubText(w.Customer.ExternalID), Email: core.ScrubText(w.Customer.Email),
		Phone: core.ScrubText(w.Customer.Phone)}
	return core.ManualDiscountEvent{Platform: Platform, Shop: shop, OrderID: w.OrderID,
		Titles: titles, Customer: customer, Actor: Platform + ":" + w.Topic}, true
}

// restOrder is the part of the REST Order resource this package reads.
type restOrder struct {
	ID                   flexString            `json:"id"`
	GID                  flexString            `json:"admin_graphql_api_id"`
	Name                 flexString            `json:"name"`
	Email                flexString            `json:"email"`
	ContactEmail         flexString            `json:"contact_email"`
	FinancialStatus      flexString            `json:"financial_status"`
	CancelledAt          present               `json:"cancelled_at"`
	Test                 flexBool              `json:"test"`
	Customer             *restCustomer         `json:"customer"`
	DiscountCodes        []discountCode        `json:"discount_codes"`
	DiscountApplications []discountApplication `json:"discount_applications"`

	// Wrapped is the order of a REST API answer, {"order": {...}}.
	Wrapped json.RawMessage `json:"order"`
}

type restCustomer struct {
	ID    flexString `json:"id"`
	GID   flexString `json:"admin_graphql_api_id"`
	Email flexString `json:"email"`
}

// discountCode is a discount_codes entry: {"code", "amount", "type"}, or a bare string or number.
type discountCode struct {
	Code flexString
}

func (d *discountCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var v struct {
			Code flexString `json:"code"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		d.Code = v.Code
		return nil
	}
	return d.Code.UnmarshalJSON(b)
}

// discountApplication is a discount_applications entry.
type discountApplication struct {
	Type  flexString `json:"type"`
	Code  flexString `json:"code"`
	Title flexString `json:"title"`
}

// restRefund is the part of the REST Refund resource this package reads.
type restRefund struct {
	ID      flexString      `json:"id"`
	OrderID flexString      `json:"order_id"`
	Wrapped json.RawMessage `json:"refund"`
}

func parseOrder(topic string, body []byte) (OrderWebhook, error) {
	var o restOrder
	if err := decodeObject(body, &o, "order"); err != nil {
		return OrderWebhook{}, err
	}
	if o.ID == "" && o.GID == "" && isObject(o.Wrapped) {
		inner := o.Wrapped
		o = restOrder{}
		if err := decodeObject(inner, &o, "order"); err != nil {
			return OrderWebhook{}, err
		}
	}
	id, err := shopifyID(string(o.ID), string(o.GID), "Order")
	if err != nil {
		return OrderWebhook{}, fmt.Errorf("%w: the order's id: %v", ErrInvalidPayload, err)
	}
	w := OrderWebhook{
		Topic:           topic,
		OrderID:         id,
		Name:            strings.TrimSpace(string(o.Name)),
		FinancialStatus: strings.ToLower(strings.TrimSpace(string(o.FinancialStatus))),
		Cancelled:       topic == TopicOrdersCancelled || bool(o.CancelledAt),
		Test:            bool(o.Test),
	}
	w.Statuses = OrderStatuses(w.FinancialStatus, w.Cancelled)
	w.Codes, w.ManualDiscountTitles = orderCodes(o.DiscountApplications, o.DiscountCodes)

	w.Customer.Email = firstNonEmpty(string(o.Email), string(o.ContactEmail))
	if o.Customer != nil {
		if w.Customer.Email == "" {
			w.Customer.Email = strings.TrimSpace(string(o.Customer.Email))
		}
		if cid, err := shopifyID(string(o.Customer.ID), string(o.Customer.GID), "Customer"); err == nil {
			w.Customer.ExternalID = cid
		}
	}
	return w, nil
}

func parseRefund(body []byte) (OrderWebhook, error) {
	var r restRefund
	if err := decodeObject(body, &r, "refund"); err != nil {
		return OrderWebhook{}, err
	}
	if r.OrderID == "" && isObject(r.Wrapped) {
		inner := r.Wrapped
		r = restRefund{}
		if err := decodeObject(inner, &r, "refund"); err != nil {
			return OrderWebhook{}, err
		}
	}
	id, err := shopifyID(string(r.OrderID), "", "Order")
	if err != nil {
		return OrderWebhook{}, fmt.Errorf("%w: the refund's order_id: %v", ErrInvalidPayload, err)
	}
	return OrderWebhook{
		Topic:           TopicRefundsCreate,
		OrderID:         id,
		Statuses:        []core.OrderStatus{core.OrderRefunded},
		RefundID:        strings.TrimSpace(string(r.ID)),
		NeedsOrderCodes: true,
	}, nil
}

// orderCodes picks the codes to redeem and the manual discount titles to record.
func orderCodes(apps []discountApplication, entries []discountCode) (codes, manual []string) {
	for _, a := range apps {
		if !strings.EqualFold(strings.TrimSpace(string(a.Type)), "discount_code") {
			continue
		}
		if c := strings.TrimSpace(string(a.Code)); c != "" && !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	for _, e := range entries {
		c := strings.TrimSpace(string(e.Code))
		if c == "" || slices.ContainsFunc(codes, func(code string) bool { return strings.EqualFold(code, c) }) {
			continue // empty, or the code of a discount_code application
		}
		if !slices.Contains(manual, c) {
			manual = append(manual, c)
		}
	}
	return codes, manual
}

// decodeObject decodes a JSON object into v; what is the resource's name for the error.
func decodeObject(body []byte, v any, what string) error {
	if !isObject(body) {
		return fmt.Errorf("%w: the body is not a JSON object (a REST %s)", ErrInvalidPayload, what)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: the body is not a readable REST %s: %v", ErrInvalidPayload, what, err)
	}
	return nil
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// shopifyID returns a Shopify resource id as a canonical decimal: id itself, or the number at the
// end of gid://shopify/<kind>/<n> given as id or as gid (the admin_graphql_api_id).
func shopifyID(id, gid, kind string) (string, error) {
	prefix := "gid://shopify/" + kind + "/"
	id = strings.TrimSpace(id)
	if id == "" {
		id = strings.TrimSpace(gid)
		if id == "" {
			return "", fmt.Errorf("it is missing")
		}
	}
	digits := strings.TrimPrefix(id, prefix)
	if digits == "" || len(digits) > 20 || strings.Trim(digits, "0123456789") != "" {
		return "", fmt.Errorf("%.40q is not a Shopify %s id (a positive whole number)", id, kind)
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || n == 0 {
		return "", fmt.Errorf("%.40q is not a Shopify %s id (a positive whole number)", id, kind)
	}
	return strconv.FormatUint(n, 10), nil
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
