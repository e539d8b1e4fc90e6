package core

import (
	"context"
	"crypto/rand"
	"io"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Generation defaults from the contract.
const (
	DefaultCharset   = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	DefaultLength    = 8
	DefaultSeparator = "-"
	// MaxBatchCount is the largest batch one request may ask for.
	MaxBatchCount = 50_000_000
	// headroom is how many times larger the code space must be than the list after the batch, so
	// that a fresh random code collides with an existing one less than once in a hundred tries.
	headroom = 100
)

// BatchStatus is where a generation batch is.
type BatchStatus string

// Batch statuses.
const (
	BatchQueued    BatchStatus = "queued"
	BatchRunning   BatchStatus = "running"
	BatchSucceeded BatchStatus = "succeeded"
	BatchFailed    BatchStatus = "failed"
)

// BatchSpec says what codes a batch generates.
type BatchSpec struct {
	Count     int64
	Prefix    string
	Length    int
	Charset   string
	Separator string
}

// Batch is one generation of codes into a list, numbered 1, 2, 3 … per list.
type Batch struct {
	MerchantID uuid.UUID
	ListID     uuid.UUID
	Number     int
	BatchSpec
	Generated  int64
	Status     BatchStatus
	Error      string
	Exported   bool
	CreatedBy  string
	CreatedAt  time.Time
	FinishedAt *time.Time
}

// BatchStore keeps batches.
type BatchStore interface {
	// CreateBatch numbers and stores a new queued batch.
	CreateBatch(ctx context.Context, b *Batch) error
	GetBatch(ctx context.Context, merchantID, listID uuid.UUID, number int) (Batch, error)
	ListBatches(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Batch, string, error)
	// ExportBatch streams the batch's codes as CSV to w and marks the batch exported.
	ExportBatch(ctx context.Context, list List, number int, w io.Writer) error
	// ExportBatchInfo streams every code of the batch as CSV with its state, uses and recipient
	// (BatchInfoHeader) to w and marks the batch exported.
	ExportBatchInfo(ctx context.Context, list List, number int, w io.Writer) error
}

// BatchInfoHeader is the header row of a batch's export with info: each code with its batch
// number, state, uses and recipient.
const BatchInfoHeader = "code,batch,state,uses,recipient_external_id,recipient_email,recipient_phone"

// Batches is the generation service used by the API; the worker generates.
type Batches struct {
	lists ListStore
	store BatchStore
	queue TaskQueue
	Clock
}

// NewBatches returns the batch service.
func NewBatches(lists ListStore, store BatchStore, queue TaskQueue) *Batches {
	return &Batches{lists: lists, store: store, queue: queue}
}

// Create validates the spec against the list and queues a batch.
func (s *Batches) Create(ctx context.Context, merchantID, listID uuid.UUID, spec BatchSpec, actor string) (Batch, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return Batch{}, err
	}
	if list.Kind == KindFixed {
		return Batch{}, newError(KindConflict, "fixed_list", "a fixed list holds its one code; generate codes into a unique list")
	}
	spec = spec.withDefaults()
	if err := spec.Validate(list); err != nil {
		return Batch{}, err
	}
	b := Batch{MerchantID: merchantID, ListID: listID, BatchSpec: spec, Status: BatchQueued, CreatedBy: actor, CreatedAt: s.Now().UTC()}
	if err := s.store.CreateBatch(ctx, &b); err != nil {
		return Batch{}, err
	}
	if err := s.queue.EnqueueBatch(ctx, merchantID, listID, b.Number); err != nil {
		return Batch{}, Unavailable("redis", err)
	}
	return b, nil
}

// List pages through a list's batches.
func (s *Batches) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]Batch, string, error) {
	if _, err := s.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	return s.store.ListBatches(ctx, merchantID, listID, page.Normalize())
}

// Export streams a finished batch's codes as CSV and marks it exported.
func (s *Batches) Export(ctx context.Context, merchantID, listID uuid.UUID, number int, w io.Writer) error {
	list, err := s.finished(ctx, merchantID, listID, number)
	if err != nil {
		return err
	}
	return s.store.ExportBatch(ctx, list, number, w)
}

// ExportWithInfo streams every code of a finished batch as CSV with its batch, state, uses and
// recipient (BatchInfoHeader), removed codes included, and marks the batch exported.
func (s *Batches) ExportWithInfo(ctx context.Context, merchantID, listID uuid.UUID, number int, w io.Writer) error {
	list, err := s.finished(ctx, merchantID, listID, number)
	if err != nil {
		return err
	}
	return s.store.ExportBatchInfo(ctx, list, number, w)
}

// finished returns the list of a batch that is no longer generating (ErrBatchNotReady while it is).
func (s *Batches) finished(ctx context.Context, merchantID, listID uuid.UUID, number int) (List, error) {
	list, err := s.lists.GetList(ctx, merchantID, listID)
	if err != nil {
		return List{}, err
	}
	b, err := s.store.GetBatch(ctx, merchantID, listID, number)
	if err != nil {
		return List{}, err
	}
	if b.Status == BatchQueued || b.Status == BatchRunning {
		return List{}, ErrBatchNotReady
	}
	return list, nil
}

func (s BatchSpec) withDefaults() BatchSpec {
	if s.Length == 0 {
		s.Length = DefaultLength
	}
	if s.Charset == "" {
		s.Charset = DefaultCharset
	}
	return s
}

// Validate checks the spec and that the code space can comfortably hold the list's codes plus
// Count new ones: the space must be at least 100 times larger, so a random code collides less
// than once in a hundred draws.
func (s BatchSpec) Validate(list List) error {
	switch {
	case s.Count < 1 || s.Count > MaxBatchCount:
		return Invalid("count", "must be between 1 and 50000000")
	case s.Length < 1 || s.Length > 64:
		return Invalid("length", "must be between 1 and 64")
	case !validCharset(s.Charset):
		return Invalid("charset", "must be 2 to 256 distinct printable characters without whitespace")
	case !printable(s.Prefix) || !printable(s.Separator):
		return Invalid("prefix", "prefix and separator must be printable characters without whitespace")
	}
	code := s.Prefix
	if code != "" {
		code += s.Separator
	}
	if utf8.RuneCountInString(code)+s.Length > 100 {
		return Invalid("length", "prefix, separator and length together must stay within 100 characters")
	}
	chars := float64(utf8.RuneCountInString(s.Charset))
	if list.CaseInsensitive {
		chars = float64(len(distinctRunes(strings.ToLower(s.Charset))))
	}
	space := math.Pow(chars, float64(s.Length)) // log-safe: overflows to +Inf, which is fine
	need := float64(list.Counts.Total+list.Counts.Removed+s.Count) * headroom
	if space < need {
		return &Error{Kind: KindInvalid, Code: "code_space_too_small",
			Message: "the charset and length cannot comfortably hold that many codes: use a longer length or a larger charset",
			Details: []FieldError{{Field: "length", Message: "code space too small for count"}}}
	}
	return nil
}

// Code builds a code from the spec's prefix and separator around a random part.
func (s BatchSpec) Code(random string) string {
	if s.Prefix == "" {
		return random
	}
	return s.Prefix + s.Separator + random
}

// CodeGenerator draws codes for a spec: a uniformly random part from crypto/rand (rejection
// sampling, so no character is more likely than another) wrapped in the prefix and separator.
type CodeGenerator struct {
	spec    BatchSpec
	charset []rune
	limit   int // bytes at or above limit are rejected to keep the draw uniform
	r       io.Reader
	buf     []byte
	pos     int
	part    []rune
}

// NewCodeGenerator returns a generator reading randomness from r (crypto/rand when nil). The spec
// must have passed Validate.
func NewCodeGenerator(spec BatchSpec, r io.Reader) *CodeGenerator {
	if r == nil {
		r = rand.Reader
	}
	spec = spec.withDefaults()
	cs := []rune(spec.Charset)
	return &CodeGenerator{spec: spec, charset: cs, limit: 256 - 256%len(cs), r: r,
		buf: make([]byte, 4096), pos: 4096, part: make([]rune, spec.Length)}
}

// Next returns a new random code.
func (g *CodeGenerator) Next() (string, error) {
	for i := 0; i < len(g.part); {
		if g.pos == len(g.buf) {
			if _, err := io.ReadFull(g.r, g.buf); err != nil {
				return "", err
			}
			g.pos = 0
		}
		v := int(g.buf[g.pos])
		g.pos++
		if v < g.limit {
			g.part[i] = g.charset[v%len(g.charset)]
			i++
		}
	}
	return g.spec.Code(string(g.part)), nil
}

func validCharset(cs string) bool {
	runes := []rune(cs)
	return len(runes) >= 2 && len(runes) <= 256 && printable(cs) && len(distinctRunes(cs)) == len(runes)
}

func distinctRunes(s string) map[rune]struct{} {
	m := map[rune]struct{}{}
	for _, r := range s {
		m[r] = struct{}{}
	}
	return m
}

func printable(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return utf8.ValidString(s)
}
