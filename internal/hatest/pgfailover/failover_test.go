//go:build ha

package pgfailover

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/config"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/internal/apptest"
	"github.com/coupongate/coupongate/internal/dbtest"
	"github.com/coupongate/coupongate/store"
)

const (
	// clients is how many clients allocate codes and send paid orders at once.
	clients = 16
	// codesPerScenario is each scenario's list, and opsPerClient the most operations a client
	// makes in a scenario: the list outlasts them. opEvery paces each client (at most 20
	// operations a second), so that the list lasts while a node rejoins, which may take minutes
	// when pg_rewind fails and pg_autoctl falls back to pg_basebackup.
	codesPerScenario = 80_000
	opsPerClient     = 4_800
	opEvery          = 50 * time.Millisecond
	// shopifySecret signs the test's Shopify deliveries; the gateway is configured with it.
	shopifySecret = "failover-shopify-secret"
	// retryPause is how long a client waits before sending an answered-503 request again: shorter
	// than Retry-After, so that the time to the first 2xx again is measured to a tenth of a second.
	retryPause = 100 * time.Millisecond
)

// scenario is one way of losing the primary. fail does it and returns once the formation has a
// primary and a synchronous standby again.
type scenario struct {
	name string
	// optIn, when set, names the environment variable that must be set for the scenario to run.
	optIn string
	fail  func(t *testing.T, f *formation)
}

var scenarios = []scenario{
	{"switchover", "", func(t *testing.T, f *formation) {
		// pg_autoctl perform failover: the monitor drains the primary, promotes the standby and
		// makes the old primary its standby.
		old := f.primary()
		if err := f.performFailover(); err != nil {
			t.Fatal(err)
		}
		f.waitStates(2*time.Minute, map[string]string{f.other(old).name: "primary", old.name: "secondary"})
		f.waitSynchronous(time.Minute)
	}},
	{"primary killed", "", func(t *testing.T, f *formation) {
		// The primary's machine is gone: its keeper and its postgres die with SIGKILL. The monitor
		// notices (about 20 s with pg_auto_failover's defaults) and promotes the standby, which takes
		// writes without a standby (wait_primary); the old primary then comes back as the standby.
		old := f.primary()
		f.kill(old)
		f.waitState(3*time.Minute, "the standby's promotion", func(s []nodeState) bool {
			for _, n := range s {
				if n.Name == f.other(old).name && (n.Current == "wait_primary" || n.Current == "primary") {
					return true
				}
			}
			return false
		})
		f.restart(old)
		f.waitStates(3*time.Minute, map[string]string{f.other(old).name: "primary", old.name: "secondary"})
		f.waitSynchronous(time.Minute)
	}},
	// Opt-in: in 2 of 5 runs a few writes acknowledged by the restarted primary in the second
	// before the monitor failed it over were missing on the new primary (see the README).
	{"postgres killed", "PGFAILOVER_KILL_POSTGRES", func(t *testing.T, f *formation) {
		// The primary's postgres dies with SIGKILL; its keeper starts it again at once (crash
		// recovery). The monitor fails the node over too when its health check finds postgres
		// down meanwhile, which depends on timing: either way, the formation ends with a primary
		// and its synchronous standby streaming.
		f.killPostgres(f.primary())
		f.waitSynchronous(3 * time.Minute)
	}},
}

// TestPrimaryFailover runs the gateway and the worker on a pg_auto_failover formation (DATABASE_URL
// names both nodes, target_session_attrs=read-write) and, for each scenario, loses the primary
// while 16 clients allocate codes and send the paid orders that redeem them. Each client sends a
// request again until it is answered 2xx. Afterwards: every non-2xx answer was 503
// dependency_unavailable with Retry-After, in the contract's error shape; every allocation
// answered 2xx is in the database with its code, and no code went to two recipients; every paid
// order was stored once, applied by the worker (asynq retrying what failed) and counted once.
// The time from the failure to the first 2xx again is logged.
func TestPrimaryFailover(t *testing.T) {
	f := startFormation(t)
	ctx := context.Background()
	rdb, redisDB, release, err := dbtest.Redis(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	env := dbtest.Env{DatabaseURL: f.DatabaseURL("coupons"), RedisDB: redisDB, Redis: rdb}
	var counts logCounts
	// couponctl migrate's work: the database created on the primary and migrated, before the
	// gateway and the worker start (they refuse a schema that is behind).
	if err := store.EnsureDatabase(ctx, env.DatabaseURL); err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, env.DatabaseURL, dbtest.Logger(t)); err != nil {
		t.Fatal(err)
	}
	h := apptest.Start(t, env, apptest.Options{
		Database: env.DatabaseURL,
		Worker:   true,
		Log:      slog.New(&countingHandler{Handler: dbtest.Logger(t).Handler(), counts: &counts}),
		Configure: func(c *config.Config) {
			c.ShopifyAPISecret = shopifySecret
		},
	})
	m := h.NewMerchant(t, "Failover Shop")
	for i, sc := range scenarios {
		if !t.Run(sc.name, func(t *testing.T) {
			if sc.optIn != "" && os.Getenv(sc.optIn) == "" {
				t.Skipf("set %s=1 to run it: it can lose writes the restarted primary acknowledged just before the monitor failed it over", sc.optIn)
			}
			runScenario(t, h, f, m, &counts, i, sc)
		}) {
			break // the formation may be left half failed over: the next scenario would not say much
		}
	}
}

// logCounts counts the app's log records that a failover causes.
type logCounts struct {
	// taskFailed counts tasks that returned an error (asynq retries them).
	taskFailed atomic.Int64
	// requestFailed counts requests answered with an error logged (the 503s).
	requestFailed atomic.Int64
}

// countingHandler counts records by message, at every level, and keeps the lines of an outage
// ("request failed" at debug and the warn line that opens it, and "http request" for each 503)
// and the routine "task done" out of the test's output.
type countingHandler struct {
	slog.Handler
	counts *logCounts
}

// Enabled takes every record, so that failures logged at debug are counted too; Handle passes on
// only what the test's logger would write.
func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(ctx context.Context, r slog.Record) error {
	switch {
	case r.Message == "task failed":
		h.counts.taskFailed.Add(1)
	case r.Message == "request failed" || strings.HasSuffix(r.Message, "answering 503 dependency_unavailable while it does not"):
		h.counts.requestFailed.Add(1)
		return nil
	case r.Message == "http request" || r.Message == "task done":
		return nil
	}
	if !h.Handler.Enabled(ctx, r.Level) {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h *countingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithAttrs(attrs), counts: h.counts}
}

func (h *countingHandler) WithGroup(name string) slog.Handler {
	return &countingHandler{Handler: h.Handler.WithGroup(name), counts: h.counts}
}

// attempt is one request as a client saw it.
type attempt struct {
	kind           string // "allocate" or "paid order"
	sent, answered time.Time
	status         int
	retryAfter     string
	body           []byte // kept for answers other than 2xx
	err            error  // no answer at all
}

// operation is one client's allocation and the paid order that redeems its code, both answered 2xx.
type operation struct {
	email, code, orderID string
	// reused: the allocation's first 2xx said reused, so an earlier attempt answered 503 had
	// committed; duplicate: likewise for the paid order's delivery.
	reused, duplicate bool
	// allocatedAt and paidAt are when the allocation and the paid order were answered 2xx.
	allocatedAt, paidAt time.Time
}

// load is the scenario's clients and what they saw.
type load struct {
	h        *apptest.Harness
	m        apptest.Merchant
	list     string
	shop     string
	scenario int
	http     *http.Client
	// successes counts 2xx answers so far; done counts the clients that made all their operations.
	successes, done atomic.Int64

	mu       sync.Mutex
	attempts []attempt
	ops      []operation
	failures []string
}

func (l *load) fail(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, fmt.Sprintf(format, args...))
}

// send sends one request built by build until it is answered 2xx (or deadline passes), pausing
// retryPause after any other answer, and returns the 2xx body and whether it came at the first try.
func (l *load) send(kind string, deadline time.Time, build func() *http.Request) ([]byte, bool) {
	for try := 0; ; try++ {
		req := build()
		a := attempt{kind: kind, sent: time.Now()}
		resp, err := l.http.Do(req)
		if err == nil {
			var b []byte
			b, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			a.status, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			if a.status < 200 || a.status > 299 {
				a.body = b
			}
			if err == nil && a.body == nil {
				a.answered = time.Now()
				l.successes.Add(1)
				l.mu.Lock()
				l.attempts = append(l.attempts, a)
				l.mu.Unlock()
				return b, try == 0
			}
		}
		a.answered, a.err = time.Now(), err
		l.mu.Lock()
		l.attempts = append(l.attempts, a)
		l.mu.Unlock()
		if time.Now().After(deadline) {
			l.fail("%s: no 2xx before the deadline; last answer %d %s %v", kind, a.status, a.body, a.err)
			return nil, false
		}
		time.Sleep(retryPause)
	}
}

// client runs operations, one every opEvery at most, until stop is closed or it made
// opsPerClient, each to its end.
func (l *load) client(c int, stop <-chan struct{}, deadline time.Time) {
	next := time.Now()
	for i := 0; ; i++ {
		if i == opsPerClient {
			l.done.Add(1)
			return
		}
		select {
		case <-stop:
			return
		case <-time.After(time.Until(next)):
		}
		next = time.Now().Add(opEvery)
		op := operation{email: fmt.Sprintf("s%d-c%02d-%06d@example.com", l.scenario, c, i)}
		allocation, _ := json.Marshal(map[string]any{"recipient": map[string]any{"email": op.email}, "campaign": "failover"})
		body, _ := l.send("allocate", deadline, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, l.h.URL+"/api/v1/lists/"+l.list+"/allocations", bytes.NewReader(allocation))
			req.Header.Set("Authorization", "Bearer "+l.m.APIKey)
			req.Header.Set("Content-Type", "application/json")
			return req
		})
		if body == nil {
			return
		}
		var got struct {
			Code   string `json:"code"`
			Reused bool   `json:"reused"`
		}
		if err := json.Unmarshal(body, &got); err != nil || got.Code == "" {
			l.fail("allocation for %s answered 2xx without a code: %s", op.email, body)
			return
		}
		op.code, op.reused, op.allocatedAt = got.Code, got.Reused, time.Now()

		op.orderID = strconv.Itoa(1_000_000_000 + l.scenario*100_000_000 + c*1_000_000 + i)
		order := paidOrder(op.orderID, op.code)
		hmac := shopifyfake.SignWebhook(shopifySecret, order)
		eventID, webhookID := "ev-"+op.orderID, uuid.NewString()
		body, _ = l.send("paid order", deadline, func() *http.Request {
			req, _ := http.NewRequest(http.MethodPost, l.h.URL+"/webhooks/shopify", bytes.NewReader(order))
			hd := req.Header
			hd.Set("Content-Type", "application/json")
			hd.Set("X-Shopify-Topic", "orders/paid")
			hd.Set("X-Shopify-Hmac-Sha256", hmac)
			hd.Set("X-Shopify-Shop-Domain", l.shop)
			hd.Set("X-Shopify-Webhook-Id", webhookID)
			hd.Set("X-Shopify-Event-Id", eventID)
			hd.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
			hd.Set("X-Shopify-API-Version", "2025-01")
			return req
		})
		if body == nil {
			return
		}
		op.paidAt = time.Now()
		var status struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal(body, &status)
		switch status.Status {
		case "accepted":
		case "duplicate":
			op.duplicate = true
		default:
			l.fail("paid order %s answered 2xx %s, want accepted or duplicate", op.orderID, body)
			return
		}
		l.mu.Lock()
		l.ops = append(l.ops, op)
		l.mu.Unlock()
	}
}

// paidOrder is a minimal orders/paid body that used code at checkout.
func paidOrder(id, code string) []byte {
	n, _ := strconv.ParseInt(id, 10, 64)
	b, _ := json.Marshal(map[string]any{
		"id": n, "name": "#" + id, "email": "buyer" + id + "@example.com", "financial_status": "paid",
		"discount_codes":        []any{map[string]any{"code": code, "amount": "10.00", "type": "percentage"}},
		"discount_applications": []any{map[string]any{"type": "discount_code", "code": code, "value": "10.0", "value_type": "percentage"}},
	})
	return b
}

// runScenario fills a list, starts the clients, waits until they are served, fails the primary
// over as sc does, waits until 200 more answers are 2xx after the formation settled, stops the
// clients, waits for the worker, and checks.
func runScenario(t *testing.T, h *apptest.Harness, f *formation, m apptest.Merchant, counts *logCounts, n int, sc scenario) {
	ctx := context.Background()
	db := h.App.DB.Pool()
	list := h.CreateList(t, m, map[string]any{"name": "Failover " + sc.name})
	importCodes(t, h, m, list, fmt.Sprintf("F%d-", n), codesPerScenario)
	shop := fmt.Sprintf("failover-%d-%d.myshopify.com", n, time.Now().UnixNano())
	if _, err := db.Exec(ctx, `WITH c AS (INSERT INTO connections (merchant_id, id, platform, shop) VALUES ($1, $2, 'shopify', $3))
		INSERT INTO shop_routes (platform, shop, merchant_id, connection_id) VALUES ('shopify', $3, $1, $2)`,
		m.ID, uuid.New(), shop); err != nil {
		t.Fatal(err)
	}

	l := &load{h: h, m: m, list: list, shop: shop, scenario: n,
		http: &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}}
	tasksFailedBefore, requestsFailedBefore := counts.taskFailed.Load(), counts.requestFailed.Load()
	stop := make(chan struct{})
	deadline := time.Now().Add(8 * time.Minute)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() { l.client(c, stop, deadline) })
	}
	stopped := false
	stopClients := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopClients()
	waitFor(t, time.Minute, "the clients' first 200 answers 2xx", func() bool { return l.successes.Load() >= 200 })

	failedAt := time.Now()
	defer func() {
		if t.Failed() {
			t.Logf("%s: the failure at %s; the monitor's events:\n%s", sc.name, failedAt.UTC().Format("15:04:05.000"), f.events(24))
		}
	}()
	sc.fail(t, f)
	settledAt := time.Now()
	after := l.successes.Load()
	waitFor(t, 3*time.Minute, "200 answers 2xx after the formation settled", func() bool {
		return l.successes.Load() >= after+200 || l.done.Load() == clients
	})
	stopClients()
	if l.successes.Load() < after+200 {
		t.Fatalf("the clients made all their operations before 200 more answers after the formation settled (%d); raise opsPerClient",
			l.successes.Load()-after)
	}
	for _, msg := range l.failures {
		t.Error(msg)
	}
	if t.Failed() {
		return
	}

	out := checkAnswers(t, l, failedAt)
	checkAllocations(t, h, m, list, l.ops)
	waitForDeliveries(t, h, m, shop, len(l.ops))
	checkRedemptions(t, h, m, list, shop, l.ops)

	reused, duplicates := 0, 0
	for _, op := range l.ops {
		if op.reused {
			reused++
		}
		if op.duplicate {
			duplicates++
		}
	}
	t.Logf("%s: %d allocations and %d paid orders answered 2xx, each in the database once; %d answers 503 "+
		"dependency_unavailable with Retry-After (%d logged by the gateway), none other; first 503 %s after the failure, "+
		"first 2xx again %s after the failure, last 503 %s after it; longest time without any 2xx %s; "+
		"formation settled %s after the failure; %d allocations answered reused and %d deliveries duplicate "+
		"(an earlier attempt answered 503 had committed); %d worker tasks failed and were retried",
		sc.name, len(l.ops), len(l.ops), out.unavailable, counts.requestFailed.Load()-requestsFailedBefore,
		since(out.firstFailure, failedAt), since(out.recovered, failedAt), since(out.lastFailure, failedAt), out.longestGap.Round(time.Millisecond),
		settledAt.Sub(failedAt).Round(time.Millisecond), reused, duplicates, counts.taskFailed.Load()-tasksFailedBefore)
	t.Logf("%s: the failure at %s; the monitor's events:\n%s", sc.name, failedAt.UTC().Format("15:04:05.000"), f.events(16))
}

// since is t - from rounded to milliseconds, or "never" for a zero t.
func since(t, from time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Sub(from).Round(time.Millisecond).String()
}

// answers is what the clients saw around the failure.
type answers struct {
	unavailable int
	// firstFailure and lastFailure are the first and last non-2xx answers after the failure;
	// recovered is the first 2xx answered after firstFailure to a request sent after it.
	firstFailure, lastFailure, recovered time.Time
	// longestGap is the longest time between two 2xx answers from the failure on.
	longestGap time.Duration
}

// checkAnswers checks that every answer other than 2xx was a 503 dependency_unavailable with
// Retry-After in the contract's error shape, and measures the outage.
func checkAnswers(t *testing.T, l *load, failedAt time.Time) answers {
	t.Helper()
	var out answers
	var oks []time.Time
	for _, a := range l.attempts {
		if a.err != nil {
			t.Errorf("%s sent at %s: no answer: %v", a.kind, a.sent.Format(time.StampMilli), a.err)
			continue
		}
		if a.status >= 200 && a.status <= 299 {
			if !a.answered.Before(failedAt) {
				oks = append(oks, a.answered)
			}
			continue
		}
		if a.status != http.StatusServiceUnavailable {
			t.Errorf("%s answered %d %s, want 2xx or 503", a.kind, a.status, a.body)
			continue
		}
		out.unavailable++
		if s, err := strconv.Atoi(a.retryAfter); err != nil || s < 1 {
			t.Errorf("%s answered 503 with Retry-After %q, want a whole number of seconds", a.kind, a.retryAfter)
		}
		var e struct {
			Error *struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Details []any  `json:"details"`
			} `json:"error"`
		}
		if err := json.Unmarshal(a.body, &e); err != nil || e.Error == nil || e.Error.Code != "dependency_unavailable" ||
			e.Error.Message == "" || e.Error.Details == nil {
			t.Errorf("%s answered 503 %s, want the error shape with code dependency_unavailable", a.kind, a.body)
		}
		if out.firstFailure.IsZero() || a.answered.Before(out.firstFailure) {
			out.firstFailure = a.answered
		}
		if a.answered.After(out.lastFailure) {
			out.lastFailure = a.answered
		}
	}
	slices.SortFunc(oks, func(a, b time.Time) int { return a.Compare(b) })
	prev := failedAt
	for _, ok := range oks {
		out.longestGap = max(out.longestGap, ok.Sub(prev))
		prev = ok
	}
	if !out.firstFailure.IsZero() {
		for _, a := range l.attempts {
			if a.err == nil && a.body == nil && a.sent.After(out.firstFailure) &&
				(out.recovered.IsZero() || a.answered.Before(out.recovered)) {
				out.recovered = a.answered
			}
		}
	}
	return out
}

// checkAllocations checks every acknowledged allocation against the database: the recipient has
// exactly the code it was answered, no code went to two recipients, and nobody else got one.
func checkAllocations(t *testing.T, h *apptest.Harness, m apptest.Merchant, list string, ops []operation) {
	t.Helper()
	rows, err := h.App.DB.Pool().Query(context.Background(), `SELECT a.recipient_email, c.code
		FROM allocations a JOIN codes c ON c.merchant_id = a.merchant_id AND c.list_id = a.list_id AND c.seq = a.seq
		WHERE a.merchant_id = $1 AND a.list_id = $2`, m.ID, list)
	if err != nil {
		t.Fatal(err)
	}
	codesOf := map[string][]string{}
	holders := map[string][]string{}
	for rows.Next() {
		var email, code string
		if err := rows.Scan(&email, &code); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(codesOf[email], code) {
			codesOf[email] = append(codesOf[email], code)
		}
		if !slices.Contains(holders[code], email) {
			holders[code] = append(holders[code], email)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	answered := map[string]string{}
	for _, op := range ops {
		if other, ok := answered[op.code]; ok {
			t.Errorf("code %s answered to %s and to %s", op.code, other, op.email)
		}
		answered[op.code] = op.email
		if got := codesOf[op.email]; len(got) != 1 || got[0] != op.code {
			t.Errorf("%s was answered %s at %s; the database has %v", op.email, op.code, op.allocatedAt.UTC().Format("15:04:05.000"), got)
		}
	}
	for code, emails := range holders {
		if len(emails) > 1 {
			t.Errorf("code %s is allocated to %d recipients: %v", code, len(emails), emails)
		}
	}
	if len(codesOf) != len(ops) {
		t.Errorf("%d recipients have allocations in the database, %d were answered 2xx", len(codesOf), len(ops))
	}
}

// waitForDeliveries waits until the worker has applied the shop's n deliveries.
func waitForDeliveries(t *testing.T, h *apptest.Harness, m apptest.Merchant, shop string, n int) {
	t.Helper()
	var stored, received, processed int
	waitFor(t, 5*time.Minute, "the worker to apply every stored delivery", func() bool {
		if err := h.App.DB.Pool().QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE status = 'received'),
			count(*) FILTER (WHERE status = 'processed') FROM webhook_deliveries WHERE merchant_id = $1 AND shop = $2`,
			m.ID, shop).Scan(&stored, &received, &processed); err != nil {
			t.Logf("count deliveries: %v", err)
			return false
		}
		return received == 0
	})
	if stored != n || processed != n {
		t.Errorf("%d deliveries stored and %d processed, want %d paid orders each once", stored, processed, n)
	}
}

// checkRedemptions checks that every paid order redeemed its code once: one counted redemption
// per order, on its code; each code used once; the list's counts agree.
func checkRedemptions(t *testing.T, h *apptest.Harness, m apptest.Merchant, list, shop string, ops []operation) {
	t.Helper()
	ctx := context.Background()
	rows, err := h.App.DB.Pool().Query(ctx, `SELECT r.order_id, c.code, r.counted, c.uses
		FROM redemptions r JOIN codes c ON c.merchant_id = r.merchant_id AND c.list_id = r.list_id AND c.seq = r.seq
		WHERE r.merchant_id = $1 AND r.list_id = $2 AND r.platform = 'shopify' AND r.shop = $3`, m.ID, list, shop)
	if err != nil {
		t.Fatal(err)
	}
	type redemption struct {
		code    string
		counted bool
		uses    int
	}
	byOrder := map[string][]redemption{}
	for rows.Next() {
		var order string
		var r redemption
		if err := rows.Scan(&order, &r.code, &r.counted, &r.uses); err != nil {
			t.Fatal(err)
		}
		byOrder[order] = append(byOrder[order], r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		got := byOrder[op.orderID]
		if len(got) != 1 || got[0].code != op.code || !got[0].counted || got[0].uses != 1 {
			t.Errorf("order %s with code %s, answered 2xx at %s: redemptions %+v, want one, counted, the code used once",
				op.orderID, op.code, op.paidAt.UTC().Format("15:04:05.000"), got)
		}
	}
	if len(byOrder) != len(ops) {
		t.Errorf("%d orders redeemed, %d paid orders sent", len(byOrder), len(ops))
	}
	var used, uses int
	if err := h.App.DB.Pool().QueryRow(ctx, `SELECT count(*) FILTER (WHERE uses > 0), coalesce(sum(uses), 0) FROM codes
		WHERE merchant_id = $1 AND list_id = $2`, m.ID, list).Scan(&used, &uses); err != nil {
		t.Fatal(err)
	}
	if used != len(ops) || uses != len(ops) {
		t.Errorf("%d codes used, %d uses in all; want %d each", used, uses, len(ops))
	}
	r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list, nil)
	var got struct {
		Counts struct {
			Total, Available, Delivered, Redeemed int
		} `json:"counts"`
	}
	r.JSON(t, &got)
	c := got.Counts
	if r.Status != http.StatusOK || c.Total != codesPerScenario || c.Redeemed != len(ops) || c.Delivered != 0 ||
		c.Available != codesPerScenario-len(ops) {
		t.Errorf("list counts %d %+v, want %d redeemed, none delivered, %d available of %d",
			r.Status, c, len(ops), codesPerScenario-len(ops), codesPerScenario)
	}
}

// importCodes imports n codes prefix000001… into the list and waits for the import to succeed.
func importCodes(t *testing.T, h *apptest.Harness, m apptest.Merchant, list, prefix string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s%06d\n", prefix, i+1)
	}
	r := h.Do(t, apptest.Request{Method: http.MethodPost, Path: "/api/v1/lists/" + list + "/imports",
		Body: strings.NewReader(b.String()), ContentType: "text/plain", APIKey: m.APIKey})
	if r.Status != http.StatusAccepted {
		t.Fatalf("import: %d %s", r.Status, r.Body)
	}
	id := r.Map(t)["id"].(string)
	waitFor(t, 3*time.Minute, "the import to finish", func() bool {
		r := h.Admin(t, m, http.MethodGet, "/api/v1/lists/"+list+"/imports/"+id, nil)
		var imp struct {
			Status   string `json:"status"`
			Imported int    `json:"imported"`
		}
		r.JSON(t, &imp)
		switch imp.Status {
		case "succeeded":
			if imp.Imported != n {
				t.Fatalf("import: %d codes imported, want %d", imp.Imported, n)
			}
			return true
		case "failed":
			t.Fatalf("import failed: %s", r.Body)
		}
		return false
	})
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	apptest.Eventually(t, timeout, what, cond)
}
