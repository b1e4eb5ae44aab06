//! Health aggregates in PostgreSQL: a tally added in the transaction that counted it (one
//! multi-row upsert, its rows in key order so two transactions never wait on each other
//! in a cycle), and the range reads the core asks for.

use super::Fail;
use super::apply::Op;
use super::sql::{exec, rows};
use crate::Seen;
use deadpool_postgres::GenericClient;
use leadflow_core::health::{Backlog, Backlogs, Cell, Level, Query, Scope, Tally};
use time::OffsetDateTime;
use uuid::Uuid;

const ADD: &str = "INSERT INTO health_counts (level, bucket, scope, name, metric, value)
     SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::bigint[])
     ON CONFLICT (level, bucket, scope, name, metric) DO UPDATE SET value = health_counts.value + excluded.value";

const SEEN: &str = "INSERT INTO health_seen (scope, name, first_at, last_at)
     SELECT s, n, t, t FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x (s, n, t)
     ON CONFLICT (scope, name) DO UPDATE SET first_at = least(health_seen.first_at, excluded.first_at),
                                             last_at = greatest(health_seen.last_at, excluded.last_at)";

/// The statements that add the tally, to run in the transaction of what it counts.
pub(super) fn ops(tally: &Tally) -> Vec<Op<'static>> {
    if tally.is_empty() {
        return Vec::new();
    }
    let cells = tally.cells();
    let mut ops = Vec::with_capacity(2);
    if !cells.is_empty() {
        let level: Vec<&'static str> = cells.iter().map(|c| c.level.as_str()).collect();
        let bucket: Vec<i64> = cells.iter().map(|c| c.bucket).collect();
        let scope: Vec<&'static str> = cells.iter().map(|c| c.scope.as_str()).collect();
        let name: Vec<String> = cells.iter().map(|c| c.name.clone()).collect();
        let metric: Vec<String> = cells.iter().map(|c| c.metric.clone()).collect();
        let value: Vec<i64> = cells.iter().map(|c| i64::try_from(c.value).unwrap_or(i64::MAX)).collect();
        ops.push(Op::new(
            ADD,
            vec![Box::new(level), Box::new(bucket), Box::new(scope), Box::new(name), Box::new(metric), Box::new(value)],
        ));
    }
    let seen: Vec<(Scope, &str, OffsetDateTime)> = tally.last_received().collect();
    if !seen.is_empty() {
        let scope: Vec<&'static str> = seen.iter().map(|(s, _, _)| s.as_str()).collect();
        let name: Vec<String> = seen.iter().map(|(_, n, _)| (*n).to_owned()).collect();
        let at: Vec<OffsetDateTime> = seen.iter().map(|(_, _, t)| *t).collect();
        ops.push(Op::new(SEEN, vec![Box::new(scope), Box::new(name), Box::new(at)]));
    }
    ops
}

pub(super) async fn write(c: &impl GenericClient, tally: &Tally) -> Result<(), Fail> {
    super::apply::run(c, ops(tally)).await
}

/// Which of these submissions the inbox holds already: a submission is received once.
pub(super) async fn stored_submissions(c: &impl GenericClient, ids: &[Uuid]) -> Result<Vec<Uuid>, Fail> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let found = rows(c, "SELECT id FROM submissions WHERE id = ANY($1::uuid[])", &[&ids]).await?;
    found.iter().map(|r| r.try_get(0).map_err(Fail::from)).collect()
}

pub(super) async fn cells(c: &impl GenericClient, query: &Query) -> Result<Vec<Cell>, Fail> {
    let (scope, name) = match &query.only {
        Some((s, n)) => (Some(s.as_str()), Some(n.as_str())),
        None => (None, None),
    };
    let mut out = Vec::new();
    for (level, since) in &query.since {
        let found = rows(
            c,
            "SELECT scope, name, bucket, metric, value FROM health_counts
             WHERE level = $1 AND bucket >= $2 AND ($3::text IS NULL OR (scope = $3 AND name = $4))",
            &[&level.as_str(), since, &scope, &name],
        )
        .await?;
        for r in found {
            let s: &str = r.try_get(0)?;
            let scope = Scope::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("health scope {s:?}")))?;
            let value: i64 = r.try_get(4)?;
            out.push(Cell {
                scope,
                name: r.try_get(1)?,
                level: *level,
                bucket: r.try_get(2)?,
                metric: r.try_get(3)?,
                value: u64::try_from(value).unwrap_or(0),
            });
        }
    }
    Ok(out)
}

pub(super) async fn seen(c: &impl GenericClient) -> Result<Vec<Seen>, Fail> {
    let found = rows(c, "SELECT scope, name, first_at, last_at FROM health_seen", &[]).await?;
    let mut out = Vec::with_capacity(found.len());
    for r in found {
        let s: &str = r.try_get(0)?;
        let scope = Scope::parse(s).ok_or_else(|| crate::StoreError::Corrupt(format!("health scope {s:?}")))?;
        out.push(Seen { scope, name: r.try_get(1)?, first_at: r.try_get(2)?, last_at: r.try_get(3)? });
    }
    Ok(out)
}

pub(super) async fn backlogs(c: &impl GenericClient) -> Result<Backlogs, Fail> {
    let mut out = Backlogs::default();
    let found = rows(
        c,
        "SELECT destination, status, count(*), min(created_at) FROM outbox
         WHERE status IN ('pending', 'dead', 'needs_data') GROUP BY destination, status",
        &[],
    )
    .await?;
    for r in found {
        let b: &mut Backlog = out.destinations.entry(r.try_get(0)?).or_default();
        let n = u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0);
        match r.try_get::<_, &str>(1)? {
            "pending" => {
                b.pending = n;
                b.oldest_pending_at = r.try_get(3)?;
            }
            "dead" => b.dead = n,
            _ => b.needs_data = n,
        }
    }
    let found = rows(
        c,
        "SELECT source, status, count(*), min(received_at) FROM submissions
         WHERE status <> 'processed' GROUP BY source, status",
        &[],
    )
    .await?;
    for r in found {
        let source: String = r.try_get(0)?;
        let n = u64::try_from(r.try_get::<_, i64>(2)?).unwrap_or(0);
        match r.try_get::<_, &str>(1)? {
            "rejected" => {
                out.quarantine.insert(source, n);
            }
            "pending" => {
                if let Some(at) = r.try_get::<_, Option<OffsetDateTime>>(3)? {
                    out.oldest_pending.insert(source.clone(), at);
                }
                out.pending.insert(source, n);
            }
            _ => {}
        }
    }
    Ok(out)
}

pub(super) async fn prune(c: &impl GenericClient, now: OffsetDateTime) -> Result<u64, Fail> {
    let mut deleted = 0;
    for level in Level::ALL {
        let keep = time::Duration::try_from(level.keep()).unwrap_or(time::Duration::DAY);
        deleted += exec(
            c,
            "DELETE FROM health_counts WHERE level = $1 AND bucket < $2",
            &[&level.as_str(), &level.bucket(now - keep)],
        )
        .await?;
    }
    // Claimed periods of frequent jobs (an alert evaluation every few seconds) pile up;
    // a period two days past is never claimed again.
    exec(c, "DELETE FROM job_runs WHERE period_start < $1", &[&(now - time::Duration::days(2))]).await?;
    Ok(deleted)
}
