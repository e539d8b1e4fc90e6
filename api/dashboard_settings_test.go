package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The settings pages (api/dashboard_settings.go), tested over HTTP as a browser without
// JavaScript uses them: the owner's session cookie, forms with its CSRF token, redirects after
// posts. Keys are checked with real API calls.

// newSettingsFixture is the dashboard fixture with outgoing webhooks allowed to any host (the
// endpoints' hosts here are names that do not resolve).
func newSettingsFixture(t *testing.T) *dashFixture {
	t.Helper()
	return newDashFixture(t, func(c *config.Config) { c.WebhooksAllowPrivate = true })
}

// stGet is a page as who sees it.
func (f *dashFixture) stGet(t *testing.T, who core.SignedIn, path string) apptest.Response {
	t.Helper()
	return f.do(t, dashRequest{path: path, cookies: sessionOf(who)})
}

// stPost sends a form as who, with who's CSRF token.
func (f *dashFixture) stPost(t *testing.T, who core.SignedIn, path string, form url.Values) apptest.Response {
	t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf_token", who.Session.CSRFToken)
	return f.do(t, dashRequest{method: http.MethodPost, path: path, form: form, cookies: sessionOf(who)})
}

// stText is a page's text as a person reads it (entities decoded, tags kept).
func stText(r apptest.Response) string { return html.UnescapeString(string(r.Body)) }

// stWant fails unless r answered status and its page reads every one of texts.
func stWant(t *testing.T, what string, r apptest.Response, status int, texts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
	}
	page := stText(r)
	for _, s := range texts {
		if !strings.Contains(page, s) {
			t.Errorf("%s: the page does not read %q:\n%s", what, s, page)
		}
	}
}

// stSeeOther checks a 303 to want.
func stSeeOther(t *testing.T, what string, r apptest.Response, want string) {
	t.Helper()
	if r.Status != http.StatusSeeOther || r.Header.Get("Location") != want {
		t.Fatalf("%s: %d to %q, want 303 to %q: %s", what, r.Status, r.Header.Get("Location"), want, r.Body)
	}
}

// stFieldError checks that field's error reads message, beside its control (aria-describedby).
func stFieldError(t *testing.T, r apptest.Response, controlID, field, message string) {
	t.Helper()
	page := stText(r)
	if !strings.Contains(page, `<p class="field-error-message" id="error-`+field+`">`+message+`</p>`) {
		t.Errorf("no error %q beside %s:\n%s", message, field, page)
	}
	if !regexp.MustCompile(`id="` + controlID + `"[^>]*aria-describedby="[^"]*error-` + field + `"`).MatchString(page) {
		t.Errorf("the control %s is not described by its error", controlID)
	}
}

// stAlerts are the alert addresses the API reads.
func stAlerts(t *testing.T, f *dashFixture) []string {
	t.Helper()
	var out struct {
		Emails []string `json:"emails"`
	}
	get(t, f.h, f.merchant, "/api/v1/settings/alerts").JSON(t, &out)
	return out.Emails
}

// stEndpoint is an endpoint as the API lists it.
type stEndpoint struct {
	ID           string     `json:"id"`
	URL          string     `json:"url"`
	Events       []string   `json:"events"`
	State        string     `json:"state"`
	FailingSince *time.Time `json:"failing_since"`
}

func stEndpoints(t *testing.T, f *dashFixture) []stEndpoint {
	t.Helper()
	var out struct {
		Items []stEndpoint `json:"items"`
	}
	get(t, f.h, f.merchant, "/api/v1/webhook-endpoints").JSON(t, &out)
	return out.Items
}

// stDisabledEndpoint makes an endpoint through core and leaves it as the deliverer leaves one that
// failed for 6 days: disabled, with attempts (the newest a 500).
func stDisabledEndpoint(t *testing.T, f *dashFixture, rawURL string, attempts int) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	e, err := f.h.App.Endpoints.Create(ctx, uuid.MustParse(f.merchant.ID), rawURL, []string{core.EventTypeCodeDelivered})
	if err != nil {
		t.Fatal(err)
	}
	db := f.h.App.DB.Pool()
	if _, err := db.Exec(ctx, `UPDATE webhook_endpoints SET state = 'disabled', failing_since = '2030-01-02T03:04:00Z', disabled_at = '2030-01-08T09:10:00Z'
		WHERE merchant_id = $1 AND id = $2`, e.MerchantID, e.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO webhook_attempts (merchant_id, endpoint_id, message_id, event_type, status_code, error, at)
		SELECT $1, $2, 'msg_a' || n, 'code.delivered', CASE WHEN n % 2 = 0 THEN 500 ELSE 0 END,
			CASE WHEN n % 2 = 0 THEN '' ELSE 'connection refused ' || n END, '2030-01-01T00:00:00Z'::timestamptz + n * interval '1 minute'
		FROM generate_series(1, $3::int) n`, e.MerchantID, e.ID, attempts); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// TestSettingsAlerts: the owner reads and saves the alert addresses (what the API reads too); a
// wrong address is refused beside the field, keeps what was typed and changes nothing.
func TestSettingsAlerts(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)

	r := f.stGet(t, f.owner, "/app/settings")
	stWant(t, "settings", r, http.StatusOK, "<h1>Settings</h1>", `<label for="alert-emails">Alert addresses</label>`,
		`href="/app/settings/webhooks">Outgoing webhooks</a>`, `href="/app/settings/keys">API keys</a>`, `href="/app/settings/team">Team</a>`,
		`<a href="/app/settings" aria-current="page">Alerts</a>`)
	if !strings.Contains(stText(r), `></textarea>`) {
		t.Fatalf("addresses never set should read empty:\n%s", r.Body)
	}

	r = f.stPost(t, f.owner, "/app/settings/alerts", url.Values{"emails": {"Ops@Shop.example\r\n\r\nstock@shop.example, "}})
	stSeeOther(t, "save", r, "/app/settings?saved=1")
	stWant(t, "after saving", f.stGet(t, f.owner, "/app/settings?saved=1"), http.StatusOK,
		"Alert addresses saved.", ">ops@shop.example\nstock@shop.example</textarea>")
	if got := stAlerts(t, f); strings.Join(got, ",") != "ops@shop.example,stock@shop.example" {
		t.Fatalf("the API reads %v", got)
	}

	r = f.stPost(t, f.owner, "/app/settings/alerts", url.Values{"emails": {"ops@shop.example\nnot an address"}})
	stWant(t, "a wrong address", r, http.StatusUnprocessableEntity, ">ops@shop.example\nnot an address</textarea>")
	stFieldError(t, r, "alert-emails", "emails", `"not" is not an email address.`)
	if got := stAlerts(t, f); len(got) != 2 {
		t.Fatalf("a refused form changed the addresses: %v", got)
	}

	// An empty box stops the alerts.
	stSeeOther(t, "empty", f.stPost(t, f.owner, "/app/settings/alerts", url.Values{"emails": {"  "}}), "/app/settings?saved=1")
	if got := stAlerts(t, f); len(got) != 0 {
		t.Fatalf("emptied, the API reads %v", got)
	}
}

// TestSettingsWebhookSecretShownOnce: an endpoint added on the page shows its signing secret on the
// page that answers, never again: not in the list, not on its page. The form's mistakes are told
// beside their fields.
func TestSettingsWebhookSecretShownOnce(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)

	r := f.stGet(t, f.owner, "/app/settings/webhooks")
	stWant(t, "no endpoints", r, http.StatusOK, "No endpoints yet", `<legend>Events</legend>`)
	for _, e := range core.EventTypes {
		if !strings.Contains(stText(r), `<input id="event-`+e+`" name="events" type="checkbox" value="`+e+`">`) {
			t.Errorf("no checkbox for %s", e)
		}
	}

	hook := "https://hooks.shop.example/coupongate"
	r = f.stPost(t, f.owner, "/app/settings/webhooks", url.Values{"url": {hook}, "events": {"code.delivered", "list.low_stock"}})
	stWant(t, "created", r, http.StatusOK, "The endpoint "+hook+" was added.", "copy it now, it will not be shown again", "Copy secret")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("the page with the secret may be cached: %q", cc)
	}
	m := regexp.MustCompile(`<code id="endpoint-secret">(whsec_[A-Za-z0-9+/=]+)</code>`).FindStringSubmatch(stText(r))
	if m == nil {
		t.Fatalf("no secret on the page:\n%s", r.Body)
	}
	eps := stEndpoints(t, f)
	if len(eps) != 1 || eps[0].URL != hook || strings.Join(eps[0].Events, ",") != "code.delivered,list.low_stock" || eps[0].State != "active" {
		t.Fatalf("the API lists %+v", eps)
	}
	stored, err := f.h.App.DB.GetEndpoint(context.Background(), uuid.MustParse(f.merchant.ID), uuid.MustParse(eps[0].ID))
	if err != nil || stored.Secret != m[1] {
		t.Fatalf("the page showed %q, the endpoint signs with %q (%v)", m[1], stored.Secret, err)
	}

	// Never again.
	for _, path := range []string{"/app/settings/webhooks", "/app/settings/webhooks/" + eps[0].ID, "/app/settings/webhooks/" + eps[0].ID + "/delete"} {
		r := f.stGet(t, f.owner, path)
		stWant(t, path, r, http.StatusOK, hook)
		if strings.Contains(string(r.Body), "whsec_") || strings.Contains(string(r.Body), m[1]) {
			t.Fatalf("%s shows the secret again:\n%s", path, r.Body)
		}
	}
	stWant(t, "the list", f.stGet(t, f.owner, "/app/settings/webhooks"), http.StatusOK,
		`<span class="badge badge-active">Enabled</span>`, "code.delivered, list.low_stock", "None yet")
	stWant(t, "its page", f.stGet(t, f.owner, "/app/settings/webhooks/"+eps[0].ID), http.StatusOK, "No attempts yet", "Delete endpoint")

	// Mistakes, beside their fields; what was typed stays.
	r = f.stPost(t, f.owner, "/app/settings/webhooks", url.Values{"url": {"ftp://files.shop.example"}, "events": {"code.redeemed"}})
	stWant(t, "ftp", r, http.StatusUnprocessableEntity, `value="ftp://files.shop.example"`, `value="code.redeemed" checked>`)
	stFieldError(t, r, "endpoint-url", "url", "Must be an absolute http(s) URL.")
	r = f.stPost(t, f.owner, "/app/settings/webhooks", url.Values{"url": {hook + "/2"}})
	stWant(t, "no events", r, http.StatusUnprocessableEntity, `value="`+hook+`/2"`)
	if !strings.Contains(stText(r), `<p class="field-error-message" id="error-events">Name at least one event: `) {
		t.Errorf("no error beside the events:\n%s", r.Body)
	}
	if n := len(stEndpoints(t, f)); n != 1 {
		t.Fatalf("refused forms made endpoints: %d", n)
	}

	// Delete, after the question.
	stWant(t, "the question", f.stGet(t, f.owner, "/app/settings/webhooks/"+eps[0].ID+"/delete"), http.StatusOK,
		"Delete the endpoint", `<form method="post" action="/app/settings/webhooks/`+eps[0].ID+`/delete">`)
	stSeeOther(t, "delete", f.stPost(t, f.owner, "/app/settings/webhooks/"+eps[0].ID+"/delete", nil), "/app/settings/webhooks?deleted=1")
	stWant(t, "deleted", f.stGet(t, f.owner, "/app/settings/webhooks?deleted=1"), http.StatusOK, "The endpoint was deleted.", "No endpoints yet")
	stWant(t, "gone", f.stGet(t, f.owner, "/app/settings/webhooks/"+eps[0].ID), http.StatusNotFound, "This page does not exist")
}

// TestSettingsWebhookReEnable: a disabled endpoint shows why, its attempts (time, event, status
// code, error) 50 at a time with Load more, and "Re-enable" turns it back on.
func TestSettingsWebhookReEnable(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)
	id := stDisabledEndpoint(t, f, "https://down.shop.example/hooks", 60)
	page := "/app/settings/webhooks/" + id.String()
	reason := "Every delivery failed from 2 Jan 2030 03:04 UTC on, so Coupongate disabled it on 8 Jan 2030 09:10 UTC."

	stWant(t, "the list", f.stGet(t, f.owner, "/app/settings/webhooks"), http.StatusOK,
		`<span class="badge badge-critical">Disabled</span><div class="subdued">`+reason+`</div>`,
		`<time datetime="2030-01-01T01:00:00Z">1 Jan 2030 01:00 UTC</time><div class="subdued">code.delivered: HTTP 500</div>`)

	r := f.stGet(t, f.owner, page)
	stWant(t, "its page", r, http.StatusOK, "Disabled. "+reason, `action="`+page+`/enable"`, ">Re-enable</button>",
		"<th scope=\"col\">Time</th><th scope=\"col\">Event</th><th scope=\"col\">Status code</th><th scope=\"col\">Error</th>",
		"<td>500</td>", "connection refused 59", "msg_a60")
	if n := strings.Count(string(r.Body), `<td class="nowrap"><time`); n != 50 {
		t.Fatalf("%d attempts on the first page, want 50", n)
	}
	next := regexp.MustCompile(`data-load-more="#attempt-rows" href="([^"]+)"`).FindStringSubmatch(stText(r))
	if next == nil {
		t.Fatalf("no Load more:\n%s", r.Body)
	}
	r = f.stGet(t, f.owner, next[1])
	stWant(t, "Load more", r, http.StatusOK, "msg_a10", "msg_a1<")
	if n := strings.Count(string(r.Body), `<td class="nowrap"><time`); n != 10 || strings.Contains(string(r.Body), "data-load-more=") ||
		strings.Contains(string(r.Body), "msg_a11<") {
		t.Fatalf("the second page: %d attempts:\n%s", n, r.Body)
	}

	stSeeOther(t, "re-enable", f.stPost(t, f.owner, page+"/enable", nil), page+"?enabled=1")
	r = f.stGet(t, f.owner, page+"?enabled=1")
	stWant(t, "enabled", r, http.StatusOK, "The endpoint is enabled again", `<span class="badge badge-active">Enabled</span>`)
	if strings.Contains(string(r.Body), "Re-enable</button>") || strings.Contains(string(r.Body), "Disabled.") {
		t.Fatalf("an enabled endpoint still offers Re-enable:\n%s", r.Body)
	}
	if eps := stEndpoints(t, f); len(eps) != 1 || eps[0].State != "active" || eps[0].FailingSince != nil {
		t.Fatalf("after Re-enable the API lists %+v", eps)
	}
	// Again: nothing to do, nothing wrong.
	stSeeOther(t, "twice", f.stPost(t, f.owner, page+"/enable", nil), page+"?enabled=1")
	r = f.stPost(t, f.owner, "/app/settings/webhooks/"+uuid.NewString()+"/enable", nil)
	stWant(t, "unknown", r, http.StatusNotFound, "This page does not exist")
}

// TestEnableWebhookEndpointAPI: POST /api/v1/webhook-endpoints/{id}/enable turns a disabled
// endpoint back on; it hears what happens from then on, not what happened while it was disabled.
func TestEnableWebhookEndpointAPI(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) { c.WebhooksAllowPrivate = true }})
	m := h.NewMerchant(t, "Re-enabled Hooks")
	var mu sync.Mutex
	var heard []string
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Data struct {
				Code string `json:"code"`
			} `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		heard = append(heard, ev.Data.Code)
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	heardCodes := func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(heard, ",")
	}

	r := h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": receiver.URL, "events": []string{"code.delivered"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}
	id, _ := r.Map(t)["id"].(string)
	if _, err := h.App.DB.Pool().Exec(t.Context(), `UPDATE webhook_endpoints SET state = 'disabled', failing_since = now() - interval '6 days', disabled_at = now()
		WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	list := h.CreateList(t, m, map[string]any{"name": "Hooks"})
	importByHand(t, h, m, list, "test", "WHILE-DISABLED", "AFTER-ENABLED")
	handOut := func(email string) string {
		t.Helper()
		r := allocate(t, h, m, list, email, "c")
		code, _ := r.Map(t)["code"].(string)
		if r.Status != http.StatusCreated || code == "" {
			t.Fatalf("allocate: %d %s", r.Status, r.Body)
		}
		return code
	}
	whileDisabled := handOut("ada@example.com")

	r = h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints/"+id+"/enable", nil)
	var ep stEndpoint
	r.JSON(t, &ep)
	if r.Status != http.StatusOK || ep.ID != id || ep.State != "active" || ep.FailingSince != nil {
		t.Fatalf("enable: %d %s", r.Status, r.Body)
	}
	if r := h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints/"+id+"/enable", nil); r.Status != http.StatusOK || r.Map(t)["state"] != "active" {
		t.Fatalf("enable an active endpoint: %d %s", r.Status, r.Body)
	}
	for _, bad := range []string{uuid.NewString(), "not-a-uuid"} {
		if r := h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints/"+bad+"/enable", nil); r.Status != http.StatusNotFound || r.ErrorCode() != "webhook_endpoint_not_found" {
			t.Fatalf("enable %s: %d %s", bad, r.Status, r.Body)
		}
	}
	other := h.NewMerchant(t, "Someone Else")
	if r := h.Admin(t, other, http.MethodPost, "/api/v1/webhook-endpoints/"+id+"/enable", nil); r.Status != http.StatusNotFound {
		t.Fatalf("another merchant enabled it: %d %s", r.Status, r.Body)
	}

	// The next code handed out reaches the endpoint; the one handed out while it was disabled
	// never does (it is the earlier event: it would have gone first).
	afterEnabled := handOut("bob@example.com")
	apptest.Eventually(t, 30*time.Second, "the endpoint to hear the code handed out after Re-enable", func() bool {
		return strings.Contains(heardCodes(), afterEnabled)
	})
	h.Drain(t, 30*time.Second)
	if got := heardCodes(); got != afterEnabled {
		t.Fatalf("the endpoint heard %q, want only %s (handed out after it was enabled, not %s)", got, afterEnabled, whileDisabled)
	}
}

// TestSettingsRotateKeys: the owner rotates the storefront key with a grace period: the new key is
// shown once (no-store), the page says until when the old one works, and real API calls agree;
// the admin key rotated without grace stops at once. Wrong grace periods are refused beside the
// select.
func TestSettingsRotateKeys(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)
	clock := &keyClock{}
	f.h.App.Merchants.SetClock(clock.now)

	r := f.stGet(t, f.owner, "/app/settings/keys")
	stWant(t, "keys", r, http.StatusOK, "<h2>Admin API key</h2>", "<h2>Storefront key</h2>",
		`<label for="grace-storefront">Grace period: how long the old key keeps working</label>`,
		`<option value="0">None: the old key stops working at once</option>`, `<option value="3600">1 hour</option>`,
		`<option value="86400" selected>24 hours</option>`, `<option value="604800">7 days</option>`,
		`<form method="post" action="/app/settings/keys/storefront/rotate"`, ">Rotate Storefront key</button>")
	if strings.Contains(stText(r), "keeps working until") {
		t.Fatal("no key was rotated, yet the page speaks of an old key")
	}

	before := clock.now()
	r = f.stPost(t, f.owner, "/app/settings/keys/storefront/rotate", url.Values{"grace_seconds": {"3600"}})
	stWant(t, "rotated", r, http.StatusOK, "<h1>New Storefront key</h1>", "Copy this key now: it will not be shown again.", "Copy key")
	if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("the page with the key may be cached: %q", cc)
	}
	m := regexp.MustCompile(`<code id="new-key" class="wrap">(cg_store_[0-9a-f_]+)</code>`).FindStringSubmatch(stText(r))
	if m == nil {
		t.Fatalf("no key on the page:\n%s", r.Body)
	}
	newKey := m[1]
	until := regexp.MustCompile(`The old key keeps working until <time datetime="([^"]+)">([^<]+)</time>`).FindStringSubmatch(stText(r))
	if until == nil {
		t.Fatalf("the page does not say until when the old key works:\n%s", r.Body)
	}
	ends, err := time.Parse(time.RFC3339, until[1])
	if err != nil || ends.Before(before.Add(time.Hour-time.Second)) || ends.After(clock.now().Add(time.Hour)) || until[2] != ends.Format("2 Jan 2006 15:04 UTC") {
		t.Fatalf("the old key works until %q (%q), want an hour from now", until[1], until[2])
	}
	for name, key := range map[string]string{"old": f.merchant.StorefrontKey, "new": newKey} {
		if s := storefrontStatus(t, f.h, key); s != http.StatusNotFound {
			t.Fatalf("during the grace period the %s storefront key answers %d", name, s)
		}
	}
	r = f.stGet(t, f.owner, "/app/settings/keys")
	stWant(t, "keys after", r, http.StatusOK, `keeps working until <time datetime="`+until[1]+`">`)
	if strings.Contains(string(r.Body), newKey) || regexp.MustCompile(`cg_(store|admin)_[0-9a-f]{32}`).Match(r.Body) {
		t.Fatal("the keys page shows the key again")
	}

	clock.advance(time.Hour + time.Second)
	if s := storefrontStatus(t, f.h, f.merchant.StorefrontKey); s != http.StatusUnauthorized {
		t.Fatalf("after the grace period the old storefront key answers %d", s)
	}
	if s := storefrontStatus(t, f.h, newKey); s != http.StatusNotFound {
		t.Fatalf("the new storefront key answers %d", s)
	}
	if strings.Contains(stText(f.stGet(t, f.owner, "/app/settings/keys")), "keeps working until") {
		t.Fatal("the keys page still speaks of an old key past its grace period")
	}

	// No grace: the admin key stops at once.
	r = f.stPost(t, f.owner, "/app/settings/keys/admin/rotate", url.Values{"grace_seconds": {"0"}})
	stWant(t, "admin", r, http.StatusOK, "<h1>New Admin API key</h1>", "The old key stopped working at once.")
	admin := regexp.MustCompile(`(cg_admin_[0-9a-f_]+)`).FindString(stText(r))
	if s := adminStatus(t, f.h, f.merchant.APIKey); s != http.StatusUnauthorized {
		t.Fatalf("the old admin key answers %d", s)
	}
	if s := adminStatus(t, f.h, admin); s != http.StatusOK {
		t.Fatalf("the new admin key %q answers %d", admin, s)
	}

	// Inside the Shopify admin the same form works with the ID token (no cookie, no CSRF token).
	r = f.do(t, dashRequest{method: http.MethodPost, path: "/app/settings/keys/storefront/rotate", form: url.Values{"grace_seconds": {"604800"}},
		header: map[string]string{"Authorization": "Bearer " + idToken(f.shop, time.Minute, testShopifySecret), "X-Coupongate-Fragment": "1"}})
	stWant(t, "embedded", r, http.StatusOK, "<h1>New Storefront key</h1>", "The old key keeps working until")
	if r.Header.Get("Cache-Control") != "no-store" || strings.Contains(string(r.Body), "<html") {
		t.Fatalf("embedded rotation: %v\n%s", r.Header, r.Body)
	}

	// Refused grace periods, beside the select; nothing rotated.
	for _, grace := range []struct{ value, message string }{
		{"forever", "Choose how long the old key keeps working."},
		{"", "Choose how long the old key keeps working."},
		{"2592001", "Must be 0 to 2592000 seconds (30 days)."},
		{"-5", "Must be 0 to 2592000 seconds (30 days)."},
		{"99999999999999999", "Must be 0 to 2592000 seconds (30 days)."},
	} {
		r := f.stPost(t, f.owner, "/app/settings/keys/admin/rotate", url.Values{"grace_seconds": {grace.value}})
		stWant(t, "grace "+grace.value, r, http.StatusUnprocessableEntity)
		stFieldError(t, r, "grace-admin", "grace_seconds", grace.message)
	}
	if s := adminStatus(t, f.h, admin); s != http.StatusOK {
		t.Fatalf("a refused rotation changed the admin key: %d", s)
	}
	stWant(t, "unknown kind", f.stPost(t, f.owner, "/app/settings/keys/master/rotate", url.Values{"grace_seconds": {"0"}}),
		http.StatusNotFound, "No such key; the keys are admin and storefront.")
}

// TestSettingsFormsRefuseMissingCSRF: every settings form posted without the session's CSRF token,
// or with a wrong one, is refused with the 403 page and changes nothing.
func TestSettingsFormsRefuseMissingCSRF(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)
	disabled := stDisabledEndpoint(t, f, "https://down.shop.example/hooks", 1)
	forms := []struct {
		path string
		form url.Values
	}{
		{"/app/settings/alerts", url.Values{"emails": {"ops@shop.example"}}},
		{"/app/settings/webhooks", url.Values{"url": {"https://hooks.shop.example/x"}, "events": {"code.delivered"}}},
		{"/app/settings/webhooks/" + disabled.String() + "/enable", url.Values{}},
		{"/app/settings/webhooks/" + disabled.String() + "/delete", url.Values{}},
		{"/app/settings/keys/admin/rotate", url.Values{"grace_seconds": {"0"}}},
		{"/app/settings/keys/storefront/rotate", url.Values{"grace_seconds": {"0"}}},
	}
	for _, form := range forms {
		for _, token := range []string{"", "wrong-token"} {
			v := url.Values{}
			for k, vs := range form.form {
				v[k] = vs
			}
			if token != "" {
				v.Set("csrf_token", token)
			}
			r := f.do(t, dashRequest{method: http.MethodPost, path: form.path, form: v, cookies: sessionOf(f.owner)})
			stWant(t, fmt.Sprintf("%s with token %q", form.path, token), r, http.StatusForbidden, "This form is out of date")
		}
	}
	if got := stAlerts(t, f); len(got) != 0 {
		t.Fatalf("alerts changed: %v", got)
	}
	if eps := stEndpoints(t, f); len(eps) != 1 || eps[0].State != "disabled" {
		t.Fatalf("endpoints changed: %+v", eps)
	}
	if adminStatus(t, f.h, f.merchant.APIKey) != http.StatusOK || storefrontStatus(t, f.h, f.merchant.StorefrontKey) != http.StatusNotFound {
		t.Fatal("a key was rotated")
	}
}

// TestSettingsAreForOwners: staff get the 403 page on every settings page and form (with their
// own valid CSRF token), and nothing changes.
func TestSettingsAreForOwners(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)
	disabled := stDisabledEndpoint(t, f, "https://down.shop.example/hooks", 1)
	ep := "/app/settings/webhooks/" + disabled.String()
	for _, path := range []string{"/app/settings", "/app/settings/webhooks", ep, ep + "/delete", "/app/settings/keys"} {
		stWant(t, "staff GET "+path, f.stGet(t, f.staff, path), http.StatusForbidden,
			"You cannot open this page", "Only an owner of the team can open this page")
	}
	for _, post := range []struct {
		path string
		form url.Values
	}{
		{"/app/settings/alerts", url.Values{"emails": {"ops@shop.example"}}},
		{"/app/settings/webhooks", url.Values{"url": {"https://hooks.shop.example/x"}, "events": {"code.delivered"}}},
		{ep + "/enable", nil},
		{ep + "/delete", nil},
		{"/app/settings/keys/admin/rotate", url.Values{"grace_seconds": {"0"}}},
		{"/app/settings/keys/storefront/rotate", url.Values{"grace_seconds": {"0"}}},
	} {
		r := f.stPost(t, f.staff, post.path, post.form)
		stWant(t, "staff POST "+post.path, r, http.StatusForbidden, "Only an owner of the team can open this page")
		if strings.Contains(string(r.Body), "cg_admin_") || strings.Contains(string(r.Body), "cg_store_") || strings.Contains(string(r.Body), "whsec_") {
			t.Fatalf("staff got a secret from %s", post.path)
		}
	}
	if got := stAlerts(t, f); len(got) != 0 {
		t.Fatalf("alerts changed: %v", got)
	}
	if eps := stEndpoints(t, f); len(eps) != 1 || eps[0].State != "disabled" {
		t.Fatalf("endpoints changed: %+v", eps)
	}
	if adminStatus(t, f.h, f.merchant.APIKey) != http.StatusOK || storefrontStatus(t, f.h, f.merchant.StorefrontKey) != http.StatusNotFound {
		t.Fatal("a key was rotated")
	}
	// Staff do not see Settings in the navigation.
	if r := f.stGet(t, f.staff, "/app/codes"); strings.Contains(string(r.Body), `href="/app/settings"`) {
		t.Fatal("staff navigation offers Settings")
	}
}

// TestSettingsEscapeWhatPeopleTyped: a URL or an address holding <svg/onload=alert(1)> shows as
// text on every settings page.
func TestSettingsEscapeWhatPeopleTyped(t *testing.T) {
	t.Parallel()
	f := newSettingsFixture(t)
	const hostile = `<svg/onload=alert(1)>`
	escaped := `&lt;svg/onload=alert(1)&gt;`
	hook := "https://hooks.shop.example/" + hostile

	check := func(what string, r apptest.Response, status int) {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: status %d, want %d: %s", what, r.Status, status, r.Body)
		}
		if strings.Contains(string(r.Body), hostile) || strings.Contains(string(r.Body), "<svg") {
			t.Fatalf("%s: the hostile text became markup:\n%s", what, r.Body)
		}
		if !strings.Contains(string(r.Body), escaped) {
			t.Fatalf("%s: the hostile text is not shown:\n%s", what, r.Body)
		}
	}
	check("created", f.stPost(t, f.owner, "/app/settings/webhooks", url.Values{"url": {hook}, "events": {"code.redeemed"}}), http.StatusOK)
	eps := stEndpoints(t, f)
	if len(eps) != 1 || eps[0].URL != hook {
		t.Fatalf("the API lists %+v", eps)
	}
	check("the list", f.stGet(t, f.owner, "/app/settings/webhooks"), http.StatusOK)
	check("its page", f.stGet(t, f.owner, "/app/settings/webhooks/"+eps[0].ID), http.StatusOK)
	check("the question", f.stGet(t, f.owner, "/app/settings/webhooks/"+eps[0].ID+"/delete"), http.StatusOK)
	check("a refused URL kept", f.stPost(t, f.owner, "/app/settings/webhooks", url.Values{"url": {"javascript:" + hostile}, "events": {"code.redeemed"}}),
		http.StatusUnprocessableEntity)

	r := f.stPost(t, f.owner, "/app/settings/alerts", url.Values{"emails": {hostile}})
	check("a refused address", r, http.StatusUnprocessableEntity)
	stFieldError(t, r, "alert-emails", "emails", `"`+hostile+`" is not an email address.`)
}
