//! Health aggregates in PostgreSQL: a tally added in the transaction that counted it (one
//! multi-row upsert, its rows in key order so two transactions never wait on each other
//! in a cycle), and the range reads the core asks for.

use super::Fail;
use super::apply::Op;
use super::sql::{exec, rows};
use crate::Seen;
use deadpool_postgres::GenericClient;
use leadflow_core::health::{BACKLOG_CAP, Backlog, Backlogs, Cell, Level, Query, Scope, Tally};
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
    for b in &query.back {
        let only = name.filter(|_| scope == Some(b.scope.as_str()));
        if scope.is_some() && only.is_none() {
            continue;
        }
        let found = rows(
            c,
            "SELECT name, bucket, value FROM health_counts
             WHERE level = $1 AND bucket >= $2 AND bucket < $3 AND scope = $4 AND metric = $5
               AND ($6::text IS NULL OR name = $6)",
            &[&b.level.as_str(), &b.from, &b.until, &b.scope.as_str(), &b.metric, &only],
        )
        .await?;
        for r in found {
            let value: i64 = r.try_get(2)?;
            out.push(Cell {
                scope: b.scope,
                name: r.try_get(0)?,
                level: b.level,
                bucket: r.try_get(1)?,
                metric: b.metric.to_owned(),
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

/// Each named destination's undelivered rows and each named source's unsettled
/// submissions: per name and status a count that stops at [`BACKLOG_CAP`] and the oldest
/// time, each an index range read, however large the backlog or the store.
pub(super) async fn backlogs(
    c: &impl GenericClient,
    destinations: &[String],
    sources: &[String],
) -> Result<Backlogs, Fail> {
    let cap = i64::try_from(BACKLOG_CAP).unwrap_or(i64::MAX);
    let mut out = Backlogs::default();
    // One round trip: a row per destination, the counts in lateral reads.
    let found = rows(
        c,
        "SELECT d.name,
                (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE destination = d.name AND status = 'pending' LIMIT $2) p),
                (SELECT min(created_at) FROM outbox WHERE destination = d.name AND status = 'pending'),
                (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE destination = d.name AND status = 'dead' LIMIT $2) x),
                (SELECT count(*) FROM (SELECT 1 FROM outbox WHERE destination = d.name AND status = 'needs_data' LIMIT $2) n)
         FROM unnest($1::text[]) AS d (name)",
        &[&destinations, &cap],
    )
    .await?;
    let n = |v: i64| u64::try_from(v).unwrap_or(0);
    for r in found {
        out.destinations.insert(
            r.try_get(0)?,
            Backlog {
                pending: n(r.try_get(1)?),
                oldest_pending_at: r.try_get(2)?,
                dead: n(r.try_get(3)?),
                needs_data: n(r.try_get(4)?),
            },
        );
    }
    let found = rows(
        c,
        "SELECT s.name,
                (SELECT count(*) FROM (SELECT 1 FROM submissions WHERE source = s.name AND status = 'rejected'
                                       AND status <> 'processed' LIMIT $2) q),
                (SELECT count(*) FROM (SELECT 1 FROM submissions WHERE source = s.name AND status = 'pending'
                                       AND status <> 'processed' LIMIT $2) p),
                (SELECT min(received_at) FROM submissions WHERE source = s.name AND status = 'pending'
                                       AND status <> 'processed')
         FROM unnest($1::text[]) AS s (name)",
        &[&sources, &cap],
    )
    .await?;
    for r in found {
        let source: String = r.try_get(0)?;
        let (quarantined, pending) = (n(r.try_get(1)?), n(r.try_get(2)?));
        if quarantined > 0 {
            out.quarantine.insert(source.clone(), quarantined);
        }
        if pending > 0 {
            out.pending.insert(source.clone(), pending);
            if let Some(at) = r.try_get::<_, Option<OffsetDateTime>>(3)? {
                out.oldest_pending.insert(source, at);
            }
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
