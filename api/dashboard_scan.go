package api

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// The scanner (issue 12, point 3): /app/scan for owners and staff. The camera reads a code's QR
// code (app.js with the vendored jsQR, loaded by this page only) or the code is typed; the page
// shows what the code is and "Mark as used" redeems it in one tap on the channel in_store with
// the person as actor (core.Scanner). A staff member's scanner settings (the PIN they type on a
// customer's redeem page, the lists they may scan) are set by an owner on the team page; a PIN
// is made by Coupongate (core.Scanner.NewPIN), by the person on /app/scan/pin or by an owner for
// them, and shown once, in the answer to the form that made it.

// dashboardScan registers the scanner and the scanner settings.
func (h *handlers) dashboardScan(owner, staff *gin.RouterGroup) {
	staff.GET("/scan", h.scanPage)
	staff.POST("/scan/mark-used", h.scanMarkUsed)
	staff.GET("/scan/pin", h.scanPINPage)
	staff.POST("/scan/pin", h.scanPINForm)
	owner.GET("/settings/team/:user_id/scanner", h.memberScannerPage)
	owner.POST("/settings/team/:user_id/scanner", h.memberScannerForm)
}

// scanResult is one code a scan found, as the scanner shows it.
type scanResult struct {
	Row codeRow
	// Verdict is the large-type word: "Ready to use", "Already used", "Expired", "Removed",
	// "Not handed out"; CanMark says "Mark as used" is offered.
	Verdict string
	Tone    string
	CanMark bool
	// LastUse is when and by whom the code was last used.
	LastUse *timelineRow
}

// scanData is what scan.html shows.
type scanData struct {
	Code string
	// Looked is set when a code was looked up; Results are its codes in the lists the person may
	// scan. Unknown says no such code; Refused that it is only in lists the person may not scan.
	Looked  bool
	Results []scanResult
	Unknown bool
	Refused bool
	// Done is the sentence after "Mark as used"; Problem why it was refused.
	Done    string
	Problem string
	// Autostart starts the camera on load (not on a result, where the code is still in view).
	Autostart bool
}

// scanPage is GET /app/scan?code=: the scanner, and the code it read or was typed.
func (h *handlers) scanPage(c *gin.Context) {
	data := scanData{Code: strings.TrimSpace(c.Query("code"))}
	if c.Query("done") == "used" {
		data.Done = "Marked as used."
	}
	h.renderScan(c, http.StatusOK, data)
}

// renderScan looks data.Code up (when set) and renders the scanner.
func (h *handlers) renderScan(c *gin.Context, status int, data scanData) {
	data.Autostart = data.Code == ""
	if data.Code != "" {
		data.Looked = true
		scope, err := h.scanScope(c)
		if err != nil {
			fail(c, err)
			return
		}
		matches, err := h.Codes.Lookup(c.Request.Context(), merchantID(c), data.Code)
		if err != nil {
			fail(c, err)
			return
		}
		now := time.Now()
		for _, m := range matches {
			if !scope.Allows(m.List.ID) {
				data.Refused = true
				continue
			}
			r, err := h.scanResultOf(c, m, now)
			if err != nil {
				fail(c, err)
				return
			}
			data.Results = append(data.Results, r)
		}
		if len(data.Results) > 0 {
			data.Refused = false
		}
		data.Unknown = len(matches) == 0
		if status == http.StatusOK && data.Unknown {
			status = http.StatusNotFound
		} else if status == http.StatusOK && data.Refused {
			status = http.StatusForbidden
		}
	}
	h.page(c, status, "scan.html", data)
}

// scanScope is what the signed-in person may scan.
func (h *handlers) scanScope(c *gin.Context) (core.ScanScope, error) {
	d := dash(c)
	return h.Scanner.Scope(c.Request.Context(), merchantID(c), d.Role, d.User)
}

// scanResultOf puts one found code in the scanner's words, with its last use from the timeline.
func (h *handlers) scanResultOf(c *gin.Context, m core.CodeMatch, now time.Time) (scanResult, error) {
	code, err := h.Codes.Get(c.Request.Context(), merchantID(c), m.List.ID, m.Code.Code)
	if err != nil {
		return scanResult{}, err
	}
	r := scanResult{Row: codeRowOf(m.List, code, now)}
	for _, e := range code.Timeline {
		if e.Type == core.EventRedeemed {
			last := timelineRowOf(e)
			r.LastUse = &last
		}
	}
	limit := useLimit(m.List)
	switch {
	case code.State == core.StateRemoved:
		r.Verdict, r.Tone = "Removed", "critical"
	case limit > 0 && int64(code.Uses) >= limit:
		r.Verdict, r.Tone = "Already used", "critical"
	case code.Expired(now):
		r.Verdict, r.Tone = "Expired", "critical"
	case m.List.RequireIssued && code.State == core.StateAvailable:
		r.Verdict, r.Tone = "Not handed out", "critical"
	default:
		r.Verdict, r.Tone, r.CanMark = "Ready to use", "success", true
	}
	return r, nil
}

// scanMarkUsed is POST /app/scan/mark-used (list_id, code): the code redeemed in the shop with
// the person as actor. A code with no use left answers 409 with when and by whom it was used; a
// list the person may not scan, 403.
func (h *handlers) scanMarkUsed(c *gin.Context) {
	code := strings.TrimSpace(c.PostForm("code"))
	listID, err := uuid.Parse(c.PostForm("list_id"))
	if err != nil || code == "" {
		fail(c, core.ErrCodeNotFound)
		return
	}
	scope, err := h.scanScope(c)
	if err != nil {
		fail(c, err)
		return
	}
	_, err = h.Scanner.MarkUsed(c.Request.Context(), merchantID(c), scope, listID, code, dash(c).Actor)
	data := scanData{Code: code}
	switch {
	case err == nil:
		h.seeOther(c, "/app/scan?"+url.Values{"code": {code}, "done": {"used"}}.Encode())
		return
	case errors.Is(err, core.ErrAlreadyUsed):
		data.Problem = "Already used, so nothing was changed."
		h.renderScan(c, http.StatusConflict, data)
		return
	case errors.Is(err, core.ErrNotIssued):
		data.Problem = "This list only takes codes that were handed out, and this one was not: it was not marked as used."
		h.renderScan(c, http.StatusConflict, data)
		return
	case errors.Is(err, core.ErrScanExpired):
		data.Problem = core.ErrScanExpired.Message
		h.renderScan(c, http.StatusConflict, data)
		return
	}
	fail(c, err)
}

// ---- Scanner settings ---------------------------------------------------------------------------

// scanPINData is what scan_pin.html shows: whether the person has a scanner PIN, and the new PIN
// in the answer to "New scanner PIN" (the only time it is shown).
type scanPINData struct {
	HasPIN  bool
	NewPIN  string
	Removed bool
}

// scanPINPage is GET /app/scan/pin: make or remove one's own scanner PIN. People signed in from
// the Shopify admin have no user of their own, so no PIN.
func (h *handlers) scanPINPage(c *gin.Context) {
	h.renderScanPIN(c, http.StatusOK, scanPINData{Removed: c.Query("done") == "removed"})
}

func (h *handlers) renderScanPIN(c *gin.Context, status int, data scanPINData) {
	d := dash(c)
	if d.User == nil {
		fail(c, errNoScannerUser)
		return
	}
	set, err := h.Scanner.Settings(c.Request.Context(), merchantID(c), d.User.ID)
	if err != nil {
		fail(c, err)
		return
	}
	data.HasPIN = set.HasPIN
	h.page(c, status, "scan_pin.html", data)
}

// errNoScannerUser answers a scanner PIN page opened from the Shopify admin.
var errNoScannerUser = &core.Error{Kind: core.KindNotFound, Code: "no_dashboard_user",
	Message: "Scanner PINs belong to people who sign in with their email address. Open the dashboard outside the Shopify admin to set yours."}

// scanPINForm is POST /app/scan/pin: clear removes one's own PIN; otherwise Coupongate makes a new
// one, which replaces the old and is shown in this answer only (no redirect: it would have to
// carry the PIN in an address).
func (h *handlers) scanPINForm(c *gin.Context) {
	d := dash(c)
	if d.User == nil {
		fail(c, errNoScannerUser)
		return
	}
	if c.PostForm("clear") != "" {
		if err := h.Scanner.ClearPIN(c.Request.Context(), merchantID(c), d.User.ID); err != nil {
			fail(c, err)
			return
		}
		h.seeOther(c, "/app/scan/pin?done=removed")
		return
	}
	pin, err := h.Scanner.NewPIN(c.Request.Context(), merchantID(c), d.User.ID)
	if err != nil {
		fail(c, err)
		return
	}
	h.renderScanPIN(c, http.StatusOK, scanPINData{NewPIN: pin})
}

// listChoice is one list on the staff member's scanner page.
type listChoice struct {
	ID      uuid.UUID
	Name    string
	Checked bool
}

// memberScannerData is what team_scanner.html shows.
type memberScannerData struct {
	Person core.User
	HasPIN bool
	// Limited says the person scans only the checked lists.
	Limited bool
	Lists   []listChoice
	Saved   bool
	Errors  web.FieldErrors
	// NewPIN is the PIN the owner just made for the person, shown in that answer only.
	NewPIN string
}

// memberScannerPage is GET /app/settings/team/:user_id/scanner: an owner makes or removes a team
// member's scanner PIN and sets the lists they may scan.
func (h *handlers) memberScannerPage(c *gin.Context) {
	h.renderMemberScanner(c, http.StatusOK, memberScannerData{Saved: c.Query("done") == "saved"})
}

func (h *handlers) renderMemberScanner(c *gin.Context, status int, data memberScannerData) {
	id, ok := pathUUID(c, "user_id", core.ErrUserNotFound)
	if !ok {
		return
	}
	u, err := h.Users.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	set, err := h.Scanner.Settings(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return
	}
	lists, err := h.scanListChoices(c)
	if err != nil {
		fail(c, err)
		return
	}
	for i := range lists {
		for _, l := range set.Lists {
			if lists[i].ID == l {
				lists[i].Checked = true
			}
		}
	}
	data.Person, data.HasPIN, data.Limited, data.Lists = u, set.HasPIN, set.Lists != nil, lists
	h.page(c, status, "team_scanner.html", data)
}

// scanListChoices are the merchant's lists that are not archived, by name.
func (h *handlers) scanListChoices(c *gin.Context) ([]listChoice, error) {
	var out []listChoice
	cursor := ""
	for {
		lists, next, err := h.Lists.List(c.Request.Context(), merchantID(c), core.Page{Limit: 100, Cursor: cursor})
		if err != nil {
			return nil, err
		}
		for _, l := range lists {
			out = append(out, listChoice{ID: l.ID, Name: l.Name})
		}
		if next == "" || len(out) >= 1000 {
			return out, nil
		}
		cursor = next
	}
}

// memberScannerForm is POST /app/settings/team/:user_id/scanner: what=lists saves the lists the
// person may scan (none checked: every list); what=pin makes them a new PIN, shown in this answer
// only (it replaces their old one), and what=clear_pin removes it.
func (h *handlers) memberScannerForm(c *gin.Context) {
	id, ok := pathUUID(c, "user_id", core.ErrUserNotFound)
	if !ok {
		return
	}
	var err error
	switch c.PostForm("what") {
	case "lists":
		var lists []uuid.UUID
		for _, s := range c.PostFormArray("list") {
			l, perr := uuid.Parse(s)
			if perr != nil {
				err = core.Invalid("list", "Choose lists from the list shown.")
				break
			}
			lists = append(lists, l)
		}
		if err == nil {
			err = h.Scanner.SetScanLists(c.Request.Context(), merchantID(c), id, lists)
		}
	case "clear_pin":
		err = h.Scanner.ClearPIN(c.Request.Context(), merchantID(c), id)
	default:
		var pin string
		if pin, err = h.Scanner.NewPIN(c.Request.Context(), merchantID(c), id); err == nil {
			h.renderMemberScanner(c, http.StatusOK, memberScannerData{NewPIN: pin})
			return
		}
	}
	if fields, ok := web.FieldErrorsOf(err); ok {
		h.renderMemberScanner(c, http.StatusUnprocessableEntity, memberScannerData{Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/settings/team/"+id.String()+"/scanner?done=saved")
}
