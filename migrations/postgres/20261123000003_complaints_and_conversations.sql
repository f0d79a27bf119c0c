-- Complaints: a low review or a message in complaint terms, for staff to
-- follow up. Keyed by the record; the profile is the record's profile, so
-- merges and splits carry complaints along without rewriting this table.
CREATE TABLE complaints (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id   TEXT NOT NULL,
    connection_id  TEXT NOT NULL,
    record_kind    TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    severity       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    status         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    resolved_at    BIGINT,
    UNIQUE (connection_id, record_kind, external_id)
);
CREATE INDEX complaints_by_workspace ON complaints (workspace_id, status, id);

-- Messages' channel and conversation, so a timeline can be filtered and
-- grouped by them. Other records take their connection's platform as channel.
ALTER TABLE source_records ADD COLUMN channel TEXT;
ALTER TABLE source_records ADD COLUMN conversation_id TEXT;
CREATE INDEX source_records_by_conversation ON source_records (profile_id, conversation_id, occurred_at);
