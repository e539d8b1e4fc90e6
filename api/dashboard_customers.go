package api

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/web"
)

// customersData is what customers.html shows: a customer looked up by email, phone or external
// id, and every code they got, across lists.
type customersData struct {
	Q string
	// Searched is set once a customer was looked up; Rows are their codes, newest hand-out first.
	Searched bool
	Rows     []codeRow
	// Known are the identifiers the codes were handed out under (emails, phones, external ids).
	Known []string
	// Capped says the customer got more codes than the page lists (the newest are shown).
	Capped bool
	Error  string
}

// customerCodesShown is how many codes the customers page lists (core.RecipientView's bound).
const customerCodesShown = 500

// customersPage is GET /app/customers?q=: a customer by email address, phone number or external
// id, and every code handed to them, across lists, each linking to its page.
func (h *handlers) customersPage(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	data := customersData{Q: q}
	if q == "" {
		h.page(c, http.StatusOK, "customers.html", data)
		return
	}
	entries, err := h.Recipients.Search(c.Request.Context(), merchantID(c), q)
	if fields, ok := web.FieldErrorsOf(err); ok {
		data.Error = strings.Join(valuesOf(fields), " ")
		h.page(c, http.StatusUnprocessableEntity, "customers.html", data)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	data.Searched, data.Capped = true, len(entries) >= customerCodesShown
	now := time.Now()
	seen := map[string]bool{}
	for _, e := range entries {
		data.Rows = append(data.Rows, codeRowOf(e.List, e.Code, now))
		if r := e.Code.Recipient; r != nil {
			for _, id := range []string{r.Email, r.Phone, r.ExternalID} {
				if id != "" && !seen[strings.ToLower(id)] {
					seen[strings.ToLower(id)] = true
					data.Known = append(data.Known, id)
				}
			}
		}
	}
	h.page(c, http.StatusOK, "customers.html", data)
}
