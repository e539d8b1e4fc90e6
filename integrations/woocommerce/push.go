package woocommerce

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
)

// BatchLimit is the most items WooCommerce takes in one batch request.
const BatchLimit = 100

// codeExists is WooCommerce's per-item error for a coupon code the store has already.
const codeExists = "woocommerce_rest_coupon_code_already_exists"

// adoptedPrefix marks the remote id of a coupon the store had before the push: it counts as the
// code's coupon, but it is not Coupongate's to delete.
const adoptedPrefix = "existing:"

// PushTagKey is the custom field (meta_data key) every coupon a push creates carries, its value
// naming the push (PushTag). A coupon the store has already is the push's own, to delete with
// its code, only when it carries that push's tag: a batch whose answer was lost created it.
const PushTagKey = "_coupongate_push"

// PushTag is the value of PushTagKey on the coupons the push of list to connection creates.
func PushTag(listID, connectionID uuid.UUID) string {
	return "list:" + listID.String() + " connection:" + connectionID.String()
}

// errPushStopped ends a run whose push was stopped meanwhile (the store was disconnected).
var errPushStopped = errors.New("woocommerce: the push was stopped")

// PushStore is what pushing needs from the database.
type PushStore interface {
	core.PushStore
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	GetList(ctx context.Context, merchantID, listID uuid.UUID) (core.List, error)
	Credentials(ctx context.Context, merchantID, connectionID uuid.UUID) (core.Credentials, int64, error)
	// MarkConnectionErrorAt marks the connection error while its credentials are at version.
	MarkConnectionErrorAt(ctx context.Context, merchantID, connectionID uuid.UUID, version int64, reason string) error
	// CaseTwin returns another code of the list that equals code but for case.
	CaseTwin(ctx context.Context, merchantID, listID uuid.UUID, code string) (string, bool, error)
	// ClaimPushBatch is ClaimPushCodes telling also whether the list had fewer than limit codes
	// left past the cursor (atEnd) and whether the push was stopped (stopped; codes claimed then
	// are not to be sent).
	ClaimPushBatch(ctx context.Context, ref core.PushRef, limit int) (claimed []core.PushCode, atEnd, stopped bool, err error)
}

// Pusher creates a list's codes as coupons in a WooCommerce store, 100 per batch request, each
// tagged with the push (PushTagKey). Each code is recorded submitted before its batch and pushed
// (with the coupon's id) or failed after; a code the store has already is looked up and recorded
// pushed, never created twice: as the push's own coupon when it carries the push's tag (a batch
// whose answer was lost), else as the store's (never deleted). Codes removed from the list have
// their own coupons deleted from the store.
//
// Several batch requests are in flight at once, as many as the store's answers allow (a
// pushWindow: more while they come back fast and OK, fewer when they slow down, half and a pause
// of Retry-After on a 429), with codes claimed ahead and answers recorded many per statement
// while the requests go on (see pipe).
type Pusher struct {
	store PushStore
	log   *slog.Logger
	// HTTP is the client for the stores (nil: a client with a 30 s timeout). Each run uses it on
	// a copy of its transport that keeps a connection per request in flight (runClient).
	HTTP *http.Client
}

// NewPusher returns the pusher.
func NewPusher(store PushStore, log *slog.Logger) *Pusher { return &Pusher{store: store, log: log} }

// RunPush pushes every code of the list that is not in the store yet and deletes the pushed
// codes that were removed. A 429 pauses the push for its Retry-After and the request is sent
// again (up to maxThrottled times in a row); 5xx, network errors and 429s past that are returned
// for the task to retry (Retry-After honoured), and the next run sends again what may not have
// arrived. A store that refuses the keys, or whose address the guard refuses, stops the push and
// marks the connection.
func (p *Pusher) RunPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error {
	ref := core.PushRef{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID}
	push, err := p.store.GetPush(ctx, ref)
	if errors.Is(err, core.ErrListNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if push.State == core.PushStopped || push.State == core.PushError {
		return nil
	}
	conn, err := p.store.GetConnection(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	if conn.State != core.ConnectionActive {
		return p.store.SetPushState(ctx, ref, core.PushStopped, "the connection is "+conn.State)
	}
	list, err := p.store.GetList(ctx, merchantID, listID)
	if errors.Is(err, core.ErrListNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	creds, version, err := p.store.Credentials(ctx, merchantID, connectionID)
	if err != nil {
		return err
	}
	release, locked, err := p.store.LockPush(ctx, ref)
	if err != nil || !locked {
		return err
	}
	defer release()
	if err := p.store.SetPushState(ctx, ref, core.PushPushing, ""); err != nil {
		return err
	}
	httpClient, closeIdle := p.runClient()
	defer closeIdle()
	run := &pushRun{Pusher: p, ref: ref, push: push, list: list, window: newPushWindow(nil),
		api: Store{SiteURL: conn.Shop, ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, HTTP: httpClient}}
	started := time.Now()
	for {
		startedAt, err := p.store.BeginPushRun(ctx, ref)
		if err != nil {
			return err
		}
		err = run.run(ctx)
		if errors.Is(err, errPushStopped) {
			return nil
		}
		var apiErr *APIError
		refusedAddress, addressRefused := AddressRefused(err)
		if addressRefused || errors.As(err, &apiErr) && (apiErr.Status == http.StatusUnauthorized || apiErr.Status == http.StatusForbidden) {
			reason := refusedAddress
			if !addressRefused {
				reason = "the store refused the consumer key (" + apiErr.Code + "); connect the store again"
			}
			if err := p.store.MarkConnectionErrorAt(ctx, merchantID, connectionID, version, reason); err != nil {
				return err
			}
			return p.store.SetPushState(ctx, ref, core.PushStopped, reason)
		}
		if err != nil {
			return err
		}
		changed, err := p.store.FinishPushRun(ctx, ref, startedAt)
		if err != nil {
			return err
		}
		if !changed {
			break
		}
	}
	window, peak, throttled := run.window.stats()
	p.log.InfoContext(ctx, "woocommerce push done", "list_id", listID, "connection_id", connectionID, "created", run.created.Load(),
		"requests", run.requests.Load(), "duration_ms", time.Since(started).Milliseconds(),
		"window", window, "window_peak", peak, "throttled", throttled)
	return nil
}

// runClient is the HTTP client of one run: p.HTTP, on a copy of its transport that keeps an idle
// connection for every request the window may have in flight (a shared transport keeps a few per
// host, and each request past them would open and close a connection of its own: a TLS handshake
// per batch). closeIdle closes those connections when the run ends.
func (p *Pusher) runClient() (c *http.Client, closeIdle func()) {
	base := p.HTTP
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second} // what Store uses without one
	}
	tr, ok := base.Transport.(*http.Transport)
	if base.Transport == nil {
		tr, ok = http.DefaultTransport.(*http.Transport), true
	}
	if !ok || tr.MaxIdleConnsPerHost >= MaxPushWindow {
		return base, func() {}
	}
	own := tr.Clone()
	own.MaxIdleConnsPerHost = MaxPushWindow
	copied := *base
	copied.Transport = own
	return &copied, own.CloseIdleConnections
}

type pushRun struct {
	*Pusher
	ref    core.PushRef
	push   core.Push
	list   core.List
	api    Store
	window *pushWindow // kept across the run's rounds: what it learned of the store holds

	created, requests atomic.Int64
}

// coupon is the WooCommerce coupon a code becomes.
func (r *pushRun) coupon(code string) CouponInput {
	d := r.push.Discount
	in := CouponInput{Code: code, DiscountType: "fixed_cart", Amount: strconv.FormatFloat(d.Value, 'f', -1, 64),
		IndividualUse: true, DateExpires: r.list.ExpiresAt}
	if d.ValueType == core.ValuePercentage {
		in.DiscountType = "percent"
	}
	switch {
	case r.list.Kind == core.KindFixed && r.list.MaxAssignments > 0:
		in.UsageLimit = int(r.list.MaxAssignments)
	case r.list.Kind != core.KindFixed:
		in.UsageLimit = r.list.UsesPerCode
	}
	if d.AppliesOncePerCustomer {
		in.UsageLimitPerUser = 1
	}
	in.MetaData = []Meta{{Key: PushTagKey, Value: PushTag(r.ref.ListID, r.ref.ConnectionID)}}
	return in
}

func (r *pushRun) run(ctx context.Context) error {
	// Codes a previous run recorded but may not have sent: sent again, and a code the store has
	// already is looked up. They are at most what a run claims ahead and has in flight.
	for {
		codes, err := r.store.UnsentPushCodes(ctx, r.ref, unsentPage)
		if err != nil {
			return err
		}
		if len(codes) == 0 {
			break
		}
		queue := splitBatches(codes)
		err = r.pipe(ctx, func(_ context.Context, n int) ([][]core.PushCode, bool, error) {
			k := min(n, len(queue))
			next := queue[:k]
			queue = queue[k:]
			return next, len(queue) == 0, nil
		})
		if err != nil {
			return err
		}
		if len(codes) < unsentPage {
			break
		}
	}
	// The list's codes past the cursor, claimed a few batches ahead of the requests.
	err := r.pipe(ctx, func(ctx context.Context, n int) ([][]core.PushCode, bool, error) {
		codes, atEnd, stopped, err := r.store.ClaimPushBatch(ctx, r.ref, n*BatchLimit)
		if err == nil && stopped {
			return nil, true, errPushStopped
		}
		return splitBatches(codes), atEnd, err
	})
	if err != nil {
		return err
	}
	return r.deleteRemoved(ctx)
}

// aheadBatches is how many batches, recorded submitted, wait for a slot in the window: enough to
// keep the store busy while the database claims the next (a claim of this many takes a few tens
// of milliseconds on a busy machine, the store answers a batch in a few).
const aheadBatches = 4 * MaxPushWindow

// unsentPage is how many codes left submitted by an earlier run are read at a time.
const unsentPage = (aheadBatches + MaxPushWindow) * BatchLimit

// splitBatches cuts codes into batch requests.
func splitBatches(codes []core.PushCode) [][]core.PushCode {
	var out [][]core.PushCode
	for len(codes) > 0 {
		n := min(BatchLimit, len(codes))
		out = append(out, codes[:n:n])
		codes = codes[n:]
	}
	return out
}

// sourceFunc hands out up to n batches to send, recorded submitted; done says that no more will
// come. errPushStopped says that the push was stopped (its store disconnected).
type sourceFunc func(ctx context.Context, n int) (batches [][]core.PushCode, done bool, err error)

// batchOutcome is what became of one batch request: its codes' outcomes, or the error that
// ended it (outcomes recorded before it stand).
type batchOutcome struct {
	outcomes []core.PushOutcome
	err      error
}

// claimed is what the claimer tells the recorder: batches handed to the queue, or how the
// claiming ended.
type claimed struct {
	batches int
	err     error
}

// pipe pushes the batches source hands out. Three parts work at once, so that neither the store
// nor the database waits for the other:
//
//   - the claimer takes batches from source (the database records them submitted) and queues
//     them, aheadBatches deep;
//   - the dispatcher sends the queued batches, as many in flight as the window allows;
//   - the recorder (this goroutine) records the answers: every answer that came while it recorded
//     the last ones goes into the next statement, so the bookkeeping of many requests is one
//     statement, on a connection of its own beside the claimer's.
//
// After an error or a stop, queued batches are not sent (they stay submitted and the next run
// sends them) and the requests in flight are waited for and recorded; the first error
// (errPushStopped for a stop) is returned then.
func (r *pushRun) pipe(ctx context.Context, source sourceFunc) error {
	ready := make(chan []core.PushCode, aheadBatches)
	// Every batch queued comes back on answers exactly once, and the claimer reports each on
	// claims: both are sized for all that can be outstanding, so no sender waits for the recorder.
	answers := make(chan batchOutcome, aheadBatches+2*MaxPushWindow+2)
	claims := make(chan claimed, aheadBatches+2)
	var halted atomic.Bool

	go func() { // the claimer
		defer close(ready)
		defer close(claims)
		for !halted.Load() {
			batches, done, err := source(ctx, max(1, cap(ready)-len(ready)))
			for _, b := range batches {
				claims <- claimed{batches: 1}
				ready <- b
			}
			if err != nil {
				claims <- claimed{err: err}
				return
			}
			if done {
				return
			}
		}
	}()
	dispatched := make(chan struct{})
	go func() { // the dispatcher
		defer close(dispatched)
		for codes := range ready {
			if halted.Load() {
				answers <- batchOutcome{}
				continue
			}
			if err := r.window.acquire(ctx); err != nil {
				answers <- batchOutcome{err: err}
				continue
			}
			go func() { answers <- r.send(ctx, codes) }()
		}
	}()
	defer func() { <-dispatched }()

	outstanding := 0 // batches queued and not answered yet
	claiming := true
	var pending []core.PushOutcome
	var firstErr error
	halt := func(err error) {
		if errors.Is(err, core.ErrListNotFound) {
			err = errPushStopped // the push (or its list) was deleted meanwhile
		}
		if firstErr == nil {
			firstErr = err
		}
		halted.Store(true)
	}
	note := func(c claimed, ok bool) {
		switch {
		case !ok:
			claiming = false
		case c.err != nil:
			halt(c.err)
		default:
			outstanding += c.batches
		}
	}
	take := func(a batchOutcome) {
		outstanding--
		pending = append(pending, a.outcomes...)
		if a.err != nil {
			halt(a.err)
		}
	}
	for {
		// Take everything there is; wait when there is nothing to record.
		for drained := false; !drained; {
			select {
			case a := <-answers:
				take(a)
			default:
				select {
				case c, ok := <-claims:
					if claiming {
						note(c, ok)
						continue
					}
				default:
				}
				drained = true
			}
		}
		if len(pending) == 0 {
			if !claiming && outstanding == 0 {
				return firstErr
			}
			var claimsOpen chan claimed
			if claiming {
				claimsOpen = claims
			}
			select {
			case a := <-answers:
				take(a)
			case c, ok := <-claimsOpen:
				note(c, ok)
			}
			continue
		}
		if err := r.store.FinishPushCodes(ctx, r.ref, pending); err != nil {
			// The outcomes could not be recorded: their codes stay submitted for the next run.
			halt(err)
		}
		pending = pending[:0]
	}
}

// send sends one batch request and returns each code's outcome. A 429 pauses the whole push for
// its Retry-After and the request is sent again, up to maxThrottled times in a row; past that,
// and on any other error, the error is returned (the task retries later).
func (r *pushRun) send(ctx context.Context, codes []core.PushCode) batchOutcome {
	batch := CouponBatch{Create: make([]CouponInput, 0, len(codes))}
	for _, c := range codes {
		batch.Create = append(batch.Create, r.coupon(c.Code))
	}
	var res CouponBatchResult
	for throttled := 0; ; throttled++ {
		r.requests.Add(1)
		sent := time.Now()
		var err error
		res, err = r.api.BatchCoupons(ctx, batch)
		var apiErr *APIError
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusTooManyRequests && throttled < maxThrottled {
			r.window.throttled(apiErr.RetryAfter())
			r.window.release()
			if err := r.window.acquire(ctx); err != nil {
				return batchOutcome{err: err}
			}
			continue
		}
		if err == nil {
			r.window.answered(time.Since(sent))
		}
		r.window.release()
		if err != nil {
			return batchOutcome{err: err}
		}
		break
	}
	if len(res.Create) != len(codes) {
		return batchOutcome{err: fmt.Errorf("woocommerce: the store answered %d of %d coupons", len(res.Create), len(codes))}
	}
	outcomes := make([]core.PushOutcome, 0, len(codes))
	for i, c := range codes {
		o, err := r.outcome(ctx, c, res.Create[i])
		if err != nil {
			// The outcomes so far are recorded; this code and the rest stay submitted.
			return batchOutcome{outcomes: outcomes, err: err}
		}
		outcomes = append(outcomes, o)
	}
	return batchOutcome{outcomes: outcomes}
}

// maxThrottled is how many 429s in a row one batch request rides out before its push gives up
// and the task retries (after the last answer's Retry-After).
const maxThrottled = 8

// outcome is what the store's answer for one coupon means for its code. A code the store has
// already is looked up, never created twice.
func (r *pushRun) outcome(ctx context.Context, c core.PushCode, item CouponResult) (core.PushOutcome, error) {
	switch {
	case item.Err == nil && item.ID > 0:
		r.created.Add(1)
		return core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: strconv.FormatInt(item.ID, 10)}, nil
	case item.Err != nil && item.Err.Code == codeExists:
		// The store lowercases codes: one that differs only by case from another code of the
		// list is that code's coupon, not this one's.
		twin, clash, err := r.store.CaseTwin(ctx, r.ref.MerchantID, r.ref.ListID, c.Code)
		if err != nil {
			return core.PushOutcome{}, err
		}
		if clash {
			return core.PushOutcome{Seq: c.Seq, Error: "differs only by case from " + twin + ", which the store has already"}, nil
		}
		r.requests.Add(1)
		found, ok, err := r.api.CouponByCode(ctx, c.Code)
		if err != nil {
			return core.PushOutcome{}, err
		}
		if tag, _ := found.Meta(PushTagKey); ok && tag == PushTag(r.ref.ListID, r.ref.ConnectionID) {
			// This push made it: a batch that created it lost its answer (a timeout). It is
			// ours, deleted when the code is removed from the list.
			return core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: strconv.FormatInt(found.ID, 10)}, nil
		}
		if ok {
			// The store's own coupon (made by hand, or by another push): the code is in the
			// store, but removing it from the list leaves that coupon alone.
			return core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: adoptedPrefix + strconv.FormatInt(found.ID, 10)}, nil
		}
		return core.PushOutcome{Seq: c.Seq, Error: item.Err.Message}, nil
	case item.Err != nil:
		return core.PushOutcome{Seq: c.Seq, Error: strings.TrimSpace(item.Err.Code + ": " + item.Err.Message)}, nil
	default:
		return core.PushOutcome{Seq: c.Seq, Error: "the store answered without a coupon id"}, nil
	}
}

// deleteRemoved deletes from the store the coupons of codes removed from the list.
func (r *pushRun) deleteRemoved(ctx context.Context) error {
	for {
		codes, err := r.store.RemovedPushedCodes(ctx, r.ref, BatchLimit)
		if err != nil || len(codes) == 0 {
			return err
		}
		batch := CouponBatch{}
		var seqs []int64
		for _, c := range codes {
			id, err := strconv.ParseInt(c.RemoteID, 10, 64)
			if err != nil || id <= 0 {
				seqs = append(seqs, c.Seq) // not ours to delete (adopted), or nothing there
				continue
			}
			batch.Delete = append(batch.Delete, id)
			seqs = append(seqs, c.Seq)
		}
		if len(batch.Delete) > 0 {
			r.requests.Add(1)
			if _, err := r.api.BatchCoupons(ctx, batch); err != nil {
				return err
			}
		}
		if err := r.store.MarkPushCodesDeleted(ctx, r.ref, seqs); err != nil {
			return err
		}
	}
}
