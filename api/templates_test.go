package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
)

// TestTemplateChangesReachLaterMessages: a template edited after the worker sent with it sends
// the edited text next time (the worker keeps templates it read, but never an outdated one); a
// template with a message waiting for codes cannot be deleted until that message is sent; the
// list's deliveries name their recipient and template.
func TestTemplateChangesReachLaterMessages(t *testing.T) {
	// Not parallel: its waiting SMS is resumed by whichever harness's sweeper finds it first, and
	// another harness's worker sends it through its own Twilio fake (TWILIO_API_URL is the
	// process's), where this test never sees it.
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Template Shop")
	s.configure(t, m)
	list := s.CreateList(t, m, map[string]any{"name": "Edits"})
	importByHand(t, s.Harness, m, list, "test", "EDIT-1", "EDIT-2")
	tpl := s.template(t, m, list, map[string]any{"channel": "sms", "text": "First text: <couponcode>"})
	send := func(phone string) deliveryState {
		t.Helper()
		d := s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"phone": phone}, "channel": "sms", "template_id": tpl}, http.StatusAccepted)
		if d.Status == "waiting" {
			return d
		}
		return s.waitDelivery(t, m, list, d.ID, "sent")
	}
	bodyTo := func(phone string) string {
		t.Helper()
		for _, sms := range s.twilio.Messages() {
			if sms.To == phone {
				return sms.Body
			}
		}
		t.Fatalf("no SMS to %s", phone)
		return ""
	}

	first := send("+4915100000001")
	if got := bodyTo("+4915100000001"); got != "First text: "+*first.Code {
		t.Fatalf("first SMS: %q", got)
	}
	r := s.Admin(t, m, http.MethodPatch, "/api/v1/templates/"+tpl, map[string]any{"text": "Second text: <couponcode>"})
	if r.Status != http.StatusOK {
		t.Fatalf("PATCH: %d %s", r.Status, r.Body)
	}
	second := send("+4915100000002")
	if got := bodyTo("+4915100000002"); got != "Second text: "+*second.Code {
		t.Fatalf("the SMS after the edit reads %q, not the edited template", got)
	}

	// The list is out of codes: the next message waits, and keeps its template.
	waiting := send("+4915100000003")
	if waiting.Status != "waiting" {
		t.Fatalf("a third delivery of two codes: %+v", waiting)
	}
	if r := s.Admin(t, m, http.MethodDelete, "/api/v1/templates/"+tpl, nil); r.Status != http.StatusConflict || r.ErrorCode() != "template_in_use" {
		t.Fatalf("delete with a waiting message: %d %s", r.Status, r.Body)
	}
	importByHand(t, s.Harness, m, list, "test", "EDIT-3")
	s.waitDelivery(t, m, list, waiting.ID, "sent")
	if r := s.Admin(t, m, http.MethodDelete, "/api/v1/templates/"+tpl, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete once everything is sent: %d %s", r.Status, r.Body)
	}

	var page struct {
		Items []struct {
			ID         string            `json:"id"`
			Status     string            `json:"status"`
			TemplateID string            `json:"template_id"`
			Recipient  map[string]string `json:"recipient"`
		} `json:"items"`
	}
	get(t, s.Harness, m, "/api/v1/lists/"+list+"/deliveries").JSON(t, &page)
	var got []string
	for _, d := range page.Items {
		if d.TemplateID != tpl || d.Status != "sent" {
			t.Errorf("delivery %+v", d)
		}
		got = append(got, d.Recipient["phone"])
	}
	if strings.Join(got, " ") != "+4915100000003 +4915100000002 +4915100000001" {
		t.Errorf("deliveries newest first: %v", got)
	}
	if n := len(s.twilio.Messages()); n != 3 {
		t.Errorf("%d SMS sent, want 3", n)
	}
}
