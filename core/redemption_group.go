package core

import (
	"context"
	"errors"

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
// caller; one that failed because PostgreSQL is down (ErrUnavailable) fails them all at once.
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
	r.applyCalls(ctx, merchantID, batch)
}

// applyCalls applies calls in one transaction. When it fails, each call is tried again alone, so
// that only an event at fault fails; unless PostgreSQL is down, which would fail every one of
// them again, each after its own wait.
func (r *Redeemer) applyCalls(ctx context.Context, merchantID uuid.UUID, calls []*redemptionCall) {
	apps := make([]CodeApplication, len(calls))
	for i, c := range calls {
		apps[i] = c.Req
	}
	ds, err := r.store.Redeem(ctx, merchantID, apps, r.decideAll)
	switch {
	case err == nil:
		for i, c := range calls {
			c.Answer(ds[i], nil)
		}
	case len(calls) == 1 || errors.Is(err, ErrUnavailable):
		for _, c := range calls {
			c.Answer(UseDecision{}, err)
		}
	default:
		for i := range calls {
			r.applyCalls(ctx, merchantID, calls[i:i+1])
		}
	}
}
