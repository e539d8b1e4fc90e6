package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/web"
)

// The Shops pages (issue 11, point 8): the connected Shopify shops and WooCommerce stores with
// their state, connecting a WooCommerce store (its app authorization, or REST API keys), a shop's
// page (push a list with the discount, its pushes, "Reconcile now", "Disconnect" after asking),
// and a push's progress with the codes the shop refused and its reasons.

// dashboardShops registers the Shops pages, all for owners.
func (h *handlers) dashboardShops(owner *gin.RouterGroup) {
	owner.GET("/shops", h.shopsPage)
	owner.POST("/shops/woocommerce/authorize", h.wooAuthorizeForm)
	owner.POST("/shops/woocommerce/keys", h.wooKeysForm)
	owner.GET("/shops/:connection_id", h.shopPage)
	owner.POST("/shops/:connection_id/push", h.pushForm)
	owner.GET("/shops/:connection_id/pushes/:list_id", h.pushPage)
	owner.POST("/shops/:connection_id/reconcile", h.reconcileForm)
	owner.GET("/shops/:connection_id/disconnect", h.disconnectPage)
	owner.POST("/shops/:connection_id/disconnect", h.disconnectForm)
}

// shopView is a connection as the pages show it.
type shopView struct {
	ID        uuid.UUID
	Platform  string // "Shopify" or "WooCommerce"
	Shop      string
	State     string
	StateText string
	Badge     string
	Error     string
	Scopes    string
	SyncedAt  *time.Time
	CreatedAt time.Time
	Active    bool
	Ended     bool // disconnected or uninstalled: nothing more to do with it
}

// platformNames are the platforms in words.
var platformNames = map[string]string{"shopify": "Shopify", "woocommerce": "WooCommerce"}

func shopViewOf(c core.Connection) shopView {
	v := shopView{ID: c.ID, Platform: platformNames[c.Platform], Shop: c.Shop, State: c.State, Error: web.Sentence(c.Error),
		Scopes: strings.ReplaceAll(c.Scopes, ",", ", "), SyncedAt: c.SyncedAt, CreatedAt: c.CreatedAt}
	if v.Platform == "" {
		v.Platform = c.Platform
	}
	switch c.State {
	case core.ConnectionActive:
		v.StateText, v.Badge, v.Active = "Active", "success", true
	case core.ConnectionError:
		v.StateText, v.Badge = "Error", "critical"
	case core.ConnectionUninstalled:
		v.StateText, v.Badge, v.Ended = "Access revoked", "archived", true
	case core.ConnectionDisconnected:
		v.StateText, v.Badge, v.Ended = "Disconnected", "archived", true
	default:
		v.StateText, v.Badge = c.State, "info"
	}
	return v
}

// ---- The shops ----------------------------------------------------------------------------------

// wooForm is what the two WooCommerce forms hold, as typed. The consumer secret is never shown
// again, not even after an error.
type wooForm struct {
	AuthorizeSite string
	SiteURL       string
	ConsumerKey   string
}

// shopsData is what shops.html shows.
type shopsData struct {
	Shops []shopView
	Next  string
	After string
	Form  wooForm
	// AuthorizeErrors and KeyErrors are each form's field errors; Error is a sentence that
	// belongs to no field.
	AuthorizeErrors web.FieldErrors
	KeyErrors       web.FieldErrors
	Error           string
	// Returned is set when WooCommerce sent the merchant back after its authorization page.
	Returned bool
	Approved bool
}

// shopsPage is GET /app/shops: every connection, oldest first, 50 at a time, and the forms that
// connect a WooCommerce store.
func (h *handlers) shopsPage(c *gin.Context) {
	data := shopsData{}
	if c.Query("woocommerce") == "returned" {
		data.Returned, data.Approved = true, c.Query("success") == "1"
	}
	h.renderShops(c, http.StatusOK, data)
}

func (h *handlers) renderShops(c *gin.Context, status int, data shopsData) {
	data.After = c.Query("after")
	conns, next, err := h.Connections.List(c.Request.Context(), merchantID(c), core.Page{Limit: dashPageSize, Cursor: data.After})
	if err != nil {
		fail(c, err)
		return
	}
	data.Shops, data.Next = mapped(conns, shopViewOf), next
	h.page(c, status, "shops.html", data)
}

// wooErrors sorts an error of connecting a store into the form's fields (in sentences) or a
// sentence of its own; ok is false for an error that is not about what was typed.
func wooErrors(err error, siteField string) (web.FieldErrors, string, bool) {
	var ce *core.Error
	if !errors.As(err, &ce) || ce.Kind != core.KindInvalid {
		return nil, "", false
	}
	switch {
	case ce.Code == woocommerce.ErrPrivateSite.Code && ce.Message == woocommerce.ErrPrivateSite.Message:
		return web.FieldErrors{siteField: "This address is on a private network, which Coupongate does not call."}, "", true
	case errors.Is(err, woocommerce.ErrSiteURL):
		return web.FieldErrors{siteField: "Enter the store's address, such as https://shop.example.com."}, "", true
	case errors.Is(err, woocommerce.ErrStoreUnreachable):
		reason := ""
		if len(ce.Details) > 0 {
			reason = " (" + ce.Details[0].Message + ")"
		}
		return web.FieldErrors{siteField: "The store's REST API could not be reached at this address" + reason +
			". Is it a WooCommerce store with pretty permalinks on?"}, "", true
	case errors.Is(err, woocommerce.ErrKeysRefused):
		return web.FieldErrors{"consumer_key": "The store refused this consumer key and secret. Create a key with Read/Write permissions in WooCommerce → Settings → Advanced → REST API."}, "", true
	}
	if len(ce.Details) == 1 && ce.Details[0].Field == "consumer_key" {
		return web.FieldErrors{"consumer_key": "Enter the consumer key and the consumer secret the store gave you."}, "", true
	}
	return nil, web.Sentence(ce.Message), true
}

// wooAuthorizeForm is POST /app/shops/woocommerce/authorize: the store's app-authorization page,
// where the merchant approves Coupongate; WooCommerce then posts the keys to /woocommerce/callback
// and sends the merchant back to the Shops page.
func (h *handlers) wooAuthorizeForm(c *gin.Context) {
	site := strings.TrimSpace(c.PostForm("site_url"))
	back := strings.TrimRight(h.Config.AppURL, "/") + "/app/shops?woocommerce=returned"
	to, err := h.WooCommerce.AuthorizeURL(c.Request.Context(), merchantID(c), site, back)
	if fields, msg, ok := wooErrors(err, "authorize_site_url"); ok {
		h.renderShops(c, http.StatusUnprocessableEntity, shopsData{Form: wooForm{AuthorizeSite: site}, AuthorizeErrors: fields, Error: msg})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, to)
}

// wooKeysForm is POST /app/shops/woocommerce/keys: the store's REST API keys, checked against the
// store, as POST /api/v1/connections/woocommerce takes them.
func (h *handlers) wooKeysForm(c *gin.Context) {
	f := wooForm{SiteURL: strings.TrimSpace(c.PostForm("site_url")), ConsumerKey: strings.TrimSpace(c.PostForm("consumer_key"))}
	secret := strings.TrimSpace(c.PostForm("consumer_secret"))
	errs := web.FieldErrors{}
	if f.SiteURL == "" {
		errs["site_url"] = "Enter the store's address, such as https://shop.example.com."
	}
	if f.ConsumerKey == "" {
		errs["consumer_key"] = "Enter the consumer key (it starts with ck_)."
	}
	if secret == "" {
		errs["consumer_secret"] = "Enter the consumer secret (it starts with cs_)."
	}
	if len(errs) > 0 {
		h.renderShops(c, http.StatusUnprocessableEntity, shopsData{Form: f, KeyErrors: errs})
		return
	}
	conn, _, err := h.WooCommerce.Connect(c.Request.Context(), merchantID(c), woocommerce.ConnectInput{SiteURL: f.SiteURL, ConsumerKey: f.ConsumerKey, ConsumerSecret: secret})
	if fields, msg, ok := wooErrors(err, "site_url"); ok {
		h.renderShops(c, http.StatusUnprocessableEntity, shopsData{Form: f, KeyErrors: fields, Error: msg})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/shops/"+conn.ID.String()+"?connected=1")
}

// ---- One shop -----------------------------------------------------------------------------------

// pushView is a push as the pages show it.
type pushView struct {
	ListID       uuid.UUID
	ListName     string
	ConnectionID uuid.UUID
	State        string
	StateText    string
	Badge        string
	Running      bool
	Discount     string
	Pushed       int64
	Failed       int64
	Pending      int64
	Deleted      int64
	Percent      int
	Error        string
	UpdatedAt    time.Time
}

func pushViewOf(p core.Push, listName string) pushView {
	v := pushView{ListID: p.ListID, ListName: listName, ConnectionID: p.ConnectionID, State: p.State, Pushed: p.Pushed,
		Failed: p.Failed, Pending: p.Pending, Deleted: p.Deleted, Error: web.Sentence(p.Error), UpdatedAt: p.UpdatedAt,
		Discount: discountText(p.Discount)}
	switch p.State {
	case core.PushPending:
		v.StateText, v.Badge, v.Running = "Waiting to start", "info", true
	case core.PushPushing:
		v.StateText, v.Badge, v.Running = "Pushing", "info", true
	case core.PushActive:
		v.StateText, v.Badge = "Active", "success"
		if p.Pending > 0 {
			v.StateText, v.Running = "Pushing new codes", true
		}
	case core.PushError:
		v.StateText, v.Badge = "Error", "critical"
	case core.PushStopped:
		v.StateText, v.Badge = "Stopped", "archived"
	}
	if total := p.Pushed + p.Failed + p.Pending; total > 0 {
		v.Percent = int((p.Pushed + p.Failed) * 100 / total)
	} else if !v.Running {
		v.Percent = 100
	}
	return v
}

// discountText is a push's discount in words: "Spring sale: 10% off, once per customer".
func discountText(d core.Discount) string {
	value := strconv.FormatFloat(d.Value, 'f', -1, 64)
	s := d.Title + ": "
	if d.ValueType == core.ValuePercentage {
		s += value + "% off"
	} else {
		s += value + " off (in the shop's currency)"
	}
	if d.AppliesOncePerCustomer {
		s += ", once per customer"
	}
	return s
}

// pushForm is the push form's values, as typed.
type pushFormValues struct {
	ListID    string
	Title     string
	ValueType string
	Value     string
	Once      bool
}

// listOption is one list in a select.
type listOption struct {
	ID   uuid.UUID
	Name string
}

// shopData is what shops_shop.html shows.
type shopData struct {
	Shop      shopView
	Pushes    []pushView
	Lists     []listOption
	Form      pushFormValues
	Errors    web.FieldErrors
	Error     string
	Connected bool
	Reconcile bool
}

// shopPage is GET /app/shops/:connection_id.
func (h *handlers) shopPage(c *gin.Context) {
	conn, ok := h.dashConnection(c)
	if !ok {
		return
	}
	h.renderShop(c, http.StatusOK, conn, shopData{Connected: c.Query("connected") == "1", Reconcile: c.Query("reconciling") == "1",
		Form: pushFormValues{ValueType: core.ValuePercentage, ListID: c.Query("list")}})
}

// dashConnection reads :connection_id and loads the connection; false has answered.
func (h *handlers) dashConnection(c *gin.Context) (core.Connection, bool) {
	id, ok := pathUUID(c, "connection_id", core.ErrConnectionNotFound)
	if !ok {
		return core.Connection{}, false
	}
	conn, err := h.Connections.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return core.Connection{}, false
	}
	return conn, true
}

// pushListLimit is how many lists the push form offers.
const pushListLimit = 500

func (h *handlers) renderShop(c *gin.Context, status int, conn core.Connection, data shopData) {
	data.Shop = shopViewOf(conn)
	pushes, err := h.Connections.ConnectionPushes(c.Request.Context(), merchantID(c), conn.ID)
	if err != nil {
		fail(c, err)
		return
	}
	for _, p := range pushes {
		name := ""
		if l, err := h.Lists.Get(c.Request.Context(), merchantID(c), p.ListID); err == nil {
			name = l.Name
		} else if !errors.Is(err, core.ErrListNotFound) {
			fail(c, err)
			return
		}
		data.Pushes = append(data.Pushes, pushViewOf(p, name))
	}
	if data.Shop.Active {
		lists, _, err := h.Lists.List(c.Request.Context(), merchantID(c), core.Page{Limit: pushListLimit})
		if err != nil {
			fail(c, err)
			return
		}
		for _, l := range lists {
			if l.ArchivedAt == nil {
				data.Lists = append(data.Lists, listOption{ID: l.ID, Name: l.Name})
			}
		}
	}
	h.page(c, status, "shops_shop.html", data)
}

// pushFieldSentences are core's discount errors as the form says them.
var pushFieldSentences = map[string]string{
	"discount.title":      "Enter the discount's title, at most 255 characters: the shop shows it at checkout.",
	"discount.value_type": "Choose a percentage or a fixed amount.",
}

// pushForm is POST /app/shops/:connection_id/push: the list's codes are pushed to the shop with
// the discount, as POST /api/v1/lists/{id}/connections does; the push's page follows.
func (h *handlers) pushForm(c *gin.Context) {
	conn, ok := h.dashConnection(c)
	if !ok {
		return
	}
	f := pushFormValues{ListID: c.PostForm("list_id"), Title: strings.TrimSpace(c.PostForm("title")), ValueType: c.PostForm("value_type"),
		Value: strings.TrimSpace(c.PostForm("value")), Once: c.PostForm("once_per_customer") == "1"}
	errs := web.FieldErrors{}
	listID, err := uuid.Parse(f.ListID)
	if err != nil {
		errs["list_id"] = "Choose the list whose codes go to the shop."
	}
	value, err := strconv.ParseFloat(strings.ReplaceAll(f.Value, ",", "."), 64)
	if err != nil {
		errs["value"] = "Enter the discount as a number, such as 10 or 4.50."
	}
	if len(errs) > 0 {
		h.renderShop(c, http.StatusUnprocessableEntity, conn, shopData{Form: f, Errors: errs})
		return
	}
	p, _, err := h.Connections.StartPush(c.Request.Context(), merchantID(c), listID, core.PushInput{ConnectionID: conn.ID,
		Discount: core.Discount{Title: f.Title, ValueType: f.ValueType, Value: value, AppliesOncePerCustomer: f.Once}})
	var ce *core.Error
	switch {
	case errors.As(err, &ce) && ce.Code == core.ErrCaseClash.Code:
		var pairs []string
		for _, d := range ce.Details {
			pairs = append(pairs, d.Message)
		}
		h.renderShop(c, http.StatusUnprocessableEntity, conn, shopData{Form: f, Error: "The list has codes that differ only by case, which " +
			platformNames[conn.Platform] + " cannot tell apart: " + strings.Join(pairs, "; ") + ". Remove one of each pair first."})
		return
	case errors.Is(err, core.ErrListNotFound):
		h.renderShop(c, http.StatusUnprocessableEntity, conn, shopData{Form: f, Errors: web.FieldErrors{"list_id": "Choose the list whose codes go to the shop."}})
		return
	case errors.As(err, &ce) && ce.Kind == core.KindInvalid && len(ce.Details) > 0:
		fields := web.FieldErrors{}
		for _, d := range ce.Details {
			field := strings.TrimPrefix(d.Field, "discount.")
			if s, ok := pushFieldSentences[d.Field]; ok {
				fields[field] = s
			} else {
				fields[field] = web.Sentence(d.Message)
			}
		}
		h.renderShop(c, http.StatusUnprocessableEntity, conn, shopData{Form: f, Errors: fields})
		return
	case errors.As(err, &ce) && (ce.Kind == core.KindConflict || ce.Kind == core.KindInvalid):
		h.renderShop(c, statusOf(ce), conn, shopData{Form: f, Error: web.Sentence(ce.Message)})
		return
	case err != nil:
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/shops/%s/pushes/%s", conn.ID, p.ListID))
}

// statusOf is the HTTP status of a core error kind, for pages that show it in place.
func statusOf(ce *core.Error) int {
	if ce.Kind == core.KindConflict {
		return http.StatusConflict
	}
	return http.StatusUnprocessableEntity
}

// ---- A push's progress --------------------------------------------------------------------------

// pushData is what shops_push.html shows.
type pushData struct {
	Shop   shopView
	Push   pushView
	Failed []core.FailedPushCode
	Next   string
	After  string
}

// pushPage is GET /app/shops/:connection_id/pushes/:list_id: the push's counts and state (the
// page's script follows them while the push runs), and the codes the shop refused with its
// reasons, 50 at a time.
func (h *handlers) pushPage(c *gin.Context) {
	conn, ok := h.dashConnection(c)
	if !ok {
		return
	}
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	p, err := h.Connections.Push(c.Request.Context(), merchantID(c), l.ID, conn.ID)
	if err != nil {
		fail(c, err)
		return
	}
	data := pushData{Shop: shopViewOf(conn), Push: pushViewOf(p, l.Name), After: c.Query("after")}
	data.Failed, data.Next, err = h.Connections.FailedCodes(c.Request.Context(), merchantID(c), l.ID, conn.ID, core.Page{Limit: dashPageSize, Cursor: data.After})
	if err != nil {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "shops_push.html", data)
}

// ---- Reconcile and disconnect ------------------------------------------------------------------

// reconcileForm is POST /app/shops/:connection_id/reconcile: the worker fetches the shop's
// recently updated orders now, as the schedule does.
func (h *handlers) reconcileForm(c *gin.Context) {
	conn, ok := h.dashConnection(c)
	if !ok {
		return
	}
	_, err := h.Connections.Reconcile(c.Request.Context(), merchantID(c), conn.ID)
	if errors.Is(err, core.ErrConnectionInactive) {
		h.renderShop(c, http.StatusConflict, conn, shopData{Error: "Only an active shop can be reconciled: connect it again first."})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/shops/"+conn.ID.String()+"?reconciling=1")
}

// disconnectData is what shops_disconnect.html shows.
type disconnectData struct {
	Shop shopView
}

// disconnectPage is GET /app/shops/:connection_id/disconnect: what disconnecting does, and the
// button.
func (h *handlers) disconnectPage(c *gin.Context) {
	conn, ok := h.dashConnection(c)
	if !ok {
		return
	}
	h.page(c, http.StatusOK, "shops_disconnect.html", disconnectData{Shop: shopViewOf(conn)})
}

// disconnectForm is POST /app/shops/:connection_id/disconnect.
func (h *handlers) disconnectForm(c *gin.Context) {
	conn, ok := h.dashConnection(c)
	if !ok {
		return
	}
	if _, err := h.Connections.Disconnect(c.Request.Context(), merchantID(c), conn.ID); err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/shops/"+url.PathEscape(conn.ID.String()))
}
