//! The inbox in PostgreSQL: a submission's row, the answer an earlier submission with the
//! same idempotency key gives, and settling one submission on its own in a savepoint (the
//! way back when a group failed). Settling many at once is [`super::settle`]'s.

use super::Fail;
use super::apply::{self, Op};
use super::health;
use super::sealing::{self, Sealed, SealedText};
use super::settle::{self, EARLIER, Entry, Transaction};
use super::sql::{lead_following_merges, rows};
use crate::{Captured, StoreError, SubmissionStatus};
use deadpool_postgres::GenericClient;
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::error::FieldError;
use leadflow_core::health::Tally;
use leadflow_core::pipeline::Outcome;
use leadflow_core::{LeadId, SubmissionId};
use tokio_postgres::Row;
use uuid::Uuid;

/// Settles one submission in a savepoint: one that fails to settle is kept as pending,
/// and the rest of the transaction goes on.
pub(super) async fn capture_one_guarded(c: &impl GenericClient, entry: &Entry<'_>) -> Result<Captured, Fail> {
    let sub = &entry.item.submission;
    if let Some(first) = earlier_submission(c, sub).await? {
        return Ok(first);
    }
    c.batch_execute("SAVEPOINT settle").await?;
    let feed = super::feed::mark();
    match settle::settle_all(c, std::slice::from_ref(entry), &[], Transaction::Callers).await {
        Ok(mut captured) => {
            c.batch_execute("RELEASE SAVEPOINT settle").await?;
            captured.pop().ok_or_else(|| StoreError::Internal("no answer for a settled submission".into()).into())
        }
        // A lost race or a lost connection is the whole transaction's to handle.
        Err(e) if e.retryable(true) || e.unavailable() => Err(e),
        Err(e) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT settle").await?;
            super::feed::rewind(feed);
            let e = e.into_store();
            tracing::warn!(submission_id = %sub.id, error = %e, "settling failed; the submission stays pending");
            upsert_submission(c, sub, SubmissionStatus::Pending, None, Some(&e.to_string())).await?;
            Ok(Captured::Pending { submission_id: sub.id })
        }
    }
}

/// The first outcome of an earlier submission with the same key, if there is one (a
/// refusal when the key came with another body).
async fn earlier_submission(c: &impl GenericClient, sub: &RawSubmission) -> Result<Option<Captured>, Fail> {
    let Some(key) = &sub.idempotency_key else { return Ok(None) };
    let found = rows(c, EARLIER, &[&[sub.source.as_str()].as_slice(), &[key.as_str()].as_slice()]).await?;
    match found.first() {
        Some(row) => earlier_outcome(c, sub, row).await,
        None => Ok(None),
    }
}

/// What an earlier submission with `sub`'s key answers, from its row of [`EARLIER`];
/// `None` when the row is `sub`'s own (stored pending, settled now).
pub(super) async fn earlier_outcome(
    c: &impl GenericClient,
    sub: &RawSubmission,
    row: &Row,
) -> Result<Option<Captured>, Fail> {
    let submission_id = SubmissionId::from(row.try_get::<_, Uuid>(1)?);
    if submission_id == sub.id {
        return Ok(None);
    }
    if sub.reuses_key_of(row.try_get(6)?) {
        return Ok(Some(Captured::KeyReused { submission_id }));
    }
    let status: &str = row.try_get(2)?;
    let outcome: Option<&str> = row.try_get(3)?;
    let lead_id: Option<Uuid> = row.try_get(4)?;
    let error = sealing::text(row.try_get(5)?);
    Ok(Some(match (status, outcome, lead_id) {
        ("processed", Some(outcome), Some(lead_id)) => {
            let lead = lead_following_merges(c, LeadId::from(lead_id), false)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("submission {submission_id} names a missing lead")))?;
            let outcome = if outcome == "merged" { Outcome::Merged } else { Outcome::Created };
            Captured::Settled { submission_id, outcome, lead: Box::new(lead), replayed: true }
        }
        ("rejected", _, _) => Captured::Rejected { submission_id, errors: stored_errors(error.as_deref()) },
        _ => Captured::Pending { submission_id },
    }))
}

async fn upsert_submission(
    c: &impl GenericClient,
    sub: &RawSubmission,
    status: SubmissionStatus,
    settled: Option<(LeadId, Outcome)>,
    error: Option<&str>,
) -> Result<(), Fail> {
    apply::run(c, vec![submission_op(sub, status, settled, error)]).await
}

pub(super) fn submission_op<'a>(
    sub: &'a RawSubmission,
    status: SubmissionStatus,
    settled: Option<(LeadId, Outcome)>,
    error: Option<&'a str>,
) -> Op<'a> {
    Op::new(
        "INSERT INTO submissions (id, source, idempotency_key, received_at, payload, status, lead_id, outcome, error,
                                  fingerprint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, status = excluded.status,
             lead_id = excluded.lead_id, outcome = excluded.outcome, error = excluded.error",
        vec![
            Box::new(sub.id.as_uuid()),
            Box::new(sub.source.as_str()),
            Box::new(sub.idempotency_key.as_ref().map(IdempotencyKey::as_str)),
            Box::new(sub.received_at),
            Box::new(Sealed(&sub.payload)),
            Box::new(status.as_str()),
            Box::new(settled.map(|(id, _)| *id.as_uuid())),
            Box::new(settled.map(|(_, o)| o.as_str())),
            Box::new(error.map(SealedText)),
            Box::new(&sub.fingerprint),
        ],
    )
    .many(
        "INSERT INTO submissions (id, source, idempotency_key, received_at, payload, status, lead_id, outcome, error,
                                  fingerprint)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[], $6::text[],
                              $7::uuid[], $8::text[], $9::text[], $10::text[])
         ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, status = excluded.status,
             lead_id = excluded.lead_id, outcome = excluded.outcome, error = excluded.error",
    )
}

pub(super) async fn enqueue_one(c: &impl GenericClient, sub: &RawSubmission, tally: &mut Tally) -> Result<(), Fail> {
    if earlier_submission(c, sub).await?.is_some() {
        return Ok(());
    }
    let new = health::stored_submissions(c, &[*sub.id.as_uuid()]).await?.is_empty();
    upsert_submission(c, sub, SubmissionStatus::Pending, None, None).await?;
    if new {
        tally.received(sub.source.as_str(), sub.received_at);
    }
    Ok(())
}

pub(super) async fn quarantine_one(
    c: &impl GenericClient,
    sub: &RawSubmission,
    errors: &[FieldError],
    tally: &mut Tally,
) -> Result<Captured, Fail> {
    if let Some(first) = earlier_submission(c, sub).await? {
        return Ok(first);
    }
    let reasons = serde_json::to_string(errors)?;
    let new = health::stored_submissions(c, &[*sub.id.as_uuid()]).await?.is_empty();
    upsert_submission(c, sub, SubmissionStatus::Rejected, None, Some(&reasons)).await?;
    if new {
        tally.received(sub.source.as_str(), sub.received_at);
    }
    tally.quarantined(sub.source.as_str(), errors, time::OffsetDateTime::now_utc());
    Ok(Captured::Rejected { submission_id: sub.id, errors: errors.to_vec() })
}

/// The quarantine reasons stored with a submission. Settling failures are stored as
/// plain text and read back as one general error.
pub(super) fn stored_errors(error: Option<&str>) -> Vec<FieldError> {
    match error {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text)
            .unwrap_or_else(|_| vec![FieldError::new("", leadflow_core::FieldErrorCode::WrongType, text.to_owned())]),
    }
}
