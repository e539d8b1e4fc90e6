package api

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// ---- The admin API: /api/v1/lists/{id}/redeem-links, /api/v1/redeem-links/{id} ----------------

type redeemPageBody struct {
	Title         *string `json:"title" validate:"omitempty,max=200"`
	Text          *string `json:"text" validate:"omitempty,max=4000"`
	Button        *string `json:"button" validate:"omitempty,max=200"`
	SuccessText   *string `json:"success_text" validate:"omitempty,max=4000"`
	ExhaustedText *string `json:"exhausted_text" validate:"omitempty,max=4000"`
	ExpiredText   *string `json:"expired_text" validate:"omitempty,max=4000"`
}

func (p *redeemPageBody) patch() core.RedeemPagePatch {
	if p == nil {
		return core.RedeemPagePatch{}
	}
	return core.RedeemPagePatch{Title: p.Title, Text: p.Text, Button: p.Button, SuccessText: p.SuccessText,
		ExhaustedText: p.ExhaustedText, ExpiredText: p.ExpiredText}
}

type redeemLinkRequest struct {
	Name        *string             `json:"name" validate:"omitempty,max=200"`
	IdentifyBy  *string             `json:"identify_by" validate:"omitempty,oneof=email none"`
	StartsAt    optional[time.Time] `json:"starts_at"`
	EndsAt      optional[time.Time] `json:"ends_at"`
	Page        *redeemPageBody     `json:"page"`
	Redirect    *string             `json:"redirect" validate:"omitempty,oneof=none shopify url"`
	RedirectURL *string             `json:"redirect_url" validate:"omitempty,max=2000"`
}

type redeemLinkResponse struct {
	ID          string          `json:"id"`
	ListID      string          `json:"list_id"`
	Slug        string          `json:"slug"`
	URL         string          `json:"url"`
	Name        string          `json:"name"`
	IdentifyBy  string          `json:"identify_by"`
	StartsAt    *time.Time      `json:"starts_at"`
	EndsAt      *time.Time      `json:"ends_at"`
	Page        core.RedeemPage `json:"page"`
	Redirect    string          `json:"redirect"`
	RedirectURL string          `json:"redirect_url"`
	HandedOut   int64           `json:"handed_out"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

func (h *handlers) toRedeemLinkResponse(l core.RedeemLink) redeemLinkResponse {
	return redeemLinkResponse{ID: l.ID.String(), ListID: l.ListID.String(), Slug: l.Slug, URL: h.RedeemLinks.URL(l), Name: l.Name,
		IdentifyBy: l.IdentifyBy, StartsAt: l.StartsAt, EndsAt: l.EndsAt, Page: l.Page, Redirect: l.Redirect,
		RedirectURL: l.RedirectURL, HandedOut: l.HandedOut, CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt}
}

// createRedeemLink: POST /api/v1/lists/{id}/redeem-links → 201.
func (h *handlers) createRedeemLink(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req redeemLinkRequest
	if !h.bindJSON(c, &req) {
		return
	}
	in := core.RedeemLinkInput{StartsAt: req.StartsAt.ptr(), EndsAt: req.EndsAt.ptr()}
	setFrom(&in.Name, req.Name)
	setFrom(&in.IdentifyBy, req.IdentifyBy)
	setFrom(&in.Redirect, req.Redirect)
	setFrom(&in.RedirectURL, req.RedirectURL)
	p := req.Page.patch()
	setFrom(&in.Page.Title, p.Title)
	setFrom(&in.Page.Text, p.Text)
	setFrom(&in.Page.Button, p.Button)
	setFrom(&in.Page.SuccessText, p.SuccessText)
	setFrom(&in.Page.ExhaustedText, p.ExhaustedText)
	setFrom(&in.Page.ExpiredText, p.ExpiredText)
	l, err := h.RedeemLinks.Create(c.Request.Context(), merchantID(c), listID, in)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, h.toRedeemLinkResponse(l))
}

// listRedeemLinks: GET /api/v1/lists/{id}/redeem-links, oldest first, keyset paged.
func (h *handlers) listRedeemLinks(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	p, ok := page(c)
	if !ok {
		return
	}
	links, next, err := h.RedeemLinks.List(c.Request.Context(), merchantID(c), listID, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, links, next, h.toRedeemLinkResponse)
}

// getRedeemLink: GET /api/v1/redeem-links/{id}.
func (h *handlers) getRedeemLink(c *gin.Context) {
	id, ok := pathUUID(c, "link_id", core.ErrRedeemLinkNotFound)
	if !ok {
		return
	}
	l, err := h.RedeemLinks.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.toRedeemLinkResponse(l))
}

// updateRedeemLink: PATCH /api/v1/redeem-links/{id}; page texts not sent stay as they are.
func (h *handlers) updateRedeemLink(c *gin.Context) {
	id, ok := pathUUID(c, "link_id", core.ErrRedeemLinkNotFound)
	if !ok {
		return
	}
	var req redeemLinkRequest
	if !h.bindJSON(c, &req) {
		return
	}
	l, err := h.RedeemLinks.Update(c.Request.Context(), merchantID(c), id, core.RedeemLinkPatch{
		Name: req.Name, IdentifyBy: req.IdentifyBy, StartsAt: req.StartsAt.patch(), EndsAt: req.EndsAt.patch(),
		Page: req.Page.patch(), Redirect: req.Redirect, RedirectURL: req.RedirectURL,
	})
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, h.toRedeemLinkResponse(l))
}

// deleteRedeemLink: DELETE /api/v1/redeem-links/{id} → 204.
func (h *handlers) deleteRedeemLink(c *gin.Context) {
	id, ok := pathUUID(c, "link_id", core.ErrRedeemLinkNotFound)
	if !ok {
		return
	}
	if err := h.RedeemLinks.Delete(c.Request.Context(), merchantID(c), id); err != nil {
		fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// ---- The public page: /r/{slug} ----------------------------------------------------------------

const (
	// redeemCookieDir is where the public page's cookies live.
	redeemCookieDir = "/r/"
	// redeemCSRFCookie holds the page form's double-submit token.
	redeemCSRFCookie = "cg_rcsrf"
	// redeemVisitorCookie is the browser's id for links that identify nobody.
	redeemVisitorCookie = "cg_rvisitor"
	// redeemHoneypot is the form field people never see and never fill.
	redeemHoneypot = "website"
)

// registerRedeemPages adds the public redeem pages. They take no key: the slug is unguessable and
// a personal link's token is signed.
func (h *handlers) registerRedeemPages(r *gin.Engine) {
	g := r.Group("/r", h.redeemHeaders)
	g.GET("/:slug", h.redeemPage)
	g.POST("/:slug", h.redeemAsk)
	g.GET("/:slug/:token", h.redeemPersonal)
	g.GET("/:slug/qr/:token", h.redeemQR)
	h.redeemPINPages(g) // "Mark as used" with a staff PIN: api/redeem_pin.go
}

// redeemView is what redeem.html shows.
type redeemView struct {
	Title     string
	Page      core.RedeemPage
	State     string
	Ask       bool
	Email     bool
	Action    string
	CSRF      string
	Honeypot  string
	Typed     string
	Error     string
	Code      string
	ExpiresAt *time.Time
	QR        string
	ShopURL   string
	Status    int
	Message   string
}

// redeemHeaders sets what every public page sends: no framing, no inline code, no referrer (a
// personal link's token must not reach the shop), no caching.
func (h *handlers) redeemHeaders(c *gin.Context) {
	c.Header("Content-Security-Policy", contentSecurityPolicy(&dashContext{}))
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	c.Next()
}

// redeemPage: GET /r/{slug} — the merchant's texts and the form (or the text for a link that has
// not started or has ended).
func (h *handlers) redeemPage(c *gin.Context) {
	o, err := h.RedeemLinks.Open(c.Request.Context(), c.Param("slug"))
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	h.renderRedeem(c, http.StatusOK, o, "")
}

// redeemAsk: POST /r/{slug} — hands out the visitor's code. The form carries a double-submit
// token (the cg_rcsrf cookie), so another site cannot make a visitor's browser ask for codes.
func (h *handlers) redeemAsk(c *gin.Context) {
	ck, err := c.Request.Cookie(redeemCSRFCookie)
	if err != nil || !sameToken(c.PostForm(csrfField), ck.Value) || c.GetHeader("Sec-Fetch-Site") == "cross-site" {
		h.redeemProblem(c, errCSRF)
		return
	}
	req := core.HandOutRequest{Email: c.PostForm("email"), Client: c.ClientIP(), Honeypot: c.PostForm(redeemHoneypot)}
	if v, err := c.Request.Cookie(redeemVisitorCookie); err == nil {
		req.Visitor = v.Value
	}
	o, err := h.RedeemLinks.HandOut(c.Request.Context(), c.Param("slug"), req)
	if fe, ok := web.FieldErrorsOf(err); ok && o.Link.Slug != "" {
		o.State = core.RedeemAsk
		h.renderRedeem(c, http.StatusUnprocessableEntity, o, fe["email"], c.PostForm("email"))
		return
	}
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	h.renderRedeem(c, http.StatusOK, o, "")
}

// redeemPersonal: GET /r/{slug}/{token} — a personal link hands out its recipient's code without
// asking.
func (h *handlers) redeemPersonal(c *gin.Context) {
	o, err := h.RedeemLinks.HandOut(c.Request.Context(), c.Param("slug"), core.HandOutRequest{Token: c.Param("token"), Client: c.ClientIP()})
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	h.renderRedeem(c, http.StatusOK, o, "")
}

// renderRedeem renders the page of a hand-out (or of the form).
func (h *handlers) renderRedeem(c *gin.Context, status int, o core.HandOut, fieldError string, typed ...string) {
	v := redeemView{Title: o.Link.Page.Title, Page: o.Link.Page, State: o.State, Email: o.Link.IdentifyBy == core.IdentifyByEmail,
		Action: "/r/" + o.Link.Slug, Honeypot: redeemHoneypot, Error: fieldError, Code: o.Code, ExpiresAt: o.ExpiresAt,
		ShopURL: o.ShopURL, Status: status}
	if v.Title == "" {
		v.Title = o.Link.Name
	}
	if len(typed) > 0 {
		v.Typed = typed[0]
	}
	if o.State == core.RedeemAsk {
		v.Ask = true
		v.CSRF = h.redeemCSRF(c)
		if !v.Email {
			h.redeemVisitor(c)
		}
	}
	if o.State == core.RedeemCode {
		v.QR = "/r/" + o.Link.Slug + "/qr/" + h.RedeemLinks.QRToken(o.Link, o.Code)
	}
	var b bytes.Buffer
	if err := web.RenderBlock(&b, "redeem.html", "redeem", v); err != nil {
		h.Log.ErrorContext(c.Request.Context(), "redeem page not rendered", "err", err)
		c.String(http.StatusInternalServerError, "The page could not be shown.")
		return
	}
	c.Data(status, "text/html; charset=utf-8", b.Bytes())
}

// redeemQR: GET /r/{slug}/qr/{token} — the QR code (SVG) of a code the page handed out; the
// token is signed for the link and the code.
func (h *handlers) redeemQR(c *gin.Context) {
	code, err := h.RedeemLinks.QRCode(c.Request.Context(), c.Param("slug"), c.Param("token"))
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	qr, err := qrcode.New(code, qrcode.Medium)
	if err != nil {
		h.redeemProblem(c, err)
		return
	}
	c.Header("Cache-Control", "private, max-age=86400")
	c.Data(http.StatusOK, "image/svg+xml", qrSVG(qr.Bitmap()))
}

// redeemProblem answers an error as a page: unknown link (404), refused form (403), too many
// hand-outs (429 with Retry-After), anything else (500 or the error's status).
func (h *handlers) redeemProblem(c *gin.Context, err error) {
	v := redeemView{Title: "Coupongate", State: "problem", Status: http.StatusInternalServerError,
		Message: "Something went wrong on our side. Please try again in a moment."}
	var ce *core.Error
	switch {
	case errors.Is(err, core.ErrRedeemLinkNotFound):
		v.Status, v.Message = http.StatusNotFound, "This link does not exist. Check that you copied all of it."
	case errors.Is(err, errCSRF):
		v.Status, v.Message = http.StatusForbidden, "The form had expired. Go back, reload the page and try again."
	case errors.As(err, &ce) && ce.Kind == core.KindRateLimited:
		v.Status, v.Message = http.StatusTooManyRequests, "Too many codes were asked for here. Please try again later."
		c.Header("Retry-After", strconv.Itoa(int(math.Ceil(max(ce.RetryAfter, time.Second).Seconds()))))
	case errors.As(err, &ce) && ce.Kind == core.KindMalformed:
		v.Status, v.Message = http.StatusBadRequest, "Your browser did not send what the page needs. Reload the page and try again."
	default:
		h.Log.ErrorContext(c.Request.Context(), "redeem page failed", "err", err)
	}
	var b bytes.Buffer
	if err := web.RenderBlock(&b, "redeem.html", "redeem", v); err != nil {
		c.String(v.Status, v.Message)
		return
	}
	c.Data(v.Status, "text/html; charset=utf-8", b.Bytes())
}

// redeemCSRF returns the form's double-submit token, setting its cookie when the browser has none.
func (h *handlers) redeemCSRF(c *gin.Context) string {
	if ck, err := c.Request.Cookie(redeemCSRFCookie); err == nil && len(ck.Value) == 43 {
		return ck.Value
	}
	token := randomToken()
	h.setRedeemCookie(c, redeemCSRFCookie, token, 24*time.Hour)
	return token
}

// redeemVisitor gives the browser its id for links that identify nobody.
func (h *handlers) redeemVisitor(c *gin.Context) {
	if ck, err := c.Request.Cookie(redeemVisitorCookie); err == nil && len(ck.Value) == 43 {
		return
	}
	h.setRedeemCookie(c, redeemVisitorCookie, randomToken(), 365*24*time.Hour)
}

func (h *handlers) setRedeemCookie(c *gin.Context, name, value string, maxAge time.Duration) {
	http.SetCookie(c.Writer, &http.Cookie{Name: name, Value: value, Path: redeemCookieDir, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: h.secureCookies(), SameSite: http.SameSiteLaxMode})
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
