package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/messaging"
	"github.com/coupongate/coupongate/integrations/messaging/messagingfake"
)

// benchFrom is the sender of the bench's emails (the channel's and the ceiling's).
const benchFrom = "Bench <codes@bench.example>"

// emailCode is a code seeded for the email bench: the prefix and 16 hex digits (mixCode).
var emailCode = regexp.MustCompile(`MAIL[0-9A-F]{16}`)

// benchRecipient is the i-th recipient of the bulk CSV (i from 1).
func benchRecipient(i int) (email, firstName string) {
	return fmt.Sprintf("r%06d@bench.example", i), fmt.Sprintf("Guest%06d", i)
}

// restartWorker replaces the stack's worker with one whose environment ends with extra.
// startStack appends its own WORKER_CONCURRENCY and DB_MAX_CONNS after its extra variables, and
// the last value of a variable wins, so they cannot be raised through startStack.
func restartWorker(tb testing.TB, s *stack, extra ...string) {
	s.worker.stop(tb)
	cmd := exec.Command(filepath.Join(binaries(tb), "worker"))
	cmd.Env = append(append([]string(nil), s.worker.cmd.Env...), extra...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &proc{name: "worker", cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	s.worker = p
}

// bulkJob is the answer of GET /lists/{id}/deliveries/bulk/{job_id}.
type bulkJob struct {
	ID      string `json:"id"`
	Status  string `json:"status"`
	Total   int64  `json:"total"`
	Queued  int64  `json:"queued"`
	Sent    int64  `json:"sent"`
	Failed  int64  `json:"failed"`
	Waiting int64  `json:"waiting"`
	Invalid int64  `json:"invalid"`
	Error   string `json:"error"`
}

// BenchmarkBulkEmail100k: a bulk delivery of 100,000 emails (BENCH_EMAILS) from a CSV of
// recipients to an SMTP sink run in the bench process, from the POST of the CSV to the last
// message the sink accepted: messages per second, and when the job had read the CSV into
// deliveries. Then the proof: every recipient got exactly one message holding exactly one code,
// no code went to two recipients, each is the code the deliveries table holds for the recipient,
// and the job's N deliveries are all sent. Beside it: the sink's own ceiling, as many messages
// sent straight to it by 8 goroutines, each with its own messaging.Mailer, measured right after
// each run. BENCH_RUNS runs (default 3), each with the stack started afresh on a new list of the
// same merchant; the row gives the medians and each run's ratio.
func BenchmarkBulkEmail100k(b *testing.B) {
	n := envInt("BENCH_EMAILS", 100_000)
	concurrency := envInt("BENCH_EMAIL_CONCURRENCY", 16)
	ctx := context.Background()
	sink, err := messagingfake.StartSMTPSink(messagingfake.SinkConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	p := pool(b, 4)
	defer p.Close()
	resetCodes(b, p)
	keys := merchant(b)
	var ours, limits, ratios []float64
	var last bulkRun
	for range runs() {
		last = bulkEmailRun(b, p, sink, keys, n, concurrency)
		ours, limits, ratios = append(ours, last.ours), append(limits, last.limit), append(ratios, last.ours/last.limit)
	}

	// What one commit costs on this machine now: the CSV reader commits once a chunk of 256 rows
	// (its transaction, store.DeliverChunk) and its checkpoint, the sends twice a group of 32 (claim,
	// outcomes).
	const probes = 1000
	for _, q := range []string{`DROP TABLE IF EXISTS raw_commit_probe`, `CREATE TABLE raw_commit_probe (i int)`} {
		if _, err := p.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	commitStart := time.Now()
	for i := 0; i < probes; i++ {
		if _, err := p.Exec(ctx, `INSERT INTO raw_commit_probe VALUES ($1)`, i); err != nil {
			b.Fatal(err)
		}
	}
	commits := float64(probes) / time.Since(commitStart).Seconds()
	_, _ = p.Exec(ctx, `DROP TABLE raw_commit_probe`)

	runRatios := make([]string, len(ratios))
	for i, r := range ratios {
		runRatios[i] = fmt.Sprintf("%.3f", r)
	}
	report(row{fmt.Sprintf("bulk email, %d recipients from a CSV to an SMTP sink, POST → last message (worker concurrency %d), median of %d runs", n, concurrency, len(ours)),
		fmt.Sprintf("%.0f messages/s (runs %s)", median(ours), wholes(ours)),
		fmt.Sprintf("%.0f messages/s straight to the sink (%d messages, 8 Mailers; runs %s)", median(limits), min(n, 20_000), wholes(limits)),
		fmt.Sprintf("%.3f of the sink, runs %s (goal ≥ 0.4)", median(ratios), strings.Join(runRatios, ", ")),
		fmt.Sprintf("last run: %s; an idle connection commits %.0f single-row INSERTs/s after the runs (the reader commits twice a chunk of 256 rows, the sends twice a group of 32)",
			last.note, commits)})
}

// wholes prints figures as whole numbers, comma-separated.
func wholes(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.0f", x)
	}
	return strings.Join(parts, ", ")
}

// bulkRun is what one run of BenchmarkBulkEmail100k measured.
type bulkRun struct {
	ours, limit float64 // messages per second: the job's, and straight to the sink
	note        string
}

// bulkEmailRun runs the bulk job once on a new list (a stack of its own), checks what the sink
// received, and measures the sink's ceiling after it.
func bulkEmailRun(b *testing.B, p *pgxpool.Pool, sink *messagingfake.SMTPSink, keys core.MerchantKeys, n, concurrency int) bulkRun {
	ctx := context.Background()
	s := startStack(b)
	stopped := false
	defer func() {
		if !stopped {
			s.stop(b)
		}
	}()
	workerEnv := []string{"WORKER_CONCURRENCY=" + strconv.Itoa(concurrency), "DB_MAX_CONNS=" + strconv.Itoa(max(12, concurrency+4))}
	if addr := os.Getenv("BENCH_WORKER_DEBUG_ADDR"); addr != "" { // profile the worker during the bench
		workerEnv = append(workerEnv, "DEBUG_ADDR="+addr)
	}
	restartWorker(b, s, workerEnv...)
	sink.Reset()
	list, codes := seedList(b, s, keys.APIKey, n, "MAIL")
	seeded := make(map[string]bool, n)
	for _, c := range codes {
		seeded[c] = true
	}
	host, port := sink.Addr()
	var out map[string]any
	if st := call(b, "PUT", s.url+"/api/v1/channels/email", keys.APIKey, map[string]any{"host": host, "port": port, "username": "",
		"password": "", "from": benchFrom, "security": "none"}, &out); st != 200 {
		b.Fatalf("email channel: %d %v", st, out)
	}
	var tmpl struct{ ID string }
	if st := call(b, "POST", s.url+"/api/v1/lists/"+list+"/templates", keys.APIKey, map[string]any{"channel": "email",
		"subject": "Your code", "text": "Hi <firstname>, your code is <couponcode>"}, &tmpl); st != 201 {
		b.Fatalf("template: %d %+v", st, tmpl)
	}

	// The multipart body, built before the clock starts: the fields, then the CSV.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range [][2]string{{"channel", "email"}, {"template_id", tmpl.ID}, {"campaign", "bench"}} {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			b.Fatal(err)
		}
	}
	fw, err := mw.CreateFormFile("file", "recipients.csv")
	if err != nil {
		b.Fatal(err)
	}
	io.WriteString(fw, "email,first_name\n")
	for i := 1; i <= n; i++ {
		email, first := benchRecipient(i)
		io.WriteString(fw, email+","+first+"\n")
	}
	if err := mw.Close(); err != nil {
		b.Fatal(err)
	}

	// The sink's count, watched every 10 ms from the bench process: when the last message came.
	before := sink.Count()
	var firstAt, lastAt atomic.Int64
	watchDone := make(chan struct{})
	stopWatch := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			got := sink.Count() - before
			if got > 0 && firstAt.Load() == 0 {
				firstAt.Store(time.Now().UnixNano())
			}
			if got >= n {
				lastAt.Store(time.Now().UnixNano())
				return
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	defer func() {
		select {
		case <-watchDone:
		default:
			close(stopWatch)
		}
	}()

	start := time.Now()
	req, _ := http.NewRequest("POST", s.url+"/api/v1/lists/"+list+"/deliveries/bulk", bytes.NewReader(body.Bytes()))
	req.Header.Set("Authorization", "Bearer "+keys.APIKey)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	accepted := time.Since(start)
	var job bulkJob
	if resp.StatusCode != 202 || json.Unmarshal(rb, &job) != nil || job.ID == "" {
		b.Fatalf("bulk delivery: %d %s", resp.StatusCode, rb)
	}

	// Poll the job once a second (its counts are an aggregate over its deliveries); the time it
	// finished reading is taken from its own row afterwards.
	jobURL := s.url + "/api/v1/lists/" + list + "/deliveries/bulk/" + job.ID
	var sentAtRead int
	var readSeen time.Time
	for deadline := start.Add(25 * time.Minute); ; {
		if st := call(b, "GET", jobURL, keys.APIKey, nil, &job); st != 200 {
			b.Fatalf("job: %d %+v", st, job)
		}
		if job.Total+job.Invalid == int64(n) && sentAtRead == 0 { // every row read (done waits for the sends)
			sentAtRead, readSeen = sink.Count()-before, time.Now()
		}
		if job.Status == "failed" {
			b.Fatalf("job failed: %+v", job)
		}
		if job.Status == "done" && job.Sent+job.Failed == int64(n) {
			break
		}
		if job.Total+job.Invalid == int64(n) && job.Waiting > 0 {
			b.Fatalf("job done with %d deliveries waiting for codes: %+v", job.Waiting, job)
		}
		if time.Now().After(deadline) {
			b.Fatalf("job not done after 25 minutes: %+v (sink has %d)", job, sink.Count()-before)
		}
		time.Sleep(time.Second)
	}
	if job.Failed == 0 {
		// Every message was accepted; wait for the watcher to see the last one.
		select {
		case <-watchDone:
		case <-time.After(time.Minute):
			b.Fatalf("the job counts %d sent but the sink holds %d messages", job.Sent, sink.Count()-before)
		}
	}
	polled := time.Since(start)
	var readDone time.Time
	var rowsDone, invalid int64
	if err := p.QueryRow(ctx, `SELECT updated_at, rows_done, invalid FROM delivery_jobs WHERE id = $1`, job.ID).Scan(&readDone, &rowsDone, &invalid); err != nil {
		b.Fatal(err)
	}
	s.stop(b)
	stopped = true
	end := time.Unix(0, lastAt.Load())
	if lastAt.Load() == 0 {
		end = start.Add(polled)
	}
	elapsed := end.Sub(start)
	readTime := readDone.Sub(start)

	// The proof, from the sink: one message per recipient, one seeded code per message, no code twice.
	msgs := sink.Messages()
	if len(msgs) != n || job.Failed != 0 || job.Sent != int64(n) || rowsDone != int64(n) || invalid != 0 {
		b.Fatalf("the sink holds %d messages; the job read %d rows (%d invalid), sent %d, failed %d; want %d sent, none failed",
			len(msgs), rowsDone, invalid, job.Sent, job.Failed, n)
	}
	codeOf := make(map[string]string, n) // recipient → code
	toOf := make(map[string]string, n)   // code → recipient
	ids := make(map[string]bool, n)
	for i, m := range msgs {
		if len(m.To) != 1 {
			b.Fatalf("message %d has %d recipients: %v", i, len(m.To), m.To)
		}
		to := m.To[0]
		found := emailCode.FindAllString(m.Text, -1)
		if len(found) != 1 || !seeded[found[0]] {
			b.Fatalf("message %d to %s holds codes %v (want exactly one of the list's): %q", i, to, found, m.Text)
		}
		code := found[0]
		if prev, ok := codeOf[to]; ok {
			b.Fatalf("%s got two messages (codes %s and %s)", to, prev, code)
		}
		if prev, ok := toOf[code]; ok {
			b.Fatalf("code %s went to %s and to %s", code, prev, to)
		}
		if ids[m.MessageID] {
			b.Fatalf("message id %s was sent twice", m.MessageID)
		}
		codeOf[to], toOf[code], ids[m.MessageID] = code, to, true
		if i == 0 {
			var idx int
			fmt.Sscanf(to, "r%d@", &idx)
			if _, first := benchRecipient(idx); m.Subject != "Your code" || !strings.HasPrefix(m.Text, "Hi "+first+", your code is ") {
				b.Fatalf("message to %s: subject %q, text %q", to, m.Subject, m.Text)
			}
		}
	}
	for i := 1; i <= n; i++ {
		if email, _ := benchRecipient(i); codeOf[email] == "" {
			b.Fatalf("%s got no message", email)
		}
	}
	// And from the deliveries table: the job's N deliveries are sent, each with the code its
	// recipient received.
	rows, err := p.Query(ctx, `SELECT recipient->>'email', coalesce(code, ''), status FROM deliveries WHERE job_id = $1`, job.ID)
	if err != nil {
		b.Fatal(err)
	}
	var stored, sent int
	for rows.Next() {
		var email, code, status string
		if err := rows.Scan(&email, &code, &status); err != nil {
			b.Fatal(err)
		}
		stored++
		if status == "sent" {
			sent++
		}
		if codeOf[email] != code {
			b.Fatalf("the delivery to %s holds %q but the message carried %q", email, code, codeOf[email])
		}
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	if stored != n || sent != n {
		b.Fatalf("the deliveries table holds %d rows for the job, %d sent; want %d each", stored, sent, n)
	}
	bytesPerMsg := len(msgs[0].Raw)
	msgs = nil
	sink.Reset()

	// The physical limit: messages of the same size sent straight to the sink, 8 goroutines each
	// with its own Mailer (one connection each), on the now quiet machine.
	m := min(n, 20_000)
	const senders = 8
	var next atomic.Int64
	var sendErr atomic.Value
	var wg sync.WaitGroup
	ceilingStart := time.Now()
	for g := 0; g < senders; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mailer := messaging.NewMailer(sink.Settings(benchFrom))
			defer mailer.Close()
			for {
				i := int(next.Add(1))
				if i > m || sendErr.Load() != nil {
					return
				}
				email, first := benchRecipient(i)
				err := mailer.Send(ctx, messaging.Email{To: email, Subject: "Your code", Text: "Hi " + first + ", your code is " + codes[i-1],
					MessageID: fmt.Sprintf("<ceiling-%d@bench>", i)})
				if err != nil {
					sendErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ceiling := time.Since(ceilingStart)
	if err := sendErr.Load(); err != nil {
		b.Fatalf("straight to the sink: %v", err)
	}
	sink.Reset()

	ours := float64(n) / elapsed.Seconds()
	limit := float64(m) / ceiling.Seconds()
	sendOnly := "—"
	if after := end.Sub(readSeen); after > 0 && n-sentAtRead >= n/100 {
		sendOnly = fmt.Sprintf("%.0f/s", float64(n-sentAtRead)/after.Seconds())
	}
	return bulkRun{ours: ours, limit: limit, note: fmt.Sprintf("%.1f s, %.0f messages/s beside %.0f straight to the sink (%.3f); 202 after %s; CSV read into deliveries after %.1f s (%.0f rows/s; about %d messages sent by then), sends alone after it %s; first message after %s; %d bytes a message; %d sent, 0 failed, each recipient one message with one code, no code twice, the table agrees",
		elapsed.Seconds(), ours, limit, ours/limit, ms(accepted), readTime.Seconds(), float64(n)/readTime.Seconds(), sentAtRead, sendOnly, ms(time.Duration(firstAt.Load()-start.UnixNano())), bytesPerMsg, job.Sent)}
}
