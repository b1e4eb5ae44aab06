-- Alert episodes: one per rule and scope from the evaluation its condition first held
-- until it resolved. The evaluator writes `episode`; people write the acknowledgement
-- columns, which the evaluator never overwrites.
CREATE TABLE alert_episodes (
    id              text PRIMARY KEY,
    state           text NOT NULL,
    started_at      timestamptz NOT NULL,
    episode         jsonb NOT NULL,
    acknowledged_at timestamptz,
    acknowledged_by text
);
CREATE INDEX alert_episodes_by_state ON alert_episodes (state, started_at);

-- A scope's notifications held back until a time.
CREATE TABLE alert_silences (
    scope  text PRIMARY KEY,
    until  timestamptz NOT NULL,
    set_by text NOT NULL,
    set_at timestamptz NOT NULL
);

-- The notifications' outbox: written with the episode change that calls for them, under
-- an id unique per episode event and channel, so each goes out once; sent with retries.
CREATE TABLE alert_notifications (
    id              text PRIMARY KEY,
    channel         text NOT NULL,
    episode_id      text NOT NULL,
    body            jsonb NOT NULL,
    status          text NOT NULL,
    attempts        integer NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    lease_until     timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX alert_notifications_due ON alert_notifications (status, next_attempt_at);
CREATE INDEX alert_notifications_by_episode ON alert_notifications (episode_id);
