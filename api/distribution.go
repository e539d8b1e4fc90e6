package api

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/coupongate/coupongate/core"
)

type recipientBody struct {
	ExternalID string `json:"external_id" validate:"max=300"`
	Email      string `json:"email" validate:"max=300"`
	Phone      string `json:"phone" validate:"max=50"`
}

func (r recipientBody) toCore() core.Recipient {
	return core.Recipient{ExternalID: r.ExternalID, Email: r.Email, Phone: r.Phone}
}

type allocationRequest struct {
	Recipient recipientBody `json:"recipient"`
	Campaign  string        `json:"campaign" validate:"max=200"`
	Channel   string        `json:"channel" validate:"omitempty,max=50"`
}

type allocationResponse struct {
	Code      string         `json:"code"`
	ListID    string         `json:"list_id"`
	Recipient core.Recipient `json:"recipient"`
	Campaign  string         `json:"campaign"`
	ExpiresAt *time.Time     `json:"expires_at"`
	Reused    bool           `json:"reused"`
}

// allocate: POST /api/v1/lists/{id}/allocations → 201 new code, 200 the same code again.
func (h *handlers) allocate(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req allocationRequest
	if !h.bindJSON(c, &req) {
		return
	}
	a, err := h.Allocator.Allocate(c.Request.Context(), merchantID(c), listID, core.AllocationRequest{
		Recipient: req.Recipient.toCore(), Campaign: req.Campaign, Channel: req.Channel, Actor: actor(c),
	})
	h.observeAllocation(a.Reused, err)
	if err != nil {
		fail(c, err)
		return
	}
	status := http.StatusCreated
	if a.Reused {
		status = http.StatusOK
	}
	c.JSON(status, allocationResponse{Code: a.Code, ListID: a.ListID.String(), Recipient: a.Recipient, Campaign: a.Campaign,
		ExpiresAt: a.ExpiresAt, Reused: a.Reused})
}

type validateRequest struct {
	Code     string        `json:"code" validate:"required,max=400"`
	Customer recipientBody `json:"customer"`
	Reserve  bool          `json:"reserve"`
}

type validateResponse struct {
	Valid       bool                 `json:"valid"`
	Reason      string               `json:"reason"`
	Code        string               `json:"code"`
	List        *listRef             `json:"list"`
	ExpiresAt   *time.Time           `json:"expires_at"`
	Reservation *reservationResponse `json:"reservation"`
}

type listRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type reservationResponse struct {
	ID        string    `json:"id"`
	ExpiresAt time.Time `json:"expires_at"`
}

// validate: POST /storefront/v1/validate.
func (h *handlers) validate(c *gin.Context) {
	var req validateRequest
	if !h.bindJSON(c, &req) {
		return
	}
	v, err := h.Validator.Validate(c.Request.Context(), merchantID(c), core.ValidationRequest{
		Code: req.Code, Customer: req.Customer.toCore(), Reserve: req.Reserve, Client: c.ClientIP(), Actor: actor(c),
	})
	h.observeValidation(v.Reason, err)
	if err != nil {
		fail(c, err)
		return
	}
	out := validateResponse{Valid: v.Valid, Reason: v.Reason, Code: v.Code, ExpiresAt: v.ExpiresAt}
	if v.ListID != uuid.Nil {
		out.List = &listRef{ID: v.ListID.String(), Name: v.ListName}
	}
	if v.Reservation != nil {
		out.Reservation = &reservationResponse{ID: v.Reservation.ID.String(), ExpiresAt: v.Reservation.ExpiresAt}
	}
	c.JSON(http.StatusOK, out)
}

// releaseReservation: DELETE /storefront/v1/reservations/{id} → 204.
func (h *handlers) releaseReservation(c *gin.Context) {
	id, ok := pathUUID(c, "reservation_id", core.ErrReservationGone)
	if !ok {
		return
	}
	if err := h.Validator.Release(c.Request.Context(), merchantID(c), id, actor(c)); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type orderRequest struct {
	Platform string        `json:"platform" validate:"required,max=50"`
	Shop     string        `json:"shop" validate:"max=255"`
	OrderID  string        `json:"order_id" validate:"required,max=255"`
	Status   string        `json:"status" validate:"required,oneof=pending paid cancelled refunded"`
	Codes    []string      `json:"codes" validate:"max=50"`
	Customer recipientBody `json:"customer"`
}

type codeOutcomeResponse struct {
	Code    string  `json:"code"`
	Outcome string  `json:"outcome"`
	ListID  *string `json:"list_id"`
	Uses    int     `json:"uses"`
	State   *string `json:"state"`
}

func toOutcome(o core.CodeOutcome) codeOutcomeResponse {
	r := codeOutcomeResponse{Code: o.Code, Outcome: o.Outcome, Uses: o.Uses}
	if o.ListID != uuid.Nil {
		id, state := o.ListID.String(), string(o.State)
		r.ListID, r.State = &id, &state
	}
	return r
}

// applyOrder: POST /api/v1/orders, the platform-neutral order event.
func (h *handlers) applyOrder(c *gin.Context) {
	var req orderRequest
	if !h.bindJSON(c, &req) {
		return
	}
	res, err := h.Redeemer.ApplyOrder(c.Request.Context(), merchantID(c), core.OrderEvent{
		Platform: req.Platform, Shop: req.Shop, OrderID: req.OrderID, Status: core.OrderStatus(req.Status),
		Codes: req.Codes, Customer: req.Customer.toCore(), Actor: actor(c),
	})
	if err != nil {
		fail(c, err)
		return
	}
	out := make([]codeOutcomeResponse, len(res.Results))
	for i, o := range res.Results {
		out[i] = toOutcome(o)
	}
	c.JSON(http.StatusOK, gin.H{"order_id": res.OrderID, "status": res.Status, "results": out})
}

type redeemRequest struct {
	OrderID string `json:"order_id" validate:"max=255"`
	Note    string `json:"note" validate:"max=1000"`
	// Channel is manual (the default) or in_store.
	Channel string `json:"channel"`
}

// redeem: POST /api/v1/lists/{id}/codes/{code}/redeem marks a code used by hand.
func (h *handlers) redeem(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req redeemRequest
	if c.Request.ContentLength != 0 && !h.bindJSON(c, &req) {
		return
	}
	o, err := h.Redeemer.Redeem(c.Request.Context(), merchantID(c), listID, c.Param("code"), core.ManualRedemption{OrderID: req.OrderID, Note: req.Note, Actor: actor(c), Channel: req.Channel})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toOutcome(o))
}

// qrCode: GET /api/v1/lists/{id}/codes/{code}/qr.png and qr.svg — the code as a QR code, for
// emails and tills.
func (h *handlers) qrCode(format string) gin.HandlerFunc {
	return func(c *gin.Context) {
		listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
		if !ok {
			return
		}
		f, err := h.Redeemer.ListCode(c.Request.Context(), merchantID(c), listID, c.Param("code"))
		if err != nil {
			fail(c, err)
			return
		}
		qr, err := qrcode.New(f.Code, qrcode.Medium)
		if err != nil {
			fail(c, core.Invalid("code", "cannot be drawn as a QR code"))
			return
		}
		c.Header("Cache-Control", "private, max-age=3600")
		if format == "svg" {
			c.Data(http.StatusOK, "image/svg+xml", qrSVG(qr.Bitmap()))
			return
		}
		size := 256
		if v := c.Query("size"); v != "" {
			n, err := parseInt(v)
			if err != nil || n < 64 || n > 2048 {
				fail(c, core.Invalid("size", "must be a whole number of pixels from 64 to 2048"))
				return
			}
			size = int(n)
		}
		png, err := qr.PNG(size)
		if err != nil {
			fail(c, err)
			return
		}
		c.Data(http.StatusOK, "image/png", png)
	}
}

// qrSVG draws a QR bitmap (quiet zone included) as one SVG path, one unit per module.
func qrSVG(bits [][]bool) []byte {
	var path strings.Builder
	for y, row := range bits {
		for x, on := range row {
			if on {
				fmt.Fprintf(&path, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	var b bytes.Buffer
	n := len(bits)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="%s"/></svg>`, n, n, path.String())
	return b.Bytes()
}

type recipientCodeResponse struct {
	List listRef `json:"list"`
	codeDetailResponse
}

// recipientCodes: GET /api/v1/recipients/codes?email=… (or external_id=, phone=): every code a
// recipient got, across lists, with its timeline.
func (h *handlers) recipientCodes(c *gin.Context) {
	entries, err := h.Recipients.Codes(c.Request.Context(), merchantID(c), core.Recipient{
		Email: c.Query("email"), ExternalID: c.Query("external_id"), Phone: c.Query("phone"),
	})
	if err != nil {
		fail(c, err)
		return
	}
	items := make([]recipientCodeResponse, len(entries))
	for i, e := range entries {
		items[i] = recipientCodeResponse{List: listRef{ID: e.List.ID.String(), Name: e.List.Name},
			codeDetailResponse: codeDetailResponse{codeResponse: toCodeResponse(e.Code), Timeline: e.Code.Timeline}}
	}
	c.JSON(http.StatusOK, newPage(items, ""))
}
