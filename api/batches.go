package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

type batchRequest struct {
	Count     *int64  `json:"count" validate:"required"`
	Prefix    string  `json:"prefix" validate:"max=100"`
	Length    *int    `json:"length" validate:"omitempty,gte=1,lte=64"`
	Charset   string  `json:"charset" validate:"max=1024"`
	Separator *string `json:"separator" validate:"omitempty,max=10"`
}

type batchResponse struct {
	ListID     string     `json:"list_id"`
	Number     int        `json:"number"`
	Count      int64      `json:"count"`
	Generated  int64      `json:"generated"`
	Prefix     string     `json:"prefix"`
	Length     int        `json:"length"`
	Charset    string     `json:"charset"`
	Separator  string     `json:"separator"`
	Status     string     `json:"status"`
	Error      string     `json:"error"`
	Exported   bool       `json:"exported"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	FinishedAt *time.Time `json:"finished_at"`
}

func toBatchResponse(b core.Batch) batchResponse {
	return batchResponse{
		ListID: b.ListID.String(), Number: b.Number, Count: b.Count, Generated: b.Generated, Prefix: b.Prefix,
		Length: b.Length, Charset: b.Charset, Separator: b.Separator, Status: string(b.Status), Error: b.Error,
		Exported: b.Exported, CreatedBy: b.CreatedBy, CreatedAt: b.CreatedAt, FinishedAt: b.FinishedAt,
	}
}

func toBatchSpec(req batchRequest) core.BatchSpec {
	spec := core.BatchSpec{Count: *req.Count, Prefix: req.Prefix, Charset: req.Charset, Separator: core.DefaultSeparator}
	if req.Length != nil {
		spec.Length = *req.Length
	}
	if req.Separator != nil {
		spec.Separator = *req.Separator
	}
	return spec
}

func (h *handlers) createBatch(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	var req batchRequest
	if !h.bindJSON(c, &req) {
		return
	}
	b, err := h.Batches.Create(c.Request.Context(), merchantID(c), listID, toBatchSpec(req), actor(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, toBatchResponse(b))
}

func (h *handlers) listBatches(c *gin.Context) {
	listID, p, ok := listIDAndPage(c)
	if !ok {
		return
	}
	batches, next, err := h.Batches.List(c.Request.Context(), merchantID(c), listID, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, batches, next, toBatchResponse)
}

// exportBatch streams a finished batch's codes as CSV (one column, header "code") and marks the
// batch exported; 409 while it is still generating.
func (h *handlers) exportBatch(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	number, err := strconv.Atoi(c.Param("number"))
	if err != nil || number < 1 {
		fail(c, core.ErrBatchNotFound)
		return
	}
	w := &csvDownload{c: c, filename: fmt.Sprintf("batch-%d.csv", number)}
	if err := h.Batches.Export(c.Request.Context(), merchantID(c), listID, number, w); err != nil {
		fail(c, err)
	}
}

// csvDownload is the response writer of a CSV download: it sends the CSV headers with the first
// bytes only, so an error found before any row is still answered as a JSON error.
type csvDownload struct {
	c        *gin.Context
	filename string
	started  bool
}

func (d *csvDownload) Write(p []byte) (int, error) {
	if !d.started {
		d.started = true
		h := d.c.Writer.Header()
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="`+d.filename+`"`)
		h.Set("Cache-Control", "no-store")
		d.c.Writer.WriteHeader(http.StatusOK)
	}
	return d.c.Writer.Write(p)
}
