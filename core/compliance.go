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
