//! Alert episodes, silences and the notifications' outbox in SQLite.

use super::{from_millis, millis};
use crate::{AlertState, NotificationResult, StoreError, StoredNotification};
use leadflow_core::health::alerts::{Episode, Silence, State, Step};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

const EPISODE: &str = "SELECT episode, acknowledged_at, acknowledged_by FROM alert_episodes";

/// The stored episode with the acknowledgement people wrote beside it.
fn episode(r: &Row<'_>) -> rusqlite::Result<(String, Option<i64>, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn parse((doc, at, by): (String, Option<i64>, Option<String>)) -> Result<Episode, StoreError> {
    let mut e: Episode = serde_json::from_str(&doc)?;
    if let Some(at) = at {
        e.acknowledged_at = Some(from_millis(at));
        e.acknowledged_by = by;
    }
    Ok(e)
}

pub(super) fn state(conn: &Connection, now: OffsetDateTime) -> Result<AlertState, StoreError> {
    let open = conn
        .prepare_cached(&format!("{EPISODE} WHERE state = 'firing' ORDER BY started_at"))?
        .query_map([], episode)?
        .map(|r| parse(r?))
        .collect::<Result<_, _>>()?;
    let silences = conn
        .prepare_cached("SELECT scope, until FROM alert_silences WHERE until > ?1")?
        .query_map([millis(now)], |r| Ok(Silence { scope: r.get(0)?, until: from_millis(r.get(1)?) }))?
        .collect::<Result<_, _>>()?;
    Ok(AlertState { open, silences })
}

pub(super) fn apply(conn: &Connection, step: &Step, now: OffsetDateTime) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO alert_episodes (id, state, started_at, episode) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO NOTHING",
    )?;
    for e in &step.opened {
        insert.execute(params![e.id, e.state.as_str(), millis(e.started_at), serde_json::to_string(e)?])?;
    }
    let mut update = conn.prepare_cached("UPDATE alert_episodes SET state = ?2, episode = ?3 WHERE id = ?1")?;
    for e in &step.updated {
        update.execute(params![e.id, e.state.as_str(), serde_json::to_string(e)?])?;
    }
    let mut queue = conn.prepare_cached(
        "INSERT INTO alert_notifications (id, channel, episode_id, body, status, attempts, next_attempt_at,
                                          created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5) ON CONFLICT (id) DO NOTHING",
    )?;
    for n in &step.notifications {
        queue.execute(params![n.id, n.channel, n.episode, serde_json::to_string(&n.body)?, millis(now)])?;
    }
    Ok(())
}

pub(super) fn list(conn: &Connection, state: Option<State>, limit: usize) -> Result<Vec<Episode>, StoreError> {
    conn.prepare_cached(&format!(
        "{EPISODE} WHERE (?1 IS NULL OR state = ?1) ORDER BY started_at DESC, id DESC LIMIT ?2"
    ))?
    .query_map(params![state.map(State::as_str), i64::try_from(limit).unwrap_or(i64::MAX)], episode)?
    .map(|r| parse(r?))
    .collect()
}

pub(super) fn get(conn: &Connection, id: &str) -> Result<Option<Episode>, StoreError> {
    conn.prepare_cached(&format!("{EPISODE} WHERE id = ?1"))?
        .query_row([id], episode)
        .optional()?
        .map(parse)
        .transpose()
}

pub(super) fn acknowledge(
    conn: &Connection,
    id: &str,
    by: &str,
    now: OffsetDateTime,
) -> Result<Option<Episode>, StoreError> {
    // The core decides ([`Episode::acknowledge`]); the write applies it to the episode as
    // it was read.
    let Some(mut episode) = get(conn, id)? else { return Ok(None) };
    if episode.acknowledge(by, now) {
        conn.prepare_cached(
            "UPDATE alert_episodes SET acknowledged_at = ?2, acknowledged_by = ?3
             WHERE id = ?1 AND acknowledged_at IS NULL",
        )?
        .execute(params![id, millis(now), by])?;
    }
    Ok(Some(episode))
}

pub(super) fn silence(conn: &Connection, scope: &str, until: OffsetDateTime, by: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO alert_silences (scope, until, set_by, set_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (scope) DO UPDATE SET until = excluded.until, set_by = excluded.set_by, set_at = excluded.set_at",
    )?
    .execute(params![scope, millis(until), by, millis(OffsetDateTime::now_utc())])?;
    Ok(())
}

const COLUMNS: &str = "id, channel, episode_id, body, attempts, status, last_error";

fn notification(r: &Row<'_>) -> rusqlite::Result<(StoredNotification, String)> {
    Ok((
        StoredNotification {
            id: r.get(0)?,
            channel: r.get(1)?,
            episode: r.get(2)?,
            body: serde_json::Value::Null,
            attempts: r.get(4)?,
            status: r.get(5)?,
            last_error: r.get(6)?,
        },
        r.get(3)?,
    ))
}

fn notifications(
    rows: impl Iterator<Item = rusqlite::Result<(StoredNotification, String)>>,
) -> Result<Vec<StoredNotification>, StoreError> {
    rows.map(|r| {
        let (mut n, body) = r?;
        n.body = serde_json::from_str(&body)?;
        Ok(n)
    })
    .collect()
}

pub(super) fn claim(
    conn: &Connection,
    limit: usize,
    lease: std::time::Duration,
    now: OffsetDateTime,
) -> Result<Vec<StoredNotification>, StoreError> {
    let at = millis(now);
    let claimed = notifications(
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alert_notifications
             WHERE status = 'pending' AND next_attempt_at <= ?1 AND (lease_until IS NULL OR lease_until <= ?1)
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))?
        .query_map(params![at, i64::try_from(limit).unwrap_or(i64::MAX)], notification)?,
    )?;
    let mut lease_row = conn.prepare_cached("UPDATE alert_notifications SET lease_until = ?2 WHERE id = ?1")?;
    for n in &claimed {
        lease_row.execute(params![n.id, millis(now + lease)])?;
    }
    Ok(claimed)
}

pub(super) fn record(
    conn: &Connection,
    id: &str,
    result: &NotificationResult,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (status, next, error) = result.parts();
    conn.prepare_cached(
        "UPDATE alert_notifications SET status = ?2, attempts = attempts + 1, next_attempt_at = ?3,
             lease_until = NULL, last_error = ?4, updated_at = ?5
         WHERE id = ?1 AND status = 'pending'",
    )?
    .execute(params![id, status, millis(next.unwrap_or(now)), error, millis(now)])?;
    Ok(())
}

pub(super) fn of_episode(conn: &Connection, episode: &str) -> Result<Vec<StoredNotification>, StoreError> {
    notifications(
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM alert_notifications WHERE episode_id = ?1 ORDER BY created_at, id"
        ))?
        .query_map([episode], notification)?,
    )
}
