-- Alert episodes: one per rule and scope from the evaluation its condition first held
-- until it resolved. The evaluator writes `episode` (JSON); people write the
-- acknowledgement columns, which the evaluator never overwrites.
CREATE TABLE alert_episodes (
    id              TEXT PRIMARY KEY,
    state           TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    episode         TEXT NOT NULL,
    acknowledged_at INTEGER,
    acknowledged_by TEXT
);
CREATE INDEX alert_episodes_by_state ON alert_episodes (state, started_at);

-- A scope's notifications held back until a time.
CREATE TABLE alert_silences (
    scope  TEXT PRIMARY KEY,
    until  INTEGER NOT NULL,
    set_by TEXT NOT NULL,
    set_at INTEGER NOT NULL
);

-- The notifications' outbox: written with the episode change that calls for them, under
-- an id unique per episode event and channel, so each goes out once; sent with retries.
CREATE TABLE alert_notifications (
    id              TEXT PRIMARY KEY,
    channel         TEXT NOT NULL,
    episode_id      TEXT NOT NULL,
    body            TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX alert_notifications_due ON alert_notifications (status, next_attempt_at);
CREATE INDEX alert_notifications_by_episode ON alert_notifications (episode_id);
