package shopify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/Khan/genqlient/graphql"
	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/integrations/shopify/admin"
)

// Costs the pusher plans with: a mutation costs 10 points, the status query 1, the detailed
// bulk creation query about one point per code.
const (
	mutationCost = 10
	statusCost   = 1
	lookupCost   = 1
)

// maxOpenBulks is how many bulk creations a push keeps in flight before it waits for the oldest.
const maxOpenBulks = 10

// MaxCodesPerBulkAdd is how many codes discountRedeemCodeBulkAdd takes per call in an Admin API
// version: 100 up to 2025-07, 250 from 2025-10.
func MaxCodesPerBulkAdd(apiVersion string) int {
	if apiVersion >= "2025-10" && apiVersion != "unstable" {
		return 250
	}
	return 100
}

// PushStore is what pushing needs from the database.
type PushStore interface {
	core.PushStore
	GetConnection(ctx context.Context, merchantID, id uuid.UUID) (core.Connection, error)
	GetList(ctx context.Context, merchantID, listID uuid.UUID) (core.List, error)
	// MarkConnectionError moves an active connection to state error with the reason.
	MarkConnectionError(ctx context.Context, merchantID, connectionID uuid.UUID, reason string) error
	CredentialStore
}

// Pusher pushes a list's codes into a Shopify shop: one code discount (discountCodeBasicCreate)
// whose redeem codes are added in bulk (discountRedeemCodeBulkAdd), each bulk creation followed
// until done. Every step is recorded in PostgreSQL around the call, so a rerun resumes and never
// adds a code twice: codes submitted but not confirmed are checked with Shopify, and a code
// Shopify reports taken by this very discount counts as pushed.
type Pusher struct {
	app    App
	store  PushStore
	tokens *Tokens
	log    *slog.Logger
	// BatchSize is how many codes go in one bulk add (MaxCodesPerBulkAdd of the version when 0).
	BatchSize int
	// PollEvery is how long to wait between polls of a bulk creation that is not done.
	PollEvery time.Duration
	now       func() time.Time
}

// NewPusher returns the pusher.
func NewPusher(app App, store PushStore, log *slog.Logger) *Pusher {
	return &Pusher{app: app, store: store, tokens: NewTokens(app, store), log: log,
		PollEvery: 100 * time.Millisecond, now: time.Now}
}

// errPushRefused ends a push in state error: Shopify refused the discount itself.
type errPushRefused struct{ reason string }

func (e errPushRefused) Error() string { return e.reason }

// RunPush pushes every code of the list that is not in the shop yet, then deletes from the shop
// the pushed codes that were removed from the list. A platform error that retrying can heal
// (429, 5xx, THROTTLED past patience, network) is returned for the task to retry; Shopify
// refusing the discount ends the push in state error.
func (p *Pusher) RunPush(ctx context.Context, merchantID, listID, connectionID uuid.UUID) error {
	ref := core.PushRef{MerchantID: merchantID, ListID: listID, ConnectionID: connectionID}
	push, err := p.store.GetPush(ctx, ref)
	if errors.Is(err, core.ErrListNotFound) {
		return nil // the list was deleted
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
	release, locked, err := p.store.LockPush(ctx, ref)
	if err != nil {
		return err
	}
	if !locked {
		// Another run is going; it takes every change recorded before it finishes.
		p.log.InfoContext(ctx, "push already running elsewhere", "list_id", listID, "connection_id", connectionID)
		return nil
	}
	defer release()
	if err := p.store.SetPushState(ctx, ref, core.PushPushing, ""); err != nil {
		return err
	}
	run := &pushRun{Pusher: p, ref: ref, push: push, list: list,
		caller: newShopCaller(p.app, p.tokens, merchantID, connectionID, conn.Shop)}
	started := p.now()
	err = run.rounds(ctx)
	var refused errPushRefused
	switch {
	case errors.As(err, &refused):
		p.log.WarnContext(ctx, "shopify refused the push", "list_id", listID, "connection_id", connectionID, "reason", refused.reason)
		return p.store.SetPushState(ctx, ref, core.PushError, refused.reason)
	case errors.Is(err, ErrNoCredentials), errors.Is(err, ErrGrantRefused):
		// The shop revoked the app's access: nothing works until the app is installed again.
		reason := "Shopify refused the app's access token; install the app again"
		if err := p.store.MarkConnectionError(ctx, merchantID, connectionID, reason); err != nil {
			return err
		}
		return p.store.SetPushState(ctx, ref, core.PushStopped, reason)
	case err != nil:
		return err
	}
	p.log.InfoContext(ctx, "push done", "list_id", listID, "connection_id", connectionID, "submitted", run.submitted,
		"polls", run.polls, "rounds", run.roundsRun, "throttle_wait_ms", run.caller.Waited.Milliseconds(),
		"duration_ms", p.now().Sub(started).Milliseconds())
	return nil
}

// rounds runs until a round ends with no change to the list recorded since it began: codes
// added or removed while a round ran (whose enqueued task was dropped as a duplicate of this
// one) are taken by the next round.
func (r *pushRun) rounds(ctx context.Context) error {
	for {
		r.roundsRun++
		startedAt, err := r.store.BeginPushRun(ctx, r.ref)
		if err != nil {
			return err
		}
		if err := r.run(ctx); err != nil {
			return err
		}
		changed, err := r.store.FinishPushRun(ctx, r.ref, startedAt)
		if err != nil || !changed {
			return err
		}
	}
}

// pushRun is one run of a push.
type pushRun struct {
	*Pusher
	ref    core.PushRef
	push   core.Push
	list   core.List
	caller *shopCaller

	submitted, polls, roundsRun, passes int
}

type openBulk struct {
	id   string
	seqs []int64
}

func (r *pushRun) batchSize() int {
	if r.BatchSize > 0 {
		return r.BatchSize
	}
	return MaxCodesPerBulkAdd(r.app.APIVersion)
}

func (r *pushRun) run(ctx context.Context) error {
	if r.push.RemoteID == "" {
		done, err := r.createDiscount(ctx)
		if err != nil || done {
			return err
		}
	}
	// Batches a previous run submitted and did not see finish.
	var open []openBulk
	ids, err := r.store.OpenPushBatches(ctx, r.ref)
	if err != nil {
		return err
	}
	for _, id := range ids {
		open = append(open, openBulk{id: id})
	}
	// Codes a previous run recorded but may not have sent (or that a bulk answer did not
	// mention).
	for {
		codes, err := r.store.UnsentPushCodes(ctx, r.ref, r.batchSize())
		if err != nil {
			return err
		}
		if len(codes) == 0 {
			break
		}
		b, err := r.submit(ctx, codes)
		if err != nil {
			return err
		}
		open = append(open, b)
	}
	more := true
	for more || len(open) > 0 {
		if more && len(open) < maxOpenBulks {
			codes, err := r.store.ClaimPushCodes(ctx, r.ref, r.batchSize())
			if err != nil {
				return err
			}
			if len(codes) == 0 {
				more = false
				continue
			}
			b, err := r.submit(ctx, codes)
			if err != nil {
				return err
			}
			open = append(open, b)
			continue
		}
		done, err := r.poll(ctx, open[0].id)
		if err != nil {
			return err
		}
		if done {
			open = open[1:]
			continue
		}
		if err := sleepCtx(ctx, r.PollEvery); err != nil {
			return err
		}
	}
	if err := r.deleteRemoved(ctx); err != nil {
		return err
	}
	if unsent, err := r.store.UnsentPushCodes(ctx, r.ref, 1); err != nil || len(unsent) == 0 {
		return err
	}
	if r.passes++; r.passes > 3 {
		r.log.WarnContext(ctx, "codes Shopify's answers never mentioned are left for the next run", "list_id", r.ref.ListID)
		return nil
	}
	return r.run(ctx)
}

// createDiscount makes the discount with the first code not in the shop; done is true when the
// list has no code yet (the push waits for codes). A creation that a crashed run started is
// adopted, not repeated.
func (r *pushRun) createDiscount(ctx context.Context) (done bool, err error) {
	if code, startedAt, found, err := r.store.CreatingPushCode(ctx, r.ref); err != nil {
		return false, err
	} else if found {
		owner, err := r.ownerOf(ctx, code.Code)
		if err != nil {
			return false, err
		}
		// Adopt only the discount this push made: its title, created since the attempt began
		// (a minute's slack for clocks). Anything else holding the code is the merchant's own.
		if owner.id != "" && owner.title == r.push.Discount.Title && !owner.createdAt.Before(startedAt.Add(-time.Minute)) {
			r.push.RemoteID = owner.id
			return false, r.store.SetPushRemote(ctx, r.ref, owner.id, core.PushOutcome{Seq: code.Seq, Pushed: true})
		}
	}
	for attempt := 0; attempt < 10; attempt++ {
		code, found, err := r.store.FirstPushCode(ctx, r.ref)
		if err != nil || !found {
			return !found, err
		}
		id, userErrs, err := r.createWith(ctx, code.Code)
		if err != nil {
			return false, err
		}
		if id != "" {
			r.push.RemoteID = id
			return false, r.store.SetPushRemote(ctx, r.ref, id, core.PushOutcome{Seq: code.Seq, Pushed: true})
		}
		codeTaken := false
		var msgs []string
		for _, e := range userErrs {
			msgs = append(msgs, e.Message)
			if e.Code == admin.DiscountErrorCodeTaken && len(e.Field) > 0 && e.Field[len(e.Field)-1] == "code" {
				codeTaken = true
			}
		}
		if !codeTaken {
			return false, errPushRefused{reason: "Shopify refused the discount: " + strings.Join(msgs, "; ")}
		}
		// The shop has this code in another discount: record it failed and try the next one.
		claimed, err := r.store.ClaimPushCodes(ctx, r.ref, 1)
		if err != nil {
			return false, err
		}
		var outcomes []core.PushOutcome
		for _, c := range claimed {
			outcomes = append(outcomes, core.PushOutcome{Seq: c.Seq, Error: strings.Join(msgs, "; ")})
		}
		if err := r.store.FinishPushCodes(ctx, r.ref, outcomes); err != nil {
			return false, err
		}
	}
	return false, errPushRefused{reason: "Shopify refused the first ten codes as taken by other discounts"}
}

type userError struct {
	Code    admin.DiscountErrorCode
	Field   []string
	Message string
}

func (r *pushRun) createWith(ctx context.Context, code string) (string, []userError, error) {
	d := r.push.Discount
	value := &admin.DiscountCustomerGetsValueInput{}
	if d.ValueType == core.ValuePercentage {
		pct := d.Value / 100
		value.Percentage = &pct
	} else {
		value.DiscountAmount = &admin.DiscountAmountInput{Amount: strconv.FormatFloat(d.Value, 'f', -1, 64)}
	}
	startsAt := r.list.CreatedAt
	if r.list.StartsAt != nil {
		startsAt = *r.list.StartsAt
	}
	var usageLimit *int
	switch {
	case r.list.Kind == core.KindFixed && r.list.MaxAssignments > 0:
		n := int(r.list.MaxAssignments)
		usageLimit = &n
	case r.list.Kind != core.KindFixed:
		n := r.list.UsesPerCode
		usageLimit = &n
	}
	var resp *admin.DiscountCodeBasicCreateResponse
	err := r.caller.call(ctx, mutationCost, func(c graphql.Client) error {
		var err error
		resp, err = admin.DiscountCodeBasicCreate(ctx, c, d.Title, code, startsAt, r.list.ExpiresAt, usageLimit, d.AppliesOncePerCustomer, value)
		return err
	})
	if err != nil {
		return "", nil, err
	}
	payload := resp.GetDiscountCodeBasicCreate()
	if payload == nil {
		return "", nil, fmt.Errorf("discountCodeBasicCreate: empty answer")
	}
	if payload.CodeDiscountNode != nil && payload.CodeDiscountNode.Id != "" {
		return payload.CodeDiscountNode.Id, nil, nil
	}
	var errs []userError
	for _, e := range payload.UserErrors {
		if e != nil {
			errs = append(errs, userError{Code: e.Code, Field: e.Field, Message: e.Message})
		}
	}
	if len(errs) == 0 {
		return "", nil, fmt.Errorf("discountCodeBasicCreate: no discount and no error")
	}
	return "", errs, nil
}

// discountOwner is the code discount that holds a code in the shop.
type discountOwner struct {
	id        string
	title     string
	createdAt time.Time
}

// ownerOf returns the code discount that holds code in the shop (id "" when none).
func (r *pushRun) ownerOf(ctx context.Context, code string) (discountOwner, error) {
	var resp *admin.CodeDiscountNodeByCodeResponse
	err := r.caller.call(ctx, lookupCost, func(c graphql.Client) error {
		var err error
		resp, err = admin.CodeDiscountNodeByCode(ctx, c, code)
		return err
	})
	if err != nil || resp.CodeDiscountNodeByCode == nil {
		return discountOwner{}, err
	}
	o := discountOwner{id: resp.CodeDiscountNodeByCode.Id}
	if basic, ok := resp.CodeDiscountNodeByCode.CodeDiscount.(*admin.CodeDiscountNodeByCodeCodeDiscountNodeByCodeDiscountCodeNodeCodeDiscountDiscountCodeBasic); ok {
		o.title, o.createdAt = basic.Title, basic.CreatedAt
	}
	return o, nil
}

// submit sends codes recorded submitted in one bulk add and records the bulk creation's id.
func (r *pushRun) submit(ctx context.Context, codes []core.PushCode) (openBulk, error) {
	input := make([]*admin.DiscountRedeemCodeInput, len(codes))
	seqs := make([]int64, len(codes))
	for i, c := range codes {
		input[i] = &admin.DiscountRedeemCodeInput{Code: c.Code}
		seqs[i] = c.Seq
	}
	var resp *admin.DiscountRedeemCodeBulkAddResponse
	err := r.caller.call(ctx, mutationCost, func(c graphql.Client) error {
		var err error
		resp, err = admin.DiscountRedeemCodeBulkAdd(ctx, c, r.push.RemoteID, input)
		return err
	})
	if err != nil {
		return openBulk{}, err
	}
	payload := resp.GetDiscountRedeemCodeBulkAdd()
	if payload == nil {
		return openBulk{}, fmt.Errorf("discountRedeemCodeBulkAdd: empty answer")
	}
	if payload.BulkCreation == nil || payload.BulkCreation.Id == "" {
		var msgs []string
		for _, e := range payload.UserErrors {
			if e != nil {
				msgs = append(msgs, e.Message)
			}
		}
		return openBulk{}, errPushRefused{reason: "Shopify refused the codes: " + strings.Join(msgs, "; ")}
	}
	r.submitted += len(codes)
	return openBulk{id: payload.BulkCreation.Id, seqs: seqs}, r.store.SetPushBatch(ctx, r.ref, seqs, payload.BulkCreation.Id)
}

// poll asks whether a bulk creation is done and, when it is, records its codes: all pushed when
// none failed, else code by code from the detailed answer.
func (r *pushRun) poll(ctx context.Context, bulkID string) (bool, error) {
	r.polls++
	var status *admin.DiscountRedeemCodeBulkCreationStatusResponse
	err := r.caller.call(ctx, statusCost, func(c graphql.Client) error {
		var err error
		status, err = admin.DiscountRedeemCodeBulkCreationStatus(ctx, c, bulkID)
		return err
	})
	if err != nil {
		return false, err
	}
	b := status.DiscountRedeemCodeBulkCreation
	codes, err := r.store.PushBatchCodes(ctx, r.ref, bulkID)
	if err != nil {
		return false, err
	}
	if b == nil {
		// Shopify does not know the bulk creation (it expired): submit its codes again; any that
		// did land are recognised as this discount's.
		return true, r.resubmit(ctx, codes)
	}
	if !b.Done {
		return false, nil
	}
	if b.FailedCount == 0 {
		outcomes := make([]core.PushOutcome, len(codes))
		for i, c := range codes {
			outcomes[i] = core.PushOutcome{Seq: c.Seq, Pushed: true}
		}
		return true, r.store.FinishPushCodes(ctx, r.ref, outcomes)
	}
	return true, r.settleFailures(ctx, bulkID, codes)
}

// resubmit records codes as unsent again and submits them in a new bulk add.
func (r *pushRun) resubmit(ctx context.Context, codes []core.PushCode) error {
	if len(codes) == 0 {
		return nil
	}
	b, err := r.submit(ctx, codes)
	if err != nil {
		return err
	}
	for {
		done, err := r.poll(ctx, b.id)
		if err != nil || done {
			return err
		}
		if err := sleepCtx(ctx, r.PollEvery); err != nil {
			return err
		}
	}
}

// settleFailures reads a bulk creation code by code. A code Shopify calls taken is pushed when
// this discount holds it (an earlier submission of ours), failed otherwise.
func (r *pushRun) settleFailures(ctx context.Context, bulkID string, codes []core.PushCode) error {
	bySeq := make(map[string][]int64, len(codes))
	for _, c := range codes {
		key := strings.ToUpper(c.Code)
		bySeq[key] = append(bySeq[key], c.Seq)
	}
	var outcomes []core.PushOutcome
	var after *string
	for {
		first := r.detailPage()
		var detail *admin.DiscountRedeemCodeBulkCreationResponse
		err := r.caller.call(ctx, float64(3+2*first), func(c graphql.Client) error {
			var err error
			detail, err = admin.DiscountRedeemCodeBulkCreation(ctx, c, bulkID, first, after)
			return err
		})
		if err != nil {
			return err
		}
		d := detail.DiscountRedeemCodeBulkCreation
		if d == nil || d.Codes == nil {
			break
		}
		for _, n := range d.Codes.Nodes {
			if n == nil {
				continue
			}
			key := strings.ToUpper(n.Code)
			seqs := bySeq[key]
			if len(seqs) == 0 {
				continue
			}
			seq := seqs[0]
			bySeq[key] = seqs[1:]
			o, err := r.outcome(ctx, seq, n)
			if err != nil {
				return err
			}
			outcomes = append(outcomes, o)
		}
		if d.Codes.PageInfo == nil || !d.Codes.PageInfo.HasNextPage || d.Codes.PageInfo.EndCursor == "" {
			break
		}
		cursor := d.Codes.PageInfo.EndCursor
		after = &cursor
	}
	// Codes the answer did not mention stay submitted; without a batch they are sent again.
	if err := r.store.FinishPushCodes(ctx, r.ref, outcomes); err != nil {
		return err
	}
	var rest []int64
	for _, seqs := range bySeq {
		rest = append(rest, seqs...)
	}
	if len(rest) > 0 {
		return r.store.SetPushBatch(ctx, r.ref, rest, "")
	}
	return nil
}

// detailPage is how many codes one detailed bulk creation query asks for: 100, or fewer when
// the shop's bucket could never hold that query's cost (about two points a code).
func (r *pushRun) detailPage() int {
	if r.caller.known && r.caller.status.MaximumAvailable > 0 {
		return max(1, min(100, int((r.caller.status.MaximumAvailable-3)/2)))
	}
	return 100
}

// outcome reads one code of a bulk creation. A code Shopify calls taken is pushed when this
// discount holds it (an earlier submission of ours), failed otherwise.
func (r *pushRun) outcome(ctx context.Context, seq int64, n *admin.DiscountRedeemCodeBulkCreationDiscountRedeemCodeBulkCreationCodesDiscountRedeemCodeBulkCreationCodeConnectionNodesDiscountRedeemCodeBulkCreationCode) (core.PushOutcome, error) {
	if n.DiscountRedeemCode != nil {
		return core.PushOutcome{Seq: seq, Pushed: true, RemoteID: n.DiscountRedeemCode.Id}, nil
	}
	var msgs []string
	taken := false
	for _, e := range n.Errors {
		if e != nil {
			msgs = append(msgs, e.Message)
			taken = taken || e.Code == admin.DiscountErrorCodeTaken
		}
	}
	if taken {
		owner, err := r.ownerOf(ctx, n.Code)
		if err != nil {
			return core.PushOutcome{}, err
		}
		if owner.id == r.push.RemoteID {
			return core.PushOutcome{Seq: seq, Pushed: true}, nil
		}
	}
	return core.PushOutcome{Seq: seq, Error: strings.Join(msgs, "; ")}, nil
}

// deleteRemoved deletes from the shop the pushed codes that were removed from the list.
func (r *pushRun) deleteRemoved(ctx context.Context) error {
	for {
		codes, err := r.store.RemovedPushedCodes(ctx, r.ref, 50)
		if err != nil || len(codes) == 0 {
			return err
		}
		terms := make([]string, len(codes))
		seqs := make([]int64, len(codes))
		for i, c := range codes {
			terms[i] = "code:" + strconv.Quote(c.Code)
			seqs[i] = c.Seq
		}
		search := strings.Join(terms, " OR ")
		var resp *admin.DiscountCodeRedeemCodeBulkDeleteResponse
		err = r.caller.call(ctx, mutationCost, func(c graphql.Client) error {
			var err error
			resp, err = admin.DiscountCodeRedeemCodeBulkDelete(ctx, c, r.push.RemoteID, nil, &search)
			return err
		})
		if err != nil {
			return err
		}
		p := resp.GetDiscountCodeRedeemCodeBulkDelete()
		if p == nil || p.Job == nil {
			var msgs []string
			if p != nil {
				for _, e := range p.UserErrors {
					if e != nil {
						msgs = append(msgs, e.Message)
					}
				}
			}
			return fmt.Errorf("discountCodeRedeemCodeBulkDelete: %s", strings.Join(msgs, "; "))
		}
		// The codes count as deleted once Shopify's job has run.
		for done := p.Job.Done; !done; {
			if err := sleepCtx(ctx, r.PollEvery); err != nil {
				return err
			}
			var job *admin.JobResponse
			err := r.caller.call(ctx, statusCost, func(c graphql.Client) error {
				var err error
				job, err = admin.Job(ctx, c, p.Job.Id)
				return err
			})
			if err != nil {
				return err
			}
			done = job.Job == nil || job.Job.Done
		}
		if err := r.store.MarkPushCodesDeleted(ctx, r.ref, seqs); err != nil {
			return err
		}
	}
}
