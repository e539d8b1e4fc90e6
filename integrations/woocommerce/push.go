package woocommerce

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
}

// Pusher creates a list's codes as coupons in a WooCommerce store, 100 per batch request, each
// tagged with the push (PushTagKey). Each code is recorded submitted before its batch and pushed
// (with the coupon's id) or failed after; a code the store has already is looked up and recorded
// pushed, never created twice: as the push's own coupon when it carries the push's tag (a batch
// whose answer was lost), else as the store's (never deleted). Codes removed from the list have
// their own coupons deleted from the store.
type Pusher struct {
	store PushStore
	log   *slog.Logger
	HTTP  *http.Client
}

// NewPusher returns the pusher.
func NewPusher(store PushStore, log *slog.Logger) *Pusher { return &Pusher{store: store, log: log} }

// RunPush pushes every code of the list that is not in the store yet and deletes the pushed
// codes that were removed. 429, 5xx and network errors are returned for the task to retry
// (Retry-After honoured); a store that refuses the keys, or whose address the guard refuses,
// stops the push and marks the connection.
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
	run := &pushRun{Pusher: p, ref: ref, push: push, list: list,
		api: Store{SiteURL: conn.Shop, ConsumerKey: creds.ConsumerKey, ConsumerSecret: creds.ConsumerSecret, HTTP: p.HTTP}}
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
	p.log.InfoContext(ctx, "woocommerce push done", "list_id", listID, "connection_id", connectionID, "created", run.created.Load(),
		"requests", run.requests.Load(), "duration_ms", time.Since(started).Milliseconds())
	return nil
}

type pushRun struct {
	*Pusher
	ref  core.PushRef
	push core.Push
	list core.List
	api  Store

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
	// already is looked up.
	for {
		codes, err := r.store.UnsentPushCodes(ctx, r.ref, BatchLimit)
		if err != nil {
			return err
		}
		if len(codes) == 0 {
			break
		}
		if err := r.create(ctx, codes); err != nil {
			return err
		}
	}
	for {
		// The keys are in hand for the whole run: look whether the push was stopped (the store
		// disconnected) before every batch.
		if p, err := r.store.GetPush(ctx, r.ref); err != nil {
			return err
		} else if p.State == core.PushStopped {
			return errPushStopped
		}
		// A few batches at once: the store answers them in parallel, and each is recorded on
		// its own (a batch that fails leaves its codes submitted for the rerun).
		var batches [][]core.PushCode
		for len(batches) < parallelBatches {
			codes, err := r.store.ClaimPushCodes(ctx, r.ref, BatchLimit)
			if err != nil {
				return err
			}
			if len(codes) == 0 {
				break
			}
			batches = append(batches, codes)
		}
		if len(batches) == 0 {
			break
		}
		errs := make([]error, len(batches))
		var wg sync.WaitGroup
		for i, codes := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = r.create(ctx, codes)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return firstError(errs)
		}
	}
	return r.deleteRemoved(ctx)
}

// parallelBatches is how many batch requests a push has in flight at once.
const parallelBatches = 4

// firstError returns the first non-nil error (an *APIError keeps its type for the caller's
// checks).
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// create sends one batch of codes and records each outcome.
func (r *pushRun) create(ctx context.Context, codes []core.PushCode) error {
	batch := CouponBatch{}
	for _, c := range codes {
		batch.Create = append(batch.Create, r.coupon(c.Code))
	}
	r.requests.Add(1)
	res, err := r.api.BatchCoupons(ctx, batch)
	if err != nil {
		return err
	}
	outcomes := make([]core.PushOutcome, 0, len(codes))
	for i, c := range codes {
		if i >= len(res.Create) {
			break // not answered: stays submitted and is sent again
		}
		item := res.Create[i]
		switch {
		case item.Err == nil && item.ID > 0:
			r.created.Add(1)
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: strconv.FormatInt(item.ID, 10)})
		case item.Err != nil && item.Err.Code == codeExists:
			// The store lowercases codes: one that differs only by case from another code of the
			// list is that code's coupon, not this one's.
			twin, clash, err := r.store.CaseTwin(ctx, r.ref.MerchantID, r.ref.ListID, c.Code)
			if err != nil {
				return err
			}
			if clash {
				outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Error: "differs only by case from " + twin + ", which the store has already"})
				continue
			}
			r.requests.Add(1)
			found, ok, err := r.api.CouponByCode(ctx, c.Code)
			if err != nil {
				return err
			}
			if tag, _ := found.Meta(PushTagKey); ok && tag == PushTag(r.ref.ListID, r.ref.ConnectionID) {
				// This push made it: a batch that created it lost its answer (a timeout). It is
				// ours, deleted when the code is removed from the list.
				outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: strconv.FormatInt(found.ID, 10)})
				continue
			}
			if ok {
				// The store's own coupon (made by hand, or by another push): the code is in the
				// store, but removing it from the list leaves that coupon alone.
				outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Pushed: true, RemoteID: adoptedPrefix + strconv.FormatInt(found.ID, 10)})
				continue
			}
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Error: item.Err.Message})
		case item.Err != nil:
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Error: strings.TrimSpace(item.Err.Code + ": " + item.Err.Message)})
		default:
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Error: "the store answered without a coupon id"})
		}
	}
	if len(outcomes) < len(codes) {
		var unanswered []int64
		for _, c := range codes[len(outcomes):] {
			unanswered = append(unanswered, c.Seq)
		}
		if err := r.store.SetPushBatch(ctx, r.ref, unanswered, ""); err != nil {
			return err
		}
	}
	return r.store.FinishPushCodes(ctx, r.ref, outcomes)
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
