-- Deliveries held because the lead lacks a consent purpose the destination requires
-- (`blocked_consent`). SQLite cannot change a CHECK in place: the outbox is rebuilt
-- with the same columns (the migration runs with foreign keys off and checks them after).
CREATE TABLE outbox_rebuilt (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id              TEXT    NOT NULL UNIQUE,
    destination     TEXT    NOT NULL,
    lead_id         TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'needs_data', 'blocked_consent')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_status     INTEGER,
    last_error      TEXT,
    last_response   TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
INSERT INTO outbox_rebuilt SELECT seq, id, destination, lead_id, event_type, payload, occurred_at, status, attempts,
    next_attempt_at, lease_until, last_status, last_error, last_response, created_at, updated_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_rebuilt RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_lead ON outbox (lead_id, destination, seq);
CREATE INDEX outbox_by_destination ON outbox (destination, status, created_at);

-- The consent ledger: append-only, one row per choice about one purpose. `doc` is the
-- entry as the core writes it; the columns are what lookups and reports need.
CREATE TABLE consent_ledger (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id       TEXT    NOT NULL,
    purpose       TEXT    NOT NULL,
    status        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    recorded_at   INTEGER NOT NULL,
    submission_id TEXT,
    doc           TEXT    NOT NULL
);
CREATE INDEX consent_ledger_by_lead ON consent_ledger (lead_id, id);

-- People who must not be captured again, as keyed hashes only (never plaintext): the
-- normalized email, its mailbox key and the E.164 phone. `entry` groups the hashes of one
-- request; `key_id` names the key they were made with.
CREATE TABLE suppressions (
    hash       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('email', 'mailbox', 'phone')),
    entry      TEXT    NOT NULL,
    key_id     TEXT    NOT NULL,
    reason     TEXT,
    created_by TEXT,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
