package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/coupongate/coupongate/core"
)

// userColumns are the columns scanUser reads, from dashboard_users aliased u.
const userColumns = `u.merchant_id, u.id, u.email, u.role, u.password_hash, u.created_at, u.invited_by`

func scanUser(row pgx.Row, extra ...any) (core.StoredUser, error) {
	var u core.StoredUser
	var hash *string
	dest := append([]any{&u.MerchantID, &u.ID, &u.Email, &u.Role, &hash, &u.CreatedAt, &u.InvitedBy}, extra...)
	if err := row.Scan(dest...); err != nil {
		return core.StoredUser{}, err
	}
	u.CreatedAt = u.CreatedAt.UTC()
	if hash != nil {
		u.PasswordHash, u.Active = *hash, true
	}
	return u, nil
}

// InviteUser implements core.UserStore. The address's sign-in route is locked first; two invites
// of a new address racing each other meet on its primary key, and the loser runs again to give
// the answer the winner's row calls for.
func (db *DB) InviteUser(ctx context.Context, u core.User, inv core.Invite) (core.User, error) {
	for attempt := 0; ; attempt++ {
		out, err := db.inviteUser(ctx, u, inv)
		if err != nil && isUniqueViolation(err) && attempt < 2 {
			continue
		}
		return out, err
	}
}

func (db *DB) inviteUser(ctx context.Context, u core.User, inv core.Invite) (core.User, error) {
	email := u.Email // core lower-cases it
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var routeMerchant, routeUser uuid.UUID
		err := tx.QueryRow(ctx, `SELECT merchant_id, user_id FROM dashboard_logins WHERE email_lower = $1 FOR UPDATE`, email).
			Scan(&routeMerchant, &routeUser)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO dashboard_users (merchant_id, id, email, role, created_at, invited_by)
				VALUES ($1, $2, $3, $4, $5, $6)`, u.MerchantID, u.ID, email, u.Role, u.CreatedAt, u.InvitedBy); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO dashboard_logins (email_lower, merchant_id, user_id) VALUES ($1, $2, $3)`,
				email, u.MerchantID, u.ID); err != nil {
				return err
			}
		case err != nil:
			return err
		case routeMerchant != u.MerchantID:
			return core.ErrEmailTaken
		default:
			existing, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM dashboard_users u
				WHERE u.merchant_id = $1 AND u.id = $2 FOR UPDATE`, routeMerchant, routeUser))
			if err != nil {
				return err
			}
			if existing.Active {
				return core.ErrAlreadyMember
			}
			// Invited again before accepting: the new role counts and only the newest link works.
			if _, err := tx.Exec(ctx, `UPDATE dashboard_users SET role = $3 WHERE merchant_id = $1 AND id = $2`,
				u.MerchantID, existing.ID, u.Role); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM dashboard_invites WHERE merchant_id = $1 AND user_id = $2 AND used_at IS NULL`,
				u.MerchantID, existing.ID); err != nil {
				return err
			}
			existing.Role = u.Role
			u = existing.User
		}
		_, err = tx.Exec(ctx, `INSERT INTO dashboard_invites (merchant_id, token_hash, user_id, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5)`, inv.MerchantID, inv.TokenHash, u.ID, inv.CreatedAt, inv.ExpiresAt)
		return err
	})
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) {
			return core.User{}, err
		}
		return core.User{}, fmt.Errorf("db: invite user: %w", err)
	}
	return u, nil
}

const inviteQuery = `SELECT i.merchant_id, i.token_hash, i.user_id, i.created_at, i.expires_at, i.used_at, ` + userColumns + `
	FROM dashboard_invites i JOIN dashboard_users u ON u.merchant_id = i.merchant_id AND u.id = i.user_id
	WHERE i.merchant_id = $1 AND i.token_hash = $2 AND u.removed_at IS NULL`

func scanInvite(row pgx.Row) (core.Invite, core.StoredUser, error) {
	var inv core.Invite
	var hash *string
	var u core.StoredUser
	err := row.Scan(&inv.MerchantID, &inv.TokenHash, &inv.UserID, &inv.CreatedAt, &inv.ExpiresAt, &inv.UsedAt,
		&u.MerchantID, &u.ID, &u.Email, &u.Role, &hash, &u.CreatedAt, &u.InvitedBy)
	if err != nil {
		return core.Invite{}, core.StoredUser{}, err
	}
	inv.CreatedAt, inv.ExpiresAt, inv.UsedAt = inv.CreatedAt.UTC(), inv.ExpiresAt.UTC(), ptrUTC(inv.UsedAt)
	u.CreatedAt = u.CreatedAt.UTC()
	if hash != nil {
		u.PasswordHash, u.Active = *hash, true
	}
	return inv, u, nil
}

// GetInvite implements core.UserStore.
func (db *DB) GetInvite(ctx context.Context, merchantID uuid.UUID, tokenHash []byte) (core.Invite, core.User, error) {
	inv, u, err := scanInvite(db.pool.QueryRow(ctx, inviteQuery, merchantID, tokenHash))
	if err != nil {
		return core.Invite{}, core.User{}, notFound(err, core.ErrInviteInvalid)
	}
	return inv, u.User, nil
}

// AcceptInvite implements core.UserStore.
func (db *DB) AcceptInvite(ctx context.Context, merchantID uuid.UUID, tokenHash []byte, decide func(inv *core.Invite, u *core.StoredUser) error) (core.User, error) {
	var out core.User
	err := db.tx(ctx, func(tx pgx.Tx) error {
		inv, u, err := scanInvite(tx.QueryRow(ctx, inviteQuery+` FOR UPDATE OF i, u`, merchantID, tokenHash))
		if err != nil {
			return notFound(err, core.ErrInviteInvalid)
		}
		if err := decide(&inv, &u); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE dashboard_invites SET used_at = $3 WHERE merchant_id = $1 AND token_hash = $2`,
			merchantID, tokenHash, inv.UsedAt); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE dashboard_users SET password_hash = $3 WHERE merchant_id = $1 AND id = $2`,
			merchantID, u.ID, u.PasswordHash); err != nil {
			return err
		}
		out = u.User
		return nil
	})
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) {
			return core.User{}, err
		}
		return core.User{}, fmt.Errorf("db: accept invite: %w", err)
	}
	return out, nil
}

// LoginOf implements core.UserStore.
func (db *DB) LoginOf(ctx context.Context, emailLower string) (core.StoredUser, bool, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM dashboard_logins l
		JOIN dashboard_users u ON u.merchant_id = l.merchant_id AND u.id = l.user_id
		WHERE l.email_lower = $1 AND u.removed_at IS NULL`, emailLower))
	if errors.Is(err, pgx.ErrNoRows) {
		return core.StoredUser{}, false, nil
	}
	if err != nil {
		return core.StoredUser{}, false, fmt.Errorf("db: login of: %w", err)
	}
	return u, true, nil
}

// GetUser implements core.UserStore.
func (db *DB) GetUser(ctx context.Context, merchantID, userID uuid.UUID) (core.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM dashboard_users u
		WHERE u.merchant_id = $1 AND u.id = $2 AND u.removed_at IS NULL`, merchantID, userID))
	if err != nil {
		return core.User{}, notFound(err, core.ErrUserNotFound)
	}
	return u.User, nil
}

// ListUsers implements core.UserStore. A team is small (people, not codes), so it comes in one
// piece.
func (db *DB) ListUsers(ctx context.Context, merchantID uuid.UUID) ([]core.User, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+userColumns+` FROM dashboard_users u
		WHERE u.merchant_id = $1 AND u.removed_at IS NULL ORDER BY u.created_at, u.id LIMIT 1000`, merchantID)
	if err != nil {
		return nil, fmt.Errorf("db: list users: %w", err)
	}
	defer rows.Close()
	out := []core.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("db: list users: %w", err)
		}
		out = append(out, u.User)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: list users: %w", err)
	}
	return out, nil
}

// RemoveUser implements core.UserStore. The merchant's owners are locked in id order, so two
// owners removing each other at once cannot both succeed.
func (db *DB) RemoveUser(ctx context.Context, merchantID, userID uuid.UUID, now time.Time, decide func(target core.User, activeOwners int) error) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		var activeOwners int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT id FROM dashboard_users
			WHERE merchant_id = $1 AND role = 'owner' AND removed_at IS NULL AND password_hash IS NOT NULL
			ORDER BY id FOR UPDATE) o`, merchantID).Scan(&activeOwners); err != nil {
			return err
		}
		target, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM dashboard_users u
			WHERE u.merchant_id = $1 AND u.id = $2 AND u.removed_at IS NULL FOR UPDATE`, merchantID, userID))
		if err != nil {
			return notFound(err, core.ErrUserNotFound)
		}
		if err := decide(target.User, activeOwners); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE dashboard_users SET removed_at = $3 WHERE merchant_id = $1 AND id = $2`,
			merchantID, userID, now); err != nil {
			return err
		}
		for _, table := range []string{"dashboard_logins", "dashboard_sessions", "dashboard_invites"} {
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE merchant_id = $1 AND user_id = $2`, merchantID, userID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		var ce *core.Error
		if errors.As(err, &ce) {
			return err
		}
		return fmt.Errorf("db: remove user: %w", err)
	}
	return nil
}

// CreateSession implements core.UserStore.
func (db *DB) CreateSession(ctx context.Context, s core.Session) error {
	err := db.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM dashboard_sessions WHERE merchant_id = $1 AND user_id = $2
			AND (expires_at <= $3 OR last_seen_at <= $3 - $4::interval)`,
			s.MerchantID, s.UserID, s.CreatedAt, fmt.Sprintf("%d seconds", int64(core.SessionIdle/time.Second))); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO dashboard_sessions (merchant_id, id_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, s.MerchantID, s.IDHash, s.UserID, s.CSRFToken, s.CreatedAt, s.LastSeenAt, s.ExpiresAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("db: create session: %w", err)
	}
	return nil
}

// SessionUser implements core.UserStore.
func (db *DB) SessionUser(ctx context.Context, merchantID uuid.UUID, idHash []byte) (core.Session, core.User, error) {
	var s core.Session
	u, err := scanUser(db.pool.QueryRow(ctx, `SELECT `+userColumns+`, s.merchant_id, s.id_hash, s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at
		FROM dashboard_sessions s JOIN dashboard_users u ON u.merchant_id = s.merchant_id AND u.id = s.user_id
		WHERE s.merchant_id = $1 AND s.id_hash = $2 AND u.removed_at IS NULL`, merchantID, idHash),
		&s.MerchantID, &s.IDHash, &s.UserID, &s.CSRFToken, &s.CreatedAt, &s.LastSeenAt, &s.ExpiresAt)
	if err != nil {
		return core.Session{}, core.User{}, notFound(err, core.ErrSessionExpired)
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = s.CreatedAt.UTC(), s.LastSeenAt.UTC(), s.ExpiresAt.UTC()
	return s, u.User, nil
}

// TouchSession implements core.UserStore.
func (db *DB) TouchSession(ctx context.Context, merchantID uuid.UUID, idHash []byte, lastSeen time.Time) error {
	if _, err := db.pool.Exec(ctx, `UPDATE dashboard_sessions SET last_seen_at = $3
		WHERE merchant_id = $1 AND id_hash = $2 AND last_seen_at < $3`, merchantID, idHash, lastSeen); err != nil {
		return fmt.Errorf("db: touch session: %w", err)
	}
	return nil
}

// DeleteSession implements core.UserStore.
func (db *DB) DeleteSession(ctx context.Context, merchantID uuid.UUID, idHash []byte) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM dashboard_sessions WHERE merchant_id = $1 AND id_hash = $2`, merchantID, idHash); err != nil {
		return fmt.Errorf("db: delete session: %w", err)
	}
	return nil
}
