package api

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// rotateKeyRequest is the body of a rotation; an empty body is a rotation without grace.
type rotateKeyRequest struct {
	// GraceSeconds is how long the replaced key keeps working: 0 (the default) to 2592000.
	GraceSeconds *int64 `json:"grace_seconds" validate:"omitempty,min=0,max=2592000"`
}

type rotateKeyResponse struct {
	Kind                 string    `json:"kind"`
	Key                  string    `json:"key"`
	PreviousKeyExpiresAt time.Time `json:"previous_key_expires_at"`
}

// rotateKey is POST /api/v1/keys/{admin|storefront}/rotate: the new key is in this answer only.
func (h *handlers) rotateKey(c *gin.Context) {
	kind, err := core.ParseKeyKind(c.Param("kind"))
	if err != nil {
		fail(c, err)
		return
	}
	var req rotateKeyRequest
	if c.Request.ContentLength != 0 && !h.bindJSON(c, &req) {
		return
	}
	var grace time.Duration
	if req.GraceSeconds != nil {
		grace = time.Duration(*req.GraceSeconds) * time.Second
	}
	k, err := h.rotateMerchantKey(c.Request.Context(), merchantID(c), kind, grace)
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, rotateKeyResponse{Kind: string(k.Kind), Key: k.Key, PreviousKeyExpiresAt: k.PreviousExpiresAt})
}

// rotateMerchantKey rotates the merchant's key of that kind through core (the API's rotation and
// the dashboard's settings share it). This process stops trusting the merchant's cached keys at
// once; the replaced key is verified again, and honoured until its grace period ends.
func (h *handlers) rotateMerchantKey(ctx context.Context, id uuid.UUID, kind core.KeyKind, grace time.Duration) (core.RotatedKey, error) {
	k, err := h.Merchants.RotateKey(ctx, id, kind, grace)
	if err != nil {
		return core.RotatedKey{}, err
	}
	h.adminKeys.forget(id)
	h.storefrontKeys.forget(id)
	return k, nil
}
