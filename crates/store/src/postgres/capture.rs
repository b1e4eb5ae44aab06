//! Capture in PostgreSQL: the inbox row, and settling a submission inside the caller's
//! transaction (which holds the advisory locks of its keys). The core
//! ([`leadflow_core::settle`]) decides every step; this module loads what each step asks
//! for and applies the changes it returns.

use super::apply::{self, Op};
use super::sql::{lead_following_merges, leads_by_mailbox, limit, opt, rows};
use super::{Fail, accounts, engagement};
use crate::{CaptureItem, Captured, StoreError, SubmissionStatus};
use deadpool_postgres::GenericClient;
use futures_util::future::{try_join, try_join3};
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::changes::Change;
use leadflow_core::error::FieldError;
use leadflow_core::pipeline::{Outcome, Rules, SubmissionMeta};
use leadflow_core::resolve::Record;
use leadflow_core::settle::{self, Candidates, Context, ContextQuery, Lookup, Settle};
use leadflow_core::{LeadId, SubmissionId};
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

pub(super) async fn capture_one(c: &impl GenericClient, item: &CaptureItem, rules: &Rules) -> Result<Captured, Fail> {
    let sub = &item.submission;
    if let Some(first) = earlier_submission(c, sub).await? {
        return Ok(first);
    }
    settle(c, item, rules).await
}

/// Like [`capture_one`], but a submission that fails to settle is kept as pending.
pub(super) async fn capture_one_guarded(
    c: &impl GenericClient,
    item: &CaptureItem,
    rules: &Rules,
) -> Result<Captured, Fail> {
    let sub = &item.submission;
    if let Some(first) = earlier_submission(c, sub).await? {
        return Ok(first);
    }
    c.batch_execute("SAVEPOINT settle").await?;
    match settle(c, item, rules).await {
        Ok(captured) => {
            c.batch_execute("RELEASE SAVEPOINT settle").await?;
            Ok(captured)
        }
        // A lost race or a lost connection is the whole transaction's to handle.
        Err(e) if e.retryable(true) || e.unavailable() => Err(e),
        Err(e) => {
            c.batch_execute("ROLLBACK TO SAVEPOINT settle").await?;
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
    let row = opt(
        c,
        "SELECT id, status, outcome, lead_id, error, fingerprint FROM submissions
         WHERE source = $1 AND idempotency_key = $2",
        &[&sub.source.as_str(), &key.as_str()],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let submission_id = SubmissionId::from(row.try_get::<_, Uuid>(0)?);
    if submission_id == sub.id {
        return Ok(None);
    }
    if sub.reuses_key_of(row.try_get(5)?) {
        return Ok(Some(Captured::KeyReused { submission_id }));
    }
    let status: &str = row.try_get(1)?;
    let outcome: Option<&str> = row.try_get(2)?;
    let lead_id: Option<Uuid> = row.try_get(3)?;
    let error: Option<&str> = row.try_get(4)?;
    Ok(Some(match (status, outcome, lead_id) {
        ("processed", Some(outcome), Some(lead_id)) => {
            let lead = lead_following_merges(c, LeadId::from(lead_id), false)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("submission {submission_id} names a missing lead")))?;
            let outcome = if outcome == "merged" { Outcome::Merged } else { Outcome::Created };
            Captured::Settled { submission_id, outcome, lead: Box::new(lead), replayed: true }
        }
        ("rejected", _, _) => Captured::Rejected { submission_id, errors: stored_errors(error) },
        _ => Captured::Pending { submission_id },
    }))
}

/// load → decide → load → merge → load → finish → apply: the core's steps, each fed what
/// it asked for. The leads a merge touches are read `FOR UPDATE`: another transaction may
/// have changed them since they were found, and this one must build on that change.
async fn settle(c: &impl GenericClient, item: &CaptureItem, rules: &Rules) -> Result<Captured, Fail> {
    let sub = &item.submission;
    let meta = SubmissionMeta { id: sub.id, source: sub.source.clone(), received_at: sub.received_at };
    let settling = Settle::new(item.candidate.clone(), meta, rules, OffsetDateTime::now_utc());
    let found = candidates(c, &settling.lookup()).await?;
    let decided = settling.decide(found);
    let mut leads = Vec::new();
    for id in decided.leads() {
        leads.push(lead_following_merges(c, id, true).await?);
    }
    let merged = decided.merge(leads);
    let context = context(c, &merged.context()).await?;
    let settled = merged.finish(context);
    // The inbox row is written once, settled: an insert, not an insert and an update.
    apply::apply_with(c, &settled.changes, |change| match change {
        Change::Processed { lead, outcome, .. } => {
            Some(submission_op(sub, SubmissionStatus::Processed, Some((*lead, *outcome)), None))
        }
        _ => None,
    })
    .await?;
    Ok(Captured::Settled {
        submission_id: sub.id,
        outcome: settled.outcome,
        lead: Box::new(settled.lead),
        replayed: false,
    })
}

async fn candidates(c: &impl GenericClient, lookup: &Lookup) -> Result<Candidates, Fail> {
    // Both reads in one round trip: the client pipelines futures polled together.
    let by_mailbox = async {
        match &lookup.mailbox {
            Some(key) => leads_by_mailbox(c, key).await,
            None => Ok(Vec::new()),
        }
    };
    let (by_mailbox, ranked) = try_join(by_mailbox, by_keys(c, &lookup.keys)).await?;
    Ok(Candidates { by_mailbox, ranked })
}

/// The surviving leads sharing a blocking key with the candidate, ranked by the core:
/// one statement, each key read by its own bounded index range scan.
async fn by_keys(c: &impl GenericClient, keys: &[String]) -> Result<Vec<(LeadId, Record)>, Fail> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let found = rows(
        c,
        "SELECT k.key, p.lead_id, p.record
         FROM unnest($1::text[]) WITH ORDINALITY AS k (key, n)
         CROSS JOIN LATERAL (
             SELECT lead_id, record FROM lead_keys WHERE lead_keys.key = k.key ORDER BY lead_id DESC LIMIT $2
         ) p
         ORDER BY k.n, p.lead_id DESC",
        &[&keys, &limit(settle::POSTINGS_PER_KEY)],
    )
    .await?;
    let mut postings: Vec<(String, Vec<(Uuid, Record)>)> = Vec::with_capacity(keys.len());
    for row in found {
        let key: String = row.try_get(0)?;
        let id: Uuid = row.try_get(1)?;
        let Json(record): Json<Record> = row.try_get(2)?;
        match postings.last_mut() {
            Some((k, list)) if *k == key => list.push((id, record)),
            _ => postings.push((key, vec![(id, record)])),
        }
    }
    let ranked = settle::rank(postings.into_iter().map(|(_, p)| p).collect());
    Ok(ranked.into_iter().map(|(id, record)| (LeadId::from(id), record)).collect())
}

async fn context(c: &impl GenericClient, query: &ContextQuery) -> Result<Context, Fail> {
    let events = async {
        match query.events_of {
            Some(lead) => engagement::family_events(c, lead, settle::MAX_SCORED_EVENTS).await,
            None => Ok(Vec::new()),
        }
    };
    let (accounts, waiting, events) =
        try_join3(accounts::by_keys(c, &query.account_keys), engagement::waiting_events(c, &query.waiting), events)
            .await?;
    Ok(Context { accounts, waiting, events })
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

fn submission_op<'a>(
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
            Box::new(Json(&sub.payload)),
            Box::new(status.as_str()),
            Box::new(settled.map(|(id, _)| *id.as_uuid())),
            Box::new(settled.map(|(_, o)| o.as_str())),
            Box::new(error),
            Box::new(&sub.fingerprint),
        ],
    )
}

pub(super) async fn enqueue_one(c: &impl GenericClient, sub: &RawSubmission) -> Result<(), Fail> {
    if earlier_submission(c, sub).await?.is_some() {
        return Ok(());
    }
    upsert_submission(c, sub, SubmissionStatus::Pending, None, None).await
}

pub(super) async fn quarantine_one(
    c: &impl GenericClient,
    sub: &RawSubmission,
    errors: &[FieldError],
) -> Result<Captured, Fail> {
    if let Some(first) = earlier_submission(c, sub).await? {
        return Ok(first);
    }
    let reasons = serde_json::to_string(errors)?;
    upsert_submission(c, sub, SubmissionStatus::Rejected, None, Some(&reasons)).await?;
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
