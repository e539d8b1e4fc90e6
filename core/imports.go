package core

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core/codefile"
)

// ImportStatus is where an import is.
type ImportStatus string

// Import statuses. An import is "uploading" while the gateway stores the file; it is then queued
// for a worker.
const (
	ImportUploading ImportStatus = "uploading"
	ImportQueued    ImportStatus = "queued"
	ImportRunning   ImportStatus = "running"
	ImportSucceeded ImportStatus = "succeeded"
	ImportFailed    ImportStatus = "failed"
)

// ImportFormat is how an uploaded file is read.
type ImportFormat string

// Import formats: a CSV with a header row naming a Code column, or plain text with one code a line.
const (
	FormatCSV  ImportFormat = "csv"
	FormatText ImportFormat = "txt"
)

// MaxImportErrors is how many rejected rows an import report keeps.
const MaxImportErrors = 100

// RowError is one rejected row of an import.
type RowError struct {
	Line   int64  `json:"line"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// Reasons a row is rejected.
const (
	ReasonInvalidCode     = codefile.ReasonInvalidCode
	ReasonDuplicateInFile = "duplicate_in_file"
	ReasonDuplicateInList = "duplicate_in_list"
	ReasonInvalidDate     = codefile.ReasonInvalidDate
)

// Import is an import of codes into a list and its report.
type Import struct {
	ID               uuid.UUID
	MerchantID       uuid.UUID
	ListID           uuid.UUID
	Number           int
	Status           ImportStatus
	Format           ImportFormat
	Filename         string
	SizeBytes        int64
	Rows             int64
	Imported         int64
	DuplicatesInFile int64
	DuplicatesInList int64
	Invalid          int64
	Errors           []RowError
	Error            string
	BytesDone        int64
	LinesDone        int64
	Actor            string
	CreatedAt        time.Time
	StartedAt        *time.Time
	FinishedAt       *time.Time
	// ListTotal is the list's total after the import (filled when read).
	ListTotal int64
}

// Progress is the share of the file processed, from 0 to 1.
func (i Import) Progress() float64 {
	switch {
	case i.Status == ImportSucceeded:
		return 1
	case i.SizeBytes <= 0:
		return 0
	}
	p := float64(i.BytesDone) / float64(i.SizeBytes)
	if p > 1 {
		p = 1
	}
	return p
}

// TaskQueue enqueues background work. Enqueueing the same task twice is harmless: task ids are
// derived from the object's id and a duplicate is treated as already queued.
type TaskQueue interface {
	EnqueueImport(ctx context.Context, merchantID, importID uuid.UUID) error
	EnqueueBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) error
	// EnqueueWebhookBatch queues the processing of the merchant's stored platform webhook
	// deliveries (WebhookBatches), unless a task that has not read them yet is queued.
	EnqueueWebhookBatch(ctx context.Context, merchantID uuid.UUID) error
	// EnqueuePush runs (or resumes) the push of a list to a connection.
	EnqueuePush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error
	// EnqueueSend sends (or gives up on) a queued delivery.
	EnqueueSend(ctx context.Context, merchantID, deliveryID uuid.UUID) error
	// EnqueueResumeDeliveries gives a list's waiting deliveries the codes there are.
	EnqueueResumeDeliveries(ctx context.Context, merchantID, listID uuid.UUID) error
	// EnqueueBulkSend runs (or resumes) a CSV bulk send.
	EnqueueBulkSend(ctx context.Context, merchantID, jobID uuid.UUID) error
}

// ImportStore keeps imports, their uploaded files and their progress.
type ImportStore interface {
	// CreateImport numbers and stores a new import in status uploading.
	CreateImport(ctx context.Context, imp *Import) error
	// WriteImportFile stores the upload from r, in pieces, and returns its size. It stops with
	// ErrUploadTooLarge past limit bytes.
	WriteImportFile(ctx context.Context, merchantID, importID uuid.UUID, r io.Reader, limit int64) (int64, error)
	// MarkImportQueued records the file size and moves the import to queued.
	MarkImportQueued(ctx context.Context, merchantID, importID uuid.UUID, size int64) error
	// DiscardImport removes an import whose upload did not arrive whole, with what was stored of
	// its file, as if it had never been created.
	DiscardImport(ctx context.Context, merchantID, importID uuid.UUID) error
	GetImport(ctx context.Context, merchantID, listID, importID uuid.UUID) (Import, error)
	ListImports(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Import, string, error)
}

// Imports is the import service used by the API; the worker runs the import itself.
type Imports struct {
	lists ListStore
	store ImportStore
	queue TaskQueue
	Clock
}

// NewImports returns the import service.
func NewImports(lists ListStore, store ImportStore, queue TaskQueue) *Imports {
	return &Imports{lists: lists, store: store, queue: queue}
}

// Start stores the upload streamed from r and queues the import. An upload that does not arrive
// whole (cut off, too large) leaves no import behind; a failure to enqueue leaves it queued for the
// sweeper to enqueue again.
func (s *Imports) Start(ctx context.Context, merchantID, listID uuid.UUID, format ImportFormat, filename string, r io.Reader, limit int64, actor string) (Import, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return Import{}, err
	}
	if list.Kind == KindFixed {
		return Import{}, newError(KindConflict, "fixed_list", "a fixed list holds its one code; imports are for unique lists")
	}
	if format != FormatCSV && format != FormatText {
		return Import{}, Invalid("format", "must be csv or txt")
	}
	imp := Import{ID: uuid.New(), MerchantID: merchantID, ListID: listID, Status: ImportUploading, Format: format,
		Filename: cleanFilename(filename), Actor: actor, CreatedAt: s.Now().UTC(), Errors: []RowError{}}
	if err := s.store.CreateImport(ctx, &imp); err != nil {
		return Import{}, err
	}
	size, err := s.store.WriteImportFile(ctx, merchantID, imp.ID, r, limit)
	if err != nil {
		// The upload broke off or was too large: the request is refused, so the import goes.
		if derr := s.store.DiscardImport(context.WithoutCancel(ctx), merchantID, imp.ID); derr != nil {
			return Import{}, derr
		}
		return Import{}, err
	}
	if err := s.store.MarkImportQueued(ctx, merchantID, imp.ID, size); err != nil {
		return Import{}, err
	}
	imp.Status, imp.SizeBytes = ImportQueued, size
	if err := s.queue.EnqueueImport(ctx, merchantID, imp.ID); err != nil {
		return Import{}, Unavailable("redis", err)
	}
	imp.ListTotal = list.Counts.Total
	return imp, nil
}

// Get returns one import of a list.
func (s *Imports) Get(ctx context.Context, merchantID, listID, importID uuid.UUID) (Import, error) {
	return s.store.GetImport(ctx, merchantID, listID, importID)
}

// List pages through a list's imports, newest first.
func (s *Imports) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Import, string, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	return s.store.ListImports(ctx, merchantID, listID, page.Normalize())
}

// cleanFilename keeps the base name of an uploaded file as text that is safe to store and show:
// valid UTF-8 without control characters, at most 255 characters.
func cleanFilename(name string) string {
	if i := strings.LastIndexAny(name, "/\\"); i >= 0 {
		name = name[i+1:]
	}
	return cut(strings.TrimSpace(printableText(name)), 255)
}
