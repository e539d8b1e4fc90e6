package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Role is what a dashboard user may do.
type Role string

// Roles. Owners do everything; staff look codes up and mark them used.
const (
	RoleOwner Role = "owner"
	RoleStaff Role = "staff"
)

// Lifetimes of the dashboard's credentials.
const (
	// InviteTTL is how long an invite link works (once).
	InviteTTL = 72 * time.Hour
	// SessionIdle ends a session nobody used for this long.
	SessionIdle = 12 * time.Hour
	// SessionLifetime ends every session this long after sign-in.
	SessionLifetime = 7 * 24 * time.Hour
	// sessionTouchEvery is how stale last_seen_at may get before a request writes it again.
	sessionTouchEvery = time.Minute
)

// Sign-in throttling: after SignInFailures failed sign-ins in SignInWindow, from one client address
// or for one account, sign-ins answer 429 until the window ends.
const (
	SignInFailures = 10
	SignInWindow   = 15 * time.Minute
)

// User is a person who signs in to a merchant's dashboard.
type User struct {
	MerchantID uuid.UUID
	ID         uuid.UUID
	Email      string
	Role       Role
	// Active is true once the person accepted the invite and set a password.
	Active    bool
	CreatedAt time.Time
	// InvitedBy is the user who sent the invite; nil when the operator did (couponctl) or the
	// merchant from inside the Shopify admin.
	InvitedBy *uuid.UUID
}

// StoredUser is a user with the password hash, as the store keeps it.
type StoredUser struct {
	User
	PasswordHash string
}

// Invite is a one-time link that lets a person set a password.
type Invite struct {
	MerchantID uuid.UUID
	UserID     uuid.UUID
	TokenHash  []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     *time.Time
}

// Session is a signed-in browser. Only the hash of its id is stored; CSRFToken is what every
// state-changing form of the session must carry.
type Session struct {
	MerchantID uuid.UUID
	IDHash     []byte
	UserID     uuid.UUID
	CSRFToken  string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// SignedIn is a session with its user. Token, the cookie value, is set only when the session was
// just created.
type SignedIn struct {
	Session Session
	User    User
	Token   string
}

// UserStore keeps dashboard users, invites and sessions.
type UserStore interface {
	// InviteUser stores inv for the user at u.Email in u.MerchantID: a new user u (with its
	// sign-in route) when the address has none, or the user already invited there who has not set
	// a password yet (its role becomes u.Role and its older invites stop working). It returns the
	// user the invite is for; ErrEmailTaken when the address belongs to another merchant's user,
	// ErrAlreadyMember when it belongs to an active user of this merchant.
	InviteUser(ctx context.Context, u User, inv Invite) (User, error)
	// GetInvite returns the invite with that hash and its user, or ErrInviteInvalid when there is
	// none or its user was removed.
	GetInvite(ctx context.Context, merchantID uuid.UUID, tokenHash []byte) (Invite, User, error)
	// AcceptInvite locks the invite and its user, lets decide check them and set inv.UsedAt and
	// the user's PasswordHash, and saves both.
	AcceptInvite(ctx context.Context, merchantID uuid.UUID, tokenHash []byte, decide func(inv *Invite, u *StoredUser) error) (User, error)
	// LoginOf finds the current user who signs in with this lower-cased address.
	LoginOf(ctx context.Context, emailLower string) (StoredUser, bool, error)
	// GetUser returns a current user or ErrUserNotFound.
	GetUser(ctx context.Context, merchantID, userID uuid.UUID) (User, error)
	// ListUsers returns the merchant's current users, oldest first.
	ListUsers(ctx context.Context, merchantID uuid.UUID) ([]User, error)
	// RemoveUser locks the merchant's owners and the user, lets decide refuse, then marks the user
	// removed at now and deletes its sign-in route, sessions and invites. ErrUserNotFound when
	// there is no such current user.
	RemoveUser(ctx context.Context, merchantID, userID uuid.UUID, now time.Time, decide func(target User, activeOwners int) error) error
	// CreateSession stores s (and drops the user's sessions that ran out).
	CreateSession(ctx context.Context, s Session) error
	// SessionUser returns the session with that hash and its current user, or ErrSessionExpired.
	SessionUser(ctx context.Context, merchantID uuid.UUID, idHash []byte) (Session, User, error)
	// TouchSession records that the session was used at lastSeen.
	TouchSession(ctx context.Context, merchantID uuid.UUID, idHash []byte, lastSeen time.Time) error
	// DeleteSession removes the session; removing one that is gone is not an error.
	DeleteSession(ctx context.Context, merchantID uuid.UUID, idHash []byte) error
}

// Errors of the dashboard's people.
var (
	ErrSignInFailed = newError(KindUnauthorized, "sign_in_failed",
		"The email address or the password is not right.")
	ErrSessionExpired = newError(KindUnauthorized, "session_expired",
		"You are signed out: your session ended or was closed. Sign in again.")
	ErrInviteInvalid = newError(KindNotFound, "invite_not_valid",
		"This invite link does not work: it was used already, it is more than 72 hours old, or a newer invite replaced it. Ask an owner of the team for a new link.")
	ErrUserNotFound = newError(KindNotFound, "user_not_found",
		"No such person on this team.")
	ErrEmailTaken = newError(KindConflict, "email_taken",
		"This email address already signs in to another merchant's dashboard; each address can belong to one team only. Use another address.")
	ErrAlreadyMember = newError(KindConflict, "already_member",
		"This person is already on the team.")
	ErrLastOwner = newError(KindConflict, "last_owner",
		"This is the team's last owner, who cannot be removed. Invite another owner first.")
	ErrOwnersOnly = newError(KindForbidden, "owners_only",
		"Only an owner of the team can open this page or do this. Ask an owner if you need it.")
)

// signInRateLimited is the 429 of a throttled sign-in.
func signInRateLimited(wait time.Duration) *Error {
	return &Error{Kind: KindRateLimited, Code: "rate_limited", RetryAfter: wait,
		Message: "Too many failed sign-ins from here or for this account. Wait a few minutes, then try again."}
}

// InviteInput is who to invite.
type InviteInput struct {
	Email string
	Role  Role
	// InvitedBy is the inviting user, nil for the operator or a Shopify admin user.
	InvitedBy *uuid.UUID
}

// SignInInput is a sign-in attempt.
type SignInInput struct {
	Email    string
	Password string
	// Client is the caller's address, for throttling.
	Client string
}

// Users manages the dashboard's people: invites, passwords, sessions and the team.
type Users struct {
	store   UserStore
	limiter FailureLimiter
	params  PasswordParams
	log     *slog.Logger
	Clock

	dummyOnce sync.Once
	dummy     string
}

// NewUsers returns the service. limiter throttles sign-ins (SignInFailures per SignInWindow);
// params are the argon2id costs of new password hashes.
func NewUsers(store UserStore, limiter FailureLimiter, params PasswordParams, log *slog.Logger) *Users {
	return &Users{store: store, limiter: limiter, params: params, log: log}
}

// InviteLink is the address of an invite: APP_URL/app/invite/<token>.
func InviteLink(appURL, token string) string {
	return strings.TrimRight(appURL, "/") + "/app/invite/" + token
}

// NormalizeEmail returns the address trimmed and lower-cased, or an Invalid error for field.
func NormalizeEmail(field, email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if a, err := mail.ParseAddress(e); err != nil || a.Address != e || len(e) > 254 || !strings.Contains(e[strings.LastIndexByte(e, '@')+1:], ".") {
		return "", Invalid(field, "Enter an email address such as name@example.com.")
	}
	return e, nil
}

// Invite makes an invite for email in the merchant's team and returns the user and the link's
// token (shown once; only its hash is kept). Inviting an address again before it was accepted
// replaces the earlier link.
func (s *Users) Invite(ctx context.Context, merchantID uuid.UUID, in InviteInput) (User, string, error) {
	email, err := NormalizeEmail("email", in.Email)
	if err != nil {
		return User{}, "", err
	}
	if in.Role != RoleOwner && in.Role != RoleStaff {
		return User{}, "", Invalid("role", "Choose owner or staff.")
	}
	now := s.Now().UTC()
	token := newSecretToken(merchantID)
	u := User{MerchantID: merchantID, ID: uuid.New(), Email: email, Role: in.Role, CreatedAt: now, InvitedBy: in.InvitedBy}
	inv := Invite{MerchantID: merchantID, TokenHash: hashToken(token), CreatedAt: now, ExpiresAt: now.Add(InviteTTL)}
	u, err = s.store.InviteUser(ctx, u, inv)
	if err != nil {
		return User{}, "", err
	}
	return u, token, nil
}

// CheckInvite returns the user an invite link is for while the link still works.
func (s *Users) CheckInvite(ctx context.Context, token string) (User, error) {
	merchantID, ok := tokenMerchant(token)
	if !ok {
		return User{}, ErrInviteInvalid
	}
	inv, u, err := s.store.GetInvite(ctx, merchantID, hashToken(token))
	if err != nil {
		return User{}, err
	}
	if err := inviteUsable(inv, s.Now()); err != nil {
		return User{}, err
	}
	return u, nil
}

func inviteUsable(inv Invite, now time.Time) error {
	if inv.UsedAt != nil || !now.Before(inv.ExpiresAt) {
		return ErrInviteInvalid
	}
	return nil
}

// AcceptInvite sets the person's password (given twice) through a working invite link, uses the
// link up and signs the person in.
func (s *Users) AcceptInvite(ctx context.Context, token, password, confirm string) (SignedIn, error) {
	merchantID, ok := tokenMerchant(token)
	if !ok {
		return SignedIn{}, ErrInviteInvalid
	}
	if err := checkNewPassword(password, confirm); err != nil {
		return SignedIn{}, err
	}
	hash, err := HashPassword(password, s.params)
	if err != nil {
		return SignedIn{}, err
	}
	u, err := s.store.AcceptInvite(ctx, merchantID, hashToken(token), func(inv *Invite, u *StoredUser) error {
		now := s.Now().UTC()
		if err := inviteUsable(*inv, now); err != nil {
			return err
		}
		inv.UsedAt = &now
		u.PasswordHash = hash
		u.Active = true
		return nil
	})
	if err != nil {
		return SignedIn{}, err
	}
	return s.startSession(ctx, u)
}

// SignIn checks an email address and password and starts a session. An unknown address, a person
// who has not set a password yet and a wrong password get the same answer after the same work;
// every failure counts against the client address and the account.
func (s *Users) SignIn(ctx context.Context, in SignInInput) (SignedIn, error) {
	email := strings.ToLower(strings.TrimSpace(in.Email))
	keys := []string{"signin-addr:" + in.Client, "signin-account:" + accountKey(email)}
	for _, k := range keys {
		wait, err := s.limiter.Blocked(ctx, uuid.Nil, k)
		if err != nil {
			s.log.WarnContext(ctx, "sign-in limiter unavailable", "err", err)
		} else if wait > 0 {
			return SignedIn{}, signInRateLimited(wait)
		}
	}
	stored, found, err := s.store.LoginOf(ctx, email)
	if err != nil {
		return SignedIn{}, err
	}
	encoded := stored.PasswordHash
	if !found || encoded == "" || len(in.Password) > 4*MaxPasswordLength {
		encoded = s.dummyHash()
	}
	ok := CheckPassword(in.Password, encoded) && found && stored.PasswordHash != ""
	if !ok {
		for _, k := range keys {
			if err := s.limiter.Fail(ctx, uuid.Nil, k); err != nil {
				s.log.WarnContext(ctx, "sign-in failure not counted", "err", err)
			}
		}
		return SignedIn{}, ErrSignInFailed
	}
	return s.startSession(ctx, stored.User)
}

// dummyHash is a hash of nothing anyone types, checked for unknown addresses so that they take as
// long as known ones.
func (s *Users) dummyHash() string {
	s.dummyOnce.Do(func() {
		h, err := HashPassword(hex.EncodeToString(randomBytes(16)), s.params)
		if err != nil {
			panic(err) // crypto/rand failed
		}
		s.dummy = h
	})
	return s.dummy
}

// accountKey names an account in the limiter without writing the address into Redis.
func accountKey(emailLower string) string {
	sum := sha256.Sum256([]byte(emailLower))
	return hex.EncodeToString(sum[:16])
}

// startSession creates a new session (a new id at every sign-in) for u.
func (s *Users) startSession(ctx context.Context, u User) (SignedIn, error) {
	now := s.Now().UTC()
	token := newSecretToken(u.MerchantID)
	sess := Session{MerchantID: u.MerchantID, IDHash: hashToken(token), UserID: u.ID,
		CSRFToken: base64.RawURLEncoding.EncodeToString(randomBytes(32)),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(SessionLifetime)}
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return SignedIn{}, err
	}
	return SignedIn{Session: sess, User: u, Token: token}, nil
}

// Session returns the signed-in session of a cookie value: ErrSessionExpired when it is unknown,
// unused for SessionIdle, older than SessionLifetime, or its user was removed. A use is recorded
// at most once a minute.
func (s *Users) Session(ctx context.Context, token string) (SignedIn, error) {
	merchantID, ok := tokenMerchant(token)
	if !ok {
		return SignedIn{}, ErrSessionExpired
	}
	hash := hashToken(token)
	sess, u, err := s.store.SessionUser(ctx, merchantID, hash)
	if err != nil {
		return SignedIn{}, err
	}
	now := s.Now().UTC()
	if !now.Before(sess.ExpiresAt) || !now.Before(sess.LastSeenAt.Add(SessionIdle)) {
		if err := s.store.DeleteSession(ctx, merchantID, hash); err != nil {
			s.log.WarnContext(ctx, "expired session not deleted", "err", err)
		}
		return SignedIn{}, ErrSessionExpired
	}
	if now.Sub(sess.LastSeenAt) >= sessionTouchEvery {
		if err := s.store.TouchSession(ctx, merchantID, hash, now); err != nil {
			return SignedIn{}, err
		}
		sess.LastSeenAt = now
	}
	return SignedIn{Session: sess, User: u}, nil
}

// SignOut ends the session of a cookie value; an unknown or malformed one is already signed out.
func (s *Users) SignOut(ctx context.Context, token string) error {
	merchantID, ok := tokenMerchant(token)
	if !ok {
		return nil
	}
	return s.store.DeleteSession(ctx, merchantID, hashToken(token))
}

// Team returns the merchant's people, oldest first, invited ones included (Active false).
func (s *Users) Team(ctx context.Context, merchantID uuid.UUID) ([]User, error) {
	return s.store.ListUsers(ctx, merchantID)
}

// Get returns one person of the team.
func (s *Users) Get(ctx context.Context, merchantID, userID uuid.UUID) (User, error) {
	return s.store.GetUser(ctx, merchantID, userID)
}

// Remove takes a person off the team: their sessions end and their invite links stop working at
// once. The last owner who has set a password cannot be removed.
func (s *Users) Remove(ctx context.Context, merchantID, userID uuid.UUID) error {
	return s.store.RemoveUser(ctx, merchantID, userID, s.Now().UTC(), func(target User, activeOwners int) error {
		if target.Role == RoleOwner && target.Active && activeOwners <= 1 {
			return ErrLastOwner
		}
		return nil
	})
}

// newSecretToken is "<merchant id>.<32 random bytes, base64url>": the merchant id routes the
// lookup to the merchant's rows, the random part is the secret.
func newSecretToken(merchantID uuid.UUID) string {
	return merchantID.String() + "." + base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// tokenMerchant reads the merchant id of a session or invite token of the right shape.
func tokenMerchant(token string) (uuid.UUID, bool) {
	id, secret, ok := strings.Cut(token, ".")
	if !ok || len(id) != 36 || len(secret) != 43 {
		return uuid.Nil, false
	}
	if _, err := base64.RawURLEncoding.Strict().DecodeString(secret); err != nil {
		return uuid.Nil, false
	}
	m, err := uuid.Parse(id)
	return m, err == nil
}

// hashToken is the stored form of a session or invite token.
func hashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return b
}
