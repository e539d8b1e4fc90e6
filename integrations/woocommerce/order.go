package woocommerce

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coupongate/coupongate/core"
)

// Platform is the platform name of WooCommerce's order events in core.
const Platform = "woocommerce"

// DefaultPaidStatuses are the order statuses that count a code's use when a connection configures
// none: processing ("payment received"), completed, and on-hold (awaiting payment confirmation,
// typically a bank transfer or cheque; WooCommerce's own wc_get_is_paid_statuses leaves it out, so
// a connection may drop it). Statuses never counts pending, failed, cancelled, refunded, trash or a
// draft status as paid, whatever the configuration.
var DefaultPaidStatuses = []string{"processing", "completed", "on-hold"}

// Errors of ParseOrder. Every error it returns wraps exactly one of them.
var (
	// ErrInvalidPayload means the body is not a REST order: not JSON, not an object, or without a
	// usable id. The caller acknowledges the delivery and acts on nothing.
	ErrInvalidPayload = errors.New("woocommerce: invalid order body")

	// ErrNotAnOrder means the body names an order but does not represent it: the {"id": N} that
	// order.deleted (the order was trashed) delivers. It carries no order event.
	ErrNotAnOrder = errors.New("woocommerce: the body carries no order")
)

// Order is a WooCommerce REST order (v3, as webhooks deliver it and as GET /wc/v3/orders lists it)
// reduced to what core needs.
type Order struct {
	// ID is the order's id (its post or HPOS id) in canonical decimal; never empty in a parsed order.
	ID string
	// Number is the order number the merchant sees: the REST "number", which sequential-numbering
	// plugins change; the ID when the body has none.
	Number string
	// Status is the order's status slug, trimmed and lower-cased without a "wc-" prefix:
	// pending, processing, on-hold, completed, cancelled, refunded, failed, checkout-draft, or one a
	// plugin adds. Empty when the body's status is empty.
	Status string
	// Codes are the coupon codes applied to the order (coupon_lines[].code, or the code in the
	// line's coupon_data or coupon_info meta when the line has none), trimmed, in order, empty ones
	// skipped, without duplicates regardless of case, otherwise as sent. WooCommerce lower-cases
	// coupon codes when it stores them, so they arrive lower-case; core looks a code up per list,
	// in any case for a case-insensitive list and exactly for a case-sensitive one.
	Codes []string
	// Customer identifies the buyer: Email is billing.email, trimmed and lower-cased; ExternalID the
	// WordPress user id (customer_id) in decimal, empty for a guest (customer_id 0). Either may be
	// empty.
	Customer core.Recipient
	// ModifiedAt is date_modified_gmt (UTC), nil when absent or unreadable: what a reconciliation
	// by modified_after pages on.
	ModifiedAt *time.Time
	// PaidAt is date_paid_gmt (UTC): set once, when the order was paid; nil when never paid.
	PaidAt *time.Time
	// CreatedVia is how the order was made ("checkout", "store-api", "admin", "rest-api", …), as sent.
	CreatedVia string
}

// ParseOrder parses a REST order: the body of an order.created, order.updated or order.restored
// delivery, or one element of a GET /wc/v3/orders list. A body wrapped as {"data": {...}} (the
// WordPress.com proxy) is unwrapped. It is tolerant: unknown fields are ignored; ids, customer_id
// and amounts may be JSON numbers or strings; billing and email may be null; coupon lines' meta
// data (the full coupon_data snapshot of older orders and the compact coupon_info array of newer
// ones) is read only for a missing code and never fails the parse. Verify the delivery
// (VerifyWebhook) before calling it.
//
// The error wraps ErrInvalidPayload when the body is not JSON, not an object, or has no positive
// whole-number id, and ErrNotAnOrder when it has an id but no status (order.deleted's {"id": N});
// the returned Order then holds that ID and nothing else. It never panics.
func ParseOrder(body []byte) (Order, error) {
	if !isObject(body) {
		return Order{}, fmt.Errorf("%w: the body is not a JSON object (a REST order)", ErrInvalidPayload)
	}
	var o restOrder
	if err := json.Unmarshal(body, &o); err != nil {
		return Order{}, fmt.Errorf("%w: the body is not a readable REST order: %v", ErrInvalidPayload, err)
	}
	if o.ID == "" && isObject(o.Data) {
		inner := o.Data
		o = restOrder{}
		if err := json.Unmarshal(inner, &o); err != nil {
			return Order{}, fmt.Errorf("%w: the data envelope holds no readable REST order: %v", ErrInvalidPayload, err)
		}
	}
	id, ok := positiveID(string(o.ID))
	if !ok {
		if o.ID == "" {
			return Order{}, fmt.Errorf("%w: the order has no id", ErrInvalidPayload)
		}
		return Order{}, fmt.Errorf("%w: the order's id %.40q is not a positive whole number", ErrInvalidPayload, string(o.ID))
	}
	if o.Status == nil {
		return Order{ID: id}, fmt.Errorf("%w: order %s comes without a status (an order.deleted body)", ErrNotAnOrder, id)
	}
	out := Order{
		ID:         id,
		Number:     strings.TrimSpace(string(o.Number)),
		Status:     normalizeStatus(string(*o.Status)),
		Codes:      orderCodes(o.CouponLines),
		CreatedVia: strings.TrimSpace(string(o.CreatedVia)),
		ModifiedAt: parseGMT(string(o.DateModifiedGMT)),
		PaidAt:     parseGMT(string(o.DatePaidGMT)),
	}
	if out.Number == "" {
		out.Number = id
	}
	out.Customer.Email = strings.ToLower(strings.TrimSpace(o.Billing.Email))
	if cid, ok := positiveID(string(o.CustomerID)); ok {
		out.Customer.ExternalID = cid
	}
	return out, nil
}

// Statuses maps the order's status to the core statuses to apply, in order; it always returns
// exactly one. paid is the connection's paid statuses, matched trimmed, lower-cased and without a
// "wc-" prefix; a never-paid status in it is ignored, and DefaultPaidStatuses apply when it names
// no other:
//   - a paid status → [paid];
//   - cancelled and failed → [cancelled]; trash → [cancelled] too, since WooCommerce itself
//     releases a coupon's use when an order is trashed;
//   - refunded → [paid, refunded] when the order was paid (date_paid_gmt is set), else
//     [refunded];
//   - pending, checkout-draft, auto-draft, draft, an empty and any other status → [pending].
//
// Core counts a use only on paid, once per order and code, and keeps it counted whatever comes
// after: a cancellation or refund of an order seen paid is recorded on the code's timeline and the
// use stays. A cancelled, failed or unpaid refunded order is recorded and counts nothing. A refunded
// order that was paid counts its use even when no delivery of the paid state came (WooCommerce
// sends the order as it is when it sends, and folds quick transitions into one delivery).
func (o Order) Statuses(paid []string) []core.OrderStatus {
	s := normalizeStatus(o.Status)
	switch s {
	case "cancelled", "failed", "trash":
		return []core.OrderStatus{core.OrderCancelled}
	case "refunded":
		if o.PaidAt != nil {
			return []core.OrderStatus{core.OrderPaid, core.OrderRefunded}
		}
		return []core.OrderStatus{core.OrderRefunded}
	}
	if slices.Contains(paidSet(paid), s) {
		return []core.OrderStatus{core.OrderPaid}
	}
	return []core.OrderStatus{core.OrderPending}
}

// Events returns the core order events of o for the store at siteURL (the connection's site URL,
// used as core's shop, trimmed), one per status of Statuses(paid) and in that order, each with
// platform "woocommerce", the order's codes and customer, and actor "woocommerce:<topic>" (topic
// trimmed and lower-cased, e.g. "woocommerce:order.updated"; "woocommerce" when topic is empty).
func (o Order) Events(siteURL string, paid []string, topic string) []core.OrderEvent {
	actor := Platform
	if t := strings.ToLower(strings.TrimSpace(topic)); t != "" {
		actor += ":" + t
	}
	statuses := o.Statuses(paid)
	evs := make([]core.OrderEvent, 0, len(statuses))
	for _, s := range statuses {
		evs = append(evs, core.OrderEvent{
			Platform: Platform, Shop: strings.TrimSpace(siteURL), OrderID: o.ID, Status: s,
			Codes: slices.Clone(o.Codes), Customer: o.Customer, Actor: actor,
		})
	}
	return evs
}

// neverPaid are the statuses no configuration makes paid: an unpaid, failed, cancelled, refunded,
// trashed or draft order.
var neverPaid = map[string]bool{
	"pending": true, "failed": true, "cancelled": true, "refunded": true, "trash": true,
	"checkout-draft": true, "auto-draft": true, "draft": true, "new": true,
}

// paidSet returns the usable statuses of paid, or DefaultPaidStatuses when none is.
func paidSet(paid []string) []string {
	var out []string
	for _, raw := range paid {
		if s := normalizeStatus(raw); s != "" && !neverPaid[s] {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return DefaultPaidStatuses
	}
	return out
}

func normalizeStatus(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.TrimPrefix(s, "wc-")
}

// restOrder is the part of the REST order this package reads. Every field reads any JSON value
// without failing, so only malformed JSON fails the decode.
type restOrder struct {
	ID              flexString  `json:"id"`
	Number          flexString  `json:"number"`
	Status          *flexString `json:"status"` // nil when absent or null
	CustomerID      flexString  `json:"customer_id"`
	Billing         billing     `json:"billing"`
	CouponLines     couponLines `json:"coupon_lines"`
	DateModifiedGMT flexString  `json:"date_modified_gmt"`
	DatePaidGMT     flexString  `json:"date_paid_gmt"`
	CreatedVia      flexString  `json:"created_via"`

	// Data is the order of a {"data": {...}} envelope.
	Data json.RawMessage `json:"data"`
}

// billing reads the billing address object; null, an empty PHP array ([]) or any other value
// reads as no address.
type billing struct {
	Email string
}

func (b *billing) UnmarshalJSON(data []byte) error {
	*b = billing{}
	if !isObject(data) {
		return nil
	}
	var v struct {
		Email flexString `json:"email"`
	}
	if json.Unmarshal(data, &v) == nil {
		b.Email = string(v.Email)
	}
	return nil
}

// couponLines reads coupon_lines: an array of lines, or an object of lines (what PHP's json_encode
// makes of an array with gaps in its keys); anything else, and any element that is not an object,
// reads as no line.
type couponLines []couponLine

func (c *couponLines) UnmarshalJSON(data []byte) error {
	*c = nil
	var elems []json.RawMessage
	switch data = bytes.TrimSpace(data); {
	case len(data) > 0 && data[0] == '[':
		if json.Unmarshal(data, &elems) != nil {
			return nil
		}
	case isObject(data):
		var m map[string]json.RawMessage
		if json.Unmarshal(data, &m) != nil {
			return nil
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, comparePHPKeys)
		for _, k := range keys {
			elems = append(elems, m[k])
		}
	}
	for _, e := range elems {
		if !isObject(e) {
			continue
		}
		var l couponLine
		if json.Unmarshal(e, &l) == nil {
			*c = append(*c, l)
		}
	}
	return nil
}

// comparePHPKeys orders an array's keys as PHP listed them: numerically, then the rest by text.
func comparePHPKeys(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil && na != nb:
		if na < nb {
			return -1
		}
		return 1
	case errA == nil && errB != nil:
		return -1
	case errA != nil && errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}

// couponLine is a coupon_lines entry. Its id is the order item's id, not the coupon's.
type couponLine struct {
	Code     flexString `json:"code"`
	MetaData metaData   `json:"meta_data"`
}

// metaData reads a line's meta_data for the coupon code it records: the code of a coupon_data
// snapshot ({"id", "code", …}, older orders) or of a coupon_info array ([id, code, type, amount,
// free_shipping?], sent as the JSON text WooCommerce stores, or already decoded). It never fails.
type metaData struct {
	Code string
}

func (m *metaData) UnmarshalJSON(data []byte) error {
	*m = metaData{}
	var entries []json.RawMessage
	if json.Unmarshal(data, &entries) != nil {
		return nil
	}
	for _, e := range entries {
		var entry struct {
			Key   flexString      `json:"key"`
			Value json.RawMessage `json:"value"`
		}
		if !isObject(e) || json.Unmarshal(e, &entry) != nil {
			continue
		}
		var code string
		switch entry.Key {
		case "coupon_data":
			code = couponDataCode(entry.Value)
		case "coupon_info":
			code = couponInfoCode(entry.Value)
		}
		if code = strings.TrimSpace(code); code != "" && m.Code == "" {
			m.Code = code
		}
	}
	return nil
}

func couponDataCode(v json.RawMessage) string {
	var d struct {
		Code flexString `json:"code"`
	}
	if !isObject(v) || json.Unmarshal(v, &d) != nil {
		return ""
	}
	return string(d.Code)
}

func couponInfoCode(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' { // the JSON text of the array, as get_short_info stores it
		var s string
		if json.Unmarshal(v, &s) != nil {
			return ""
		}
		v = bytes.TrimSpace([]byte(s))
	}
	var info []json.RawMessage
	if len(v) == 0 || v[0] != '[' || json.Unmarshal(v, &info) != nil || len(info) < 2 {
		return ""
	}
	var code flexString
	if json.Unmarshal(info[1], &code) != nil {
		return ""
	}
	return string(code)
}

// orderCodes picks the order's codes: trimmed, empty ones skipped, without case-insensitive
// duplicates (the first spelling kept).
func orderCodes(lines []couponLine) []string {
	var codes []string
	for _, l := range lines {
		c := strings.TrimSpace(string(l.Code))
		if c == "" {
			c = l.MetaData.Code
		}
		if c == "" || slices.ContainsFunc(codes, func(have string) bool { return strings.EqualFold(have, c) }) {
			continue
		}
		codes = append(codes, c)
	}
	return codes
}

// parseGMT reads a REST *_gmt date: "2006-01-02T15:04:05" in UTC (an offset, if any, is honoured).
func parseGMT(s string) *time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", time.RFC3339Nano, "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}

// positiveID returns s as a canonical positive decimal, or false when it is not one (0 is a
// guest's customer_id, never an id).
func positiveID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 20 || strings.Trim(s, "0123456789") != "" {
		return "", false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return "", false
	}
	return strconv.FormatUint(n, 10), true
}

func isObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

// flexString reads a JSON string, or a number as its literal text (WooCommerce ids and amounts
// arrive as either, depending on the version, the plugins and the tool that made the body); null
// and any other value (true, an object, an array) read as "". It never fails.
type flexString string

func (s *flexString) UnmarshalJSON(b []byte) error {
	*s = ""
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
	case b[0] == '"':
		var v string
		if json.Unmarshal(b, &v) == nil {
			*s = flexString(v)
		}
	case b[0] == '-' || '0' <= b[0] && b[0] <= '9':
		*s = flexString(b) // the decoder has already checked it is a number literal
	}
	return nil
}
