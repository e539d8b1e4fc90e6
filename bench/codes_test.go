package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// runs is how many times each million-code figure is measured (the median is quoted).
func runs() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// resetCodes empties the code tables so every run starts from the same state as the raw table.
func resetCodes(tb testing.TB, p *pgxpool.Pool) {
	if _, err := p.Exec(context.Background(), `TRUNCATE codes, allocations, code_events, import_chunks, order_codes, redemptions, reservations`); err != nil {
		tb.Fatal(err)
	}
	if _, err := p.Exec(context.Background(), `VACUUM ANALYZE list_counters`); err != nil {
		tb.Fatal(err)
	}
}

// rawCopy copies the codes of a CSV file into a fresh table shaped like codes (same columns,
// indexes and fillfactor) with COPY, and returns the time it took: the physical limit of an import.
func rawCopy(tb testing.TB, p *pgxpool.Pool, path string) time.Duration {
	ctx := context.Background()
	for _, q := range []string{`DROP TABLE IF EXISTS raw_codes`, `CREATE TABLE raw_codes (LIKE codes INCLUDING ALL)`, sameStorage("raw_codes")} {
		if _, err := p.Exec(ctx, q); err != nil {
			tb.Fatal(err)
		}
	}
	merchant, list := "00000000-0000-0000-0000-000000000001", "00000000-0000-0000-0000-000000000002"
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Scan() // header
	var seq int64
	src := pgx.CopyFromFunc(func() ([]any, error) {
		if !s.Scan() {
			return nil, s.Err()
		}
		seq++
		code := s.Text()
		return []any{merchant, list, seq, code, code}, nil
	})
	n, err := p.CopyFrom(ctx, pgx.Identifier{"raw_codes"}, []string{"merchant_id", "list_id", "seq", "code", "lookup"}, src)
	if err != nil {
		tb.Fatal(err)
	}
	d := time.Since(start)
	if n == 0 {
		tb.Fatal("raw copy copied nothing")
	}
	_, _ = p.Exec(ctx, `DROP TABLE raw_codes`)
	return d
}

// sameStorage gives a raw table the storage parameters (fillfactor) of codes, which LIKE does not
// copy, so the raw figure is measured on a table shaped exactly like ours.
func sameStorage(table string) string {
	return `DO $$ DECLARE o text; BEGIN
		SELECT array_to_string(reloptions, ', ') INTO o FROM pg_class WHERE relname = 'codes' AND relkind = 'r';
		IF o IS NOT NULL THEN EXECUTE format('ALTER TABLE ` + table + ` SET (%s)', o); END IF; END $$`
}

// upload streams a CSV file as multipart to the imports endpoint and waits for the import to end.
func upload(tb testing.TB, s *stack, key, listID, path string) (time.Duration, map[string]any) {
	start := time.Now()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", "codes.csv")
		if err == nil {
			var f *os.File
			if f, err = os.Open(path); err == nil {
				_, err = io.Copy(part, f)
				f.Close()
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, _ := http.NewRequest("POST", s.url+"/api/v1/lists/"+listID+"/imports", pr)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	var imp map[string]any
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		tb.Fatalf("upload: %d %s", resp.StatusCode, b)
	}
	_ = json.Unmarshal(b, &imp)
	id := imp["id"].(string)
	for {
		call(tb, "GET", s.url+"/api/v1/lists/"+listID+"/imports/"+id, key, nil, &imp)
		switch imp["status"] {
		case "succeeded":
			return time.Since(start), imp
		case "failed":
			tb.Fatalf("import failed: %v", imp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func createList(tb testing.TB, s *stack, key string) string {
	var l map[string]any
	if st := call(tb, "POST", s.url+"/api/v1/lists", key, map[string]any{"name": "bench " + time.Now().Format(time.RFC3339Nano)}, &l); st != 201 {
		tb.Fatalf("create list: %d %v", st, l)
	}
	return l["id"].(string)
}

const million = 1_000_000

// BenchmarkImport1M: a 1,000,000-code CSV through the HTTP API, upload to succeeded, beside a raw
// COPY of the same codes into a table with the same indexes; and the peak RSS of gateway and
// worker, each started fresh for the import.
func BenchmarkImport1M(b *testing.B) {
	p := pool(b, 4)
	defer p.Close()
	path := writeCSV(b, million, uint64(time.Now().UnixNano()))
	defer os.Remove(path)
	var ours, raw, ratios, gwRSS, wkRSS []float64
	for r := 0; r < runs(); r++ {
		resetCodes(b, p)
		raw = append(raw, rawCopy(b, p, path).Seconds())
		resetCodes(b, p)
		s := startStack(b)
		keys := merchant(b)
		list := createList(b, s, keys.APIKey)
		d, imp := upload(b, s, keys.APIKey, list, path)
		if imp["imported"].(float64) != million {
			b.Fatalf("imported %v codes, want %d", imp["imported"], million)
		}
		ours = append(ours, d.Seconds())
		ratios = append(ratios, d.Seconds()/raw[len(raw)-1])
		gwRSS = append(gwRSS, float64(s.gateway.peakRSS())/(1<<20))
		wkRSS = append(wkRSS, float64(s.worker.peakRSS())/(1<<20))
		s.stop(b)
	}
	report(row{"import 1M-code CSV, upload → succeeded (s)", fmt.Sprintf("%.2f", median(ours)), fmt.Sprintf("%.2f (raw COPY)", median(raw)),
		fmt.Sprintf("%.2f× (goal ≤ 1.5×)", median(ratios)), "runs: ours " + fmtList(ours, "s") + "; raw " + fmtList(raw, "s")})
	report(row{"peak RSS during 1M import (MB)", fmt.Sprintf("gateway %.0f, worker %.0f", median(gwRSS), median(wkRSS)), "150 (goal)", "", "VmHWM of fresh processes"})
}

// BenchmarkImport10M: peak memory of gateway and worker during a 10,000,000-code import.
func BenchmarkImport10M(b *testing.B) {
	if os.Getenv("BENCH_10M") == "0" {
		b.Skip("BENCH_10M=0")
	}
	p := pool(b, 4)
	defer p.Close()
	path := writeCSV(b, 10*million, uint64(time.Now().UnixNano()))
	defer os.Remove(path)
	resetCodes(b, p)
	raw := rawCopy(b, p, path)
	resetCodes(b, p)
	s := startStack(b)
	defer s.stop(b)
	keys := merchant(b)
	list := createList(b, s, keys.APIKey)
	d, imp := upload(b, s, keys.APIKey, list, path)
	if imp["imported"].(float64) != 10*million {
		b.Fatalf("imported %v", imp["imported"])
	}
	report(row{"import 10M-code CSV (s)", fmt.Sprintf("%.1f", d.Seconds()), fmt.Sprintf("%.1f (raw COPY)", raw.Seconds()), fmt.Sprintf("%.2f×", d.Seconds()/raw.Seconds()), ""})
	report(row{"peak RSS during 10M import (MB)", fmt.Sprintf("gateway %.0f, worker %.0f", float64(s.gateway.peakRSS())/(1<<20), float64(s.worker.peakRSS())/(1<<20)), "150 (goal)", "", "VmHWM"})
}

// BenchmarkGenerate1M: one batch of 1,000,000 generated codes, request → succeeded, beside a raw
// COPY of 1,000,000 codes of the same shape.
func BenchmarkGenerate1M(b *testing.B) {
	p := pool(b, 4)
	defer p.Close()
	path := writeCSV(b, million, uint64(time.Now().UnixNano()))
	defer os.Remove(path)
	var ours, raw, ratios []float64
	for r := 0; r < runs(); r++ {
		resetCodes(b, p)
		raw = append(raw, rawCopy(b, p, path).Seconds())
		resetCodes(b, p)
		s := startStack(b)
		keys := merchant(b)
		list := createList(b, s, keys.APIKey)
		start := time.Now()
		var batch map[string]any
		if st := call(b, "POST", s.url+"/api/v1/lists/"+list+"/batches", keys.APIKey, map[string]any{"count": million, "prefix": "GEN", "length": 10}, &batch); st != 202 {
			b.Fatalf("batch: %d %v", st, batch)
		}
		for {
			var page struct{ Items []map[string]any }
			call(b, "GET", s.url+"/api/v1/lists/"+list+"/batches", keys.APIKey, nil, &page)
			if st := page.Items[0]["status"]; st == "succeeded" {
				break
			} else if st == "failed" {
				b.Fatalf("batch failed: %v", page.Items[0])
			}
			time.Sleep(20 * time.Millisecond)
		}
		d := time.Since(start)
		ours = append(ours, d.Seconds())
		ratios = append(ratios, d.Seconds()/raw[len(raw)-1])
		s.stop(b)
	}
	report(row{"generate 1M codes in one batch (s)", fmt.Sprintf("%.2f", median(ours)), fmt.Sprintf("%.2f (raw COPY)", median(raw)),
		fmt.Sprintf("%.2f× (goal ≤ 1.5×)", median(ratios)), "runs: ours " + fmtList(ours, "s") + "; raw " + fmtList(raw, "s")})
}

// countingWriter counts bytes and lines.
type countingWriter struct{ bytes, lines int64 }

func (w *countingWriter) Write(b []byte) (int, error) {
	w.bytes += int64(len(b))
	w.lines += int64(strings.Count(string(b), "\n"))
	return len(b), nil
}

// BenchmarkExport1M: the streamed CSV export of a 1,000,000-code list, rows per second, beside a
// raw COPY (SELECT …) TO STDOUT of the same rows.
func BenchmarkExport1M(b *testing.B) {
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	path := writeCSV(b, million, uint64(time.Now().UnixNano()))
	defer os.Remove(path)
	s := startStack(b)
	defer s.stop(b)
	keys := merchant(b)
	list := createList(b, s, keys.APIKey)
	upload(b, s, keys.APIKey, list, path)
	var merchantID string
	if err := p.QueryRow(context.Background(), `SELECT merchant_id FROM code_lists WHERE id = $1`, list).Scan(&merchantID); err != nil {
		b.Fatal(err)
	}
	var ours, raw, ratios []float64
	for r := 0; r < runs(); r++ {
		start := time.Now()
		req, _ := http.NewRequest("GET", s.url+"/api/v1/lists/"+list+"/export?state=all", nil)
		req.Header.Set("Authorization", "Bearer "+keys.APIKey)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		var cw countingWriter
		_, _ = io.Copy(&cw, resp.Body)
		resp.Body.Close()
		d := time.Since(start)
		if cw.lines != million+1 {
			b.Fatalf("export had %d lines, want %d", cw.lines, million+1)
		}
		ours = append(ours, float64(million)/d.Seconds())

		conn, err := p.Acquire(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		var rw countingWriter
		_, err = conn.Conn().PgConn().CopyTo(context.Background(), &rw, fmt.Sprintf(`COPY (SELECT code, state, recipient_external_id,
			recipient_email, recipient_phone, campaign, delivered_at, redeemed_at, available_till, uses FROM codes
			WHERE merchant_id = '%s' AND list_id = '%s' ORDER BY seq) TO STDOUT WITH (FORMAT csv, HEADER)`, merchantID, list))
		conn.Release()
		if err != nil {
			b.Fatal(err)
		}
		raw = append(raw, float64(million)/time.Since(start).Seconds())
		ratios = append(ratios, ours[len(ours)-1]/raw[len(raw)-1])
	}
	report(row{"export 1M codes (rows/s)", fmt.Sprintf("%.0f", median(ours)), fmt.Sprintf("%.0f (raw COPY TO STDOUT)", median(raw)),
		fmt.Sprintf("%.2f of raw", median(ratios)), ""})
}
