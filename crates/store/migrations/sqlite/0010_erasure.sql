-- Erasure (the right to be forgotten): an erased lead stays as a tombstone without
-- personal data, so reports still count it and anything naming it is answered clearly.
-- Marked here, so lists leave tombstones out without reading their documents.
ALTER TABLE leads ADD COLUMN erased_at INTEGER;
