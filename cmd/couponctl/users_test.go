package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/coupongate/coupongate/core"
	"github.com/coupongate/coupongate/store"
)

// inviteToken checks that link is APP_URL/app/invite/<token> and that the token works for email.
func inviteToken(t *testing.T, link, email string, role core.Role) string {
	t.Helper()
	token, ok := strings.CutPrefix(link, "http://dashboard.test/app/invite/")
	if !ok {
		t.Fatalf("invite_url %q is not APP_URL/app/invite/<token>", link)
	}
	db, err := store.Open(context.Background(), env.DatabaseURL, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := dashboardUsers(db, slog.New(slog.NewTextHandler(io.Discard, nil))).CheckInvite(context.Background(), token)
	if err != nil || u.Email != email || u.Role != role {
		t.Fatalf("the invite link: %+v %v", u, err)
	}
	return token
}

func TestMerchantCreateInvitesTheOwner(t *testing.T) {
	t.Parallel()
	useTestEnv(t)
	owner := "owner-" + uuid.NewString()[:8] + "@example.com"
	created, err := couponctl(t, "merchant", "create", "--name", "CLI Owner Shop", "--owner-email", strings.ToUpper(owner), "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{"merchant_id", "api_key", "storefront_key", "invite_url"} {
		if created[field] == "" {
			t.Fatalf("merchant create --json lacks %s: %v", field, created)
		}
	}
	inviteToken(t, created["invite_url"], owner, core.RoleOwner)

	// Without --owner-email the answer is as before.
	plain, err := couponctl(t, "merchant", "create", "--name", "CLI Plain Shop", "--json")
	if err != nil || len(plain) != 3 || plain["invite_url"] != "" {
		t.Fatalf("merchant create without an owner: %v %v", plain, err)
	}
	// An address that already has an account is refused before any merchant is made.
	if _, err := couponctl(t, "merchant", "create", "--name", "CLI Taken Shop", "--owner-email", owner, "--json"); err == nil ||
		!strings.Contains(err.Error(), "another merchant") {
		t.Fatalf("an owner of another merchant: %v", err)
	}
	var n int
	db, _ := store.Open(context.Background(), env.DatabaseURL, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer db.Close()
	if err := db.Pool().QueryRow(context.Background(), `SELECT count(*) FROM merchants WHERE name = 'CLI Taken Shop'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d merchants named CLI Taken Shop (%v)", n, err)
	}
	if _, err := couponctl(t, "merchant", "create", "--name", "CLI Bad Owner", "--owner-email", "not-an-address", "--json"); !errors.As(err, new(usageError)) {
		t.Fatalf("a bad --owner-email: %v", err)
	}
}

func TestUserInvite(t *testing.T) {
	t.Parallel()
	useTestEnv(t)
	created, err := couponctl(t, "merchant", "create", "--name", "CLI Team Shop", "--json")
	if err != nil {
		t.Fatal(err)
	}
	m := created["merchant_id"]
	staff := "staff-" + uuid.NewString()[:8] + "@example.com"
	got, err := couponctl(t, "user", "invite", "--merchant", m, "--email", staff, "--role", "staff", "--json")
	if err != nil || len(got) != 2 {
		t.Fatalf("user invite: %v %v", got, err)
	}
	if _, err := uuid.Parse(got["user_id"]); err != nil {
		t.Fatalf("user_id %q", got["user_id"])
	}
	inviteToken(t, got["invite_url"], staff, core.RoleStaff)

	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no merchant", []string{"--email", "a@example.com", "--role", "owner"}, true, ""},
		{"a bad email", []string{"--merchant", m, "--email", "nope", "--role", "owner"}, true, ""},
		{"a bad role", []string{"--merchant", m, "--email", "a@example.com", "--role", "admin"}, true, ""},
		{"an unknown merchant", []string{"--merchant", uuid.NewString(), "--email", "a@example.com", "--role", "owner"}, false, "no merchant has the id"},
		{"someone already on the team", []string{"--merchant", m, "--email", "x@example.com", "--role", "owner"}, false, ""},
	}
	// Make x@example.com an active member first.
	x, err := couponctl(t, "user", "invite", "--merchant", m, "--email", "x-"+m[:8]+"@example.com", "--role", "owner", "--json")
	if err != nil {
		t.Fatal(err)
	}
	token := inviteToken(t, x["invite_url"], "x-"+m[:8]+"@example.com", core.RoleOwner)
	db, _ := store.Open(context.Background(), env.DatabaseURL, 1, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer db.Close()
	if _, err := dashboardUsers(db, slog.New(slog.NewTextHandler(io.Discard, nil))).AcceptInvite(context.Background(), token, "a long password", "a long password"); err != nil {
		t.Fatal(err)
	}
	tests[4].args[3], tests[4].want = "x-"+m[:8]+"@example.com", "already on the team"
	for _, tt := range tests {
		_, err := couponctl(t, append([]string{"user", "invite", "--json"}, tt.args...)...)
		if tt.usage != errors.As(err, new(usageError)) || err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}
