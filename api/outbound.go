package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

type endpointRequest struct {
	URL    *string  `json:"url" validate:"required"`
	Events []string `json:"events" validate:"required"`
}

type endpointResponse struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	State        string     `json:"state"`
	Secret       string     `json:"secret,omitempty"`
	FailingSince *time.Time `json:"failing_since"`
	CreatedAt    time.Time  `json:"created_at"`
}

func toEndpointResponse(e core.WebhookEndpoint) endpointResponse {
	return endpointResponse{ID: e.ID.String(), URL: e.URL, Events: e.Events, State: e.State, Secret: e.Secret,
		FailingSince: e.FailingSince, CreatedAt: e.CreatedAt}
}

// createEndpoint is POST /api/v1/webhook-endpoints: the signing secret is in this answer only.
func (h *handlers) createEndpoint(c *gin.Context) {
	var req endpointRequest
	if !h.bindJSON(c, &req) {
		return
	}
	e, err := h.Endpoints.Create(c.Request.Context(), merchantID(c), *req.URL, req.Events)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, toEndpointResponse(e))
}

// listEndpoints is GET /api/v1/webhook-endpoints.
func (h *handlers) listEndpoints(c *gin.Context) {
	items, err := h.Endpoints.List(c.Request.Context(), merchantID(c))
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, "", toEndpointResponse)
}

// deleteEndpoint is DELETE /api/v1/webhook-endpoints/{id}.
func (h *handlers) deleteEndpoint(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	if err := h.Endpoints.Delete(c.Request.Context(), merchantID(c), id); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// enableEndpoint is POST /api/v1/webhook-endpoints/{id}/enable: a disabled endpoint is active
// again and hears the events from now on; an active one is answered as it is.
func (h *handlers) enableEndpoint(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	e, err := h.Endpoints.Enable(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toEndpointResponse(e))
}

type attemptResponse struct {
	EventID    string    `json:"event_id"`
	EventType  string    `json:"type"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error"`
	DurationMS int       `json:"duration_ms"`
	At         time.Time `json:"at"`
}

// endpointAttempts is GET /api/v1/webhook-endpoints/{id}/attempts: newest first.
func (h *handlers) endpointAttempts(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	p, ok := page(c)
	if !ok {
		return
	}
	items, next, err := h.Endpoints.Attempts(c.Request.Context(), merchantID(c), id, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, items, next, func(a core.WebhookAttempt) attemptResponse {
		return attemptResponse{EventID: a.MessageID, EventType: a.EventType, StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.DurationMS, At: a.At}
	})
}

type alertsRequest struct {
	Emails []string `json:"emails"`
}

// putAlerts is PUT /api/v1/settings/alerts.
func (h *handlers) putAlerts(c *gin.Context) {
	var req alertsRequest
	if !h.bindJSON(c, &req) {
		return
	}
	emails, err := h.Alerts.Put(c.Request.Context(), merchantID(c), req.Emails)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"emails": emails})
}

// getAlerts is GET /api/v1/settings/alerts.
func (h *handlers) getAlerts(c *gin.Context) {
	emails, err := h.Alerts.Get(c.Request.Context(), merchantID(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"emails": emails})
}
