package core

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// ComplianceExport is the document a platform's customer data request produced (Shopify's
// customers/data_request): the customer's codes, deliveries and timelines, kept for the merchant
// to hand to the customer. Redacting the customer or the shop deletes it.
type ComplianceExport struct {
	ID          uuid.UUID
	Platform    string
	Shop        string
	CustomerRef string
	RequestID   string
	Document    json.RawMessage
	CreatedAt   time.Time
}

// ErrComplianceExportNotFound answers an unknown export.
var ErrComplianceExportNotFound = newError(KindNotFound, "compliance_export_not_found", "no such compliance export")

// ComplianceStore reads compliance exports.
type ComplianceStore interface {
	// ListComplianceExports pages through the merchant's exports, newest first, without documents.
	ListComplianceExports(ctx context.Context, merchantID uuid.UUID, page Page) ([]ComplianceExport, string, error)
	// GetComplianceExport returns one export with its document, or ErrComplianceExportNotFound.
	GetComplianceExport(ctx context.Context, merchantID, id uuid.UUID) (ComplianceExport, error)
}

// ComplianceExports serves the merchant's compliance exports.
type ComplianceExports struct{ store ComplianceStore }

// NewComplianceExports returns the service.
func NewComplianceExports(store ComplianceStore) *ComplianceExports {
	return &ComplianceExports{store: store}
}

// List pages through the merchant's exports, newest first.
func (s *ComplianceExports) List(ctx context.Context, merchantID uuid.UUID, page Page) ([]ComplianceExport, string, error) {
	return s.store.ListComplianceExports(ctx, merchantID, page.Normalize())
}

// Get returns one export with its document.
func (s *ComplianceExports) Get(ctx context.Context, merchantID, id uuid.UUID) (ComplianceExport, error) {
	return s.store.GetComplianceExport(ctx, merchantID, id)
}

// ComplianceCustomer is the customer a platform's data request or erasure request names
// (Shopify's customers/data_request and customers/redact). It is personal data: never logged.
type ComplianceCustomer struct {
	// ID is the platform's customer id as the request gives it ("" when absent).
	ID string
	// ExternalIDs are the forms under which the platform's customer id may have been recorded as
	// a recipient's external id (for Shopify: the plain id and its GraphQL id); the platform's
	// package fills them in.
	ExternalIDs []string
	Email       string
	Phone       string
}

// IsZero reports whether the customer carries no identifier.
func (c ComplianceCustomer) IsZero() bool { return c.ID == "" && c.Email == "" && c.Phone == "" }

// RecipientKeys are the RecipientKey forms under which the customer's allocations may have been
// recorded: each external id, the email and the phone.
func (c ComplianceCustomer) RecipientKeys() []string {
	var keys []string
	add := func(r Recipient) {
		if k := RecipientKey(r); k != "" {
			keys = append(keys, k)
		}
	}
	for _, id := range c.ExternalIDs {
		add(Recipient{ExternalID: id})
	}
	add(Recipient{Email: c.Email})
	add(Recipient{Phone: c.Phone})
	return keys
}

// CustomerDataRequest is a platform's request for what is kept of one customer, parsed.
type CustomerDataRequest struct {
	// ReceiptID is the webhook receipt the request came in (stored in compliance_exports.delivery_id).
	ReceiptID uuid.UUID
	Platform  string
	Shop      string
	RequestID string
	Customer  ComplianceCustomer
	OrderIDs  []string
}

// CustomerRedact is a platform's request to erase one customer, parsed.
type CustomerRedact struct {
	Platform string
	Shop     string
	Customer ComplianceCustomer
	OrderIDs []string
	// EraseFromBody erases the customer from a stored webhook body of the shop (topic lower-cased):
	// the body without the customer, and whether it named the customer at all. The platform's
	// package knows its bodies; nil leaves stored bodies as they are.
	EraseFromBody func(topic string, body []byte) ([]byte, bool)
}

// ShopRoute is the merchant and connection a platform's shop belongs to.
type ShopRoute struct {
	MerchantID   uuid.UUID
	ConnectionID uuid.UUID
}
