//! Subject access reads and retention in SQLite. The reads page through what names a
//! person's leads; retention scans on a read connection and changes at most
//! [`BATCH`] rows per write, so the writer is never held by one long statement.

use super::reads::{REVIEW_COLUMNS, SUBMISSION_COLUMNS, lead_from_doc, review_from_row, submission_from_row};
use super::{feedback, from_millis, millis, outbox};
use crate::{AttemptRecord, OutboxDelivery, Review, StoreError, StoredFeedback, StoredSubmission};
use leadflow_core::engagement::Event;
use leadflow_core::privacy::retention::{BATCH, Kind, Run};
use leadflow_core::{EventId, FeedbackId, Lead, LeadId, SubmissionId};
use rusqlite::{Connection, params};
use time::OffsetDateTime;

/// The ids as the JSON array `json_each` reads: one statement whatever their number.
fn id_list<T: ToString>(ids: &[T]) -> String {
    serde_json::Value::Array(ids.iter().map(|i| serde_json::Value::String(i.to_string())).collect()).to_string()
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn merged_records(conn: &Connection, lead: LeadId) -> Result<Vec<Lead>, StoreError> {
    let docs: Vec<String> = conn
        .prepare_cached(
            "WITH RECURSIVE family(id) AS (SELECT ?1 UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id)
             SELECT lf_open(doc) FROM leads WHERE id IN (SELECT id FROM family) AND id <> ?1 ORDER BY created_at, id",
        )?
        .query_map([lead.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|d| lead_from_doc(d)).collect()
}

pub(super) fn submissions(
    conn: &Connection,
    leads: &[LeadId],
    after: Option<SubmissionId>,
    n: usize,
) -> Result<Vec<StoredSubmission>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions
             WHERE lead_id IN (SELECT value FROM json_each(?1)) AND id > ?2 ORDER BY id LIMIT ?3"
        ))?
        .query_map(
            params![id_list(leads), after.map(|a| a.to_string()).unwrap_or_default(), limit(n)],
            submission_from_row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().collect()
}

pub(super) fn events(
    conn: &Connection,
    leads: &[LeadId],
    after: Option<EventId>,
    n: usize,
) -> Result<Vec<Event>, StoreError> {
    let docs: Vec<String> = conn
        .prepare_cached(
            "SELECT lf_open(doc) FROM events WHERE lead_id IN (SELECT value FROM json_each(?1)) AND id > ?2 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![id_list(leads), after.map(|a| a.to_string()).unwrap_or_default(), limit(n)], |r| {
            r.get(0)
        })?
        .collect::<Result<_, _>>()?;
    docs.iter().map(|d| Ok(serde_json::from_str(d)?)).collect()
}

pub(super) fn deliveries(
    conn: &Connection,
    leads: &[LeadId],
    after: Option<String>,
    n: usize,
) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM outbox WHERE lead_id IN (SELECT value FROM json_each(?1))
               AND seq > coalesce((SELECT seq FROM outbox WHERE id = ?2), 0) ORDER BY seq LIMIT ?3",
        )?
        .query_map(params![id_list(leads), after, limit(n)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        out.extend(outbox::get(conn, &id)?);
    }
    Ok(out)
}

pub(super) fn reviews(conn: &Connection, leads: &[LeadId]) -> Result<Vec<Review>, StoreError> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {REVIEW_COLUMNS} FROM duplicate_reviews
             WHERE lead_id IN (SELECT value FROM json_each(?1)) OR candidate_id IN (SELECT value FROM json_each(?1))
             ORDER BY created_at, id"
        ))?
        .query_map([id_list(leads)], review_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().collect()
}

pub(super) fn feedback(
    conn: &Connection,
    leads: &[LeadId],
    after: Option<FeedbackId>,
    n: usize,
) -> Result<Vec<StoredFeedback>, StoreError> {
    let rows: Vec<Result<crate::feedback::Row, StoreError>> = conn
        .prepare_cached(
            "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, lf_open(doc) FROM feedback
             WHERE lead_id IN (SELECT value FROM json_each(?1)) AND id > ?2 ORDER BY id LIMIT ?3",
        )?
        .query_map(params![id_list(leads), after.map(|a| a.to_string()).unwrap_or_default(), limit(n)], |r| {
            Ok(feedback::row(r))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(|r| r.map(crate::feedback::Row::into_stored)).collect()
}

// Retention. Each kind scans by id (one pass over the table per run, resumed after the
// last id seen), then changes the ids found in one write that checks the condition again.

/// The scan of a kind: ids after `?1`, older than `?2`, at most `?3`.
fn scan_sql(kind: Kind) -> Option<&'static str> {
    Some(match kind {
        Kind::RawPayloads => {
            "SELECT id FROM submissions WHERE id > ?1 AND status = 'processed' AND received_at < ?2 AND payload <> '{}'
             ORDER BY id LIMIT ?3"
        }
        Kind::Events => "SELECT id FROM events WHERE id > ?1 AND occurred_at < ?2 ORDER BY id LIMIT ?3",
        Kind::DeliveredOutbox => {
            "SELECT id FROM outbox WHERE id > ?1 AND status = 'delivered' AND updated_at < ?2 ORDER BY id LIMIT ?3"
        }
        Kind::DeadLetters => {
            "SELECT id FROM outbox WHERE id > ?1 AND status = 'dead' AND updated_at < ?2 ORDER BY id LIMIT ?3"
        }
        Kind::Audit | Kind::InactiveLeads => return None,
    })
}

pub(super) fn scan(
    conn: &Connection,
    kind: Kind,
    after: &str,
    before: OffsetDateTime,
) -> Result<Vec<String>, StoreError> {
    let Some(sql) = scan_sql(kind) else { return Ok(Vec::new()) };
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params![after, millis(before), limit(BATCH)], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
}

/// Clears or deletes the rows `ids` names that still fall under the cutoff.
pub(super) fn apply(conn: &Connection, kind: Kind, ids: &[String], before: OffsetDateTime) -> Result<u64, StoreError> {
    let (ids, before) = (id_list(ids), millis(before));
    let n = match kind {
        // The row and its outcome stay: reports and idempotent replays still find them.
        Kind::RawPayloads => conn
            .prepare_cached(
                "UPDATE submissions SET payload = '{}' WHERE id IN (SELECT value FROM json_each(?1))
             AND status = 'processed' AND received_at < ?2 AND payload <> '{}'",
            )?
            .execute(params![ids, before])?,
        Kind::Events => conn
            .prepare_cached("DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1)) AND occurred_at < ?2")?
            .execute(params![ids, before])?,
        Kind::DeliveredOutbox | Kind::DeadLetters => {
            let status = if kind == Kind::DeliveredOutbox { "delivered" } else { "dead" };
            // A dead letter replayed since the scan is pending again: it and its tries stay.
            let still = "SELECT id FROM outbox WHERE id IN (SELECT value FROM json_each(?1)) AND status = ?2 AND updated_at < ?3";
            conn.prepare_cached(&format!("DELETE FROM delivery_attempts WHERE delivery_id IN ({still})"))?
                .execute(params![ids, status, before])?;
            conn.prepare_cached(&format!("DELETE FROM outbox WHERE id IN ({still})"))?
                .execute(params![ids, status, before])?
        }
        Kind::Audit | Kind::InactiveLeads => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The audit log's oldest entries, [`BATCH`] at a time.
pub(super) fn expire_audit(conn: &Connection, before: OffsetDateTime) -> Result<u64, StoreError> {
    let n = conn
        .prepare_cached(
            // The newest entry stays, whatever its age: the chain goes on from it, rather than
            // starting again at 1 where nothing would show what came before.
            "DELETE FROM audit_log WHERE rowid IN (SELECT rowid FROM audit_log WHERE at < ?1
                 AND seq < (SELECT max(seq) FROM audit_log) ORDER BY seq LIMIT ?2)",
        )?
        .execute(params![millis(before), limit(BATCH)])?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn count(conn: &Connection, kind: Kind, before: OffsetDateTime) -> Result<u64, StoreError> {
    let sql = match kind {
        Kind::RawPayloads => {
            "SELECT count(*) FROM submissions WHERE status = 'processed' AND received_at < ?1 AND payload <> '{}'"
        }
        Kind::Events => "SELECT count(*) FROM events WHERE occurred_at < ?1",
        Kind::DeliveredOutbox => "SELECT count(*) FROM outbox WHERE status = 'delivered' AND updated_at < ?1",
        Kind::DeadLetters => "SELECT count(*) FROM outbox WHERE status = 'dead' AND updated_at < ?1",
        Kind::Audit => "SELECT count(*) FROM audit_log WHERE at < ?1 AND seq < (SELECT max(seq) FROM audit_log)",
        Kind::InactiveLeads => {
            "SELECT count(*) FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND updated_at < ?1"
        }
    };
    let n: i64 = conn.prepare_cached(sql)?.query_row([millis(before)], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) fn inactive_leads(
    conn: &Connection,
    before: OffsetDateTime,
    after: Option<LeadId>,
    n: usize,
) -> Result<Vec<LeadId>, StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND updated_at < ?1 AND id > ?2
             ORDER BY id LIMIT ?3",
        )?
        .query_map(params![millis(before), after.map(|a| a.to_string()).unwrap_or_default(), limit(n)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.iter().map(|i| i.parse().map_err(|_| StoreError::Corrupt(format!("lead id {i}")))).collect()
}

pub(super) fn save_run(conn: &Connection, run: &Run) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO retention_runs (id, trigger, started_at, finished_at, kinds, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, kinds = excluded.kinds, error = excluded.error",
    )?
    .execute(params![
        run.id,
        run.trigger,
        millis(run.started_at),
        run.finished_at.map(millis),
        serde_json::to_string(&run.kinds)?,
        run.error
    ])?;
    Ok(())
}

pub(super) fn list_runs(conn: &Connection, n: usize) -> Result<Vec<Run>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT id, trigger, started_at, finished_at, kinds, error FROM retention_runs
             ORDER BY started_at DESC, id DESC LIMIT ?1",
        )?
        .query_map([limit(n)], |r| {
            let kinds: String = r.get(4)?;
            Ok((
                Run {
                    id: r.get(0)?,
                    trigger: r.get(1)?,
                    started_at: from_millis(r.get(2)?),
                    finished_at: r.get::<_, Option<i64>>(3)?.map(from_millis),
                    kinds: Vec::new(),
                    error: r.get(5)?,
                },
                kinds,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(|(run, kinds)| Ok(Run { kinds: serde_json::from_str(&kinds)?, ..run })).collect()
}
