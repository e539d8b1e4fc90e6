package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

type connectionResponse struct {
	ID        string     `json:"id"`
	Platform  string     `json:"platform"`
	Shop      string     `json:"shop"`
	State     string     `json:"state"`
	Scopes    []string   `json:"scopes"`
	SyncedAt  *time.Time `json:"synced_at"`
	Error     string     `json:"error"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

func toConnectionResponse(c core.Connection) connectionResponse {
	scopes := []string{}
	for _, s := range strings.Split(c.Scopes, ",") {
		if s = strings.TrimSpace(s); s != "" {
			scopes = append(scopes, s)
		}
	}
	return connectionResponse{ID: c.ID.String(), Platform: c.Platform, Shop: c.Shop, State: c.State, Scopes: scopes,
		SyncedAt: c.SyncedAt, Error: c.Error, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// listConnections is GET /api/v1/connections.
func (h *handlers) listConnections(c *gin.Context) {
	p, ok := page(c)
	if !ok {
		return
	}
	items, next, err := h.Connections.List(c.Request.Context(), merchantID(c), p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, next, toConnectionResponse)
}

// disconnect is DELETE /api/v1/connections/{id}.
func (h *handlers) disconnect(c *gin.Context) {
	id, ok := pathUUID(c, "connection_id", core.ErrConnectionNotFound)
	if !ok {
		return
	}
	conn, err := h.Connections.Disconnect(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toConnectionResponse(conn))
}

// reconcile is POST /api/v1/connections/{id}/reconcile.
func (h *handlers) reconcile(c *gin.Context) {
	id, ok := pathUUID(c, "connection_id", core.ErrConnectionNotFound)
	if !ok {
		return
	}
	conn, err := h.Connections.Reconcile(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, gin.H{"status": "queued", "connection": toConnectionResponse(conn)})
}

type pushRequest struct {
	ConnectionID *string `json:"connection_id" validate:"required"`
	Discount     *struct {
		Title                  *string  `json:"title" validate:"required"`
		ValueType              *string  `json:"value_type" validate:"required,oneof=percentage fixed_amount"`
		Value                  *float64 `json:"value" validate:"required"`
		AppliesOncePerCustomer bool     `json:"applies_once_per_customer"`
	} `json:"discount" validate:"required"`
}

type pushResponse struct {
	ConnectionID string        `json:"connection_id"`
	ListID       string        `json:"list_id"`
	Platform     string        `json:"platform"`
	Shop         string        `json:"shop"`
	State        string        `json:"state"`
	Discount     core.Discount `json:"discount"`
	DiscountID   string        `json:"discount_id"`
	Pushed       int64         `json:"pushed"`
	Failed       int64         `json:"failed"`
	Pending      int64         `json:"pending"`
	Deleted      int64         `json:"deleted"`
	Error        string        `json:"error"`
	CreatedAt    time.Time     `json:"created_at"`
	UpdatedAt    time.Time     `json:"updated_at"`
}

func toPushResponse(p core.Push) pushResponse {
	return pushResponse{ConnectionID: p.ConnectionID.String(), ListID: p.ListID.String(), Platform: p.Platform, Shop: p.Shop,
		State: p.State, Discount: p.Discount, DiscountID: p.RemoteID, Pushed: p.Pushed, Failed: p.Failed,
		Pending: p.Pending, Deleted: p.Deleted, Error: p.Error, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

// pushList is POST /api/v1/lists/{id}/connections: 202 for a new push, 200 for a list already
// pushed to that connection (resumed, or retried after an error).
func (h *handlers) pushList(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req pushRequest
	if !h.bindJSON(c, &req) {
		return
	}
	connID, err := uuid.Parse(*req.ConnectionID)
	if err != nil {
		fail(c, core.ErrConnectionNotFound)
		return
	}
	in := core.PushInput{ConnectionID: connID, Discount: core.Discount{
		Title: *req.Discount.Title, ValueType: *req.Discount.ValueType, Value: *req.Discount.Value,
		AppliesOncePerCustomer: req.Discount.AppliesOncePerCustomer,
	}}
	p, created, err := h.Connections.StartPush(c.Request.Context(), merchantID(c), listID, in)
	if err != nil {
		fail(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusAccepted
	}
	c.JSON(status, toPushResponse(p))
}

// listPushes is GET /api/v1/lists/{id}/connections.
func (h *handlers) listPushes(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	pushes, err := h.Connections.Pushes(c.Request.Context(), merchantID(c), listID)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, pushes, "", toPushResponse)
}
