package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce"
)

type wooConnectRequest struct {
	SiteURL        *string  `json:"site_url" validate:"required,max=2000"`
	ConsumerKey    *string  `json:"consumer_key" validate:"required,max=200"`
	ConsumerSecret *string  `json:"consumer_secret" validate:"required,max=200"`
	PaidStatuses   []string `json:"paid_statuses" validate:"omitempty,max=20"`
}

type wooConnectionResponse struct {
	connectionResponse
	PaidStatuses []string `json:"paid_statuses"`
}

func toWooConnectionResponse(c core.Connection) wooConnectionResponse {
	paid := c.PaidStatuses
	if paid == nil {
		paid = woocommerce.DefaultPaidStatuses
	}
	return wooConnectionResponse{connectionResponse: toConnectionResponse(c), PaidStatuses: paid}
}

// connectWooCommerce is POST /api/v1/connections/woocommerce: checks the keys against the store,
// stores them sealed and creates the store's order webhooks. 201 for a new connection, 200 when
// the merchant's connection to that store was renewed.
func (h *handlers) connectWooCommerce(c *gin.Context) {
	var req wooConnectRequest
	if !h.bindJSON(c, &req) {
		return
	}
	conn, created, err := h.WooCommerce.Connect(c.Request.Context(), merchantID(c), woocommerce.ConnectInput{
		SiteURL: *req.SiteURL, ConsumerKey: *req.ConsumerKey, ConsumerSecret: *req.ConsumerSecret, PaidStatuses: req.PaidStatuses,
	})
	if err != nil {
		fail(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, toWooConnectionResponse(conn))
}

// wooConnect is GET /woocommerce/connect?site_url=: sends the merchant to the store's app
// authorization page.
func (h *handlers) wooConnect(c *gin.Context) {
	to, err := h.WooCommerce.AuthorizeURL(c.Request.Context(), merchantID(c), c.Query("site_url"), c.Query("return_url"))
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Header("Location", to)
	c.Status(http.StatusFound)
}

// wooAuthorizedKeys reads WooCommerce's callback body; user_id and key_id come as numbers or
// strings.
type wooAuthorizedKeys struct {
	KeyID          json.RawMessage `json:"key_id"`
	UserID         json.RawMessage `json:"user_id"`
	ConsumerKey    string          `json:"consumer_key"`
	ConsumerSecret string          `json:"consumer_secret"`
	KeyPermissions string          `json:"key_permissions"`
}

func rawString(m json.RawMessage) string {
	var s string
	if json.Unmarshal(m, &s) == nil {
		return s
	}
	return strings.Trim(string(m), `" `)
}

// wooCallback is POST /woocommerce/callback: the keys WooCommerce posts after the merchant
// approved. It answers exactly 200 when it took them (anything else makes WooCommerce delete
// the key); the store's webhooks are created right after, by the worker.
func (h *handlers) wooCallback(c *gin.Context) {
	raw, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, 64<<10))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			fail(c, core.ErrBodyTooLarge)
			return
		}
		fail(c, core.Malformed("the request body could not be read"))
		return
	}
	var body wooAuthorizedKeys
	if err := json.Unmarshal(raw, &body); err != nil {
		fail(c, core.Malformed("the body is not the JSON WooCommerce posts"))
		return
	}
	conn, err := h.WooCommerce.AcceptKeys(c.Request.Context(), woocommerce.AuthorizedKeys{
		KeyID: rawString(body.KeyID), UserID: rawString(body.UserID), ConsumerKey: strings.TrimSpace(body.ConsumerKey),
		ConsumerSecret: strings.TrimSpace(body.ConsumerSecret), Permissions: body.KeyPermissions,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "connected", "connection_id": conn.ID.String()})
}

// wooWebhook is POST /webhooks/woocommerce/{connection_id}: pings answer 200 at once; webhooks
// are verified with the connection's secrets before anything is read, stored, then answered.
//
// The answer carries Server-Timing ("intake;dur=<ms>"), as the Shopify route's does.
func (h *handlers) wooWebhook(c *gin.Context) {
	started := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, woocommerce.MaxWebhookBytes))
	if err != nil {
		h.observeWebhook("woocommerce", "", core.ErrBodyTooLarge) // refused, whichever the cause
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			fail(c, core.ErrBodyTooLarge)
			return
		}
		fail(c, core.Malformed("the request body could not be read"))
		return
	}
	status, err := h.WooCommerceWebhooks.Receive(c.Request.Context(), c.Param("connection_id"), c.Request.Header, body)
	h.observeWebhook("woocommerce", status, err)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Server-Timing", "intake;dur="+strconv.FormatFloat(float64(time.Since(started).Microseconds())/1000, 'f', 3, 64))
	c.JSON(http.StatusOK, gin.H{"status": status})
}
