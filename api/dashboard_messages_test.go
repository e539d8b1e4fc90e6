package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// The Messages pages (api/dashboard_messages.go), over HTTP as a browser without JavaScript uses
// them.

// storedSecret is the channel's stored settings, secrets included, as the store opens them.
func storedSecret(t *testing.T, h *apptest.Harness, m apptest.Merchant, ch core.Channel) map[string]any {
	t.Helper()
	cfg, err := h.App.DB.GetChannel(context.Background(), uuid.MustParse(m.ID), ch)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(cfg.Secret, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMessagePagesChannelSecretsNeverShown: an owner sets up email, SMS and push through the
// forms (refusals beside the fields), changes the settings leaving the secret fields empty (the
// stored secrets stay), removes the SMTP password, and sends test messages that reach the
// providers' fakes, or say why not; no page ever holds a secret, not after saving and not when a
// form comes back with errors.
func TestMessagePagesChannelSecretsNeverShown(t *testing.T) {
	t.Parallel()
	const smtpPassword = "smtp-password-never-shown-7f3a"
	s := startMessagingStack(t, messagingfake.SinkConfig{Username: "codes", Password: smtpPassword})
	m := s.NewMerchant(t, "Channel Pages")
	b := lpSignIn(t, s.Harness, m, "owner@example.com", core.RoleOwner)
	host, port := s.sink.Addr()
	tw := s.twilio.Settings(messagingfake.DefaultTwilioFrom)
	var sa struct {
		PrivateKey   string `json:"private_key"`
		PrivateKeyID string `json:"private_key_id"`
	}
	if err := json.Unmarshal(s.fcm.ServiceAccountJSON(), &sa); err != nil {
		t.Fatal(err)
	}
	keyLine := strings.Split(strings.TrimSpace(sa.PrivateKey), "\n")[1]
	secrets := []string{smtpPassword, tw.AuthToken, "PRIVATE KEY", keyLine}
	if sa.PrivateKeyID != "" {
		secrets = append(secrets, sa.PrivateKeyID)
	}
	noSecret := func(what string, r apptest.Response) {
		t.Helper()
		for _, secret := range secrets {
			if strings.Contains(string(r.Body), secret) || strings.Contains(lpPage(r), secret) {
				t.Errorf("%s holds the secret %q", what, secret)
			}
		}
	}

	lpWant(t, "no channel", b.get(t, "/app/messages"), http.StatusOK, "Set up Email", "Set up SMS", "Set up Push", "Not set up")

	// Email: refusals beside the fields, then saved.
	emailForm := func(port, from, password string) url.Values {
		return url.Values{"host": {host}, "port": {port}, "security": {"none"}, "username": {"codes"}, "password": {password}, "from": {from}}
	}
	r := b.post(t, "/app/messages/channels/email", emailForm("smtp", "Shop <codes@shop.example>", smtpPassword))
	lpWant(t, "a port that is not a number", r, http.StatusUnprocessableEntity)
	lpFieldError(t, r, "email-port", "port", "Enter the SMTP server's port, from 1 to 65535 (usually 587, or 465 for TLS).")
	noSecret("the email form refused", r)
	r = b.post(t, "/app/messages/channels/email", emailForm(strconv.Itoa(port), "nobody", smtpPassword))
	lpFieldError(t, r, "email-from", "from", `Enter the sender, such as "Shop <codes@shop.example>".`)
	noSecret("the email form refused", r)
	if loc := lpLocation(t, b.post(t, "/app/messages/channels/email", emailForm(strconv.Itoa(port), "Shop <codes@shop.example>", smtpPassword))); loc != "/app/messages/channels/email?saved=1" {
		t.Fatalf("saved, then to %q", loc)
	}
	r = b.get(t, "/app/messages/channels/email?saved=1")
	lpWant(t, "email saved", r, http.StatusOK, "The Email settings are saved", "A password is set. Leave this empty to keep it.",
		`value="`+host+`"`, `value="codes"`, "Remove the stored password")
	noSecret("the email settings", r)

	// Saved again with the password left empty: the stored password stays.
	lpLocation(t, b.post(t, "/app/messages/channels/email", emailForm(strconv.Itoa(port), "Shop <offers@shop.example>", "")))
	if got := storedSecret(t, s.Harness, m, core.ChannelEmail); got["password"] != smtpPassword || got["from"] != "Shop <offers@shop.example>" {
		t.Fatalf("after a save without the password: %v", got)
	}

	// SMS and push.
	r = b.post(t, "/app/messages/channels/sms", url.Values{"account_sid": {"AC1"}, "auth_token": {tw.AuthToken}, "sms_from": {"0151"}})
	lpFieldError(t, r, "sms-account-sid", "account_sid", "Enter your Twilio account SID: AC followed by 32 letters and digits.")
	noSecret("the SMS form refused", r)
	lpLocation(t, b.post(t, "/app/messages/channels/sms", url.Values{"account_sid": {tw.AccountSID}, "auth_token": {tw.AuthToken},
		"sms_from": {messagingfake.DefaultTwilioFrom}}))
	r = b.post(t, "/app/messages/channels/push", url.Values{"service_account": {`{"type": "user"}`}})
	lpFieldError(t, r, "push-service-account", "service_account",
		"Paste the service account's JSON key file from the Firebase console (Project settings → Service accounts).")
	noSecret("the push form refused", r)
	lpLocation(t, b.post(t, "/app/messages/channels/push", url.Values{"service_account": {string(s.fcm.ServiceAccountJSON())}}))
	lpLocation(t, b.post(t, "/app/messages/channels/sms", url.Values{"account_sid": {tw.AccountSID}, "auth_token": {""},
		"sms_from": {messagingfake.DefaultTwilioFrom}}))
	lpLocation(t, b.post(t, "/app/messages/channels/push", url.Values{"service_account": {""}}))
	if got := storedSecret(t, s.Harness, m, core.ChannelSMS); got["auth_token"] != tw.AuthToken {
		t.Fatalf("the auth token after a save without it: %v", got)
	}
	if got := storedSecret(t, s.Harness, m, core.ChannelPush); got["service_account"] == nil {
		t.Fatal("the service account went with a save without it")
	}
	for _, path := range []string{"/app/messages", "/app/messages/channels/email", "/app/messages/channels/sms", "/app/messages/channels/push"} {
		r := b.get(t, path)
		lpWant(t, path, r, http.StatusOK)
		noSecret(path, r)
	}
	lpWant(t, "sms set", b.get(t, "/app/messages/channels/sms"), http.StatusOK, "An auth token is set. Leave this empty to keep it.", `value="`+tw.AccountSID+`"`)
	lpWant(t, "push set", b.get(t, "/app/messages/channels/push"), http.StatusOK, "A service account key is set. Leave this empty to keep it.")
	lpWant(t, "all set", b.get(t, "/app/messages"), http.StatusOK, "Edit Email settings", "Edit SMS settings", "Edit Push settings",
		"Shop <offers@shop.example> through "+host, "Twilio, from "+messagingfake.DefaultTwilioFrom)

	// Send test: each reaches its provider; a bad address is refused beside the field; a refusal
	// of the provider is said.
	r = b.post(t, "/app/messages/channels/email/test", url.Values{"to": {"ada@example.com"}})
	lpWant(t, "email test", r, http.StatusOK, "The test message went to ada@example.com. The provider took it")
	noSecret("the email test", r)
	if msgs := s.sink.Messages(); len(msgs) != 1 || msgs[0].Subject != "Coupongate test message" || msgs[0].To[0] != "ada@example.com" || msgs[0].AuthUser != "codes" {
		t.Fatalf("the test email: %+v", msgs)
	}
	r = b.post(t, "/app/messages/channels/sms/test", url.Values{"to": {"+4915112345678"}})
	lpWant(t, "sms test", r, http.StatusOK, "The test message went to +4915112345678.")
	if sms := s.twilio.Messages(); len(sms) != 1 || sms[0].To != "+4915112345678" || !strings.Contains(sms[0].Body, "Coupongate test message") {
		t.Fatalf("the test SMS: %+v", sms)
	}
	lpWant(t, "push test", b.post(t, "/app/messages/channels/push/test", url.Values{"to": {"device-token-1"}}), http.StatusOK,
		"The test message went to device-token-1.")
	if pushes := s.fcm.Messages(); len(pushes) != 1 || pushes[0].Token != "device-token-1" || pushes[0].Title != "Coupongate test message" {
		t.Fatalf("the test push: %+v", pushes)
	}
	r = b.post(t, "/app/messages/channels/sms/test", url.Values{"to": {"0151 1234"}})
	lpWant(t, "a number that is not one", r, http.StatusUnprocessableEntity, `value="0151 1234"`)
	lpFieldError(t, r, "test-to", "to", "A phone number in E.164 form (+4915112345678) is required for the sms channel.")
	s.twilio.Unsubscribe("+4915100000009")
	lpWant(t, "a refused number", b.post(t, "/app/messages/channels/sms/test", url.Values{"to": {"+4915100000009"}}),
		http.StatusUnprocessableEntity, "The test message was not sent:")

	// The password removed: the page says so, and the server is called without it.
	lpLocation(t, b.post(t, "/app/messages/channels/email", url.Values{"host": {host}, "port": {strconv.Itoa(port)}, "security": {"none"},
		"from": {"Shop <codes@shop.example>"}, "remove_password": {"1"}}))
	if got := storedSecret(t, s.Harness, m, core.ChannelEmail); got["password"] != nil && got["password"] != "" {
		t.Fatalf("the password was not removed: %v", got)
	}
	lpWant(t, "no password", b.get(t, "/app/messages/channels/email"), http.StatusOK, "No password is set.")
	lpWant(t, "a test the server refuses", b.post(t, "/app/messages/channels/email/test", url.Values{"to": {"ada@example.com"}}),
		http.StatusUnprocessableEntity, "The test message was not sent:")

	// A merchant without the channel is told to save it first.
	other := lpSignIn(t, s.Harness, s.NewMerchant(t, "No Channels"), "owner@example.com", core.RoleOwner)
	lpWant(t, "test without settings", other.post(t, "/app/messages/channels/email/test", url.Values{"to": {"ada@example.com"}}),
		http.StatusConflict, "Save the email settings first")
	lpWant(t, "not a channel", other.get(t, "/app/messages/channels/fax"), http.StatusNotFound)
}

// TestMessagePagesTemplatesAndSends: an owner writes a template (an unknown placeholder refused
// beside its part, the preview with the sample code and what was typed shown as text, the
// placeholders listed beside the editor), edits it, sends one code and a CSV of recipients and
// watches both finish, finds them among the list's deliveries and bulk sends, and deletes a
// template (refused while a message waits for codes).
func TestMessagePagesTemplatesAndSends(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Template Pages")
	s.configure(t, m)
	b := lpSignIn(t, s.Harness, m, "owner@example.com", core.RoleOwner)
	hostile := "<svg/onload=alert(1)>"
	list := s.CreateList(t, m, map[string]any{"name": hostile + " spring", "expires_at": "2031-03-14T23:30:00Z"})
	importByHand(t, s.Harness, m, list, "test", "PAGE-1", "PAGE-2", "PAGE-3")
	base := "/app/messages/lists/" + list

	r := b.get(t, base)
	lpWant(t, "no template", r, http.StatusOK, "No template yet", "New email template", "New SMS template", "New push template")
	if strings.Contains(string(r.Body), hostile) {
		t.Error("the list's name is not escaped")
	}
	r = b.get(t, base+"/templates/new?channel=email")
	lpWant(t, "the editor", r, http.StatusOK, "New Email template", `<label for="tpl-subject">Subject</label>`, "Placeholders")
	for _, name := range core.Placeholders() {
		if !strings.Contains(lpPage(r), "<code><"+name+"></code>") {
			t.Errorf("the placeholder <%s> is not listed beside the editor", name)
		}
	}

	form := url.Values{"channel": {"email"}, "subject": {"Your code {couponcode}"}, "html": {""}, "locale": {"en-GB"}, "time_zone": {"Europe/London"},
		"text": {"Hi <firstname>, your code is <couponcode> until <expirydate>. <coupon_cod> {frist_name}"}}
	r = b.post(t, base+"/templates/new", form)
	lpWant(t, "unknown placeholders", r, http.StatusUnprocessableEntity, `value="Your code {couponcode}"`)
	lpFieldError(t, r, "tpl-text", "text", `Unknown placeholders "<coupon_cod>", "{frist_name}". The placeholders you can use are listed beside the editor.`)
	form.Set("text", "Hi <firstname>, your code is <couponcode> until <expirydate>. <script>alert(1)</script>")
	form.Set("action", "preview")
	r = b.post(t, base+"/templates/new", form)
	lpWant(t, "the preview", r, http.StatusOK, "Hi Ada, your code is SAMPLE-CODE-1234 until 14 March 2031. <script>alert(1)</script>", "Your code SAMPLE-CODE-1234")
	if body := string(r.Body); strings.Contains(body, "<script>alert(1)") || !strings.Contains(body, "SAMPLE-CODE-1234 until 14 March 2031. &lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("the preview does not show what the template says as text")
	}
	if n, _ := s.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+"/templates", nil).Map(t)["items"].([]any); len(n) != 0 {
		t.Fatalf("the preview saved a template: %v", n)
	}
	form.Set("action", "save")
	loc := lpLocation(t, b.post(t, base+"/templates/new", form))
	m2 := regexp.MustCompile(`^` + base + `/templates/([0-9a-f-]{36})\?saved=1$`).FindStringSubmatch(loc)
	if m2 == nil {
		t.Fatalf("saved, then to %q", loc)
	}
	emailTpl := m2[1]
	lpWant(t, "the saved template", b.get(t, loc), http.StatusOK, "The template is saved", "Preview", "Your code SAMPLE-CODE-1234")
	form.Set("subject", "Your spring code {couponcode}")
	lpLocation(t, b.post(t, base+"/templates/"+emailTpl, form))
	lpWant(t, "the edited template", b.get(t, base+"/templates/"+emailTpl), http.StatusOK, "Your spring code SAMPLE-CODE-1234",
		`value="Your spring code {couponcode}"`)
	form.Set("subject", "Line\u0007break")
	r = b.post(t, base+"/templates/"+emailTpl, form)
	lpFieldError(t, r, "tpl-subject", "subject", "The subject must not contain control characters (U+0007).")

	// An SMS template, through the API, and one to delete.
	smsTpl := s.template(t, m, list, map[string]any{"channel": "sms", "text": "Code <couponcode>"})
	spare := s.template(t, m, list, map[string]any{"channel": "push", "title": "Gift", "body": "<couponcode>"})
	lpWant(t, "the templates", b.get(t, base), http.StatusOK, "Email: Your spring code {couponcode}", "SMS: Code <couponcode>", "Send one code", "Bulk send")

	// Send one code: the recipient the template's channel needs, beside the field.
	r = b.post(t, base+"/send", url.Values{"template_id": {smsTpl}, "email": {"ada@example.com"}})
	lpFieldError(t, r, "send-phone", "phone", "Enter the recipient's phone number in international form, such as +4915112345678: the template is an SMS.")
	r = b.post(t, base+"/send", url.Values{"template_id": {""}, "email": {"ada@example.com"}})
	lpFieldError(t, r, "send-template", "template_id", "Choose the template of the message.")
	loc = lpLocation(t, b.post(t, base+"/send", url.Values{"template_id": {emailTpl}, "email": {"ada@example.com"}, "first_name": {hostile}}))
	if !strings.HasPrefix(loc, base+"/deliveries/") {
		t.Fatalf("sent, then to %q", loc)
	}
	var page string
	apptest.Eventually(t, 20*time.Second, "the delivery to be sent", func() bool {
		page = lpPage(b.get(t, loc))
		return strings.Contains(page, `<span class="badge badge-success">Sent</span>`) && !strings.Contains(page, "data-poll=")
	})
	for _, want := range []string{"Email to ada@example.com", "PAGE-", "Email: Your spring code {couponcode}", hostile} {
		if !strings.Contains(page, want) {
			t.Errorf("the sent delivery's page does not read %q", want)
		}
	}
	if raw := string(b.get(t, loc).Body); strings.Contains(raw, hostile) {
		t.Error("the recipient's name is not escaped on the delivery's page")
	}
	if msgs := s.sink.Messages(); len(msgs) != 1 || !strings.HasPrefix(msgs[0].Subject, "Your spring code PAGE-") {
		t.Fatalf("the email sent: %+v", msgs)
	}

	// Bulk send: no file, then a CSV.
	body, ct := multipartFields(t, map[string]string{"template_id": emailTpl, "campaign": "launch"}, "file", "", "")
	r = b.do(t, apptest.Request{Method: http.MethodPost, Path: base + "/bulk?csrf_token=" + url.QueryEscape(b.csrf), Body: body, ContentType: ct})
	lpWant(t, "bulk without a file", r, http.StatusUnprocessableEntity)
	lpFieldError(t, r, "bulk-file", "file", "Choose a CSV file of recipients.")
	body, ct = multipartFields(t, map[string]string{"template_id": emailTpl, "campaign": "launch"}, "file", "people.csv",
		"email,first_name\nbo@example.com,Bo\ncy@example.com,Cy\nnot-an-address,X\n")
	loc = lpLocation(t, b.do(t, apptest.Request{Method: http.MethodPost, Path: base + "/bulk?csrf_token=" + url.QueryEscape(b.csrf), Body: body, ContentType: ct}))
	if !strings.HasPrefix(loc, base+"/bulk/") {
		t.Fatalf("bulk, then to %q", loc)
	}
	apptest.Eventually(t, 20*time.Second, "the bulk send to finish", func() bool {
		page = lpPage(b.get(t, loc))
		return strings.Contains(page, `<span class="badge badge-success">Done</span>`) && !strings.Contains(page, "data-poll=")
	})
	for _, want := range []string{"<dt>Sent</dt><dd>2</dd>", "<dt>Failed</dt><dd>0</dd>", "<dt>Waiting</dt><dd>0</dd>", "<dt>Rows refused</dt><dd>1</dd>", "Email messages for launch"} {
		if !strings.Contains(page, want) {
			t.Errorf("the finished bulk send does not read %q:\n%s", want, page)
		}
	}
	lpWant(t, "the deliveries", b.get(t, base+"/deliveries"), http.StatusOK, "cy@example.com", "bo@example.com", "ada@example.com")
	lpWant(t, "the bulk sends", b.get(t, base+"/bulk"), http.StatusOK, "launch", `<span class="badge badge-success">Done</span>`)

	// The list is out of codes: an SMS waits, and its template cannot be deleted.
	loc = lpLocation(t, b.post(t, base+"/send", url.Values{"template_id": {smsTpl}, "phone": {"+4915100000001"}}))
	lpWant(t, "a waiting delivery", b.get(t, loc), http.StatusOK, "Waiting for codes", "The list has no code left", `data-poll-interval="5000"`)
	r = b.post(t, base+"/templates/"+smsTpl+"/delete", nil)
	lpWant(t, "delete a template in use", r, http.StatusConflict, "This template cannot be deleted yet")
	if loc := lpLocation(t, b.post(t, base+"/templates/"+spare+"/delete", nil)); loc != base+"?deleted=1" {
		t.Fatalf("deleted, then to %q", loc)
	}
	r = b.get(t, base+"?deleted=1")
	lpWant(t, "deleted", r, http.StatusOK, "The template is deleted")
	if strings.Contains(string(r.Body), spare) {
		t.Error("the deleted template is still listed")
	}
	lpWant(t, "a deleted template", b.get(t, base+"/templates/"+spare), http.StatusNotFound)
	lpWant(t, "another list's template", b.get(t, "/app/messages/lists/"+s.CreateList(t, m, map[string]any{"name": "Other"})+"/templates/"+emailTpl), http.StatusNotFound)
}

// TestShopAndMessageFormsRefuseWithoutCSRF: every form of the Shops and Messages pages is
// refused without the session's CSRF token, or with a wrong one, and changes nothing.
func TestShopAndMessageFormsRefuseWithoutCSRF(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Guarded Messages")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	list := h.CreateList(t, m, map[string]any{"name": "Guarded"})
	importByHand(t, h, m, list, "test", "GUARD-1")
	tpl := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/templates", map[string]any{"channel": "sms", "text": "<couponcode>"}).Map(t)["id"].(string)
	conn := connectShop(t, h, m.ID, testShop("guarded")).String()
	base := "/app/messages/lists/" + list
	forms := []struct {
		path string
		form url.Values
	}{
		{"/app/shops/woocommerce/authorize", url.Values{"site_url": {"https://shop.example.com"}}},
		{"/app/shops/woocommerce/keys", url.Values{"site_url": {"https://shop.example.com"}, "consumer_key": {"ck_x"}, "consumer_secret": {"cs_x"}}},
		{"/app/shops/" + conn + "/push", url.Values{"list_id": {list}, "title": {"Sneaky"}, "value_type": {"percentage"}, "value": {"10"}}},
		{"/app/shops/" + conn + "/reconcile", nil},
		{"/app/shops/" + conn + "/disconnect", nil},
		{"/app/messages/channels/email", url.Values{"host": {"smtp.example.com"}, "port": {"587"}, "from": {"a@example.com"}}},
		{"/app/messages/channels/sms/test", url.Values{"to": {"+4915112345678"}}},
		{base + "/templates/new", url.Values{"channel": {"sms"}, "text": {"Sneaky <couponcode>"}}},
		{base + "/templates/" + tpl, url.Values{"text": {"Changed <couponcode>"}}},
		{base + "/templates/" + tpl + "/delete", nil},
		{base + "/send", url.Values{"template_id": {tpl}, "phone": {"+4915112345678"}}},
	}
	for _, f := range forms {
		for _, token := range []string{"", "wrong-token"} {
			form := url.Values{}
			for k, v := range f.form {
				form[k] = v
			}
			if token != "" {
				form.Set("csrf_token", token)
			}
			lpWant(t, "POST "+f.path+" with token "+token, b.postRaw(t, f.path, form), http.StatusForbidden,
				"This form is out of date or did not come from this dashboard, so nothing was changed.")
		}
	}
	body, ct := multipartFields(t, map[string]string{"template_id": tpl}, "file", "people.csv", "phone\n+4915112345678\n")
	lpWant(t, "bulk upload with a wrong token", b.do(t, apptest.Request{Method: http.MethodPost, Path: base + "/bulk?csrf_token=nope", Body: body, ContentType: ct}),
		http.StatusForbidden)

	var page struct {
		Items []map[string]any `json:"items"`
	}
	h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+"/templates", nil).JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0]["text"] != "<couponcode>" {
		t.Errorf("refused forms changed the templates: %v", page.Items)
	}
	for _, path := range []string{"/api/v1/lists/" + list + "/deliveries", "/api/v1/lists/" + list + "/deliveries/bulk", "/api/v1/lists/" + list + "/connections"} {
		h.Admin(t, m, http.MethodGet, path, nil).JSON(t, &page)
		if len(page.Items) != 0 {
			t.Errorf("refused forms made %s: %v", path, page.Items)
		}
	}
	if r := h.Admin(t, m, http.MethodGet, "/api/v1/channels/email", nil); r.Status != http.StatusNotFound {
		t.Errorf("a refused form saved the email channel: %d %s", r.Status, r.Body)
	}
	if c, err := h.App.Connections.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(conn)); err != nil || c.State != core.ConnectionActive {
		t.Errorf("a refused form disconnected the shop: %+v %v", c, err)
	}
}

// TestShopAndMessagePagesAreForOwners: staff get the 403 page on every Shops and Messages page
// and form.
func TestShopAndMessagePagesAreForOwners(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Owners Only Messages")
	staff := lpSignIn(t, h, m, "staff@example.com", core.RoleStaff)
	list := h.CreateList(t, m, map[string]any{"name": "Owners only"})
	tpl := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/templates", map[string]any{"channel": "sms", "text": "<couponcode>"}).Map(t)["id"].(string)
	conn := connectShop(t, h, m.ID, testShop("owners")).String()
	base := "/app/messages/lists/" + list
	for _, path := range []string{"/app/shops", "/app/shops/" + conn, "/app/shops/" + conn + "/pushes/" + list, "/app/shops/" + conn + "/disconnect",
		"/app/messages", "/app/messages/channels/email", base, base + "/templates/new?channel=sms", base + "/templates/" + tpl,
		base + "/deliveries", base + "/deliveries/" + uuid.NewString(), base + "/bulk", base + "/bulk/" + uuid.NewString()} {
		lpWant(t, "staff GET "+path, staff.get(t, path), http.StatusForbidden, "You cannot open this page")
	}
	for _, path := range []string{"/app/shops/woocommerce/authorize", "/app/shops/woocommerce/keys", "/app/shops/" + conn + "/push",
		"/app/shops/" + conn + "/reconcile", "/app/shops/" + conn + "/disconnect", "/app/messages/channels/email", "/app/messages/channels/email/test",
		base + "/templates/new", base + "/templates/" + tpl, base + "/templates/" + tpl + "/delete", base + "/send", base + "/bulk"} {
		lpWant(t, "staff POST "+path, staff.post(t, path, url.Values{"to": {"a@example.com"}, "text": {"x"}}), http.StatusForbidden)
	}
	if c, err := h.App.Connections.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(conn)); err != nil || c.State != core.ConnectionActive {
		t.Errorf("staff changed the shop: %+v %v", c, err)
	}
	if _, err := h.App.Templates.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(tpl)); err != nil {
		t.Errorf("staff deleted the template: %v", err)
	}
}
