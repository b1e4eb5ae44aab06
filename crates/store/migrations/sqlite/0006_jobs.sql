-- Periodic work shared by several instances: one row per job and period, so whichever
-- instance inserts it first does the period's work and the others skip it.
CREATE TABLE job_runs (
    job          TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    claimed_at   INTEGER NOT NULL,
    PRIMARY KEY (job, period_start)
) WITHOUT ROWID;

-- Where each pull source left off in its provider's feed.
CREATE TABLE cursors (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
