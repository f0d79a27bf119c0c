-- The identity graph. A profile is a connected component of records joined
-- by shared keys and by the links below; every link says why (rule, score,
-- evidence) and when, so a profile can be explained and taken apart again.
CREATE TABLE identity_links (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id   TEXT NOT NULL,
    a_connection   TEXT NOT NULL,
    a_kind         TEXT NOT NULL,
    a_external     TEXT NOT NULL,
    b_connection   TEXT NOT NULL,
    b_kind         TEXT NOT NULL,
    b_external     TEXT NOT NULL,
    -- key:email, key:phone, key:customer_id, key:wechat_unionid, model, manual
    rule           TEXT NOT NULL,
    score          REAL,
    evidence       TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    removed_at     BIGINT,
    removed_reason TEXT
);
CREATE INDEX identity_links_by_a ON identity_links (a_connection, a_kind, a_external);
CREATE INDEX identity_links_by_b ON identity_links (b_connection, b_kind, b_external);

-- Pairs of records a person said are different people (a rejected
-- suggestion, a split). No rule joins them again.
CREATE TABLE cannot_links (
    workspace_id   TEXT NOT NULL,
    a_connection   TEXT NOT NULL,
    a_kind         TEXT NOT NULL,
    a_external     TEXT NOT NULL,
    b_connection   TEXT NOT NULL,
    b_kind         TEXT NOT NULL,
    b_external     TEXT NOT NULL,
    reason         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (a_connection, a_kind, a_external, b_connection, b_kind, b_external)
);
CREATE INDEX cannot_links_by_b ON cannot_links (b_connection, b_kind, b_external);

-- Key values that do not link: configured by the operator, unlinked by a
-- person, or detected because they would join implausibly many people.
CREATE TABLE protected_values (
    workspace_id   TEXT NOT NULL,
    key_kind       TEXT NOT NULL,
    key_value      TEXT NOT NULL,
    source         TEXT NOT NULL,
    reason         TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (workspace_id, key_kind, key_value)
);

-- The match model's parameters per workspace, learnt from its own records
-- (expectation maximisation, no labels) by `shophub resolve rebuild`.
CREATE TABLE resolver_params (
    workspace_id   TEXT PRIMARY KEY,
    params         TEXT NOT NULL,
    estimated_at   BIGINT NOT NULL
);
