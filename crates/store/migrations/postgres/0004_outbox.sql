-- The outbox, as SQLite's 0007: one row per lead event per subscribed destination,
-- written in the same transaction as the lead change. `id` is the idempotency key sent
-- with every try; `seq` orders a lead's rows (and the listing) in insertion order.
CREATE TABLE outbox (
    seq             bigserial PRIMARY KEY,
    id              text        NOT NULL UNIQUE,
    destination     text        NOT NULL,
    lead_id         uuid        NOT NULL,
    event_type      text        NOT NULL,
    payload         jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    status          text        NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'needs_data')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    -- A claim: nobody else takes the row before this time; a crashed worker's claim lapses.
    lease_until     timestamptz,
    last_status     integer,
    last_error      text,
    last_response   text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
-- Claiming reads only pending rows by due time: delivered rows pile up, and stay out of
-- this index.
CREATE INDEX outbox_due ON outbox (next_attempt_at, seq) WHERE status = 'pending';
-- The ordering check reads a lead's earlier rows for one destination; re-opening
-- needs-data rows finds a lead's rows too.
CREATE INDEX outbox_lead ON outbox (lead_id, destination, seq);
CREATE INDEX outbox_by_destination ON outbox (destination, status, created_at);
-- Listing by status pages by seq.
CREATE INDEX outbox_by_status ON outbox (status, seq);

CREATE TABLE delivery_attempts (
    id          bigserial PRIMARY KEY,
    delivery_id text        NOT NULL REFERENCES outbox (id),
    attempt     integer     NOT NULL,
    outcome     text        NOT NULL,
    at          timestamptz NOT NULL,
    status      integer,
    error       text,
    request     text,
    response    text,
    duration_ms bigint      NOT NULL
);
CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, id);
