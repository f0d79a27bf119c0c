-- Consent: one row per (identifier, channel), the most recent explicit
-- choice. Keyed by the identifier ("email:a@b.com", "phone:+86..."), not by
-- profile, so merges and splits carry it along without rewriting it.
CREATE TABLE consents (
    workspace_id  TEXT NOT NULL,
    identifier    TEXT NOT NULL,
    channel       TEXT NOT NULL,
    granted       BIGINT NOT NULL,
    source        TEXT NOT NULL,
    -- When the person made the choice (epoch ms); a later choice replaces it.
    chosen_at     BIGINT NOT NULL,
    recorded_at   BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, identifier, channel)
);

-- Per-workspace profile settings (source priority, trait thresholds) as JSON.
CREATE TABLE workspace_settings (
    workspace_id  TEXT PRIMARY KEY,
    settings      TEXT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- Workspace-wide statistics traits are scored against: the RFM quintile
-- boundaries and the main currency, recomputed by the periodic refresh.
CREATE TABLE trait_stats (
    workspace_id  TEXT PRIMARY KEY,
    stats         TEXT NOT NULL,
    computed_at   BIGINT NOT NULL
);
