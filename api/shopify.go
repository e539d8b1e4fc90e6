package api

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
)

// shopifyWebhook is POST /webhooks/shopify: the raw body, capped, goes to the intake, which
// verifies, stores and queues the webhook receipt.
//
// The answer carries Server-Timing ("intake;dur=<ms>"): the time from reading the body to the 2xx,
// signature check and durable store included, for operators and the bench.
func (h *handlers) shopifyWebhook(c *gin.Context) {
	started := time.Now()
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, shopify.MaxWebhookBytes))
	if err != nil {
		h.observeWebhook("shopify", "", core.ErrBodyTooLarge) // refused, whichever the cause
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			fail(c, core.ErrBodyTooLarge)
			return
		}
		fail(c, core.Malformed("the request body could not be read"))
		return
	}
	status, err := h.ShopifyWebhooks.Receive(c.Request.Context(), c.Request.Header, body)
	h.observeWebhook("shopify", status, err)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Server-Timing", "intake;dur="+strconv.FormatFloat(float64(time.Since(started).Microseconds())/1000, 'f', 3, 64))
	c.JSON(http.StatusOK, gin.H{"status": status})
}
