package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/integrations/woocommerce"
	"github.com/coupongate/coupongate/integrations/woocommerce/woofake"
)

// BenchmarkWooCommercePush100k: a 100,000-code list (BENCH_WOO_PUSH_CODES) pushed into a fake
// WooCommerce store run in the bench process (plain HTTP, OAuth 1.0a), from the POST to the push
// active with every code pushed, BENCH_RUNS times (the median is quoted), each run a new list
// into a new, empty fake; checks that the store holds exactly the list's codes and none failed.
// Beside it: the fake's own ceiling, measured in the same run: the same coupons as 100-coupon
// batch requests sent straight to a fresh, empty fake with the woocommerce.Store client, one at a
// time, four in flight and as many as the pusher's window may grow to, the fastest of the three
// (the fake serves one batch at a time; more in flight only overlaps the reading of requests).
// The note gives the CPU each side spent during our push: the worker, the bench database's
// PostgreSQL backends, and the bench process (the fake).
func BenchmarkWooCommercePush100k(b *testing.B) {
	n := envInt("BENCH_WOO_PUSH_CODES", 100_000)
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	// LOG_LEVEL=info: the worker logs "woocommerce push done" with its requests and window.
	s := startStack(b, "LOG_LEVEL=info")
	defer s.stop(b)
	if addr := os.Getenv("BENCH_WORKER_DEBUG_ADDR"); addr != "" { // profile the worker during the bench
		restartWorker(b, s, "DEBUG_ADDR="+addr)
	}
	keys := merchant(b)

	var ours, limits, ratios []float64
	var lastNote string
	for run := range runs() {
		fake := startWooFake(b)
		list, codes := seedList(b, s, keys.APIKey, n, fmt.Sprintf("WP%d", run))
		conn := wooConnect(b, s, keys.APIKey, fake)

		before := fake.Requests()
		cpu := startCPU(b, p, s.worker.cmd.Process.Pid)
		elapsed, last := wooPushTimed(b, s, p, keys.APIKey, list, conn, n)
		spent := cpu.since(b)
		requests := fake.Requests() - before
		if last.Failed != 0 || last.Pending != 0 {
			b.Fatalf("push done with %d failed, %d pending: %+v", last.Failed, last.Pending, last)
		}
		wooCheckStore(b, fake, codes)
		fake.Close()

		// The fake's ceiling: the same coupons into a fresh fake that starts empty as ours did.
		best, how, bestCPU := time.Duration(0), "", time.Duration(0)
		var tried []string
		for _, inFlight := range []int{1, 4, woocommerce.MaxPushWindow} {
			cpu0 := selfCPU()
			d := wooCeiling(b, codes, inFlight)
			cpu := selfCPU() - cpu0
			tried = append(tried, fmt.Sprintf("%d in flight %.2f s", inFlight, d.Seconds()))
			if best == 0 || d < best {
				best, how, bestCPU = d, fmt.Sprintf("%d in flight", inFlight), cpu
			}
		}
		batches := (n + woocommerce.MaxBatchItems - 1) / woocommerce.MaxBatchItems
		rate, limit := float64(requests)/elapsed.Seconds(), float64(batches)/best.Seconds()
		ours, limits, ratios = append(ours, elapsed.Seconds()), append(limits, best.Seconds()), append(ratios, rate/limit)
		lastNote = fmt.Sprintf("last run: %d requests to the store (%.0f/s), the fake's best %s (%s); CPU during our push: worker %.2f s, PostgreSQL %.2f s, fake %.2f s; during the fake's best: %.2f s (the fake and its client); our wall time beyond the fake's %s per request",
			requests, rate, how, strings.Join(tried, ", "), spent.process.Seconds(), spent.postgres.Seconds(), spent.bench.Seconds(),
			bestCPU.Seconds(), ms((elapsed-best)/time.Duration(max(requests, 1))))
	}
	report(row{fmt.Sprintf("push %d codes to WooCommerce (fake, plain HTTP, OAuth 1.0a), POST → active, median of %d", n, len(ours)),
		fmt.Sprintf("%.2f s (%s)", median(ours), fmtList(ours, " s")),
		fmt.Sprintf("%.2f s: the fake's own rate, %d-coupon batch requests straight to an empty fake (%s)", median(limits), woocommerce.MaxBatchItems, fmtList(limits, " s")),
		fmt.Sprintf("%.2f of the fake's rate (%s)", median(ratios), fmtList(ratios, "")),
		lastNote + fmt.Sprintf("; every run: the store holds exactly the list's %d codes, 0 failed", n)})
}

// wooPushTimed pushes the list to the connection and waits until the push is active with n codes
// pushed; it returns the time from the POST to the moment the worker marked it active (the push's
// updated_at) and the push's last state as GET /lists/{id}/connections shows it. It waits by
// reading the push's row (one primary-key read every 20 ms): the listing counts the codes still
// to push, a scan of the list's rest that would take CPU from the push it measures.
func wooPushTimed(tb testing.TB, s *stack, p *pgxpool.Pool, key, list, conn string, n int) (time.Duration, wooPushState) {
	ctx := context.Background()
	start := time.Now()
	var created wooPushState
	if st := call(tb, "POST", s.url+"/api/v1/lists/"+list+"/connections", key, map[string]any{"connection_id": conn,
		"discount": map[string]any{"title": "Bench", "value_type": "percentage", "value": 10}}, &created); st != 202 {
		tb.Fatalf("push: %d %+v", st, created)
	}
	var done time.Time
	for deadline := start.Add(30 * time.Minute); ; {
		var state, reason string
		var pushed int64
		if err := p.QueryRow(ctx, `SELECT state, pushed, error, updated_at FROM list_connections WHERE list_id = $1 AND connection_id = $2`,
			list, conn).Scan(&state, &pushed, &reason, &done); err != nil {
			tb.Fatal(err)
		}
		if state == "active" && pushed == int64(n) {
			break
		}
		if state == "error" || state == "stopped" {
			tb.Fatalf("push ended %s: %s", state, reason)
		}
		if time.Now().After(deadline) {
			tb.Fatalf("push not done after 30 minutes: %s, %d pushed", state, pushed)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var page struct{ Items []wooPushState }
	if st := call(tb, "GET", s.url+"/api/v1/lists/"+list+"/connections", key, nil, &page); st != 200 || len(page.Items) != 1 {
		tb.Fatalf("pushes: %d %+v", st, page)
	}
	return done.Sub(start), page.Items[0]
}

// wooCheckStore fails unless the store holds exactly codes (lower-cased), each once and published.
func wooCheckStore(tb testing.TB, fake *woofake.Fake, codes []string) {
	inStore := fake.Coupons()
	got := make([]string, 0, len(inStore))
	for _, c := range inStore {
		if c.Status == "publish" {
			got = append(got, c.Code)
		}
	}
	slices.Sort(got)
	want := make([]string, len(codes))
	for i, c := range codes {
		want[i] = strings.ToLower(c)
	}
	slices.Sort(want)
	if len(inStore) != len(codes) || !slices.Equal(got, want) {
		tb.Fatalf("the store holds %d coupons (%d published), want the list's %d codes exactly", len(inStore), len(got), len(codes))
	}
}

// wooCeiling sends codes as 100-coupon batch requests, the coupons the pusher makes of them (the
// bench's discount, a push's tag), to a fresh fake from inFlight goroutines over a client that
// keeps a connection for each, and returns the time.
func wooCeiling(tb testing.TB, codes []string, inFlight int) time.Duration {
	fake := startWooFake(tb)
	defer fake.Close()
	api := woocommerce.Store{SiteURL: fake.URL(), ConsumerKey: woofake.DefaultConsumerKey, ConsumerSecret: woofake.DefaultConsumerSecret,
		HTTP: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: inFlight}}}
	tag := []woocommerce.Meta{{Key: woocommerce.PushTagKey, Value: woocommerce.PushTag(uuid.New(), uuid.New())}}
	ctx := context.Background()
	batches := (len(codes) + woocommerce.MaxBatchItems - 1) / woocommerce.MaxBatchItems
	res := load(tb, batches, inFlight, 0, func(i int) error {
		var batch woocommerce.CouponBatch
		for _, code := range codes[i*woocommerce.MaxBatchItems : min((i+1)*woocommerce.MaxBatchItems, len(codes))] {
			batch.Create = append(batch.Create, woocommerce.CouponInput{Code: code, DiscountType: "percent", Amount: "10", UsageLimit: 1,
				IndividualUse: true, MetaData: tag})
		}
		out, err := api.BatchCoupons(ctx, batch)
		if err != nil {
			return err
		}
		for _, r := range out.Create {
			if r.Err != nil || r.ID == 0 {
				return fmt.Errorf("ceiling batch %d: %+v", i, r)
			}
		}
		return nil
	})
	if got := len(fake.Coupons()); got != len(codes) {
		tb.Fatalf("the ceiling's store holds %d coupons, want %d", got, len(codes))
	}
	return res.elapsed
}
