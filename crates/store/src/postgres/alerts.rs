//! Alert episodes, silences and the notifications' outbox in PostgreSQL.

use super::Fail;
use super::sql::{exec, opt, rows};
use crate::{AlertState, NotificationResult, StoredNotification};
use deadpool_postgres::GenericClient;
use leadflow_core::health::alerts::{Episode, Silence, State, Step};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::Json;

const EPISODE: &str = "SELECT episode, acknowledged_at, acknowledged_by FROM alert_episodes";

/// The stored episode with the acknowledgement people wrote beside it.
fn episode(r: &Row) -> Result<Episode, Fail> {
    let Json(mut e): Json<Episode> = r.try_get(0)?;
    if let Some(at) = r.try_get::<_, Option<OffsetDateTime>>(1)? {
        e.acknowledged_at = Some(at);
        e.acknowledged_by = r.try_get(2)?;
    }
    Ok(e)
}

pub(super) async fn state(c: &impl GenericClient, now: OffsetDateTime) -> Result<AlertState, Fail> {
    let open = rows(c, &format!("{EPISODE} WHERE state = 'firing' ORDER BY started_at"), &[])
        .await?
        .iter()
        .map(episode)
        .collect::<Result<_, _>>()?;
    let silences = rows(c, "SELECT scope, until FROM alert_silences WHERE until > $1", &[&now])
        .await?
        .iter()
        .map(|r| Ok(Silence { scope: r.try_get(0)?, until: r.try_get(1)? }))
        .collect::<Result<_, Fail>>()?;
    Ok(AlertState { open, silences })
}

pub(super) async fn apply(c: &impl GenericClient, step: &Step, now: OffsetDateTime) -> Result<(), Fail> {
    for e in &step.opened {
        exec(
            c,
            "INSERT INTO alert_episodes (id, state, started_at, episode) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING",
            &[&e.id, &e.state.as_str(), &e.started_at, &Json(e)],
        )
        .await?;
    }
    for e in &step.updated {
        exec(
            c,
            "UPDATE alert_episodes SET state = $2, episode = $3 WHERE id = $1",
            &[&e.id, &e.state.as_str(), &Json(e)],
        )
        .await?;
    }
    for n in &step.notifications {
        exec(
            c,
            "INSERT INTO alert_notifications (id, channel, episode_id, body, status, attempts, next_attempt_at,
                                              created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) ON CONFLICT (id) DO NOTHING",
            &[&n.id, &n.channel, &n.episode, &Json(&n.body), &now],
        )
        .await?;
    }
    Ok(())
}

pub(super) async fn list(c: &impl GenericClient, state: Option<State>, limit: usize) -> Result<Vec<Episode>, Fail> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    rows(
        c,
        &format!("{EPISODE} WHERE ($1::text IS NULL OR state = $1) ORDER BY started_at DESC, id DESC LIMIT $2"),
        &[&state.map(State::as_str), &limit],
    )
    .await?
    .iter()
    .map(episode)
    .collect()
}

pub(super) async fn get(c: &impl GenericClient, id: &str) -> Result<Option<Episode>, Fail> {
    opt(c, &format!("{EPISODE} WHERE id = $1"), &[&id]).await?.as_ref().map(episode).transpose()
}

pub(super) async fn acknowledge(
    c: &impl GenericClient,
    id: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<Option<Episode>, Fail> {
    // The core decides ([`Episode::acknowledge`]) on the episode as read (and locked); the
    // write applies it.
    let Some(row) = opt(c, &format!("{EPISODE} WHERE id = $1 FOR UPDATE"), &[&id]).await? else {
        return Ok(None);
    };
    let mut episode = self::episode(&row)?;
    if episode.acknowledge(by, now) {
        exec(
            c,
            "UPDATE alert_episodes SET acknowledged_at = $2, acknowledged_by = $3 WHERE id = $1",
            &[&id, &now, &by],
        )
        .await?;
    }
    Ok(Some(episode))
}

pub(super) async fn silence(c: &impl GenericClient, scope: &str, until: OffsetDateTime, by: &str) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO alert_silences (scope, until, set_by, set_at) VALUES ($1, $2, $3, now())
         ON CONFLICT (scope) DO UPDATE SET until = excluded.until, set_by = excluded.set_by, set_at = excluded.set_at",
        &[&scope, &until, &by],
    )
    .await?;
    Ok(())
}

const COLUMNS: &str = "id, channel, episode_id, body, attempts, status, last_error";

fn notification(r: &Row) -> Result<StoredNotification, Fail> {
    let Json(body): Json<serde_json::Value> = r.try_get(3)?;
    Ok(StoredNotification {
        id: r.try_get(0)?,
        channel: r.try_get(1)?,
        episode: r.try_get(2)?,
        body,
        attempts: u32::try_from(r.try_get::<_, i32>(4)?).unwrap_or(0),
        status: r.try_get(5)?,
        last_error: r.try_get(6)?,
    })
}

pub(super) async fn claim(
    c: &impl GenericClient,
    limit: usize,
    lease: std::time::Duration,
    now: OffsetDateTime,
) -> Result<Vec<StoredNotification>, Fail> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let until = now + lease;
    rows(
        c,
        &format!(
            "UPDATE alert_notifications SET lease_until = $3
             WHERE id IN (SELECT id FROM alert_notifications
                          WHERE status = 'pending' AND next_attempt_at <= $1
                            AND (lease_until IS NULL OR lease_until <= $1)
                          ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING {COLUMNS}"
        ),
        &[&now, &limit, &until],
    )
    .await?
    .iter()
    .map(notification)
    .collect()
}

pub(super) async fn record(
    c: &impl GenericClient,
    id: &str,
    result: &NotificationResult,
    now: OffsetDateTime,
) -> Result<(), Fail> {
    let (status, next, error) = result.parts();
    exec(
        c,
        "UPDATE alert_notifications SET status = $2, attempts = attempts + 1, next_attempt_at = $3,
             lease_until = NULL, last_error = $4, updated_at = $5
         WHERE id = $1 AND status = 'pending'",
        &[&id, &status, &next.unwrap_or(now), &error, &now],
    )
    .await?;
    Ok(())
}

pub(super) async fn of_episode(c: &impl GenericClient, episode: &str) -> Result<Vec<StoredNotification>, Fail> {
    rows(
        c,
        &format!("SELECT {COLUMNS} FROM alert_notifications WHERE episode_id = $1 ORDER BY created_at, id"),
        &[&episode],
    )
    .await?
    .iter()
    .map(notification)
    .collect()
}
