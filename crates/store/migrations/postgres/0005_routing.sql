-- The SQLite migration 0008 (routing), for PostgreSQL. Several instances route at once:
-- a queued lead is claimed with FOR UPDATE SKIP LOCKED, and a queue's position and a
-- rep's daily count are read under a row lock, so two instances never give the same turn
-- twice or count past a cap.

CREATE TABLE routing_queue (
    lead_id   uuid PRIMARY KEY,
    trigger   text NOT NULL,
    source    text,
    queued_at timestamptz NOT NULL
);
CREATE INDEX routing_queue_order ON routing_queue (queued_at);

CREATE TABLE routing_positions (
    queue    text PRIMARY KEY,
    position bigint NOT NULL
);

CREATE TABLE routing_daily (
    rep      text NOT NULL,
    day      text NOT NULL,
    assigned integer NOT NULL,
    PRIMARY KEY (rep, day)
);

CREATE TABLE assignments (
    lead_id     uuid PRIMARY KEY,
    owner       text NOT NULL,
    rule        text,
    source      text,
    stage       text NOT NULL,
    assigned_at timestamptz NOT NULL,
    sla_due_at  timestamptz,
    tried       jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX assignments_sla ON assignments (sla_due_at) WHERE sla_due_at IS NOT NULL;
