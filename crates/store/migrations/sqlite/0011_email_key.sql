-- The email's match key (provider rules applied: Gmail's ignored dots, `+tags`), so the
-- exact-email rule finds the same mailbox under another spelling whether or not fuzzy
-- matching keeps the blocking-key index. Leads stored before get theirs at start-up, in the
-- migration's transaction (`backfill_email_keys`).
ALTER TABLE leads ADD COLUMN email_key TEXT;
CREATE INDEX leads_email_key ON leads (email_key) WHERE email_key IS NOT NULL AND merged_into IS NULL;
