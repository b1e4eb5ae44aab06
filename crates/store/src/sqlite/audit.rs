//! The audit log in SQLite. Appends run on the single writer, which serializes them: the
//! head read and the inserts share one transaction, so no two appends chain from the
//! same head.

use super::{from_millis, millis};
use crate::{AuditFilter, StoreError};
use leadflow_core::audit::{Entry, NewEntry, canonical_json, chain};
use rusqlite::{Connection, OptionalExtension, Row, params};
use time::OffsetDateTime;

const COLUMNS: &str = "seq, at, actor, action, target, request_id, detail, prev_hash, hash";

fn entry(r: &Row<'_>) -> rusqlite::Result<(Entry, String)> {
    Ok((
        Entry {
            seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or_default(),
            at: from_millis(r.get(1)?),
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            request_id: r.get(5)?,
            detail: serde_json::Value::Null,
            prev_hash: r.get(7)?,
            hash: r.get(8)?,
        },
        r.get(6)?,
    ))
}

fn entries(rows: impl Iterator<Item = rusqlite::Result<(Entry, String)>>) -> Result<Vec<Entry>, StoreError> {
    rows.map(|r| {
        let (mut e, detail) = r?;
        e.detail = serde_json::from_str(&detail)?;
        Ok(e)
    })
    .collect()
}

fn seq(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn append(conn: &Connection, news: Vec<NewEntry>, at: OffsetDateTime) -> Result<Vec<Entry>, StoreError> {
    let head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let head = head.map(|(s, h)| (u64::try_from(s).unwrap_or_default(), h));
    let chained = chain(head.as_ref().map(|(s, h)| (*s, h.as_str())), news, at);
    let mut insert =
        conn.prepare_cached(&format!("INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"))?;
    for e in &chained {
        insert.execute(params![
            seq(e.seq),
            millis(e.at),
            e.actor,
            e.action,
            e.target,
            e.request_id,
            canonical_json(&e.detail),
            e.prev_hash,
            e.hash
        ])?;
    }
    Ok(chained)
}

pub(super) fn list(conn: &Connection, f: &AuditFilter) -> Result<Vec<Entry>, StoreError> {
    entries(
        conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM audit_log
             WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2) AND (?3 IS NULL OR target = ?3)
               AND (?4 IS NULL OR at >= ?4) AND (?5 IS NULL OR at < ?5) AND (?6 IS NULL OR seq < ?6)
             ORDER BY seq DESC LIMIT ?7"
        ))?
        .query_map(
            params![
                f.actor,
                f.action,
                f.target,
                f.since.map(millis),
                f.until.map(millis),
                f.before.map(seq),
                i64::try_from(f.limit).unwrap_or(i64::MAX)
            ],
            entry,
        )?,
    )
}

pub(super) fn after(conn: &Connection, after: u64, limit: usize) -> Result<Vec<Entry>, StoreError> {
    entries(
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2"))?
            .query_map(params![seq(after), i64::try_from(limit).unwrap_or(i64::MAX)], entry)?,
    )
}
