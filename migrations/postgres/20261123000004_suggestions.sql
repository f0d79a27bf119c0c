-- Merge suggestions: evidence that two profiles may be one person, for a
-- person to accept (merge) or reject. `profile_a` < `profile_b`, so a pair is
-- suggested once however often the evidence recurs.
CREATE TABLE suggestions (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    profile_a     TEXT NOT NULL,
    profile_b     TEXT NOT NULL,
    reason        TEXT NOT NULL,
    evidence      TEXT NOT NULL,
    status        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    decided_at    BIGINT,
    UNIQUE (workspace_id, profile_a, profile_b)
);
CREATE INDEX suggestions_by_workspace ON suggestions (workspace_id, status, id);

-- Finding the order a message mentions, whichever connection it came from.
CREATE INDEX source_records_by_external_id ON source_records (workspace_id, kind, external_id);
