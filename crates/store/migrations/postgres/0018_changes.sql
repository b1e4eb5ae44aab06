-- The change feed. Numbers follow commit order: a transaction takes the clock's row lock
-- as its last statement and holds it through its COMMIT, so the next transaction to
-- number its changes does so after this one is visible. A transaction that rolls back
-- gives its numbers back with the clock's update: no gaps, no duplicates.
CREATE TABLE change_clock (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    last bigint NOT NULL
);

CREATE TABLE changes (
    cursor  bigint PRIMARY KEY,
    type    text NOT NULL,
    lead_id uuid NOT NULL,
    at      timestamptz NOT NULL,
    detail  jsonb
);

-- Leads that were there before the feed start it, oldest first.
INSERT INTO changes (cursor, type, lead_id, at)
SELECT row_number() OVER (ORDER BY created_at, id), 'lead.created', id, created_at
FROM leads WHERE merged_into IS NULL AND erased_at IS NULL;

INSERT INTO change_clock (one, last) SELECT true, coalesce(max(cursor), 0) FROM changes;
