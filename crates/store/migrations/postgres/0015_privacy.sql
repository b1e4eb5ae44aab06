-- Deliveries held because the lead lacks a consent purpose the destination requires.
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('pending', 'delivered', 'dead', 'needs_data', 'blocked_consent'));

-- The consent ledger: append-only, one row per choice about one purpose.
CREATE TABLE consent_ledger (
    id            bigserial   PRIMARY KEY,
    lead_id       uuid        NOT NULL,
    purpose       text        NOT NULL,
    status        text        NOT NULL,
    at            timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL,
    submission_id uuid,
    doc           jsonb       NOT NULL
);
CREATE INDEX consent_ledger_by_lead ON consent_ledger (lead_id, id);

-- People who must not be captured again, as keyed hashes only (never plaintext).
CREATE TABLE suppressions (
    hash       text        PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('email', 'mailbox', 'phone')),
    entry      text        NOT NULL,
    key_id     text        NOT NULL,
    reason     text,
    created_by text,
    created_at timestamptz NOT NULL
);
