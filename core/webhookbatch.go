package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
)

// WebhookBatchSize is how many receipts still received of a merchant one batch takes: enough that a
// batch shares one transaction, one commit and a few look-ups among hundreds of receipts, few
// enough that its transaction stays far below DispatchLag (the events it writes are handed out
// only once older than that).
const WebhookBatchSize = 400

// WebhookBatchParallel is how many transactions a batch's receipts are applied in at once, at
// most (parts that share no order and no code; see WebhookBatches.apply): on a machine whose
// cores the intake keeps busy, each transaction gets its share of them.
const WebhookBatchParallel = 4

// WebhookPlan is what applying one stored platform webhook receipt takes, as its platform reads
// it (WebhookPlanner).
type WebhookPlan struct {
	// Events are the receipt's order events (as CheckOrderEvent returns them), applied in this
	// order.
	Events []OrderEvent
	// Status and Note are recorded on the receipt with its events: processed, failed or ignored.
	Status string
	Note   string
	// Alone says the receipt is processed by itself, through its platform's Process, once every
	// receipt before it is applied: an uninstall, a compliance request, a refund whose codes are
	// the ones its order redeemed before, an order carrying manual discounts.
	Alone bool
	// Order names the platform order the receipt is about ("platform:shop:order id"), empty when
	// it is about none. A receipt that cannot be applied holds back the later receipts of its
	// order, so an order's events are applied in the order they arrived.
	Order string
}

// WebhookPlanner reads one platform's stored receipts (the integrations implement it).
type WebhookPlanner interface {
	// PlanReceipts reads ds into one plan each, in order. An error is passing (a look-up that
	// failed): the receipts stay received and are read again.
	PlanReceipts(ctx context.Context, ds []WebhookReceipt) ([]WebhookPlan, error)
	// Process acts on one receipt by itself and records its outcome (an Alone plan); a receipt
	// no longer received is left as it is.
	Process(ctx context.Context, merchantID, receiptID uuid.UUID) error
}

// CodeApplication is one order event applied to one code of a batch, decided as Redeemer decides
// one (UseLedger.Decide).
type CodeApplication struct {
	// Receipt is the index of the receipt, in WebhookBatch.Receipts, the event came from.
	Receipt int
	Event   OrderEvent
	Code    FoundCode
}

// ReceiptOutcome is what a batch records on one of its receipts.
type ReceiptOutcome struct {
	ID     uuid.UUID
	Status string
	Note   string
}

// WebhookBatch is a batch of a merchant's receipts, read and looked up, ready to apply.
type WebhookBatch struct {
	Receipts []ReceiptOutcome
	// Applications are the receipts' events applied to their codes, in the receipts' order.
	Applications []CodeApplication
}

// WebhookBatchStore keeps the stored receipts and applies them a batch at a time.
type WebhookBatchStore interface {
	// LockMerchantWebhooks takes the merchant's webhook lock, or answers ok=false when another
	// worker holds it. release lets it go. The lock belongs to a database session, so a worker
	// killed while holding it holds nothing.
	LockMerchantWebhooks(ctx context.Context, merchantID uuid.UUID) (release func(), ok bool, err error)
	// ReadyWebhookReceipts returns up to limit of the merchant's receipts still received, oldest
	// first by arrival, leaving out those in skip.
	ReadyWebhookReceipts(ctx context.Context, merchantID uuid.UUID, limit int, skip []uuid.UUID) ([]WebhookReceipt, error)
	// ApplyWebhookBatch, in one transaction, claims those of the batch's receipts that are still
	// received and that no other transaction holds (FOR UPDATE SKIP LOCKED), takes the row locks
	// of the codes the applications name and reads into a ledger what they are decided on (as
	// RedemptionStore.Redeem does), calls decide with the claimed receipts' applications
	// in order, persists the decisions and records the claimed receipts' outcomes. claimed[i]
	// says Receipts[i] was claimed; decisions[i] is Applications[i]'s (zero when its receipt was
	// not claimed). Nothing is applied or recorded when it fails.
	ApplyWebhookBatch(ctx context.Context, merchantID uuid.UUID, b WebhookBatch,
		decide func(*UseLedger, []CodeApplication) []UseDecision) (claimed []bool, decisions []UseDecision, err error)
	// FindCodes is CodeFinder.FindCode for many codes in one look-up: found[i] and codes[i].
	FindCodes(ctx context.Context, merchantID uuid.UUID, codes []string) (fs []FoundCode, found []bool, err error)
	// FindPushedCodes is CodeFinder.FindPushedCode for many codes of one shop in one look-up.
	FindPushedCodes(ctx context.Context, merchantID uuid.UUID, platform, shop string, codes []string) (fs []FoundCode, found []bool, err error)
}

// WebhookSignals are the merchants' webhook marks (in Redis): raised when receipts may be
// waiting, so that a batch task runs after every receipt stored. The intake raises a merchant's
// mark after it stores a receipt and queues a batch task when the mark was down
// (WebhookQueue's EnqueueWebhookBatch); a batch lowers it before each read.
type WebhookSignals interface {
	// RaiseWebhookMark raises the merchant's mark.
	RaiseWebhookMark(ctx context.Context, merchantID uuid.UUID) error
	// LowerWebhookMark lowers it.
	LowerWebhookMark(ctx context.Context, merchantID uuid.UUID) error
	// WebhookMarkRaised reports whether it is up.
	WebhookMarkRaised(ctx context.Context, merchantID uuid.UUID) (bool, error)
}

// WebhookBatches applies the stored platform webhook receipts of a merchant many at a time, in
// the order they arrived, one batch task per merchant at a time. Every receipt stored is applied
// by a batch that reads after it was stored:
//
//   - a task raises the merchant's mark, then takes the merchant's lock or, when another task
//     holds it, ends: the holder looks at the mark once it has let the lock go, and starts again
//     when the mark is up;
//   - the holder lowers the mark before each read, so a receipt stored after a read finds the
//     mark down and queues a task (or raises it again for the holder to see).
//
// A batch is applied in one transaction that claims its receipts (FOR UPDATE SKIP LOCKED): a
// worker killed mid-batch leaves them received for the next task, and no two transactions apply
// one receipt. Order events are decided exactly as Redeemer decides them one at a time
// (UseLedger.Decide), at the runner's clock.
type WebhookBatches struct {
	Clock
	store    WebhookBatchStore
	signals  WebhookSignals
	planners map[string]WebhookPlanner
	log      *slog.Logger
	size     int
	parallel int
	observer WebhookObserver
}

// WebhookObserver is told of each receipt WebhookBatches applied (operators' metrics).
type WebhookObserver interface {
	// WebhookApplied says d was applied: in a batch, with its order events batched and the
	// event of each use they counted in redeemed (one per code); or processed alone through its
	// platform (batched and redeemed nil), whose redemptions the RedemptionStore sees.
	WebhookApplied(d WebhookReceipt, batched, redeemed []OrderEvent)
}

// Observe tells o of every receipt applied from now on.
func (b *WebhookBatches) Observe(o WebhookObserver) *WebhookBatches {
	b.observer = o
	return b
}

// observe tells the observer of the receipts of part claimed, with the uses decisions counted:
// part's receipt j is ds[at[j]].
func (b *WebhookBatches) observe(ds []WebhookReceipt, plans []WebhookPlan, at []int, part WebhookBatch, claimed []bool, decisions []UseDecision) {
	if b.observer == nil {
		return
	}
	redeemed := make([][]OrderEvent, len(claimed))
	for i, d := range decisions {
		if d.Outcome == OutcomeRedeemed {
			a := part.Applications[i]
			redeemed[a.Receipt] = append(redeemed[a.Receipt], a.Event)
		}
	}
	for j, ok := range claimed {
		if ok {
			b.observer.WebhookApplied(ds[at[j]], plans[at[j]].Events, redeemed[j])
		}
	}
}

// decide decides a batch's applications at the runner's clock (DecideApplications).
func (b *WebhookBatches) decide(l *UseLedger, apps []CodeApplication) []UseDecision {
	return DecideApplications(l, apps, b.Now())
}

// NewWebhookBatches returns the batch runner; planners reads each platform's receipts.
func NewWebhookBatches(store WebhookBatchStore, signals WebhookSignals, planners map[string]WebhookPlanner, log *slog.Logger) *WebhookBatches {
	return &WebhookBatches{store: store, signals: signals, planners: planners, log: log, size: WebhookBatchSize, parallel: WebhookBatchParallel}
}

// WithBatchSize sets how many receipts a batch takes and in how many transactions at most it
// applies them at once (tests).
func (b *WebhookBatches) WithBatchSize(n, parallel int) *WebhookBatches {
	b.size, b.parallel = max(n, 1), max(parallel, 1)
	return b
}

// ErrWebhooksHeldBack says some receipts could not be applied in this run and were left
// received; the task is tried again later.
var ErrWebhooksHeldBack = errors.New("webhook deliveries held back")

// Run applies the merchant's receipts still received until none is left, or ends at once when another
// task holds the merchant's lock (that task applies them). A receipt that fails on its own is
// left received, with the later receipts of its order, and Run answers ErrWebhooksHeldBack
// (wrapping the first failure) once the others are applied, so that the task is tried again.
func (b *WebhookBatches) Run(ctx context.Context, merchantID uuid.UUID) error {
	var heldBack error
	for {
		if err := b.signals.RaiseWebhookMark(ctx, merchantID); err != nil {
			return err
		}
		release, ok, err := b.store.LockMerchantWebhooks(ctx, merchantID)
		if err != nil {
			return err
		}
		if !ok {
			return heldBack
		}
		err = b.drain(ctx, merchantID)
		release()
		if errors.Is(err, ErrWebhooksHeldBack) {
			heldBack = err // the deliveries stored meanwhile are not held back: look at the mark
		} else if err != nil {
			return err
		}
		raised, err := b.signals.WebhookMarkRaised(ctx, merchantID)
		if err != nil {
			return err
		}
		if !raised {
			return heldBack
		}
	}
}

// drainState is what one drain remembers: receipts to leave alone, orders held back.
type drainState struct {
	skip    []uuid.UUID
	skipped map[uuid.UUID]bool
	held    map[string]bool
	failed  error
}

func (s *drainState) leave(id uuid.UUID) {
	if !s.skipped[id] {
		s.skipped[id] = true
		s.skip = append(s.skip, id)
	}
}

// hold leaves a receipt that failed on its own, and holds back its order's later receipts.
func (s *drainState) hold(d WebhookReceipt, plan WebhookPlan, err error) {
	s.leave(d.ID)
	if plan.Order != "" {
		s.held[plan.Order] = true
	}
	if s.failed == nil {
		s.failed = fmt.Errorf("%w: receipt %s: %w", ErrWebhooksHeldBack, d.ID, err)
	}
}

// drain applies batches while the lock is held, until a read finds fewer than a batch. While a
// full batch is applied, the next one is read, planned and looked up, so that the merchant's
// transactions follow one another without a gap; it is applied once the one before it is.
func (b *WebhookBatches) drain(ctx context.Context, merchantID uuid.UUID) error {
	st := &drainState{skipped: map[uuid.UUID]bool{}, held: map[string]bool{}}
	read := func(skip []uuid.UUID) (*prepared, error) {
		if err := b.signals.LowerWebhookMark(ctx, merchantID); err != nil {
			return nil, err
		}
		ds, err := b.store.ReadyWebhookReceipts(ctx, merchantID, b.size, skip)
		if err != nil || len(ds) == 0 {
			return nil, err
		}
		return b.prepare(ctx, merchantID, ds), nil
	}
	cur, err := read(st.skip)
	for err == nil && cur != nil {
		// A full batch applied whole: more may wait, and the next read leaves this one's out.
		var next *prepared
		var nextErr error
		var wg sync.WaitGroup
		more := cur.n == len(cur.ds) && len(cur.ds) == b.size
		if more {
			skip := slices.Clone(st.skip)
			for _, d := range cur.ds {
				skip = append(skip, d.ID)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				next, nextErr = read(skip)
			}()
		}
		done, applyErr := b.applyPrepared(ctx, merchantID, cur, st)
		wg.Wait()
		switch {
		case applyErr != nil:
			return applyErr
		case more:
			cur, err = next, nextErr
		case done == len(cur.ds) && len(cur.ds) < b.size:
			return st.failed
		default:
			cur, err = read(st.skip)
		}
	}
	if err != nil {
		return err
	}
	return st.failed
}

// prepared is a batch read, planned and looked up, ready to apply once the one before it is.
type prepared struct {
	ds    []WebhookReceipt
	plans []WebhookPlan
	// n is how many of ds are applied together: those before the first to process alone (0
	// when ds[0] is one).
	n int
	// batch holds ds[:n] and their events on their codes.
	batch WebhookBatch
	// err is a planning or look-up failure: ds are then dealt with one at a time.
	err error
}

// prepare plans ds and looks up the codes of the receipts to apply together.
func (b *WebhookBatches) prepare(ctx context.Context, merchantID uuid.UUID, ds []WebhookReceipt) *prepared {
	p := &prepared{ds: ds}
	if p.plans, p.err = b.plan(ctx, ds); p.err != nil {
		return p
	}
	p.n = len(ds)
	for i, plan := range p.plans {
		if plan.Alone {
			p.n = i
			break
		}
	}
	var events []OrderEvent
	var from []int
	p.batch.Receipts = make([]ReceiptOutcome, p.n)
	for i, d := range ds[:p.n] {
		for _, ev := range p.plans[i].Events {
			events = append(events, ev)
			from = append(from, i)
		}
		p.batch.Receipts[i] = ReceiptOutcome{ID: d.ID, Status: p.plans[i].Status, Note: p.plans[i].Note}
	}
	if p.n > 0 {
		p.batch.Applications, p.err = resolveOrderCodes(ctx, b.store, merchantID, events, from)
	}
	return p
}

// applyPrepared applies a prepared batch up to the first receipt that must be processed alone
// (or processes that one, when it comes first), and answers how many of its receipts it dealt
// with. A batch that fails is applied again one receipt at a time, so one receipt that fails
// holds back only itself and its order. An error ends the run: the context ended.
func (b *WebhookBatches) applyPrepared(ctx context.Context, merchantID uuid.UUID, p *prepared, st *drainState) (int, error) {
	if p.err != nil {
		if len(p.ds) == 1 {
			var plan WebhookPlan
			if p.plans != nil {
				plan = p.plans[0]
			}
			st.hold(p.ds[0], plan, p.err)
			b.log.WarnContext(ctx, "webhook receipt not applied: held back", "delivery_id", p.ds[0].ID, "platform", p.ds[0].Platform, "topic", p.ds[0].Topic, "err", p.err)
			return 1, ctx.Err()
		}
		return b.oneByOne(ctx, merchantID, p.ds, st)
	}
	if p.n == 0 {
		d, plan := p.ds[0], p.plans[0]
		if plan.Order != "" && st.held[plan.Order] { // after its order's delivery that failed: stays received
			st.leave(d.ID)
			return 1, nil
		}
		if err := b.planners[d.Platform].Process(ctx, merchantID, d.ID); err != nil {
			st.hold(d, plan, err)
			b.log.WarnContext(ctx, "webhook receipt not applied: held back", "delivery_id", d.ID, "platform", d.Platform, "topic", d.Topic, "err", err)
		} else if b.observer != nil {
			b.observer.WebhookApplied(d, nil, nil)
		}
		return 1, ctx.Err()
	}
	ds, plans := p.ds[:p.n], p.plans[:p.n]
	if err := b.apply(ctx, merchantID, ds, plans, p.batch, st); err != nil {
		if p.n == 1 {
			st.hold(ds[0], plans[0], err)
			b.log.WarnContext(ctx, "webhook receipt not applied: held back", "delivery_id", ds[0].ID, "platform", ds[0].Platform, "topic", ds[0].Topic, "err", err)
			return 1, ctx.Err()
		}
		return b.oneByOne(ctx, merchantID, ds, st)
	}
	return p.n, nil
}

// oneByOne deals with ds as batches of one, after a batch of them failed.
func (b *WebhookBatches) oneByOne(ctx context.Context, merchantID uuid.UUID, ds []WebhookReceipt, st *drainState) (int, error) {
	for i := range ds {
		if err := ctx.Err(); err != nil {
			return i, err
		}
		if _, err := b.applyPrepared(ctx, merchantID, b.prepare(ctx, merchantID, ds[i:i+1]), st); err != nil {
			return i, err
		}
	}
	return len(ds), nil
}

// plan reads ds through their platforms' planners. A platform without a planner is an error, as
// a planner's: the receipts are then tried one at a time, and those it concerns held back.
func (b *WebhookBatches) plan(ctx context.Context, ds []WebhookReceipt) ([]WebhookPlan, error) {
	plans := make([]WebhookPlan, len(ds))
	byPlatform := map[string][]int{}
	for i, d := range ds {
		byPlatform[d.Platform] = append(byPlatform[d.Platform], i)
	}
	for platform, idx := range byPlatform {
		planner, ok := b.planners[platform]
		if !ok {
			return nil, fmt.Errorf("no webhook planner for platform %q", platform)
		}
		group := make([]WebhookReceipt, len(idx))
		for j, i := range idx {
			group[j] = ds[i]
		}
		got, err := planner.PlanReceipts(ctx, group)
		if err != nil {
			return nil, err
		}
		if len(got) != len(group) {
			return nil, fmt.Errorf("webhook planner for %s: %d plans for %d receipts", platform, len(got), len(group))
		}
		for j, i := range idx {
			plans[i] = got[j]
		}
	}
	return plans, nil
}

// apply applies a batch of ds (planned, their codes looked up), a receipt of an order held back
// this run left received. The receipts are applied in parts that share no order and no code,
// each part in its own transaction, the parts at once (up to the runner's parallel
// transactions): the events of one order, and those on one code, stay in one part, in the order
// they arrived, and events in different parts touch different rows. A part that fails is applied
// again one receipt at a time.
func (b *WebhookBatches) apply(ctx context.Context, merchantID uuid.UUID, ds []WebhookReceipt, plans []WebhookPlan, all WebhookBatch, st *drainState) error {
	var kept []int // the index in ds of each delivery applied
	for i, d := range ds {
		if plans[i].Order != "" && st.held[plans[i].Order] {
			st.leave(d.ID)
			continue
		}
		kept = append(kept, i)
		if plans[i].Status == "failed" {
			b.log.WarnContext(ctx, "webhook receipt failed", "delivery_id", d.ID, "platform", d.Platform, "topic", d.Topic, "shop", d.Shop, "reason", plans[i].Note)
		}
	}
	if len(kept) == 0 {
		return nil
	}
	batch := all
	if len(kept) < len(ds) {
		batch = all.part(kept)
	}
	orders := make([]string, len(kept))
	for j, i := range kept {
		orders[j] = plans[i].Order
	}
	parts := partitionBatch(batch, orders, b.parallel)
	if len(parts) == 1 {
		claimed, decisions, err := b.store.ApplyWebhookBatch(ctx, merchantID, batch, b.decide)
		if err != nil {
			return err
		}
		leaveUnclaimed(st, batch, claimed)
		b.observe(ds, plans, kept, batch, claimed, decisions)
		return nil
	}
	type result struct {
		part      WebhookBatch
		claimed   []bool
		decisions []UseDecision
		err       error
	}
	results := make([]result, len(parts))
	var wg sync.WaitGroup
	for p, idx := range parts {
		results[p].part = batch.part(idx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[p].claimed, results[p].decisions, results[p].err = b.store.ApplyWebhookBatch(ctx, merchantID, results[p].part, b.decide)
		}()
	}
	wg.Wait()
	for p, r := range results {
		if r.err == nil {
			leaveUnclaimed(st, r.part, r.claimed)
			if b.observer != nil {
				at := make([]int, len(parts[p]))
				for j, k := range parts[p] {
					at[j] = kept[k]
				}
				b.observe(ds, plans, at, r.part, r.claimed, r.decisions)
			}
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		sub := make([]WebhookReceipt, len(parts[p]))
		for j, k := range parts[p] {
			sub[j] = ds[kept[k]]
		}
		if len(sub) == 1 {
			st.hold(sub[0], plans[kept[parts[p][0]]], r.err)
			b.log.WarnContext(ctx, "webhook receipt not applied: held back", "delivery_id", sub[0].ID, "platform", sub[0].Platform, "topic", sub[0].Topic, "err", r.err)
			continue
		}
		if _, err := b.oneByOne(ctx, merchantID, sub, st); err != nil {
			return err
		}
	}
	return nil
}

// leaveUnclaimed leaves the receipts another transaction held: they are that one's.
func leaveUnclaimed(st *drainState, b WebhookBatch, claimed []bool) {
	for i, ok := range claimed {
		if !ok {
			st.leave(b.Receipts[i].ID)
		}
	}
}

// part is the batch of the receipts at idx (ascending) and their applications, in order.
func (b WebhookBatch) part(idx []int) WebhookBatch {
	at := make(map[int]int, len(idx))
	out := WebhookBatch{Receipts: make([]ReceiptOutcome, len(idx))}
	for j, i := range idx {
		at[i] = j
		out.Receipts[j] = b.Receipts[i]
	}
	for _, a := range b.Applications {
		if j, ok := at[a.Receipt]; ok {
			a.Receipt = j
			out.Applications = append(out.Applications, a)
		}
	}
	return out
}

// minWebhookPart is the fewest receipts worth a transaction of their own.
const minWebhookPart = 32

// partitionBatch splits a batch's receipts into at most n parts that share no order (orders[i]
// names Receipts[i]'s) and no code: the receipts linked by an order or a code go together.
// Each part lists its receipts in the batch's order; the parts are about even.
func partitionBatch(b WebhookBatch, orders []string, n int) [][]int {
	count := len(b.Receipts)
	n = min(n, count/minWebhookPart)
	if n <= 1 {
		all := make([]int, count)
		for i := range all {
			all[i] = i
		}
		return [][]int{all}
	}
	parent := make([]int, count)
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, c int) {
		if ra, rc := find(a), find(c); ra != rc {
			parent[max(ra, rc)] = min(ra, rc)
		}
	}
	firstOfOrder := map[string]int{}
	for i, o := range orders {
		if o == "" {
			continue
		}
		if f, ok := firstOfOrder[o]; ok {
			union(f, i)
		} else {
			firstOfOrder[o] = i
		}
	}
	type code struct {
		list uuid.UUID
		seq  int64
	}
	firstOfCode := map[code]int{}
	for _, a := range b.Applications {
		k := code{a.Code.List.ID, a.Code.Seq}
		if f, ok := firstOfCode[k]; ok {
			union(f, a.Receipt)
		} else {
			firstOfCode[k] = a.Receipt
		}
	}
	groups := map[int][]int{}
	var roots []int
	for i := range count {
		r := find(i)
		if _, ok := groups[r]; !ok {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], i)
	}
	// The largest groups first, each to the part with the fewest receipts so far.
	slices.SortStableFunc(roots, func(a, c int) int { return len(groups[c]) - len(groups[a]) })
	parts := make([][]int, min(n, len(roots)))
	for _, r := range roots {
		least := 0
		for p := range parts {
			if len(parts[p]) < len(parts[least]) {
				least = p
			}
		}
		parts[least] = append(parts[least], groups[r]...)
	}
	for p := range parts {
		slices.Sort(parts[p])
	}
	return parts
}

// lookupKey is one code look-up of a batch: as given (FindCodes), or among the codes pushed to a
// platform's shop (FindPushedCodes).
type lookupKey struct {
	platform, shop string // empty for FindCodes
	code           string
}

// resolveOrderCodes turns events (already checked) into code applications, finding each event's
// codes as Redeemer.ApplyOrder finds them one at a time (see OrderEvent.IgnoreCase): a code is
// applied once per event, and a code no list has, or removed, is left out. The look-ups are made
// together: the shops' pushed codes first, then every code asked as given.
func resolveOrderCodes(ctx context.Context, store WebhookBatchStore, merchantID uuid.UUID, events []OrderEvent, from []int) ([]CodeApplication, error) {
	type shopKey struct{ platform, shop string }
	pushedAsk := map[shopKey][]string{}
	found := map[lookupKey]FoundCode{}
	asked := map[lookupKey]bool{}
	var plainAsk []string
	askPlain := func(code string) {
		k := lookupKey{code: code}
		if !asked[k] {
			asked[k] = true
			plainAsk = append(plainAsk, code)
		}
	}
	for _, ev := range events {
		for _, raw := range ev.Codes {
			code, ok := CheckCode(raw)
			if !ok {
				continue
			}
			if !ev.IgnoreCase {
				askPlain(code)
				continue
			}
			k := lookupKey{ev.Platform, ev.Shop, code}
			if !asked[k] {
				asked[k] = true
				sk := shopKey{ev.Platform, ev.Shop}
				pushedAsk[sk] = append(pushedAsk[sk], code)
			}
		}
	}
	for sk, codes := range pushedAsk {
		fs, ok, err := store.FindPushedCodes(ctx, merchantID, sk.platform, sk.shop, codes)
		if err != nil {
			return nil, err
		}
		for i, code := range codes {
			if ok[i] {
				found[lookupKey{sk.platform, sk.shop, code}] = fs[i]
				continue
			}
			// Not pushed to the shop: the code as given and in upper case (findFolded).
			askPlain(code)
			askPlain(strings.ToUpper(code))
		}
	}
	if len(plainAsk) > 0 {
		fs, ok, err := store.FindCodes(ctx, merchantID, plainAsk)
		if err != nil {
			return nil, err
		}
		for i, code := range plainAsk {
			if ok[i] {
				found[lookupKey{code: code}] = fs[i]
			}
		}
	}
	var apps []CodeApplication
	for e, ev := range events {
		seen := map[string]bool{}
		for _, raw := range ev.Codes {
			code, ok := CheckCode(raw)
			if !ok {
				continue
			}
			var f FoundCode
			var hit bool
			if ev.IgnoreCase {
				if f, hit = found[lookupKey{ev.Platform, ev.Shop, code}]; !hit {
					f, hit = folded(found, code)
				}
			} else {
				f, hit = found[lookupKey{code: code}]
			}
			if !hit || f.State == StateRemoved {
				continue
			}
			key := f.List.ID.String() + "|" + f.Code
			if seen[key] {
				continue // the same code twice in one order is one use
			}
			seen[key] = true
			apps = append(apps, CodeApplication{Receipt: from[e], Event: ev, Code: f})
		}
	}
	return apps, nil
}

// folded is Redeemer.findFolded over a batch's look-ups: the code as given or in upper case, by
// FindCode's rule when both are found.
func folded(found map[lookupKey]FoundCode, code string) (FoundCode, bool) {
	f, ok := found[lookupKey{code: code}]
	upper := strings.ToUpper(code)
	if upper == code {
		return f, ok
	}
	u, uOK := found[lookupKey{code: upper}]
	switch {
	case !uOK:
		return f, ok
	case !ok || preferFound(u, f):
		return u, true
	}
	return f, true
}
