package core

import (
	"context"
	"errors"
	"runtime"
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
// naming the code "POISON" fails whole, as one that meets a fault would.
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
		if a.Code.Code == "POISON" {
			return nil, errors.New("the transaction met a fault")
		}
		if ref := (CodeRef{ListID: a.Code.List.ID, Seq: a.Code.Seq}); s.ledger.Codes[ref] == nil {
			s.ledger.Codes[ref] = &LockedCode{State: a.Code.State}
		}
	}
	return decide(s.ledger, apps), nil
}

// TestOrderEventsArrivingTogetherShareATransaction: while a merchant's transactions run, the
// order events that arrive wait and go together in the next, each decided on the ones before it
// (a code of 3 uses counts 3 of 10 orders, whichever transaction each went in); a transaction
// that fails is tried again one event at a time, so only the event at fault fails.
func TestOrderEventsArrivingTogetherShareATransaction(t *testing.T) {
	t.Parallel()
	list := List{ID: uuid.New(), Kind: KindUnique, UsesPerCode: 3}
	store := &groupStore{ledger: NewUseLedger(), held: redemptionsInFlight, started: make(chan struct{}), release: make(chan struct{})}
	r := NewRedeemer(groupFinder{list}, store)
	merchant := uuid.New()
	type answer struct {
		code, order string
		out         CodeOutcome
		err         error
	}
	answers := make(chan answer, 16)
	redeem := func(code, order string) {
		go func() {
			out, err := r.Redeem(t.Context(), merchant, list.ID, code, ManualRedemption{OrderID: order})
			answers <- answer{code, order, out, err}
		}()
	}
	// The first events hold every transaction the merchant may run; the rest queue behind them.
	for i := range redemptionsInFlight {
		redeem("SPRING", "first-"+string(rune('a'+i)))
		<-store.started
	}
	queued := []string{"o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"}
	for _, order := range queued {
		redeem("SPRING", order)
	}
	redeem("POISON", "bad")
	want := len(queued) + 1
	for deadline := time.Now().Add(10 * time.Second); r.groups.Waiting(merchant) < want; runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events queued after 10 s", r.groups.Waiting(merchant), want)
		}
	}
	close(store.release)

	counted, refused := 0, 0
	for range redemptionsInFlight + want {
		a := <-answers
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
	store.mu.Lock()
	defer store.mu.Unlock()
	// The held transactions of one event each; then the queued nine together, which failed;
	// then each of them alone.
	wantSizes := []int{1, 1, want, 1, 1, 1, 1, 1, 1, 1, 1, 1}
	if len(store.sizes) != len(wantSizes) || store.sizes[redemptionsInFlight] != want {
		t.Errorf("transactions of %v events; want %v", store.sizes, wantSizes)
	}
}
