//! The change feed in PostgreSQL.
//!
//! Changes are numbered at the very end of their transaction: the entries a transaction's
//! changes make gather in a buffer of its own (a task-local, so every path that applies
//! changes fills it without carrying it along), and one statement sent last before the
//! COMMIT advances the clock and writes them. The clock's row lock, held through the
//! COMMIT, makes the next transaction number its changes after this one is visible: the
//! numbers follow commit order across connections and instances, and a transaction that
//! rolls back gives its numbers back. Taking the lock last keeps it out of every wait
//! cycle: its holder waits for nothing but its own commit.

use super::Fail;
use super::apply::{Op, p};
use super::sql::rows;
use crate::StoreError;
use deadpool_postgres::GenericClient;
use leadflow_core::feed::{Detail, FeedChange, FeedEntry, Kind};
use std::cell::RefCell;
use std::future::Future;
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

tokio::task_local! {
    static PENDING: RefCell<Vec<FeedEntry>>;
}

/// Runs `f` (one attempt at a transaction) with an empty feed buffer of its own.
pub(super) async fn scoped<F: Future>(f: F) -> F::Output {
    PENDING.scope(RefCell::new(Vec::new()), f).await
}

/// Adds entries to the running transaction's buffer.
pub(super) fn add(entries: Vec<FeedEntry>) -> Result<(), Fail> {
    if entries.is_empty() {
        return Ok(());
    }
    PENDING.try_with(|pending| pending.borrow_mut().extend(entries)).map_err(|_| {
        StoreError::Internal("changes were applied outside a transaction that writes the feed".into()).into()
    })
}

/// How many entries the buffer holds: what [`rewind`] goes back to when a savepoint is
/// rolled back.
pub(super) fn mark() -> usize {
    PENDING.try_with(|pending| pending.borrow().len()).unwrap_or(0)
}

pub(super) fn rewind(mark: usize) {
    let _ = PENDING.try_with(|pending| pending.borrow_mut().truncate(mark));
}

const WRITE: &str = "WITH clock AS (
         UPDATE change_clock SET last = last + cardinality($1::text[]) RETURNING last
     )
     INSERT INTO changes (cursor, type, lead_id, at, detail)
     SELECT clock.last - cardinality($1::text[]) + u.n, u.type, u.lead_id, u.at, u.detail
     FROM clock, unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::jsonb[]) WITH ORDINALITY AS u (type, lead_id, at, detail, n)";

/// The statement that numbers and writes the buffered entries, emptying the buffer; it
/// must be the transaction's last before COMMIT.
pub(super) fn take() -> Option<Op<'static>> {
    let entries = PENDING.try_with(|pending| std::mem::take(&mut *pending.borrow_mut())).ok()?;
    if entries.is_empty() {
        return None;
    }
    let mut kinds = Vec::with_capacity(entries.len());
    let mut leads = Vec::with_capacity(entries.len());
    let mut ats: Vec<OffsetDateTime> = Vec::with_capacity(entries.len());
    let mut details = Vec::with_capacity(entries.len());
    for e in entries {
        kinds.push(e.kind.as_str());
        leads.push(*e.lead.as_uuid());
        ats.push(e.at);
        details.push((!e.detail.is_empty()).then_some(Json(e.detail)));
    }
    Some(Op::new(WRITE, vec![p(kinds), p(leads), p(ats), p(details)]))
}

/// Writes the buffered entries; for transactions that commit with a plain COMMIT.
pub(super) async fn write(c: &impl GenericClient) -> Result<(), Fail> {
    match take() {
        Some(op) => super::apply::run(c, vec![op]).await,
        None => Ok(()),
    }
}

/// Up to `limit` changes after position `after`, and the latest position when none
/// follows it.
pub(super) async fn read(
    c: &impl GenericClient,
    after: u64,
    limit: usize,
) -> Result<(Vec<(u64, FeedChange)>, u64), Fail> {
    let after_i = i64::try_from(after).unwrap_or(i64::MAX);
    let limit_i = i64::try_from(limit).unwrap_or(i64::MAX);
    let found = rows(
        c,
        "SELECT cursor, type, lead_id, at, detail FROM changes WHERE cursor > $1 ORDER BY cursor LIMIT $2",
        &[&after_i, &limit_i],
    )
    .await?;
    let mut changes = Vec::with_capacity(found.len());
    for row in &found {
        let cursor: i64 = row.try_get(0)?;
        let kind: &str = row.try_get(1)?;
        let lead: Uuid = row.try_get(2)?;
        let detail: Option<Json<Detail>> = row.try_get(4)?;
        let cursor = u64::try_from(cursor).map_err(|_| StoreError::Corrupt(format!("change number {cursor}")))?;
        let kind = Kind::parse(kind).ok_or_else(|| StoreError::Corrupt(format!("change type {kind:?}")))?;
        changes.push((
            cursor,
            FeedChange {
                cursor: cursor.to_string(),
                kind: kind.as_str().to_owned(),
                lead_id: lead.into(),
                at: row.try_get(3)?,
                detail: detail.map(|d| d.0).unwrap_or_default(),
            },
        ));
    }
    let head = match changes.last() {
        Some((last, _)) => *last,
        None => {
            let last: i64 =
                rows(c, "SELECT last FROM change_clock", &[]).await?.first().map_or(Ok(0), |r| r.try_get(0))?;
            u64::try_from(last).unwrap_or(0)
        }
    };
    Ok((changes, head))
}
