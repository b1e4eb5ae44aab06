-- The outbox: one row per lead event per subscribed destination, written in the same
-- transaction as the lead change. `id` is the idempotency key sent with every try.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    destination     TEXT    NOT NULL,
    lead_id         TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'needs_data')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    -- A claim: nobody else takes the row before this time; a crashed worker's claim lapses.
    lease_until     INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    last_response   TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
-- Claiming reads pending rows by due time; the ordering check reads a lead's earlier rows.
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lead ON outbox (lead_id, destination, seq);
CREATE INDEX outbox_by_destination ON outbox (destination, status, created_at);

CREATE TABLE delivery_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT    NOT NULL REFERENCES outbox (id),
    attempt     INTEGER NOT NULL,
    outcome     TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    status      INTEGER,
    error       TEXT,
    request     TEXT,
    response    TEXT,
    duration_ms INTEGER NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
