-- +goose Up
-- The dashboard's people: users of a merchant with a role, the invites that let them set a
-- password, and their server-side sessions. Every key leads with merchant_id, except
-- dashboard_logins, which routes a sign-in's email address to its merchant and user (one account
-- per address across the gateway).
SET lock_timeout = '10s';

CREATE TABLE dashboard_users (
    merchant_id   uuid        NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    id            uuid        NOT NULL,
    email         text        NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
    role          text        NOT NULL CHECK (role IN ('owner', 'staff')),
    -- NULL until the person accepts the invite and sets a password.
    password_hash text,
    created_at    timestamptz NOT NULL,
    invited_by    uuid,
    removed_at    timestamptz,
    PRIMARY KEY (merchant_id, id)
);
-- One current user per address in a merchant; a removed user's address can be invited again.
CREATE UNIQUE INDEX dashboard_users_email ON dashboard_users (merchant_id, lower(email)) WHERE removed_at IS NULL;

CREATE TABLE dashboard_logins (
    email_lower text PRIMARY KEY,
    merchant_id uuid NOT NULL,
    user_id     uuid NOT NULL,
    FOREIGN KEY (merchant_id, user_id) REFERENCES dashboard_users (merchant_id, id) ON DELETE CASCADE
);

CREATE TABLE dashboard_invites (
    merchant_id uuid        NOT NULL,
    token_hash  bytea       NOT NULL,
    user_id     uuid        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    PRIMARY KEY (merchant_id, token_hash),
    FOREIGN KEY (merchant_id, user_id) REFERENCES dashboard_users (merchant_id, id) ON DELETE CASCADE
);
CREATE INDEX dashboard_invites_user ON dashboard_invites (merchant_id, user_id);

CREATE TABLE dashboard_sessions (
    merchant_id  uuid        NOT NULL,
    id_hash      bytea       NOT NULL,
    user_id      uuid        NOT NULL,
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (merchant_id, id_hash),
    FOREIGN KEY (merchant_id, user_id) REFERENCES dashboard_users (merchant_id, id) ON DELETE CASCADE
);
CREATE INDEX dashboard_sessions_user ON dashboard_sessions (merchant_id, user_id);

-- +goose Down
SET lock_timeout = '10s';
DROP TABLE dashboard_sessions;
DROP TABLE dashboard_invites;
DROP TABLE dashboard_logins;
DROP TABLE dashboard_users;
