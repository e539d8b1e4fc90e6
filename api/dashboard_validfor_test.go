package api_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/internal/apptest"
)

// TestListPagesValidForAfterHandOut: the list form sets "Valid for after hand-out" as an amount
// and a unit, shows it again when editing, clears it when left empty, and tells beside the field
// when it is 0 or given to a fixed list.
func TestListPagesValidForAfterHandOut(t *testing.T) {
	t.Parallel()
	h := apptest.Start(t, env, apptest.Options{})
	m := h.NewMerchant(t, "Valid For Form")
	b := lpSignIn(t, h, m, "owner@example.com", core.RoleOwner)
	lpWant(t, "new list form", b.get(t, "/app/lists/new"), http.StatusOK,
		"Valid for after hand-out", `<label class="visually-hidden" for="list-valid-for-unit">Valid for after hand-out, unit</label>`)

	sentence := "Enter how long a code stays valid after hand-out as a whole number above 0, at most 10 years, or leave it empty; fixed lists cannot have it."
	for _, c := range []struct {
		name string
		form url.Values
	}{
		{"zero", url.Values{"name": {"X"}, "kind": {"unique"}, "valid_for_amount": {"0"}, "valid_for_unit": {"hours"}}},
		{"negative", url.Values{"name": {"X"}, "kind": {"unique"}, "valid_for_amount": {"-2"}, "valid_for_unit": {"days"}}},
		{"fixed list", url.Values{"name": {"X"}, "kind": {"fixed"}, "fixed_code": {"SHARED"}, "valid_for_amount": {"2"}, "valid_for_unit": {"days"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := b.post(t, "/app/lists/new", c.form)
			lpWant(t, c.name, r, http.StatusUnprocessableEntity, "Some values are not right")
			lpFieldError(t, r, "list-valid-for", "valid_for", sentence)
		})
	}

	id := lpCreateList(t, b, url.Values{"name": {"Two hours"}, "kind": {"unique"}, "uses_per_code": {"1"},
		"reassign_amount": {"1"}, "reassign_unit": {"days"}, "valid_for_amount": {"2"}, "valid_for_unit": {"hours"}})
	read := func() core.List {
		t.Helper()
		l, err := h.App.Lists.Get(context.Background(), uuid.MustParse(m.ID), uuid.MustParse(id))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	if l := read(); l.ValidFor != 2*time.Hour {
		t.Fatalf("valid_for after create: %v, want 2h", l.ValidFor)
	}
	lpWant(t, "edit form", b.get(t, "/app/lists/"+id+"/edit"), http.StatusOK,
		`name="valid_for_amount" type="number" min="1" step="1" inputmode="numeric" value="2"`)

	lpLocation(t, b.post(t, "/app/lists/"+id+"/edit", url.Values{"name": {"Two hours"}, "uses_per_code": {"1"},
		"reassign_amount": {"1"}, "reassign_unit": {"days"}, "valid_for_amount": {"3"}, "valid_for_unit": {"days"}}))
	if l := read(); l.ValidFor != 72*time.Hour {
		t.Fatalf("valid_for after edit: %v, want 72h", l.ValidFor)
	}
	lpLocation(t, b.post(t, "/app/lists/"+id+"/edit", url.Values{"name": {"Two hours"}, "uses_per_code": {"1"},
		"reassign_amount": {"1"}, "reassign_unit": {"days"}, "valid_for_amount": {""}, "valid_for_unit": {"days"}}))
	if l := read(); l.ValidFor != 0 {
		t.Fatalf("valid_for after clearing: %v, want none", l.ValidFor)
	}
}
