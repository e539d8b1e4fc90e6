package api

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/coupongate/coupongate/core"
)

// multipartSlack is what the multipart envelope (boundaries, part headers, other small fields) may
// add to an upload on top of the file's own limit.
const multipartSlack = 64 << 10

type importResponse struct {
	ID               string          `json:"id"`
	ListID           string          `json:"list_id"`
	Number           int             `json:"number"`
	Status           string          `json:"status"`
	Format           string          `json:"format"`
	Filename         string          `json:"filename"`
	SizeBytes        int64           `json:"size_bytes"`
	Rows             int64           `json:"rows"`
	Imported         int64           `json:"imported"`
	DuplicatesInFile int64           `json:"duplicates_in_file"`
	DuplicatesInList int64           `json:"duplicates_in_list"`
	Invalid          int64           `json:"invalid"`
	Errors           []core.RowError `json:"errors"`
	Error            string          `json:"error"`
	ListTotal        int64           `json:"list_total"`
	Progress         float64         `json:"progress"`
	CreatedBy        string          `json:"created_by"`
	CreatedAt        time.Time       `json:"created_at"`
	StartedAt        *time.Time      `json:"started_at"`
	FinishedAt       *time.Time      `json:"finished_at"`
}

func toImportResponse(i core.Import) importResponse {
	status := i.Status
	if status == core.ImportUploading {
		status = core.ImportQueued // the file is still being stored: to the client it waits like a queued one
	}
	errs := i.Errors
	if errs == nil {
		errs = []core.RowError{}
	}
	return importResponse{
		ID: i.ID.String(), ListID: i.ListID.String(), Number: i.Number, Status: string(status), Format: string(i.Format),
		Filename: i.Filename, SizeBytes: i.SizeBytes, Rows: i.Rows, Imported: i.Imported,
		DuplicatesInFile: i.DuplicatesInFile, DuplicatesInList: i.DuplicatesInList, Invalid: i.Invalid, Errors: errs,
		Error: i.Error, ListTotal: i.ListTotal, Progress: i.Progress(), CreatedBy: i.Actor, CreatedAt: i.CreatedAt.UTC(),
		StartedAt: i.StartedAt, FinishedAt: i.FinishedAt,
	}
}

// createImport streams the upload into the import store and queues the import: multipart/form-data
// with a file field (a .txt file is read as text, anything else as CSV), text/csv, or text/plain
// (pasted codes, one a line). The body is never held whole: it is read and stored piece by piece.
func (h *handlers) createImport(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	file, format, filename, err := h.upload(c)
	if err != nil {
		fail(c, err)
		return
	}
	imp, err := h.Imports.Start(c.Request.Context(), merchantID(c), listID, format, filename, file, h.Config.MaxUploadBytes, actor(c))
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, toImportResponse(imp))
}

// upload finds the file in the request body, limited to the configured upload size (plus room for
// the multipart envelope), without reading it.
func (h *handlers) upload(c *gin.Context) (io.Reader, core.ImportFormat, string, error) {
	limit := h.Config.MaxUploadBytes
	mediaType, _, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		return nil, "", "", core.ErrUnsupportedMedia
	}
	switch mediaType {
	case "text/csv", "application/csv":
		return http.MaxBytesReader(c.Writer, c.Request.Body, limit), core.FormatCSV, "", nil
	case "text/plain":
		return http.MaxBytesReader(c.Writer, c.Request.Body, limit), core.FormatText, "", nil
	case "multipart/form-data":
	default:
		return nil, "", "", core.ErrUnsupportedMedia
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, limit+multipartSlack)
	mr, err := c.Request.MultipartReader()
	if err != nil {
		return nil, "", "", core.Malformed("the multipart body cannot be read: " + err.Error())
	}
	for {
		part, err := mr.NextPart()
		var maxErr *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return nil, "", "", core.Malformed("the multipart body has no file field")
		case errors.As(err, &maxErr):
			return nil, "", "", core.ErrUploadTooLarge
		case err != nil:
			return nil, "", "", core.Malformed("the multipart body cannot be read: " + err.Error())
		}
		if part.FormName() != "file" {
			continue // not ours: NextPart skips what is left of it
		}
		format := core.FormatCSV
		if strings.EqualFold(path.Ext(part.FileName()), ".txt") {
			format = core.FormatText
		}
		return part, format, part.FileName(), nil
	}
}

func (h *handlers) getImport(c *gin.Context) {
	listID, ok := pathUUID(c, "list_id", core.ErrListNotFound)
	if !ok {
		return
	}
	importID, ok := pathUUID(c, "import_id", core.ErrImportNotFound)
	if !ok {
		return
	}
	imp, err := h.Imports.Get(c.Request.Context(), merchantID(c), listID, importID)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toImportResponse(imp))
}

func (h *handlers) listImports(c *gin.Context) {
	listID, p, ok := listIDAndPage(c)
	if !ok {
		return
	}
	imps, next, err := h.Imports.List(c.Request.Context(), merchantID(c), listID, p)
	if err != nil {
		fail(c, err)
		return
	}
	renderPage(c, imps, next, toImportResponse)
}
