-- Identity resolution: each lead's blocking keys, so a new submission is compared only
-- with leads sharing a key; and the review queue of possible duplicates with the
-- decisions people made.

-- A derived index, written only together with its lead in one transaction; a merged-away
-- lead has no keys. Each row carries the lead's compact match record, so a lookup is one
-- range scan of this table: reading the record from the leads table meant walking the
-- document's overflow pages for every candidate. No foreign key, on purpose: each checked
-- insert keeps a statement journal, and a lead has several keys.
CREATE TABLE lead_keys (
    key     TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (key, lead_id)
) WITHOUT ROWID;

CREATE INDEX lead_keys_lead ON lead_keys (lead_id);

CREATE TABLE duplicate_reviews (
    id           TEXT PRIMARY KEY,
    lead_id      TEXT NOT NULL REFERENCES leads (id),
    candidate_id TEXT NOT NULL REFERENCES leads (id),
    score        REAL NOT NULL,
    evidence     TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('open', 'merged', 'distinct')),
    created_at   INTEGER NOT NULL,
    decided_at   INTEGER,
    UNIQUE (lead_id, candidate_id)
);

CREATE INDEX duplicate_reviews_open ON duplicate_reviews (created_at) WHERE status = 'open';
