package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
)

// startWooFake starts a fake WooCommerce store in the bench process. It serves plain HTTP: the
// gateway and the worker are other processes and would not trust a TLS fake's self-signed
// certificate; over HTTP the client signs every request with OAuth 1.0a, which the fake verifies.
func startWooFake(tb testing.TB) *woofake.Fake {
	fake, err := woofake.Start(woofake.Config{TLS: false})
	if err != nil {
		tb.Fatal(err)
	}
	return fake
}

// wooConnect connects the fake store to the merchant with its default keys through
// POST /api/v1/connections/woocommerce (which creates the store's webhooks, each pinged at
// APP_URL) and returns the connection's id.
func wooConnect(tb testing.TB, s *stack, key string, fake *woofake.Fake) string {
	var conn struct {
		ID    string `json:"id"`
		State string `json:"state"`
	}
	if st := call(tb, "POST", s.url+"/api/v1/connections/woocommerce", key, map[string]any{"site_url": fake.URL(),
		"consumer_key": woofake.DefaultConsumerKey, "consumer_secret": woofake.DefaultConsumerSecret}, &conn); st != 201 || conn.ID == "" {
		tb.Fatalf("connect the store: %d %+v", st, conn)
	}
	return conn.ID
}

// wooPushState is one push as GET /api/v1/lists/{id}/connections shows it.
type wooPushState struct {
	State   string `json:"state"`
	Pushed  int64  `json:"pushed"`
	Failed  int64  `json:"failed"`
	Pending int64  `json:"pending"`
	Error   string `json:"error"`
}

// wooPush pushes the list to the connection and waits until the push is active with n codes
// pushed; it returns the time from the POST and the push's last state.
func wooPush(tb testing.TB, s *stack, key, list, conn string, n int) (time.Duration, wooPushState) {
	start := time.Now()
	var created wooPushState
	if st := call(tb, "POST", s.url+"/api/v1/lists/"+list+"/connections", key, map[string]any{"connection_id": conn,
		"discount": map[string]any{"title": "Bench", "value_type": "percentage", "value": 10}}, &created); st != 202 {
		tb.Fatalf("push: %d %+v", st, created)
	}
	for deadline := start.Add(30 * time.Minute); ; {
		var page struct{ Items []wooPushState }
		if st := call(tb, "GET", s.url+"/api/v1/lists/"+list+"/connections", key, nil, &page); st != 200 || len(page.Items) != 1 {
			tb.Fatalf("pushes: %d %+v", st, page)
		}
		last := page.Items[0]
		if last.State == "active" && last.Pushed == int64(n) {
			return time.Since(start), last
		}
		if last.State == "error" || last.State == "stopped" {
			tb.Fatalf("push ended %s: %+v", last.State, last)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("push not done after 30 minutes: %+v", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wooOrder is a minimal order.updated body: a paid (processing) order that used code.
func wooOrder(id int64, code string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "status": "processing", "currency": "USD", "total": "90.00",
		"billing":      map[string]any{"email": fmt.Sprintf("buyer%d@example.com", id)},
		"coupon_lines": []any{map[string]any{"id": id, "code": code, "discount": "10.00"}},
	})
	return b
}

// BenchmarkWooCommerceIntake: signed order.updated deliveries per second and their latency
// through POST /webhooks/woocommerce/{connection_id} with 64 clients, one order per code, then
// every delivery sent again byte for byte (answered duplicate); the worker applies them as they
// come, and the bench waits until none is left received, every code counted exactly once. Beside
// the intake: raw single-row INSERT … ON CONFLICT DO NOTHING of the same bodies into a table
// shaped like webhook_deliveries over 64 pgx connections; beside the worker's rate: the intake's
// in the same run. BENCH_RUNS runs (a new merchant, list and store each), medians quoted.
//
// The list's codes are Coupongate's (upper case) and are pushed to the fake store first, untimed:
// the store lowercases coupon codes, so its orders name them in lower case, and the worker finds
// them among the pushed codes without regard to case. That is the path a list made in Coupongate
// takes, and it costs the worker one more lookup than a code sent in its own case.
func BenchmarkWooCommerceIntake(b *testing.B) {
	n := envInt("BENCH_WOO_WEBHOOKS", 50_000)
	var runsOf []intakeRun
	var pushes []float64
	for run := range runs() {
		r, pushed := wooIntakeRun(b, n, run)
		runsOf = append(runsOf, r)
		pushes = append(pushes, pushed.Seconds())
	}
	reportIntake(b, "WooCommerce order.updated", "WooCommerce deliveries sent again (identical body)", "WooCommerce", n, runsOf, "",
		fmt.Sprintf("; the codes pushed first, untimed (%s s), and ordered in lower case", fmtList(pushes, "")))
}

// wooIntakeRun is one run of BenchmarkWooCommerceIntake with a new merchant, list and store, on a
// stack of its own (stopped before the raw INSERTs); it also answers how long the untimed push
// took.
func wooIntakeRun(b *testing.B, n, run int) (intakeRun, time.Duration) {
	ctx := context.Background()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	if _, err := p.Exec(ctx, `TRUNCATE webhook_deliveries`); err != nil {
		b.Fatal(err)
	}
	fake := startWooFake(b)
	defer fake.Close()
	s := startStack(b)
	stopped := false
	defer func() {
		if !stopped {
			s.stop(b)
		}
	}()
	keys := merchant(b)
	list, codes := seedList(b, s, keys.APIKey, n, fmt.Sprintf("WC%d", run))
	var merchantID uuid.UUID
	if err := p.QueryRow(ctx, `SELECT merchant_id FROM code_lists WHERE id = $1`, list).Scan(&merchantID); err != nil {
		b.Fatal(err)
	}
	conn := wooConnect(b, s, keys.APIKey, fake)
	pushed, _ := wooPush(b, s, keys.APIKey, list, conn, n)
	if got := len(fake.Coupons()); got != n {
		b.Fatalf("the store holds %d coupons after the push, want %d", got, n)
	}

	var hook woofake.Webhook
	for _, wh := range fake.Webhooks() {
		if wh.Topic == "order.updated" && wh.Status == "active" && strings.HasSuffix(wh.DeliveryURL, "/webhooks/woocommerce/"+conn) {
			hook = wh
		}
	}
	if hook.ID == 0 {
		b.Fatalf("no active order.updated webhook for connection %s in the store: %+v", conn, fake.Webhooks())
	}
	webhookID := strconv.FormatInt(hook.ID, 10)
	type wooDelivery struct {
		body      []byte
		signature string
	}
	deliveries := make([]wooDelivery, n)
	for i := range deliveries {
		body := wooOrder(int64(7_000_000+run*1_000_000+i), strings.ToLower(codes[i]))
		deliveries[i] = wooDelivery{body: body, signature: woocommerce.SignWebhook(body, hook.Secret)}
	}
	url := s.url + "/webhooks/woocommerce/" + conn
	source := fake.URL() + "/"
	// The gateway's own time per delivery, from reading the body to the 2xx (Server-Timing).
	var serverMu sync.Mutex
	var server []time.Duration
	send := func(want string) func(i int) error {
		return func(i int) error {
			d := deliveries[i]
			req, _ := http.NewRequest("POST", url, bytes.NewReader(d.body))
			h := req.Header
			h.Set("Content-Type", "application/json")
			h.Set("User-Agent", woofake.UserAgent)
			h.Set(woocommerce.HeaderSource, source)
			h.Set(woocommerce.HeaderTopic, "order.updated")
			h.Set(woocommerce.HeaderResource, "order")
			h.Set(woocommerce.HeaderEvent, "updated")
			h.Set(woocommerce.HeaderSignature, d.signature)
			h.Set(woocommerce.HeaderWebhookID, webhookID)
			h.Set(woocommerce.HeaderDeliveryID, fmt.Sprintf("%032x", i))
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			out, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if v, ok := strings.CutPrefix(resp.Header.Get("Server-Timing"), "intake;dur="); ok {
				if msf, perr := strconv.ParseFloat(v, 64); perr == nil {
					serverMu.Lock()
					server = append(server, time.Duration(msf*float64(time.Millisecond)))
					serverMu.Unlock()
				}
			}
			if err != nil || resp.StatusCode != 200 || !bytes.Contains(out, []byte(`"`+want+`"`)) {
				return fmt.Errorf("delivery %d: %d %s %v (want %s)", i, resp.StatusCode, out, err, want)
			}
			return nil
		}
	}
	takeServer := func() loadResult {
		serverMu.Lock()
		defer serverMu.Unlock()
		out := loadResult{ops: len(server), lat: slices.Clone(server)}
		slices.Sort(out.lat)
		server = server[:0]
		return out
	}
	var r intakeRun
	meter := startIntakeCPU(b, p, s)
	r.first = load(b, n, clients, 0, send("accepted"))
	r.firstServer = takeServer()
	r.again = load(b, n, clients, 0, send("duplicate"))
	r.againServer = takeServer()
	if r.firstServer.ops != n || r.againServer.ops != n {
		b.Fatalf("%d and %d of %d answers carried Server-Timing", r.firstServer.ops, r.againServer.ops, n)
	}
	r.pace = waitApplied(b, p, merchantID, n)
	r.cpu = meter.per(b, n)
	s.stop(b)
	stopped = true
	r.uses = checkUsedOnce(b, p, list, n)
	r.bodyBytes = len(deliveries[0].body)

	// The physical limit: the row intake stores per delivery, as single-row INSERTs.
	for _, q := range []string{`DROP TABLE IF EXISTS raw_deliveries`, `CREATE TABLE raw_deliveries (LIKE webhook_deliveries INCLUDING ALL)`} {
		if _, err := p.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	raw := pool(b, clients)
	defer raw.Close()
	ids := make([]uuid.UUID, 2*n)
	for i := range ids {
		ids[i] = uuid.New()
	}
	keysOf := make([]string, n)
	for i, d := range deliveries {
		keysOf[i] = fmt.Sprintf("order.updated:%x", sha256.Sum256(d.body))
	}
	site := strings.TrimRight(fake.URL(), "/")
	insert := func(off int) func(i int) error {
		return func(i int) error {
			_, err := raw.Exec(ctx, `INSERT INTO raw_deliveries
				(merchant_id, id, platform, shop, topic, event_key, webhook_id, triggered_at, body, status)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received')
				ON CONFLICT (merchant_id, platform, shop, event_key) DO NOTHING`,
				merchantID, ids[off+i], woocommerce.Platform, site, "order.updated", keysOf[i], webhookID, nil, deliveries[i].body)
			return err
		}
	}
	r.rawFirst = load(b, n, clients, 0, insert(0))
	r.rawAgain = load(b, n, clients, 0, insert(n))
	_, _ = p.Exec(ctx, `DROP TABLE raw_deliveries`)
	return r, pushed
}
