-- Integration health: counts per source and destination, written in the transactions
-- that do the counted work (a capture, a delivery try), summed per bucket of a minute,
-- an hour and a day. Reading a window reads a few hundred rows whatever the number of
-- leads; old buckets are pruned per width. No personal data: names are configured
-- source and destination names, metrics fixed words and reason codes.
CREATE TABLE health_counts (
    level  TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    scope  TEXT NOT NULL,
    name   TEXT NOT NULL,
    metric TEXT NOT NULL,
    value  INTEGER NOT NULL,
    PRIMARY KEY (level, bucket, scope, name, metric)
) WITHOUT ROWID;

-- When each source first and last received a submission (milliseconds).
CREATE TABLE health_seen (
    scope    TEXT NOT NULL,
    name     TEXT NOT NULL,
    first_at INTEGER NOT NULL,
    last_at  INTEGER NOT NULL,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;

-- The quarantine and the inbox's pending rows, counted by source. Partial: a settled
-- submission (nearly all of them) costs capture no index entry.
CREATE INDEX submissions_unsettled ON submissions (source, status, received_at) WHERE status <> 'processed';
