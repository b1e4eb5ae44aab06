//! Capture in SQLite: the inbox row, and settling a submission inside the writer's group
//! transaction. The core ([`leadflow_core::settle`]) decides every step; this module
//! loads what each step asks for and applies the changes it returns.

use super::apply::apply_one;
use super::{Prepared, accounts, engagement, lead_following_merges, leads_by_mailbox, millis};
use crate::{Captured, StoreError, SubmissionStatus};
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::changes::Change;
use leadflow_core::error::FieldError;
use leadflow_core::health::{self, Tally};
use leadflow_core::pipeline::{Outcome, Rules, SubmissionMeta};
use leadflow_core::resolve::Record;
use leadflow_core::resolve::queued::Batch;
use leadflow_core::settle::{self, Candidates, Context, ContextQuery, Lookup, Settle};
use leadflow_core::{LeadId, SubmissionId};
use rusqlite::{Connection, OptionalExtension, params};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use time::OffsetDateTime;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Isolation {
    /// Any failure fails the request's savepoint.
    Request,
    /// Each item in its own savepoint; a failing item stays pending.
    PerItem,
}

pub(super) fn capture_all(
    conn: &Connection,
    items: &[Prepared],
    isolation: Isolation,
    rules: &Rules,
    tally: &mut Tally,
) -> Result<Vec<Captured>, StoreError> {
    items.iter().map(|p| capture_one(conn, p, isolation, rules, tally)).collect()
}

fn capture_one(
    conn: &Connection,
    prepared: &Prepared,
    isolation: Isolation,
    rules: &Rules,
    tally: &mut Tally,
) -> Result<Captured, StoreError> {
    let sub = &prepared.item.submission;
    if let Some(first) = earlier_submission(conn, sub)? {
        return Ok(first);
    }
    if isolation == Isolation::Request {
        return settle(conn, prepared, rules, tally);
    }
    // If settling fails, the submission is still kept, as pending: an acknowledged
    // submission is never lost.
    conn.prepare_cached("SAVEPOINT settle")?.execute([])?;
    // Counted only if the savepoint stands.
    let mut counted = Tally::default();
    match settle(conn, prepared, rules, &mut counted) {
        Ok(captured) => {
            conn.prepare_cached("RELEASE settle")?.execute([])?;
            tally.extend(counted);
            Ok(captured)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO settle; RELEASE settle")?;
            tracing::warn!(submission_id = %sub.id, error = %e, "settling failed; the submission stays pending");
            if upsert_submission(conn, sub, &prepared.payload, SubmissionStatus::Pending, None, Some(&e.to_string()))? {
                tally.received(sub.source.as_str(), sub.received_at);
            }
            Ok(Captured::Pending { submission_id: sub.id })
        }
    }
}

/// load → decide → load → merge → load → finish → apply: the core's steps, each fed what
/// it asked for.
fn settle(conn: &Connection, prepared: &Prepared, rules: &Rules, tally: &mut Tally) -> Result<Captured, StoreError> {
    let sub = &prepared.item.submission;
    let meta = SubmissionMeta { id: sub.id, source: sub.source.clone(), received_at: sub.received_at };
    let settling = Settle::new(prepared.item.candidate.clone(), meta, rules, OffsetDateTime::now_utc());
    let found = candidates(conn, &settling.lookup())?;
    let decided = settling.decide(found);
    let leads = decided.leads().into_iter().map(|id| lead_following_merges(conn, id)).collect::<Result<_, _>>()?;
    let merged = decided.merge(leads);
    let context = context(conn, &merged.context())?;
    let settled = merged.finish(context);
    for change in &settled.changes {
        match change {
            // The inbox row is written once, settled: an insert, not an insert and an update.
            Change::Processed { lead, outcome, .. } => {
                let inserted = upsert_submission(
                    conn,
                    sub,
                    &prepared.payload,
                    SubmissionStatus::Processed,
                    Some((*lead, *outcome)),
                    None,
                )?;
                count_settled(tally, sub, *outcome, inserted);
            }
            other => apply_one(conn, other)?,
        }
    }
    Ok(Captured::Settled {
        submission_id: sub.id,
        outcome: settled.outcome,
        lead: Box::new(settled.lead),
        replayed: false,
    })
}

/// The leads a lookup finds: by mailbox through the leads' own index, and by blocking
/// keys, ranked by the core before their records are parsed.
pub(super) fn candidates(conn: &Connection, lookup: &Lookup) -> Result<Candidates, StoreError> {
    let by_mailbox = match &lookup.mailbox {
        Some(key) => leads_by_mailbox(conn, key)?,
        None => Vec::new(),
    };
    let stored = stored_postings(conn, &lookup.keys)?;
    let mut read = HashMap::new();
    let found = ranked(conn, &lookup.keys, &stored, &Batch::default(), &mut read)?;
    // Dropped first, so that each record read has one owner left and is moved, not copied.
    drop(read);
    let ranked = found.into_iter().map(|(id, r)| (id, Arc::unwrap_or_clone(r))).collect();
    Ok(Candidates { by_mailbox, ranked })
}

/// Each key's stored postings (lead ids), newest first, at most
/// [`settle::POSTINGS_PER_KEY`] of each.
pub(super) fn stored_postings(conn: &Connection, keys: &[String]) -> Result<Vec<Vec<String>>, StoreError> {
    let mut postings = vec![Vec::new(); keys.len()];
    if keys.is_empty() {
        return Ok(postings);
    }
    // One statement for all keys (each statement has a fixed cost, and a lead has several
    // keys), each key still read by its own bounded range scan. The limit is written into
    // the statement: a bound LIMIT made SQLite re-prepare it on every execution.
    // Each posting names its key by position: stored keys may be blind indexes.
    let sql = (0..keys.len())
        .map(|at| {
            format!(
                "SELECT * FROM (SELECT {at}, lead_id FROM lead_keys WHERE key = lf_key(?) ORDER BY lead_id DESC LIMIT {})",
                settle::POSTINGS_PER_KEY
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows =
        stmt.query_map(rusqlite::params_from_iter(keys), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
    for row in rows {
        let (at, id) = row?;
        if let Some(posting) = usize::try_from(at).ok().and_then(|at| postings.get_mut(at)) {
            posting.push(id);
        }
    }
    Ok(postings)
}

/// The candidates [`settle::rank`] chooses among the batch's and the stored postings of
/// `keys`, with their records: the batch's own, those in `read` (records read before in
/// the same snapshot), or read now and added to `read`.
pub(super) fn ranked(
    conn: &Connection,
    keys: &[String],
    stored: &[Vec<String>],
    batch: &Batch,
    read: &mut HashMap<LeadId, Arc<Record>>,
) -> Result<Vec<(LeadId, Arc<Record>)>, StoreError> {
    // Per key, newest first: the batch's leads (newer than any stored), then the stored
    // postings; a record to read (`None`) or the batch's own.
    let postings: Vec<Vec<(Cow<'_, str>, Option<&Record>)>> = keys
        .iter()
        .zip(stored)
        .map(|(key, stored)| {
            batch
                .postings(key)
                .map(|(id, r)| (Cow::Owned(id.to_string()), Some(r)))
                .chain(stored.iter().map(|id| (Cow::Borrowed(id.as_str()), None)))
                .collect()
        })
        .collect();
    // The records of the chosen candidates only.
    let mut statement = conn.prepare_cached("SELECT lf_open(record) FROM lead_records WHERE lead_id = ?1")?;
    let mut found = Vec::new();
    for (text, in_batch) in settle::rank(postings) {
        let id: LeadId = text.parse().map_err(|e| StoreError::Corrupt(format!("lead id: {e}")))?;
        let record = match (in_batch, read.get(&id)) {
            (Some(r), _) => Arc::new(r.clone()),
            (None, Some(r)) => r.clone(),
            (None, None) => match statement.query_row([text.as_ref()], |r| r.get::<_, String>(0)).optional()? {
                Some(json) => {
                    let r = Arc::new(serde_json::from_str::<Record>(&json)?);
                    read.insert(id, r.clone());
                    r
                }
                None => continue,
            },
        };
        found.push((id, record));
    }
    Ok(found)
}

fn context(conn: &Connection, query: &ContextQuery) -> Result<Context, StoreError> {
    Ok(Context {
        accounts: accounts::by_keys(conn, &query.account_keys)?,
        waiting: engagement::waiting_events(conn, &query.waiting)?,
        events: match query.events_of {
            Some(lead) => engagement::family_events(conn, lead, settle::MAX_SCORED_EVENTS)?,
            None => Vec::new(),
        },
    })
}

/// The first outcome of an earlier submission with the same key, if there is one (a
/// refusal when the key came with another body).
pub(super) fn earlier_submission(conn: &Connection, sub: &RawSubmission) -> Result<Option<Captured>, StoreError> {
    let Some(key) = &sub.idempotency_key else { return Ok(None) };
    let row = conn
        .prepare_cached(
            "SELECT id, status, outcome, lead_id, lf_open(error), fingerprint FROM submissions
             WHERE source = ?1 AND idempotency_key = ?2",
        )?
        .query_row(params![sub.source.as_str(), key.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
            ))
        })
        .optional()?;
    let Some((id, status, outcome, lead_id, error, fingerprint)) = row else {
        return Ok(None);
    };
    let submission_id: SubmissionId = id.parse().map_err(|e| StoreError::Corrupt(format!("submission id: {e}")))?;
    if submission_id == sub.id {
        return Ok(None);
    }
    if sub.reuses_key_of(fingerprint.as_deref()) {
        return Ok(Some(Captured::KeyReused { submission_id }));
    }
    Ok(Some(match (status.as_str(), outcome.as_deref(), lead_id) {
        ("processed", Some(outcome), Some(lead_id)) => {
            let lead_id: LeadId = lead_id.parse().map_err(|e| StoreError::Corrupt(format!("lead id: {e}")))?;
            let lead = lead_following_merges(conn, lead_id)?
                .ok_or_else(|| StoreError::Corrupt(format!("submission {submission_id} names a missing lead")))?;
            let outcome = if outcome == "merged" { Outcome::Merged } else { Outcome::Created };
            Captured::Settled { submission_id, outcome, lead: Box::new(lead), replayed: true }
        }
        ("rejected", _, _) => Captured::Rejected { submission_id, errors: stored_errors(error.as_deref()) },
        _ => Captured::Pending { submission_id },
    }))
}

/// A submission settled: received when it is new to the inbox (not one settled after it
/// waited there), and what it became.
pub(super) fn count_settled(tally: &mut Tally, sub: &RawSubmission, outcome: Outcome, inserted: bool) {
    let source = sub.source.as_str();
    if inserted {
        tally.received(source, sub.received_at);
    }
    let provider_time = health::tally::provider_time(&sub.payload);
    tally.settled(source, outcome == Outcome::Merged, provider_time, OffsetDateTime::now_utc());
}

/// Writes the inbox row; `true` when it is new.
pub(super) fn upsert_submission(
    conn: &Connection,
    sub: &RawSubmission,
    payload: &str,
    status: SubmissionStatus,
    settled: Option<(LeadId, Outcome)>,
    error: Option<&str>,
) -> Result<bool, StoreError> {
    // Most submissions are new here; only webhook deliveries were enqueued first. With
    // `ON CONFLICT DO UPDATE` SQLite kept a statement journal for every insert (a profile
    // showed it), so the insert ignores a conflict and the rare existing row is updated by
    // a statement of its own.
    let (id, lead) = (sub.id.to_string(), settled.map(|(id, _)| id.to_string()));
    let outcome = settled.map(|(_, o)| o.as_str());
    let inserted = conn
        .prepare_cached(
            "INSERT INTO submissions (id, source, idempotency_key, received_at, payload, status, lead_id, outcome, error,
                                      fingerprint)
             VALUES (?1, ?2, ?3, ?4, lf_seal(?5), ?6, ?7, ?8, lf_seal(?9), ?10) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            id,
            sub.source.as_str(),
            sub.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            millis(sub.received_at),
            payload,
            status.as_str(),
            lead,
            outcome,
            error,
            sub.fingerprint,
        ])?;
    if inserted == 0 {
        conn.prepare_cached(
            "UPDATE submissions SET payload = lf_seal(?2), status = ?3, lead_id = ?4, outcome = ?5, error = lf_seal(?6) WHERE id = ?1",
        )?
        .execute(params![id, payload, status.as_str(), lead, outcome, error])?;
    }
    Ok(inserted == 1)
}

pub(super) fn enqueue_all(conn: &Connection, subs: &[RawSubmission], tally: &mut Tally) -> Result<(), StoreError> {
    for sub in subs {
        if earlier_submission(conn, sub)?.is_some() {
            continue;
        }
        let payload = serde_json::to_string(&sub.payload)?;
        if upsert_submission(conn, sub, &payload, SubmissionStatus::Pending, None, None)? {
            tally.received(sub.source.as_str(), sub.received_at);
        }
    }
    Ok(())
}

pub(super) fn quarantine_all(
    conn: &Connection,
    items: &[(RawSubmission, Vec<FieldError>)],
    tally: &mut Tally,
) -> Result<Vec<Captured>, StoreError> {
    let mut out = Vec::with_capacity(items.len());
    for (sub, errors) in items {
        if let Some(first) = earlier_submission(conn, sub)? {
            out.push(first);
            continue;
        }
        let payload = serde_json::to_string(&sub.payload)?;
        let reasons = serde_json::to_string(errors)?;
        if upsert_submission(conn, sub, &payload, SubmissionStatus::Rejected, None, Some(&reasons))? {
            tally.received(sub.source.as_str(), sub.received_at);
        }
        tally.quarantined(sub.source.as_str(), errors, OffsetDateTime::now_utc());
        out.push(Captured::Rejected { submission_id: sub.id, errors: errors.clone() });
    }
    Ok(out)
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
