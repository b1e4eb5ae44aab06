-- The match record once per lead instead of once per blocking key: a lead has about eight
-- keys, and the record (about 300 bytes) under each made the index most of the database's
-- size and most of what the resolver wrote. A lookup now reads the keys' postings (ids
-- only), and the records of the candidates the core chose, by primary key.
CREATE TABLE lead_records (
    lead_id TEXT PRIMARY KEY,
    record  TEXT NOT NULL
) WITHOUT ROWID;

INSERT INTO lead_records (lead_id, record) SELECT lead_id, min(record) FROM lead_keys GROUP BY lead_id;

CREATE TABLE lead_keys_slim (
    key     TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    PRIMARY KEY (key, lead_id)
) WITHOUT ROWID;

INSERT INTO lead_keys_slim (key, lead_id) SELECT key, lead_id FROM lead_keys;
DROP TABLE lead_keys;
ALTER TABLE lead_keys_slim RENAME TO lead_keys;
CREATE INDEX lead_keys_lead ON lead_keys (lead_id);
