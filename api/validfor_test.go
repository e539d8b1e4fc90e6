package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// validForList is a list as GET /api/v1/lists/{id} shows valid_for.
type validForList struct {
	ValidFor *int64 `json:"valid_for"`
}

// TestValidForIsAPositiveNumberOfSecondsOrNull: valid_for is refused at 0, below 0 and on a
// fixed list, shown as set, changed and cleared with null by PATCH.
func TestValidForIsAPositiveNumberOfSecondsOrNull(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Rules")
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"zero", map[string]any{"name": "a", "valid_for": 0}},
		{"negative", map[string]any{"name": "a", "valid_for": -60}},
		{"fixed list", map[string]any{"name": "a", "kind": "fixed", "fixed_code": "SHARED", "valid_for": 3600}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.Admin(t, m, http.MethodPost, "/api/v1/lists", tc.body)
			if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), `"field":"valid_for"`) {
				t.Fatalf("create: %d %s, want 422 naming valid_for", r.Status, r.Body)
			}
		})
	}
	list := h.CreateList(t, m, map[string]any{"name": "Hour", "valid_for": 3600})
	read := func() *int64 {
		t.Helper()
		var l validForList
		get(t, h, m, "/api/v1/lists/"+list).JSON(t, &l)
		return l.ValidFor
	}
	if v := read(); v == nil || *v != 3600 {
		t.Fatalf("valid_for after create: %v, want 3600", v)
	}
	for _, bad := range []int{0, -1} {
		if r := h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+list, map[string]any{"valid_for": bad}); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("PATCH valid_for %d: %d %s, want 422", bad, r.Status, r.Body)
		}
	}
	if r := h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+list, map[string]any{"valid_for": 7200}); r.Status != http.StatusOK {
		t.Fatalf("PATCH valid_for 7200: %d %s", r.Status, r.Body)
	}
	if v := read(); v == nil || *v != 7200 {
		t.Fatalf("valid_for after PATCH: %v, want 7200", v)
	}
	if r := h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+list, map[string]any{"name": "Renamed"}); r.Status != http.StatusOK {
		t.Fatalf("PATCH name: %d %s", r.Status, r.Body)
	}
	if v := read(); v == nil || *v != 7200 {
		t.Fatalf("valid_for after a PATCH without it: %v, want 7200 kept", v)
	}
	r := h.Admin(t, m, http.MethodPatch, "/api/v1/lists/"+list, map[string]any{"valid_for": nil})
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"valid_for":null`) {
		t.Fatalf("PATCH valid_for null: %d %s", r.Status, r.Body)
	}
	if v := read(); v != nil {
		t.Fatalf("valid_for after PATCH null: %d, want null", *v)
	}
}

// handOutTimed allocates a code of the list to email and reads the code back: the allocation's
// expires_at, and GET code's delivered_at and expires_at.
func handOutTimed(t *testing.T, h *apptest.Harness, m apptest.Merchant, list, email string) (code string, allocExpires *time.Time, c codeItem) {
	t.Helper()
	r := allocate(t, h, m, list, email, "")
	if r.Status != http.StatusCreated {
		t.Fatalf("allocate: %d %s", r.Status, r.Body)
	}
	var a struct {
		Code      string     `json:"code"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	r.JSON(t, &a)
	get(t, h, m, codePath(list, a.Code)).JSON(t, &c)
	if c.Delivered == nil {
		t.Fatalf("code %s has no delivered_at", a.Code)
	}
	return a.Code, a.ExpiresAt, c
}

func parseTime(t *testing.T, s *string) time.Time {
	t.Helper()
	if s == nil {
		t.Fatal("no time")
	}
	v, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestValidForEndsACodeAtItsBoundary: a code handed out at T from a list with valid_for 3600 is
// valid at T+3599s and expired at T+3600s; the allocation, GET code and validation all answer
// T+3600s as its expiry.
func TestValidForEndsACodeAtItsBoundary(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Boundary")
	list := h.CreateList(t, m, map[string]any{"name": "Hour", "valid_for": 3600})
	seedCodes(t, h, m, list, "HOUR", 2)
	code, allocExpires, c := handOutTimed(t, h, m, list, "ada@example.com")
	delivered := parseTime(t, c.Delivered)
	want := delivered.Add(time.Hour)
	if allocExpires == nil || !allocExpires.Equal(want) {
		t.Fatalf("allocation expires_at %v, want delivered_at + 1h = %v", allocExpires, want)
	}
	if got := parseTime(t, c.ExpiresAt); !got.Equal(want) {
		t.Fatalf("GET code expires_at %v, want %v", got, want)
	}
	var clock time.Time
	h.App.Validator.SetClock(func() time.Time { return clock })
	for _, tc := range []struct {
		at     time.Duration
		valid  bool
		reason string
	}{
		{3599 * time.Second, true, "ok"},
		{3600 * time.Second, false, "expired"},
	} {
		clock = delivered.Add(tc.at)
		r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", JSON: map[string]any{"code": code}, Storefront: m.StorefrontKey})
		var v struct {
			Valid     bool       `json:"valid"`
			Reason    string     `json:"reason"`
			ExpiresAt *time.Time `json:"expires_at"`
		}
		r.JSON(t, &v)
		if v.Valid != tc.valid || v.Reason != tc.reason || v.ExpiresAt == nil || !v.ExpiresAt.Equal(want) {
			t.Fatalf("validate at T+%v: %s, want valid=%v reason %s expires_at %v", tc.at, r.Body, tc.valid, tc.reason, want)
		}
	}
}

// TestListExpiryBeforeValidForWins: when the list ends before a code's valid_for runs out, the
// code expires with the list.
func TestListExpiryBeforeValidForWins(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Capped")
	listEnd := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	list := h.CreateList(t, m, map[string]any{"name": "Day", "valid_for": 86400, "expires_at": listEnd.Format(time.RFC3339)})
	seedCodes(t, h, m, list, "DAY", 1)
	_, allocExpires, c := handOutTimed(t, h, m, list, "ada@example.com")
	if allocExpires == nil || !allocExpires.Equal(listEnd) {
		t.Fatalf("allocation expires_at %v, want the list's %v", allocExpires, listEnd)
	}
	if got := parseTime(t, c.ExpiresAt); !got.Equal(listEnd) {
		t.Fatalf("GET code expires_at %v, want the list's %v", got, listEnd)
	}
}

// TestValidForInSearchesAndExports: a code handed out longer ago than valid_for is found by the
// expired filter and exported with delivered_at + valid_for as its expiry; a code handed out now
// is not expired, and a code never handed out has no expiry yet.
func TestValidForInSearchesAndExports(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Export")
	list := h.CreateList(t, m, map[string]any{"name": "Hour", "valid_for": 3600})
	seedCodes(t, h, m, list, "EXP", 3)
	old, _, _ := handOutTimed(t, h, m, list, "old@example.com")
	fresh, _, freshItem := handOutTimed(t, h, m, list, "new@example.com")
	// The old code was handed out two hours ago: the database's clock is what the SQL filter reads.
	if _, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE codes SET delivered_at = delivered_at - interval '2 hours'
		WHERE merchant_id = $1 AND list_id = $2 AND code = $3`, uuid.MustParse(m.ID), uuid.MustParse(list), old); err != nil {
		t.Fatal(err)
	}
	var oldItem codeItem
	get(t, h, m, codePath(list, old)).JSON(t, &oldItem)
	oldExpires := parseTime(t, oldItem.Delivered).Add(time.Hour)
	if got := parseTime(t, oldItem.ExpiresAt); !got.Equal(oldExpires) || !got.Before(time.Now()) {
		t.Fatalf("old code expires_at %v, want %v (past)", got, oldExpires)
	}
	// The dashboard's Expired filter.
	expired, _, err := h.App.Codes.Search(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(list),
		core.CodeQuery{Filter: core.FilterExpired, Page: core.Page{Limit: 50}})
	if err != nil {
		t.Fatal(err)
	}
	if len(expired) != 1 || expired[0].Code != old {
		t.Fatalf("expired filter: %+v, want only %s", expired, old)
	}
	rows := readCSV(t, get(t, h, m, "/api/v1/lists/"+list+"/export"))
	want := map[string]string{
		old:   oldExpires.UTC().Format("2006-01-02T15:04:05Z"),
		fresh: parseTime(t, freshItem.Delivered).Add(time.Hour).UTC().Format("2006-01-02T15:04:05Z"),
	}
	seen := 0
	for _, row := range rows[1:] {
		expires := row[8]
		if w, ok := want[row[0]]; ok {
			seen++
			if expires != w {
				t.Fatalf("export of %s: expires_at %q, want %q", row[0], expires, w)
			}
		} else if expires != "" {
			t.Fatalf("export of undelivered %s: expires_at %q, want empty", row[0], expires)
		}
	}
	if seen != 2 || rows[0][8] != "expires_at" {
		t.Fatalf("export: %v", rows)
	}
}

// TestTemplatePreviewShowsValidForExpiry: <expirydate> in a preview is the day a code handed out
// now stops working: now + valid_for, unless the list ends before.
func TestTemplatePreviewShowsValidForExpiry(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Preview")
	preview := func(list map[string]any) string {
		t.Helper()
		id := h.CreateList(t, m, list)
		r := h.Admin(t, m, http.MethodPost, "/api/v1/lists/"+id+"/templates", map[string]any{"channel": "sms",
			"text": "Use <couponcode> by <expirydate>", "locale": "en-US", "time_zone": "UTC"})
		if r.Status != http.StatusCreated {
			t.Fatalf("template: %d %s", r.Status, r.Body)
		}
		var tpl struct {
			ID string `json:"id"`
		}
		r.JSON(t, &tpl)
		r = h.Admin(t, m, http.MethodPost, "/api/v1/templates/"+tpl.ID+"/preview", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("preview: %d %s", r.Status, r.Body)
		}
		return string(r.Body)
	}
	before := time.Now().UTC().Add(10 * 24 * time.Hour).Format("January 2, 2006")
	body := preview(map[string]any{"name": "Ten days", "valid_for": 10 * 86400})
	after := time.Now().UTC().Add(10 * 24 * time.Hour).Format("January 2, 2006")
	if !strings.Contains(body, "by "+before) && !strings.Contains(body, "by "+after) {
		t.Fatalf("preview %s, want the expiry %s", body, before)
	}
	listEnd := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Hour)
	body = preview(map[string]any{"name": "Capped", "valid_for": 10 * 86400, "expires_at": listEnd.Format(time.RFC3339)})
	if day := listEnd.Add(-time.Nanosecond).Format("January 2, 2006"); !strings.Contains(body, "by "+day) {
		t.Fatalf("preview %s, want the list's last day %s", body, day)
	}
}

// TestValidForInSentMessages: <expirydate> in a message sent with a code of a valid_for list is
// the last day of that code: its hand-out plus valid_for.
func TestValidForInSentMessages(t *testing.T) {
	t.Parallel()
	s := startMessagingStack(t, messagingfake.SinkConfig{})
	m := s.NewMerchant(t, "Valid For Messages")
	s.configure(t, m)
	list := s.CreateList(t, m, map[string]any{"name": "Ten days", "valid_for": 10 * 86400})
	importByHand(t, s.Harness, m, list, "test", "TEN-1")
	tpl := s.template(t, m, list, map[string]any{"channel": "sms", "text": "<couponcode> until <expirydate>", "locale": "en-US", "time_zone": "UTC"})
	d := s.deliver(t, m, list, map[string]any{"recipient": map[string]any{"phone": "+15005550101"}, "channel": "sms", "template_id": tpl}, http.StatusAccepted)
	s.waitDelivery(t, m, list, d.ID, "sent")
	var c codeItem
	get(t, s.Harness, m, codePath(list, "TEN-1")).JSON(t, &c)
	want := "TEN-1 until " + parseTime(t, c.Delivered).Add(10*24*time.Hour).UTC().Format("January 2, 2006")
	for _, sms := range s.twilio.Messages() {
		if sms.To == "+15005550101" {
			if sms.Body != want {
				t.Fatalf("SMS %q, want %q", sms.Body, want)
			}
			return
		}
	}
	t.Fatal("no SMS sent")
}

// TestPaidOrderCountsAnExpiredCode: a paid order counts a code whose valid_for has run out, as it
// counts a code of an expired list: the shop took the order, and the use is recorded.
func TestPaidOrderCountsAnExpiredCode(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Orders")
	list := h.CreateList(t, m, map[string]any{"name": "Hour", "valid_for": 3600})
	seedCodes(t, h, m, list, "LATE", 1)
	code, _, _ := handOutTimed(t, h, m, list, "ada@example.com")
	if _, err := h.App.DB.Pool().Exec(context.Background(), `UPDATE codes SET delivered_at = delivered_at - interval '2 hours'
		WHERE merchant_id = $1 AND list_id = $2 AND code = $3`, uuid.MustParse(m.ID), uuid.MustParse(list), code); err != nil {
		t.Fatal(err)
	}
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/storefront/v1/validate", JSON: map[string]any{"code": code}, Storefront: m.StorefrontKey})
	if !strings.Contains(string(r.Body), `"reason":"expired"`) {
		t.Fatalf("validate: %s, want expired", r.Body)
	}
	res := order(t, h, m, "late-1", "paid", code)
	if len(res.Results) != 1 || res.Results[0].Outcome != "redeemed" {
		t.Fatalf("paid order: %+v, want the code redeemed", res)
	}
}
