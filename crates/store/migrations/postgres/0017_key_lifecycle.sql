-- The key lifecycle: expiry, last use, rotation with a grace period, a rate, addresses.
ALTER TABLE api_keys
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN rotated_at timestamptz,
    ADD COLUMN rate_limit_per_minute integer,
    ADD COLUMN allowed_ips jsonb NOT NULL DEFAULT '[]';

-- During a rotation's grace the old key and its successor share the name.
DROP INDEX api_keys_active_name;
CREATE UNIQUE INDEX api_keys_active_name ON api_keys (name) WHERE revoked_at IS NULL AND rotated_at IS NULL;
