-- Manual tags a person put on a profile; they follow the profile on merge.
CREATE TABLE profile_tags (
    profile_id  TEXT NOT NULL,
    tag         TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (profile_id, tag)
);

-- A person's own time zone (a UTC offset such as +08:00) for quiet hours.
CREATE TABLE profile_timezones (
    profile_id  TEXT PRIMARY KEY,
    utc_offset  TEXT NOT NULL
);

-- Saved segments. Deleted ones keep their row (deleted_at) so members can
-- still be told they left, and so the cache stamp sees the change.
CREATE TABLE segments (
    id            TEXT PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    name          TEXT NOT NULL,
    filter        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT
);
CREATE INDEX segments_by_workspace ON segments (workspace_id, updated_at);

CREATE TABLE segment_members (
    segment_id  TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    entered_at  BIGINT NOT NULL,
    PRIMARY KEY (segment_id, profile_id)
);
CREATE INDEX segment_members_by_profile ON segment_members (profile_id);

-- Yearly dates of a profile (birthday, membership anniversary) by MM-DD,
-- so the daily sweep reads only today's people.
CREATE TABLE profile_dates (
    profile_id    TEXT NOT NULL,
    workspace_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    date          TEXT NOT NULL,
    month_day     TEXT NOT NULL,
    PRIMARY KEY (profile_id, kind)
);
CREATE INDEX profile_dates_by_day ON profile_dates (workspace_id, month_day);

-- Care triggers: detected (pending), then released by the sweep as fired or
-- suppressed. The dedupe key makes each trigger happen once.
CREATE TABLE care_triggers (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id  TEXT NOT NULL,
    profile_id    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    dedupe_key    TEXT NOT NULL,
    details       TEXT NOT NULL,
    status        TEXT NOT NULL,
    reason        TEXT,
    due_at        BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    fired_at      BIGINT,
    UNIQUE (workspace_id, dedupe_key)
);
CREATE INDEX care_triggers_due ON care_triggers (workspace_id, status, due_at);
CREATE INDEX care_triggers_fired ON care_triggers (profile_id, fired_at);

-- Orders by time, for the pending-payment sweep.
CREATE INDEX source_records_by_kind_time ON source_records (workspace_id, kind, occurred_at);
