-- Each retention run, scheduled or by hand: when it ran and what it did per kind
-- (`kinds`, a JSON array of {kind, before, count, skipped}).
CREATE TABLE retention_runs (
    id          TEXT PRIMARY KEY,
    trigger     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    kinds       TEXT NOT NULL,
    error       TEXT
);

CREATE INDEX retention_runs_started ON retention_runs (started_at);
