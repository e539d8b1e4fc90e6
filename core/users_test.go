package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

// testParams make argon2id cheap enough for table tests.
var testParams = PasswordParams{Memory: 64, Time: 1, Threads: 1}

// memUsers is an in-memory UserStore with the store's rules.
type memUsers struct {
	mu       sync.Mutex
	users    map[uuid.UUID]*StoredUser
	removed  map[uuid.UUID]bool
	logins   map[string]uuid.UUID // email → user
	invites  map[string]*Invite   // string(hash) → invite
	sessions map[string]*Session
	touches  int
}

func newMemUsers() *memUsers {
	return &memUsers{users: map[uuid.UUID]*StoredUser{}, removed: map[uuid.UUID]bool{}, logins: map[string]uuid.UUID{},
		invites: map[string]*Invite{}, sessions: map[string]*Session{}}
}

func (m *memUsers) InviteUser(_ context.Context, u User, inv Invite) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if id, ok := m.logins[u.Email]; ok {
		existing := m.users[id]
		switch {
		case existing.MerchantID != u.MerchantID:
			return User{}, ErrEmailTaken
		case existing.Active:
			return User{}, ErrAlreadyMember
		}
		existing.Role = u.Role
		for k, i := range m.invites {
			if i.UserID == id && i.UsedAt == nil {
				delete(m.invites, k)
			}
		}
		u = existing.User
	} else {
		m.users[u.ID] = &StoredUser{User: u}
		m.logins[u.Email] = u.ID
	}
	inv.UserID = u.ID
	m.invites[string(inv.TokenHash)] = &inv
	return u, nil
}

func (m *memUsers) GetInvite(_ context.Context, merchantID uuid.UUID, hash []byte) (Invite, User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invites[string(hash)]
	if !ok || inv.MerchantID != merchantID || m.removed[inv.UserID] {
		return Invite{}, User{}, ErrInviteInvalid
	}
	return *inv, m.users[inv.UserID].User, nil
}

func (m *memUsers) AcceptInvite(_ context.Context, merchantID uuid.UUID, hash []byte, decide func(*Invite, *StoredUser) error) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	inv, ok := m.invites[string(hash)]
	if !ok || inv.MerchantID != merchantID || m.removed[inv.UserID] {
		return User{}, ErrInviteInvalid
	}
	i, u := *inv, *m.users[inv.UserID]
	if err := decide(&i, &u); err != nil {
		return User{}, err
	}
	*inv, *m.users[inv.UserID] = i, u
	return u.User, nil
}

func (m *memUsers) LoginOf(_ context.Context, email string) (StoredUser, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	id, ok := m.logins[email]
	if !ok {
		return StoredUser{}, false, nil
	}
	return *m.users[id], true, nil
}

func (m *memUsers) GetUser(_ context.Context, merchantID, id uuid.UUID) (User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok || u.MerchantID != merchantID || m.removed[id] {
		return User{}, ErrUserNotFound
	}
	return u.User, nil
}

func (m *memUsers) ListUsers(_ context.Context, merchantID uuid.UUID) ([]User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []User
	for id, u := range m.users {
		if u.MerchantID == merchantID && !m.removed[id] {
			out = append(out, u.User)
		}
	}
	return out, nil
}

func (m *memUsers) RemoveUser(_ context.Context, merchantID, id uuid.UUID, _ time.Time, decide func(User, int) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.users[id]
	if !ok || u.MerchantID != merchantID || m.removed[id] {
		return ErrUserNotFound
	}
	owners := 0
	for oid, o := range m.users {
		if o.MerchantID == merchantID && !m.removed[oid] && o.Role == RoleOwner && o.Active {
			owners++
		}
	}
	if err := decide(u.User, owners); err != nil {
		return err
	}
	m.removed[id] = true
	delete(m.logins, u.Email)
	for k, s := range m.sessions {
		if s.UserID == id {
			delete(m.sessions, k)
		}
	}
	for k, i := range m.invites {
		if i.UserID == id {
			delete(m.invites, k)
		}
	}
	return nil
}

func (m *memUsers) CreateSession(_ context.Context, s Session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions[string(s.IDHash)] = &s
	return nil
}

func (m *memUsers) SessionUser(_ context.Context, merchantID uuid.UUID, hash []byte) (Session, User, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[string(hash)]
	if !ok || s.MerchantID != merchantID || m.removed[s.UserID] {
		return Session{}, User{}, ErrSessionExpired
	}
	return *s, m.users[s.UserID].User, nil
}

func (m *memUsers) TouchSession(_ context.Context, _ uuid.UUID, hash []byte, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.touches++
	if s, ok := m.sessions[string(hash)]; ok {
		s.LastSeenAt = at
	}
	return nil
}

func (m *memUsers) DeleteSession(_ context.Context, _ uuid.UUID, hash []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sessions, string(hash))
	return nil
}

// memLimiter blocks a client after limit failures (no window: tests run in one).
type memLimiter struct {
	mu    sync.Mutex
	limit int
	fails map[string]int
}

func (l *memLimiter) Blocked(_ context.Context, merchantID uuid.UUID, client string) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fails[merchantID.String()+client] >= l.limit {
		return time.Minute, nil
	}
	return 0, nil
}

func (l *memLimiter) Fail(_ context.Context, merchantID uuid.UUID, client string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fails[merchantID.String()+client]++
	return nil
}

// clock is a settable now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type usersFixture struct {
	users   *Users
	store   *memUsers
	limiter *memLimiter
	clock   *clock
	merch   uuid.UUID
}

func newUsersFixture(t *testing.T) *usersFixture {
	t.Helper()
	f := &usersFixture{store: newMemUsers(), limiter: &memLimiter{limit: SignInFailures, fails: map[string]int{}},
		clock: &clock{t: time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC)}, merch: uuid.New()}
	f.users = NewUsers(f.store, f.limiter, testParams, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.users.SetClock(f.clock.now)
	return f
}

// member invites email with role and accepts with password, returning the signed-in session.
func (f *usersFixture) member(t *testing.T, email string, role Role, password string) SignedIn {
	t.Helper()
	_, token, err := f.users.Invite(context.Background(), f.merch, InviteInput{Email: email, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.users.AcceptInvite(context.Background(), token, password, password)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPasswordHash(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery", testParams)
	if err != nil {
		t.Fatal(err)
	}
	h2, _ := HashPassword("correct horse battery", testParams)
	if h == h2 || !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hashes %q and %q: want salted argon2id PHC strings", h, h2)
	}
	parts := strings.Split(h, "$")
	tests := []struct {
		name, password, encoded string
		want                    bool
	}{
		{"the password", "correct horse battery", h, true},
		{"another password", "correct horse batterY", h, false},
		{"empty password", "", h, false},
		{"not a PHC string", "correct horse battery", "plain", false},
		{"bcrypt", "correct horse battery", "$2a$10$abcdefghijklmnopqrstuv", false},
		{"argon2i", "correct horse battery", strings.Replace(h, "argon2id", "argon2i", 1), false},
		{"absurd memory", "correct horse battery", strings.Join([]string{"", parts[1], parts[2], "m=99999999,t=1,p=1", parts[4], parts[5]}, "$"), false},
		{"salt not base64", "correct horse battery", strings.Join([]string{"", parts[1], parts[2], parts[3], "!!", parts[5]}, "$"), false},
		{"hash cut short", "correct horse battery", strings.Join([]string{"", parts[1], parts[2], parts[3], parts[4], parts[5][:10]}, "$"), false},
	}
	for _, tt := range tests {
		if got := CheckPassword(tt.password, tt.encoded); got != tt.want {
			t.Errorf("%s: CheckPassword = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestInviteChecksItsInput(t *testing.T) {
	t.Parallel()
	f := newUsersFixture(t)
	ctx := context.Background()
	tests := []struct {
		name  string
		in    InviteInput
		field string
	}{
		{"no address", InviteInput{Email: "", Role: RoleOwner}, "email"},
		{"not an address", InviteInput{Email: "ann", Role: RoleOwner}, "email"},
		{"a display name", InviteInput{Email: "Ann <ann@example.com>", Role: RoleOwner}, "email"},
		{"no dot in the domain", InviteInput{Email: "ann@localhost", Role: RoleOwner}, "email"},
		{"no role", InviteInput{Email: "ann@example.com"}, "role"},
		{"an unknown role", InviteInput{Email: "ann@example.com", Role: "admin"}, "role"},
	}
	for _, tt := range tests {
		_, _, err := f.users.Invite(ctx, f.merch, tt.in)
		var ce *Error
		if !errors.As(err, &ce) || ce.Kind != KindInvalid || ce.Details[0].Field != tt.field {
			t.Errorf("%s: %v, want an invalid %s", tt.name, err, tt.field)
		}
	}
	u, token, err := f.users.Invite(ctx, f.merch, InviteInput{Email: "  Ann@Example.COM ", Role: RoleStaff})
	if err != nil || u.Email != "ann@example.com" || u.Role != RoleStaff || u.Active {
		t.Fatalf("invite: %+v %v", u, err)
	}
	if !strings.HasPrefix(token, f.merch.String()+".") || len(token) != 36+1+43 {
		t.Fatalf("token %q: want <merchant id>.<43 base64url characters>", token)
	}
	if got := InviteLink("https://cg.example.com/", token); got != "https://cg.example.com/app/invite/"+token {
		t.Fatalf("InviteLink = %q", got)
	}
	// The store keeps only the hash.
	for h := range f.store.invites {
		if strings.Contains(h, token) || bytes.Contains([]byte(h), []byte(token[37:])) {
			t.Fatal("the invite token is stored in clear")
		}
	}
}

func TestAcceptInvite(t *testing.T) {
	t.Parallel()
	const good = "a long enough passphrase"
	tests := []struct {
		name      string
		token     func(f *usersFixture, token string) string
		before    func(f *usersFixture)
		password  string
		confirm   string
		wantErr   error
		wantField string
	}{
		{name: "a fresh link", password: good, confirm: good},
		{name: "71 hours later", before: func(f *usersFixture) { f.clock.add(71 * time.Hour) }, password: good, confirm: good},
		{name: "72 hours later", before: func(f *usersFixture) { f.clock.add(InviteTTL) }, password: good, confirm: good, wantErr: ErrInviteInvalid},
		{name: "a password of 11 characters", password: "elevenchars", confirm: "elevenchars", wantField: "password"},
		{name: "the two passwords differ", password: good, confirm: good + "!", wantField: "password_confirm"},
		{name: "a token of another merchant", token: func(_ *usersFixture, tok string) string { return uuid.NewString() + tok[36:] },
			password: good, confirm: good, wantErr: ErrInviteInvalid},
		{name: "a malformed token", token: func(_ *usersFixture, tok string) string { return tok[:40] }, password: good, confirm: good, wantErr: ErrInviteInvalid},
		{name: "an altered token", token: func(_ *usersFixture, tok string) string { return tok[:len(tok)-2] + "AA" }, password: good, confirm: good, wantErr: ErrInviteInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newUsersFixture(t)
			ctx := context.Background()
			_, token, err := f.users.Invite(ctx, f.merch, InviteInput{Email: "ann@example.com", Role: RoleOwner})
			if err != nil {
				t.Fatal(err)
			}
			if tt.token != nil {
				token = tt.token(f, token)
			}
			if tt.before != nil {
				tt.before(f)
			}
			s, err := f.users.AcceptInvite(ctx, token, tt.password, tt.confirm)
			switch {
			case tt.wantField != "":
				var ce *Error
				if !errors.As(err, &ce) || ce.Kind != KindInvalid || ce.Details[0].Field != tt.wantField {
					t.Fatalf("%v, want an invalid %s", err, tt.wantField)
				}
				return
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("%v, want %v", err, tt.wantErr)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if !s.User.Active || s.User.Email != "ann@example.com" || s.Token == "" || s.Session.CSRFToken == "" {
				t.Fatalf("signed in: %+v", s)
			}
			// The link works once.
			if _, err := f.users.CheckInvite(ctx, token); !errors.Is(err, ErrInviteInvalid) {
				t.Fatalf("check after use: %v", err)
			}
			if _, err := f.users.AcceptInvite(ctx, token, tt.password, tt.confirm); !errors.Is(err, ErrInviteInvalid) {
				t.Fatalf("second use: %v", err)
			}
			// The password now signs in.
			if _, err := f.users.SignIn(ctx, SignInInput{Email: "ANN@example.com", Password: tt.password, Client: "192.0.2.1"}); err != nil {
				t.Fatalf("sign in with the new password: %v", err)
			}
		})
	}
}

func TestInviteAgain(t *testing.T) {
	t.Parallel()
	f := newUsersFixture(t)
	ctx := context.Background()
	first, oldToken, err := f.users.Invite(ctx, f.merch, InviteInput{Email: "bo@example.com", Role: RoleStaff})
	if err != nil {
		t.Fatal(err)
	}
	// Before acceptance, a new invite replaces the link and may change the role.
	again, newToken, err := f.users.Invite(ctx, f.merch, InviteInput{Email: "bo@example.com", Role: RoleOwner})
	if err != nil || again.ID != first.ID || again.Role != RoleOwner {
		t.Fatalf("invite again: %+v %v", again, err)
	}
	if _, err := f.users.CheckInvite(ctx, oldToken); !errors.Is(err, ErrInviteInvalid) {
		t.Fatalf("the replaced link: %v", err)
	}
	if _, err := f.users.AcceptInvite(ctx, newToken, "twelve chars!", "twelve chars!"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		merch   uuid.UUID
		email   string
		wantErr error
	}{
		{"an active member", f.merch, "BO@example.com", ErrAlreadyMember},
		{"another merchant's member", uuid.New(), "bo@example.com", ErrEmailTaken},
	}
	for _, tt := range tests {
		if _, _, err := f.users.Invite(ctx, tt.merch, InviteInput{Email: tt.email, Role: RoleStaff}); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.wantErr)
		}
	}
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	f := newUsersFixture(t)
	ctx := context.Background()
	const pw = "the right password"
	f.member(t, "ann@example.com", RoleOwner, pw)
	if _, _, err := f.users.Invite(ctx, f.merch, InviteInput{Email: "pending@example.com", Role: RoleStaff}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		email    string
		password string
		ok       bool
	}{
		{"the right password", "ann@example.com", pw, true},
		{"the address in other case, with spaces", " Ann@Example.com ", pw, true},
		{"a wrong password", "ann@example.com", pw + "x", false},
		{"an empty password", "ann@example.com", "", false},
		{"an unknown address", "nobody@example.com", pw, false},
		{"an invited person who set no password", "pending@example.com", "", false},
		{"a password far too long", "ann@example.com", strings.Repeat("x", 5000), false},
	}
	for _, tt := range tests {
		s, err := f.users.SignIn(ctx, SignInInput{Email: tt.email, Password: tt.password, Client: "198.51.100." + tt.name})
		if tt.ok {
			if err != nil || s.User.Email != "ann@example.com" || s.Token == "" {
				t.Errorf("%s: %+v %v", tt.name, s, err)
			}
			continue
		}
		// Every refusal is the same error, whatever was wrong.
		if err != ErrSignInFailed {
			t.Errorf("%s: %v, want exactly ErrSignInFailed", tt.name, err)
		}
	}
	// Each sign-in is a new session.
	a, _ := f.users.SignIn(ctx, SignInInput{Email: "ann@example.com", Password: pw, Client: "203.0.113.9"})
	b, _ := f.users.SignIn(ctx, SignInInput{Email: "ann@example.com", Password: pw, Client: "203.0.113.9"})
	if a.Token == b.Token || bytes.Equal(a.Session.IDHash, b.Session.IDHash) || a.Session.CSRFToken == b.Session.CSRFToken {
		t.Fatal("two sign-ins share a session")
	}
}

func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	const pw = "the right password"
	tests := []struct {
		name string
		// fail makes the failures; then the right password from client must be refused (or not).
		fail    func(f *usersFixture)
		client  string
		limited bool
	}{
		{"nine failures from one address", func(f *usersFixture) { failN(f, 9, "ann@example.com", "192.0.2.7") }, "192.0.2.7", false},
		{"ten failures from one address", func(f *usersFixture) { failN(f, 10, "ann@example.com", "192.0.2.7") }, "192.0.2.7", true},
		{"ten failures for the account from many addresses", func(f *usersFixture) {
			for i := range 10 {
				failN(f, 1, "ann@example.com", "192.0.2."+string(rune('a'+i)))
			}
		}, "203.0.113.50", true},
		{"ten failures from the address for unknown accounts", func(f *usersFixture) {
			for i := range 10 {
				failN(f, 1, string(rune('a'+i))+"@example.com", "192.0.2.8")
			}
		}, "192.0.2.8", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newUsersFixture(t)
			f.member(t, "ann@example.com", RoleOwner, pw)
			tt.fail(f)
			_, err := f.users.SignIn(context.Background(), SignInInput{Email: "ann@example.com", Password: pw, Client: tt.client})
			var ce *Error
			limited := errors.As(err, &ce) && ce.Kind == KindRateLimited && ce.RetryAfter > 0
			if limited != tt.limited || (!tt.limited && err != nil) {
				t.Fatalf("sign-in: %v, want limited=%v", err, tt.limited)
			}
		})
	}
}

func failN(f *usersFixture, n int, email, client string) {
	for range n {
		_, _ = f.users.SignIn(context.Background(), SignInInput{Email: email, Password: "wrong password!", Client: client})
	}
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []time.Duration // uses of the session, each after this long
		ok    bool
	}{
		{"used at once", []time.Duration{0}, true},
		{"idle 11 hours 59", []time.Duration{SessionIdle - time.Minute}, true},
		{"idle 12 hours", []time.Duration{SessionIdle}, false},
		{"used every 11 hours for six days", repeat(11*time.Hour, 13), true},
		{"used every 11 hours past seven days", repeat(11*time.Hour, 16), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newUsersFixture(t)
			s := f.member(t, "ann@example.com", RoleOwner, "a fine password")
			var err error
			for _, d := range tt.steps {
				f.clock.add(d)
				if _, err = f.users.Session(context.Background(), s.Token); err != nil {
					break
				}
			}
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrSessionExpired)) {
				t.Fatalf("session: %v, want ok=%v", err, tt.ok)
			}
			if !tt.ok && len(f.store.sessions) != 0 {
				t.Fatal("an expired session was kept")
			}
		})
	}
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func TestSessionTouchAndSignOut(t *testing.T) {
	t.Parallel()
	f := newUsersFixture(t)
	ctx := context.Background()
	s := f.member(t, "ann@example.com", RoleOwner, "a fine password")
	f.clock.add(30 * time.Second)
	got, err := f.users.Session(ctx, s.Token)
	if err != nil || got.User.ID != s.User.ID || got.Session.CSRFToken != s.Session.CSRFToken || f.store.touches != 0 {
		t.Fatalf("session after 30 s: %+v %v, %d touches", got, err, f.store.touches)
	}
	f.clock.add(time.Minute)
	if got, err = f.users.Session(ctx, s.Token); err != nil || f.store.touches != 1 || !got.Session.LastSeenAt.Equal(f.clock.now()) {
		t.Fatalf("session after 90 s: %+v %v, %d touches", got, err, f.store.touches)
	}
	for _, bad := range []string{"", "x", s.Token + "x", uuid.NewString() + s.Token[36:]} {
		if _, err := f.users.Session(ctx, bad); !errors.Is(err, ErrSessionExpired) {
			t.Errorf("session %q: %v", bad, err)
		}
	}
	if err := f.users.SignOut(ctx, s.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := f.users.Session(ctx, s.Token); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("after sign-out: %v", err)
	}
	if err := f.users.SignOut(ctx, "garbage"); err != nil {
		t.Fatalf("signing out a garbage cookie: %v", err)
	}
}

func TestRemoveUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T, f *usersFixture) uuid.UUID // returns who to remove
		wantErr error
	}{
		{"the only owner", func(t *testing.T, f *usersFixture) uuid.UUID {
			return f.member(t, "o@example.com", RoleOwner, "owner password").User.ID
		}, ErrLastOwner},
		{"the only owner, with staff and an invited owner", func(t *testing.T, f *usersFixture) uuid.UUID {
			o := f.member(t, "o@example.com", RoleOwner, "owner password")
			f.member(t, "s@example.com", RoleStaff, "staff password")
			if _, _, err := f.users.Invite(context.Background(), f.merch, InviteInput{Email: "p@example.com", Role: RoleOwner}); err != nil {
				t.Fatal(err)
			}
			return o.User.ID
		}, ErrLastOwner},
		{"one of two owners", func(t *testing.T, f *usersFixture) uuid.UUID {
			f.member(t, "o@example.com", RoleOwner, "owner password")
			return f.member(t, "o2@example.com", RoleOwner, "owner password").User.ID
		}, nil},
		{"staff", func(t *testing.T, f *usersFixture) uuid.UUID {
			f.member(t, "o@example.com", RoleOwner, "owner password")
			return f.member(t, "s@example.com", RoleStaff, "staff password").User.ID
		}, nil},
		{"an invited owner who set no password", func(t *testing.T, f *usersFixture) uuid.UUID {
			f.member(t, "o@example.com", RoleOwner, "owner password")
			u, _, err := f.users.Invite(context.Background(), f.merch, InviteInput{Email: "p@example.com", Role: RoleOwner})
			if err != nil {
				t.Fatal(err)
			}
			return u.ID
		}, nil},
		{"nobody", func(t *testing.T, f *usersFixture) uuid.UUID { return uuid.New() }, ErrUserNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newUsersFixture(t)
			id := tt.setup(t, f)
			err := f.users.Remove(context.Background(), f.merch, id)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("remove: %v, want %v", err, tt.wantErr)
			}
			_, getErr := f.users.Get(context.Background(), f.merch, id)
			if removed := errors.Is(getErr, ErrUserNotFound); removed != (tt.wantErr == nil || tt.wantErr == ErrUserNotFound) {
				t.Fatalf("after remove: %v", getErr)
			}
		})
	}
}

func TestRemovedUserIsSignedOut(t *testing.T) {
	t.Parallel()
	f := newUsersFixture(t)
	ctx := context.Background()
	f.member(t, "o@example.com", RoleOwner, "owner password")
	s := f.member(t, "s@example.com", RoleStaff, "staff password")
	if err := f.users.Remove(ctx, f.merch, s.User.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.users.Session(ctx, s.Token); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("the removed person's session: %v", err)
	}
	if _, err := f.users.SignIn(ctx, SignInInput{Email: "s@example.com", Password: "staff password", Client: "192.0.2.1"}); err != ErrSignInFailed {
		t.Fatalf("the removed person signs in: %v", err)
	}
	// The address can be invited again, as a new person.
	u, _, err := f.users.Invite(ctx, f.merch, InviteInput{Email: "s@example.com", Role: RoleStaff})
	if err != nil || u.ID == s.User.ID {
		t.Fatalf("invite the removed address again: %+v %v", u, err)
	}
}
