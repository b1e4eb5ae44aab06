-- Accounts: the companies leads belong to. An account is found by the keys it holds:
-- `d:` registrable domains and `c:` company match keys, each held by one account at most.
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    owner      TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE account_keys (
    key        TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id)
) WITHOUT ROWID;

CREATE INDEX account_keys_account ON account_keys (account_id);

ALTER TABLE leads ADD COLUMN account_id TEXT REFERENCES accounts (id);

CREATE INDEX leads_account ON leads (account_id, id) WHERE account_id IS NOT NULL AND merged_into IS NULL;
