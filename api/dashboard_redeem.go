package api

import (
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// dashboardRedeemLinks registers a list's redeem links page (owners): the links with the codes
// handed out through each, a new link, a link's edit form, and deleting one.
func (h *handlers) dashboardRedeemLinks(owner *gin.RouterGroup) {
	owner.GET("/lists/:list_id/redeem-links", h.redeemLinksPage)
	owner.POST("/lists/:list_id/redeem-links", h.createRedeemLinkForm)
	owner.GET("/lists/:list_id/redeem-links/:link_id", h.editRedeemLinkPage)
	owner.POST("/lists/:list_id/redeem-links/:link_id", h.updateRedeemLinkForm)
	owner.POST("/lists/:list_id/redeem-links/:link_id/delete", h.deleteRedeemLinkForm)
}

// redeemLinkRow is one link as the table shows it.
type redeemLinkRow struct {
	core.RedeemLink
	URL string
}

// redeemLinkForm is the form's values, as typed.
type redeemLinkForm struct {
	Name, IdentifyBy, StartsAt, EndsAt, Redirect, RedirectURL string
	Page                                                      core.RedeemPage
}

// redeemLinksData is what redeem_links.html shows.
type redeemLinksData struct {
	Head    listHead
	Links   []redeemLinkRow
	Editing *redeemLinkRow
	Form    redeemLinkForm
	Errors  web.FieldErrors
}

// redeemLinkSentences are the form's words for core's validation errors, by field.
var redeemLinkSentences = map[string]string{
	"name":                "Give the link a name of at most 200 characters.",
	"identify_by":         "Choose whether the page asks for an email address.",
	"starts_at":           "Write the start as a date and time (UTC).",
	"ends_at":             "The end must be a date and time (UTC) after the start.",
	"redirect":            "Choose where Use it in the shop leads.",
	"redirect_url":        "Give an address starting with https:// (or http://) of at most 2,000 characters.",
	"page.title":          "The title can be at most 200 characters.",
	"page.button":         "The button's words can be at most 200 characters.",
	"page.text":           "The text can be at most 4,000 characters.",
	"page.success_text":   "The text can be at most 4,000 characters.",
	"page.exhausted_text": "The text can be at most 4,000 characters.",
	"page.expired_text":   "The text can be at most 4,000 characters.",
}

func (h *handlers) redeemLinksPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	h.renderRedeemLinks(c, http.StatusOK, l, redeemLinksData{Form: redeemLinkForm{IdentifyBy: core.IdentifyByEmail, Redirect: core.RedirectNone}})
}

func (h *handlers) renderRedeemLinks(c *gin.Context, status int, l core.List, data redeemLinksData) {
	links, _, err := h.RedeemLinks.List(c.Request.Context(), merchantID(c), l.ID, core.Page{Limit: 500})
	if err != nil {
		fail(c, err)
		return
	}
	data.Head = listHeadOf(l, "redeem")
	for _, link := range links {
		data.Links = append(data.Links, redeemLinkRow{RedeemLink: link, URL: h.RedeemLinks.URL(link)})
	}
	h.page(c, status, "redeem_links.html", data)
}

// bindRedeemLinkForm reads the form; a date that is not one is a field error.
func bindRedeemLinkForm(c *gin.Context) (redeemLinkForm, web.FieldErrors) {
	f := redeemLinkForm{Name: c.PostForm("name"), IdentifyBy: c.PostForm("identify_by"), StartsAt: c.PostForm("starts_at"),
		EndsAt: c.PostForm("ends_at"), Redirect: c.PostForm("redirect"), RedirectURL: c.PostForm("redirect_url"),
		Page: core.RedeemPage{Title: c.PostForm("title"), Text: c.PostForm("text"), Button: c.PostForm("button"),
			SuccessText: c.PostForm("success_text"), ExhaustedText: c.PostForm("exhausted_text"), ExpiredText: c.PostForm("expired_text")}}
	errs := web.FieldErrors{}
	for field, v := range map[string]string{"starts_at": f.StartsAt, "ends_at": f.EndsAt} {
		if _, err := parseLocal(v); err != nil {
			errs[field] = redeemLinkSentences[field]
		}
	}
	return f, errs
}

// fieldErrorsOf turns core's validation error into the form's sentences.
func redeemFieldErrors(err error) (web.FieldErrors, bool) {
	fields, ok := web.FieldErrorsOf(err)
	if !ok {
		return nil, false
	}
	out := web.FieldErrors{}
	for f, msg := range fields {
		if s, ok := redeemLinkSentences[f]; ok {
			msg = s
		}
		out[f] = msg
	}
	return out, true
}

func (h *handlers) createRedeemLinkForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	f, errs := bindRedeemLinkForm(c)
	if len(errs) > 0 {
		h.renderRedeemLinks(c, http.StatusUnprocessableEntity, l, redeemLinksData{Form: f, Errors: errs})
		return
	}
	starts, _ := parseLocal(f.StartsAt)
	ends, _ := parseLocal(f.EndsAt)
	_, err := h.RedeemLinks.Create(c.Request.Context(), merchantID(c), l.ID, core.RedeemLinkInput{Name: f.Name, IdentifyBy: f.IdentifyBy,
		StartsAt: starts, EndsAt: ends, Page: f.Page, Redirect: f.Redirect, RedirectURL: f.RedirectURL})
	if fields, ok := redeemFieldErrors(err); ok {
		h.renderRedeemLinks(c, http.StatusUnprocessableEntity, l, redeemLinksData{Form: f, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists/"+l.ID.String()+"/redeem-links")
}

// dashRedeemLink loads the list and its link named by the path.
func (h *handlers) dashRedeemLink(c *gin.Context) (core.List, core.RedeemLink, bool) {
	l, ok := h.dashList(c)
	if !ok {
		return l, core.RedeemLink{}, false
	}
	id, err := uuid.Parse(c.Param("link_id"))
	if err != nil {
		fail(c, core.ErrRedeemLinkNotFound)
		return l, core.RedeemLink{}, false
	}
	link, err := h.RedeemLinks.Get(c.Request.Context(), merchantID(c), id)
	if err == nil && link.ListID != l.ID {
		err = core.ErrRedeemLinkNotFound
	}
	if err != nil {
		fail(c, err)
		return l, core.RedeemLink{}, false
	}
	return l, link, true
}

func (h *handlers) editRedeemLinkPage(c *gin.Context) {
	l, link, ok := h.dashRedeemLink(c)
	if !ok {
		return
	}
	f := redeemLinkForm{Name: link.Name, IdentifyBy: link.IdentifyBy, StartsAt: localValue(link.StartsAt), EndsAt: localValue(link.EndsAt),
		Redirect: link.Redirect, RedirectURL: link.RedirectURL, Page: link.Page}
	h.renderRedeemLinks(c, http.StatusOK, l, redeemLinksData{Editing: &redeemLinkRow{RedeemLink: link, URL: h.RedeemLinks.URL(link)}, Form: f})
}

func (h *handlers) updateRedeemLinkForm(c *gin.Context) {
	l, link, ok := h.dashRedeemLink(c)
	if !ok {
		return
	}
	editing := &redeemLinkRow{RedeemLink: link, URL: h.RedeemLinks.URL(link)}
	f, errs := bindRedeemLinkForm(c)
	if len(errs) > 0 {
		h.renderRedeemLinks(c, http.StatusUnprocessableEntity, l, redeemLinksData{Editing: editing, Form: f, Errors: errs})
		return
	}
	starts, _ := parseLocal(f.StartsAt)
	ends, _ := parseLocal(f.EndsAt)
	p := f.Page
	_, err := h.RedeemLinks.Update(c.Request.Context(), merchantID(c), link.ID, core.RedeemLinkPatch{Name: &f.Name, IdentifyBy: &f.IdentifyBy,
		StartsAt: &starts, EndsAt: &ends, Redirect: &f.Redirect, RedirectURL: &f.RedirectURL,
		Page: core.RedeemPagePatch{Title: &p.Title, Text: &p.Text, Button: &p.Button, SuccessText: &p.SuccessText,
			ExhaustedText: &p.ExhaustedText, ExpiredText: &p.ExpiredText}})
	if fields, ok := redeemFieldErrors(err); ok {
		h.renderRedeemLinks(c, http.StatusUnprocessableEntity, l, redeemLinksData{Editing: editing, Form: f, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists/"+l.ID.String()+"/redeem-links")
}

func (h *handlers) deleteRedeemLinkForm(c *gin.Context) {
	l, link, ok := h.dashRedeemLink(c)
	if !ok {
		return
	}
	if err := h.RedeemLinks.Delete(c.Request.Context(), merchantID(c), link.ID); err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists/"+l.ID.String()+"/redeem-links")
}
