package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

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

// toCore turns a row into the stored user: active once a password is set.
func (r userRow) toCore() core.StoredUser {
	u := core.StoredUser{User: core.User{
		MerchantID: r.MerchantID, ID: r.ID, Email: r.Email, Role: core.Role(r.Role), CreatedAt: r.CreatedAt.UTC(), InvitedBy: r.InvitedBy,
	}}
	if r.PasswordHash != nil {
		u.PasswordHash, u.Active = *r.PasswordHash, true
	}
	return u
}

// LoginOf implements core.UserStore: the address's sign-in route (dashboard_logins, unique across
// merchants) and the person it leads to.
func (db *DB) LoginOf(ctx context.Context, emailLower string) (core.StoredUser, bool, error) {
	var r userRow
	err := db.gorm.WithContext(ctx).Table("dashboard_logins l").Select("u.*").
		Joins("JOIN dashboard_users u ON u.merchant_id = l.merchant_id AND u.id = l.user_id").
		Where("l.email_lower = ? AND u.removed_at IS NULL", emailLower).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return core.StoredUser{}, false, nil
	}
	if err != nil {
		return core.StoredUser{}, false, fmt.Errorf("db: login of: %w", err)
	}
	return r.toCore(), true, nil
}

// GetUser implements core.UserStore.
func (db *DB) GetUser(ctx context.Context, merchantID, userID uuid.UUID) (core.User, error) {
	var r userRow
	if err := db.gorm.WithContext(ctx).Take(&r, "merchant_id = ? AND id = ? AND removed_at IS NULL", merchantID, userID).Error; err != nil {
		return core.User{}, notFound(err, core.ErrUserNotFound)
	}
	return r.toCore().User, nil
}

// ListUsers implements core.UserStore, oldest first. A team is small (people, not codes), so it
// comes in one piece.
func (db *DB) ListUsers(ctx context.Context, merchantID uuid.UUID) ([]core.User, error) {
	var rows []userRow
	if err := db.gorm.WithContext(ctx).Where("merchant_id = ? AND removed_at IS NULL", merchantID).
		Order("created_at, id").Limit(1000).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("db: list users: %w", err)
	}
	out := make([]core.User, len(rows))
	for i, r := range rows {
		out[i] = r.toCore().User
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

// CreateSession implements core.UserStore: the person's expired and idle sessions go in the same
// transaction.
func (db *DB) CreateSession(ctx context.Context, s core.Session) error {
	row := sessionRow{
		MerchantID: s.MerchantID, IDHash: s.IDHash, UserID: s.UserID, CSRFToken: s.CSRFToken,
		CreatedAt: s.CreatedAt.UTC(), LastSeenAt: s.LastSeenAt.UTC(), ExpiresAt: s.ExpiresAt.UTC(),
	}
	err := db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Where("merchant_id = ? AND user_id = ? AND (expires_at <= ? OR last_seen_at <= ?)",
			s.MerchantID, s.UserID, row.CreatedAt, row.CreatedAt.Add(-core.SessionIdle)).Delete(&sessionRow{}).Error; err != nil {
			return err
		}
		return tx.Create(&row).Error
	})
	if err != nil {
		return fmt.Errorf("db: create session: %w", err)
	}
	return nil
}

// sessionUserRow is a session joined with its user: the user's columns and the session's own
// under session_ names.
type sessionUserRow struct {
	User              userRow   `gorm:"embedded"`
	SessionUserID     uuid.UUID `gorm:"column:session_user_id"`
	SessionCSRFToken  string    `gorm:"column:session_csrf_token"`
	SessionCreatedAt  time.Time `gorm:"column:session_created_at"`
	SessionLastSeenAt time.Time `gorm:"column:session_last_seen_at"`
	SessionExpiresAt  time.Time `gorm:"column:session_expires_at"`
}

// SessionUser implements core.UserStore.
func (db *DB) SessionUser(ctx context.Context, merchantID uuid.UUID, idHash []byte) (core.Session, core.User, error) {
	var r sessionUserRow
	err := db.gorm.WithContext(ctx).Table("dashboard_sessions s").
		Select(`u.*, s.user_id AS session_user_id, s.csrf_token AS session_csrf_token, s.created_at AS session_created_at,
			s.last_seen_at AS session_last_seen_at, s.expires_at AS session_expires_at`).
		Joins("JOIN dashboard_users u ON u.merchant_id = s.merchant_id AND u.id = s.user_id").
		Where("s.merchant_id = ? AND s.id_hash = ? AND u.removed_at IS NULL", merchantID, idHash).Take(&r).Error
	if err != nil {
		return core.Session{}, core.User{}, notFound(err, core.ErrSessionExpired)
	}
	s := core.Session{
		MerchantID: merchantID, IDHash: idHash, UserID: r.SessionUserID, CSRFToken: r.SessionCSRFToken,
		CreatedAt: r.SessionCreatedAt.UTC(), LastSeenAt: r.SessionLastSeenAt.UTC(), ExpiresAt: r.SessionExpiresAt.UTC(),
	}
	return s, r.User.toCore().User, nil
}

// TouchSession implements core.UserStore: last_seen_at only moves forward.
func (db *DB) TouchSession(ctx context.Context, merchantID uuid.UUID, idHash []byte, lastSeen time.Time) error {
	if err := db.gorm.WithContext(ctx).Model(&sessionRow{}).
		Where("merchant_id = ? AND id_hash = ? AND last_seen_at < ?", merchantID, idHash, lastSeen.UTC()).
		Update("last_seen_at", lastSeen.UTC()).Error; err != nil {
		return fmt.Errorf("db: touch session: %w", err)
	}
	return nil
}

// DeleteSession implements core.UserStore.
func (db *DB) DeleteSession(ctx context.Context, merchantID uuid.UUID, idHash []byte) error {
	if err := db.gorm.WithContext(ctx).Where("merchant_id = ? AND id_hash = ?", merchantID, idHash).
		Delete(&sessionRow{}).Error; err != nil {
		return fmt.Errorf("db: delete session: %w", err)
	}
	return nil
}
