-- Each retention run, scheduled or by hand: when it ran and what it did per kind
-- (`kinds`, a JSON array of {kind, before, count, skipped}).
CREATE TABLE retention_runs (
    id          text PRIMARY KEY,
    trigger     text NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    kinds       jsonb NOT NULL,
    error       text
);

CREATE INDEX retention_runs_started ON retention_runs (started_at);
