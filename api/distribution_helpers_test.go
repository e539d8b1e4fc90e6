package api_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/internal/apptest"
)

// seedCodes adds n codes named prefix-1 … prefix-n to a list through the store.
func seedCodes(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string, prefix string, n int) []string {
	t.Helper()
	ctx := context.Background()
	l, err := h.App.Lists.Get(ctx, uuid.MustParse(m.ID), uuid.MustParse(listID))
	if err != nil {
		t.Fatal(err)
	}
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprintf("%s-%d", prefix, i+1)
	}
	for start := 0; start < n; start += 20000 {
		end := min(start+20000, n)
		if _, err := h.App.DB.AddCodes(ctx, l, codes[start:end]); err != nil {
			t.Fatal(err)
		}
	}
	return codes
}

// allocate asks for a code for an email and campaign.
func allocate(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID, email, campaign string) apptest.Response {
	t.Helper()
	return h.Admin(t, m, "POST", "/api/v1/lists/"+listID+"/allocations", map[string]any{
		"recipient": map[string]any{"email": email}, "campaign": campaign,
	})
}

// counts reads a list's counts.
func counts(t testing.TB, h *apptest.Harness, m apptest.Merchant, listID string) map[string]float64 {
	t.Helper()
	var l struct {
		Counts map[string]float64 `json:"counts"`
		Status string             `json:"status"`
	}
	h.Admin(t, m, "GET", "/api/v1/lists/"+listID, nil).JSON(t, &l)
	l.Counts["status_"+l.Status] = 1
	return l.Counts
}
