package main

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestLists(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	spring := s.createList(t, "Spring welcome")
	empty := s.createList(t, `Empty\tone`)
	s.importCodes(t, spring, "SPRING-1", "SPRING-2", "SPRING-3", "SPRING-4", "SPRING-5")
	// One code handed out, another handed out and redeemed, a third removed.
	s.callJSON(t, "POST", "/api/v1/lists/"+spring+"/allocations", `{"recipient": {"email": "ann@example.com"}}`, http.StatusCreated)
	got := s.callJSON(t, "POST", "/api/v1/lists/"+spring+"/allocations", `{"recipient": {"email": "bob@example.com"}}`, http.StatusCreated)
	s.callJSON(t, "POST", "/api/v1/orders", `{"platform": "custom", "shop": "cli", "order_id": "1", "status": "paid", "codes": ["`+got["code"].(string)+`"]}`, http.StatusOK)
	removed := ""
	for _, c := range []string{"SPRING-1", "SPRING-2", "SPRING-3", "SPRING-4", "SPRING-5"} {
		if status, _ := s.call(t, "DELETE", "/api/v1/lists/"+spring+"/codes/"+c, "", nil); status == http.StatusNoContent {
			removed = c
			break
		}
	}
	if removed == "" {
		t.Fatal("no code could be removed")
	}

	t.Run("json", func(t *testing.T) {
		t.Parallel()
		r := ctl(t, "lists", "--merchant", s.merchant, "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		var out struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
			t.Fatalf("stdout is not JSON (%v): %s", err, r.stdout)
		}
		if len(out.Items) != 2 || out.Items[0]["id"] != spring || out.Items[1]["id"] != empty {
			t.Fatalf("items %v, want the two lists oldest first", out.Items)
		}
		// Each item is the list exactly as the admin API answers it.
		for _, item := range out.Items {
			api := s.callJSON(t, "GET", "/api/v1/lists/"+item["id"].(string), "", http.StatusOK)
			if !reflect.DeepEqual(item, api) {
				t.Errorf("couponctl lists gave\n%v\nthe API gives\n%v", item, api)
			}
		}
		counts := out.Items[0]["counts"].(map[string]any)
		want := map[string]any{"total": 4.0, "available": 2.0, "delivered": 1.0, "redeemed": 1.0, "removed": 1.0}
		if !reflect.DeepEqual(counts, want) {
			t.Errorf("counts %v, want %v", counts, want)
		}
	})
	t.Run("table", func(t *testing.T) {
		t.Parallel()
		r := ctl(t, "lists", "--merchant", s.merchant)
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		rows := lines(r.stdout)
		if len(rows) != 3 || strings.Join(strings.Fields(rows[0]), " ") != "ID NAME KIND STATUS TOTAL AVAILABLE DELIVERED REDEEMED REMOVED" {
			t.Fatalf("table:\n%s", r.stdout)
		}
		if f := strings.Fields(rows[1]); strings.Join(f, " ") != spring+" Spring welcome unique active 4 2 1 1 1" {
			t.Errorf("spring's row %q", rows[1])
		}
		if f := strings.Fields(rows[2]); strings.Join(f, " ") != empty+" Empty one unique active 0 0 0 0 0" {
			t.Errorf("the empty list's row %q (a tab in a name must not break the table)", rows[2])
		}
	})
	t.Run("a merchant without lists", func(t *testing.T) {
		t.Parallel()
		other, err := couponctl(t, "merchant", "create", "--name", "CLI No Lists", "--json")
		if err != nil {
			t.Fatal(err)
		}
		if r := ctl(t, "lists", "--merchant", other["merchant_id"], "--json"); r.code != 0 || r.stdout != "{\"items\":[]}\n" {
			t.Errorf("--json: exit %d, %q", r.code, r.stdout)
		}
		if r := ctl(t, "lists", "--merchant", other["merchant_id"]); r.code != 0 || !strings.HasSuffix(r.stdout, "(no lists)\n") {
			t.Errorf("table: exit %d, %q", r.code, r.stdout)
		}
	})
	t.Run("an unknown merchant", func(t *testing.T) {
		t.Parallel()
		id := uuid.NewString()
		if r := ctl(t, "lists", "--merchant", id); r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "no merchant has the id "+id) {
			t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})
}
