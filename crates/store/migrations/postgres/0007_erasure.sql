-- Erasure, as SQLite's 0010: an erased lead stays as a tombstone without personal data,
-- marked here so lists leave it out without reading its document.
ALTER TABLE leads ADD COLUMN erased_at timestamptz;
