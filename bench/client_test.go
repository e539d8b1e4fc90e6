package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// client is the bench's HTTP client: enough idle connections for 64 concurrent callers.
var client = &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}

// merchant creates a merchant in the bench database and returns its keys.
func merchant(tb testing.TB) core.MerchantKeys {
	ctx := context.Background()
	db, err := store.Open(ctx, env.DatabaseURL, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	_, keys, err := core.NewMerchants(db).Create(ctx, "Bench Shop")
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

// call makes one HTTP call and decodes a JSON answer into out (when not nil).
func call(tb testing.TB, method, url, key string, body any, out any) int {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			tb.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

// pool opens a pgx pool on the bench database for the raw baselines.
func pool(tb testing.TB, conns int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(env.DatabaseURL)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.MaxConns, cfg.MinConns = conns, conns
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// mixCode is the i-th code of a run: 16 hex digits of a bijective mix of i and salt, so codes are
// distinct and arrive in random index order, as real codes do.
func mixCode(i, salt uint64) string {
	z := i ^ salt
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	z ^= z >> 31
	return fmt.Sprintf("%016X", z)
}

// writeCSV writes n codes under a Code header.
func writeCSV(tb testing.TB, n int, salt uint64) string {
	f, err := os.CreateTemp("", "codes-*.csv")
	if err != nil {
		tb.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString("Code\n")
	for i := 0; i < n; i++ {
		w.WriteString(mixCode(uint64(i), salt))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	f.Close()
	return f.Name()
}

// loadResult is what a load run measured.
type loadResult struct {
	ops     int
	elapsed time.Duration
	lat     []time.Duration
}

func (r loadResult) perSecond() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r loadResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

// load runs op n times (or until deadline, when set) over workers goroutines and records each
// call's latency. op gets a unique index; an error stops the run.
func load(tb testing.TB, n, workers int, deadline time.Duration, op func(i int) error) loadResult {
	var next atomic.Int64
	lats := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	stopAt := time.Time{}
	if deadline > 0 {
		stopAt = start.Add(deadline)
	}
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || (!stopAt.IsZero() && time.Now().After(stopAt)) || failed.Load() != nil {
					return
				}
				t0 := time.Now()
				if err := op(i); err != nil {
					failed.Store(err)
					return
				}
				lats[w] = append(lats[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := failed.Load(); err != nil {
		tb.Fatalf("load: %v", err)
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	return loadResult{ops: len(all), elapsed: elapsed, lat: all}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
