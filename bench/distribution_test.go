package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

const clients = 64

// seedList creates a list and adds n codes straight through the store (the import path is
// measured elsewhere); it returns the list id and the codes.
func seedList(tb testing.TB, s *stack, key string, n int, prefix string) (string, []string) {
	list := createList(tb, s, key)
	ctx := context.Background()
	db, err := store.Open(ctx, env.DatabaseURL, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	var merchantID uuid.UUID
	if err := db.Pool().QueryRow(ctx, `SELECT merchant_id FROM code_lists WHERE id = $1`, list).Scan(&merchantID); err != nil {
		tb.Fatal(err)
	}
	l, err := core.NewLists(db).Get(ctx, merchantID, uuid.MustParse(list))
	if err != nil {
		tb.Fatal(err)
	}
	codes := make([]string, n)
	for i := range codes {
		codes[i] = prefix + mixCode(uint64(i), 77)
	}
	for i := 0; i < n; i += 50_000 {
		if _, err := db.AddCodes(ctx, l, codes[i:min(i+50_000, n)]); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := db.Pool().Exec(ctx, `ANALYZE codes`); err != nil {
		tb.Fatal(err)
	}
	return list, codes
}

// post sends a JSON POST with a header key and returns status and body.
func post(url, header, key string, body []byte) (int, []byte, error) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set(header, key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// rawTable copies a list's codes into a fresh table shaped like codes, for the raw baselines.
func rawTable(tb testing.TB, p *pgxpool.Pool, list string) (merchantID string, n int64) {
	ctx := context.Background()
	for _, q := range []string{`DROP TABLE IF EXISTS raw_alloc`, `CREATE TABLE raw_alloc (LIKE codes INCLUDING ALL)`, sameStorage("raw_alloc"),
		`INSERT INTO raw_alloc SELECT * FROM codes WHERE list_id = '` + list + `'`,
		`UPDATE raw_alloc SET state = 'available', delivered_at = NULL, recipient_email = NULL`, `VACUUM ANALYZE raw_alloc`} {
		if _, err := p.Exec(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	if err := p.QueryRow(ctx, `SELECT merchant_id, count(*) FROM raw_alloc GROUP BY merchant_id`).Scan(&merchantID, &n); err != nil {
		tb.Fatal(err)
	}
	return merchantID, n
}

func allocations() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ALLOCATIONS")); err == nil && n > 0 {
		return n
	}
	return 200_000
}

// BenchmarkAllocate: allocations per second and latency through the HTTP API with 64 concurrent
// clients, zero duplicates verified afterwards, beside (a) the naive SKIP LOCKED statement and (b) a
// raw single-row UPDATE by primary key, both over pgx with 64 connections on a same-shaped table,
// measured in the same run. Each of BENCH_RUNS runs starts the stack afresh on a new list; the row
// gives the medians, and each run's ratio to (b).
func BenchmarkAllocate(b *testing.B) {
	n := allocations()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	keys := merchant(b)
	ctx := context.Background()
	var rate, p50, p99, naiveRate, pkRate, pkP99, ratio []float64
	var cpuOurs, cpuRaw []cpuPerOp
	for range runs() {
		s := startStack(b)
		list, _ := seedList(b, s, keys.APIKey, n+n/4, "A")
		url := s.url + "/api/v1/lists/" + list + "/allocations"
		auth := "Bearer " + keys.APIKey
		meter := startCPU(b, p, s.gateway.cmd.Process.Pid)
		res := load(b, n, clients, 0, func(i int) error {
			body := []byte(`{"recipient":{"external_id":"r` + strconv.Itoa(i) + `"},"campaign":"bench"}`)
			st, out, err := post(url, "Authorization", auth, body)
			if err != nil || st != 201 {
				return fmt.Errorf("allocation %d: %d %s %v", i, st, out, err)
			}
			return nil
		})
		cpuOurs = append(cpuOurs, meter.since(b).per(n))
		s.stop(b)
		var handed, distinct int
		if err := p.QueryRow(ctx, `SELECT count(*), count(DISTINCT seq) FROM allocations WHERE list_id = $1`, list).Scan(&handed, &distinct); err != nil {
			b.Fatal(err)
		}
		if handed != n || distinct != n {
			b.Fatalf("%d allocations, %d distinct codes; want %d each", handed, distinct, n)
		}
		merchantID, rows := rawTable(b, p, list)
		raw := pool(b, clients)
		naive := load(b, int(rows), clients, 15*time.Second, func(i int) error {
			_, err := raw.Exec(ctx, `UPDATE raw_alloc SET state = 'delivered', delivered_at = now(), recipient_email = $3
				WHERE merchant_id = $1 AND list_id = $2 AND seq = (SELECT seq FROM raw_alloc WHERE merchant_id = $1 AND list_id = $2
				AND state = 'available' ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)`, merchantID, list, strconv.Itoa(i))
			return err
		})
		if _, err := raw.Exec(ctx, `UPDATE raw_alloc SET state = 'available', delivered_at = NULL, recipient_email = NULL`); err != nil {
			b.Fatal(err)
		}
		if _, err := raw.Exec(ctx, `VACUUM ANALYZE raw_alloc`); err != nil {
			b.Fatal(err)
		}
		var seqs atomic.Int64
		meter = startCPU(b, p, 0)
		pk := load(b, n, clients, 0, func(i int) error {
			_, err := raw.Exec(ctx, `UPDATE raw_alloc SET state = 'delivered', delivered_at = now(), recipient_email = $4
				WHERE merchant_id = $1 AND list_id = $2 AND seq = $3`, merchantID, list, seqs.Add(1), strconv.Itoa(i))
			return err
		})
		cpuRaw = append(cpuRaw, meter.since(b).per(n))
		_, _ = raw.Exec(ctx, `DROP TABLE raw_alloc`)
		raw.Close()
		rate, p50, p99 = append(rate, res.perSecond()), append(p50, msf(res.pct(.5))), append(p99, msf(res.pct(.99)))
		naiveRate, pkRate, pkP99 = append(naiveRate, naive.perSecond()), append(pkRate, pk.perSecond()), append(pkP99, msf(pk.pct(.99)))
		ratio = append(ratio, res.perSecond()/pk.perSecond())
	}
	runRatios := make([]string, len(ratio))
	for i, r := range ratio {
		runRatios[i] = fmt.Sprintf("%.2f", r)
	}
	report(row{fmt.Sprintf("allocations/s, HTTP, %d clients, %d allocations a run, 0 duplicates, median of %d runs", clients, n, len(rate)),
		fmt.Sprintf("%.0f (p50 %.2f ms, p99 %.2f ms)", median(rate), median(p50), median(p99)),
		fmt.Sprintf("(a) naive SKIP LOCKED %.0f; (b) raw PK UPDATE %.0f (p99 %.2f ms)", median(naiveRate), median(pkRate), median(pkP99)),
		fmt.Sprintf("%.2f of (b), runs %s (goal ≥ 0.6, p99 ≤ 20 ms)", median(ratio), strings.Join(runRatios, ", ")),
		fmt.Sprintf("%.1f× (a); CPU a call, medians: %s; a raw UPDATE: %s", median(rate)/median(naiveRate), medianCPU(cpuOurs, "gateway"), medianCPU(cpuRaw, ""))})
}

// BenchmarkValidate: storefront validations per second and p99 through the HTTP API with 64
// clients, beside raw indexed lookups of the same codes over pgx measured in the same run; and the
// medians of unknown versus known codes (a guess must not be told apart by its timing). Each of
// BENCH_RUNS runs starts the stack afresh and measures the raw lookups after stopping it; the rows
// give the medians, and the note each run's ratio.
func BenchmarkValidate(b *testing.B) {
	const n = 100_000
	p := pool(b, 4)
	resetCodes(b, p)
	keys := merchant(b)
	const failures = "VALIDATION_FAILURES_PER_MINUTE=100000000"
	s := startStack(b, failures)
	list, codes := seedList(b, s, keys.APIKey, 200_000, "V")
	s.stop(b)
	var merchantID string
	if err := p.QueryRow(context.Background(), `SELECT merchant_id FROM code_lists WHERE id = $1`, list).Scan(&merchantID); err != nil {
		b.Fatal(err)
	}
	p.Close()
	ctx := context.Background()
	var rate, p50, p99, rawRate, rawP99, ratio, unknownP50, knownP50 []float64
	var cpuOurs, cpuRaw []cpuPerOp
	cpuPool := pool(b, 1)
	defer cpuPool.Close()
	for range runs() {
		s := startStack(b, failures)
		url := s.url + "/storefront/v1/validate"
		validate := func(code string) error {
			st, out, err := post(url, "X-Storefront-Key", keys.StorefrontKey, []byte(`{"code":"`+code+`"}`))
			if err != nil || st != 200 {
				return fmt.Errorf("validate: %d %s %v", st, out, err)
			}
			return nil
		}
		meter := startCPU(b, cpuPool, s.gateway.cmd.Process.Pid)
		res := load(b, n, clients, 0, func(i int) error { return validate(codes[(i*7919)%len(codes)]) })
		cpuOurs = append(cpuOurs, meter.since(b).per(n))
		known := load(b, 20_000, clients, 0, func(i int) error { return validate(codes[(i*104729)%len(codes)]) })
		unknown := load(b, 20_000, clients, 0, func(i int) error { return validate("V" + mixCode(uint64(i), 991)) })
		s.stop(b)
		raw := pool(b, clients)
		meter = startCPU(b, cpuPool, 0)
		lookups := load(b, n, clients, 0, func(i int) error {
			var seq int64
			var state string
			return raw.QueryRow(ctx, `SELECT seq, state FROM codes WHERE merchant_id = $1 AND lookup = $2`, merchantID, codes[(i*7919)%len(codes)]).Scan(&seq, &state)
		})
		cpuRaw = append(cpuRaw, meter.since(b).per(n))
		raw.Close()
		rate, p50, p99 = append(rate, res.perSecond()), append(p50, msf(res.pct(.5))), append(p99, msf(res.pct(.99)))
		rawRate, rawP99 = append(rawRate, lookups.perSecond()), append(rawP99, msf(lookups.pct(.99)))
		ratio = append(ratio, res.perSecond()/lookups.perSecond())
		unknownP50, knownP50 = append(unknownP50, msf(unknown.pct(.5))), append(knownP50, msf(known.pct(.5)))
	}
	medians := fmt.Sprintf("median of %d runs", len(rate))
	report(row{"validations/s, HTTP, 64 clients, " + medians, fmt.Sprintf("%.0f (p50 %.2f ms, p99 %.2f ms)", median(rate), median(p50), median(p99)),
		fmt.Sprintf("%.0f raw indexed lookups/s (p99 %.2f ms)", median(rawRate), median(rawP99)),
		fmt.Sprintf("%.2f of raw (goal ≥ 0.60, p99 ≤ 10 ms)", median(ratio)),
		fmt.Sprintf("each run: %s of raw; p99 %s; CPU a validation, medians: %s; a raw lookup: %s", fmtList(ratio, ""), fmtList(p99, " ms"),
			medianCPU(cpuOurs, "gateway"), medianCPU(cpuRaw, ""))})
	ratios := make([]float64, len(unknownP50))
	for i := range ratios {
		ratios[i] = unknownP50[i] / knownP50[i]
	}
	report(row{"validation latency, unknown vs known code, " + medians, fmt.Sprintf("unknown p50 %.2f ms", median(unknownP50)),
		fmt.Sprintf("known p50 %.2f ms", median(knownP50)), fmt.Sprintf("%.2f", median(ratios)),
		"a guess costs about what a real code costs; each run: " + fmtList(ratios, "")})
}

// msf is a duration in milliseconds, for medians.
func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkPaidOrders: paid order events per second through the HTTP API with 64 clients, each
// order with its own code, then every order sent again: each is counted exactly once.
func BenchmarkPaidOrders(b *testing.B) {
	const n = 50_000
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	s := startStack(b)
	defer s.stop(b)
	keys := merchant(b)
	list, codes := seedList(b, s, keys.APIKey, n, "P")
	url := s.url + "/api/v1/orders"
	auth := "Bearer " + keys.APIKey
	send := func(i int) error {
		body, _ := json.Marshal(map[string]any{"platform": "custom", "shop": "bench", "order_id": "o" + strconv.Itoa(i), "status": "paid", "codes": []string{codes[i]}})
		st, out, err := post(url, "Authorization", auth, body)
		if err != nil || st != 200 {
			return fmt.Errorf("order %d: %d %s %v", i, st, out, err)
		}
		return nil
	}
	res := load(b, n, clients, 0, send)
	again := load(b, n, clients, 0, send)
	var redeemed, uses int64
	if err := p.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE state = 'redeemed'), coalesce(sum(uses), 0) FROM codes WHERE list_id = $1`, list).Scan(&redeemed, &uses); err != nil {
		b.Fatal(err)
	}
	if redeemed != n || uses != n {
		b.Fatalf("%d redeemed codes with %d uses after %d orders sent twice; want %d and %d", redeemed, uses, n, n, n)
	}
	report(row{"paid order events/s, HTTP, 64 clients", fmt.Sprintf("%.0f (p99 %s)", res.perSecond(), ms(res.pct(.99))),
		fmt.Sprintf("replayed: %.0f/s (p99 %s)", again.perSecond(), ms(again.pct(.99))), "",
		fmt.Sprintf("%d orders sent twice → %d uses counted", n, uses)})
}
