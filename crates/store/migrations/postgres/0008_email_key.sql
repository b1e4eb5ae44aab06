-- The email's match key, as SQLite's 0011: the exact-email rule finds the same mailbox under
-- another spelling (Gmail's ignored dots, `+tags`) without the blocking-key index. Leads
-- stored before get theirs in the migration's transaction (`sql::backfill_email_keys`).
ALTER TABLE leads ADD COLUMN email_key text;
CREATE INDEX leads_email_key ON leads (email_key) WHERE email_key IS NOT NULL AND merged_into IS NULL;
