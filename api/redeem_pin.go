package api

import (
	"bytes"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// "Mark as used" on the public redeem page (issue 12, point 4), for shops without a scanner: the
// customer shows their code, a staff member taps "Shop staff: mark as used" and types their scanner
// PIN on the customer's screen. core.Scanner finds the person by the PIN (throttled per client
// address and per merchant), applies their list limit, and redeems the code on the channel
// in_store with the person as actor. The form carries the redeem page's double-submit token.

// redeemPINPages registers the PIN form of a code of a redeem link: /r/{slug}/mark-used?code=.
func (h *handlers) redeemPINPages(g *gin.RouterGroup) {
	g.GET("/:slug/mark-used", h.redeemPINPage)
	g.POST("/:slug/mark-used", h.redeemPINForm)
}

// redeemPINView is what redeem_pin.html shows.
type redeemPINView struct {
	Title  string
	Code   string
	Action string
	CSRF   string
	// Error is the PIN field's error; Problem and Done the outcome, in sentences.
	Error   string
	Problem string
	Done    bool
}

// redeemPINPage is GET /r/{slug}/mark-used?code=: the staff PIN form for a code.
func (h *handlers) redeemPINPage(c *gin.Context) {
	o, err := h.RedeemLinks.Open(c.Request.Context(), c.Param("slug"))
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	h.renderRedeemPIN(c, http.StatusOK, o.Link, redeemPINView{Code: strings.TrimSpace(c.Query("code"))})
}

// redeemPINForm is POST /r/{slug}/mark-used (code, pin): the code marked used by the person whose
// PIN was typed. A wrong PIN answers 403 beside the field, too many wrong PINs 429 with
// Retry-After, a used code 409 with when and by whom, a code that is not the link's list's 404.
func (h *handlers) redeemPINForm(c *gin.Context) {
	ck, err := c.Request.Cookie(redeemCSRFCookie)
	if err != nil || !sameToken(c.PostForm(csrfField), ck.Value) || c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		h.redeemProblem(c, errCSRF)
		return
	}
	o, err := h.RedeemLinks.Open(c.Request.Context(), c.Param("slug"))
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	l := o.Link
	v := redeemPINView{Code: strings.TrimSpace(c.PostForm("code"))}
	_, _, err = h.Scanner.MarkUsedWithPIN(c.Request.Context(), l.MerchantID, l.ListID, v.Code, strings.TrimSpace(c.PostForm("pin")), c.ClientIP())
	var ce *core.Error
	status := http.StatusOK
	switch {
	case err == nil:
		v.Done = true
	case errors.Is(err, core.ErrScannerPINWrong):
		status, v.Error = http.StatusForbidden, "This PIN is not right, so the code was not marked as used."
	case errors.As(err, &ce) && ce.Kind == core.KindRateLimited:
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(ce.RetryAfter, time.Second).Seconds()))))
		status, v.Problem = http.StatusTooManyRequests, "Too many wrong PINs. Wait a few minutes, then try again."
	case errors.Is(err, core.ErrAlreadyUsed):
		status, v.Problem = http.StatusConflict, h.redeemLastUse(c, l, v.Code)
	case errors.Is(err, core.ErrCodeNotFound):
		status, v.Problem = http.StatusNotFound, "This code is not one of this offer's codes."
	case errors.Is(err, core.ErrScanListRefused):
		status, v.Problem = http.StatusForbidden, "This PIN may not mark this offer's codes as used: an owner of the team limited the lists it scans."
	case errors.Is(err, core.ErrScanExpired):
		status, v.Problem = http.StatusConflict, core.ErrScanExpired.Message
	case errors.Is(err, core.ErrNotIssued):
		status, v.Problem = http.StatusConflict, "This code was not handed out, so it cannot be marked as used."
	default:
		h.redeemProblem(c, err)
		return
	}
	h.renderRedeemPIN(c, status, l, v)
}

// redeemLastUse says when and by whom a used code was last used.
func (h *handlers) redeemLastUse(c *gin.Context, l core.RedeemLink, code string) string {
	got, err := h.Codes.Get(c.Request.Context(), l.MerchantID, l.ListID, code)
	if err != nil {
		return "Already used, so nothing was changed."
	}
	var last *timelineRow
	for _, e := range got.Timeline {
		if e.Type == core.EventRedeemed {
			row := timelineRowOf(e)
			last = &row
		}
	}
	return alreadyUsed(last)
}

func (h *handlers) renderRedeemPIN(c *gin.Context, status int, l core.RedeemLink, v redeemPINView) {
	v.Title, v.Action = l.Page.Title, "/r/"+l.Slug+"/mark-used"
	if v.Title == "" {
		v.Title = l.Name
	}
	if !v.Done {
		v.CSRF = h.redeemCSRF(c)
	}
	var b bytes.Buffer
	if err := web.RenderBlock(&b, "redeem_pin.html", "redeem_pin", v); err != nil {
		h.Log.ErrorContext(c.Request.Context(), "redeem PIN page not rendered", "err", err)
		c.String(http.StatusInternalServerError, "The page could not be shown.")
		return
	}
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
}
