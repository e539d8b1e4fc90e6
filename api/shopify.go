package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

// shopifyWebhook is POST /webhooks/shopify: the raw body, capped, goes to the intake, which
// verifies, stores and queues the delivery.
func (h *handlers) shopifyWebhook(c *gin.Context) {
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, shopify.MaxWebhookBytes))
	if err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			fail(c, core.ErrBodyTooLarge)
			return
		}
		fail(c, core.Malformed("the request body could not be read"))
		return
	}
	status, err := h.ShopifyWebhooks.Receive(c, c.Request.Header, body)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": status})
}
