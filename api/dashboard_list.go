package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/web"
)

// A list's own pages (issue 11, points 2, 3, 4 and 7): create and edit a list, the list page with
// its header and tabs, import (paste or upload, the progress, the report, the history), generate
// (the form and the batch history with its downloads), export and removal. Times on these pages
// are in UTC, and the forms say so.

// dashboardList registers a list's own pages, all for owners.
func (h *handlers) dashboardList(owner *gin.RouterGroup) {
	owner.GET("/lists/new", h.newListPage)
	owner.POST("/lists/new", h.createListForm)
	owner.GET("/lists/:list_id", h.listPage)
	owner.GET("/lists/:list_id/edit", h.editListPage)
	owner.POST("/lists/:list_id/edit", h.updateListForm)
	owner.GET("/lists/:list_id/import", h.importPage)
	owner.POST("/lists/:list_id/import", h.startImportForm)
	owner.GET("/lists/:list_id/import/example.csv", h.exampleCSV)
	owner.GET("/lists/:list_id/imports/:import_id", h.importReportPage)
	owner.GET("/lists/:list_id/generate", h.generatePage)
	owner.POST("/lists/:list_id/generate", h.generateForm)
	owner.GET("/lists/:list_id/batches/:number/codes.csv", h.batchDownload)
	owner.GET("/lists/:list_id/export", h.exportPage)
	owner.GET("/lists/:list_id/export/codes.csv", h.exportDownload)
	owner.GET("/lists/:list_id/remove-unused", h.removeUnusedPage)
	owner.POST("/lists/:list_id/remove-unused", h.removeUnusedForm)
	owner.GET("/lists/:list_id/delete", h.deleteListPage)
	owner.POST("/lists/:list_id/delete", h.deleteListForm)
}

// dashPageSize is how many rows a dashboard table shows at a time.
const dashPageSize = 50

// dateTimeLocal is the value format of an <input type="datetime-local">, read and written in UTC.
const dateTimeLocal = "2006-01-02T15:04"

// ---- The list's header --------------------------------------------------------------------------

// listHead is the header every page of a list shows (the "list_header" template in layout.html):
// the name, the status badge, the counts from the list's counters and the tabs, Tab being the
// current one (overview, codes, import, generate or export).
type listHead struct {
	listRow
	Tab string
}

func listHeadOf(l core.List, tab string) listHead {
	return listHead{listRow: listRowOf(l, time.Now()), Tab: tab}
}

// dashList reads the :list_id of the path and loads the list; a false return has answered.
func (h *handlers) dashList(c *gin.Context) (core.List, bool) {
	id, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return core.List{}, false
	}
	l, err := h.Lists.Get(c.Request.Context(), merchantID(c), id)
	if err != nil {
		fail(c, err)
		return core.List{}, false
	}
	return l, true
}

// ---- Create and edit ----------------------------------------------------------------------------

// listForm is the create and edit form's values, as typed.
type listForm struct {
	Name              string
	Description       string
	Kind              string
	FixedCode         string
	MaxAssignments    string
	UsesPerCode       string
	RequireIssued     bool
	StartsAt          string
	ExpiresAt         string
	LowStockThreshold string
	ReassignAmount    string
	ReassignUnit      string
	ValidForAmount    string // empty: codes do not expire after hand-out
	ValidForUnit      string
	CaseInsensitive   bool
	Archived          bool
}

// listFormData is what list_form.html shows.
type listFormData struct {
	New    bool
	Head   listHead
	Form   listForm
	Errors web.FieldErrors
}

// reassignUnits are the units of the same-code-again window, largest first.
var reassignUnits = []struct {
	Name    string
	Seconds int64
}{{"days", 86400}, {"hours", 3600}, {"minutes", 60}}

// listFormOf is a stored list as the edit form shows it.
func listFormOf(l core.List) listForm {
	f := listForm{
		Name: l.Name, Description: l.Description, Kind: string(l.Kind), FixedCode: l.FixedCode,
		UsesPerCode: strconv.Itoa(l.UsesPerCode), RequireIssued: l.RequireIssued, StartsAt: localValue(l.StartsAt),
		ExpiresAt: localValue(l.ExpiresAt), CaseInsensitive: l.CaseInsensitive, Archived: l.ArchivedAt != nil,
	}
	if l.MaxAssignments > 0 {
		f.MaxAssignments = strconv.FormatInt(l.MaxAssignments, 10)
	}
	if l.LowStockThreshold > 0 {
		f.LowStockThreshold = strconv.FormatInt(l.LowStockThreshold, 10)
	}
	f.ReassignAmount, f.ReassignUnit = reassignValue(int64(l.ReassignWindow / time.Second))
	f.ValidForUnit = "days"
	if l.ValidFor > 0 {
		f.ValidForAmount, f.ValidForUnit = reassignValue(int64(l.ValidFor / time.Second))
	}
	return f
}

// reassignValue writes a window in seconds in the largest unit that holds it exactly.
func reassignValue(seconds int64) (string, string) {
	if seconds == 0 {
		return "0", "hours"
	}
	for _, u := range reassignUnits {
		if seconds%u.Seconds == 0 {
			return strconv.FormatInt(seconds/u.Seconds, 10), u.Name
		}
	}
	return strconv.FormatInt((seconds+59)/60, 10), "minutes"
}

func localValue(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.UTC().Format(dateTimeLocal)
}

// bindListForm reads the form of a POST.
func bindListForm(c *gin.Context) listForm {
	return listForm{
		Name: c.PostForm("name"), Description: c.PostForm("description"), Kind: c.PostForm("kind"),
		FixedCode: c.PostForm("fixed_code"), MaxAssignments: strings.TrimSpace(c.PostForm("max_assignments")),
		UsesPerCode: strings.TrimSpace(c.PostForm("uses_per_code")), RequireIssued: c.PostForm("require_issued") != "",
		StartsAt: strings.TrimSpace(c.PostForm("starts_at")), ExpiresAt: strings.TrimSpace(c.PostForm("expires_at")),
		LowStockThreshold: strings.TrimSpace(c.PostForm("low_stock_threshold")),
		ReassignAmount:    strings.TrimSpace(c.PostForm("reassign_amount")), ReassignUnit: c.PostForm("reassign_unit"),
		ValidForAmount: strings.TrimSpace(c.PostForm("valid_for_amount")), ValidForUnit: c.PostForm("valid_for_unit"),
		CaseInsensitive: c.PostForm("case_insensitive") != "", Archived: c.PostForm("archived") != "",
	}
}

// listValues are the form's values read as numbers and times; errs holds the fields that could
// not be read, in sentences.
type listValues struct {
	maxAssignments int64
	usesPerCode    *int
	startsAt       *time.Time
	expiresAt      *time.Time
	lowStock       int64
	reassign       *int64
	validFor       *int64 // nil: no validity after hand-out
	errs           web.FieldErrors
}

func (f listForm) values() listValues {
	v := listValues{errs: web.FieldErrors{}}
	if f.Kind == string(core.KindFixed) && f.MaxAssignments != "" {
		n, err := strconv.ParseInt(f.MaxAssignments, 10, 64)
		if err != nil || n < 0 {
			v.errs["max_assignments"] = "Enter how many times the code may be handed out as a whole number, or leave it empty for no limit."
		}
		v.maxAssignments = n
	}
	if f.UsesPerCode != "" {
		n, err := strconv.Atoi(f.UsesPerCode)
		if err != nil {
			v.errs["uses_per_code"] = listFieldSentences["uses_per_code"]
		}
		v.usesPerCode = &n
	}
	var err error
	if v.startsAt, err = parseLocal(f.StartsAt); err != nil {
		v.errs["starts_at"] = "Enter the start as a date and time, such as 2026-01-31 09:00 (UTC)."
	}
	if v.expiresAt, err = parseLocal(f.ExpiresAt); err != nil {
		v.errs["expires_at"] = "Enter the expiry as a date and time, such as 2026-12-31 23:59 (UTC)."
	}
	if f.LowStockThreshold != "" {
		n, err := strconv.ParseInt(f.LowStockThreshold, 10, 64)
		if err != nil || n < 0 {
			v.errs["low_stock_threshold"] = listFieldSentences["low_stock_threshold"]
		}
		v.lowStock = n
	}
	if f.ReassignAmount != "" {
		n, err := strconv.ParseInt(f.ReassignAmount, 10, 64)
		unit := int64(0)
		for _, u := range reassignUnits {
			if u.Name == f.ReassignUnit {
				unit = u.Seconds
			}
		}
		if err != nil || n < 0 || unit == 0 || n > 10*365*86400/unit {
			v.errs["reassign_window"] = listFieldSentences["reassign_window"]
		} else {
			s := n * unit
			v.reassign = &s
		}
	}
	if f.ValidForAmount != "" {
		n, err := strconv.ParseInt(f.ValidForAmount, 10, 64)
		unit := unitSeconds(f.ValidForUnit)
		if err != nil || unit == 0 || n > 10*365*86400/unit {
			v.errs["valid_for"] = listFieldSentences["valid_for"]
		} else {
			s := n * unit // 0 and below: core refuses it with the same sentence
			v.validFor = &s
		}
	}
	return v
}

// unitSeconds is the length of one of reassignUnits in seconds; 0 for an unknown unit.
func unitSeconds(name string) int64 {
	for _, u := range reassignUnits {
		if u.Name == name {
			return u.Seconds
		}
	}
	return 0
}

// parseLocal reads a datetime-local value in UTC; empty is no time.
func parseLocal(s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{dateTimeLocal, "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return &t, nil
		}
	}
	return nil, errors.New("not a date and time")
}

// listFieldSentences are the form's words for core's list validation errors, by field.
var listFieldSentences = map[string]string{
	"name":                "Give the list a name of at most 200 characters.",
	"description":         "The description can be at most 2,000 characters.",
	"kind":                "Choose unique codes or one fixed code.",
	"fixed_code":          "Enter the code: 1 to 100 characters, without spaces.",
	"max_assignments":     "Enter how many times the code may be handed out as a whole number, or leave it empty for no limit.",
	"uses_per_code":       "Enter how many times each code can be used: a whole number from 1 to 1,000,000.",
	"require_issued":      "“Only valid once handed out” works with 1 use per code only.",
	"expires_at":          "The expiry must be after the start.",
	"low_stock_threshold": "Enter the low-stock warning as a whole number of codes, or leave it empty for none.",
	"reassign_window":     "Enter the window as a whole number, at most 10 years.",
	"valid_for":           "Enter how long a code stays valid after hand-out as a whole number above 0, at most 10 years, or leave it empty; fixed lists cannot have it.",
}

// listFieldErrors turns core's validation error into the form's sentences.
func listFieldErrors(err error) (web.FieldErrors, bool) {
	fields, ok := web.FieldErrorsOf(err)
	if !ok {
		return nil, false
	}
	for field := range fields {
		if s, ok := listFieldSentences[field]; ok {
			fields[field] = s
		}
	}
	return fields, true
}

// newListPage is GET /app/lists/new.
func (h *handlers) newListPage(c *gin.Context) {
	h.page(c, http.StatusOK, "list_form.html", listFormData{New: true, Form: listForm{
		Kind: string(core.KindUnique), UsesPerCode: "1", ReassignAmount: "24", ReassignUnit: "hours", ValidForUnit: "days"}})
}

// createListForm is POST /app/lists/new: the new list's page, or the form again with its errors.
func (h *handlers) createListForm(c *gin.Context) {
	f := bindListForm(c)
	v := f.values()
	if len(v.errs) > 0 {
		h.page(c, http.StatusUnprocessableEntity, "list_form.html", listFormData{New: true, Form: f, Errors: v.errs})
		return
	}
	in := core.ListInput{
		Name: f.Name, Description: f.Description, Kind: core.ListKind(f.Kind), UsesPerCode: v.usesPerCode,
		RequireIssued: f.RequireIssued, StartsAt: v.startsAt, ExpiresAt: v.expiresAt, LowStockThreshold: v.lowStock,
		ReassignWindow: v.reassign, ValidFor: v.validFor, CaseInsensitive: f.CaseInsensitive,
	}
	if in.Kind == core.KindFixed {
		in.FixedCode, in.MaxAssignments = f.FixedCode, v.maxAssignments
	}
	l, err := h.Lists.Create(c.Request.Context(), merchantID(c), in)
	if fields, ok := listFieldErrors(err); ok {
		h.page(c, http.StatusUnprocessableEntity, "list_form.html", listFormData{New: true, Form: f, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists/"+l.ID.String())
}

// editListPage is GET /app/lists/:list_id/edit.
func (h *handlers) editListPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	h.page(c, http.StatusOK, "list_form.html", listFormData{Head: listHeadOf(l, "overview"), Form: listFormOf(l)})
}

// updateListForm is POST /app/lists/:list_id/edit. The kind, the fixed code and case-insensitivity
// are fixed at creation: the form shows them without sending them.
func (h *handlers) updateListForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	f := bindListForm(c)
	f.Kind, f.FixedCode, f.CaseInsensitive = string(l.Kind), l.FixedCode, l.CaseInsensitive
	v := f.values()
	if f.UsesPerCode == "" {
		v.errs["uses_per_code"] = listFieldSentences["uses_per_code"]
	}
	if len(v.errs) > 0 {
		h.page(c, http.StatusUnprocessableEntity, "list_form.html", listFormData{Head: listHeadOf(l, "overview"), Form: f, Errors: v.errs})
		return
	}
	window := v.reassign
	if window == nil {
		zero := int64(0)
		window = &zero
	}
	p := core.ListPatch{
		Name: &f.Name, Description: &f.Description, UsesPerCode: v.usesPerCode, RequireIssued: &f.RequireIssued,
		StartsAt: &v.startsAt, ExpiresAt: &v.expiresAt, LowStockThreshold: &v.lowStock, ReassignWindow: window,
		ValidFor: &v.validFor, Archived: &f.Archived,
	}
	if l.Kind == core.KindFixed {
		p.MaxAssignments = &v.maxAssignments
	}
	updated, err := h.Lists.Update(c.Request.Context(), merchantID(c), l.ID, p)
	if fields, ok := listFieldErrors(err); ok {
		h.page(c, http.StatusUnprocessableEntity, "list_form.html", listFormData{Head: listHeadOf(l, "overview"), Form: f, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists/"+updated.ID.String())
}

// ---- The list page ------------------------------------------------------------------------------

// listPageData is what list.html shows.
type listPageData struct {
	Head listHead
	List core.List
	// Reassign is the same-code-again window in words ("24 hours"), empty for none.
	Reassign string
}

// listPage is GET /app/lists/:list_id: the header, the counts and the list's settings.
func (h *handlers) listPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	data := listPageData{Head: listHeadOf(l, "overview"), List: l}
	if l.ReassignWindow > 0 {
		amount, unit := reassignValue(int64(l.ReassignWindow / time.Second))
		if amount == "1" {
			unit = strings.TrimSuffix(unit, "s")
		}
		data.Reassign = amount + " " + unit
	}
	h.page(c, http.StatusOK, "list.html", data)
}

// ---- Import -------------------------------------------------------------------------------------

// importView is one import as the pages show it.
type importView struct {
	ID               uuid.UUID
	Number           int
	Status           string // waiting, importing, finished or failed
	Done             bool
	Percent          int
	Filename         string
	Pasted           bool
	Actor            string
	CreatedAt        time.Time
	FinishedAt       *time.Time
	Rows             int64
	Imported         int64
	DuplicatesInFile int64
	DuplicatesInList int64
	Invalid          int64
	Rejected         int64
	Errors           []rowErrorView
	// Unlisted is how many rejected rows the report does not list (it keeps the first 100).
	Unlisted int64
	Error    string
	// ListTotal is how many codes the list holds now.
	ListTotal int64
}

// rowErrorView is one rejected row with its reason in words.
type rowErrorView struct {
	Line   int64
	Code   string
	Reason string
}

// rowReasons are the rejected rows' reasons in words.
var rowReasons = map[string]string{
	core.ReasonInvalidCode:     "Not a valid code: 1 to 100 characters, without spaces",
	core.ReasonInvalidDate:     "A date in this row cannot be read",
	core.ReasonDuplicateInFile: "Duplicate: it appears earlier in the file",
	core.ReasonDuplicateInList: "Already in the list",
}

func importViewOf(i core.Import) importView {
	v := importView{
		ID: i.ID, Number: i.Number, Filename: i.Filename, Pasted: i.Filename == "", Actor: i.Actor, CreatedAt: i.CreatedAt,
		FinishedAt: i.FinishedAt, Rows: i.Rows, Imported: i.Imported, DuplicatesInFile: i.DuplicatesInFile,
		DuplicatesInList: i.DuplicatesInList, Invalid: i.Invalid, Percent: int(i.Progress() * 100),
		Error: web.Sentence(i.Error), ListTotal: i.ListTotal,
	}
	switch i.Status {
	case core.ImportUploading, core.ImportQueued:
		v.Status = "waiting"
	case core.ImportRunning:
		v.Status = "importing"
	case core.ImportSucceeded:
		v.Status, v.Done = "finished", true
	case core.ImportFailed:
		v.Status, v.Done = "failed", true
	}
	v.Rejected = i.DuplicatesInFile + i.DuplicatesInList + i.Invalid
	for _, e := range i.Errors {
		reason, ok := rowReasons[e.Reason]
		if !ok {
			reason = e.Reason
		}
		v.Errors = append(v.Errors, rowErrorView{Line: e.Line, Code: e.Code, Reason: reason})
	}
	if n := v.Rejected - int64(len(v.Errors)); n > 0 {
		v.Unlisted = n
	}
	return v
}

// importPageData is what list_import.html shows: the forms, their errors and the history.
type importPageData struct {
	Head      listHead
	Codes     string
	Errors    web.FieldErrors
	MaxUpload string
	Imports   []importView
	Next      string
	After     string
}

// importPage is GET /app/lists/:list_id/import: paste codes or upload a file, and the list's
// import history (50 at a time, newest first).
func (h *handlers) importPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	h.renderImportPage(c, http.StatusOK, l, importPageData{})
}

func (h *handlers) renderImportPage(c *gin.Context, status int, l core.List, data importPageData) {
	data.Head = listHeadOf(l, "import")
	data.MaxUpload = byteSize(h.Config.MaxUploadBytes)
	if l.Kind == core.KindUnique {
		data.After = c.Query("after")
		imps, next, err := h.Imports.List(c.Request.Context(), merchantID(c), l.ID, core.Page{Limit: dashPageSize, Cursor: data.After})
		if err != nil {
			fail(c, err)
			return
		}
		data.Imports, data.Next = mapped(imps, importViewOf), next
	}
	h.page(c, status, "list_import.html", data)
}

// startImportForm is POST /app/lists/:list_id/import: pasted codes (a urlencoded form with codes,
// one a line) or an uploaded file (multipart, streamed as the API's upload is; the form's action
// carries the CSRF token). It goes on to the import's page, which shows the progress.
func (h *handlers) startImportForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	var imp core.Import
	var err error
	if strings.HasPrefix(c.ContentType(), "multipart/") {
		file, format, filename, uerr := h.upload(c)
		if uerr != nil {
			fail(c, uerr)
			return
		}
		if filename == "" {
			h.renderImportPage(c, http.StatusUnprocessableEntity, l, importPageData{
				Errors: web.FieldErrors{"file": "Choose a CSV or .txt file to upload."}})
			return
		}
		imp, err = h.Imports.Start(c.Request.Context(), merchantID(c), l.ID, format, filename, file, h.Config.MaxUploadBytes, dash(c).Actor)
	} else {
		codes := c.PostForm("codes")
		if strings.TrimSpace(codes) == "" {
			h.renderImportPage(c, http.StatusUnprocessableEntity, l, importPageData{
				Errors: web.FieldErrors{"codes": "Paste at least one code, one per line."}})
			return
		}
		imp, err = h.Imports.Start(c.Request.Context(), merchantID(c), l.ID, core.FormatText, "", strings.NewReader(codes), h.Config.MaxUploadBytes, dash(c).Actor)
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/lists/%s/imports/%s", l.ID, imp.ID))
}

// importReportData is what list_import_report.html shows.
type importReportData struct {
	Head   listHead
	Import importView
}

// importReportPage is GET /app/lists/:list_id/imports/:import_id: the progress while the worker
// imports (the page's script asks again every second; without it, a Refresh link), then the report.
func (h *handlers) importReportPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	importID, ok := pathUUID(c, "import_id", core.ErrImportNotFound)
	if !ok {
		return
	}
	imp, err := h.Imports.Get(c.Request.Context(), merchantID(c), l.ID, importID)
	if err != nil {
		fail(c, err)
		return
	}
	h.page(c, http.StatusOK, "list_import_report.html", importReportData{Head: listHeadOf(l, "import"), Import: importViewOf(imp)})
}

// exampleCSV is the file behind "Download example CSV": the Code column and the optional window
// columns an import reads.
const exampleCSV = "Code,available_from,available_till\r\n" +
	"WELCOME-7KQ2M9XD,,\r\n" +
	"WELCOME-P4H8N3RT,,\r\n" +
	"WELCOME-C6W2Z8LB,2026-01-01,2026-03-31T23:59:59Z\r\n"

// exampleCSV is GET /app/lists/:list_id/import/example.csv.
func (h *handlers) exampleCSV(c *gin.Context) {
	c.Header("Content-Disposition", `attachment; filename="example-codes.csv"`)
	c.Data(http.StatusOK, "text/csv; charset=utf-8", []byte(exampleCSV))
}

// byteSize writes a size for people: 1 GiB, 10 MiB, 512 KiB.
func byteSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// ---- Generate -----------------------------------------------------------------------------------

// batchForm is the generate form's values, as typed.
type batchForm struct {
	Count     string
	Prefix    string
	Separator string
	Length    string
	Charset   string
}

// batchView is one row of the batch history.
type batchView struct {
	core.Batch
	Done bool
}

// generateData is what list_generate.html shows.
type generateData struct {
	Head    listHead
	Form    batchForm
	Errors  web.FieldErrors
	Batches []batchView
	Busy    bool
	Next    string
	After   string
}

// generatePage is GET /app/lists/:list_id/generate: the form and the batch history.
func (h *handlers) generatePage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	h.renderGenerate(c, http.StatusOK, l, generateData{Form: batchForm{
		Separator: core.DefaultSeparator, Length: strconv.Itoa(core.DefaultLength), Charset: core.DefaultCharset}})
}

func (h *handlers) renderGenerate(c *gin.Context, status int, l core.List, data generateData) {
	data.Head = listHeadOf(l, "generate")
	if l.Kind == core.KindUnique {
		data.After = c.Query("after")
		batches, next, err := h.Batches.List(c.Request.Context(), merchantID(c), l.ID, core.Page{Limit: dashPageSize, Cursor: data.After})
		if err != nil {
			fail(c, err)
			return
		}
		for _, b := range batches {
			done := b.Status != core.BatchQueued && b.Status != core.BatchRunning
			data.Batches = append(data.Batches, batchView{Batch: b, Done: done})
			data.Busy = data.Busy || !done
		}
		data.Next = next
	}
	h.page(c, status, "list_generate.html", data)
}

// generateForm is POST /app/lists/:list_id/generate: a batch is queued and the page shows it in
// the history, or the form comes back with its errors.
func (h *handlers) generateForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	f := batchForm{Count: strings.TrimSpace(c.PostForm("count")), Prefix: strings.TrimSpace(c.PostForm("prefix")),
		Separator: strings.TrimSpace(c.PostForm("separator")), Length: strings.TrimSpace(c.PostForm("length")),
		Charset: strings.TrimSpace(c.PostForm("charset"))}
	errs := web.FieldErrors{}
	spec := core.BatchSpec{Prefix: f.Prefix, Separator: f.Separator, Charset: f.Charset}
	count, err := strconv.ParseInt(f.Count, 10, 64)
	if err != nil {
		errs["count"] = batchFieldSentences["count"]
	}
	spec.Count = count
	if f.Length != "" {
		if spec.Length, err = strconv.Atoi(f.Length); err != nil {
			errs["length"] = batchFieldSentences["length"]
		}
	}
	if len(errs) > 0 {
		h.renderGenerate(c, http.StatusUnprocessableEntity, l, generateData{Form: f, Errors: errs})
		return
	}
	_, err = h.Batches.Create(c.Request.Context(), merchantID(c), l.ID, spec, dash(c).Actor)
	if fields, ok := web.FieldErrorsOf(err); ok {
		for field := range fields {
			if s, ok := batchFieldSentences[field]; ok {
				fields[field] = s
			}
		}
		if fields["length"] != "" && errors.Is(err, &core.Error{Code: "code_space_too_small"}) {
			fields["length"] = "These characters and this length cannot comfortably hold that many codes: use a longer length or more characters."
		}
		h.renderGenerate(c, http.StatusUnprocessableEntity, l, generateData{Form: f, Errors: fields})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists/"+l.ID.String()+"/generate")
}

// batchFieldSentences are the form's words for core's batch validation errors, by field.
var batchFieldSentences = map[string]string{
	"count":   "Enter how many codes to generate: a whole number from 1 to 50,000,000.",
	"length":  "Enter the length of the random part: a whole number from 1 to 64, within 100 characters with the prefix.",
	"charset": "Use 2 to 256 different characters, without spaces.",
	"prefix":  "The prefix and the separator cannot hold spaces or control characters.",
}

// batchDownload is GET /app/lists/:list_id/batches/:number/codes.csv: "Download" (the codes), or
// with ?info=1 "Download with info" (code, batch, state, uses, recipient), streamed.
func (h *handlers) batchDownload(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	number, err := strconv.Atoi(c.Param("number"))
	if err != nil || number < 1 {
		fail(c, core.ErrBatchNotFound)
		return
	}
	if c.Query("info") == "1" {
		w := &csvDownload{c: c, filename: fmt.Sprintf("batch-%d-with-info.csv", number)}
		err = h.Batches.ExportWithInfo(c.Request.Context(), merchantID(c), listID, number, w)
	} else {
		w := &csvDownload{c: c, filename: fmt.Sprintf("batch-%d.csv", number)}
		err = h.Batches.Export(c.Request.Context(), merchantID(c), listID, number, w)
	}
	if err != nil {
		fail(c, err)
	}
}

// ---- Export and removal -------------------------------------------------------------------------

// exportData is what list_export.html shows.
type exportData struct {
	Head listHead
	// Removed says how many codes "Remove unused codes" just took away (empty when it was not used).
	Removed string
	Error   string
}

// exportPage is GET /app/lists/:list_id/export: the downloads, "Remove unused codes" and "Delete
// list". ?removed=N says how many codes the removal just took away.
func (h *handlers) exportPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	data := exportData{Head: listHeadOf(l, "export")}
	if n, err := strconv.ParseInt(c.Query("removed"), 10, 64); err == nil && n >= 0 {
		data.Removed = numText(n) + " unused " + plural(n, "code was", "codes were") + " removed."
	}
	h.page(c, http.StatusOK, "list_export.html", data)
}

// exportDownload is GET /app/lists/:list_id/export/codes.csv?state=all|delivered|undelivered|
// redeemed: core's export, streamed.
func (h *handlers) exportDownload(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	filter := core.ExportFilter(c.DefaultQuery("state", string(core.ExportAll)))
	w := &csvDownload{c: c, filename: "codes-" + string(filter) + ".csv"}
	if err := h.Codes.Export(c.Request.Context(), merchantID(c), listID, filter, w); err != nil {
		fail(c, err)
	}
}

// confirmData is what list_confirm.html shows: a question and the button that does it.
type confirmData struct {
	Head     listHead
	Heading  string
	Message  string
	Action   string
	Button   string
	Critical bool
	// Nothing is set when there is nothing to do: the page says Message without a button.
	Nothing bool
}

// removeUnusedPage is GET /app/lists/:list_id/remove-unused: how many codes would go (from the
// counters), and the button.
func (h *handlers) removeUnusedPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	n := l.Counts.Available
	data := confirmData{Head: listHeadOf(l, "export"), Heading: "Remove unused codes",
		Action: "/app/lists/" + l.ID.String() + "/remove-unused", Critical: true}
	switch {
	case l.Kind == core.KindFixed:
		data.Nothing, data.Message = true, "A fixed list's code is the list itself: archive or delete the list instead."
	case n == 0:
		data.Nothing, data.Message = true, "Every code of this list was handed out or used: there are no unused codes to remove."
	default:
		data.Message = fmt.Sprintf("%s %s never handed out. Removing them takes them out of the list for good (and out of connected shops); delivered and used codes stay.",
			numText(n), plural(n, "code was", "codes were"))
		data.Button = "Remove " + numText(n) + " unused " + plural(n, "code", "codes")
	}
	h.page(c, http.StatusOK, "list_confirm.html", data)
}

// removeUnusedForm is POST /app/lists/:list_id/remove-unused: core removes every code never handed
// out (and not held by a reservation); the export page says how many went.
func (h *handlers) removeUnusedForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	n, err := h.Codes.RemoveAvailable(c.Request.Context(), merchantID(c), l.ID, dash(c).Actor)
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, fmt.Sprintf("/app/lists/%s/export?removed=%d", l.ID, n))
}

// deleteListPage is GET /app/lists/:list_id/delete: the question and the button.
func (h *handlers) deleteListPage(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	h.page(c, http.StatusOK, "list_confirm.html", confirmData{Head: listHeadOf(l, "export"), Heading: "Delete list",
		Message: "Deleting the list removes it with all its codes, their timelines, imports and batches. This cannot be undone. Download an export first if you may need them.",
		Action:  "/app/lists/" + l.ID.String() + "/delete", Button: "Delete list", Critical: true})
}

// deleteListForm is POST /app/lists/:list_id/delete: core deletes the list, or refuses while it is
// connected to a shop or has message templates; the export page then says why.
func (h *handlers) deleteListForm(c *gin.Context) {
	l, ok := h.dashList(c)
	if !ok {
		return
	}
	err := h.Lists.Delete(c.Request.Context(), merchantID(c), l.ID)
	var ce *core.Error
	if errors.As(err, &ce) && ce.Kind == core.KindConflict {
		h.page(c, http.StatusConflict, "list_export.html", exportData{Head: listHeadOf(l, "export"), Error: web.Sentence(ce.Message)})
		return
	}
	if err != nil {
		fail(c, err)
		return
	}
	h.seeOther(c, "/app/lists")
}

// numText writes a count as the pages do: 1,234,567.
var numText = web.Funcs["num"].(func(int64) string)

func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
