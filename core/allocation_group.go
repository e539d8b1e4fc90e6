package core

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/internal/groupcommit"
)

// Group commit of allocations.
//
// Handing out one code costs PostgreSQL little; the transaction around it (two round trips, the
// statements' starts, the commit's WAL flush) costs most. So the allocations one process makes
// for one list at the same moment are gathered and decided in one transaction
// (AllocationStore.Allocate, DecideAllocations), each request still getting its own code, its own
// allocation row (its delivered event) and its own answer.
//
// Nothing waits on a timer (internal/groupcommit). A request that finds fewer than groupsInFlight
// batches of its list running starts one at once, so a request alone is never delayed; requests
// that arrive while batches run wait for the first of them to finish (about a millisecond: two
// round trips and one commit) and go together in the next. The busier the list, the bigger the
// batches.
//
// The guarantees are those of a transaction of one: a code is taken only while it is still
// issuable at its position and under its row lock, so never by two recipients across any number
// of processes; each recipient and campaign is locked in one order; counts move by the batch's
// exact number. Within one batch each recipient and campaign
// appears once: its duplicates are answered after it, as callers arriving just after it would be
// (the same code within the list's reassign window, else a code of their own).
const (
	// groupsInFlight is how many batches of one list one process runs at once: while one
	// commits, the next can be read and run.
	groupsInFlight = 2
	// maxGroupSize bounds a batch, and so the time its requests wait for each other.
	maxGroupSize = 128
	// groupTimeout bounds a batch's transaction, which no single caller's cancellation stops.
	groupTimeout = 30 * time.Second
)

// allocationGroups gathers concurrent allocations per list (and redeem link).
type allocationGroups struct {
	a       *Allocator
	batches *groupcommit.Batcher[groupKey, *groupedAllocation]
}

// groupKey names what one batch serves: a list, and the redeem link handing its codes out (or
// none), whose hand-outs the batch also counts.
type groupKey struct{ merchantID, listID, link uuid.UUID }

// allocationCall is one caller's request: its recipient key and what it asks.
type allocationCall struct {
	key string
	req AllocationRequest
}

// groupedAllocation is one caller's request in a batch and, once answered, its answer.
type groupedAllocation = groupcommit.Call[allocationCall, AllocateResult]

func newAllocationGroups(a *Allocator) *allocationGroups {
	g := &allocationGroups{a: a}
	g.batches = groupcommit.NewCalls(groupsInFlight, maxGroupSize, g.serve)
	return g
}

// allocate queues the request with its list's others and answers it once its batch is done.
func (g *allocationGroups) allocate(ctx context.Context, merchantID, listID uuid.UUID, key string, req AllocationRequest) (AllocateResult, error) {
	return groupcommit.Do(ctx, g.batches, groupKey{merchantID, listID, req.RedeemLink}, allocationCall{key: key, req: req})
}

// serve runs one batch and answers each of its requests.
func (g *allocationGroups) serve(gk groupKey, batch []*groupedAllocation) {
	a := g.a
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].Ctx), groupTimeout)
	defer cancel()

	// One item per recipient and campaign; the rest follow it.
	firsts := make(map[string]int, len(batch))
	items := make([]AllocationBatchItem, 0, len(batch))
	leaders := make([]*groupedAllocation, 0, len(batch))
	followers := make([][]*groupedAllocation, 0, len(batch))
	for _, c := range batch {
		k := c.Req.key + "\x00" + c.Req.req.Campaign
		if i, ok := firsts[k]; ok {
			followers[i] = append(followers[i], c)
			continue
		}
		pos, err := a.cursor.Next(ctx, gk.listID)
		if err != nil {
			// Redis is down: each request goes alone, scanning for its code.
			a.log.WarnContext(ctx, "allocation cursor unavailable; scanning instead", "err", err)
			for _, c := range batch {
				res, err := a.allocate(ctx, gk.merchantID, gk.listID, c.Req.key, c.Req.req)
				if err == nil {
					a.recordStock(ctx, gk.merchantID, gk.listID, res)
				}
				c.Answer(res, err)
			}
			return
		}
		firsts[k] = len(items)
		items = append(items, AllocationBatchItem{Pos: pos, RecipientKey: c.Req.key, Req: c.Req.req})
		leaders = append(leaders, c)
		followers = append(followers, nil)
	}

	results, err := a.decide(ctx, gk.merchantID, gk.listID, items)
	if err != nil {
		for _, c := range batch {
			c.Answer(AllocateResult{}, err)
		}
		return
	}
	var stock *AllocateResult
	noteStock := func(res AllocateResult) {
		if res.crossesStock() && (stock == nil || res.Available < stock.Available) {
			stock = &res
		}
	}
	for i, res := range results {
		var err error
		if res.Outcome == OutcomeMiss {
			// The position held no free code (another path took it, or the list ends before it):
			// this request goes on alone, drawing again and then scanning.
			res, err = a.allocate(ctx, gk.merchantID, gk.listID, leaders[i].Req.key, leaders[i].Req.req)
		}
		leaders[i].Answer(res, err)
		noteStock(res)
		for _, f := range followers[i] {
			switch {
			case err != nil:
				f.Answer(AllocateResult{}, err)
			case res.Outcome == OutcomeOK && (res.HandsBack || res.Reused || gk.link != uuid.Nil):
				// Asked again just after: the same code, handed back.
				again := res
				again.Reused, again.AvailableKnown = true, false
				f.Answer(again, nil)
			case res.Outcome == OutcomeOK:
				// The list hands every request a code of its own.
				fres, ferr := a.allocate(ctx, gk.merchantID, gk.listID, f.Req.key, f.Req.req)
				f.Answer(fres, ferr)
				noteStock(fres)
			default:
				f.Answer(res, nil) // the list refused the first; it refuses the rest alike
			}
		}
	}
	if stock != nil {
		a.recordStock(ctx, gk.merchantID, gk.listID, *stock)
	}
}
