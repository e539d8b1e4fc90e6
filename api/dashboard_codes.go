package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// Finding codes, the code page and customers (issue 11, points 5 and 6): the pages staff may use
// as well as owners. A code's path segment is url.PathEscape'd (the router reads the escaped path
// and unescapeParams restores it), so codes holding '/', '+' or '%' have their own pages; the two
// codes a browser would resolve away as dot segments ("." and "..") go by a query instead
// (codeRef).

// dashboardCodes registers finding codes, the code page with its actions, and customers. Staff
// may use all of them except removing a code.
func (h *handlers) dashboardCodes(owner, staff *gin.RouterGroup) {
	staff.GET("/codes", h.findCodesPage)
	staff.GET("/customers", h.customersPage)
	staff.GET("/lists/:list_id/codes", h.listCodesPage)
	staff.GET("/lists/:list_id/codes/:code", h.codePage)
	staff.GET("/lists/:list_id/codes/:code/qr.svg", h.dashCodeRef, h.qrCode("svg"))
	staff.GET("/lists/:list_id/codes/:code/qr.png", h.dashCodeRef, h.qrCode("png"))
	staff.POST("/lists/:list_id/codes/:code/mark-used", h.markUsedForm)
	owner.GET("/lists/:list_id/codes/:code/remove", h.removeCodePage)
	owner.POST("/lists/:list_id/codes/:code/remove", h.removeCodeForm)
}

// ---- Addresses of codes -------------------------------------------------------------------------

// dotCode is the path segment standing for a code that is a dot segment ("." or ".."), which a
// browser would resolve away; the code then rides in ?code=.
const dotCode = "_"

// codeURL is the address of one of a code's pages: the code page (sub "") or a page under it
// ("qr.svg", "mark-used", "remove"), with extra query values.
func codeURL(listID uuid.UUID, code, sub string, q url.Values) string {
	seg := url.PathEscape(code)
	if code == "." || code == ".." {
		seg = dotCode
		if q == nil {
			q = url.Values{}
		}
		q.Set("code", code)
	}
	p := "/app/lists/" + listID.String() + "/codes/" + seg
	if sub != "" {
		p += "/" + sub
	}
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	return p
}

// codeParam is the code a code page's address names (see codeURL).
func codeParam(c *gin.Context) string {
	code := c.Param("code")
	if q := c.Query("code"); code == dotCode && (q == "." || q == "..") {
		return q
	}
	return code
}

// dashCodeRef puts the code of a dot-segment address into the path parameter, for handlers that
// read c.Param("code").
func (h *handlers) dashCodeRef(c *gin.Context) {
	for i, p := range c.Params {
		if p.Key == "code" {
			c.Params[i].Value = codeParam(c)
		}
	}
	c.Next()
}

// ---- Rows ---------------------------------------------------------------------------------------

// codeRow is one code as the search tables show it.
type codeRow struct {
	URL         string
	Code        string
	ListID      uuid.UUID
	ListName    string
	State       core.CodeState
	Reserved    bool
	Expired     bool
	Uses        int
	Limit       int64
	Recipient   string
	Campaign    string
	DeliveredAt *time.Time
	RedeemedAt  *time.Time
	ExpiresAt   *time.Time
}

func codeRowOf(l core.List, c core.Code, now time.Time) codeRow {
	return codeRow{
		URL: codeURL(l.ID, c.Code, "", nil), Code: c.Code, ListID: l.ID, ListName: l.Name, State: c.State,
		Reserved: c.Reserved(now), Expired: c.Expired(now), Uses: c.Uses, Limit: useLimit(l),
		Recipient: recipientText(c.Recipient), Campaign: c.Campaign,
		DeliveredAt: c.DeliveredAt, RedeemedAt: c.RedeemedAt, ExpiresAt: c.ExpiresAt,
	}
}

// useLimit is how many uses each code of the list has in all (0: no limit).
func useLimit(l core.List) int64 { return core.FoundCode{List: l}.UseLimit() }

// recipientText names a recipient by every identifier it has.
func recipientText(r *core.Recipient) string {
	if r == nil {
		return ""
	}
	var parts []string
	for _, s := range []string{r.Email, r.Phone, r.ExternalID} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " · ")
}

// codeStates are the state filter's choices: core's states and its two filters.
var codeStates = []struct{ Value, Label string }{
	{"", "Any state"},
	{string(core.StateAvailable), "Available"},
	{string(core.StateDelivered), "Delivered"},
	{string(core.FilterReserved), "Reserved"},
	{string(core.StateRedeemed), "Redeemed"},
	{string(core.StateRemoved), "Removed"},
	{string(core.FilterExpired), "Expired"},
}

// ---- Find codes ---------------------------------------------------------------------------------

// codesData is what codes.html shows: a list's codes (Head set) or the merchant's whole search.
type codesData struct {
	// Head is the list's header (owners) and List the list; nil on /app/codes.
	Head   *listHead
	List   *core.List
	Q      string
	State  string
	States []struct{ Value, Label string }
	// By is how q was read: "code" (a code or the start of one), "recipient", or "" (no q).
	By   string
	Rows []codeRow
	// Next is the address of the next rows ("Load more"); After is set on every page but the first.
	Next  string
	After string
	// Short is set when a filtered page ran out of its share of the list before it was full.
	Short bool
	// Searched is set when a search was made (q or a state).
	Searched bool
	// CustomerURL links a search that may be a person to the customers page.
	CustomerURL string
	// OtherURL reads q the other way (as a recipient, or as the start of a code).
	OtherURL string
	Error    string
}

// listCodesPage is GET /app/lists/:list_id/codes?q=&state=&by=&after=: the list's codes, 50 at a
// time. q is a code, the start of one, or a recipient's email, phone or external id: on the
// first page a q that names a recipient of the list's codes shows their codes (by=recipient),
// anything else the codes that start with it (by=code); the other reading is one link away.
func (h *handlers) listCodesPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	q, state, after, by := strings.TrimSpace(c.Query("q")), c.Query("state"), c.Query("after"), c.Query("by")
	data := codesData{List: &l, Q: q, State: state, States: codeStates, After: after, Searched: q != "" || state != ""}
	if dash(c).Role == core.RoleOwner {
		head := listHeadOf(l, "codes")
		data.Head = &head
	}
	query := core.CodeQuery{Page: core.Page{Limit: dashPageSize, Cursor: after}}
	if state != "" {
		if s, ok := core.ParseCodeState(state); ok {
			query.State = s
		} else if f, ok := core.ParseCodeFilter(state); ok {
			query.Filter = f
		} else {
			data.State, data.Error = "", "Choose a state from the list."
		}
	}
	base := "/app/lists/" + l.ID.String() + "/codes"
	link := func(by, after string) string {
		v := url.Values{}
		for k, s := range map[string]string{"q": q, "state": data.State, "by": by, "after": after} {
			if s != "" {
				v.Set(k, s)
			}
		}
		if len(v) == 0 {
			return base
		}
		return base + "?" + v.Encode()
	}
	var codes []core.Code
	var next string
	var err error
	if q != "" && by != "code" {
		query.Recipient = q
		codes, next, err = h.Codes.Search(c.Request.Context(), merchantID(c), l.ID, query)
		if err == nil && (by == "recipient" || len(codes) > 0) {
			data.By = "recipient"
		}
		query.Recipient = ""
	}
	if err == nil && q != "" && data.By == "" {
		query.Prefix = q
		codes, next, err = h.Codes.Search(c.Request.Context(), merchantID(c), l.ID, query)
		data.By = "code"
	} else if err == nil && q == "" {
		codes, next, err = h.Codes.Search(c.Request.Context(), merchantID(c), l.ID, query)
	}
	if fields, ok := web.FieldErrorsOf(err); ok {
		data.Error = strings.Join(valuesOf(fields), " ")
		h.page(c, http.StatusUnprocessableEntity, "codes.html", data)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	now := time.Now()
	for _, code := range codes {
		data.Rows = append(data.Rows, codeRowOf(l, code, now))
	}
	if next != "" {
		data.Next = link(data.By, next)
		data.Short = len(codes) < dashPageSize
	}
	switch data.By {
	case "recipient":
		data.OtherURL = link("code", "")
	case "code":
		if after == "" {
			data.OtherURL = link("recipient", "")
		}
	}
	h.page(c, http.StatusOK, "codes.html", data)
}

func valuesOf(m web.FieldErrors) []string {
	out := make([]string, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// findCodesPage is GET /app/codes?q=: a whole code across the merchant's lists, as a till types
// it (one code in one list opens its page at once), or the codes of a customer whose email,
// phone or external id q is.
func (h *handlers) findCodesPage(c *gin.Context) {
	q := strings.TrimSpace(c.Query("q"))
	data := codesData{Q: q, Searched: q != ""}
	if q == "" {
		h.page(c, http.StatusOK, "codes.html", data)
		return
	}
	matches, err := h.Codes.Lookup(c.Request.Context(), merchantID(c), q)
	if err != nil {
		fail(c, err)
		return
	}
	people, err := h.Recipients.Search(c.Request.Context(), merchantID(c), q)
	if fields, ok := web.FieldErrorsOf(err); ok {
		data.Error = strings.Join(valuesOf(fields), " ")
		h.page(c, http.StatusUnprocessableEntity, "codes.html", data)
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	if len(matches) == 1 && len(people) == 0 {
		h.seeOther(c, codeURL(matches[0].List.ID, matches[0].Code.Code, "", nil))
		return
	}
	now := time.Now()
	data.By = "code"
	for _, m := range matches {
		data.Rows = append(data.Rows, codeRowOf(m.List, m.Code, now))
	}
	for _, p := range people {
		if !containsCode(matches, p) {
			data.Rows = append(data.Rows, codeRowOf(p.List, p.Code, now))
		}
	}
	if len(people) > 0 {
		data.CustomerURL = "/app/customers?" + url.Values{"q": {q}}.Encode()
	}
	h.page(c, http.StatusOK, "codes.html", data)
}

func containsCode(matches []core.CodeMatch, e core.RecipientEntry) bool {
	for _, m := range matches {
		if m.List.ID == e.List.ID && m.Code.Code == e.Code.Code {
			return true
		}
	}
	return false
}

// ---- The code page ------------------------------------------------------------------------------

// timelineRow is one event of a code's timeline, in words.
type timelineRow struct {
	At      time.Time
	What    string
	Note    string
	Who     string
	Channel string
	Order   string
}

// codePageData is what code.html shows.
type codePageData struct {
	List core.List
	Code core.Code
	Row  codeRow
	// AddedAt is when the code came to the list, AddedAs how (Imported, Generated, Created).
	AddedAt  *time.Time
	AddedAs  string
	QRURL    string
	Timeline []timelineRow
	// MarkURL and RemoveURL are the actions' addresses; CanMark and CanRemove say whether the
	// person may use them on this code now.
	MarkURL   string
	RemoveURL string
	CanMark   bool
	CanRemove bool
	// UsedUp says the code has no use left, LastUse when and by whom it was last used.
	UsedUp  bool
	LastUse *timelineRow
	// Done is the outcome of the action just taken, Problem why an action was refused; both in
	// sentences.
	Done    string
	Problem string
	Errors  web.FieldErrors
	OrderID string
	Note    string
}

// codePage is GET /app/lists/:list_id/codes/:code: state, uses, recipient, campaign, dates, the QR
// code, the timeline (oldest first) and the actions.
func (h *handlers) codePage(c *gin.Context) {
	h.renderCode(c, http.StatusOK, codePageData{Done: doneSentence(c.Query("done"))})
}

// doneSentence is the sentence a code page shows after an action redirected to it.
func doneSentence(done string) string {
	switch done {
	case "used":
		return "Marked as used. The timeline below names you."
	case "counted":
		return "This order was already counted for this code, so nothing changed."
	case "removed":
		return "The code was removed: it will never be handed out. Its timeline stays."
	}
	return ""
}

// renderCode loads the list and the code and shows the code page with data's outcome.
func (h *handlers) renderCode(c *gin.Context, status int, data codePageData) {
	if h.loadCode(c, &data) {
		h.page(c, status, "code.html", data)
	}
}

// loadCode fills data with the list, the code, its timeline and what the person may do with it;
// false when it answered with an error page.
func (h *handlers) loadCode(c *gin.Context, data *codePageData) bool {
	l, ok := h.dashList(c)
	if !ok {
		return false
	}
	code, err := h.Codes.Get(c.Request.Context(), merchantID(c), l.ID, codeParam(c))
	if err != nil {
		fail(c, err)
		return false
	}
	d := dash(c)
	now := time.Now()
	data.List, data.Code, data.Row = l, code, codeRowOf(l, code, now)
	if len(code.Timeline) > 0 && !code.Timeline[0].At.IsZero() {
		at := code.Timeline[0].At
		data.AddedAt, data.AddedAs = &at, addedAs[code.Timeline[0].Type]
	}
	for _, e := range code.Timeline {
		row := timelineRowOf(e)
		data.Timeline = append(data.Timeline, row)
		if e.Type == core.EventRedeemed {
			last := row
			data.LastUse = &last
		}
	}
	limit := useLimit(l)
	data.UsedUp = limit > 0 && int64(code.Uses) >= limit
	if code.State != core.StateRemoved {
		data.QRURL = codeURL(l.ID, code.Code, "qr.svg", nil)
		data.MarkURL = codeURL(l.ID, code.Code, "mark-used", nil)
		data.CanMark = !data.UsedUp && !(l.RequireIssued && code.State == core.StateAvailable)
	}
	data.CanRemove = d.Role == core.RoleOwner && l.Kind == core.KindUnique && code.State == core.StateAvailable &&
		code.Uses == 0 && code.DeliveredAt == nil && !code.Reserved(now)
	if data.CanRemove {
		data.RemoveURL = codeURL(l.ID, code.Code, "remove", nil)
	}
	return true
}

// addedAs names the date a code came to its list by how it came.
var addedAs = map[string]string{core.EventImported: "Imported", core.EventGenerated: "Generated", core.EventCreated: "Created"}

// eventWords are the timeline's words for each event type.
var eventWords = map[string]string{
	core.EventCreated:   "Created with the list",
	core.EventImported:  "Imported",
	core.EventGenerated: "Generated",
	core.EventDelivered: "Handed out",
	core.EventReserved:  "Reserved by a checkout",
	core.EventReleased:  "Reservation ended",
	core.EventRedeemed:  "Used",
	core.EventOverUse:   "Used again, but no use was left: not counted",
	core.EventCancelled: "Order cancelled",
	core.EventRefunded:  "Order refunded",
	core.EventPending:   "Order pending",
	core.EventRemoved:   "Removed",
	core.EventPushed:    "Pushed to a shop",
}

// timelineRowOf puts an event in words: what happened (with its import, batch, recipient,
// campaign or use), the note, who did it, through which channel and for which order.
func timelineRowOf(e core.Event) timelineRow {
	row := timelineRow{At: e.At, Who: e.Actor, Channel: e.Channel, What: eventWords[e.Type]}
	if row.What == "" {
		row.What = e.Type
	}
	var det map[string]any
	_ = json.Unmarshal(e.Details, &det)
	num := func(k string) (int64, bool) {
		f, ok := det[k].(float64)
		return int64(f), ok
	}
	switch e.Type {
	case core.EventImported:
		if n, ok := num("import"); ok {
			row.What += " (import " + strconv.FormatInt(n, 10) + ")"
		}
	case core.EventGenerated:
		if n, ok := num("batch"); ok {
			row.What += " (batch " + strconv.FormatInt(n, 10) + ")"
		}
	case core.EventRedeemed:
		if n, ok := num("use"); ok {
			row.What += " (use " + strconv.FormatInt(n, 10) + ")"
		}
	case core.EventRemoved:
		if n, ok := num("removed"); ok && det["bulk"] == true {
			row.What += " with the list's other unused codes (" + strconv.FormatInt(n, 10) + " in all)"
		}
	}
	if r := recipientText(e.Recipient); r != "" && e.Type == core.EventDelivered {
		row.What += " to " + r
	}
	if s, _ := det["campaign"].(string); s != "" {
		row.What += ", campaign " + s
	}
	row.Note, _ = det["note"].(string)
	if id, _ := det["order_id"].(string); id != "" {
		if !strings.HasPrefix(id, "manual-") { // made up for a mark without an order
			row.Order = id
		}
	} else {
		row.Order = e.Order
	}
	return row
}

// markUsedForm is POST /app/lists/:list_id/codes/:code/mark-used: core's manual redemption with
// the person as actor, and an optional order and note. A code with no use left answers 409 with
// when and by whom it was used.
func (h *handlers) markUsedForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	code := codeParam(c)
	orderID, note := strings.TrimSpace(c.PostForm("order_id")), c.PostForm("note")
	out, err := h.Redeemer.Redeem(c.Request.Context(), merchantID(c), l.ID, code, core.ManualRedemption{OrderID: orderID, Note: note, Actor: dash(c).Actor})
	data := codePageData{OrderID: orderID, Note: note}
	switch {
	case err == nil:
		done := "used"
		if out.Outcome == core.OutcomeAlreadyCounted {
			done = "counted"
		}
		h.seeOther(c, codeURL(l.ID, out.Code, "", url.Values{"done": {done}}))
		return
	case errors.Is(err, core.ErrAlreadyUsed):
		if h.loadCode(c, &data) {
			data.Problem = alreadyUsed(data.LastUse)
			h.page(c, http.StatusConflict, "code.html", data)
		}
		return
	case errors.Is(err, core.ErrNotIssued):
		data.Problem = "This list only takes codes that were handed out, and this one was not: it was not marked as used."
		h.renderCode(c, http.StatusConflict, data)
		return
	}
	if fields, ok := web.FieldErrorsOf(err); ok {
		if fields["order_id"] != "" {
			fields["order_id"] = "The order must be at most 255 characters."
		}
		if fields["note"] != "" {
			fields["note"] = "The note must be at most 1,000 characters."
		}
		data.Errors = fields
		h.renderCode(c, http.StatusUnprocessableEntity, data)
		return
	}
	fail(c, err)
}

// alreadyUsed says when, by whom and for which order a code was last used.
func alreadyUsed(last *timelineRow) string {
	if last == nil {
		return "Already used, so nothing was changed."
	}
	s := "Already used: on " + last.At.UTC().Format("2 Jan 2006 at 15:04 UTC")
	if last.Who != "" {
		s += " by " + last.Who
	}
	if last.Order != "" {
		s += " (order " + last.Order + ")"
	}
	return s + ". Nothing was changed."
}

// ---- Remove -------------------------------------------------------------------------------------

// removeCodePage is GET /app/lists/:list_id/codes/:code/remove: the question before removing.
func (h *handlers) removeCodePage(c *gin.Context) {
	var data codePageData
	if !h.loadCode(c, &data) {
		return
	}
	if !data.CanRemove {
		data.Problem = notRemovable(data.List)
		h.page(c, http.StatusConflict, "code.html", data)
		return
	}
	h.page(c, http.StatusOK, "code_remove.html", data)
}

// notRemovable says why a code cannot be removed.
func notRemovable(l core.List) string {
	if l.Kind == core.KindFixed {
		return "This is the list's one fixed code, so it cannot be removed: archive or delete the list instead."
	}
	return "This code was handed out, used, removed or is held by a checkout, so it cannot be removed: only unused codes can be removed."
}

// removeCodeForm is POST /app/lists/:list_id/codes/:code/remove: core removes a code that was
// never handed out or used; anything else is refused on the code page with the reason.
func (h *handlers) removeCodeForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	code := codeParam(c)
	err := h.Codes.Remove(c.Request.Context(), merchantID(c), l.ID, code, dash(c).Actor)
	switch {
	case err == nil:
		h.seeOther(c, codeURL(l.ID, code, "", url.Values{"done": {"removed"}}))
	case errors.Is(err, core.ErrCodeInUse), errors.Is(err, core.ErrFixedListCode):
		h.renderCode(c, http.StatusConflict, codePageData{Problem: notRemovable(l)})
	default:
		fail(c, err)
	}
}
