package api

import (
	"errors"
	"time"

	"github.com/coupongate/coupongate/core"
)

// Observer is told what the gateway answered, for the operators' metrics (internal/metrics
// implements it; Deps.Observer nil observes nothing). Every argument is a route template, a
// method, a status or a word from a small fixed set: never a merchant, a code or an address.
type Observer interface {
	// ObserveRequest is told of every request once it is answered, by the access log's
	// middleware with the duration it measured (route is "" when no route took the request).
	ObserveRequest(route, method string, status int, elapsed time.Duration)
	// Allocation is told of each allocation request's outcome: allocated, reused, exhausted,
	// refused (another 4xx), unavailable (503) or error.
	Allocation(outcome string)
	// Validation is told of each storefront validation's reason (ok, not_found, …), or
	// rate_limited, refused (a bad request) or error.
	Validation(reason string)
	// WebhookIntake is told of each platform webhook delivery's result at the intake: received
	// (stored), duplicate, ignored, ping, refused or error.
	WebhookIntake(platform, result string)
}

// errorOutcome names an error's outcome for Observer: the kind the client sees.
func errorOutcome(err error) string {
	var ce *core.Error
	if !errors.As(err, &ce) {
		return "error"
	}
	switch ce.Kind {
	case core.KindRateLimited:
		return "rate_limited"
	case core.KindUnavailable:
		return "unavailable"
	case core.KindInternal:
		return "error"
	}
	return "refused"
}

// observeAllocation tells the observer of an allocation's outcome.
func (h *handlers) observeAllocation(reused bool, err error) {
	if h.Observer == nil {
		return
	}
	switch {
	case err == nil && reused:
		h.Observer.Allocation("reused")
	case err == nil:
		h.Observer.Allocation("allocated")
	case errors.Is(err, core.ErrListExhausted):
		h.Observer.Allocation("exhausted")
	default:
		h.Observer.Allocation(errorOutcome(err))
	}
}

// observeValidation tells the observer of a validation's reason.
func (h *handlers) observeValidation(reason string, err error) {
	if h.Observer == nil {
		return
	}
	if err != nil {
		reason = errorOutcome(err)
	}
	h.Observer.Validation(reason)
}

// observeWebhook tells the observer of a delivery's result at platform's intake: the intake's
// answer (accepted is received, pong is ping), or the error's outcome.
func (h *handlers) observeWebhook(platform, answer string, err error) {
	if h.Observer == nil {
		return
	}
	switch {
	case err != nil:
		answer = errorOutcome(err)
		if answer == "rate_limited" {
			answer = "refused"
		}
	case answer == "accepted":
		answer = "received"
	case answer == "pong":
		answer = "ping"
	}
	h.Observer.WebhookIntake(platform, answer)
}
