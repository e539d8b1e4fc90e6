package shopify

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// ComplianceCustomer is the customer a customers/data_request or customers/redact names (its
// ExternalIDs the plain Shopify id and its GraphQL id). It is personal data: never logged.
type ComplianceCustomer = core.ComplianceCustomer

// CustomerDataRequest is a customers/data_request receipt, parsed.
type CustomerDataRequest = core.CustomerDataRequest

// CustomerRedact is a customers/redact receipt, parsed, with the erasure of stored Shopify
// bodies (EraseFromBody: erasedBody).
type CustomerRedact = core.CustomerRedact

// ComplianceStore is what the compliance handlers need from the database. Every method is scoped
// to the merchant of the receipt's shop route and is idempotent.
type ComplianceStore interface {
	// SaveCustomerExport assembles the customer's codes and timelines into a document and stores it
	// for the merchant, once per receipt.
	SaveCustomerExport(ctx context.Context, merchantID uuid.UUID, req CustomerDataRequest) error
	// RedactCustomer erases the customer's personal data, keeping codes, counts and the facts of
	// receipt and redemption.
	RedactCustomer(ctx context.Context, merchantID uuid.UUID, req CustomerRedact) error
	// RedactShop deletes the shop's platform data for the merchant.
	RedactShop(ctx context.Context, merchantID uuid.UUID, platform, shop string) error
}

type complianceBody struct {
	ShopDomain string `json:"shop_domain"`
	Customer   *struct {
		ID    flexString `json:"id"`
		Email flexString `json:"email"`
		Phone flexString `json:"phone"`
	} `json:"customer"`
	OrdersRequested []flexString `json:"orders_requested"`
	OrdersToRedact  []flexString `json:"orders_to_redact"`
	DataRequest     *struct {
		ID flexString `json:"id"`
	} `json:"data_request"`
}

func parseCompliance(body []byte) (complianceBody, ComplianceCustomer, bool) {
	var b complianceBody
	if err := json.Unmarshal(body, &b); err != nil {
		return b, ComplianceCustomer{}, false
	}
	var c ComplianceCustomer
	if b.Customer != nil {
		c = ComplianceCustomer{ID: strings.TrimSpace(string(b.Customer.ID)), Email: strings.TrimSpace(string(b.Customer.Email)),
			Phone: strings.TrimSpace(string(b.Customer.Phone))}
		if c.ID != "" {
			c.ExternalIDs = []string{c.ID, "gid://shopify/Customer/" + c.ID}
		}
	}
	return b, c, true
}

func orderIDs(ids []flexString) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if s := strings.TrimSpace(string(id)); s != "" {
			out = append(out, strings.TrimPrefix(s, "gid://shopify/Order/"))
		}
	}
	return out
}

// compliance handles the three mandatory compliance topics. The customer's identifiers are never
// logged.
func (p *Processor) compliance(ctx context.Context, d WebhookReceipt) (status, note string, err error) {
	if d.Topic == TopicShopRedact {
		if err := p.store.RedactShop(ctx, d.MerchantID, d.Platform, d.Shop); err != nil {
			return "", "", err
		}
		p.log.InfoContext(ctx, "shopify shop redacted", "merchant_id", d.MerchantID, "shop", d.Shop)
		return ReceiptProcessed, "", nil
	}
	b, c, ok := parseCompliance(d.Body)
	if !ok {
		return ReceiptFailed, "invalid compliance payload", nil
	}
	if c.IsZero() {
		return ReceiptFailed, "compliance payload names no customer", nil
	}
	switch d.Topic {
	case TopicCustomersDataRequest:
		req := CustomerDataRequest{ReceiptID: d.ID, Platform: Platform, Shop: d.Shop, Customer: c, OrderIDs: orderIDs(b.OrdersRequested)}
		if b.DataRequest != nil {
			req.RequestID = string(b.DataRequest.ID)
		}
		if err := p.store.SaveCustomerExport(ctx, d.MerchantID, req); err != nil {
			return "", "", err
		}
		p.log.InfoContext(ctx, "shopify customer data exported", "merchant_id", d.MerchantID, "shop", d.Shop, "delivery_id", d.ID)
	case TopicCustomersRedact:
		req := CustomerRedact{Platform: Platform, Shop: d.Shop, Customer: c, OrderIDs: orderIDs(b.OrdersToRedact)}
		req.EraseFromBody = bodyEraser(req)
		if err := p.store.RedactCustomer(ctx, d.MerchantID, req); err != nil {
			return "", "", err
		}
		p.log.InfoContext(ctx, "shopify customer redacted", "merchant_id", d.MerchantID, "shop", d.Shop, "delivery_id", d.ID)
	}
	return ReceiptProcessed, "", nil
}

// IsComplianceTopic reports whether topic is one of the mandatory privacy topics, which are
// answered even for a shop that uninstalled the app.
func IsComplianceTopic(topic string) bool {
	switch topic {
	case TopicCustomersDataRequest, TopicCustomersRedact, TopicShopRedact:
		return true
	}
	return false
}
