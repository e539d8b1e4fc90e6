-- +goose Up
-- Foundation schema. Every tenant table carries merchant_id and every primary key, unique key and hot
-- index leads with it, so the schema can be distributed by merchant (Citus: merchants is the reference
-- of distribution, every other table is distributed on merchant_id and co-located).
SET lock_timeout = '10s';

-- Secrets the operator did not set, generated on first start (see config.Secrets).
CREATE TABLE system_secrets (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- A merchant and the hashes of its two keys. Keys carry the merchant id in clear
-- (cg_admin_<id>_<secret>), so a key lookup is a primary-key read followed by a constant-time
-- comparison of SHA-256 hashes: no index on secrets, nothing to enumerate.
CREATE TABLE merchants (
    id                  uuid PRIMARY KEY,
    name                text NOT NULL,
    api_key_hash        bytea NOT NULL,
    storefront_key_hash bytea NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE code_lists (
    merchant_id         uuid NOT NULL REFERENCES merchants (id) ON DELETE CASCADE,
    id                  uuid NOT NULL,
    name                text NOT NULL,
    description         text NOT NULL DEFAULT '',
    kind                text NOT NULL DEFAULT 'unique' CHECK (kind IN ('unique', 'fixed')),
    fixed_code          text,
    max_assignments     bigint,
    uses_per_code       integer NOT NULL DEFAULT 1 CHECK (uses_per_code >= 1),
    require_issued      boolean NOT NULL DEFAULT false,
    starts_at           timestamptz,
    expires_at          timestamptz,
    low_stock_threshold bigint NOT NULL DEFAULT 0 CHECK (low_stock_threshold >= 0),
    reassign_window     integer NOT NULL DEFAULT 86400 CHECK (reassign_window >= 0),
    case_insensitive    boolean NOT NULL DEFAULT false,
    archived_at         timestamptz,
    -- next free dense position for codes of this list (allocation walks positions in order)
    next_seq            bigint NOT NULL DEFAULT 1,
    next_batch          integer NOT NULL DEFAULT 1,
    next_import         integer NOT NULL DEFAULT 1,
    -- stock crossings: ok -> low -> out; each transition records one domain event
    stock_state         text NOT NULL DEFAULT 'ok' CHECK (stock_state IN ('ok', 'low', 'out')),
    expired_event_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX code_lists_created ON code_lists (merchant_id, created_at, id);
CREATE INDEX code_lists_expiring ON code_lists (expires_at) WHERE expires_at IS NOT NULL AND expired_event_at IS NULL;

-- Counts per list, spread over 64 shard rows: a writer adds its delta to a shard drawn at random,
-- as the last statement of its transaction, so concurrent allocations rarely queue on one row lock
-- (one shared row capped allocations at the rate of commits). The counts of a list are the sums over
-- its shards; every write that changes a code's state changes these in the same transaction.
CREATE TABLE list_counters (
    merchant_id uuid NOT NULL,
    list_id     uuid NOT NULL,
    shard       smallint NOT NULL,
    available   bigint NOT NULL DEFAULT 0,
    delivered   bigint NOT NULL DEFAULT 0,
    redeemed    bigint NOT NULL DEFAULT 0,
    removed     bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (merchant_id, list_id, shard),
    FOREIGN KEY (merchant_id, list_id) REFERENCES code_lists (merchant_id, id) ON DELETE CASCADE
) WITH (fillfactor = 50);

-- Codes. seq is the code's dense position in its list: allocation walks it. lookup is the code as
-- matched (lower-cased for case-insensitive lists) in byte order, so prefix search is an index range.
-- The unique key is (merchant_id, lookup, list_id), lookup before list: a storefront looks a code up
-- across the merchant's lists with one probe, and a point read by (merchant_id, list_id, seq) can
-- only be served by the primary key, whatever the statistics say (with list before lookup, a new
-- list that autoanalyze has not seen made the two indexes tie and allocations scan the list).
-- No foreign key to code_lists: a list delete removes its codes in the same transaction, and a foreign
-- key would cost every bulk insert a lookup.
CREATE TABLE codes (
    merchant_id           uuid NOT NULL,
    list_id               uuid NOT NULL,
    seq                   bigint NOT NULL,
    code                  text NOT NULL,
    lookup                text COLLATE "C" NOT NULL,
    state                 text NOT NULL DEFAULT 'available',
    uses                  integer NOT NULL DEFAULT 0,
    import_no             integer,
    batch_no              integer,
    available_from        timestamptz,
    available_till        timestamptz,
    issue_start           timestamptz,
    issue_end             timestamptz,
    recipient_external_id text,
    recipient_email       text,
    recipient_phone       text,
    campaign              text,
    delivered_at          timestamptz,
    redeemed_at           timestamptz,
    removed_at            timestamptz,
    hold_id               uuid,
    held_until            timestamptz,
    PRIMARY KEY (merchant_id, list_id, seq),
    CONSTRAINT codes_lookup_key UNIQUE (merchant_id, lookup, list_id)
) WITH (fillfactor = 70);
-- fillfactor 70 leaves room on every page for the new version of a row when it is delivered,
-- held or redeemed, so those updates stay HOT (no index touched): measured 98 % HOT and 17 % more
-- allocations per second than at 85, for 20 % more pages.

-- Every hand-out of a code: the delivered events of the timeline, the reassign-window lookup and the
-- recipient view all read this table.
CREATE TABLE allocations (
    merchant_id           uuid NOT NULL,
    id                    bigint GENERATED ALWAYS AS IDENTITY,
    list_id               uuid NOT NULL,
    seq                   bigint NOT NULL,
    recipient_key         text NOT NULL,
    recipient_external_id text,
    recipient_email       text,
    recipient_phone       text,
    campaign              text NOT NULL DEFAULT '',
    channel               text NOT NULL DEFAULT 'api',
    actor                 text NOT NULL,
    allocated_at          timestamptz NOT NULL DEFAULT now(),
    -- keyed by code, so a code's deliveries are one index range and no third index is needed
    PRIMARY KEY (merchant_id, list_id, seq, id)
);
CREATE INDEX allocations_recipient ON allocations (merchant_id, recipient_key, list_id, campaign, allocated_at DESC);

-- The rest of a code's timeline (the origin event comes from its import or batch, delivered events
-- from allocations).
CREATE TABLE code_events (
    merchant_id uuid NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    list_id     uuid NOT NULL,
    seq         bigint NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    type        text NOT NULL,
    actor       text NOT NULL,
    channel     text NOT NULL DEFAULT '',
    recipient   jsonb,
    order_ref   text NOT NULL DEFAULT '',
    details     jsonb,
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX code_events_code ON code_events (merchant_id, list_id, seq, at);

CREATE TABLE imports (
    merchant_id        uuid NOT NULL,
    id                 uuid NOT NULL,
    list_id            uuid NOT NULL,
    number             integer NOT NULL,
    status             text NOT NULL DEFAULT 'uploading'
        CHECK (status IN ('uploading', 'queued', 'running', 'succeeded', 'failed')),
    format             text NOT NULL CHECK (format IN ('csv', 'txt')),
    filename           text NOT NULL DEFAULT '',
    size_bytes         bigint NOT NULL DEFAULT 0,
    rows               bigint NOT NULL DEFAULT 0,
    imported           bigint NOT NULL DEFAULT 0,
    duplicates_in_file bigint NOT NULL DEFAULT 0,
    duplicates_in_list bigint NOT NULL DEFAULT 0,
    invalid            bigint NOT NULL DEFAULT 0,
    errors             jsonb NOT NULL DEFAULT '[]',
    error              text NOT NULL DEFAULT '',
    -- checkpoint: the data lines and input bytes fully processed; a restarted task resumes after them
    lines_done         bigint NOT NULL DEFAULT 0,
    bytes_done         bigint NOT NULL DEFAULT 0,
    actor              text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    finished_at        timestamptz,
    PRIMARY KEY (merchant_id, id),
    UNIQUE (merchant_id, list_id, number)
);
CREATE INDEX imports_pending ON imports (created_at) WHERE status IN ('uploading', 'queued', 'running');

-- The uploaded file, kept in PostgreSQL in 1 MiB pieces between the gateway and the worker so that
-- neither holds a whole file and any worker can pick the task up. Deleted when the import ends.
CREATE TABLE import_chunks (
    merchant_id uuid NOT NULL,
    import_id   uuid NOT NULL,
    n           integer NOT NULL,
    data        bytea NOT NULL,
    PRIMARY KEY (merchant_id, import_id, n)
);

CREATE TABLE batches (
    merchant_id uuid NOT NULL,
    list_id     uuid NOT NULL,
    number      integer NOT NULL,
    count       bigint NOT NULL,
    generated   bigint NOT NULL DEFAULT 0,
    prefix      text NOT NULL DEFAULT '',
    length      integer NOT NULL,
    charset     text NOT NULL,
    separator   text NOT NULL DEFAULT '-',
    status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    error       text NOT NULL DEFAULT '',
    exported    boolean NOT NULL DEFAULT false,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (merchant_id, list_id, number)
);
CREATE INDEX batches_pending ON batches (created_at) WHERE status IN ('queued', 'running');

-- Shops a merchant connected (Shopify, WooCommerce) and the lists pushed to them.
CREATE TABLE connections (
    merchant_id uuid NOT NULL,
    id          uuid NOT NULL,
    platform    text NOT NULL CHECK (platform IN ('shopify', 'woocommerce')),
    shop        text NOT NULL,
    state       text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'uninstalled', 'disconnected', 'error')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);

CREATE TABLE list_connections (
    merchant_id   uuid NOT NULL,
    list_id       uuid NOT NULL,
    connection_id uuid NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, list_id, connection_id)
);

-- Message templates that hand out a list's codes.
CREATE TABLE templates (
    merchant_id uuid NOT NULL,
    id          uuid NOT NULL,
    list_id     uuid NOT NULL,
    channel     text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX templates_list ON templates (merchant_id, list_id);

-- Domain events recorded by core (stock crossings, finished imports): an outbox that notifications
-- and outgoing webhooks deliver.
CREATE TABLE domain_events (
    merchant_id uuid NOT NULL,
    id          bigint GENERATED ALWAYS AS IDENTITY,
    type        text NOT NULL,
    list_id     uuid,
    payload     jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, id)
);
CREATE INDEX domain_events_list ON domain_events (merchant_id, list_id, id);

-- +goose Down
DROP TABLE domain_events, templates, list_connections, connections, batches, import_chunks, imports,
    code_events, allocations, codes, list_counters, code_lists, merchants, system_secrets;
