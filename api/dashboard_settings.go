package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// Settings (issue 11, point 10), for owners only: the alert addresses, the outgoing webhook
// endpoints (a new endpoint's secret shown once, its attempts, re-enable, delete) and the API
// keys (rotated with the grace period the merchant chooses, the new key shown once). The team has
// its own page (api/dashboard_team.go); the settings pages link to it.

// dashboardSettings registers the settings pages on the owners' group.
func (h *handlers) dashboardSettings(owner *gin.RouterGroup) {
	owner.GET("/settings", h.alertsPage)
	owner.POST("/settings/alerts", h.saveAlertsForm)
	owner.GET("/settings/webhooks", h.webhooksPage)
	owner.POST("/settings/webhooks", h.createWebhookForm)
	owner.GET("/settings/webhooks/:endpoint_id", h.webhookPage)
	owner.POST("/settings/webhooks/:endpoint_id/enable", h.enableWebhookForm)
	owner.GET("/settings/webhooks/:endpoint_id/delete", h.deleteWebhookPage)
	owner.POST("/settings/webhooks/:endpoint_id/delete", h.deleteWebhookForm)
	owner.GET("/settings/keys", h.keysPage)
	owner.POST("/settings/keys/:kind/rotate", h.rotateKeyForm)
}

// ---- Alerts -------------------------------------------------------------------------------------

// alertsData is what settings.html shows: the alert addresses, one a line.
type alertsData struct {
	Emails string
	Saved  bool
	Errors web.FieldErrors
}

// alertsPage is GET /app/settings: the alert addresses.
func (h *handlers) alertsPage(c *gin.Context) {
	emails, err := h.Alerts.Get(c.Request.Context(), merchantID(c))
	if err != nil {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "settings.html", alertsData{Emails: strings.Join(emails, "\n"), Saved: c.Query("saved") == "1"})
}

// saveAlertsForm is POST /app/settings/alerts: the addresses, one a line (commas and spaces
// separate them too); none stops the alerts.
func (h *handlers) saveAlertsForm(c *gin.Context) {
	typed := c.PostForm("emails")
	emails := strings.FieldsFunc(typed, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\t' || r == '\r' || r == '\n' })
	_, err := h.Alerts.Put(c.Request.Context(), merchantID(c), emails)
	if fields, ok := web.FieldErrorsOf(err); ok {
		h.page(c, http.StatusUnprocessableEntity, "settings.html", alertsData{Emails: typed, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/settings?saved=1")
}

// ---- Outgoing webhooks --------------------------------------------------------------------------

// eventChoice is one event an endpoint may hear, as the form offers it.
type eventChoice struct {
	Type    string
	About   string
	Checked bool
}

// eventAbout says what each event is, beside its checkbox.
var eventAbout = map[string]string{
	core.EventTypeCodeDelivered:  "A code was handed out.",
	core.EventTypeCodeRedeemed:   "A code was used.",
	core.EventTypeLowStock:       "A list fell below its low-stock warning.",
	core.EventTypeExhausted:      "A list handed out its last code.",
	core.EventTypeExpired:        "A list reached its expiry.",
	core.EventTypeImportFinished: "An import ended, with its report.",
}

// eventChoices are core's event types, the checked ones ticked.
func eventChoices(checked []string) []eventChoice {
	out := make([]eventChoice, len(core.EventTypes))
	for i, t := range core.EventTypes {
		out[i] = eventChoice{Type: t, About: eventAbout[t]}
		for _, c := range checked {
			if c == t {
				out[i].Checked = true
			}
		}
	}
	return out
}

// endpointView is an endpoint as the settings show it (never with its secret).
type endpointView struct {
	ID      uuid.UUID
	URL     string
	Events  []string
	Enabled bool
	// Reason says why a disabled endpoint is disabled, or since when an enabled one fails.
	Reason      string
	CreatedAt   time.Time
	LastAttempt *core.WebhookAttempt
}

// endpointViewOf is e as the settings show it.
func endpointViewOf(e core.WebhookEndpoint) endpointView {
	v := endpointView{ID: e.ID, URL: e.URL, Events: e.Events, Enabled: e.State == core.EndpointActive, CreatedAt: e.CreatedAt}
	switch {
	case !v.Enabled && e.FailingSince != nil && e.DisabledAt != nil:
		v.Reason = fmt.Sprintf("Every delivery failed from %s on, so Coupongate disabled it on %s.",
			e.FailingSince.UTC().Format(dashTime), e.DisabledAt.UTC().Format(dashTime))
	case !v.Enabled:
		v.Reason = "Every delivery failed for days, so Coupongate disabled it."
	case e.FailingSince != nil:
		v.Reason = "Failing since " + e.FailingSince.UTC().Format(dashTime) + "; it is disabled after 5 days of failures."
	}
	return v
}

// dashTime is how the settings write a time in sentences (web's datetime).
const dashTime = "2 Jan 2006 15:04 UTC"

// newSecret is a new endpoint's signing secret, shown on the page that answers its creation only.
type newSecret struct {
	URL    string
	Secret string
}

// webhooksData is what settings_webhooks.html shows: the endpoints and the form for a new one.
type webhooksData struct {
	Endpoints []endpointView
	Created   *newSecret
	Deleted   bool
	// The form: what was typed, and its errors.
	URL    string
	Events []eventChoice
	Errors web.FieldErrors
}

// webhooksPage is GET /app/settings/webhooks.
func (h *handlers) webhooksPage(c *gin.Context) {
	h.renderWebhooks(c, http.StatusOK, webhooksData{Deleted: c.Query("deleted") == "1", Events: eventChoices(nil)})
}

func (h *handlers) renderWebhooks(c *gin.Context, status int, data webhooksData) {
	id := merchantID(c)
	endpoints, err := h.Endpoints.List(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	last, err := h.Endpoints.LastAttempts(c.Request.Context(), id)
	if err != nil {
		fail(c, err)
		return
	}
	for _, e := range endpoints {
		v := endpointViewOf(e)
		if a, ok := last[e.ID]; ok {
			v.LastAttempt = &a
		}
		data.Endpoints = append(data.Endpoints, v)
	}
	if data.Created != nil {
		// The page carries the new secret: no cache on the way may keep it.
		c.Header("Cache-Control", "no-store")
	}
	h.page(c, status, "settings_webhooks.html", data)
}

// createWebhookForm is POST /app/settings/webhooks: core checks the URL and the events; the
// answer is the endpoints page with the new signing secret, shown this once (a reload of
// /app/settings/webhooks no longer has it: only its sealed form is kept).
func (h *handlers) createWebhookForm(c *gin.Context) {
	rawURL, events := c.PostForm("url"), c.PostFormArray("events")
	e, err := h.Endpoints.Create(c.Request.Context(), merchantID(c), rawURL, events)
	if ce := (*core.Error)(nil); errors.As(err, &ce) && ce == core.ErrPrivateEndpoint {
		err = core.Invalid("url", strings.TrimPrefix(core.ErrPrivateEndpoint.Message, "url: "))
	}
	if fields, ok := web.FieldErrorsOf(err); ok {
		h.renderWebhooks(c, http.StatusUnprocessableEntity, webhooksData{URL: rawURL, Events: eventChoices(events), Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.renderWebhooks(c, http.StatusOK, webhooksData{Created: &newSecret{URL: e.URL, Secret: e.Secret}, Events: eventChoices(nil)})
}

// webhookData is what settings_webhook.html shows: one endpoint and 50 of its attempts, newest
// first.
type webhookData struct {
	Endpoint endpointView
	Attempts []core.WebhookAttempt
	Next     string
	After    string
	Enabled  bool
}

// webhookPage is GET /app/settings/webhooks/:endpoint_id: the endpoint, its state and its
// attempts, 50 at a time ("Load more" passes the next cursor as ?after=).
func (h *handlers) webhookPage(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	e, err := h.Endpoints.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	after := c.Query("after")
	attempts, next, err := h.Endpoints.Attempts(c.Request.Context(), merchantID(c), id, core.Page{Limit: 50, Cursor: after})
	if err != nil {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "settings_webhook.html", webhookData{Endpoint: endpointViewOf(e), Attempts: attempts,
		Next: next, After: after, Enabled: c.Query("enabled") == "1"})
}

// enableWebhookForm is POST /app/settings/webhooks/:endpoint_id/enable: core turns the endpoint
// back on ("Re-enable").
func (h *handlers) enableWebhookForm(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	if _, err := h.Endpoints.Enable(c.Request.Context(), merchantID(c), id); err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/settings/webhooks/"+id.String()+"?enabled=1")
}

// webhookDeleteData is what settings_webhook_delete.html shows: the question and the button.
type webhookDeleteData struct {
	Endpoint endpointView
}

// deleteWebhookPage is GET /app/settings/webhooks/:endpoint_id/delete: the question.
func (h *handlers) deleteWebhookPage(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	e, err := h.Endpoints.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "settings_webhook_delete.html", webhookDeleteData{Endpoint: endpointViewOf(e)})
}

// deleteWebhookForm is POST /app/settings/webhooks/:endpoint_id/delete: the endpoint hears
// nothing more; its messages not yet delivered are dropped.
func (h *handlers) deleteWebhookForm(c *gin.Context) {
	id, ok := pathUUID(c, "endpoint_id", core.ErrEndpointNotFound)
	if !ok {
		return
	}
	if err := h.Endpoints.Delete(c.Request.Context(), merchantID(c), id); err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/settings/webhooks?deleted=1")
}

// ---- API keys -----------------------------------------------------------------------------------

// graceChoice is one grace period the rotation form offers.
type graceChoice struct {
	Seconds int64
	Label   string
}

// graceChoices are the grace periods a merchant chooses from; 24 hours is preselected.
var graceChoices = []graceChoice{
	{0, "None: the old key stops working at once"},
	{3600, "1 hour"},
	{86400, "24 hours"},
	{7 * 86400, "7 days"},
}

// defaultGrace is the grace period the form offers first.
const defaultGrace = 86400

// keyView is one of the merchant's keys as the keys page shows it: never the key itself.
type keyView struct {
	Kind  core.KeyKind
	Name  string
	About string
	// PreviousExpiresAt is when the key the last rotation replaced stops working, while it works.
	PreviousExpiresAt *time.Time
	Grace             int64
	Errors            web.FieldErrors
}

// keyNames are the keys' names on the page.
var keyNames = map[core.KeyKind]struct{ name, about string }{
	core.KeyAdmin:      {"Admin API key", "Your servers use it for the admin API (Authorization: Bearer cg_admin_…). Never put it in a web page or an app."},
	core.KeyStorefront: {"Storefront key", "Checkout and storefront code validate codes with it (X-Storefront-Key: cg_store_…). It can only validate codes."},
}

// keysData is what settings_keys.html shows.
type keysData struct {
	Keys   []keyView
	Graces []graceChoice
}

// keysPage is GET /app/settings/keys: the two keys, each with its rotation form.
func (h *handlers) keysPage(c *gin.Context) {
	h.renderKeys(c, http.StatusOK, "", 0, nil)
}

// renderKeys shows the keys page; the form of kind (if any) shows grace and errs.
func (h *handlers) renderKeys(c *gin.Context, status int, kind core.KeyKind, grace int64, errs web.FieldErrors) {
	states, err := h.Merchants.KeyStates(c.Request.Context(), merchantID(c))
	if err != nil {
		fail(c, err)
		return
	}
	data := keysData{Graces: graceChoices}
	for _, s := range states {
		v := keyView{Kind: s.Kind, Name: keyNames[s.Kind].name, About: keyNames[s.Kind].about, PreviousExpiresAt: s.PreviousExpiresAt, Grace: defaultGrace}
		if s.Kind == kind {
			v.Grace, v.Errors = grace, errs
		}
		data.Keys = append(data.Keys, v)
	}
	h.page(c, status, "settings_keys.html", data)
}

// rotatedKeyData is what settings_key.html shows: the new key, this once.
type rotatedKeyData struct {
	Name              string
	Key               string
	PreviousExpiresAt time.Time
	// Immediately is true when the old key stopped working at once (no grace period).
	Immediately bool
}

// rotateKeyForm is POST /app/settings/keys/:kind/rotate: core's rotation (the one POST
// /api/v1/keys/{kind}/rotate uses) with the grace period chosen; the answer shows the new key
// once and is never stored by a cache.
func (h *handlers) rotateKeyForm(c *gin.Context) {
	kind, err := core.ParseKeyKind(c.Param("kind"))
	if err != nil {
		fail(c, err)
		return
	}
	grace, err := strconv.ParseInt(c.PostForm("grace_seconds"), 10, 64)
	if err != nil {
		h.renderKeys(c, http.StatusUnprocessableEntity, kind, defaultGrace,
			web.FieldErrors{"grace_seconds": "Choose how long the old key keeps working."})
		return
	}
	d := time.Duration(grace) * time.Second
	if grace < 0 || grace > int64(core.MaxKeyGrace/time.Second) {
		d = -1 // out of range (and not overflowed): core refuses it, saying the rule
	}
	k, err := h.rotateMerchantKey(c.Request.Context(), merchantID(c), kind, d)
	if fields, ok := web.FieldErrorsOf(err); ok {
		h.renderKeys(c, http.StatusUnprocessableEntity, kind, defaultGrace, fields)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	h.page(c, http.StatusOK, "settings_key.html", rotatedKeyData{Name: keyNames[kind].name, Key: k.Key,
		PreviousExpiresAt: k.PreviousExpiresAt, Immediately: grace == 0})
}
