package core

import (
	"context"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/internal/groupcommit"
)

// Group commit of order events.
//
// Deciding an order event costs PostgreSQL little; the transaction around it costs most: two
// round trips (the code's row lock with what was recorded on it, then the decision written with
// the commit) and the commit's WAL flush. So the order events one process applies for one
// merchant at the same moment are decided in one transaction (RedemptionStore.Redeem with all of
// them): each in its turn on what the ones before it did (DecideApplications), as if they had
// come one after the other, and each caller still gets its own decision.
//
// Nothing waits on a timer (internal/groupcommit): an event that finds fewer than
// redemptionsInFlight transactions of its merchant running starts one at once, so an order alone
// is never delayed; events that arrive while they run go together in the next. A transaction that
// fails is tried again one event at a time, so an event that cannot be applied fails only its own
// caller.
const (
	// redemptionsInFlight is how many transactions of one merchant's order events one process
	// runs at once: while one commits, the next can lock and read.
	redemptionsInFlight = 2
	// maxRedemptionGroup bounds a transaction's events, and so how long they wait for each other
	// and how many code locks one transaction holds.
	maxRedemptionGroup = 64
)

// redemptionCall is one order event on one code, waiting for its decision.
type redemptionCall = groupcommit.Call[CodeApplication, UseDecision]

// newRedemptionGroups gathers r's order events per merchant.
func newRedemptionGroups(r *Redeemer) *groupcommit.Batcher[uuid.UUID, *redemptionCall] {
	return groupcommit.NewCalls(redemptionsInFlight, maxRedemptionGroup, r.serveRedemptions)
}

// decideAll decides a transaction's events at the service's clock.
func (r *Redeemer) decideAll(l *UseLedger, apps []CodeApplication) []UseDecision {
	return DecideApplications(l, apps, r.Now())
}

// serveRedemptions applies one merchant's gathered events in one transaction and answers each.
func (r *Redeemer) serveRedemptions(merchantID uuid.UUID, batch []*redemptionCall) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].Ctx), groupTimeout)
	defer cancel()
	apps := make([]CodeApplication, len(batch))
	for i, c := range batch {
		apps[i] = c.Req
	}
	ds, err := r.store.Redeem(ctx, merchantID, apps, r.decideAll)
	if err != nil && len(batch) > 1 {
		for _, c := range batch {
			d, err := r.store.Redeem(ctx, merchantID, []CodeApplication{c.Req}, r.decideAll)
			if err != nil {
				c.Answer(UseDecision{}, err)
				continue
			}
			c.Answer(d[0], nil)
		}
		return
	}
	for i, c := range batch {
		if err != nil {
			c.Answer(UseDecision{}, err)
			continue
		}
		c.Answer(ds[i], nil)
	}
}
