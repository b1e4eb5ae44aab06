-- Leads are stored as JSON documents beside the columns that are matched, ordered or
-- constrained on. Times are Unix milliseconds (UTC).
CREATE TABLE leads (
    id          TEXT PRIMARY KEY,
    email       TEXT,
    merged_into TEXT REFERENCES leads (id),
    version     INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    doc         TEXT NOT NULL
);

-- One surviving lead per email: exact-email matching is settled by the database, not by
-- luck.
CREATE UNIQUE INDEX leads_email ON leads (email) WHERE email IS NOT NULL AND merged_into IS NULL;

-- The inbox: every submission as received, before and after it is settled.
CREATE TABLE submissions (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    idempotency_key TEXT,
    received_at     INTEGER NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'processed', 'rejected')),
    lead_id         TEXT REFERENCES leads (id),
    outcome         TEXT CHECK (outcome IN ('created', 'merged')),
    error           TEXT
);

CREATE UNIQUE INDEX submissions_idempotency ON submissions (source, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX submissions_pending ON submissions (received_at) WHERE status = 'pending';

CREATE TABLE lead_history (
    id            INTEGER PRIMARY KEY,
    lead_id       TEXT NOT NULL REFERENCES leads (id),
    at            INTEGER NOT NULL,
    submission_id TEXT REFERENCES submissions (id),
    entry         TEXT NOT NULL
);

CREATE INDEX lead_history_lead ON lead_history (lead_id);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;
