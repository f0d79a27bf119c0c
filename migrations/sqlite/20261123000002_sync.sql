-- Polling: one stream per (connection, resource), plus backfill streams
-- (`backfill:orders`). The cursor is committed in the same transaction as
-- the records of the page that produced it.
CREATE TABLE sync_streams (
    connection_id    TEXT NOT NULL REFERENCES connections (id),
    stream           TEXT NOT NULL,
    workspace_id     TEXT NOT NULL,
    cursor           TEXT NOT NULL,
    since            BIGINT,
    watermark        BIGINT,
    caught_up        BIGINT NOT NULL DEFAULT 0,
    records          BIGINT NOT NULL DEFAULT 0,
    pages            BIGINT NOT NULL DEFAULT 0,
    started_at       BIGINT NOT NULL,
    last_success_at  BIGINT,
    last_error       TEXT,
    last_error_at    BIGINT,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (connection_id, stream)
);

-- `needs_reauth` stops all calls to the platform until new credentials arrive.
ALTER TABLE connections ADD COLUMN auth_status TEXT NOT NULL DEFAULT 'ok';
ALTER TABLE connections ADD COLUMN auth_error TEXT;
-- One poller per connection across hub processes.
ALTER TABLE connections ADD COLUMN sync_lease_owner TEXT;
ALTER TABLE connections ADD COLUMN sync_lease_until BIGINT;
ALTER TABLE connections ADD COLUMN next_sync_at BIGINT;
CREATE INDEX connections_due_sync ON connections (next_sync_at);

-- OAuth install flows in progress: the `state` nonce names the connection.
CREATE TABLE oauth_states (
    state          TEXT PRIMARY KEY,
    connection_id  TEXT NOT NULL REFERENCES connections (id),
    created_at     BIGINT NOT NULL
);
