-- The match record once per lead instead of once per blocking key: a lead has about eight
-- keys, and the record under each made the index most of what the resolver wrote. A
-- lookup joins the postings (ids only) to the records.
CREATE TABLE lead_records (
    lead_id uuid PRIMARY KEY,
    record  jsonb NOT NULL
);

INSERT INTO lead_records (lead_id, record)
SELECT DISTINCT ON (lead_id) lead_id, record FROM lead_keys ORDER BY lead_id;

ALTER TABLE lead_keys DROP COLUMN record;
