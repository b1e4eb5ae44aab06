-- The change feed numbers changes when they are read, not when they are written. A writer
-- inserts its changes unnumbered (in `seq` order, from a sequence: no lock) as the last
-- statement before its COMMIT. A reader first takes the clock's row lock and numbers every
-- committed unnumbered change in `seq` order, then reads. Numbers still follow commit
-- order as any reader can see it: a change is numbered only once committed, after every
-- change numbered before it. Writers no longer wait for each other's COMMIT on the clock.
ALTER TABLE changes DROP CONSTRAINT changes_pkey;
ALTER TABLE changes ALTER COLUMN cursor DROP NOT NULL;
ALTER TABLE changes ADD COLUMN seq bigserial;
ALTER TABLE changes ADD PRIMARY KEY (seq);
CREATE UNIQUE INDEX changes_cursor ON changes (cursor);
CREATE INDEX changes_unnumbered ON changes (seq) WHERE cursor IS NULL;
