package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/coupongate/coupongate/core"
)

// exportCodes reads the code column of an export, checking its header.
func exportCodes(t *testing.T, out string) []string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("the export is not CSV (%v): %q", err, out)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != core.ExportHeader {
		t.Fatalf("the export's header is not %q: %q", core.ExportHeader, out)
	}
	codes := []string{}
	for _, r := range rows[1:] {
		codes = append(codes, r[0])
	}
	slices.Sort(codes)
	return codes
}

func TestExport(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	list := s.createList(t, "export")
	empty := s.createList(t, "nothing in it")
	all := []string{"E-1", "E-2", "E-3", "E-4", "E-5", "E-6"}
	s.importCodes(t, list, all...)
	handed := map[string]bool{}
	for _, email := range []string{"ann@example.com", "bob@example.com"} {
		a := s.callJSON(t, "POST", "/api/v1/lists/"+list+"/allocations", `{"recipient": {"email": "`+email+`"}, "campaign": "=1+1"}`, http.StatusCreated)
		handed[a["code"].(string)] = true
	}
	var delivered, redeemed, undelivered []string
	for _, c := range all {
		if handed[c] {
			delivered = append(delivered, c)
		}
	}
	redeemed = delivered[:1]
	s.callJSON(t, "POST", "/api/v1/orders", `{"platform": "custom", "shop": "cli", "order_id": "1", "status": "paid", "codes": ["`+redeemed[0]+`"]}`, http.StatusOK)
	// One code the storefront never saw is removed: "all" still has it, "undelivered" does not.
	var removed string
	for _, c := range all {
		if !handed[c] && removed == "" {
			removed = c
			if status, b := s.call(t, "DELETE", "/api/v1/lists/"+list+"/codes/"+c, "", nil); status != http.StatusNoContent {
				t.Fatalf("remove %s: %d %s", c, status, b)
			}
		} else if !handed[c] {
			undelivered = append(undelivered, c)
		}
	}

	for _, tt := range []struct {
		state string
		want  []string
	}{
		{"all", all}, {"delivered", delivered}, {"undelivered", undelivered}, {"redeemed", redeemed},
	} {
		t.Run(tt.state, func(t *testing.T) {
			t.Parallel()
			r := ctl(t, "export", "--list", list, "--state", tt.state)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if got := exportCodes(t, r.stdout); !slices.Equal(got, tt.want) {
				t.Errorf("codes %v, want %v", got, tt.want)
			}
			// Byte for byte what the API's export gives (columns, states, times, the campaign
			// guarded against spreadsheet formulas).
			status, api := s.call(t, "GET", "/api/v1/lists/"+list+"/export?state="+tt.state, "", nil)
			if status != http.StatusOK || string(api) != r.stdout {
				t.Errorf("couponctl wrote\n%s\nthe API answers %d\n%s", r.stdout, status, api)
			}
			if !strings.Contains(r.stderr, "export: done (") || strings.Contains(r.stdout, "export:") {
				t.Errorf("progress: stderr %q", r.stderr)
			}
		})
	}
	t.Run("the default state is all, and the merchant may be named", func(t *testing.T) {
		t.Parallel()
		r := ctl(t, "export", "--list", list, "--merchant", s.merchant)
		if got := exportCodes(t, r.stdout); r.code != 0 || !slices.Equal(got, all) {
			t.Errorf("exit %d, codes %v", r.code, got)
		}
	})
	t.Run("an empty list gives the header alone", func(t *testing.T) {
		t.Parallel()
		for _, state := range []string{"all", "redeemed"} {
			r := ctl(t, "export", "--list", empty, "--state", state)
			if r.code != 0 || r.stdout != core.ExportHeader+"\n" || !strings.Contains(r.stderr, "export: done (0 codes)") {
				t.Errorf("%s: exit %d, stdout %q, stderr %q", state, r.code, r.stdout, r.stderr)
			}
		}
	})
	t.Run("on a terminal, a bar on stderr", func(t *testing.T) {
		t.Parallel()
		var out, errs bytes.Buffer
		c := newCLI(&out, &errs)
		c.tty = true
		if code := c.main(context.Background(), []string{"export", "--list", list}); code != 0 {
			t.Fatalf("exit %d: %s", code, errs.String())
		}
		if got := exportCodes(t, out.String()); !slices.Equal(got, all) {
			t.Errorf("codes %v", got)
		}
		if !strings.HasSuffix(errs.String(), "\r\x1b[Kexport [==============================] 100%  6 codes\n") {
			t.Errorf("stderr %q", errs.String())
		}
		if strings.ContainsAny(out.String(), "\r\x1b") {
			t.Error("the bar reached stdout")
		}
	})
	t.Run("another merchant's list", func(t *testing.T) {
		t.Parallel()
		other, err := couponctl(t, "merchant", "create", "--name", "CLI Export Other", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if r := ctl(t, "export", "--list", list, "--merchant", other["merchant_id"]); r.code != 1 || r.stdout != "" {
			t.Errorf("exit %d, stdout %q", r.code, r.stdout)
		}
	})
}

// An export of more codes than the store sends in one piece arrives whole and in list order.
func TestExportManyCodes(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	const n = 30_000
	list := s.createList(t, "many")
	if r := ctl(t, "import", writeFile(t, "many.csv", bigFile("M", n)), "--list", list); r.code != 0 {
		t.Fatalf("import: exit %d: %s", r.code, r.stderr)
	}
	r := ctl(t, "export", "--list", list, "--state", "undelivered")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	rows := lines(r.stdout)
	if len(rows) != n+1 || rows[1] != "M-000000,available,,,,,,,,0" || !strings.HasPrefix(rows[n], "M-029999,") {
		t.Fatalf("%d lines, first %q, last %q", len(rows), rows[min(1, len(rows)-1)], rows[len(rows)-1])
	}
	if !strings.Contains(r.stderr, "export: done (30,000 codes)") {
		t.Errorf("stderr %q", r.stderr)
	}
}
