package api_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/internal/apptest"
)

// importByHand adds codes to a list as one succeeded import by actor, the way the import pipeline
// leaves them (an imports row, codes with its number, the counters), and returns the import's id.
func importByHand(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, actor string, codes ...string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	mid, lid := uuid.MustParse(m.ID), uuid.MustParse(listID)
	l, err := h.App.Lists.Get(ctx, mid, lid)
	if err != nil {
		t.Fatal(err)
	}
	lookups := make([]string, len(codes))
	for i, c := range codes {
		lookups[i] = l.Lookup(c)
	}
	tx, err := h.App.DB.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	var number int
	var base int64
	id := uuid.New()
	steps := []func() error{
		func() error {
			return tx.QueryRow(ctx, `UPDATE code_lists SET next_import = next_import + 1, next_seq = next_seq + $3
				WHERE merchant_id = $1 AND id = $2 RETURNING next_import - 1, next_seq - $3`, mid, lid, len(codes)).Scan(&number, &base)
		},
		func() error {
			_, err := tx.Exec(ctx, `INSERT INTO imports (merchant_id, id, list_id, number, status, format, actor, rows, imported, started_at, finished_at)
				VALUES ($1, $2, $3, $4, 'succeeded', 'txt', $5, $6, $6, now(), now())`, mid, id, lid, number, actor, len(codes))
			return err
		},
		func() error {
			_, err := tx.Exec(ctx, `INSERT INTO codes (merchant_id, list_id, seq, code, lookup, import_no)
				SELECT $1, $2, $3 + u.o - 1, u.c, u.l, $6 FROM unnest($4::text[], $5::text[]) WITH ORDINALITY AS u(c, l, o)`,
				mid, lid, base, codes, lookups, number)
			return err
		},
		func() error {
			_, err := tx.Exec(ctx, `UPDATE list_counters SET available = available + $3 WHERE merchant_id = $1 AND list_id = $2 AND shard = 0`,
				mid, lid, len(codes))
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return id
}

// numbered makes codes prefix0001 … prefixN.
func numbered(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%04d", prefix, i+1)
	}
	return out
}

// get is an admin GET of a raw path (already escaped as the test wants it).
func get(t testing.TB, h *apptest.Harness, m apptest.Merchant, path string) apptest.Response {
	t.Helper()
	return h.Do(t, apptest.Request{Method: http.MethodGet, Path: path, APIKey: m.APIKey})
}

// codePath is the path of one code of a list, escaped as a client library would.
func codePath(listID, code string) string {
	return "/api/v1/lists/" + listID + "/codes/" + url.PathEscape(code)
}

// readCSV parses a CSV body, failing the test when it is not CSV.
func readCSV(t testing.TB, r apptest.Response) [][]string {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("CSV download: %d %s", r.Status, r.Body)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
		t.Fatalf("Content-Type %q, want text/csv", ct)
	}
	if cd := r.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment") {
		t.Fatalf("Content-Disposition %q, want an attachment", cd)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatalf("not CSV (%v): %s", err, r.Body)
	}
	return rows
}

// listCounts reads a list's counts.
func listCounts(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string) map[string]float64 {
	t.Helper()
	var l struct {
		Counts map[string]float64 `json:"counts"`
	}
	get(t, h, m, "/api/v1/lists/"+listID).JSON(t, &l)
	return l.Counts
}

// codeItem is a code answer as the tests read it.
type codeItem struct {
	Code      string            `json:"code"`
	State     string            `json:"state"`
	Uses      int               `json:"uses"`
	Recipient map[string]string `json:"recipient"`
	Campaign  *string           `json:"campaign"`
	Delivered *string           `json:"delivered_at"`
	Redeemed  *string           `json:"redeemed_at"`
	ExpiresAt *string           `json:"expires_at"`
	Timeline  []struct {
		At        string            `json:"at"`
		Type      string            `json:"type"`
		Actor     string            `json:"actor"`
		Channel   string            `json:"channel"`
		Recipient map[string]string `json:"recipient"`
		Order     string            `json:"order"`
		Details   map[string]any    `json:"details"`
	} `json:"timeline"`
}

// searchAll pages through a code search with the given query and page size and returns every code
// in the order served, failing on a repeated code.
func searchAll(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string, query url.Values, limit int) []codeItem {
	t.Helper()
	var all []codeItem
	seen := map[string]bool{}
	query.Set("limit", fmt.Sprint(limit))
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		r := get(t, h, m, "/api/v1/lists/"+listID+"/codes?"+query.Encode())
		if r.Status != http.StatusOK {
			t.Fatalf("search %s: %d %s", query.Encode(), r.Status, r.Body)
		}
		var p struct {
			Items      []codeItem `json:"items"`
			NextCursor string     `json:"next_cursor"`
		}
		r.JSON(t, &p)
		if len(p.Items) > limit {
			t.Fatalf("page of %d items for limit %d", len(p.Items), limit)
		}
		for _, c := range p.Items {
			if seen[c.Code] {
				t.Fatalf("code %q served twice", c.Code)
			}
			seen[c.Code] = true
		}
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all
		}
		query.Set("cursor", p.NextCursor)
	}
}
