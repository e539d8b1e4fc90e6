package api_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestBulkJobIsDoneWhenEveryDeliveryIs: a bulk job whose file is read but whose deliveries are
// still queued reads running, not done, whatever share is sent; it reads done, with progress 1,
// once the last delivery is sent. The job and the sends are run by hand (no worker), so each
// state is seen for certain.
func TestBulkJobIsDoneWhenEveryDeliveryIs(t *testing.T) {
	t.Parallel()
	s := messagingStack{sink: messagingfake.NewSMTPSink(t, messagingfake.SinkConfig{}),
		twilio: messagingfake.NewTwilio(t, messagingfake.TwilioConfig{}), fcm: messagingfake.NewFCM(t)}
	s.Harness = apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) {
		c.TwilioAPIURL = s.twilio.URL()
		c.FCMAPIURL = s.fcm.URL()
	}})
	m := s.NewMerchant(t, "Progress Shop")
	s.configure(t, m)
	list := s.CreateList(t, m, map[string]any{"name": "Progress"})
	importByHand(t, s.Harness, m, list, "test", numbered("PROG-", 3)...)
	email := s.template(t, m, list, map[string]any{"channel": "email", "subject": "Hi", "text": "Your code: <couponcode>"})
	body, contentType := multipartFields(t, map[string]string{"channel": "email", "template_id": email, "campaign": "progress"},
		"file", "people.csv", "email\nann@example.com\nbo@example.com\ncy@example.com\n")
	r := s.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/deliveries/bulk", Body: body, ContentType: contentType, APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("bulk: %d %s", r.Status, r.Body)
	}
	jobID, _ := r.Map(t)["id"].(string)
	ctx := context.Background()
	mid := uuid.MustParse(m.ID)
	if err := s.App.Worker.Jobs.Run(ctx, mid, uuid.MustParse(jobID)); err != nil {
		t.Fatalf("run the job: %v", err)
	}
	type job struct {
		Status   string  `json:"status"`
		Total    int     `json:"total"`
		Queued   int     `json:"queued"`
		Sent     int     `json:"sent"`
		Progress float64 `json:"progress"`
	}
	read := func(t *testing.T) job {
		t.Helper()
		var j job
		get(t, s.Harness, m, "/api/v1/lists/"+list+"/deliveries/bulk/"+jobID).JSON(t, &j)
		return j
	}
	if j := read(t); j.Status != "running" || j.Total != 3 || j.Queued != 3 || j.Progress != 0 {
		t.Fatalf("file read, nothing sent: %+v; want running at progress 0", j)
	}
	rows, err := s.App.DB.Pool().Query(ctx, `SELECT id FROM deliveries WHERE job_id = $1 ORDER BY id`, jobID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 3 {
		t.Fatalf("%d deliveries, want 3", len(ids))
	}
	for i, id := range ids {
		if err := s.App.Sends.Send(ctx, mid, id, false); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		j := read(t)
		if j.Sent != i+1 {
			t.Fatalf("after %d sends: %+v", i+1, j)
		}
		if last := i == len(ids)-1; last && (j.Status != "done" || j.Progress != 1) {
			t.Fatalf("every delivery sent: %+v; want done at progress 1", j)
		} else if !last && (j.Status != "running" || j.Progress >= 1) {
			t.Fatalf("%d of 3 sent: %+v; want running", i+1, j)
		}
	}
}
