package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
	"github.com/coupongate/coupongate/internal/apptest"
)

// storeHoldsExactly fails unless the store's coupons are exactly codes (lower-cased, as
// WooCommerce keeps them), each once, published, with the push's tag; it returns each code's
// coupon id.
func storeHoldsExactly(t *testing.T, fake *woofake.Fake, codes []string, tag string) map[string]int64 {
	t.Helper()
	ids := map[string]int64{}
	for _, c := range fake.Coupons() {
		if _, twice := ids[c.Code]; twice || c.Status != "publish" {
			t.Fatalf("coupon %s: twice %v, status %s", c.Code, twice, c.Status)
		}
		ids[c.Code] = c.ID
		v, ok := "", false
		for _, md := range c.MetaData {
			if md.Key == woocommerce.PushTagKey {
				v, ok = md.Value, true
			}
		}
		if !ok || v != tag {
			t.Fatalf("coupon %s without the push's tag: %+v", c.Code, c.MetaData)
		}
	}
	for _, c := range codes {
		if _, ok := ids[strings.ToLower(c)]; !ok {
			t.Fatalf("code %s is not in the store", c)
		}
	}
	if len(ids) != len(codes) {
		t.Fatalf("the store holds %d coupons, want the list's %d", len(ids), len(codes))
	}
	return ids
}

// TestWooCommercePushBacksOffOn429: behind a host that lets four requests a second through and
// answers the rest 429 with Retry-After, a push still puts every code into the store once, none
// failed, and waits out each Retry-After: in a second that answered 429, only requests already in
// flight when the first 429 came are answered 429 too (a client that sent again at once, or kept
// sending, would collect more).
func TestWooCommercePushBacksOffOn429(t *testing.T) {
	t.Parallel()
	s := startWooStack(t, woofake.Config{})
	m := s.NewMerchant(t, "Woo Throttled")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	list := s.CreateList(t, m, map[string]any{"name": "Throttled"})
	codes := numbered("THR-", 2000)
	importByHand(t, s.Harness, m, list, "test", codes...)

	s.fake.SetRateLimit(woofake.RateLimit{Requests: 4, Window: time.Second})
	push := map[string]any{"connection_id": conn.ID, "discount": map[string]any{"title": "Ten", "value_type": "percentage", "value": 10}}
	if r := s.Admin(t, m, http.MethodPost, "/api/v1/lists/"+list+"/connections", push); r.Status != http.StatusAccepted {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	p := waitPushOf(t, s.Harness, m, list, func(p pushState) bool { return p.State == core.PushActive && p.Pushed == 2000 })
	if p.Failed != 0 || p.Pending != 0 {
		t.Fatalf("push done with %d failed, %d pending", p.Failed, p.Pending)
	}
	s.fake.SetRateLimit(woofake.RateLimit{})
	storeHoldsExactly(t, s.fake, codes, woocommerce.PushTag(uuid.MustParse(list), uuid.MustParse(conn.ID)))

	throttled := s.fake.Throttled()
	if len(throttled) == 0 {
		t.Fatal("no request was answered 429: the push never met the limit")
	}
	for i, n := range throttled {
		if n > woocommerce.MaxPushWindow {
			t.Fatalf("window %d of %v answered %d requests 429, more than the %d a push has in flight: it did not wait out Retry-After",
				i, throttled, n, woocommerce.MaxPushWindow)
		}
	}
}

// dyingTransport passes requests on until the n-th coupons batch: that one reaches the store (its
// coupons are made) and then the worker dies (kill), so the answer is never read. It remembers the
// codes of that batch.
type dyingTransport struct {
	next http.RoundTripper
	n    int
	kill context.CancelFunc

	mu      sync.Mutex
	batches int
	lost    []string
}

func (d *dyingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	batch := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/coupons/batch")
	var body []byte
	if batch && r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	d.mu.Lock()
	if batch {
		d.batches++
	}
	dies := batch && d.batches == d.n
	d.mu.Unlock()
	resp, err := d.next.RoundTrip(r)
	if !dies || err != nil {
		return resp, err
	}
	resp.Body.Close()
	var sent struct {
		Create []struct {
			Code string `json:"code"`
		} `json:"create"`
	}
	_ = json.Unmarshal(body, &sent)
	d.mu.Lock()
	for _, c := range sent.Create {
		d.lost = append(d.lost, c.Code)
	}
	d.mu.Unlock()
	d.kill()
	return nil, context.Canceled
}

// TestWooCommercePushKilledMidway: a worker that dies in the middle of a push, with requests in
// flight (one of them made its coupons in the store but its answer was never read), and codes
// claimed but not sent yet, leaves a push that its next run finishes: the store holds every code
// of the list exactly once, each recorded pushed with the id of the coupon the push made (found by
// its tag, not taken as the store's own), counted once, with one pushed event on its timeline.
func TestWooCommercePushKilledMidway(t *testing.T) {
	t.Parallel()
	fake := woofake.New(t, woofake.Config{})
	h := apptest.Start(t, env, apptest.Options{Configure: func(c *config.Config) { c.ReconcileInterval = time.Hour }})
	h.UseWooCommerceClient(fake.Client())
	s := wooStack{Harness: h, fake: fake}
	ctx := context.Background()
	db := h.App.DB.Pool()
	m := s.NewMerchant(t, "Woo Killed")
	var conn struct {
		ID string `json:"id"`
	}
	s.connect(t, m, s.keys(), http.StatusCreated).JSON(t, &conn)
	list := s.CreateList(t, m, map[string]any{"name": "Killed"})
	codes := numbered("KILL-", 3000)
	importByHand(t, s.Harness, m, list, "test", codes...)
	mid, lid, cid := uuid.MustParse(m.ID), uuid.MustParse(list), uuid.MustParse(conn.ID)
	// The push is recorded as the API records it, without a task: this test is the worker.
	if _, _, err := h.App.DB.CreatePush(ctx, core.Push{MerchantID: mid, ListID: lid, ConnectionID: cid, Platform: woocommerce.Platform,
		Shop: fake.URL(), State: core.PushPending, Discount: core.Discount{Title: "Ten", ValueType: core.ValuePercentage, Value: 10}}); err != nil {
		t.Fatal(err)
	}

	runCtx, kill := context.WithCancel(ctx)
	dying := &dyingTransport{next: fake.Client().Transport, n: 6, kill: kill}
	h.App.WooCommercePusher.HTTP = &http.Client{Transport: dying, Timeout: 30 * time.Second}
	if err := h.App.WooCommercePusher.RunPush(runCtx, mid, lid, cid); !errors.Is(err, context.Canceled) {
		t.Fatalf("the dying run ended with %v", err)
	}
	var submitted, pushed int
	if err := db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE state = 'submitted'), count(*) FILTER (WHERE state = 'pushed')
		FROM code_pushes WHERE merchant_id = $1 AND list_id = $2`, mid, lid).Scan(&submitted, &pushed); err != nil {
		t.Fatal(err)
	}
	inStore := len(fake.Coupons())
	if len(dying.lost) != 100 || submitted == 0 || inStore == 0 || inStore >= len(codes) || pushed >= inStore {
		t.Fatalf("the worker did not die mid-push: %d codes lost, %d submitted, %d pushed, %d in the store",
			len(dying.lost), submitted, pushed, inStore)
	}

	h.App.WooCommercePusher.HTTP = fake.Client()
	if err := h.App.WooCommercePusher.RunPush(ctx, mid, lid, cid); err != nil {
		t.Fatal(err)
	}
	ids := storeHoldsExactly(t, fake, codes, woocommerce.PushTag(lid, cid))
	rows, err := db.Query(ctx, `SELECT k.code, s.state, s.remote_id FROM code_pushes s JOIN codes k USING (merchant_id, list_id, seq)
		WHERE s.merchant_id = $1 AND s.list_id = $2`, mid, lid)
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for rows.Next() {
		var code, state, remote string
		if err := rows.Scan(&code, &state, &remote); err != nil {
			t.Fatal(err)
		}
		if state != "pushed" || remote != strconv.FormatInt(ids[strings.ToLower(code)], 10) {
			t.Fatalf("%s recorded %s with coupon %q, the store's is %d", code, state, remote, ids[strings.ToLower(code)])
		}
		recorded++
	}
	if rows.Err() != nil || recorded != len(codes) {
		t.Fatalf("%d codes recorded (%v), want %d", recorded, rows.Err(), len(codes))
	}
	var page struct {
		Items []pushState `json:"items"`
	}
	get(t, h, m, "/api/v1/lists/"+list+"/connections").JSON(t, &page)
	if len(page.Items) != 1 || page.Items[0].State != core.PushActive || page.Items[0].Pushed != int64(len(codes)) ||
		page.Items[0].Failed != 0 || page.Items[0].Pending != 0 {
		t.Fatalf("push after the rerun: %+v", page.Items)
	}

	// A code whose batch's answer was lost has one pushed event, with its coupon.
	lost := dying.lost[len(dying.lost)/2]
	var detail struct {
		Timeline []struct {
			Type    string         `json:"type"`
			Actor   string         `json:"actor"`
			Details map[string]any `json:"details"`
		} `json:"timeline"`
	}
	get(t, h, m, codePath(list, lost)).JSON(t, &detail)
	var events []string
	for _, e := range detail.Timeline {
		if e.Type == core.EventPushed || e.Type == core.EventPushFailed {
			events = append(events, e.Type)
			if e.Actor != woocommerce.Platform || e.Details["remote_id"] != strconv.FormatInt(ids[strings.ToLower(lost)], 10) ||
				e.Details["shop"] != fake.URL() || e.Details["connection_id"] != conn.ID {
				t.Fatalf("%s's push event: %+v", lost, e)
			}
		}
	}
	if !slices.Equal(events, []string{core.EventPushed}) {
		t.Fatalf("%s's push events: %v, want one pushed", lost, events)
	}
}
