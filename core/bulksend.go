package core

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// Bulk send statuses.
const (
	JobUploading = "uploading"
	JobQueued    = "queued"
	JobRunning   = "running"
	JobDone      = "done"
	JobFailed    = "failed"
)

// BulkSend is a CSV of recipients to send a list's codes to, one message delivery each. Its
// tables keep their schema names: delivery_jobs, delivery_job_chunks (the uploaded file) and
// delivery_job_counts.
type BulkSend struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	ListID     uuid.UUID
	Channel    Channel
	TemplateID uuid.UUID
	Campaign   string
	Status     string
	// RowsDone is the checkpoint: data rows of the file read so far; Invalid counts those
	// refused (no usable recipient for the channel).
	RowsDone, Invalid int64
	Error             string
	// Queued, Sent, Failed and Waiting count the job's deliveries by status.
	Queued, Sent, Failed, Waiting int64
	CreatedAt                     time.Time
}

// Total is the job's deliveries so far.
func (j BulkSend) Total() int64 { return j.Queued + j.Sent + j.Failed + j.Waiting }

// Progress is the share of the job's rows that reached a final state (sent, failed or refused),
// from 0 to 1; a finished job whose every delivery is sent or failed is 1.
func (j BulkSend) Progress() float64 {
	if j.Status == JobDone && j.Queued == 0 && j.Waiting == 0 {
		return 1
	}
	rows := j.Total() + j.Invalid
	if rows == 0 {
		return 0
	}
	return float64(j.Sent+j.Failed+j.Invalid) / float64(rows)
}

// BulkSendStore keeps bulk sends and their uploaded files.
type BulkSendStore interface {
	CreateBulkSend(ctx context.Context, j BulkSend) error
	// WriteBulkSendFile stores the upload from r in pieces and returns its size; it stops
	// with ErrUploadTooLarge past limit bytes.
	WriteBulkSendFile(ctx context.Context, merchantID, jobID uuid.UUID, r io.Reader, limit int64) (int64, error)
	// BulkSendFile reads the stored file back.
	BulkSendFile(ctx context.Context, merchantID, jobID uuid.UUID) (io.ReadCloser, error)
	// SetBulkSend records the job's status, checkpoint and counts of refused rows.
	SetBulkSend(ctx context.Context, merchantID, jobID uuid.UUID, status string, rowsDone, invalid int64, reason string) error
	// GetBulkSend returns the job with its deliveries counted by status.
	GetBulkSend(ctx context.Context, merchantID, listID, jobID uuid.UUID) (BulkSend, error)
	// BulkSendByID reads a job without its list (the worker).
	BulkSendByID(ctx context.Context, merchantID, jobID uuid.UUID) (BulkSend, error)
	// ListBulkSends pages through a list's jobs, newest first, each with its deliveries
	// counted by status.
	ListBulkSends(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]BulkSend, string, error)
	// DeliverChunk runs one transaction for a chunk of a job's recipients: it takes their advisory
	// locks and reads what the chunk is decided on (a ChunkLedger: the list, the free codes from
	// the chunk's start and, when short, from the list's start, the recipients' last hand-outs and
	// the deliveries they have), calls decide, and persists the decision: the codes handed out,
	// their allocations, the new deliveries and the counters. A delivery another transaction
	// stored first for a recipient is answered as stored, not made. A decision that refuses the
	// chunk writes nothing.
	DeliverChunk(ctx context.Context, c DeliveryChunk, decide func(*ChunkLedger) ChunkDecision) (ChunkResult, error)
	// RecordStockCrossings is AllocationStore.RecordStockCrossings.
	RecordStockCrossings(ctx context.Context, merchantID, listID uuid.UUID) ([]string, error)
}

// BulkSendQueue queues a job's run.
type BulkSendQueue interface {
	EnqueueBulkSend(ctx context.Context, merchantID, jobID uuid.UUID) error
	// EnqueueSendBatch queues one task that sends the deliveries (DeliverySender.SendBatch);
	// key names the batch, so a batch waiting or running is queued once.
	EnqueueSendBatch(ctx context.Context, merchantID uuid.UUID, key string, deliveryIDs []uuid.UUID) error
}

// BulkSends sends codes to a CSV of recipients.
type BulkSends struct {
	deliveries *Deliveries
	store      BulkSendStore
	queue      BulkSendQueue
	log        *slog.Logger
	// Positions, when set, gives each chunk a range of the list's allocation cursor to take its
	// codes from (else a job takes them after the last it took).
	Positions PositionRange
}

// NewBulkSends returns the service.
func NewBulkSends(deliveries *Deliveries, store BulkSendStore, queue BulkSendQueue, log *slog.Logger) *BulkSends {
	return &BulkSends{deliveries: deliveries, store: store, queue: queue, log: log}
}

// BulkSendInput is a bulk request: the CSV and what to send.
type BulkSendInput struct {
	Channel    Channel
	TemplateID uuid.UUID
	Campaign   string
	File       io.Reader
	Limit      int64
}

// Create checks the request, stores the file and queues the job.
func (s *BulkSends) Create(ctx context.Context, merchantID, listID uuid.UUID, in BulkSendInput) (BulkSend, error) {
	// The channel, template and list are checked with a stand-in recipient.
	probe := DeliveryInput{Channel: in.Channel, TemplateID: in.TemplateID, Campaign: in.Campaign,
		Recipient: MessageRecipient{Email: "probe@example.com", Phone: "+15555550100", PushToken: "probe"}}
	if err := s.deliveries.check(ctx, merchantID, listID, &probe); err != nil {
		return BulkSend{}, err
	}
	j := BulkSend{MerchantID: merchantID, ID: uuid.New(), ListID: listID, Channel: in.Channel, TemplateID: in.TemplateID,
		Campaign: probe.Campaign, Status: JobUploading, CreatedAt: time.Now().UTC()}
	if err := s.store.CreateBulkSend(ctx, j); err != nil {
		return BulkSend{}, err
	}
	if _, err := s.store.WriteBulkSendFile(ctx, merchantID, j.ID, in.File, in.Limit); err != nil {
		_ = s.store.SetBulkSend(context.WithoutCancel(ctx), merchantID, j.ID, JobFailed, 0, 0, "the upload did not finish")
		return BulkSend{}, err
	}
	if err := s.store.SetBulkSend(ctx, merchantID, j.ID, JobQueued, 0, 0, ""); err != nil {
		return BulkSend{}, err
	}
	j.Status = JobQueued
	if err := s.queue.EnqueueBulkSend(ctx, merchantID, j.ID); err != nil {
		return BulkSend{}, Unavailable("redis", err)
	}
	return j, nil
}

// Get returns a job with its deliveries counted.
func (s *BulkSends) Get(ctx context.Context, merchantID, listID, jobID uuid.UUID) (BulkSend, error) {
	j, err := s.store.GetBulkSend(ctx, merchantID, listID, jobID)
	if err != nil {
		return j, err
	}
	return j.settled(), nil
}

// List pages through a list's jobs, newest first, each with its deliveries counted.
func (s *BulkSends) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]BulkSend, string, error) {
	if _, err := s.deliveries.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	jobs, next, err := s.store.ListBulkSends(ctx, merchantID, listID, page.Normalize())
	for i := range jobs {
		jobs[i] = jobs[i].settled()
	}
	return jobs, next, err
}

// settled is the job with the status a client sees: the stored status says the file was read;
// the job is done only once every delivery it made is sent or failed (none queued, sending or
// waiting for a code).
func (j BulkSend) settled() BulkSend {
	if j.Status == JobDone && (j.Queued > 0 || j.Waiting > 0) {
		j.Status = JobRunning
	}
	return j
}

// Rows of a job are handled jobChunk at a time: one statement allocates the chunk's codes and
// stores its deliveries (it takes one advisory lock per recipient, so a chunk stays well inside
// PostgreSQL's lock table).
const jobChunk = 256

// endOnListError fails the job when its list can give no code any more (saying why, from the
// chunk's start) and returns any other error for the task to retry.
func (s *BulkSends) endOnListError(ctx context.Context, merchantID, jobID uuid.UUID, rowsDone, invalid int64, err error) error {
	if errors.Is(err, ErrListNotFound) || errors.Is(err, ErrListArchived) || errors.Is(err, ErrListExpired) || errors.Is(err, ErrListNotStarted) {
		return s.store.SetBulkSend(ctx, merchantID, jobID, JobFailed, max(rowsDone, 0), invalid, err.Error())
	}
	return err
}

// recipientColumns are the CSV columns a job reads.
var recipientColumns = []string{"email", "phone", "push_token", "external_id", "first_name", "last_name"}

// Run reads the job's CSV from its checkpoint and makes one delivery per row (a row whose
// recipient the channel cannot reach is counted invalid). Running it twice makes no delivery
// twice: a recipient's delivery of the campaign is the same delivery.
func (s *BulkSends) Run(ctx context.Context, merchantID, jobID uuid.UUID) error {
	j, err := s.store.BulkSendByID(ctx, merchantID, jobID)
	if errors.Is(err, ErrBulkSendMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	if j.Status == JobDone || j.Status == JobFailed || j.Status == JobUploading {
		return nil
	}
	file, err := s.store.BulkSendFile(ctx, merchantID, jobID)
	if err != nil {
		return err
	}
	defer file.Close()
	br := bufio.NewReaderSize(file, 64<<10)
	// A UTF-8 byte order mark (Excel) is not part of the header.
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		_, _ = br.Discard(3)
	}
	first, _ := br.Peek(4096)
	r := csv.NewReader(br)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	line := string(first)
	if i := strings.IndexAny(line, "\r\n"); i >= 0 {
		line = line[:i]
	}
	if strings.Count(line, ";") > strings.Count(line, ",") {
		r.Comma = ';'
	} else if strings.Count(line, "\t") > strings.Count(line, ",") {
		r.Comma = '\t'
	}
	header, err := r.Read()
	if err != nil {
		return s.store.SetBulkSend(ctx, merchantID, jobID, JobFailed, 0, 0, "the file has no header row")
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		for _, c := range recipientColumns {
			if h == c {
				col[c] = i
			}
		}
	}
	if len(col) == 0 {
		return s.store.SetBulkSend(ctx, merchantID, jobID, JobFailed, 0, 0,
			"the header row names none of the columns "+strings.Join(recipientColumns, ", "))
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	rows, invalid := int64(0), j.Invalid
	// unstorable names the lines refused for text that cannot be stored; a rerun goes on from the
	// note of the run it continues.
	var unstorable refusedLines
	if j.Status == JobRunning && strings.HasPrefix(j.Error, refusedLinesPrefix) {
		unstorable = refusedLines(j.Error)
	}
	done := j.RowsDone // the checkpoint: rows whose chunks are stored
	checkpoint := func(status string) error {
		return s.store.SetBulkSend(ctx, merchantID, jobID, status, done, invalid, string(unstorable))
	}
	if err := s.store.SetBulkSend(ctx, merchantID, jobID, JobRunning, j.RowsDone, j.Invalid, string(unstorable)); err != nil {
		return err
	}
	// Rows are handled in chunks: one statement allocates the codes of a chunk's recipients and
	// stores their deliveries (those that had one keep it: a rerun, or a recipient named twice),
	// and their sends are queued in batches. Up to chunksInFlight chunks are with the store at
	// once while the file is read on; the checkpoint moves past a chunk once it and every chunk
	// before it are stored. A rerun after a crash repeats the chunks past the checkpoint, and a
	// repeated row finds its delivery.
	var next atomic.Int64 // where the job looks for free codes when the allocation cursor does not answer
	var queue []*chunkRun // chunks with the store, in the order of the file
	cur := &chunkRun{}
	var chunk []DeliveryInput
	launched := j.RowsDone
	launch := func() {
		c, in := cur, chunk
		c.lastRow, c.done, launched = rows, make(chan struct{}), rows
		cur, chunk = &chunkRun{}, nil
		queue = append(queue, c)
		go func() {
			defer close(c.done)
			c.refused, c.err = s.deliverChunk(ctx, j, in, c.lastRow, &next)
		}()
	}
	// settle takes the stored chunks off the front of the queue (waiting for the first when wait)
	// and moves the checkpoint past them. A chunk that failed ends the run there: the chunks after
	// it are waited for and left to a rerun.
	settle := func(wait bool) error {
		moved := false
		for len(queue) > 0 {
			c := queue[0]
			if wait {
				<-c.done
				wait = false
			} else if !isClosed(c.done) {
				break
			}
			queue = queue[1:]
			if c.err != nil {
				for _, later := range queue {
					<-later.done
				}
				queue = nil
				if moved {
					if err := checkpoint(JobRunning); err != nil {
						return err
					}
				}
				return s.endOnListError(ctx, merchantID, jobID, done, invalid, c.err)
			}
			done, invalid, moved = c.lastRow, invalid+c.invalid+c.refused, true
			for _, line := range c.lines {
				unstorable.add(line)
			}
		}
		if moved {
			return checkpoint(JobRunning)
		}
		return nil
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rows++
				if rows > j.RowsDone {
					cur.invalid++
				}
				continue
			}
			for _, c := range queue {
				<-c.done
			}
			return err
		}
		rows++
		if rows <= j.RowsDone {
			continue // done by an earlier run
		}
		in := DeliveryInput{Channel: j.Channel, TemplateID: j.TemplateID, Campaign: j.Campaign, Actor: "delivery_job:" + jobID.String(),
			Recipient: MessageRecipient{Email: field(rec, "email"), Phone: field(rec, "phone"), PushToken: field(rec, "push_token"),
				ExternalID: field(rec, "external_id"), FirstName: field(rec, "first_name"), LastName: field(rec, "last_name")}}
		if !storableRow(rec, col) {
			// A NUL or bytes that are not UTF-8 (a UTF-16 or Latin-1 file, say): PostgreSQL cannot
			// store the row's text, so the row is refused and its line named on the job.
			line, _ := r.FieldPos(0)
			cur.lines = append(cur.lines, line)
			cur.invalid++
		} else if rcpt, err := NormalizeRecipient(j.Channel, in.Recipient); err != nil {
			cur.invalid++
		} else {
			in.Recipient = rcpt
			chunk = append(chunk, in)
		}
		if rows%jobChunk == 0 {
			launch()
			if err := settle(len(queue) >= chunksInFlight); err != nil {
				return err
			}
		}
	}
	if rows > launched {
		launch() // the last rows, fewer than a chunk
	}
	for len(queue) > 0 {
		if err := settle(true); err != nil {
			return err
		}
	}
	done = rows
	s.log.InfoContext(ctx, "bulk send read", "job_id", jobID, "rows", rows, "invalid", invalid, "unstorable", string(unstorable))
	return checkpoint(JobDone)
}

// chunksInFlight is how many chunks of a job are with the store at once: the next chunk is read
// and prepared while the last is stored, and two statements keep both of a small server's cores
// busy.
const chunksInFlight = 2

// chunkRun is a chunk of a job's file on its way to the store.
type chunkRun struct {
	lastRow int64 // the file's row the chunk ends with
	invalid int64 // rows of the chunk refused while reading
	lines   []int // lines among them refused for text that cannot be stored
	refused int64 // rows the store refused (deliverChunk)
	err     error
	done    chan struct{}
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// storableRow reports whether the row's fields that the job reads hold text PostgreSQL can store:
// valid UTF-8 without NUL.
func storableRow(rec []string, col map[string]int) bool {
	for _, i := range col {
		if i < len(rec) && !storableText(rec[i]) {
			return false
		}
	}
	return true
}

// refusedLines is the note a bulk send keeps in its error field while it runs and once done:
// the file's lines refused for text that cannot be stored, the first maxRefusedLines of them.
type refusedLines string

const (
	refusedLinesPrefix = "rows refused for text that cannot be stored (a NUL character or bytes that are not UTF-8) on lines "
	maxRefusedLines    = 20
)

// add names one more line.
func (n *refusedLines) add(line int) {
	s := string(*n)
	if !strings.HasPrefix(s, refusedLinesPrefix) {
		*n = refusedLines(refusedLinesPrefix + strconv.Itoa(line))
		return
	}
	switch listed := strings.Count(s, ",") + 1; {
	case strings.HasSuffix(s, "…"):
	case listed < maxRefusedLines:
		*n += refusedLines(", " + strconv.Itoa(line))
	default:
		*n += " …"
	}
}
