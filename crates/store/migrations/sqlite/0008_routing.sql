-- Routing: leads waiting to be routed, each queue's round-robin position, the
-- assignments per rep and day (capacity caps), and each lead's current assignment with
-- its SLA timer.

-- Written in the transaction of the change that calls for routing (the handoff, a
-- priority source's touch), so nothing that should be routed is forgotten.
CREATE TABLE routing_queue (
    lead_id   TEXT PRIMARY KEY,
    trigger   TEXT NOT NULL,
    source    TEXT,
    queued_at INTEGER NOT NULL
);
CREATE INDEX routing_queue_order ON routing_queue (queued_at);

CREATE TABLE routing_positions (
    queue    TEXT PRIMARY KEY,
    position INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE routing_daily (
    rep      TEXT NOT NULL,
    day      TEXT NOT NULL,
    assigned INTEGER NOT NULL,
    PRIMARY KEY (rep, day)
) WITHOUT ROWID;

CREATE TABLE assignments (
    lead_id     TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    rule        TEXT,
    -- The source whose touch routed the lead: a higher-priority one re-routes it.
    source      TEXT,
    -- The stage the lead was in when assigned: leaving it means the owner took it up.
    stage       TEXT NOT NULL,
    assigned_at INTEGER NOT NULL,
    -- NULL: no timer running.
    sla_due_at  INTEGER,
    -- Owners an SLA took the lead from (JSON list): a reassignment skips them.
    tried       TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX assignments_sla ON assignments (sla_due_at) WHERE sla_due_at IS NOT NULL;
