package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

type complianceExportResponse struct {
	ID          string          `json:"id"`
	Platform    string          `json:"platform"`
	Shop        string          `json:"shop"`
	CustomerRef string          `json:"customer_ref"`
	RequestID   string          `json:"data_request_id"`
	CreatedAt   time.Time       `json:"created_at"`
	Document    json.RawMessage `json:"document,omitempty"`
}

func toComplianceExportResponse(e core.ComplianceExport) complianceExportResponse {
	return complianceExportResponse{ID: e.ID.String(), Platform: e.Platform, Shop: e.Shop, CustomerRef: e.CustomerRef,
		RequestID: e.RequestID, CreatedAt: e.CreatedAt, Document: e.Document}
}

// listComplianceExports is GET /api/v1/compliance-exports.
func (h *handlers) listComplianceExports(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	items, next, err := h.ComplianceExports.List(c.Request.Context(), merchantID(c), p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, next, toComplianceExportResponse)
}

// getComplianceExport is GET /api/v1/compliance-exports/{id}: the document to hand to the customer.
func (h *handlers) getComplianceExport(c *gin.Context) {
	id, ok := pathUUID(c, "export_id", core.ErrComplianceExportNotFound)
	if !ok {
		return
	}
	e, err := h.ComplianceExports.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "private, no-store")
	c.JSON(http.StatusOK, toComplianceExportResponse(e))
}
