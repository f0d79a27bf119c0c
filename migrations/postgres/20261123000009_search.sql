-- Profile search. Every profile is indexed as a set of terms, each a
-- namespaced normal form (`e:` email, `p:` E.164 phone, `l4:` last four
-- digits, `c:` platform customer id, `o:` order number, `n:` name token,
-- `nk:` whole name key, `h:` Han name, `f:`/`nf:` one-typo variants), so a
-- query is exact-term and prefix-range lookups on the primary key, never a
-- scan. `recency` (the profile's latest activity) sits in the key so a
-- term's most recent profiles come first without sorting. Terms compare
-- byte-wise (COLLATE "C"), as in SQLite, so a prefix is a key range.
CREATE TABLE search_terms (
    workspace_id TEXT NOT NULL,
    term         TEXT COLLATE "C" NOT NULL,
    recency      BIGINT NOT NULL,
    profile_id   TEXT NOT NULL,
    PRIMARY KEY (workspace_id, term, recency, profile_id)
);

-- What is indexed for each profile (terms joined by newlines), so that a
-- refresh writes only what changed and a forgotten profile's terms can be
-- deleted by key.
CREATE TABLE search_docs (
    profile_id   TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    recency      BIGINT NOT NULL,
    terms        TEXT NOT NULL
);
