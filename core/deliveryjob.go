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
	"sync"
	"time"

	"github.com/google/uuid"
)

// Delivery job statuses.
const (
	JobUploading = "uploading"
	JobQueued    = "queued"
	JobRunning   = "running"
	JobDone      = "done"
	JobFailed    = "failed"
)

// DeliveryJob is a CSV of recipients to send a list's codes to.
type DeliveryJob struct {
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
func (j DeliveryJob) Total() int64 { return j.Queued + j.Sent + j.Failed + j.Waiting }

// Progress is the share of the job's rows that reached a final state (sent, failed or refused),
// from 0 to 1; a finished job whose every delivery is sent or failed is 1.
func (j DeliveryJob) Progress() float64 {
	if j.Status == JobDone && j.Queued == 0 && j.Waiting == 0 {
		return 1
	}
	rows := j.Total() + j.Invalid
	if rows == 0 {
		return 0
	}
	return float64(j.Sent+j.Failed+j.Invalid) / float64(rows)
}

// DeliveryJobStore keeps delivery jobs and their uploaded files.
type DeliveryJobStore interface {
	CreateDeliveryJob(ctx context.Context, j DeliveryJob) error
	// WriteDeliveryJobFile stores the upload from r in pieces and returns its size; it stops
	// with ErrUploadTooLarge past limit bytes.
	WriteDeliveryJobFile(ctx context.Context, merchantID, jobID uuid.UUID, r io.Reader, limit int64) (int64, error)
	// DeliveryJobFile reads the stored file back.
	DeliveryJobFile(ctx context.Context, merchantID, jobID uuid.UUID) (io.ReadCloser, error)
	// SetDeliveryJob records the job's status, checkpoint and counts of refused rows.
	SetDeliveryJob(ctx context.Context, merchantID, jobID uuid.UUID, status string, rowsDone, invalid int64, reason string) error
	// GetDeliveryJob returns the job with its deliveries counted by status.
	GetDeliveryJob(ctx context.Context, merchantID, listID, jobID uuid.UUID) (DeliveryJob, error)
	// DeliveryJobByID reads a job without its list (the worker).
	DeliveryJobByID(ctx context.Context, merchantID, jobID uuid.UUID) (DeliveryJob, error)
	// ListDeliveryJobs pages through a list's jobs, newest first, each with its deliveries
	// counted by status.
	ListDeliveryJobs(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]DeliveryJob, string, error)
}

// DeliveryJobQueue queues a job's run.
type DeliveryJobQueue interface {
	EnqueueDeliveryJob(ctx context.Context, merchantID, jobID uuid.UUID) error
}

// DeliveryJobs sends codes to a CSV of recipients.
type DeliveryJobs struct {
	deliveries *Deliveries
	store      DeliveryJobStore
	queue      DeliveryJobQueue
	log        *slog.Logger
}

// NewDeliveryJobs returns the service.
func NewDeliveryJobs(deliveries *Deliveries, store DeliveryJobStore, queue DeliveryJobQueue, log *slog.Logger) *DeliveryJobs {
	return &DeliveryJobs{deliveries: deliveries, store: store, queue: queue, log: log}
}

// DeliveryJobInput is a bulk request: the CSV and what to send.
type DeliveryJobInput struct {
	Channel    Channel
	TemplateID uuid.UUID
	Campaign   string
	File       io.Reader
	Limit      int64
}

// Create checks the request, stores the file and queues the job.
func (s *DeliveryJobs) Create(ctx context.Context, merchantID, listID uuid.UUID, in DeliveryJobInput) (DeliveryJob, error) {
	// The channel, template and list are checked with a stand-in recipient.
	probe := DeliveryInput{Channel: in.Channel, TemplateID: in.TemplateID, Campaign: in.Campaign,
		Recipient: MessageRecipient{Email: "probe@example.com", Phone: "+15555550100", PushToken: "probe"}}
	if err := s.deliveries.check(ctx, merchantID, listID, &probe); err != nil {
		return DeliveryJob{}, err
	}
	j := DeliveryJob{MerchantID: merchantID, ID: uuid.New(), ListID: listID, Channel: in.Channel, TemplateID: in.TemplateID,
		Campaign: probe.Campaign, Status: JobUploading, CreatedAt: time.Now().UTC()}
	if err := s.store.CreateDeliveryJob(ctx, j); err != nil {
		return DeliveryJob{}, err
	}
	if _, err := s.store.WriteDeliveryJobFile(ctx, merchantID, j.ID, in.File, in.Limit); err != nil {
		_ = s.store.SetDeliveryJob(context.WithoutCancel(ctx), merchantID, j.ID, JobFailed, 0, 0, "the upload did not finish")
		return DeliveryJob{}, err
	}
	if err := s.store.SetDeliveryJob(ctx, merchantID, j.ID, JobQueued, 0, 0, ""); err != nil {
		return DeliveryJob{}, err
	}
	j.Status = JobQueued
	if err := s.queue.EnqueueDeliveryJob(ctx, merchantID, j.ID); err != nil {
		return DeliveryJob{}, Unavailable("redis", err)
	}
	return j, nil
}

// Get returns a job with its deliveries counted.
func (s *DeliveryJobs) Get(ctx context.Context, merchantID, listID, jobID uuid.UUID) (DeliveryJob, error) {
	j, err := s.store.GetDeliveryJob(ctx, merchantID, listID, jobID)
	if err != nil {
		return j, err
	}
	return j.settled(), nil
}

// List pages through a list's jobs, newest first, each with its deliveries counted.
func (s *DeliveryJobs) List(ctx context.Context, merchantID, listID uuid.UUID, page Page) ([]DeliveryJob, string, error) {
	if _, err := s.deliveries.lists.GetList(ctx, merchantID, listID); err != nil {
		return nil, "", err
	}
	jobs, next, err := s.store.ListDeliveryJobs(ctx, merchantID, listID, page.Normalize())
	for i := range jobs {
		jobs[i] = jobs[i].settled()
	}
	return jobs, next, err
}

// settled is the job with the status a client sees: the stored status says the file was read;
// the job is done only once every delivery it made is sent or failed (none queued, sending or
// waiting for a code).
func (j DeliveryJob) settled() DeliveryJob {
	if j.Status == JobDone && (j.Queued > 0 || j.Waiting > 0) {
		j.Status = JobRunning
	}
	return j
}

// Rows of a job are handled jobChunk at a time, jobParallelism of them at once.
const (
	jobChunk       = 256
	jobParallelism = 8
)

// endOnListError fails the job when its list can give no code any more (saying why, from the
// chunk's start) and returns any other error for the task to retry.
func (s *DeliveryJobs) endOnListError(ctx context.Context, merchantID, jobID uuid.UUID, rowsDone, invalid int64, err error) error {
	if errors.Is(err, ErrListNotFound) || errors.Is(err, ErrListArchived) || errors.Is(err, ErrListExpired) || errors.Is(err, ErrListNotStarted) {
		return s.store.SetDeliveryJob(ctx, merchantID, jobID, JobFailed, max(rowsDone, 0), invalid, err.Error())
	}
	return err
}

// recipientColumns are the CSV columns a job reads.
var recipientColumns = []string{"email", "phone", "push_token", "external_id", "first_name", "last_name"}

// Run reads the job's CSV from its checkpoint and makes one delivery per row (a row whose
// recipient the channel cannot reach is counted invalid). Running it twice makes no delivery
// twice: a recipient's delivery of the campaign is the same delivery.
func (s *DeliveryJobs) Run(ctx context.Context, merchantID, jobID uuid.UUID) error {
	j, err := s.store.DeliveryJobByID(ctx, merchantID, jobID)
	if errors.Is(err, ErrDeliveryJobMissing) {
		return nil
	}
	if err != nil {
		return err
	}
	if j.Status == JobDone || j.Status == JobFailed || j.Status == JobUploading {
		return nil
	}
	file, err := s.store.DeliveryJobFile(ctx, merchantID, jobID)
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
		return s.store.SetDeliveryJob(ctx, merchantID, jobID, JobFailed, 0, 0, "the file has no header row")
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
		return s.store.SetDeliveryJob(ctx, merchantID, jobID, JobFailed, 0, 0,
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
	checkpoint := func(status string) error {
		return s.store.SetDeliveryJob(ctx, merchantID, jobID, status, rows, invalid, string(unstorable))
	}
	if err := s.store.SetDeliveryJob(ctx, merchantID, jobID, JobRunning, j.RowsDone, j.Invalid, string(unstorable)); err != nil {
		return err
	}
	// Rows are handled in chunks: one read finds the chunk's recipients that have their delivery
	// already (a rerun, or a recipient named twice), then the others at the same time (each
	// allocates its code and queues its message on its own), then the checkpoint. A rerun after a
	// crash repeats at most one chunk, and a repeated row finds its delivery.
	var chunk []DeliveryInput
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		recipients := make([]MessageRecipient, len(chunk))
		for i, in := range chunk {
			recipients[i] = in.Recipient
		}
		found, err := s.deliveries.store.FindDeliveries(ctx, merchantID, j.ListID, j.Channel, j.Campaign, recipients)
		if err != nil {
			return err
		}
		var mu sync.Mutex
		var firstErr error
		var refused int64
		sem := make(chan struct{}, jobParallelism)
		var wg sync.WaitGroup
		seen := make(map[string]bool, len(chunk))
		for _, in := range chunk {
			key := DeliveryKey(in.Recipient)
			if seen[key] {
				continue // named twice in the chunk: one delivery
			}
			seen[key] = true
			sem <- struct{}{}
			wg.Add(1)
			go func(in DeliveryInput, had Delivery, found bool) {
				defer func() { <-sem; wg.Done() }()
				var err error
				if found {
					_, _, err = s.deliveries.existing(ctx, had)
				} else {
					jid := jobID
					_, _, err = s.deliveries.createNew(ctx, merchantID, j.ListID, &jid, in)
				}
				var ce *Error
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
				case errors.As(err, &ce) && ce.Kind == KindInvalid:
					refused++
				case firstErr == nil:
					firstErr = err
				}
			}(in, found[key], found[key].ID != uuid.Nil)
		}
		wg.Wait()
		chunk = chunk[:0]
		invalid += refused
		return firstErr
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
					invalid++
				}
				continue
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
			unstorable.add(line)
			invalid++
		} else if rcpt, err := NormalizeRecipient(j.Channel, in.Recipient); err != nil {
			invalid++
		} else {
			in.Recipient = rcpt
			chunk = append(chunk, in)
		}
		if rows%jobChunk == 0 {
			if err := flush(); err != nil {
				return s.endOnListError(ctx, merchantID, jobID, rows-jobChunk, invalid, err)
			}
			if err := checkpoint(JobRunning); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return s.endOnListError(ctx, merchantID, jobID, rows-int64(len(chunk)), invalid, err)
	}
	s.log.InfoContext(ctx, "delivery job read", "job_id", jobID, "rows", rows, "invalid", invalid, "unstorable", string(unstorable))
	return checkpoint(JobDone)
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

// refusedLines is the note a delivery job keeps in its error field while it runs and once done:
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
