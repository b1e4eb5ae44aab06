-- Encryption at rest, as SQLite's 0021: the store's data keys and its blind-index key,
-- each wrapped by a master key that lives outside the database. The re-encryption job's
-- progress is a cursor (`cursors`, name 'encryption.reencrypt').
CREATE TABLE encryption_keys (
    id         text PRIMARY KEY,
    purpose    text NOT NULL CHECK (purpose IN ('data', 'index')),
    master_id  text NOT NULL,
    wrapped    text NOT NULL,
    created_at timestamptz NOT NULL
);

-- What statements read inside documents gets a column of its own, since a sealed
-- document cannot be read by SQL: whether a lead is a test lead (kept out of reports) and
-- the CRM record a feedback event names (its destination and id, a newline between; a
-- blind index when sealed), by which feedback that arrived before its lead is settled.
ALTER TABLE leads ADD COLUMN test boolean NOT NULL DEFAULT false;
UPDATE leads SET test = true WHERE doc -> 'custom' -> 'test' = 'true'::jsonb;

ALTER TABLE feedback ADD COLUMN crm_record text;
UPDATE feedback SET crm_record = (doc -> 'identity' ->> 'crm_destination') || E'\n' || (doc -> 'identity' ->> 'crm_id')
WHERE doc -> 'identity' ->> 'crm_destination' IS NOT NULL AND doc -> 'identity' ->> 'crm_id' IS NOT NULL;
CREATE INDEX feedback_unmatched_record ON feedback (crm_record) WHERE outcome = 'unmatched';
