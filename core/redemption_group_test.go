package core

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// groupFinder finds every code asked in one multi-use list.
type groupFinder struct{ list List }

func (f groupFinder) found(code string) FoundCode {
	return FoundCode{List: f.list, Seq: int64(len(code)), Code: code, State: StateDelivered}
}
func (f groupFinder) FindCode(_ context.Context, _ uuid.UUID, code string) (FoundCode, bool, error) {
	return f.found(code), true, nil
}
func (f groupFinder) FindListCode(_ context.Context, _, _ uuid.UUID, code string) (FoundCode, error) {
	return f.found(code), nil
}
func (f groupFinder) FindPushedCode(context.Context, uuid.UUID, string, string, string) (FoundCode, bool, error) {
	return FoundCode{}, false, nil
}

// groupStore is a RedemptionStore that keeps one ledger, as the database would keep what each
// transaction wrote. Its first held transactions wait for release before deciding; a transaction
// naming the code "POISON" fails whole, as one that meets a fault would, and one naming "DOWN"
// fails as when PostgreSQL does not answer.
type groupStore struct {
	mu      sync.Mutex
	ledger  *UseLedger
	sizes   []int
	held    int
	started chan struct{}
	release chan struct{}
}

func (s *groupStore) Redeem(_ context.Context, _ uuid.UUID, apps []CodeApplication, decide func(*UseLedger, []CodeApplication) []UseDecision) ([]UseDecision, error) {
	s.mu.Lock()
	s.sizes = append(s.sizes, len(apps))
	hold := s.held > 0
	if hold {
		s.held--
	}
	s.mu.Unlock()
	if hold {
		s.started <- struct{}{}
		<-s.release
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range apps {
		switch a.Code.Code {
		case "POISON":
			return nil, errors.New("the transaction met a fault")
		case "DOWN":
			return nil, Unavailable("PostgreSQL", errors.New("connection refused"))
		}
		if ref := (CodeRef{ListID: a.Code.List.ID, Seq: a.Code.Seq}); s.ledger.Codes[ref] == nil {
			s.ledger.Codes[ref] = &LockedCode{State: a.Code.State}
		}
	}
	return decide(s.ledger, apps), nil
}

// answer is what one redemption answered.
type answer struct {
	code, order string
	out         CodeOutcome
	err         error
}

// heldRedeemer is a Redeemer on a groupStore whose every transaction a merchant may run at once
// is held, each with one event on the code "SPRING" (3 uses): the events redeemed next queue.
type heldRedeemer struct {
	r        *Redeemer
	store    *groupStore
	list     List
	merchant uuid.UUID
	answers  chan answer
}

func newHeldRedeemer(t *testing.T) *heldRedeemer {
	list := List{ID: uuid.New(), Kind: KindUnique, UsesPerCode: 3}
	store := &groupStore{ledger: NewUseLedger(), held: redemptionsInFlight, started: make(chan struct{}), release: make(chan struct{})}
	h := &heldRedeemer{r: NewRedeemer(groupFinder{list}, store), store: store, list: list, merchant: uuid.New(), answers: make(chan answer, 16)}
	for i := range redemptionsInFlight {
		h.redeem(t, "SPRING", "first-"+string(rune('a'+i)))
		<-store.started
	}
	return h
}

// redeem marks code used for order, answering on h.answers.
func (h *heldRedeemer) redeem(t *testing.T, code, order string) {
	go func() {
		out, err := h.r.Redeem(t.Context(), h.merchant, h.list.ID, code, ManualRedemption{OrderID: order})
		h.answers <- answer{code, order, out, err}
	}()
}

// release lets the held transactions go once n events queue behind them.
func (h *heldRedeemer) release(t *testing.T, n int) {
	for deadline := time.Now().Add(10 * time.Second); h.r.groups.Waiting(h.merchant) < n; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events queued after 10 s", h.r.groups.Waiting(h.merchant), n)
		}
	}
	close(h.store.release)
}

// sizes are the numbers of events of the store's transactions, in order.
func (h *heldRedeemer) sizes() []int {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	return slices.Clone(h.store.sizes)
}

// TestOrderEventsArrivingTogetherShareATransaction: while a merchant's transactions run, the
// order events that arrive wait and go together in the next, each decided on the ones before it
// (a code of 3 uses counts 3 of 10 orders, whichever transaction each went in); a transaction
// that fails is tried again one event at a time, so only the event at fault fails.
func TestOrderEventsArrivingTogetherShareATransaction(t *testing.T) {
	t.Parallel()
	h := newHeldRedeemer(t)
	queued := []string{"o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"}
	for _, order := range queued {
		h.redeem(t, "SPRING", order)
	}
	h.redeem(t, "POISON", "bad")
	want := len(queued) + 1
	h.release(t, want)

	counted, refused := 0, 0
	for range redemptionsInFlight + want {
		a := <-h.answers
		switch {
		case a.code == "POISON":
			if a.err == nil || errors.Is(a.err, ErrAlreadyUsed) {
				t.Errorf("the event at fault answered %+v, %v; want the store's error", a.out, a.err)
			}
		case errors.Is(a.err, ErrAlreadyUsed):
			refused++
		case a.err != nil:
			t.Errorf("order %s failed with the event at fault: %v", a.order, a.err)
		case a.out.Outcome == OutcomeRedeemed:
			counted++
		default:
			t.Errorf("order %s answered %q", a.order, a.out.Outcome)
		}
	}
	if counted != 3 || refused != want-1+redemptionsInFlight-3 {
		t.Errorf("%d orders counted and %d refused; want 3 and %d", counted, refused, want-1+redemptionsInFlight-3)
	}
	// The held transactions of one event each; then the queued nine together, which failed;
	// then each of them alone.
	if got, wantSizes := h.sizes(), []int{1, 1, want, 1, 1, 1, 1, 1, 1, 1, 1, 1}; !slices.Equal(got, wantSizes) {
		t.Errorf("transactions of %v events; want %v", got, wantSizes)
	}
}

// TestOrderEventsFailTogetherWhenPostgresIsDown: a transaction that failed because PostgreSQL
// does not answer is not tried again event by event (each would wait for the database again):
// every event in it answers ErrUnavailable at once.
func TestOrderEventsFailTogetherWhenPostgresIsDown(t *testing.T) {
	t.Parallel()
	h := newHeldRedeemer(t)
	h.redeem(t, "DOWN", "d1")
	h.redeem(t, "SPRING", "d2")
	h.redeem(t, "SPRING", "d3")
	h.release(t, 3)
	for range redemptionsInFlight + 3 {
		a := <-h.answers
		if a.order[0] == 'd' && !errors.Is(a.err, ErrUnavailable) {
			t.Errorf("order %s answered %+v, %v; want ErrUnavailable", a.order, a.out, a.err)
		}
	}
	if got, want := h.sizes(), []int{1, 1, 3}; !slices.Equal(got, want) {
		t.Errorf("transactions of %v events; want %v (no event tried again alone)", got, want)
	}
}
