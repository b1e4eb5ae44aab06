-- Engagement: behavioural events, touchpoints, stage changes, and the lead columns that
-- reports group by.

-- Events as received. `lead_id` is empty while the person is unknown (an anonymous
-- visitor, an email not captured yet); the identity columns attach it later. No foreign
-- key, like lead_keys: an event names a lead that merges may retire.
CREATE TABLE events (
    id              TEXT PRIMARY KEY,
    source          TEXT NOT NULL,
    idempotency_key TEXT,
    lead_id         TEXT,
    email           TEXT,
    external_id     TEXT,
    anonymous_id    TEXT,
    kind            TEXT NOT NULL,
    occurred_at     INTEGER NOT NULL,
    doc             TEXT NOT NULL
);

CREATE UNIQUE INDEX events_idempotency ON events (source, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_lead ON events (lead_id, occurred_at) WHERE lead_id IS NOT NULL;
CREATE INDEX events_waiting_email ON events (email) WHERE lead_id IS NULL AND email IS NOT NULL;
CREATE INDEX events_waiting_external ON events (external_id) WHERE lead_id IS NULL AND external_id IS NOT NULL;
CREATE INDEX events_waiting_visitor ON events (anonymous_id) WHERE lead_id IS NULL AND anonymous_id IS NOT NULL;

-- Browser visitor ids a lead converted from: later events of the visitor go to the lead.
CREATE TABLE lead_visitors (
    anonymous_id TEXT PRIMARY KEY,
    lead_id      TEXT NOT NULL
) WITHOUT ROWID;

-- Every submission is a touchpoint of the lead it settled into.
CREATE TABLE touchpoints (
    id      INTEGER PRIMARY KEY,
    lead_id TEXT NOT NULL,
    at      INTEGER NOT NULL,
    doc     TEXT NOT NULL
);

CREATE INDEX touchpoints_lead ON touchpoints (lead_id, at);

CREATE TABLE stage_changes (
    id         INTEGER PRIMARY KEY,
    lead_id    TEXT NOT NULL,
    from_stage TEXT NOT NULL,
    to_stage   TEXT NOT NULL,
    at         INTEGER NOT NULL,
    actor      TEXT,
    reason     TEXT
);

CREATE INDEX stage_changes_lead ON stage_changes (lead_id, at);

ALTER TABLE leads ADD COLUMN external_id TEXT;
ALTER TABLE leads ADD COLUMN stage TEXT;
ALTER TABLE leads ADD COLUMN source TEXT;
ALTER TABLE leads ADD COLUMN campaign TEXT;
ALTER TABLE leads ADD COLUMN latest_source TEXT;
ALTER TABLE leads ADD COLUMN latest_campaign TEXT;

CREATE INDEX leads_external_id ON leads (external_id) WHERE external_id IS NOT NULL AND merged_into IS NULL;
CREATE INDEX leads_created ON leads (created_at) WHERE merged_into IS NULL;
CREATE INDEX leads_merged_into ON leads (merged_into) WHERE merged_into IS NOT NULL;
