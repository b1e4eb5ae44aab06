//! The change feed in PostgreSQL.
//!
//! The entries a transaction's changes make gather in a buffer of its own (a task-local,
//! so every path that applies changes fills it without carrying it along), and one
//! statement sent last before the COMMIT writes them unnumbered, in order, under a
//! sequence. Numbers are given on reading: [`number`] takes the clock's row lock and
//! numbers every committed unnumbered change in sequence order, in its own transaction,
//! before [`read`] reads. A change is numbered only once it is committed, and after every
//! change numbered before it, so a reader sees numbers in commit order with no gaps (a
//! transaction still in flight is numbered by a later read, after the numbers given out
//! meanwhile), across connections and instances; a transaction that rolls back leaves
//! nothing. Writers never wait for one another on the clock: only readers take it, for
//! the time of one statement. Two changes of the same lead are in commit order within one
//! numbering too: the later transaction waited for the earlier one's row lock, so its
//! changes were written, and drew their sequence numbers, after the earlier one committed.

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

const WRITE: &str = "INSERT INTO changes (type, lead_id, at, detail)
     SELECT u.type, u.lead_id, u.at, u.detail
     FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::jsonb[]) WITH ORDINALITY AS u (type, lead_id, at, detail, n)
     ORDER BY u.n";

/// The most changes one numbering takes; a reader behind more numbers the rest next time.
const NUMBER_AT_ONCE: i64 = 100_000;

/// Numbers every committed change not numbered yet, in sequence order, after the last
/// number given; `tx` must commit right after. Readers call it before reading.
pub(super) async fn number(tx: &impl GenericClient) -> Result<(), Fail> {
    // Most reads of a reader that keeps up find nothing to number: they must not take the
    // lock, which would make every read a write with a commit to flush.
    if rows(tx, "SELECT 1 FROM changes WHERE cursor IS NULL LIMIT 1", &[]).await?.is_empty() {
        return Ok(());
    }
    // The lock first, in a statement of its own: the next statement's snapshot is taken
    // after it, so it sees what the previous numbering committed.
    let last: i64 =
        rows(tx, "SELECT last FROM change_clock FOR UPDATE", &[]).await?.first().map_or(Ok(0), |r| r.try_get(0))?;
    super::sql::exec(
        tx,
        "WITH pending AS (
             SELECT seq, row_number() OVER (ORDER BY seq) AS k FROM changes
             WHERE cursor IS NULL ORDER BY seq LIMIT $2
         ), numbered AS (
             UPDATE changes c SET cursor = $1 + p.k FROM pending p WHERE c.seq = p.seq RETURNING 1
         )
         UPDATE change_clock SET last = $1 + (SELECT count(*) FROM numbered)",
        &[&last, &NUMBER_AT_ONCE],
    )
    .await?;
    Ok(())
}

/// The statement that writes the buffered entries, emptying the buffer; it is the
/// transaction's last before COMMIT, so a savepoint rolled back after it cannot take back
/// entries the buffer no longer holds.
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
            let last: i64 = rows(c, "SELECT last FROM change_clock FOR UPDATE", &[])
                .await?
                .first()
                .map_or(Ok(0), |r| r.try_get(0))?;
            u64::try_from(last).unwrap_or(0)
        }
    };
    Ok((changes, head))
}
