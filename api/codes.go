package api

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

type codeResponse struct {
	Code        string          `json:"code"`
	State       string          `json:"state"`
	Uses        int             `json:"uses"`
	Recipient   *core.Recipient `json:"recipient"`
	Campaign    *string         `json:"campaign"`
	DeliveredAt *time.Time      `json:"delivered_at"`
	RedeemedAt  *time.Time      `json:"redeemed_at"`
	ExpiresAt   *time.Time      `json:"expires_at"`
}

type codeDetailResponse struct {
	codeResponse
	Timeline []core.Event `json:"timeline"`
}

func toCodeResponse(c core.Code) codeResponse {
	r := codeResponse{
		Code: c.Code, State: string(c.State), Uses: c.Uses, Recipient: c.Recipient,
		DeliveredAt: c.DeliveredAt, RedeemedAt: c.RedeemedAt, ExpiresAt: c.ExpiresAt,
	}
	if c.Campaign != "" {
		campaign := c.Campaign
		r.Campaign = &campaign
	}
	return r
}

// unescapeParams unescapes the path parameters, which the router leaves escaped (see NewRouter),
// with path rules: "%2F" becomes '/', "%25" '%', and '+' stays '+'. Every handler then reads a
// code from c.Param as the client meant it.
func unescapeParams(c *gin.Context) {
	for i, p := range c.Params {
		if v, err := url.PathUnescape(p.Value); err == nil {
			c.Params[i].Value = v
		}
	}
	c.Next()
}

// pathCode reads the code path parameter.
func pathCode(c *gin.Context) (string, bool) {
	code := c.Param("code")
	if code == "" {
		fail(c, core.ErrCodeNotFound)
		return "", false
	}
	return code, true
}

func (h *handlers) searchCodes(c *gin.Context) {
	listID, p, ok := listIDAndPage(c)
	if !ok {
		return
	}
	q := core.CodeQuery{Prefix: c.Query("q"), Recipient: c.Query("recipient"), Page: p}
	if s := c.Query("state"); s != "" {
		state, ok := core.ParseCodeState(s)
		if !ok {
			fail(c, core.Invalid("state", "must be available, delivered, redeemed or removed"))
			return
		}
		q.State = state
	}
	codes, next, err := h.Codes.Search(c.Request.Context(), merchantID(c), listID, q)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, codes, next, toCodeResponse)
}

func (h *handlers) getCode(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	code, ok := pathCode(c)
	if !ok {
		return
	}
	got, err := h.Codes.Get(c.Request.Context(), merchantID(c), listID, code)
	if err != nil {
		fail(c, err)
		return
	}
	timeline := got.Timeline
	if timeline == nil {
		timeline = []core.Event{}
	}
	c.JSON(http.StatusOK, codeDetailResponse{codeResponse: toCodeResponse(got), Timeline: timeline})
}

// removeCodes is DELETE /codes?state=available: every never-delivered code goes. The state is
// required so that nobody empties a list by accident.
func (h *handlers) removeCodes(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	if c.Query("state") != string(core.StateAvailable) {
		fail(c, core.Invalid("state", "must be available: only never-delivered codes can be removed"))
		return
	}
	n, err := h.Codes.RemoveAvailable(c.Request.Context(), merchantID(c), listID, actor(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"removed": n})
}

// removeCode removes one never-delivered code: 204, also when it was already removed; 409 when it
// was delivered, used or is held by a reservation.
func (h *handlers) removeCode(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	code, ok := pathCode(c)
	if !ok {
		return
	}
	if err := h.Codes.Remove(c.Request.Context(), merchantID(c), listID, code, actor(c)); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// exportCodes streams the list's codes as CSV: ?state=all (default), delivered, undelivered or
// redeemed (see core.ExportFilter for what each holds).
func (h *handlers) exportCodes(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	filter := core.ExportFilter(c.Query("state"))
	name := "codes.csv"
	if filter != "" {
		name = "codes-" + string(filter) + ".csv"
	}
	w := &csvDownload{c: c, filename: name}
	if err := h.Codes.Export(c.Request.Context(), merchantID(c), listID, filter, w); err != nil {
		fail(c, err)
	}
}
