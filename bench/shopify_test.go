package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify/shopifyfake"
	"github.com/coupongate/coupongate/store"
)

// benchAppSecret seals the bench shops' access tokens; the stack is started with the same one.
const benchAppSecret = "bench-app-secret-0123456789abcdef-0123456789"

// shopifyEnv is the stack's Shopify configuration: the app's credentials and where its Admin API is.
func shopifyEnv(clientID, clientSecret, adminURL string) []string {
	return []string{"APP_SECRET=" + benchAppSecret, "SHOPIFY_API_KEY=" + clientID, "SHOPIFY_API_SECRET=" + clientSecret,
		"SHOPIFY_ADMIN_URL=" + adminURL, "SHOPIFY_API_VERSION=2025-01"}
}

// installShop connects shop with an access token as the OAuth callback does (webhook
// subscriptions aside) and returns the new merchant's API key and the connection's id.
func installShop(tb testing.TB, shop, token string) (core.MerchantKeys, uuid.UUID) {
	ctx := context.Background()
	db, err := store.Open(ctx, env.DatabaseURL, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	sealer, err := store.NewSealer(benchAppSecret)
	if err != nil {
		tb.Fatal(err)
	}
	db.UseSealer(sealer)
	var keys core.MerchantKeys
	route, created, err := db.InstallShop(ctx, "shopify", shop, core.Credentials{AccessToken: token}, "write_discounts,read_orders,read_discounts",
		func() (core.StoredMerchant, error) {
			m, k, err := core.NewStoredMerchant("Bench "+shop, time.Now())
			keys = k
			return m, err
		})
	if err != nil {
		tb.Fatal(err)
	}
	if !created {
		tb.Fatalf("shop %s was installed before: no new merchant, no API key", shop)
	}
	return keys, route.ConnectionID
}

// benchShop is a shop domain no earlier run of the bench installed.
func benchShop(kind string) string {
	return fmt.Sprintf("bench-%s-%d.myshopify.com", kind, time.Now().UnixNano())
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// paidOrder is a minimal orders/paid body that used code at checkout.
func paidOrder(id int64, code string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": id, "name": fmt.Sprintf("#%d", 1000+id%100000), "email": fmt.Sprintf("buyer%d@example.com", id), "financial_status": "paid",
		"discount_codes":        []any{map[string]any{"code": code, "amount": "10.00", "type": "percentage"}},
		"discount_applications": []any{map[string]any{"type": "discount_code", "code": code, "value": "10.0", "value_type": "percentage"}},
	})
	return b
}

// delivery is one signed webhook delivery, built before the timed passes.
type delivery struct {
	body                []byte
	hmac, webhookID, ev string
}

// BenchmarkShopifyIntake: signed orders/paid deliveries per second and their latency through
// POST /webhooks/shopify with 64 clients, one order per code, then every delivery sent again with
// the same event id (Shopify's retries); the worker applies them as they come, and the bench
// waits until none is left received, every code counted exactly once. Beside the intake: raw
// single-row INSERT … ON CONFLICT DO NOTHING of the same bodies into a table shaped like
// webhook_deliveries over 64 pgx connections; beside the worker's rate: the intake's in the same
// run (webhookPace). BENCH_RUNS runs (a new shop and list each), medians quoted.
func BenchmarkShopifyIntake(b *testing.B) {
	n := envInt("BENCH_WEBHOOKS", 50_000)
	var runsOf []intakeRun
	for run := range runs() {
		runsOf = append(runsOf, shopifyIntakeRun(b, n, run))
	}
	reportIntake(b, "Shopify orders/paid", "Shopify deliveries sent again (same event id)", "Shopify", n, runsOf,
		"(goal ≥ 2,000/s, p99 < 50 ms)", "")
}

// intakeRun is what one run of an intake bench measured.
type intakeRun struct {
	// first and again are the two passes as the clients saw them; firstServer and againServer
	// the gateway's own time (Server-Timing); rawFirst and rawAgain the raw INSERTs.
	first, again, firstServer, againServer, rawFirst, rawAgain loadResult
	pace                                                       webhookPace
	bodyBytes                                                  int
	uses                                                       int64
	// cpu is what the gateway, the worker and PostgreSQL spent per delivery from the first sent
	// to the last applied (both passes: the gateway's also answers the repeats).
	cpu intakeCPU
}

// shopifyIntakeRun is one run of BenchmarkShopifyIntake with a new shop, list and orders, on a
// stack of its own (stopped before the raw INSERTs, whose 64 connections it would crowd).
func shopifyIntakeRun(b *testing.B, n, run int) intakeRun {
	const secret = "bench-shopify-secret"
	ctx := context.Background()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	if _, err := p.Exec(ctx, `TRUNCATE webhook_deliveries`); err != nil {
		b.Fatal(err)
	}
	shop := benchShop("intake")
	keys, _ := installShop(b, shop, "shpat_bench_intake")
	s := startStack(b, shopifyEnv("bench-client-id", secret, "http://127.0.0.1:1/{shop}")...)
	stopped := false
	defer func() {
		if !stopped {
			s.stop(b)
		}
	}()
	list, codes := seedList(b, s, keys.APIKey, n, fmt.Sprintf("W%d", run))
	var merchantID uuid.UUID
	if err := p.QueryRow(ctx, `SELECT merchant_id FROM code_lists WHERE id = $1`, list).Scan(&merchantID); err != nil {
		b.Fatal(err)
	}

	deliveries := make([]delivery, n)
	for i := range deliveries {
		body := paidOrder(int64(5_000_000_000+run*10_000_000+i), codes[i])
		deliveries[i] = delivery{body: body, hmac: shopifyfake.SignWebhook(secret, body),
			webhookID: fmt.Sprintf("bench-wh-%d-%d", run, i), ev: fmt.Sprintf("bench-ev-%d-%d", run, i)}
	}
	url := s.url + "/webhooks/shopify"
	// The gateway's own time per delivery, from reading the body to the 2xx (Server-Timing).
	var serverMu sync.Mutex
	var server []time.Duration
	send := func(want string) func(i int) error {
		return func(i int) error {
			d := deliveries[i]
			req, _ := http.NewRequest("POST", url, bytes.NewReader(d.body))
			h := req.Header
			h.Set("Content-Type", "application/json")
			h.Set("X-Shopify-Topic", "orders/paid")
			h.Set("X-Shopify-Hmac-Sha256", d.hmac)
			h.Set("X-Shopify-Shop-Domain", shop)
			h.Set("X-Shopify-Webhook-Id", d.webhookID)
			h.Set("X-Shopify-Event-Id", d.ev)
			h.Set("X-Shopify-Triggered-At", time.Now().UTC().Format(time.RFC3339Nano))
			h.Set("X-Shopify-API-Version", "2025-01")
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
	insert := func(off int) func(i int) error {
		return func(i int) error {
			d := deliveries[i]
			_, err := raw.Exec(ctx, `INSERT INTO raw_deliveries
				(merchant_id, id, platform, shop, topic, event_key, webhook_id, triggered_at, body, status)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'received')
				ON CONFLICT (merchant_id, platform, shop, event_key) DO NOTHING`,
				merchantID, ids[off+i], "shopify", shop, "orders/paid", d.ev, d.webhookID, time.Now().UTC(), d.body)
			return err
		}
	}
	r.rawFirst = load(b, n, clients, 0, insert(0))
	r.rawAgain = load(b, n, clients, 0, insert(n))
	_, _ = p.Exec(ctx, `DROP TABLE raw_deliveries`)
	return r
}

// webhookPace is how the worker kept up with the intake in one run, from the deliveries' own
// timestamps (the database's clock): when the first and the last were stored (received_at), when
// the last was applied (processed_at), and how many were applied when the last was stored.
type webhookPace struct {
	firstStored, lastStored, lastApplied time.Time
	// appliedByLastStored counts deliveries applied by the time the last one was stored: the
	// backlog the burst left is n minus it.
	appliedByLastStored int64
	// peakBacklog is the most deliveries stored and not yet applied at any moment.
	peakBacklog int64
	n           int64
}

// intakeRate is deliveries stored per second, first stored to last stored.
func (w webhookPace) intakeRate() float64 {
	return float64(w.n) / w.lastStored.Sub(w.firstStored).Seconds()
}

// applyRate is deliveries applied per second, first stored to last applied.
func (w webhookPace) applyRate() float64 {
	return float64(w.n) / w.lastApplied.Sub(w.firstStored).Seconds()
}

// burstRate is deliveries applied per second while the burst was stored.
func (w webhookPace) burstRate() float64 {
	return float64(w.appliedByLastStored) / w.lastStored.Sub(w.firstStored).Seconds()
}

// waitApplied waits until the worker has applied the merchant's n deliveries (none left
// received, n processed) and reads its pace from their timestamps.
func waitApplied(b *testing.B, p *pgxpool.Pool, merchantID uuid.UUID, n int) webhookPace {
	ctx := context.Background()
	var received, processed, total int64
	for deadline := time.Now().Add(15 * time.Minute); ; {
		if err := p.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'received'), count(*) FILTER (WHERE status = 'processed'), count(*)
			FROM webhook_deliveries WHERE merchant_id = $1`, merchantID).Scan(&received, &processed, &total); err != nil {
			b.Fatal(err)
		}
		if received == 0 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d deliveries still received after 15 minutes (%d processed of %d)", received, processed, total)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if total != int64(n) || processed != int64(n) {
		b.Fatalf("%d deliveries stored, %d processed; want %d each (%d sent twice)", total, processed, n, n)
	}
	w := webhookPace{n: int64(n)}
	if err := p.QueryRow(ctx, `SELECT min(received_at), max(received_at), max(processed_at),
			count(*) FILTER (WHERE processed_at <= (SELECT max(received_at) FROM webhook_deliveries WHERE merchant_id = $1))
		FROM webhook_deliveries WHERE merchant_id = $1`, merchantID).Scan(&w.firstStored, &w.lastStored, &w.lastApplied, &w.appliedByLastStored); err != nil {
		b.Fatal(err)
	}
	// Each delivery adds one to the backlog when stored and takes it away when applied; at equal
	// times the arrival counts first.
	if err := p.QueryRow(ctx, `SELECT max(backlog) FROM (
			SELECT sum(d) OVER (ORDER BY at, d DESC ROWS UNBOUNDED PRECEDING) AS backlog FROM (
				SELECT received_at AS at, 1 AS d FROM webhook_deliveries WHERE merchant_id = $1
				UNION ALL
				SELECT processed_at, -1 FROM webhook_deliveries WHERE merchant_id = $1) moves) running`,
		merchantID).Scan(&w.peakBacklog); err != nil {
		b.Fatal(err)
	}
	return w
}

// checkUsedOnce checks that each of the list's n codes has exactly one use and returns the uses.
func checkUsedOnce(b *testing.B, p *pgxpool.Pool, list string, n int) int64 {
	var once, uses, codeRows int64
	if err := p.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE uses = 1), coalesce(sum(uses), 0), count(*) FROM codes WHERE list_id = $1`,
		list).Scan(&once, &uses, &codeRows); err != nil {
		b.Fatal(err)
	}
	if once != int64(n) || uses != int64(n) || codeRows != int64(n) {
		b.Fatalf("%d of %d codes used exactly once, %d uses in all; want %d and %d", once, codeRows, uses, n, n)
	}
	return uses
}

// reportIntake prints an intake bench's rows: the medians of its runs, each run's figure beside.
func reportIntake(b *testing.B, what, againWhat, platform string, n int, rs []intakeRun, goal, note string) {
	pick := func(f func(intakeRun) float64) (float64, []float64) {
		xs := make([]float64, len(rs))
		for i, r := range rs {
			xs[i] = f(r)
		}
		return median(xs), xs
	}
	list := func(xs []float64, format string) string {
		parts := make([]string, len(xs))
		for i, x := range xs {
			parts[i] = fmt.Sprintf(format, x)
		}
		return strings.Join(parts, ", ")
	}
	msOf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	rate, rates := pick(func(r intakeRun) float64 { return r.first.perSecond() })
	c50, _ := pick(func(r intakeRun) float64 { return msOf(r.first.pct(.5)) })
	c99, _ := pick(func(r intakeRun) float64 { return msOf(r.first.pct(.99)) })
	g50, _ := pick(func(r intakeRun) float64 { return msOf(r.firstServer.pct(.5)) })
	g99, _ := pick(func(r intakeRun) float64 { return msOf(r.firstServer.pct(.99)) })
	raw, raws := pick(func(r intakeRun) float64 { return r.rawFirst.perSecond() })
	rawP99, _ := pick(func(r intakeRun) float64 { return msOf(r.rawFirst.pct(.99)) })
	ofRaw, ofRaws := pick(func(r intakeRun) float64 { return r.first.perSecond() / r.rawFirst.perSecond() })
	report(row{fmt.Sprintf("%s deliveries/s, HTTP, %d clients, %d deliveries, %d runs", what, clients, n, len(rs)),
		fmt.Sprintf("%.0f (runs %s; client p50 %.2f ms, p99 %.2f ms; gateway body-to-2xx p50 %.2f ms, p99 %.2f ms)", rate, list(rates, "%.0f"), c50, c99, g50, g99),
		fmt.Sprintf("%.0f raw INSERTs/s (runs %s; p99 %.2f ms)", raw, list(raws, "%.0f"), rawP99),
		fmt.Sprintf("%.2f of raw (runs %s) %s", ofRaw, list(ofRaws, "%.2f"), goal),
		fmt.Sprintf("the worker applies alongside; body %d bytes", rs[0].bodyBytes)})

	again, agains := pick(func(r intakeRun) float64 { return r.again.perSecond() })
	a50, _ := pick(func(r intakeRun) float64 { return msOf(r.again.pct(.5)) })
	a99, _ := pick(func(r intakeRun) float64 { return msOf(r.again.pct(.99)) })
	ag99, _ := pick(func(r intakeRun) float64 { return msOf(r.againServer.pct(.99)) })
	rawAgain, _ := pick(func(r intakeRun) float64 { return r.rawAgain.perSecond() })
	againRatio, _ := pick(func(r intakeRun) float64 { return r.again.perSecond() / r.rawAgain.perSecond() })
	report(row{againWhat,
		fmt.Sprintf("%.0f/s (runs %s; client p50 %.2f ms, p99 %.2f ms; gateway p99 %.2f ms)", again, list(agains, "%.0f"), a50, a99, ag99),
		fmt.Sprintf("%.0f raw conflicting INSERTs/s", rawAgain),
		fmt.Sprintf("%.2f of raw", againRatio), "all answered duplicate"})

	apply, applies := pick(func(r intakeRun) float64 { return r.pace.applyRate() })
	stored, storeds := pick(func(r intakeRun) float64 { return r.pace.intakeRate() })
	ratio, ratios := pick(func(r intakeRun) float64 { return r.pace.applyRate() / r.pace.intakeRate() })
	burst, _ := pick(func(r intakeRun) float64 { return r.pace.burstRate() })
	backlog, backlogs := pick(func(r intakeRun) float64 { return float64(r.pace.n - r.pace.appliedByLastStored) })
	peak, peaks := pick(func(r intakeRun) float64 { return float64(r.pace.peakBacklog) })
	drain, drains := pick(func(r intakeRun) float64 { return r.pace.lastApplied.Sub(r.pace.lastStored).Seconds() })
	var uses int64
	for _, r := range rs {
		uses += r.uses
	}
	report(row{fmt.Sprintf("%s deliveries applied by the worker (first stored → last applied)", platform),
		fmt.Sprintf("%.0f/s (runs %s); %.0f/s while the burst was stored", apply, list(applies, "%.0f"), burst),
		fmt.Sprintf("%.0f/s stored, first → last stored, same run (runs %s)", stored, list(storeds, "%.0f")),
		fmt.Sprintf("%.2f of intake (runs %s; goal ≈ 1, the most there is: no backlog grows, the last applied as it is stored)", ratio, list(ratios, "%.2f")),
		fmt.Sprintf("backlog: at most %.0f at any moment (runs %s), %.0f when the last was stored (runs %s), all applied %.1f s after it (runs %s); %d runs × %d deliveries sent twice, every code used once (%d uses)%s",
			peak, list(peaks, "%.0f"), backlog, list(backlogs, "%.0f"), drain, list(drains, "%.1f"), len(rs), n, uses, note)})
	gwCPU, _ := pick(func(r intakeRun) float64 { return r.cpu.gateway })
	wkCPU, wkCPUs := pick(func(r intakeRun) float64 { return r.cpu.worker })
	pgCPU, _ := pick(func(r intakeRun) float64 { return r.cpu.postgres })
	report(row{fmt.Sprintf("%s intake, CPU per delivery (first sent → last applied, medians)", platform),
		fmt.Sprintf("gateway %.0f µs (both passes), worker %.0f µs (runs %s)", gwCPU, wkCPU, list(wkCPUs, "%.0f")),
		fmt.Sprintf("PostgreSQL backends %.0f µs", pgCPU), "",
		fmt.Sprintf("one worker core applies about %.0f deliveries a second, one gateway core takes about %.0f (each sent twice)", 1e6/wkCPU, 1e6/gwCPU)})
}

// BenchmarkShopifyPush100k: a 100,000-code list (BENCH_PUSH_CODES) pushed into a fake Shopify
// whose cost bucket is Shopify's (1,000 points, restored at 100 a second), from the POST to the
// push active with every code pushed, beside the least time the bucket allows for the mutations
// alone (one discount create and one bulk add per 100 codes, 10 points each).
func BenchmarkShopifyPush100k(b *testing.B) {
	n := envInt("BENCH_PUSH_CODES", 100_000)
	fake, err := shopifyfake.Start(shopifyfake.Config{ClientID: "bench-client-id", ClientSecret: "bench-shopify-secret",
		BucketSize: 1000, RestoreRate: 100, BulkDelay: 50 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	cfg := fake.Config()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	shop := benchShop("push")
	keys, conn := installShop(b, shop, fake.IssueToken(shop))
	// LOG_LEVEL=info: the worker logs "push done" with its polls and throttle wait.
	s := startStack(b, append(shopifyEnv(cfg.ClientID, cfg.ClientSecret, fake.URL()+"/{shop}"), "LOG_LEVEL=info")...)
	defer s.stop(b)
	list, codes := seedList(b, s, keys.APIKey, n, "S")

	type push struct {
		State      string `json:"state"`
		DiscountID string `json:"discount_id"`
		Pushed     int64  `json:"pushed"`
		Failed     int64  `json:"failed"`
		Pending    int64  `json:"pending"`
		Error      string `json:"error"`
	}
	before := fake.Requests()
	start := time.Now()
	var created push
	if st := call(b, "POST", s.url+"/api/v1/lists/"+list+"/connections", keys.APIKey, map[string]any{"connection_id": conn.String(),
		"discount": map[string]any{"title": "Bench", "value_type": "percentage", "value": 10, "applies_once_per_customer": false}}, &created); st != 202 {
		b.Fatalf("push: %d %+v", st, created)
	}
	var last push
	for deadline := start.Add(20 * time.Minute); ; {
		var page struct{ Items []push }
		if st := call(b, "GET", s.url+"/api/v1/lists/"+list+"/connections", keys.APIKey, nil, &page); st != 200 || len(page.Items) != 1 {
			b.Fatalf("pushes: %d %+v", st, page)
		}
		last = page.Items[0]
		if last.State == "active" && last.Pushed == int64(n) {
			break
		}
		if last.State == "error" || last.State == "stopped" {
			b.Fatalf("push ended %s: %+v", last.State, last)
		}
		if time.Now().After(deadline) {
			b.Fatalf("push not done after 20 minutes: %+v", last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	elapsed := time.Since(start)
	requests := fake.Requests() - before
	if last.Failed != 0 || last.Pending != 0 {
		b.Fatalf("push done with %d failed, %d pending: %+v", last.Failed, last.Pending, last)
	}
	inShop := fake.RedeemCodes(shop, last.DiscountID)
	want := slices.Clone(codes)
	slices.Sort(want)
	if len(inShop) != n || !slices.Equal(inShop, want) {
		b.Fatalf("the shop's discount holds %d codes, want the list's %d", len(inShop), n)
	}

	calls := int(math.Ceil(float64(n-1)/float64(cfg.MaxCodesPerBulkAdd))) + 1
	minimum := max(0, (float64(calls)*10-cfg.BucketSize)/cfg.RestoreRate)
	ratio := "— (the bucket alone holds every mutation)"
	if minimum > 0 {
		ratio = fmt.Sprintf("%.2f× (goal ≤ 1.2×)", elapsed.Seconds()/minimum)
	}
	report(row{fmt.Sprintf("push %d codes to Shopify (fake, bucket %.0f, %.0f points/s), POST → active (s)", n, cfg.BucketSize, cfg.RestoreRate),
		fmt.Sprintf("%.1f", elapsed.Seconds()),
		fmt.Sprintf("%.1f (throttle minimum: %d mutations × 10 points)", minimum, calls),
		ratio,
		fmt.Sprintf("%d GraphQL requests (%d beyond the mutations); %d codes in the shop, 0 failed", requests, requests-calls, len(inShop))})
}
