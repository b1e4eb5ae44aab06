//! Health aggregates in SQLite: a tally added in the transaction that counted it, and the
//! range reads the core asks for.

use super::{from_millis, millis};
use crate::StoreError;
use leadflow_core::health::{BACKLOG_CAP, Backlog, Backlogs, Cell, Level, Query, Scope, Tally};
use rusqlite::{Connection, params};
use time::OffsetDateTime;

/// Adds the tally's cells and moves each source's first and last received times.
pub(super) fn write(conn: &Connection, tally: &Tally) -> Result<(), StoreError> {
    if tally.is_empty() {
        return Ok(());
    }
    let mut add = conn.prepare_cached(
        "INSERT INTO health_counts (level, bucket, scope, name, metric, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (level, bucket, scope, name, metric) DO UPDATE SET value = value + excluded.value",
    )?;
    for c in tally.cells() {
        let value = i64::try_from(c.value).unwrap_or(i64::MAX);
        add.execute(params![c.level.as_str(), c.bucket, c.scope.as_str(), c.name, c.metric, value])?;
    }
    let mut seen = conn.prepare_cached(
        "INSERT INTO health_seen (scope, name, first_at, last_at) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (scope, name) DO UPDATE SET first_at = min(first_at, excluded.first_at),
                                                 last_at = max(last_at, excluded.last_at)",
    )?;
    for (scope, name, at) in tally.last_received() {
        seen.execute(params![scope.as_str(), name, millis(at)])?;
    }
    Ok(())
}

pub(super) fn cells(conn: &Connection, query: &Query) -> Result<Vec<Cell>, StoreError> {
    let (scope, name) = match &query.only {
        Some((s, n)) => (Some(s.as_str()), Some(n.as_str())),
        None => (None, None),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT scope, name, bucket, metric, value FROM health_counts
         WHERE level = ?1 AND bucket >= ?2 AND (?3 IS NULL OR (scope = ?3 AND name = ?4))",
    )?;
    let mut out = Vec::new();
    for (level, since) in &query.since {
        let rows = stmt.query_map(params![level.as_str(), since, scope, name], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get::<_, i64>(4)?))
        })?;
        for row in rows {
            let (scope, name, bucket, metric, value) = row?;
            let scope = Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("health scope {scope:?}")))?;
            out.push(Cell { scope, name, level: *level, bucket, metric, value: u64::try_from(value).unwrap_or(0) });
        }
    }
    let mut back = conn.prepare_cached(
        "SELECT name, bucket, value FROM health_counts
         WHERE level = ?1 AND bucket >= ?2 AND bucket < ?3 AND scope = ?4 AND metric = ?5
           AND (?6 IS NULL OR name = ?6)",
    )?;
    for b in &query.back {
        let only = name.filter(|_| scope == Some(b.scope.as_str()));
        if scope.is_some() && only.is_none() {
            continue;
        }
        let rows = back
            .query_map(params![b.level.as_str(), b.from, b.until, b.scope.as_str(), b.metric, only], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })?;
        for row in rows {
            let (name, bucket, value) = row?;
            let value = u64::try_from(value).unwrap_or(0);
            out.push(Cell { scope: b.scope, name, level: b.level, bucket, metric: b.metric.to_owned(), value });
        }
    }
    Ok(out)
}

/// When each source first and last received a submission.
pub(super) fn seen(conn: &Connection) -> Result<Vec<crate::Seen>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT scope, name, first_at, last_at FROM health_seen")?;
    let rows = stmt.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (scope, name, first, last) = row?;
        let scope = Scope::parse(&scope).ok_or_else(|| StoreError::Corrupt(format!("health scope {scope:?}")))?;
        out.push(crate::Seen { scope, name, first_at: from_millis(first), last_at: from_millis(last) });
    }
    Ok(out)
}

/// Each named destination's undelivered rows and each named source's unsettled
/// submissions: per name and status a count that stops at [`BACKLOG_CAP`] and the oldest
/// time, each an index range read, however large the backlog or the store.
pub(super) fn backlogs(conn: &Connection, destinations: &[String], sources: &[String]) -> Result<Backlogs, StoreError> {
    let cap = i64::try_from(BACKLOG_CAP).unwrap_or(i64::MAX);
    let mut out = Backlogs::default();
    let mut count = conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM outbox WHERE destination = ?1 AND status = ?2 LIMIT ?3)",
    )?;
    let mut oldest =
        conn.prepare_cached("SELECT min(created_at) FROM outbox WHERE destination = ?1 AND status = 'pending'")?;
    for d in destinations {
        let n = |status: &str, count: &mut rusqlite::CachedStatement<'_>| -> Result<u64, StoreError> {
            Ok(u64::try_from(count.query_row(params![d, status, cap], |r| r.get::<_, i64>(0))?).unwrap_or(0))
        };
        let b = Backlog {
            pending: n("pending", &mut count)?,
            oldest_pending_at: oldest.query_row([d], |r| r.get::<_, Option<i64>>(0))?.map(from_millis),
            dead: n("dead", &mut count)?,
            needs_data: n("needs_data", &mut count)?,
        };
        out.destinations.insert(d.clone(), b);
    }
    // `status <> 'processed'` names the partial index these reads use.
    let mut count = conn.prepare_cached(
        "SELECT count(*) FROM (SELECT 1 FROM submissions
                               WHERE source = ?1 AND status = ?2 AND status <> 'processed' LIMIT ?3)",
    )?;
    let mut oldest = conn.prepare_cached(
        "SELECT min(received_at) FROM submissions WHERE source = ?1 AND status = 'pending' AND status <> 'processed'",
    )?;
    for s in sources {
        let n = |status: &str, count: &mut rusqlite::CachedStatement<'_>| -> Result<u64, StoreError> {
            Ok(u64::try_from(count.query_row(params![s, status, cap], |r| r.get::<_, i64>(0))?).unwrap_or(0))
        };
        let quarantined = n("rejected", &mut count)?;
        if quarantined > 0 {
            out.quarantine.insert(s.clone(), quarantined);
        }
        let pending = n("pending", &mut count)?;
        if pending > 0 {
            out.pending.insert(s.clone(), pending);
            if let Some(at) = oldest.query_row([s], |r| r.get::<_, Option<i64>>(0))? {
                out.oldest_pending.insert(s.clone(), from_millis(at));
            }
        }
    }
    Ok(out)
}

/// Deletes the buckets older than each width keeps.
pub(super) fn prune(conn: &Connection, now: OffsetDateTime) -> Result<u64, StoreError> {
    let mut deleted = 0;
    let mut stmt = conn.prepare_cached("DELETE FROM health_counts WHERE level = ?1 AND bucket < ?2")?;
    for level in Level::ALL {
        let keep = time::Duration::try_from(level.keep()).unwrap_or(time::Duration::DAY);
        deleted += stmt.execute(params![level.as_str(), level.bucket(now - keep)])? as u64;
    }
    // Claimed periods of frequent jobs (an alert evaluation every few seconds) pile up;
    // a period two days past is never claimed again.
    conn.prepare_cached("DELETE FROM job_runs WHERE period_start < ?1")?
        .execute([super::millis(now - time::Duration::days(2))])?;
    Ok(deleted)
}
