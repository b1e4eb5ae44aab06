-- CRM feedback, as SQLite's 0009: every status change a CRM (or a client) reported, kept
-- for the audit and what became of it. A resend with the same source and event id is a
-- replay, unless the first was refused (a corrected resend is evaluated afresh).
CREATE TABLE feedback (
    id          uuid PRIMARY KEY,
    source      text        NOT NULL,
    event_id    text,
    lead_id     uuid,
    status      text,
    has_owner   boolean     NOT NULL,
    outcome     text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL,
    doc         jsonb       NOT NULL
);
CREATE UNIQUE INDEX feedback_event ON feedback (source, event_id)
    WHERE event_id IS NOT NULL AND outcome IN ('applied', 'unchanged', 'stale', 'unmatched', 'ignored');
-- The newest feedback applied to a lead: an older event must not undo it.
CREATE INDEX feedback_lead ON feedback (lead_id, occurred_at) WHERE lead_id IS NOT NULL;
CREATE INDEX feedback_source ON feedback (source, id);
-- Feedback waiting for its lead: applied when a delivery links the CRM record it names.
CREATE INDEX feedback_unmatched ON feedback (occurred_at) WHERE outcome = 'unmatched';

-- The CRM's own record id of a lead, per destination, learnt from deliveries.
CREATE TABLE crm_links (
    destination text        NOT NULL,
    crm_id      text        NOT NULL,
    lead_id     uuid        NOT NULL,
    linked_at   timestamptz NOT NULL,
    PRIMARY KEY (destination, crm_id)
);

-- The disqualification report reads stage changes by target stage and time.
CREATE INDEX stage_changes_to ON stage_changes (to_stage, at);
