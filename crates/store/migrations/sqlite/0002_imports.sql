-- Import jobs started through the API. The uploaded file is kept until the job is done,
-- so a job interrupted by a restart runs again (its rows are idempotent).
CREATE TABLE imports (
    id         TEXT PRIMARY KEY,
    source     TEXT NOT NULL,
    sheet      TEXT,
    status     TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    rows       INTEGER NOT NULL DEFAULT 0,
    created    INTEGER NOT NULL DEFAULT 0,
    merged     INTEGER NOT NULL DEFAULT 0,
    rejected   INTEGER NOT NULL DEFAULT 0,
    pending    INTEGER NOT NULL DEFAULT 0,
    error      TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    file       BLOB,
    report     BLOB
);

CREATE INDEX imports_unfinished ON imports (created_at) WHERE status IN ('queued', 'running');
