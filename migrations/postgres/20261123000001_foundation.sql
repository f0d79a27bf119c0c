-- Foundation schema. Timestamps are Unix epoch milliseconds (BIGINT) and JSON
-- documents are TEXT, so both backends store and compare them the same way.

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    key_hash      TEXT NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    revoked_at    BIGINT
);

CREATE TABLE connections (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    platform      TEXT NOT NULL,
    name          TEXT NOT NULL,
    settings      TEXT NOT NULL,
    secrets       BYTEA NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX connections_by_workspace ON connections (workspace_id, created_at);

-- The durable inbox doubles as the work queue: a delivery is pending until a
-- worker's transaction applies its effects and marks it done, atomically.
CREATE TABLE inbox (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id   TEXT NOT NULL,
    connection_id  TEXT NOT NULL REFERENCES connections (id),
    platform       TEXT NOT NULL,
    topic          TEXT NOT NULL,
    dedupe_key     TEXT NOT NULL,
    body           BYTEA NOT NULL,
    received_at    BIGINT NOT NULL,
    status         TEXT NOT NULL,
    attempts       BIGINT NOT NULL DEFAULT 0,
    available_at   BIGINT NOT NULL,
    lease_token    TEXT,
    lease_until    BIGINT,
    last_error     TEXT,
    processed_at   BIGINT,
    UNIQUE (connection_id, dedupe_key)
);
CREATE INDEX inbox_claimable ON inbox (status, available_at);
CREATE INDEX inbox_by_workspace ON inbox (workspace_id, status, id);

CREATE TABLE profiles (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL REFERENCES workspaces (id),
    merged_into   TEXT,
    view          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX profiles_by_workspace ON profiles (workspace_id);
CREATE INDEX profiles_by_merged_into ON profiles (merged_into);

CREATE TABLE source_records (
    workspace_id   TEXT NOT NULL,
    connection_id  TEXT NOT NULL REFERENCES connections (id),
    kind           TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    version        BIGINT NOT NULL,
    occurred_at    BIGINT NOT NULL,
    data           TEXT NOT NULL,
    profile_id     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    PRIMARY KEY (connection_id, kind, external_id)
);
CREATE INDEX source_records_by_profile ON source_records (profile_id, occurred_at);

-- Which identity keys each record carries. A key's profile is the profile of
-- the records that carry it, so lookups by email or phone are one indexed join.
CREATE TABLE record_keys (
    workspace_id   TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    record_kind    TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    key_kind       TEXT NOT NULL,
    key_scope      TEXT NOT NULL,
    key_value      TEXT NOT NULL,
    PRIMARY KEY (connection_id, record_kind, external_id, key_kind, key_scope, key_value)
);
CREATE INDEX record_keys_by_key ON record_keys (workspace_id, key_kind, key_value, key_scope);

CREATE TABLE changes (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    profile_id    TEXT NOT NULL,
    data          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX changes_by_workspace ON changes (workspace_id, seq);
