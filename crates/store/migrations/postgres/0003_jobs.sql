-- Periodic work shared by several instances: one row per job and period, so whichever
-- instance inserts it first does the period's work and the others skip it.
CREATE TABLE job_runs (
    job          text NOT NULL,
    period_start timestamptz NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job, period_start)
);

-- Where each pull source left off in its provider's feed.
CREATE TABLE cursors (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
