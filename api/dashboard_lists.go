package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// dashboardLists registers the lists page.
func (h *handlers) dashboardLists(owner *gin.RouterGroup) {
	owner.GET("/lists", h.listsPage)
}

// listRow is one row of the lists table.
type listRow struct {
	ID        uuid.UUID
	Name      string
	Fixed     bool
	Status    core.ListStatus
	LowStock  bool
	Available int64
	Delivered int64
	Redeemed  int64
	ExpiresAt *time.Time
}

// listsData is what lists.html shows: 50 lists and the cursor of the next ones.
type listsData struct {
	Lists []listRow
	Next  string
	After string
}

// listRowOf is a list as the table shows it. Low stock is the alerts' rule: fewer codes available
// than the list's warning threshold, but not none (that is exhausted).
func listRowOf(l core.List, now time.Time) listRow {
	status := l.Status(now)
	return listRow{
		ID: l.ID, Name: l.Name, Fixed: l.Kind == core.KindFixed, Status: status,
		LowStock: status == core.StatusActive && l.Kind == core.KindUnique && l.LowStockThreshold > 0 &&
			l.Counts.Available > 0 && l.Counts.Available < l.LowStockThreshold,
		Available: l.Counts.Available, Delivered: l.Counts.Delivered, Redeemed: l.Counts.Redeemed, ExpiresAt: l.ExpiresAt,
	}
}

// listsPage is GET /app and /app/lists: the merchant's lists, 50 at a time ("Load more" passes
// the next cursor as ?after=). Counts come from the lists' counters.
func (h *handlers) listsPage(c *gin.Context) {
	after := c.Query("after")
	lists, next, err := h.Lists.List(c.Request.Context(), merchantID(c), core.Page{Limit: 50, Cursor: after})
	if err != nil {
		fail(c, err)
		return
	}
	now := time.Now()
	rows := make([]listRow, len(lists))
	for i, l := range lists {
		rows[i] = listRowOf(l, now)
	}
	h.page(c, http.StatusOK, "lists.html", listsData{Lists: rows, Next: next, After: after})
}
