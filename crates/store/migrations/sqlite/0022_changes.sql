-- The change feed: every change a reader outside follows, numbered in commit order.
-- SQLite's one writer commits in rowid order; AUTOINCREMENT keeps a number from ever
-- being given again, even after the latest rows are pruned.
CREATE TABLE changes (
    cursor  INTEGER PRIMARY KEY AUTOINCREMENT,
    type    TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    at      INTEGER NOT NULL,
    detail  TEXT
);

-- Leads that were there before the feed start it, oldest first: a reader that begins at
-- the start misses none of them.
INSERT INTO changes (type, lead_id, at)
SELECT 'lead.created', id, created_at FROM leads WHERE merged_into IS NULL AND erased_at IS NULL ORDER BY created_at, id;
