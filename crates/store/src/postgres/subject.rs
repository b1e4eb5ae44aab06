//! Subject access reads and retention in PostgreSQL. The reads page through what names a
//! person's leads; retention scans by id and changes at most [`BATCH`] rows per
//! transaction, so no statement holds many row locks for long.

use super::sealing::Opened;
use super::sql::{
    REVIEW_COLUMNS, SUBMISSION_COLUMNS, exec, lead_from_row, limit, one, review_from_row, rows, submission_from_row,
};
use super::{Fail, feedback, outbox};
use crate::{AttemptRecord, OutboxDelivery, Review, StoredFeedback, StoredSubmission};
use deadpool_postgres::GenericClient;
use leadflow_core::engagement::Event;
use leadflow_core::privacy::retention::{BATCH, Kind, Run};
use leadflow_core::{EventId, FeedbackId, Lead, LeadId, SubmissionId};
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

fn uuids(leads: &[LeadId]) -> Vec<Uuid> {
    leads.iter().map(|l| *l.as_uuid()).collect()
}

pub(super) async fn merged_records(c: &impl GenericClient, lead: LeadId) -> Result<Vec<Lead>, Fail> {
    rows(
        c,
        "WITH RECURSIVE family(id) AS (
             SELECT $1::uuid
             UNION SELECT m.id FROM family f CROSS JOIN LATERAL (SELECT id FROM leads WHERE merged_into = f.id OFFSET 0) m)
         SELECT doc FROM leads WHERE id IN (SELECT id FROM family) AND id <> $1 ORDER BY created_at, id",
        &[lead.as_uuid()],
    )
    .await?
    .iter()
    .map(|r| lead_from_row(r, 0))
    .collect()
}

pub(super) async fn submissions(
    c: &impl GenericClient,
    leads: &[LeadId],
    after: Option<SubmissionId>,
    n: usize,
) -> Result<Vec<StoredSubmission>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    let sql = format!(
        "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE lead_id = ANY($1) AND id > $2 ORDER BY id LIMIT $3"
    );
    rows(c, &sql, &[&uuids(leads), &after, &limit(n)]).await?.iter().map(submission_from_row).collect()
}

pub(super) async fn events(
    c: &impl GenericClient,
    leads: &[LeadId],
    after: Option<EventId>,
    n: usize,
) -> Result<Vec<Event>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    rows(
        c,
        "SELECT doc FROM events WHERE lead_id = ANY($1) AND id > $2 ORDER BY id LIMIT $3",
        &[&uuids(leads), &after, &limit(n)],
    )
    .await?
    .iter()
    .map(|r| Ok(r.try_get::<_, Opened<Event>>(0)?.0))
    .collect()
}

pub(super) async fn deliveries(
    c: &impl GenericClient,
    leads: &[LeadId],
    after: Option<String>,
    n: usize,
) -> Result<Vec<(OutboxDelivery, Vec<AttemptRecord>)>, Fail> {
    let ids = rows(
        c,
        "SELECT id FROM outbox WHERE lead_id = ANY($1)
           AND seq > coalesce((SELECT seq FROM outbox WHERE id = $2), 0) ORDER BY seq LIMIT $3",
        &[&uuids(leads), &after, &limit(n)],
    )
    .await?;
    let mut out = Vec::with_capacity(ids.len());
    for row in ids {
        let id: String = row.try_get(0)?;
        out.extend(outbox::get(c, &id).await?);
    }
    Ok(out)
}

pub(super) async fn reviews(c: &impl GenericClient, leads: &[LeadId]) -> Result<Vec<Review>, Fail> {
    let sql = format!(
        "SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE lead_id = ANY($1) OR candidate_id = ANY($1)
         ORDER BY created_at, id"
    );
    rows(c, &sql, &[&uuids(leads)]).await?.iter().map(review_from_row).collect()
}

pub(super) async fn feedback(
    c: &impl GenericClient,
    leads: &[LeadId],
    after: Option<FeedbackId>,
    n: usize,
) -> Result<Vec<StoredFeedback>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    rows(
        c,
        "SELECT id, source, event_id, lead_id, status, outcome, occurred_at, received_at, doc FROM feedback
         WHERE lead_id = ANY($1) AND id > $2 ORDER BY id LIMIT $3",
        &[&uuids(leads), &after, &limit(n)],
    )
    .await?
    .iter()
    .map(|r| Ok(feedback::row(r)?.into_stored()))
    .collect()
}

// Retention. Each kind scans by id (one pass over the table per run, resumed after the
// last id seen), then changes the ids found in a transaction that checks the condition
// again.

/// The first id of a scan: below every id of the kind's table.
pub(super) fn scan_start(kind: Kind) -> String {
    match kind {
        Kind::RawPayloads | Kind::Events => Uuid::nil().to_string(),
        _ => String::new(),
    }
}

pub(super) async fn scan(
    c: &impl GenericClient,
    kind: Kind,
    after: &str,
    before: OffsetDateTime,
) -> Result<Vec<String>, Fail> {
    let sql = match kind {
        Kind::RawPayloads => {
            "SELECT id::text FROM submissions
             WHERE id > $1::text::uuid AND status = 'processed' AND received_at < $2 AND payload <> '{}'::jsonb
             ORDER BY id LIMIT $3"
        }
        Kind::Events => {
            "SELECT id::text FROM events WHERE id > $1::text::uuid AND occurred_at < $2 ORDER BY id LIMIT $3"
        }
        Kind::DeliveredOutbox => {
            "SELECT id FROM outbox WHERE id > $1 AND status = 'delivered' AND updated_at < $2 ORDER BY id LIMIT $3"
        }
        Kind::DeadLetters => {
            "SELECT id FROM outbox WHERE id > $1 AND status = 'dead' AND updated_at < $2 ORDER BY id LIMIT $3"
        }
        Kind::Audit | Kind::InactiveLeads => return Ok(Vec::new()),
    };
    rows(c, sql, &[&after, &before, &limit(BATCH)]).await?.iter().map(|r| Ok(r.try_get(0)?)).collect()
}

/// Clears or deletes the rows `ids` names that still fall under the cutoff.
pub(super) async fn apply(
    c: &impl GenericClient,
    kind: Kind,
    ids: &[String],
    before: OffsetDateTime,
) -> Result<u64, Fail> {
    match kind {
        // The row and its outcome stay: reports and idempotent replays still find them.
        Kind::RawPayloads => {
            exec(
                c,
                "UPDATE submissions SET payload = '{}'::jsonb WHERE id = ANY($1::text[]::uuid[])
                 AND status = 'processed' AND received_at < $2 AND payload <> '{}'::jsonb",
                &[&ids, &before],
            )
            .await
        }
        Kind::Events => {
            exec(c, "DELETE FROM events WHERE id = ANY($1::text[]::uuid[]) AND occurred_at < $2", &[&ids, &before])
                .await
        }
        Kind::DeliveredOutbox | Kind::DeadLetters => {
            let status = if kind == Kind::DeliveredOutbox { "delivered" } else { "dead" };
            // Locked, so a replay cannot make one pending between the two deletes.
            let still: Vec<String> = rows(
                c,
                "SELECT id FROM outbox WHERE id = ANY($1) AND status = $2 AND updated_at < $3 ORDER BY id FOR UPDATE",
                &[&ids, &status, &before],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
            exec(c, "DELETE FROM delivery_attempts WHERE delivery_id = ANY($1)", &[&still]).await?;
            exec(c, "DELETE FROM outbox WHERE id = ANY($1)", &[&still]).await
        }
        Kind::Audit | Kind::InactiveLeads => Ok(0),
    }
}

/// The audit log's oldest entries, [`BATCH`] at a time.
pub(super) async fn expire_audit(c: &impl GenericClient, before: OffsetDateTime) -> Result<u64, Fail> {
    exec(
        c,
        // The newest entry stays, whatever its age: the chain goes on from it, rather than
        // starting again at 1 where nothing would show what came before.
        "DELETE FROM audit_log WHERE ctid IN (SELECT ctid FROM audit_log WHERE at < $1
             AND seq < (SELECT max(seq) FROM audit_log) ORDER BY seq LIMIT $2)",
        &[&before, &limit(BATCH)],
    )
    .await
}

pub(super) async fn count(c: &impl GenericClient, kind: Kind, before: OffsetDateTime) -> Result<u64, Fail> {
    let sql = match kind {
        Kind::RawPayloads => {
            "SELECT count(*) FROM submissions WHERE status = 'processed' AND received_at < $1 AND payload <> '{}'::jsonb"
        }
        Kind::Events => "SELECT count(*) FROM events WHERE occurred_at < $1",
        Kind::DeliveredOutbox => "SELECT count(*) FROM outbox WHERE status = 'delivered' AND updated_at < $1",
        Kind::DeadLetters => "SELECT count(*) FROM outbox WHERE status = 'dead' AND updated_at < $1",
        Kind::Audit => "SELECT count(*) FROM audit_log WHERE at < $1 AND seq < (SELECT max(seq) FROM audit_log)",
        Kind::InactiveLeads => {
            "SELECT count(*) FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND updated_at < $1"
        }
    };
    let n: i64 = one(c, sql, &[&before]).await?.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(super) async fn inactive_leads(
    c: &impl GenericClient,
    before: OffsetDateTime,
    after: Option<LeadId>,
    n: usize,
) -> Result<Vec<LeadId>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    rows(
        c,
        "SELECT id FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND updated_at < $1 AND id > $2
         ORDER BY id LIMIT $3",
        &[&before, &after, &limit(n)],
    )
    .await?
    .iter()
    .map(|r| Ok(LeadId::from(r.try_get::<_, Uuid>(0)?)))
    .collect()
}

pub(super) async fn save_run(c: &impl GenericClient, run: &Run) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO retention_runs (id, trigger, started_at, finished_at, kinds, error) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (id) DO UPDATE SET finished_at = excluded.finished_at, kinds = excluded.kinds, error = excluded.error",
        &[&run.id, &run.trigger, &run.started_at, &run.finished_at, &Json(&run.kinds), &run.error],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_runs(c: &impl GenericClient, n: usize) -> Result<Vec<Run>, Fail> {
    rows(
        c,
        "SELECT id, trigger, started_at, finished_at, kinds, error FROM retention_runs
         ORDER BY started_at DESC, id DESC LIMIT $1",
        &[&limit(n)],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(Run {
            id: r.try_get(0)?,
            trigger: r.try_get(1)?,
            started_at: r.try_get(2)?,
            finished_at: r.try_get(3)?,
            kinds: r.try_get::<_, Json<Vec<_>>>(4)?.0,
            error: r.try_get(5)?,
        })
    })
    .collect()
}
