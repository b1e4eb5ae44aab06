-- The whole schema of the SQLite migrations 0001-0003, for PostgreSQL. Leads, payloads,
-- history entries and match records are JSONB documents beside the columns that are
-- matched, ordered or constrained on.

CREATE TABLE leads (
    id          uuid PRIMARY KEY,
    email       text,
    merged_into uuid REFERENCES leads (id),
    version     bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    doc         jsonb NOT NULL
);

-- One surviving lead per email: even if two instances raced past their locks, only one
-- creation could commit.
CREATE UNIQUE INDEX leads_email ON leads (email) WHERE email IS NOT NULL AND merged_into IS NULL;
CREATE INDEX leads_merged_into ON leads (merged_into) WHERE merged_into IS NOT NULL;

-- The inbox: every submission as received, before and after it is settled.
CREATE TABLE submissions (
    id              uuid PRIMARY KEY,
    source          text NOT NULL,
    idempotency_key text,
    received_at     timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    status          text NOT NULL CHECK (status IN ('pending', 'processed', 'rejected')),
    lead_id         uuid REFERENCES leads (id),
    outcome         text CHECK (outcome IN ('created', 'merged')),
    -- Quarantine reasons as JSON, or a settling failure as plain text.
    error           text
);

CREATE UNIQUE INDEX submissions_idempotency ON submissions (source, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX submissions_pending ON submissions (received_at, id) WHERE status = 'pending';
CREATE INDEX submissions_rejected ON submissions (id) WHERE status = 'rejected';

CREATE TABLE lead_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id       uuid NOT NULL REFERENCES leads (id),
    at            timestamptz NOT NULL,
    submission_id uuid REFERENCES submissions (id),
    entry         jsonb NOT NULL
);

CREATE INDEX lead_history_lead ON lead_history (lead_id, id);

CREATE TABLE api_keys (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    prefix     text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    scopes     jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz
);

CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL;

-- Import jobs started through the API. The uploaded file is kept until the job is done,
-- so a job interrupted by a restart runs again (its rows are idempotent).
CREATE TABLE imports (
    id         uuid PRIMARY KEY,
    source     text NOT NULL,
    sheet      text,
    status     text NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    rows       bigint NOT NULL DEFAULT 0,
    created    bigint NOT NULL DEFAULT 0,
    merged     bigint NOT NULL DEFAULT 0,
    rejected   bigint NOT NULL DEFAULT 0,
    pending    bigint NOT NULL DEFAULT 0,
    error      text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    file       bytea,
    report     bytea
);

CREATE INDEX imports_unfinished ON imports (created_at, id) WHERE status IN ('queued', 'running');

-- Identity resolution: each surviving lead's blocking keys with its compact match record,
-- so a lookup is one index range scan per key. A derived index, written only together
-- with its lead.
CREATE TABLE lead_keys (
    key     text NOT NULL,
    lead_id uuid NOT NULL,
    record  jsonb NOT NULL,
    PRIMARY KEY (key, lead_id)
);

CREATE INDEX lead_keys_lead ON lead_keys (lead_id);

CREATE TABLE duplicate_reviews (
    id           uuid PRIMARY KEY,
    lead_id      uuid NOT NULL REFERENCES leads (id),
    candidate_id uuid NOT NULL REFERENCES leads (id),
    score        double precision NOT NULL,
    evidence     jsonb NOT NULL,
    status       text NOT NULL CHECK (status IN ('open', 'merged', 'distinct')),
    created_at   timestamptz NOT NULL,
    decided_at   timestamptz,
    UNIQUE (lead_id, candidate_id)
);

CREATE INDEX duplicate_reviews_open ON duplicate_reviews (id) WHERE status = 'open';
