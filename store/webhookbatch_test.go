package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify"
	"github.com/coupongate/coupongate/store"
)

// webhookShop is a Shopify shop installed for a new merchant, with the processor and the batch
// runner the worker uses.
type webhookShop struct {
	db        *store.DB
	merchant  uuid.UUID
	shop      string
	processor *shopify.Processor
	signals   *memorySignals
	batches   *core.WebhookBatches
	mu        sync.Mutex
	seq       int
}

// memorySignals are core.WebhookSignals in memory, for one process.
type memorySignals struct {
	mu     sync.Mutex
	raised map[uuid.UUID]bool
}

func (s *memorySignals) RaiseWebhookMark(_ context.Context, m uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.raised[m] = true
	return nil
}

func (s *memorySignals) LowerWebhookMark(_ context.Context, m uuid.UUID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.raised, m)
	return nil
}

// raiseIfDown raises the mark and says whether it was down, as the intake's enqueue does.
func (s *memorySignals) raiseIfDown(m uuid.UUID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	was := s.raised[m]
	s.raised[m] = true
	return !was
}

func (s *memorySignals) WebhookMarkRaised(_ context.Context, m uuid.UUID) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.raised[m], nil
}

func newWebhookShop(t testing.TB, db *store.DB, batchSize int) *webhookShop {
	t.Helper()
	sealer, err := store.NewSealer("webhook-batch-test-secret-0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	db.UseSealer(sealer)
	shop := fmt.Sprintf("batch-%d.myshopify.com", time.Now().UnixNano())
	route, _, err := db.InstallShop(context.Background(), shopify.Platform, shop, core.Credentials{AccessToken: "shpat_test"}, "read_orders",
		func() (core.StoredMerchant, error) {
			m, _, err := core.NewStoredMerchant("Batch "+shop, time.Now())
			return m, err
		})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	p := shopify.NewProcessor(db, core.NewRedeemer(db, db), log)
	signals := &memorySignals{raised: map[uuid.UUID]bool{}}
	b := core.NewWebhookBatches(db, signals, map[string]core.WebhookPlanner{shopify.Platform: p}, log).WithBatchSize(batchSize, core.WebhookBatchParallel)
	return &webhookShop{db: db, merchant: route.MerchantID, shop: shop, processor: p, signals: signals, batches: b}
}

// list creates a list with codes.
func (w *webhookShop) list(t testing.TB, in core.ListInput, codes ...string) core.List {
	t.Helper()
	l, err := core.NewLists(w.db).Create(context.Background(), w.merchant, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.AddCodes(context.Background(), l, codes); err != nil {
		t.Fatal(err)
	}
	return l
}

// order stores an order delivery of topic for order id with financial status and codes.
func (w *webhookShop) order(t testing.TB, topic string, id int64, financial string, codes ...string) uuid.UUID {
	t.Helper()
	apps := []any{}
	for _, c := range codes {
		apps = append(apps, map[string]any{"type": "discount_code", "code": c, "value": "10.0", "value_type": "percentage"})
	}
	body, _ := json.Marshal(map[string]any{"id": id, "name": fmt.Sprintf("#%d", id), "email": fmt.Sprintf("buyer%d@example.com", id),
		"financial_status": financial, "discount_applications": apps})
	return w.deliver(t, topic, body)
}

// deliver stores a delivery as the intake does and returns its id.
func (w *webhookShop) deliver(t testing.TB, topic string, body []byte) uuid.UUID {
	t.Helper()
	w.mu.Lock()
	w.seq++
	seq := w.seq
	w.mu.Unlock()
	d := shopify.WebhookReceipt{ID: uuid.New(), Platform: shopify.Platform, Shop: w.shop, Topic: topic,
		EventKey: fmt.Sprintf("ev-%05d", seq), WebhookID: fmt.Sprintf("wh-%d", seq), Body: body, Status: shopify.ReceiptReceived}
	found, inserted, err := w.db.StoreWebhookReceipt(context.Background(), &d)
	if err != nil || !found || !inserted {
		t.Fatalf("store delivery: found %v, inserted %v, %v", found, inserted, err)
	}
	return d.ID
}

// orderBody is an order webhook body for order id with financial status, codes applied as
// discount codes and manual discount titles.
func orderBody(id int64, financial string, codes []string, manual ...string) []byte {
	apps := []any{}
	entries := []any{}
	for _, c := range codes {
		apps = append(apps, map[string]any{"type": "discount_code", "code": c, "value": "10.0", "value_type": "percentage"})
		entries = append(entries, map[string]any{"code": c, "amount": "1.00", "type": "percentage"})
	}
	for _, m := range manual {
		apps = append(apps, map[string]any{"type": "manual", "title": m, "value": "5.0", "value_type": "fixed_amount"})
		entries = append(entries, map[string]any{"code": m, "amount": "5.00", "type": "fixed_amount"})
	}
	body, _ := json.Marshal(map[string]any{"id": id, "name": fmt.Sprintf("#%d", id), "email": fmt.Sprintf("buyer%d@example.com", id),
		"financial_status": financial, "discount_applications": apps, "discount_codes": entries})
	return body
}

// cancelledBody is an orders/cancelled body: the order with cancelled_at set.
func cancelledBody(id int64, financial string, codes []string) []byte {
	var o map[string]any
	_ = json.Unmarshal(orderBody(id, financial, codes), &o)
	o["cancelled_at"] = "2026-01-02T03:04:05Z"
	body, _ := json.Marshal(o)
	return body
}

// storedDelivery is one delivery of a scripted sequence.
type storedDelivery struct {
	topic string
	body  []byte
}

// webhookScript stores the same merchant state and deliveries for each shop it is given: lists
// with codes (unique, fixed, require_issued, case-insensitive), a code held at checkout, and a
// sequence of order deliveries that meets every rule of the order path.
func webhookScript(t *testing.T, w *webhookShop) {
	t.Helper()
	ctx := context.Background()
	one := 1
	var simple []string
	for i := range 140 {
		simple = append(simple, fmt.Sprintf("SIMPLE-%03d", i))
	}
	w.list(t, core.ListInput{Name: "Simple"}, simple...)
	w.list(t, core.ListInput{Name: "Main", UsesPerCode: &one}, "ORDERED-1", "LAST-USE", "TWICE", "HELD-1", "HELD-2", "MANUAL-1", "REFUND-1",
		"REPEAT-1", "ONE-USE-2")
	w.list(t, core.ListInput{Name: "Fixed", Kind: core.KindFixed, FixedCode: "FIXED10", MaxAssignments: 2})
	w.list(t, core.ListInput{Name: "Issued only", RequireIssued: true}, "ISSUED-1")
	w.list(t, core.ListInput{Name: "Any case", CaseInsensitive: true}, "Spring-A")
	for _, code := range []string{"HELD-1", "HELD-2"} {
		f, found, err := w.db.FindCode(ctx, w.merchant, code)
		if err != nil || !found {
			t.Fatalf("find %s: %v %v", code, found, err)
		}
		if _, held, err := w.db.Hold(ctx, w.merchant, f, core.HoldRequest{CustomerKey: "cust-held",
			Now: time.Now(), Until: time.Now().Add(time.Hour), Actor: "storefront"}); err != nil || !held {
			t.Fatalf("hold %s: %v %v", code, held, err)
		}
	}
	var script []storedDelivery
	add := func(topic string, body []byte) { script = append(script, storedDelivery{topic, body}) }
	// One order's life: pending, paid (twice: orders/paid and orders/updated), refunded, cancelled.
	add(shopify.TopicOrdersCreate, orderBody(1, "pending", []string{"ORDERED-1"}))
	add(shopify.TopicOrdersPaid, orderBody(1, "paid", []string{"ORDERED-1"}))
	add(shopify.TopicOrdersUpdated, orderBody(1, "paid", []string{"ORDERED-1"}))
	// Paid here, and again (another event of the same order) and by another order after the
	// deliveries processed alone below, so in another batch: counted once, then an over-use.
	add(shopify.TopicOrdersPaid, orderBody(12, "paid", []string{"REPEAT-1"}))
	add(shopify.TopicOrdersPaid, orderBody(13, "paid", []string{"ONE-USE-2"}))
	add(shopify.TopicOrdersPaid, orderBody(14, "paid", []string{"HELD-2"}))
	for i, c := range simple[:70] {
		add(shopify.TopicOrdersPaid, orderBody(int64(100+i), "paid", []string{c}))
	}
	// Two orders for a code with one use: the second is an over-use, recorded.
	add(shopify.TopicOrdersPaid, orderBody(2, "paid", []string{"LAST-USE"}))
	add(shopify.TopicOrdersPaid, orderBody(3, "paid", []string{"LAST-USE"}))
	// The fixed code, handed out at most twice: the third order over-uses it.
	add(shopify.TopicOrdersPaid, orderBody(4, "paid", []string{"FIXED10"}))
	add(shopify.TopicOrdersPaid, orderBody(5, "paid", []string{"FIXED10"}))
	add(shopify.TopicOrdersPaid, orderBody(6, "paid", []string{"FIXED10"}))
	// Paid with a code never handed out in a require_issued list: counted, flagged.
	add(shopify.TopicOrdersPaid, orderBody(7, "paid", []string{"ISSUED-1"}))
	// A case-insensitive code named twice in other cases is one use; an unknown code is skipped.
	add(shopify.TopicOrdersPaid, orderBody(8, "paid", []string{"spring-a", "SPRING-A", "NO-SUCH-CODE"}))
	// The held code is paid: its hold ends.
	add(shopify.TopicOrdersPaid, orderBody(9, "partially_refunded", []string{"HELD-1"}))
	// A manual discount carrying a code's text is recorded, never redeemed (processed alone).
	add(shopify.TopicOrdersPaid, orderBody(10, "paid", nil, "MANUAL-1"))
	// A refund names its order only: its codes are the ones the order recorded (processed alone).
	add(shopify.TopicOrdersPaid, orderBody(11, "paid", []string{"REFUND-1"}))
	add(shopify.TopicRefundsCreate, []byte(`{"id": 901, "order_id": 11}`))
	add(shopify.TopicOrdersCancelled, cancelledBody(11, "refunded", []string{"REFUND-1"}))
	// A body that is not an order fails; the same code's orders after it still apply.
	add(shopify.TopicOrdersPaid, []byte(`{"not": "an order"}`))
	add(shopify.TopicOrdersCancelled, cancelledBody(1, "refunded", []string{"ORDERED-1"}))
	add(shopify.TopicOrdersUpdated, orderBody(12, "paid", []string{"REPEAT-1"}))
	add(shopify.TopicOrdersPaid, orderBody(15, "paid", []string{"ONE-USE-2"}))
	for i, c := range simple[70:] {
		add(shopify.TopicOrdersPaid, orderBody(int64(200+i), "paid", []string{c}))
	}
	for _, d := range script {
		w.deliver(t, d.topic, d.body)
	}
}

// webhookState is what a merchant's deliveries left, with the shop's name taken out: codes,
// timelines (in order), uses counted, order statuses recorded, holds, counters and deliveries.
func webhookState(t *testing.T, w *webhookShop) map[string]any {
	t.Helper()
	ctx := context.Background()
	query := func(sql string) []string {
		rows, err := w.db.Pool().Query(ctx, sql, w.merchant)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			line := strings.ReplaceAll(fmt.Sprint(vals...), w.shop, "SHOP")
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return map[string]any{
		"codes": query(`SELECT code, ' ', state, ' ', uses, ' ', redeemed_at IS NOT NULL, ' ', hold_id IS NULL FROM codes
			WHERE merchant_id = $1 ORDER BY code`),
		"timelines": query(`SELECT k.code, ' ', e.type, ' ', e.actor, ' ', e.channel, ' ', coalesce(e.recipient::text, ''), ' ', e.order_ref,
				' ', CASE WHEN e.type = 'reserved' THEN 'reservation' ELSE coalesce(e.details::text, '') END
			FROM code_events e JOIN codes k ON k.merchant_id = e.merchant_id AND k.list_id = e.list_id AND k.seq = e.seq
			WHERE e.merchant_id = $1 ORDER BY k.code, e.at, e.id`),
		"redemptions": query(`SELECT r.order_id, ' ', k.code, ' ', r.counted, ' ', r.actor FROM redemptions r
			JOIN codes k ON k.merchant_id = r.merchant_id AND k.list_id = r.list_id AND k.seq = r.seq
			WHERE r.merchant_id = $1 ORDER BY r.order_id, k.code`),
		"order_codes": query(`SELECT o.order_id, ' ', k.code, ' ', o.status FROM order_codes o
			JOIN codes k ON k.merchant_id = o.merchant_id AND k.list_id = o.list_id AND k.seq = o.seq
			WHERE o.merchant_id = $1 ORDER BY o.order_id, k.code, o.status`),
		"holds": query(`SELECT k.code, ' ', coalesce(r.ended_by, 'open') FROM reservations r
			JOIN codes k ON k.merchant_id = r.merchant_id AND k.list_id = r.list_id AND k.seq = r.seq
			WHERE r.merchant_id = $1 ORDER BY k.code`),
		"counters": query(`SELECT l.name, ' ', sum(c.available), ' ', sum(c.delivered), ' ', sum(c.redeemed), ' ', sum(c.removed)
			FROM list_counters c JOIN code_lists l ON l.merchant_id = c.merchant_id AND l.id = c.list_id
			WHERE c.merchant_id = $1 GROUP BY l.name ORDER BY l.name`),
		"deliveries": query(`SELECT event_key, ' ', topic, ' ', status, ' ', error FROM webhook_deliveries
			WHERE merchant_id = $1 ORDER BY event_key`),
	}
}

// TestWebhookBatchesApplyAsOneAtATime: the same deliveries applied by batches (of several sizes,
// in parallel parts or not) leave exactly what applying them one at a time, in the order they
// arrived, leaves: every use, over-use, order status, timeline event (in order), hold, counter
// and delivery outcome.
func TestWebhookBatchesApplyAsOneAtATime(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	ref := newWebhookShop(t, db, 1)
	webhookScript(t, ref)
	ids, err := db.ReadyWebhookReceipts(ctx, ref.merchant, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ids {
		if err := ref.processor.Process(ctx, ref.merchant, d.ID); err != nil {
			t.Fatalf("process %s: %v", d.Topic, err)
		}
	}
	want := webhookState(t, ref)
	// The order's life as it arrived: pending before the use, the refund and cancellation after.
	var ordered []string
	for _, line := range want["timelines"].([]string) {
		if strings.HasPrefix(line, "ORDERED-1 ") {
			ordered = append(ordered, strings.Fields(line)[1])
		}
	}
	if fmt.Sprint(ordered) != "[order_pending redeemed refunded cancelled]" {
		t.Fatalf("ORDERED-1's timeline one at a time: %v", ordered)
	}

	for _, tc := range []struct {
		name           string
		size, parallel int
	}{
		{"batches of 7", 7, 1},
		{"batches of 100 in 3 parts", 100, 3},
		{"default batches", core.WebhookBatchSize, core.WebhookBatchParallel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWebhookShop(t, db, 1)
			w.batches.WithBatchSize(tc.size, tc.parallel)
			webhookScript(t, w)
			if err := w.batches.Run(ctx, w.merchant); err != nil {
				t.Fatal(err)
			}
			got := webhookState(t, w)
			for k := range want {
				if !reflect.DeepEqual(got[k], want[k]) {
					t.Errorf("%s differ from one at a time:\n%s", k, lineDiff(got[k].([]string), want[k].([]string)))
				}
			}
			// Running again finds nothing to do and changes nothing.
			if err := w.batches.Run(ctx, w.merchant); err != nil {
				t.Fatal(err)
			}
			if again := webhookState(t, w); !reflect.DeepEqual(again, got) {
				t.Errorf("a second run changed the state")
			}
		})
	}
}

// lineDiff lists the lines only one side has.
func lineDiff(got, want []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, "missing: "+l)
		case n < 0:
			out = append(out, "extra:   "+l)
		}
	}
	if len(out) == 0 {
		return fmt.Sprintf("the same lines in another order:\n got %q\nwant %q", got, want)
	}
	return strings.Join(out, "\n")
}

// deliveryCounts counts the merchant's deliveries by status, and the uses of its codes.
func deliveryCounts(t *testing.T, w *webhookShop) (received, processed, uses int) {
	t.Helper()
	if err := w.db.Pool().QueryRow(context.Background(), `SELECT
			(SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'received'),
			(SELECT count(*) FROM webhook_deliveries WHERE merchant_id = $1 AND status = 'processed'),
			(SELECT coalesce(sum(uses), 0) FROM codes WHERE merchant_id = $1)`, w.merchant).Scan(&received, &processed, &uses); err != nil {
		t.Fatal(err)
	}
	return received, processed, uses
}

// paidBatch stores n paid orders, one per new code, and returns them as a batch ready to apply.
func paidBatch(t *testing.T, w *webhookShop, prefix string, n int) core.WebhookBatch {
	t.Helper()
	ctx := context.Background()
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	w.list(t, core.ListInput{Name: prefix}, codes...)
	var b core.WebhookBatch
	fs, found, err := w.db.FindCodes(ctx, w.merchant, codes)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range codes {
		if !found[i] {
			t.Fatalf("code %s not found", c)
		}
		id := w.order(t, shopify.TopicOrdersPaid, int64(5000+i), "paid", c)
		b.Receipts = append(b.Receipts, core.ReceiptOutcome{ID: id, Status: shopify.ReceiptProcessed})
		ev, err := core.CheckOrderEvent(core.OrderEvent{Platform: shopify.Platform, Shop: w.shop, OrderID: fmt.Sprint(5000 + i),
			Status: core.OrderPaid, Codes: []string{c}, Actor: "shopify:orders/paid"})
		if err != nil {
			t.Fatal(err)
		}
		b.Applications = append(b.Applications, core.CodeApplication{Receipt: i, Event: ev, Code: fs[i]})
	}
	return b
}

// TestWebhookBatchClaimsEachDeliveryOnce: two workers applying the same batch at once claim each
// delivery once between them (FOR UPDATE SKIP LOCKED, then received no more), and a batch applied
// again claims nothing: every code is used once.
func TestWebhookBatchClaimsEachDeliveryOnce(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, core.WebhookBatchSize)
	const n = 60
	b := paidBatch(t, w, "CLAIM", n)
	claims := make([][]bool, 4)
	var wg sync.WaitGroup
	for i := range claims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if claims[i], _, err = db.ApplyWebhookBatch(ctx, w.merchant, b, decideNow); err != nil {
				t.Errorf("apply %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for d := range n {
		times := 0
		for i := range claims {
			if claims[i] != nil && claims[i][d] {
				times++
			}
		}
		if times != 1 {
			t.Fatalf("delivery %d claimed %d times by 4 concurrent batches, want once", d, times)
		}
	}
	if again, _, err := db.ApplyWebhookBatch(ctx, w.merchant, b, decideNow); err != nil || slicesContains(again, true) {
		t.Fatalf("the batch applied again claimed %v, %v; want none", again, err)
	}
	received, processed, uses := deliveryCounts(t, w)
	if received != 0 || processed != n || uses != n {
		t.Fatalf("%d received, %d processed, %d uses; want 0, %d, %d", received, processed, uses, n, n)
	}
}

// decideNow decides a batch's applications as the worker does, at the time it is called.
func decideNow(l *core.UseLedger, apps []core.CodeApplication) []core.UseDecision {
	return core.DecideApplications(l, apps, time.Now())
}

func slicesContains(xs []bool, x bool) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// TestWebhookBatchThatFailsAppliesNothing: a batch whose transaction ends before its commit (a
// statement that fails midway, as when the worker is killed) applies nothing and records nothing:
// every delivery stays received, and the next run applies them all, once.
func TestWebhookBatchThatFailsAppliesNothing(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, core.WebhookBatchSize)
	const n = 40
	b := paidBatch(t, w, "FAIL", n)
	// The last application names a code that is not there: the statement fails after the others ran.
	bad := b.Applications[n-1]
	bad.Code.Seq = 1 << 40
	broken := core.WebhookBatch{Receipts: b.Receipts, Applications: append(b.Applications[:n-1:n-1], bad)}
	if _, _, err := db.ApplyWebhookBatch(ctx, w.merchant, broken, decideNow); err == nil {
		t.Fatal("a batch with a missing code applied")
	}
	var events int
	if err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM code_events WHERE merchant_id = $1 AND type = 'redeemed'`, w.merchant).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if received, processed, uses := deliveryCounts(t, w); received != n || processed != 0 || uses != 0 || events != 0 {
		t.Fatalf("after the failed batch: %d received, %d processed, %d uses, %d redeemed events; want %d, 0, 0, 0", received, processed, uses, events, n)
	}
	if err := w.batches.Run(ctx, w.merchant); err != nil {
		t.Fatal(err)
	}
	if received, processed, uses := deliveryCounts(t, w); received != 0 || processed != n || uses != n {
		t.Fatalf("after the next run: %d received, %d processed, %d uses; want 0, %d, %d", received, processed, uses, n, n)
	}
}

// failingPlanner fails Process for one delivery (a refund processed alone) until healed.
type failingPlanner struct {
	core.WebhookPlanner
	mu     sync.Mutex
	broken uuid.UUID
}

func (p *failingPlanner) Process(ctx context.Context, merchantID, deliveryID uuid.UUID) error {
	p.mu.Lock()
	broken := p.broken
	p.mu.Unlock()
	if deliveryID == broken {
		return errors.New("the refund's look-up failed")
	}
	return p.WebhookPlanner.Process(ctx, merchantID, deliveryID)
}

// TestWebhookBatchesHoldBackAFailingDelivery: a delivery that fails on its own stays received,
// and so do the later deliveries of its order, while the merchant's other deliveries are applied;
// once it applies, its order's deliveries follow in the order they arrived.
func TestWebhookBatchesHoldBackAFailingDelivery(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, core.WebhookBatchSize)
	w.list(t, core.ListInput{Name: "Held back"}, "HOLD-A", "HOLD-B")
	planner := &failingPlanner{WebhookPlanner: w.processor}
	batches := core.NewWebhookBatches(db, w.signals, map[string]core.WebhookPlanner{shopify.Platform: planner}, slog.New(slog.DiscardHandler))
	w.order(t, shopify.TopicOrdersPaid, 21, "paid", "HOLD-A")
	refund := w.deliver(t, shopify.TopicRefundsCreate, []byte(`{"id": 77, "order_id": 21}`))
	cancelled := w.deliver(t, shopify.TopicOrdersCancelled, cancelledBody(21, "refunded", []string{"HOLD-A"}))
	w.order(t, shopify.TopicOrdersPaid, 22, "paid", "HOLD-B")
	planner.broken = refund

	err := batches.Run(ctx, w.merchant)
	if !errors.Is(err, core.ErrWebhooksHeldBack) {
		t.Fatalf("run: %v, want ErrWebhooksHeldBack", err)
	}
	status := func(id uuid.UUID) string {
		var s string
		if err := db.Pool().QueryRow(ctx, `SELECT status FROM webhook_deliveries WHERE merchant_id = $1 AND id = $2`, w.merchant, id).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	if status(refund) != "received" || status(cancelled) != "received" {
		t.Fatalf("refund %s, its order's cancellation %s; want both received", status(refund), status(cancelled))
	}
	if received, processed, uses := deliveryCounts(t, w); received != 2 || processed != 2 || uses != 2 {
		t.Fatalf("%d received, %d processed, %d uses; want 2, 2, 2", received, processed, uses)
	}

	planner.mu.Lock()
	planner.broken = uuid.Nil
	planner.mu.Unlock()
	if err := batches.Run(ctx, w.merchant); err != nil {
		t.Fatal(err)
	}
	var timeline []string
	rows, err := db.Pool().Query(ctx, `SELECT e.type FROM code_events e JOIN codes k ON k.merchant_id = e.merchant_id AND k.list_id = e.list_id
		AND k.seq = e.seq WHERE e.merchant_id = $1 AND k.code = 'HOLD-A' ORDER BY e.at, e.id`, w.merchant)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var typ string
		if err := rows.Scan(&typ); err != nil {
			t.Fatal(err)
		}
		timeline = append(timeline, typ)
	}
	if fmt.Sprint(timeline) != "[redeemed refunded cancelled]" || status(refund) != "processed" || status(cancelled) != "processed" {
		t.Fatalf("HOLD-A's timeline %v, refund %s, cancellation %s", timeline, status(refund), status(cancelled))
	}
}

// TestEveryStoredDeliveryIsApplied: deliveries stored from many clients at once, each followed by
// the intake's wake-up (a task when the merchant's mark was down), are all applied by the tasks
// that start, with no sweeper: a task that finds the merchant's lock taken ends, and the holder
// reads again for every delivery stored after its last read.
func TestEveryStoredDeliveryIsApplied(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, 1)
	w.batches.WithBatchSize(16, 2)
	const clients, each = 8, 40
	codes := make([]string, clients*each)
	for i := range codes {
		codes[i] = fmt.Sprintf("WAKE-%04d", i)
	}
	w.list(t, core.ListInput{Name: "Wake"}, codes...)
	var tasks sync.WaitGroup
	var failures sync.Map
	var started sync.WaitGroup
	var running, ended atomic.Int64
	for c := range clients {
		started.Add(1)
		go func() {
			defer started.Done()
			for i := range each {
				n := c*each + i
				w.order(t, shopify.TopicOrdersPaid, int64(10_000+n), "paid", codes[n])
				if w.signals.raiseIfDown(w.merchant) {
					tasks.Add(1)
					running.Add(1)
					go func() {
						defer tasks.Done()
						defer ended.Add(1)
						defer running.Add(-1)
						if err := w.batches.Run(ctx, w.merchant); err != nil {
							failures.Store(n, err)
						}
					}()
				}
				if i%10 == 9 && c%2 == 1 {
					// Now and then, until a task ends (the holder ran out of work and let go of the
					// lock), or none runs: the deliveries after this one find the mark down.
					for before := ended.Load(); ended.Load() == before && running.Load() > 0; {
						runtime.Gosched()
					}
				}
			}
		}()
	}
	started.Wait()
	tasks.Wait()
	failures.Range(func(k, v any) bool {
		t.Errorf("task after delivery %v: %v", k, v)
		return true
	})
	if received, processed, uses := deliveryCounts(t, w); received != 0 || processed != len(codes) || uses != len(codes) {
		t.Fatalf("%d received, %d processed, %d uses once the tasks ended; want 0, %d, %d", received, processed, uses, len(codes), len(codes))
	}
}

// TestFindCodesAsFindCode: the batch look-ups find what the one-at-a-time look-ups find: the live
// code in the newest active list, case-insensitive lists matched without regard to case, removed
// codes last; and a code pushed to a shop before one being pushed.
func TestFindCodesAsFindCode(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, 1)
	older := w.list(t, core.ListInput{Name: "Older"}, "DUP-1", "DUP-2", "ONLY-OLD", "GONE-1")
	w.list(t, core.ListInput{Name: "Newer"}, "DUP-1", "DUP-2", "GONE-1")
	archived := w.list(t, core.ListInput{Name: "Archived"}, "DUP-2")
	w.list(t, core.ListInput{Name: "Any case", CaseInsensitive: true}, "Mixed-1")
	pool := db.Pool()
	for _, q := range []string{
		`UPDATE code_lists SET archived_at = now() WHERE merchant_id = $1 AND id = '` + archived.ID.String() + `'`,
		`UPDATE codes SET state = 'removed', removed_at = now() WHERE merchant_id = $1 AND code = 'GONE-1' AND list_id <> '` + older.ID.String() + `'`,
	} {
		if _, err := pool.Exec(ctx, q, w.merchant); err != nil {
			t.Fatal(err)
		}
	}
	asked := []string{"DUP-1", "DUP-2", "ONLY-OLD", "GONE-1", "Mixed-1", "mixed-1", "MIXED-1", "dup-1", "NO-SUCH"}
	fs, found, err := db.FindCodes(ctx, w.merchant, asked)
	if err != nil {
		t.Fatal(err)
	}
	for i, code := range asked {
		f, ok, err := db.FindCode(ctx, w.merchant, code)
		if err != nil {
			t.Fatal(err)
		}
		if ok != found[i] || (ok && (f.List.ID != fs[i].List.ID || f.Seq != fs[i].Seq || f.Code != fs[i].Code || f.State != fs[i].State)) {
			t.Errorf("%s: FindCodes %v %s/%d %s, FindCode %v %s/%d %s", code, found[i], fs[i].List.Name, fs[i].Seq, fs[i].State, ok, f.List.Name, f.Seq, f.State)
		}
	}

	// Pushes to a store: PUSH-1 pushed from the newer list (and submitted from the older one),
	// PUSH-2 only submitted.
	pushed := w.list(t, core.ListInput{Name: "Pushed"}, "PUSH-1", "PUSH-2")
	submitted := w.list(t, core.ListInput{Name: "Submitted"}, "PUSH-1")
	const platform, shop = "woocommerce", "https://store.example"
	conn := uuid.New()
	if _, err := pool.Exec(ctx, `INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, $3, $4)`, w.merchant, conn, platform, shop); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		list  uuid.UUID
		code  string
		state string
	}{{pushed.ID, "PUSH-1", "pushed"}, {submitted.ID, "PUSH-1", "submitted"}, {pushed.ID, "PUSH-2", "submitted"}} {
		if _, err := pool.Exec(ctx, `INSERT INTO code_pushes (merchant_id, list_id, connection_id, seq, state, code_key)
			SELECT $1, $2, $3, seq, $4, lower(code) FROM codes WHERE merchant_id = $1 AND list_id = $2 AND code = $5`,
			w.merchant, p.list, conn, p.state, p.code); err != nil {
			t.Fatal(err)
		}
	}
	asked = []string{"push-1", "PUSH-2", "push-3"}
	fs, found, err = db.FindPushedCodes(ctx, w.merchant, platform, shop, asked)
	if err != nil {
		t.Fatal(err)
	}
	for i, code := range asked {
		f, ok, err := db.FindPushedCode(ctx, w.merchant, platform, shop, code)
		if err != nil {
			t.Fatal(err)
		}
		if ok != found[i] || (ok && (f.List.ID != fs[i].List.ID || f.Seq != fs[i].Seq || f.Code != fs[i].Code)) {
			t.Errorf("%s: FindPushedCodes %v %s/%d, FindPushedCode %v %s/%d", code, found[i], fs[i].List.Name, fs[i].Seq, ok, f.List.Name, f.Seq)
		}
	}
	if !found[0] || fs[0].List.ID != pushed.ID || !found[1] || found[2] {
		t.Errorf("pushed look-ups: %v, push-1 from %s", found, fs[0].List.Name)
	}
}

// racingStore stores a delivery right after the first read of a run, before that run applies
// what it read: the delivery a holder's read just missed.
type racingStore struct {
	*store.DB
	once  sync.Once
	after func()
}

func (s *racingStore) ReadyWebhookReceipts(ctx context.Context, merchantID uuid.UUID, limit int, skip []uuid.UUID) ([]core.WebhookReceipt, error) {
	ds, err := s.DB.ReadyWebhookReceipts(ctx, merchantID, limit, skip)
	s.once.Do(s.after)
	return ds, err
}

// TestDeliveryStoredAfterARunsReadIsApplied: a delivery stored just after the task holding the
// merchant's lock read its last batch queues a task (the mark was down), which finds the lock
// taken and ends; the holder then sees the mark and reads again: the delivery is applied before
// the holder's run ends, with no sweeper.
func TestDeliveryStoredAfterARunsReadIsApplied(t *testing.T) {
	t.Parallel()
	db := open(t)
	ctx := context.Background()
	w := newWebhookShop(t, db, 1)
	w.list(t, core.ListInput{Name: "Race"}, "RACE-1", "RACE-2")
	rs := &racingStore{DB: db}
	batches := core.NewWebhookBatches(rs, w.signals, map[string]core.WebhookPlanner{shopify.Platform: w.processor}, slog.New(slog.DiscardHandler))
	var lateTaskRan bool
	rs.after = func() {
		w.order(t, shopify.TopicOrdersPaid, 32, "paid", "RACE-2")
		if w.signals.raiseIfDown(w.merchant) { // the intake's enqueue: a task runs
			lateTaskRan = true
			if err := batches.Run(ctx, w.merchant); err != nil {
				t.Errorf("the late delivery's task: %v", err)
			}
		}
	}
	w.order(t, shopify.TopicOrdersPaid, 31, "paid", "RACE-1")
	if err := batches.Run(ctx, w.merchant); err != nil {
		t.Fatal(err)
	}
	if !lateTaskRan {
		t.Fatal("the mark was up when the late delivery was stored: no task was queued for it")
	}
	if received, processed, uses := deliveryCounts(t, w); received != 0 || processed != 2 || uses != 2 {
		t.Fatalf("%d received, %d processed, %d uses when the holder's run ended; want 0, 2, 2", received, processed, uses)
	}
}
