package api_test

import (
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/integrations/outbound"
	"github.com/coupongate/coupongate/internal/apptest"
)

// messagingStack is a Coupongate with its worker and local fakes of SMTP, Twilio and FCM.
type messagingStack struct {
	*apptest.Harness
	sink   *messagingfake.SMTPSink
	twilio *messagingfake.Twilio
	fcm    *messagingfake.FCM
}

func startMessagingStack(t *testing.T, sink messagingfake.SinkConfig) messagingStack {
	t.Helper()
	s := messagingStack{sink: messagingfake.NewSMTPSink(t, sink), twilio: messagingfake.NewTwilio(t, messagingfake.TwilioConfig{}),
		fcm: messagingfake.NewFCM(t)}
	s.Harness = apptest.Start(t, env, apptest.Options{Worker: true, Configure: func(c *config.Config) {
		c.TwilioAPIURL = s.twilio.URL()
		c.FCMAPIURL = s.fcm.URL()
		c.WebhooksAllowPrivate = true
	}})
	return s
}

func (s messagingStack) configure(t *testing.T, m apptest.Merchant) {
	t.Helper()
	host, port := s.sink.Addr()
	tw := s.twilio.Settings("+15005550006")
	for _, c := range []struct {
		channel string
		body    map[string]any
	}{
		{"email", map[string]any{"host": host, "port": port, "username": "", "password": "", "from": "Shop <codes@shop.example>", "security": "none"}},
		{"sms", map[string]any{"provider": "twilio", "account_sid": tw.AccountSID, "auth_token": tw.AuthToken, "from": "+15005550006"}},
		{"push", map[string]any{"provider": "fcm", "service_account": json.RawMessage(s.fcm.ServiceAccountJSON())}},
	} {
		if r := s.Admin(t, m, http.MethodPut, "/api/v1/channels/"+c.channel, c.body); r.Status != http.StatusOK {
			t.Fatalf("PUT channel %s: %d %s", c.channel, r.Status, r.Body)
		}
	}
}

func (s messagingStack) template(t *testing.T, m apptest.Merchant, list string, body map[string]any) string {
	t.Helper()
	r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/templates", body)
	if r.Status != http.StatusCreated {
		t.Fatalf("template: %d %s", r.Status, r.Body)
	}
	id, _ := r.Map(t)["id"].(string)
	return id
}

type deliveryState struct {
	ID       string  `json:"id"`
	Status   string  `json:"status"`
	Code     *string `json:"code"`
	Channel  string  `json:"channel"`
	Error    string  `json:"error"`
	Attempts int     `json:"attempts"`
}

func (s messagingStack) deliver(t *testing.T, m apptest.Merchant, list string, body map[string]any, want int) deliveryState {
	t.Helper()
	r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/deliveries", body)
	if r.Status != want {
		t.Fatalf("delivery: %d, want %d: %s", r.Status, want, r.Body)
	}
	var d deliveryState
	r.JSON(t, &d)
	return d
}

func (s messagingStack) waitDelivery(t *testing.T, m apptest.Merchant, list, id string, status string) deliveryState {
	t.Helper()
	var d deliveryState
	apptest.Eventually(t, 15*time.Second, "delivery "+status, func() bool {
		get(t, s.Harness, m, "/api/v1/lists/"+list+"/deliveries/"+id).JSON(t, &d)
		return d.Status == status
	})
	return d
}

// TestDeliverCodesByMessage: a merchant sets up channels and templates, and codes reach
// recipients by email, SMS and push, once each; provider refusals fail the delivery with the
// provider's reason; a list that runs out makes deliveries wait until codes arrive.
func TestDeliverCodesByMessage(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Message Shop")
	s.configure(t, m)
	if r := get(t, s.Harness, m, "/api/v1/channels/sms"); r.Status != http.StatusOK || strings.Contains(string(r.Body), s.twilio.Settings("").AuthToken) {
		t.Fatalf("GET sms channel shows its secret or fails: %d %s", r.Status, r.Body)
	}
	if r := get(t, s.Harness, m, "/api/v1/channels/push"); strings.Contains(string(r.Body), "PRIVATE KEY") {
		t.Fatalf("GET push channel shows the private key: %s", r.Body)
	}
	expires := time.Date(2031, 3, 14, 23, 30, 0, 0, time.UTC)
	list := s.CreateList(t, m, map[string]any{"name": "Spring <Sale>", "expires_at": expires.Format(time.RFC3339)})
	importByHand(t, s.Harness, m, list, "test", "SPRING-1", "SPRING-2", "SPRING-3", "A<B>&C")

	// Templates: old spellings work, unknown placeholders are refused by name.
	email := s.template(t, m, list, map[string]any{"channel": "email", "subject": "Your code {couponcode}",
		"text": "Hi <firstname>, use $code before <expirydate> ({listname}).", "html": "<p>Hi <firstname>, your code is <b><couponcode></b></p>",
		"locale": "de-DE", "time_zone": "Europe/Berlin"})
	r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/templates", map[string]any{"channel": "sms", "text": "Code: <coupon_cod>"})
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "coupon_cod") {
		t.Fatalf("unknown placeholder: %d %s", r.Status, r.Body)
	}
	sms := s.template(t, m, list, map[string]any{"channel": "sms", "text": "{firstname}, your code: {couponcode}"})
	push := s.template(t, m, list, map[string]any{"channel": "push", "title": "A gift, <firstname>", "body": "Code <couponcode>"})
	r = s.Admin(t, m, http.MethodPost, "/api/v1/templates/"+email+"/preview", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), "SAMPLE-CODE-1234") || !strings.Contains(string(r.Body), "15. März 2031") {
		t.Fatalf("preview: %d %s", r.Status, r.Body)
	}

	// Email: sent once, the code in both bodies, escaped in the HTML.
	ada := map[string]any{"recipient": map[string]any{"email": "ada@example.com", "first_name": "Ada"}, "campaign": "spring",
		"channel": "email", "template_id": email}
	d := s.deliver(t, m, list, ada, http.StatusAccepted)
	if d.Status != "queued" || d.Code == nil {
		t.Fatalf("delivery: %+v", d)
	}
	d = s.waitDelivery(t, m, list, d.ID, "sent")
	again := s.deliver(t, m, list, ada, http.StatusOK)
	if again.ID != d.ID {
		t.Fatalf("asking again made another delivery: %s vs %s", again.ID, d.ID)
	}
	s.Drain(t, 30*time.Second) // whatever asking again queued has run
	msgs := s.sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d emails, want 1", len(msgs))
	}
	got := msgs[0]
	if got.To[0] != "ada@example.com" || !strings.Contains(got.Subject, *d.Code) || !strings.Contains(got.Text, "Hi Ada, use "+*d.Code) ||
		!strings.Contains(got.Text, "15. März 2031") || !strings.Contains(got.Text, "(Spring <Sale>)") {
		t.Fatalf("email: %+v", got)
	}
	if !strings.Contains(got.HTML, "<b>"+strings.NewReplacer("<", "&lt;", ">", "&gt;", "&", "&amp;").Replace(*d.Code)+"</b>") {
		t.Fatalf("HTML body: %s", got.HTML)
	}
	detail := get(t, s.Harness, m, codePath(list, *d.Code))
	if !strings.Contains(string(detail.Body), `"channel":"email"`) {
		t.Fatalf("the code's timeline has no email delivery: %s", detail.Body)
	}

	// SMS and push.
	d = s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"phone": "+4915112345678", "first_name": "Bo"}, "channel": "sms", "template_id": sms}, http.StatusAccepted)
	d = s.waitDelivery(t, m, list, d.ID, "sent")
	if texts := s.twilio.Messages(); len(texts) != 1 || texts[0].To != "+4915112345678" || texts[0].Body != "Bo, your code: "+*d.Code {
		t.Fatalf("SMS: %+v", texts)
	}
	d = s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"push_token": "device-1", "first_name": "Cy"}, "channel": "push", "template_id": push}, http.StatusAccepted)
	d = s.waitDelivery(t, m, list, d.ID, "sent")
	if pushes := s.fcm.Messages(); len(pushes) != 1 || pushes[0].Token != "device-1" || pushes[0].Title != "A gift, Cy" || pushes[0].Body != "Code "+*d.Code {
		t.Fatalf("push: %+v", pushes)
	}

	// Refusals that will not heal fail at once with the provider's reason.
	s.twilio.Unsubscribe("+4915199999999")
	d = s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"phone": "+4915199999999"}, "channel": "sms", "template_id": sms}, http.StatusAccepted)
	d = s.waitDelivery(t, m, list, d.ID, "failed")
	if d.Attempts != 1 || !strings.Contains(d.Error, "21610") {
		t.Fatalf("unsubscribed number: %+v", d)
	}
	// The list is now out of codes: the next delivery waits, and is sent when a code arrives.
	s.fcm.Unregister("device-2")
	w := s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"email": "late@example.com"}, "channel": "email", "template_id": email}, http.StatusAccepted)
	if w.Status != "waiting" || w.Code != nil {
		t.Fatalf("delivery on an empty list: %+v", w)
	}
	waitImport(t, s.Harness, m, list, accepted(t, postImport(t, s.Harness, m, list, "more.txt", "SPRING-4\nSPRING-5")).ID)
	w = s.waitDelivery(t, m, list, w.ID, "sent")
	if w.Code == nil || !strings.HasPrefix(*w.Code, "SPRING-") {
		t.Fatalf("resumed delivery: %+v", w)
	}
	d = s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"push_token": "device-2"}, "channel": "push", "template_id": push}, http.StatusAccepted)
	d = s.waitDelivery(t, m, list, d.ID, "failed")
	if !strings.Contains(d.Error, "UNREGISTERED") {
		t.Fatalf("unregistered device: %+v", d)
	}

	// Bad requests.
	for _, tc := range []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"recipient": map[string]any{"phone": "0151 1234"}, "channel": "sms", "template_id": sms}, http.StatusUnprocessableEntity},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "sms", "template_id": email}, http.StatusUnprocessableEntity},
		{map[string]any{"recipient": map[string]any{"email": "x@example.com"}, "channel": "email", "template_id": "6f1c2a52-4c1e-4b8e-9d54-3c2b1d0e9f11"}, http.StatusNotFound},
	} {
		if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/deliveries", tc.body); r.Status != tc.want {
			t.Errorf("%v: %d %s", tc.body, r.Status, r.Body)
		}
	}
}

// TestOutgoingWebhooksAndAlerts: a merchant's endpoint hears code.delivered and code.redeemed,
// signed as Standard Webhooks do, every attempt listed; the alert address gets one email per
// stock crossing.
func TestOutgoingWebhooksAndAlerts(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Hook Shop")
	s.configure(t, m)

	var mu sync.Mutex
	var got []map[string]any
	var secret string
	fail := 1 // the first delivery is refused, to see the retry
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !outbound.Verify(secret, r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature"), body, time.Now(), 5*time.Minute) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if fail > 0 {
			fail--
			http.Error(w, "not now", http.StatusServiceUnavailable)
			return
		}
		var ev map[string]any
		_ = json.Unmarshal(body, &ev)
		ev["webhook-id"] = r.Header.Get("webhook-id")
		got = append(got, ev)
	}))
	t.Cleanup(receiver.Close)

	r := s.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": receiver.URL, "events": []string{"code.delivered", "code.redeemed", "list.exhausted"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	r.JSON(t, &ep)
	mu.Lock()
	secret = ep.Secret
	mu.Unlock()
	if !strings.HasPrefix(ep.Secret, "whsec_") {
		t.Fatalf("secret: %q", ep.Secret)
	}
	if r := get(t, s.Harness, m, "/api/v1/webhook-endpoints"); strings.Contains(string(r.Body), ep.Secret) {
		t.Fatal("the secret is shown again")
	}
	for _, bad := range []map[string]any{
		{"url": receiver.URL, "events": []string{"code.used"}},
		{"url": "ftp://example.com", "events": []string{"code.delivered"}},
	} {
		if r := s.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", bad); r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%v: %d %s", bad, r.Status, r.Body)
		}
	}
	if r := s.Admin(t, m, http.MethodPut, "/api/v1/settings/alerts", map[string]any{"emails": []string{"owner@shop.example"}}); r.Status != http.StatusOK {
		t.Fatalf("alerts: %d %s", r.Status, r.Body)
	}

	list := s.CreateList(t, m, map[string]any{"name": "Hooks"})
	importByHand(t, s.Harness, m, list, "test", "HOOK-1")
	if r := allocate(t, s.Harness, m, list, "ada@example.com", "c1"); r.Status != http.StatusCreated {
		t.Fatalf("allocate: %d %s", r.Status, r.Body)
	}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/codes/HOOK-1/redeem", map[string]any{"order_id": "till-1"}); r.Status != http.StatusOK {
		t.Fatalf("redeem: %d %s", r.Status, r.Body)
	}
	apptest.Eventually(t, time.Minute, "code.delivered, code.redeemed and list.exhausted at the endpoint", func() bool {
		mu.Lock()
		defer mu.Unlock()
		types := map[string]bool{}
		for _, ev := range got {
			types[ev["type"].(string)] = true
		}
		return types["code.delivered"] && types["code.redeemed"] && types["list.exhausted"]
	})
	mu.Lock()
	for _, ev := range got {
		data, _ := ev["data"].(map[string]any)
		if ev["type"] == "code.redeemed" && data["code"] != "HOOK-1" {
			t.Errorf("code.redeemed: %v", ev)
		}
	}
	mu.Unlock()
	// The endpoint has the events before the worker records its attempts: let those tasks finish.
	s.Drain(t, 30*time.Second)
	var attempts struct {
		Items []struct {
			EventID    string `json:"event_id"`
			StatusCode int    `json:"status_code"`
		} `json:"items"`
	}
	get(t, s.Harness, m, "/api/v1/webhook-endpoints/"+ep.ID+"/attempts").JSON(t, &attempts)
	ids := map[string][]int{}
	for _, a := range attempts.Items {
		ids[a.EventID] = append(ids[a.EventID], a.StatusCode)
	}
	retried := false
	for _, codes := range ids {
		retried = retried || (len(codes) == 2 && codes[0] == 200 && codes[1] == 503)
	}
	if !retried {
		t.Fatalf("no event was retried with the same id after the 503: %v", ids)
	}

	// The exhausted list reached the alert address, once.
	apptest.Eventually(t, 15*time.Second, "the exhausted alert email", func() bool {
		for _, msg := range s.sink.Messages() {
			if msg.To[0] == "owner@shop.example" && strings.Contains(msg.Subject, "no codes left") {
				return true
			}
		}
		return false
	})
	// Events are dispatched once: another dispatch pass, with everything it queues run, sends no
	// second alert.
	if err := s.App.Dispatcher.Dispatch(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Drain(t, 30*time.Second)
	n := 0
	for _, msg := range s.sink.Messages() {
		if strings.Contains(msg.Subject, "no codes left") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d exhausted alerts, want 1", n)
	}
}

// TestBulkDelivery sends a list's codes to a CSV of recipients: one email each, with progress;
// rows without a usable address are counted, and the job waits for codes when the list runs out.
func TestBulkDelivery(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Bulk Shop")
	s.configure(t, m)
	list := s.CreateList(t, m, map[string]any{"name": "Bulk"})
	importByHand(t, s.Harness, m, list, "test", numbered("BULK-", 4)...)
	email := s.template(t, m, list, map[string]any{"channel": "email", "subject": "Hello {firstname}", "text": "Your code: <couponcode>"})
	csv := "\ufeffEmail;First_Name\nann@example.com;Ann\nbo@example.com;Bo\nnot-an-address;X\ncy@example.com;Cy\ndi@example.com;Di\nann@example.com;Ann again\n"
	body, contentType := multipartFields(t, map[string]string{"channel": "email", "template_id": email, "campaign": "launch"}, "file", "people.csv", csv)
	r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/deliveries/bulk", Body: body, ContentType: contentType, APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("bulk: %d %s", r.Status, r.Body)
	}
	jobID, _ := r.Map(t)["id"].(string)
	type job struct {
		Status   string  `json:"status"`
		Total    int     `json:"total"`
		Sent     int     `json:"sent"`
		Waiting  int     `json:"waiting"`
		Invalid  int     `json:"invalid"`
		Progress float64 `json:"progress"`
	}
	var j job
	apptest.Eventually(t, 20*time.Second, "the job to send what it can", func() bool {
		get(t, s.Harness, m, "/api/v1/lists/"+list+"/deliveries/bulk/"+jobID).JSON(t, &j)
		return j.Status == "done" && j.Sent == 4
	})
	if j.Total != 4 || j.Invalid != 1 || j.Waiting != 0 {
		t.Fatalf("job: %+v (ann twice is one delivery; 4 codes for 4 people)", j)
	}
	msgs := s.sink.Messages()
	seen := map[string]string{}
	for _, msg := range msgs {
		if prev, dup := seen[msg.To[0]]; dup {
			t.Fatalf("%s got two emails (%q, %q)", msg.To[0], prev, msg.Text)
		}
		seen[msg.To[0]] = msg.Text
	}
	if len(seen) != 4 || !strings.Contains(seen["cy@example.com"], "BULK-") {
		t.Fatalf("emails: %v", seen)
	}
	// No fields at all.
	body, contentType = multipartFields(t, nil, "file", "p.csv", "email\nx@example.com\n")
	if r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/deliveries/bulk", Body: body, ContentType: contentType, APIKey: m.APIKey}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bulk without channel: %d %s", r.Status, r.Body)
	}
	// The file before the fields, as `curl -F file=@… -F channel=…` sends it.
	var b strings.Builder
	w := multipart.NewWriter(&b)
	f, _ := w.CreateFormFile("file", "later.csv")
	_, _ = f.Write([]byte("email,first_name\neve@example.com,Eve\n"))
	_ = w.WriteField("channel", "email")
	_ = w.WriteField("template_id", email)
	_ = w.WriteField("campaign", "launch")
	_ = w.Close()
	r = s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/deliveries/bulk", Body: strings.NewReader(b.String()),
		ContentType: w.FormDataContentType(), APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("bulk with the file first: %d %s", r.Status, r.Body)
	}
	laterID, _ := r.Map(t)["id"].(string)
	apptest.Eventually(t, 20*time.Second, "the job to read the file sent first", func() bool {
		get(t, s.Harness, m, "/api/v1/lists/"+list+"/deliveries/bulk/"+laterID).JSON(t, &j)
		return j.Total == 1 && j.Waiting == 1
	})
	if j.Status != "running" || j.Progress != 0 {
		t.Fatalf("job with the file first: %+v; want Eve's delivery waiting for a code (the four went out), the job running", j)
	}
}

// multipartFields builds a multipart body: the fields first, then one file.
func multipartFields(t testing.TB, fields map[string]string, fileField, filename, content string) (io.Reader, string) {
	t.Helper()
	var b strings.Builder
	w := multipart.NewWriter(&b)
	for _, k := range []string{"channel", "template_id", "campaign"} {
		if v, ok := fields[k]; ok {
			if err := w.WriteField(k, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	f, err := w.CreateFormFile(fileField, filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.Write([]byte(content))
	_ = w.Close()
	return strings.NewReader(b.String()), w.FormDataContentType()
}

// TestWebhookEndpointDisabledAfterDays: an endpoint that has failed every delivery for days is
// disabled at its next failure and the merchant is told by email; a transient SMTP refusal is
// retried and the message goes out once.
func TestWebhookEndpointDisabledAfterDays(t *testing.T) {
	// Not parallel: the endpoint's disabling and the retried alert email are done by whichever
	// harness's worker dispatches the merchant's events; among the package's parallel tests this
	// overran its 30 s once in three runs (cause not yet found).
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Failing Hooks")
	s.configure(t, m)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	t.Cleanup(down.Close)
	r := s.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": down.URL, "events": []string{"code.delivered"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("endpoint: %d %s", r.Status, r.Body)
	}
	id, _ := r.Map(t)["id"].(string)
	if r := s.Admin(t, m, http.MethodPut, "/api/v1/settings/alerts", map[string]any{"emails": []string{"ops@shop.example"}}); r.Status != http.StatusOK {
		t.Fatalf("alerts: %d", r.Status)
	}
	// Failing for six days, the last try two hours ago.
	if _, err := s.App.DB.Pool().Exec(t.Context(), `UPDATE webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := s.App.DB.Pool().Exec(t.Context(), `INSERT INTO webhook_attempts (merchant_id, endpoint_id, message_id, event_type, status_code, at)
		SELECT merchant_id, id, 'msg_earlier', 'code.delivered', 500, now() - interval '2 hours' FROM webhook_endpoints WHERE id = $1`, id); err != nil {
		t.Fatal(err)
	}
	s.sink.FailNext(1, 451) // the first alert email meets a transient refusal
	list := s.CreateList(t, m, map[string]any{"name": "Failing"})
	importByHand(t, s.Harness, m, list, "test", "FAIL-1", "FAIL-2")
	allocate(t, s.Harness, m, list, "ada@example.com", "c")
	apptest.Eventually(t, 30*time.Second, "the endpoint to be disabled and the merchant told", func() bool {
		var state string
		_ = s.App.DB.Pool().QueryRow(t.Context(), `SELECT state FROM webhook_endpoints WHERE id = $1`, id).Scan(&state)
		told := 0
		for _, msg := range s.sink.Messages() {
			if msg.To[0] == "ops@shop.example" && strings.Contains(msg.Subject, "webhook endpoint disabled") {
				told++
			}
		}
		return state == "disabled" && told == 1
	})
	var attempts struct {
		Items []struct {
			StatusCode int `json:"status_code"`
		} `json:"items"`
	}
	get(t, s.Harness, m, "/api/v1/webhook-endpoints/"+id+"/attempts").JSON(t, &attempts)
	if len(attempts.Items) == 0 || attempts.Items[0].StatusCode != http.StatusInternalServerError {
		t.Fatalf("attempts: %+v", attempts.Items)
	}
}

// TestPrivateWebhookEndpointRefused: unless the operator allows it, an endpoint on a loopback or
// private address is refused.
func TestPrivateWebhookEndpointRefused(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.WebhooksAllowPrivate = false }})
	m := h.NewMerchant(t, "Private Hooks")
	for _, u := range []string{"http://127.0.0.1:9/hook", "https://10.1.2.3/hook", "http://localhost/hook"} {
		r := h.Admin(t, m, http.MethodPost, "/api/v1/webhook-endpoints", map[string]any{"url": u, "events": []string{"code.redeemed"}})
		if r.Status != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d %s", u, r.Status, r.Body)
		}
	}
}
