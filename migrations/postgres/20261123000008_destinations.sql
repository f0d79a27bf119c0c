-- Destinations: tools the hub keeps equal to its profiles. Each reads the
-- change feed from its own cursor under a lease, so several hubs on one
-- database never deliver the same batch twice.
CREATE TABLE destinations (
    id                   TEXT PRIMARY KEY,
    workspace_id         TEXT NOT NULL REFERENCES workspaces (id),
    kind                 TEXT NOT NULL,
    name                 TEXT NOT NULL,
    settings             TEXT NOT NULL,
    secrets              BYTEA NOT NULL,
    segment_id           TEXT,
    mapping              TEXT,
    status               TEXT NOT NULL DEFAULT 'active',
    cursor               BIGINT NOT NULL DEFAULT 0,
    lease_owner          TEXT,
    lease_until          BIGINT,
    next_run_at          BIGINT NOT NULL DEFAULT 0,
    attempts             BIGINT NOT NULL DEFAULT 0,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    breaker_open_until   BIGINT,
    last_success_at      BIGINT,
    last_error           TEXT,
    last_error_at        BIGINT,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    deleted_at           BIGINT
);
CREATE INDEX destinations_by_workspace ON destinations (workspace_id, created_at);

-- What each destination last received per profile: a hash to skip unchanged
-- contacts, and the email a later delete or merge names.
CREATE TABLE destination_contacts (
    destination_id TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    hash           TEXT NOT NULL,
    email          TEXT,
    delivered_at   BIGINT NOT NULL,
    PRIMARY KEY (destination_id, profile_id)
);

-- The per-record sync log: what was sent when, and how it went.
CREATE TABLE destination_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination_id TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    message_id     TEXT NOT NULL,
    op             TEXT NOT NULL,
    result         TEXT NOT NULL,
    error          TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX destination_log_by_profile ON destination_log (destination_id, profile_id, id);

-- Changes given up on after every retry; replayable.
CREATE TABLE destination_dead_letters (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    destination_id TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    change         TEXT NOT NULL,
    error          TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'dead',
    created_at     BIGINT NOT NULL,
    replayed_at    BIGINT
);
CREATE INDEX destination_dead_letters_by_destination ON destination_dead_letters (destination_id, status, id);
