package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestBulkDeliveryUnstorableRows: rows of a bulk CSV holding a NUL or bytes that are not UTF-8 in
// a column the job reads are refused, their lines named in the job's error; the job finishes and
// the other rows get their codes. A NUL in a column the job does not read is no reason to refuse.
func TestBulkDeliveryUnstorableRows(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Bulk NUL Shop")
	s.configure(t, m)
	list := s.CreateList(t, m, map[string]any{"name": "Bulk NUL"})
	importByHand(t, s.Harness, m, list, "test", numbered("NUL-", 6)...)
	email := s.template(t, m, list, map[string]any{"channel": "email", "subject": "Hi {firstname}", "text": "Your code: <couponcode>"})
	csv := "email,first_name,notes\n" +
		"ann@example.com,Ann,\n" + // line 2
		"bo\x00b@example.com,Bob,\n" + // line 3: NUL in the address
		"cy@example.com,C\x00y,\n" + // line 4: NUL in the name
		"di@example.com,Di,\x00\n" + // line 5: NUL in a column the job does not read
		"ed@example.com,Ed\xff,\n" // line 6: not UTF-8
	body, contentType := multipartFields(t, map[string]string{"channel": "email", "template_id": email, "campaign": "nul"}, "file", "people.csv", csv)
	r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/deliveries/bulk", Body: body, ContentType: contentType, APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("bulk: %d %s", r.Status, r.Body)
	}
	jobID, _ := r.Map(t)["id"].(string)
	var j struct {
		Status  string `json:"status"`
		Total   int    `json:"total"`
		Sent    int    `json:"sent"`
		Invalid int    `json:"invalid"`
		Error   string `json:"error"`
	}
	apptest.Eventually(t, 20*time.Second, "the job to finish", func() bool {
		get(t, s.Harness, m, "/api/v1/lists/"+list+"/deliveries/bulk/"+jobID).JSON(t, &j)
		return j.Status == "done" && j.Sent == 2
	})
	if j.Total != 2 || j.Invalid != 3 || !strings.HasSuffix(j.Error, "on lines 3, 4, 6") {
		t.Fatalf("job %+v: want 2 sent, 3 refused and lines 3, 4, 6 named", j)
	}
	var to []string
	for _, msg := range s.sink.Messages() {
		to = append(to, msg.To...)
	}
	slices.Sort(to)
	if !slices.Equal(to, []string{"ann@example.com", "di@example.com"}) {
		t.Fatalf("emails to %v, want ann and di", to)
	}
}
