package store_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// noLimit never throttles.
type noLimit struct{}

func (noLimit) Blocked(context.Context, uuid.UUID, string) (time.Duration, error) { return 0, nil }
func (noLimit) Fail(context.Context, uuid.UUID, string) error                     { return nil }

func usersOf(db *store.DB) *core.Users {
	return core.NewUsers(db, noLimit{}, core.PasswordParams{Memory: 64, Time: 1, Threads: 1}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newMerchant(t *testing.T, db *store.DB) uuid.UUID {
	t.Helper()
	m, _, err := core.NewMerchants(db).Create(context.Background(), "Users "+uuid.NewString()[:8])
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

func uniqueEmail(name string) string { return name + "-" + uuid.NewString()[:8] + "@example.com" }

// TestUsersRoundTrip: invite, accept, sign in, use and end a session against PostgreSQL.
func TestUsersRoundTrip(t *testing.T) {
	t.Parallel()
	db := open(t)
	users := usersOf(db)
	ctx := context.Background()
	merchant := newMerchant(t, db)
	email := uniqueEmail("round")

	invited, token, err := users.Invite(ctx, merchant, core.InviteInput{Email: email, Role: core.RoleOwner})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := users.CheckInvite(ctx, token); err != nil || u.ID != invited.ID || u.Active {
		t.Fatalf("check invite: %+v %v", u, err)
	}
	team, err := users.Team(ctx, merchant)
	if err != nil || len(team) != 1 || team[0].Email != email || team[0].Active || team[0].InvitedBy != nil {
		t.Fatalf("team before acceptance: %+v %v", team, err)
	}
	signedIn, err := users.AcceptInvite(ctx, token, "a good long password", "a good long password")
	if err != nil || !signedIn.User.Active {
		t.Fatalf("accept: %+v %v", signedIn, err)
	}
	if _, err := users.AcceptInvite(ctx, token, "a good long password", "a good long password"); !errors.Is(err, core.ErrInviteInvalid) {
		t.Fatalf("second acceptance: %v", err)
	}
	s, err := users.SignIn(ctx, core.SignInInput{Email: email, Password: "a good long password", Client: "192.0.2.1"})
	if err != nil || s.User.ID != invited.ID || s.User.Role != core.RoleOwner {
		t.Fatalf("sign in: %+v %v", s, err)
	}
	got, err := users.Session(ctx, s.Token)
	if err != nil || got.User.Email != email || got.Session.CSRFToken != s.Session.CSRFToken || !got.Session.ExpiresAt.Equal(s.Session.ExpiresAt.Truncate(time.Microsecond)) {
		t.Fatalf("session: %+v %v", got, err)
	}
	// Touch moves last_seen_at forward only.
	later := s.Session.LastSeenAt.Add(time.Hour)
	if err := db.TouchSession(ctx, merchant, s.Session.IDHash, later); err != nil {
		t.Fatal(err)
	}
	if err := db.TouchSession(ctx, merchant, s.Session.IDHash, later.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if sess, _, err := db.SessionUser(ctx, merchant, s.Session.IDHash); err != nil || !sess.LastSeenAt.Equal(later.Truncate(time.Microsecond)) {
		t.Fatalf("after touches: %+v %v", sess, err)
	}
	if err := users.SignOut(ctx, s.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := users.Session(ctx, s.Token); !errors.Is(err, core.ErrSessionExpired) {
		t.Fatalf("after sign-out: %v", err)
	}
	// Another merchant never sees the session, the user or the invite.
	other := newMerchant(t, db)
	if _, err := db.GetUser(ctx, other, invited.ID); !errors.Is(err, core.ErrUserNotFound) {
		t.Fatalf("user through another merchant: %v", err)
	}
	if _, _, err := db.SessionUser(ctx, other, signedIn.Session.IDHash); !errors.Is(err, core.ErrSessionExpired) {
		t.Fatalf("session through another merchant: %v", err)
	}
}

// TestUsersOneAccountPerAddress: two merchants inviting the same address at once: one gets the
// person, the other a clear conflict; inviting again before acceptance reuses the person.
func TestUsersOneAccountPerAddress(t *testing.T) {
	t.Parallel()
	db := open(t)
	users := usersOf(db)
	ctx := context.Background()
	a, b := newMerchant(t, db), newMerchant(t, db)
	email := uniqueEmail("race")
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			m := a
			if i%2 == 1 {
				m = b
			}
			_, _, errs[i] = users.Invite(ctx, m, core.InviteInput{Email: email, Role: core.RoleStaff})
		})
	}
	wg.Wait()
	var ok, taken int
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, core.ErrEmailTaken):
			taken++
		default:
			t.Fatalf("invite: %v", err)
		}
	}
	login, found, err := db.LoginOf(ctx, email)
	if err != nil || !found {
		t.Fatalf("login of: %v %v", found, err)
	}
	// Every success invited the same person of one merchant; the other merchant got conflicts.
	for _, m := range []uuid.UUID{a, b} {
		team, _ := users.Team(ctx, m)
		if m == login.MerchantID && len(team) != 1 || m != login.MerchantID && len(team) != 0 {
			t.Fatalf("team of %s: %+v (login in %s)", m, team, login.MerchantID)
		}
	}
	if ok == 0 || taken == 0 {
		t.Fatalf("%d invites succeeded, %d conflicted", ok, taken)
	}
}

// TestUsersLastOwnerUnderConcurrency: two owners removing each other at once cannot leave the
// team without an owner.
func TestUsersLastOwnerUnderConcurrency(t *testing.T) {
	t.Parallel()
	db := open(t)
	users := usersOf(db)
	ctx := context.Background()
	merchant := newMerchant(t, db)
	var owners []uuid.UUID
	for range 2 {
		_, token, err := users.Invite(ctx, merchant, core.InviteInput{Email: uniqueEmail("owner"), Role: core.RoleOwner})
		if err != nil {
			t.Fatal(err)
		}
		s, err := users.AcceptInvite(ctx, token, "owner's password", "owner's password")
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, s.User.ID)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { errs[i] = users.Remove(ctx, merchant, owners[1-i]) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) {
		t.Fatalf("removals: %v, %v; want exactly one to succeed", errs[0], errs[1])
	}
	for _, err := range errs {
		if err != nil && !errors.Is(err, core.ErrLastOwner) {
			t.Fatalf("the refused removal: %v", err)
		}
	}
	team, err := users.Team(ctx, merchant)
	if err != nil || len(team) != 1 || team[0].Role != core.RoleOwner {
		t.Fatalf("team: %+v %v", team, err)
	}
}

// TestUsersRemoveEndsEverything: removing a person ends their sessions and invites at once and
// frees the address.
func TestUsersRemoveEndsEverything(t *testing.T) {
	t.Parallel()
	db := open(t)
	users := usersOf(db)
	ctx := context.Background()
	merchant := newMerchant(t, db)
	email := uniqueEmail("staff")
	_, ownerToken, _ := users.Invite(ctx, merchant, core.InviteInput{Email: uniqueEmail("owner"), Role: core.RoleOwner})
	owner, err := users.AcceptInvite(ctx, ownerToken, "owner's password", "owner's password")
	if err != nil {
		t.Fatal(err)
	}
	staff, token, err := users.Invite(ctx, merchant, core.InviteInput{Email: email, Role: core.RoleStaff, InvitedBy: &owner.User.ID})
	if err != nil || staff.InvitedBy == nil || *staff.InvitedBy != owner.User.ID {
		t.Fatalf("invite staff: %+v %v", staff, err)
	}
	s, err := users.AcceptInvite(ctx, token, "staff password!", "staff password!")
	if err != nil {
		t.Fatal(err)
	}
	// A pending invite of someone else, to see it go too.
	pending, pendingToken, _ := users.Invite(ctx, merchant, core.InviteInput{Email: uniqueEmail("pending"), Role: core.RoleStaff})
	for _, id := range []uuid.UUID{staff.ID, pending.ID} {
		if err := users.Remove(ctx, merchant, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := users.Session(ctx, s.Token); !errors.Is(err, core.ErrSessionExpired) {
		t.Fatalf("removed person's session: %v", err)
	}
	if _, err := users.CheckInvite(ctx, pendingToken); !errors.Is(err, core.ErrInviteInvalid) {
		t.Fatalf("removed person's invite: %v", err)
	}
	if _, found, _ := db.LoginOf(ctx, email); found {
		t.Fatal("the removed person can still be found by address")
	}
	if err := users.Remove(ctx, merchant, staff.ID); !errors.Is(err, core.ErrUserNotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	again, _, err := users.Invite(ctx, merchant, core.InviteInput{Email: email, Role: core.RoleStaff})
	if err != nil || again.ID == staff.ID {
		t.Fatalf("invite the address again: %+v %v", again, err)
	}
}

// TestUsersTablesLeadWithMerchant: every dashboard table's primary key leads with merchant_id,
// except the sign-in routing table keyed by address.
func TestUsersTablesLeadWithMerchant(t *testing.T) {
	t.Parallel()
	db := open(t)
	rows, err := db.Pool().Query(context.Background(), `SELECT c.relname, a.attname FROM pg_index i
		JOIN pg_class c ON c.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
		WHERE i.indisprimary AND c.relname LIKE 'dashboard\_%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[string]string{}
	for rows.Next() {
		var table, col string
		if err := rows.Scan(&table, &col); err != nil {
			t.Fatal(err)
		}
		seen[table] = col
	}
	want := map[string]string{"dashboard_users": "merchant_id", "dashboard_invites": "merchant_id",
		"dashboard_sessions": "merchant_id", "dashboard_logins": "email_lower"}
	for table, col := range want {
		if seen[table] != col {
			t.Errorf("%s's primary key leads with %q, want %q", table, seen[table], col)
		}
	}
}
