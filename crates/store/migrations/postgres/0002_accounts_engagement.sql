-- The SQLite migrations 0004 (accounts) and 0005 (engagement), for PostgreSQL.

-- Accounts: the companies leads belong to. An account is found by the keys it holds:
-- `d:` registrable domains and `c:` company match keys, each held by one account at most.
-- The primary key on the key is what keeps two instances founding an account for one
-- domain at once from both committing: the second one's insert fails and it runs again.
CREATE TABLE accounts (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    owner      text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE account_keys (
    key        text PRIMARY KEY,
    account_id uuid NOT NULL REFERENCES accounts (id)
);

CREATE INDEX account_keys_account ON account_keys (account_id);

ALTER TABLE leads ADD COLUMN account_id uuid REFERENCES accounts (id);

CREATE INDEX leads_account ON leads (account_id, id) WHERE account_id IS NOT NULL AND merged_into IS NULL;

-- Events as received. `lead_id` is empty while the person is unknown (an anonymous
-- visitor, an email not captured yet); the identity columns attach it later. No foreign
-- key, like lead_keys: an event names a lead that merges may retire.
CREATE TABLE events (
    id              uuid PRIMARY KEY,
    source          text NOT NULL,
    idempotency_key text,
    lead_id         uuid,
    email           text,
    external_id     text,
    anonymous_id    text,
    kind            text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    doc             jsonb NOT NULL
);

CREATE UNIQUE INDEX events_idempotency ON events (source, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_lead ON events (lead_id, occurred_at) WHERE lead_id IS NOT NULL;
CREATE INDEX events_waiting_email ON events (email) WHERE lead_id IS NULL AND email IS NOT NULL;
CREATE INDEX events_waiting_external ON events (external_id) WHERE lead_id IS NULL AND external_id IS NOT NULL;
CREATE INDEX events_waiting_visitor ON events (anonymous_id) WHERE lead_id IS NULL AND anonymous_id IS NOT NULL;

-- Browser visitor ids a lead converted from: later events of the visitor go to the lead.
CREATE TABLE lead_visitors (
    anonymous_id text PRIMARY KEY,
    lead_id      uuid NOT NULL
);

-- Every submission is a touchpoint of the lead it settled into.
CREATE TABLE touchpoints (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id uuid NOT NULL,
    at      timestamptz NOT NULL,
    doc     jsonb NOT NULL
);

CREATE INDEX touchpoints_lead ON touchpoints (lead_id, at);

CREATE TABLE stage_changes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lead_id    uuid NOT NULL,
    from_stage text NOT NULL,
    to_stage   text NOT NULL,
    at         timestamptz NOT NULL,
    actor      text,
    reason     text
);

CREATE INDEX stage_changes_lead ON stage_changes (lead_id, at);

ALTER TABLE leads
    ADD COLUMN external_id text,
    ADD COLUMN stage text,
    ADD COLUMN source text,
    ADD COLUMN campaign text,
    ADD COLUMN latest_source text,
    ADD COLUMN latest_campaign text;

CREATE INDEX leads_external_id ON leads (external_id) WHERE external_id IS NOT NULL AND merged_into IS NULL;
CREATE INDEX leads_created ON leads (created_at) WHERE merged_into IS NULL;
