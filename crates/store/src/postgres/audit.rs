//! The audit log in PostgreSQL. Every append takes one transaction-scoped advisory lock
//! before it reads the head, so appends from every instance line up and never chain from
//! the same head; the primary key on `seq` would refuse a fork even without it.

use super::Fail;
use super::sql::{exec, limit, opt, rows};
use crate::AuditFilter;
use deadpool_postgres::GenericClient;
use leadflow_core::audit::{Entry, NewEntry, canonical_json, chain};
use time::OffsetDateTime;
use tokio_postgres::Row;

/// The advisory lock appends run under (an arbitrary constant: "lf-audit").
const AUDIT_LOCK: i64 = 0x6c66_2d61_7564_6974;

const COLUMNS: &str = "seq, at, actor, action, target, request_id, detail, prev_hash, hash";

fn entry(r: &Row) -> Result<Entry, Fail> {
    let detail: String = r.try_get(6)?;
    Ok(Entry {
        seq: u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or_default(),
        at: r.try_get(1)?,
        actor: r.try_get(2)?,
        action: r.try_get(3)?,
        target: r.try_get(4)?,
        request_id: r.try_get(5)?,
        detail: serde_json::from_str(&detail)?,
        prev_hash: r.try_get(7)?,
        hash: r.try_get(8)?,
    })
}

fn seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) async fn append(
    c: &impl GenericClient,
    news: Vec<NewEntry>,
    at: OffsetDateTime,
) -> Result<Vec<Entry>, Fail> {
    exec(c, "SELECT pg_advisory_xact_lock($1)", &[&AUDIT_LOCK]).await?;
    let head = match opt(c, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", &[]).await? {
        Some(r) => Some((u64::try_from(r.try_get::<_, i64>(0)?).unwrap_or_default(), r.try_get::<_, String>(1)?)),
        None => None,
    };
    let chained = chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), news, at);
    for e in &chained {
        exec(
            c,
            &format!("INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"),
            &[
                &seq(e.seq),
                &e.at,
                &e.actor,
                &e.action,
                &e.target,
                &e.request_id,
                &canonical_json(&e.detail),
                &e.prev_hash,
                &e.hash,
            ],
        )
        .await?;
    }
    Ok(chained)
}

pub(super) async fn list(c: &impl GenericClient, f: &AuditFilter) -> Result<Vec<Entry>, Fail> {
    rows(
        c,
        &format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE ($1::text IS NULL OR actor = $1) AND ($2::text IS NULL OR action = $2)
               AND ($3::text IS NULL OR target = $3) AND ($4::timestamptz IS NULL OR at >= $4)
               AND ($5::timestamptz IS NULL OR at < $5) AND ($6::bigint IS NULL OR seq < $6)
             ORDER BY seq DESC LIMIT $7"
        ),
        &[&f.actor, &f.action, &f.target, &f.since, &f.until, &f.before.map(seq), &limit(f.limit)],
    )
    .await?
    .iter()
    .map(entry)
    .collect()
}

pub(super) async fn after(c: &impl GenericClient, after: u64, n: usize) -> Result<Vec<Entry>, Fail> {
    rows(c, &format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"), &[&seq(after), &limit(n)])
        .await?
        .iter()
        .map(entry)
        .collect()
}
