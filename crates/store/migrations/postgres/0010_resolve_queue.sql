-- Fuzzy resolution after capture: capture writes a row here in the transaction that
-- creates or changes a lead, and the resolver compares the lead with the others, merges
-- or queues a review, indexes its blocking keys and deletes the row in one transaction.
-- One resolver runs at a time across instances (a transaction-level advisory lock), so
-- two leads of one person queued together are compared with each other.
CREATE TABLE resolve_queue (
    seq     bigserial PRIMARY KEY,
    lead_id uuid NOT NULL
);

-- Leads stored while fuzzy matching was off have no blocking keys: they are resolved
-- once, oldest first, like every lead from now on.
INSERT INTO resolve_queue (lead_id)
SELECT id FROM leads
WHERE merged_into IS NULL AND erased_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM lead_keys WHERE lead_keys.lead_id = leads.id)
ORDER BY created_at, id;
