-- Encryption at rest: the store's data keys and its blind-index key, each wrapped by a
-- master key that lives outside the database. The re-encryption job's progress is a
-- cursor (`cursors`, name 'encryption.reencrypt').
CREATE TABLE encryption_keys (
    id         TEXT PRIMARY KEY,
    purpose    TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
    master_id  TEXT NOT NULL,
    wrapped    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
