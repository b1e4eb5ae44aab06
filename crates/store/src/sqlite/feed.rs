//! The change feed in SQLite: rows written beside the changes they report, in the same
//! transaction, and read back by number. The writer is the only one, so numbers follow
//! commit order and a reader's snapshot always holds a gapless prefix.

use super::{from_millis, millis};
use crate::StoreError;
use leadflow_core::LeadId;
use leadflow_core::feed::{Detail, FeedChange, FeedEntry, Kind};
use rusqlite::{Connection, OptionalExtension, params};

pub(super) fn append(conn: &Connection, entries: &[FeedEntry]) -> Result<(), StoreError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut insert = conn.prepare_cached("INSERT INTO changes (type, lead_id, at, detail) VALUES (?1, ?2, ?3, ?4)")?;
    for e in entries {
        let detail = if e.detail.is_empty() { None } else { Some(serde_json::to_string(&e.detail)?) };
        insert.execute(params![e.kind.as_str(), e.lead.to_string(), millis(e.at), detail])?;
    }
    Ok(())
}

/// Up to `limit` changes after position `after`, and the latest position when none
/// follows it (to tell a cursor from the future from one at the head).
pub(super) fn read(conn: &Connection, after: u64, limit: usize) -> Result<(Vec<(u64, FeedChange)>, u64), StoreError> {
    let after_i = i64::try_from(after).unwrap_or(i64::MAX);
    let mut rows = conn.prepare_cached(
        "SELECT cursor, type, lead_id, at, detail FROM changes WHERE cursor > ?1 ORDER BY cursor LIMIT ?2",
    )?;
    let changes = rows
        .query_map(params![after_i, i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?
        .map(|row| {
            let (cursor, kind, lead, at, detail) = row?;
            change(cursor, &kind, &lead, at, detail.as_deref())
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let head = match changes.last() {
        Some((last, _)) => *last,
        None => head(conn)?,
    };
    Ok((changes, head))
}

/// The number of the latest change ever written (pruned or not).
fn head(conn: &Connection) -> Result<u64, StoreError> {
    let seq: Option<i64> =
        conn.query_row("SELECT seq FROM sqlite_sequence WHERE name = 'changes'", [], |r| r.get(0)).optional()?;
    Ok(seq.map_or(0, |s| u64::try_from(s).unwrap_or(0)))
}

fn change(cursor: i64, kind: &str, lead: &str, at: i64, detail: Option<&str>) -> Result<(u64, FeedChange), StoreError> {
    let cursor = u64::try_from(cursor).map_err(|_| StoreError::Corrupt(format!("change number {cursor}")))?;
    let kind = Kind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("change type {kind:?}")))?;
    let lead_id: LeadId = lead.parse().map_err(|_| StoreError::Corrupt(format!("lead id {lead:?}")))?;
    let detail: Detail = match detail {
        Some(text) => serde_json::from_str(text)?,
        None => Detail::default(),
    };
    let change =
        FeedChange { cursor: cursor.to_string(), kind: kind.as_str().to_owned(), lead_id, at: from_millis(at), detail };
    Ok((cursor, change))
}
