-- Integration health: counts per source and destination, written in the transactions
-- that do the counted work (a capture, a delivery try), summed per bucket of a minute,
-- an hour and a day. Reading a window reads a few hundred rows whatever the number of
-- leads; old buckets are pruned per width. No personal data: names are configured
-- source and destination names, metrics fixed words and reason codes.
CREATE TABLE health_counts (
    level  text NOT NULL,
    bucket bigint NOT NULL,
    scope  text NOT NULL,
    name   text NOT NULL,
    metric text NOT NULL,
    value  bigint NOT NULL,
    PRIMARY KEY (level, bucket, scope, name, metric)
);

-- When each source first and last received a submission.
CREATE TABLE health_seen (
    scope    text NOT NULL,
    name     text NOT NULL,
    first_at timestamptz NOT NULL,
    last_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, name)
);

-- The quarantine and the inbox's pending rows, counted by source. Partial: a settled
-- submission (nearly all of them) costs capture no index entry.
CREATE INDEX submissions_unsettled ON submissions (source, status, received_at) WHERE status <> 'processed';
