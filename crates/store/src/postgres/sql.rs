//! The PostgreSQL statements, each beside the function that runs it. Every function takes
//! a client or a transaction; the caller decides the transaction's bounds and retries.

use super::{Fail, accounts, engagement, outbox};
use crate::{
    CaptureItem, Captured, ImportCounts, ImportJob, ImportStatus, Review, ReviewStatus, StoreError, StoredSubmission,
    SubmissionStatus,
};
use deadpool_postgres::GenericClient;
use leadflow_domain::capture::{IdempotencyKey, RawSubmission};
use leadflow_domain::error::FieldError;
use leadflow_domain::keys::{ApiKey, TokenHash};
use leadflow_domain::normalize::Candidate;
use leadflow_domain::pipeline::{self, HistoryEntry, LeadEvent, Outcome, Rules, SubmissionMeta};
use leadflow_domain::resolve::{self, Decision, Matching, Record};
use leadflow_domain::{Email, ImportId, KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A chain of merges longer than this is a bug, not data.
const MAX_MERGE_HOPS: usize = 32;
/// Most leads one lookup compares with; candidates sharing several keys come first.
const MAX_CANDIDATES: usize = 64;
/// A key shared by more leads than this says little about identity: a stop key, skipped
/// when the candidate has rarer keys (as in the SQLite store).
const STOP_KEY_POSTINGS: usize = 32;

// Statements are prepared once per connection and kept: preparing is a round trip.

pub(super) async fn rows(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Vec<Row>, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query(&stmt, params).await?)
}

pub(super) async fn opt(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Option<Row>, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_opt(&stmt, params).await?)
}

pub(super) async fn one(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<Row, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.query_one(&stmt, params).await?)
}

pub(super) async fn exec(c: &impl GenericClient, sql: &str, params: Params<'_>) -> Result<u64, Fail> {
    let stmt = c.prepare_cached(sql).await?;
    Ok(c.execute(&stmt, params).await?)
}

pub(super) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

// ---------------------------------------------------------------------------------------
// Locks

/// The advisory lock id of a key: FNV-1a, because every instance (whatever its build)
/// must compute the same id, which the standard library's hasher does not promise.
pub(super) fn lock_id(kind: &str, value: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kind.bytes().chain([0]).chain(value.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

/// The lock of a way to name a person (`email`, `external_id`, `anonymous_id`), taken by
/// captures and by events naming the person the same way.
pub(super) fn identity_lock(kind: &str, value: &str) -> i64 {
    lock_id(kind, value)
}

fn idempotency_lock(sub: &RawSubmission, key: &IdempotencyKey) -> i64 {
    lock_id("idempotency", &format!("{}\0{}", sub.source.as_str(), key.as_str()))
}

/// The locks a capture takes before it matches: each candidate's idempotency key, exact
/// email and (with fuzzy matching) blocking keys. Sorted and without repeats.
pub(super) fn capture_locks(items: &[CaptureItem], matching: &Matching) -> Vec<i64> {
    let mut locks = Vec::new();
    for item in items {
        let sub = &item.submission;
        if let Some(key) = &sub.idempotency_key {
            locks.push(idempotency_lock(sub, key));
        }
        if let Some(email) = &item.candidate.fields.email {
            locks.push(identity_lock("email", email.as_str()));
        }
        // Events recorded meanwhile for this person take the same locks: either they see
        // the lead, or the capture sees them waiting and attaches them.
        if let Some(external) = &item.candidate.fields.external_id {
            locks.push(identity_lock("external_id", external));
        }
        if let Some(visitor) = item.candidate.visitor_id() {
            locks.push(identity_lock("anonymous_id", &visitor));
        }
        // No lock on the account keys a lead claims: it would line up every capture of
        // one company across instances. Founding races are rare, and the account keys'
        // primary key settles them (see `accounts`).
        if matching.fuzzy {
            let record = resolve::match_record(&item.candidate.fields, &item.candidate.derived);
            locks.extend(resolve::blocking_keys(&record, &matching.model).iter().map(|k| lock_id("key", k)));
        }
    }
    locks.sort_unstable();
    locks.dedup();
    locks
}

pub(super) fn idempotency_locks<'a>(subs: impl Iterator<Item = &'a RawSubmission>) -> Vec<i64> {
    let mut locks: Vec<i64> = subs.filter_map(|s| s.idempotency_key.as_ref().map(|k| idempotency_lock(s, k))).collect();
    locks.sort_unstable();
    locks.dedup();
    locks
}

/// Takes transaction-scoped advisory locks in the order given (sorted by the caller), so
/// two transactions never hold one each of two locks they both want.
pub(super) async fn lock_keys(c: &impl GenericClient, locks: &[i64]) -> Result<(), Fail> {
    if !locks.is_empty() {
        exec(c, "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", &[&locks]).await?;
    }
    Ok(())
}

/// Locks lead rows in id order, for changes that touch two leads.
pub(super) async fn lock_leads(c: &impl GenericClient, ids: &[LeadId]) -> Result<(), Fail> {
    let mut ids: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
    ids.sort_unstable();
    rows(c, "SELECT id FROM leads WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&ids]).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Capture

pub(super) async fn capture_one(c: &impl GenericClient, item: &CaptureItem, rules: &Rules) -> Result<Captured, Fail> {
    let sub = &item.submission;
    if let Some(key) = &sub.idempotency_key
        && let Some(first) = earlier_submission(c, &sub.source, key, sub.id).await?
    {
        return Ok(first);
    }
    settle(c, sub, item.candidate.clone(), rules).await
}

/// Like [`capture_one`], but a submission that fails to settle is kept as pending.
pub(super) async fn capture_one_guarded(
    c: &impl GenericClient,
    item: &CaptureItem,
    rules: &Rules,
) -> Result<Captured, Fail> {
    let sub = &item.submission;
    if let Some(key) = &sub.idempotency_key
        && let Some(first) = earlier_submission(c, &sub.source, key, sub.id).await?
    {
        return Ok(first);
    }
    c.batch_execute("SAVEPOINT settle").await?;
    match settle(c, sub, item.candidate.clone(), rules).await {
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
            upsert_submission(c, sub, Status::Pending, None, Some(&e.to_string())).await?;
            Ok(Captured::Pending { submission_id: sub.id })
        }
    }
}

/// The first outcome of an earlier submission with the same key, if there is one.
async fn earlier_submission(
    c: &impl GenericClient,
    source: &SourceName,
    key: &IdempotencyKey,
    this: SubmissionId,
) -> Result<Option<Captured>, Fail> {
    let row = opt(
        c,
        "SELECT id, status, outcome, lead_id, error FROM submissions WHERE source = $1 AND idempotency_key = $2",
        &[&source.as_str(), &key.as_str()],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let submission_id = SubmissionId::from(row.try_get::<_, Uuid>(0)?);
    if submission_id == this {
        return Ok(None);
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

async fn settle(
    c: &impl GenericClient,
    sub: &RawSubmission,
    candidate: Candidate,
    rules: &Rules,
) -> Result<Captured, Fail> {
    let matching = &*rules.matching;
    let record = resolve::match_record(&candidate.fields, &candidate.derived);
    // Exact email through the leads' own index, always: it also finds leads stored while
    // fuzzy matching was off, which have no blocking keys.
    let mut found: Vec<(LeadId, Record)> = match &candidate.fields.email {
        Some(email) => leads_by_mailbox(c, &matching.email_key(email))
            .await?
            .iter()
            .map(|l| (l.id, resolve::match_record(&l.fields, &l.derived)))
            .collect(),
        None => Vec::new(),
    };
    if matching.fuzzy {
        for (id, r) in candidates_by_keys(c, &resolve::blocking_keys(&record, &matching.model)).await? {
            if found.iter().all(|(known, _)| *known != id) {
                found.push((id, r));
            }
        }
    }
    let decision = matching.with_model(|model| resolve::decide(&record, &found, model));
    // The target is locked and read again: another transaction may have changed it since
    // it was found, and this one must build on that change, not overwrite it.
    // Never into a tombstone: an erasure that committed while this capture waited for the
    // lead's lock leaves nothing to merge with, and the person comes back as a new lead.
    let target = match &decision {
        Decision::Merge { into, .. } => lead_following_merges(c, *into, true).await?.filter(|l| l.erased_at.is_none()),
        Decision::Create { .. } => None,
    };
    let expected = target.as_ref().map(|l| l.version);
    // Only a submission that joined a lead brings other leads into it.
    let bridges = if target.is_some() { decision.bridges().to_vec() } else { Vec::new() };
    let meta = SubmissionMeta { id: sub.id, source: sub.source.clone(), received_at: sub.received_at };
    let now = OffsetDateTime::now_utc();
    let visitor = candidate.visitor_id();
    let mut settlement = pipeline::settle(candidate, &meta, decision, target, now, rules);
    let touch = settlement.touch.clone();
    accounts::assign(c, &mut settlement.lead, now).await?;
    let changes = engagement::after_settle(c, &mut settlement.lead, visitor.as_deref(), &touch, rules, now).await?;
    let lead = &settlement.lead;
    write_lead(c, lead, expected, matching).await?;
    upsert_submission(c, sub, Status::Processed, Some((lead.id, settlement.outcome)), None).await?;
    insert_history(c, &settlement.history, Some(sub.id)).await?;
    outbox::enqueue(c, lead, &settlement.history.event, rules, now).await?;
    engagement::record_changes(c, lead, changes, rules, now).await?;
    if !settlement.possible_duplicates.is_empty() {
        for possible in &settlement.possible_duplicates {
            exec(
                c,
                "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
                 VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT DO NOTHING",
                &[
                    ReviewId::new().as_uuid(),
                    lead.id.as_uuid(),
                    possible.lead_id.as_uuid(),
                    &possible.score,
                    &Json(&possible.evidence),
                    &now,
                ],
            )
            .await?;
        }
        let lead_ids = settlement.possible_duplicates.iter().map(|p| p.lead_id).collect();
        let entry = HistoryEntry { lead_id: lead.id, at: now, event: LeadEvent::PossibleDuplicates { lead_ids } };
        insert_history(c, &entry, None).await?;
    }
    let mut lead = settlement.lead;
    let mut bridged = false;
    for bridge in bridges {
        bridged |= merge_pair(c, lead.id, bridge.lead_id, bridge.explanation, rules, now).await?;
    }
    if bridged && let Some(merged) = lead_following_merges(c, lead.id, false).await? {
        lead = merged;
    }
    Ok(Captured::Settled { submission_id: sub.id, outcome: settlement.outcome, lead: Box::new(lead), replayed: false })
}

/// The surviving leads sharing a blocking key with the candidate, with their match
/// records: one statement, each key read by its own bounded index range scan.
async fn candidates_by_keys(c: &impl GenericClient, keys: &[String]) -> Result<Vec<(LeadId, Record)>, Fail> {
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
        &[&keys, &limit(STOP_KEY_POSTINGS + 1)],
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
    // Only when every key is a stop key do the most recent leads of the rarest stand in.
    let selective: Vec<&Vec<(Uuid, Record)>> =
        postings.iter().map(|(_, p)| p).filter(|p| p.len() <= STOP_KEY_POSTINGS).collect();
    let chosen: Vec<&Vec<(Uuid, Record)>> = if selective.is_empty() {
        postings.iter().map(|(_, p)| p).min_by_key(|p| p.len()).into_iter().collect()
    } else {
        selective
    };
    let mut hits: Vec<(Uuid, &Record, usize)> = Vec::new();
    for (id, record) in chosen.into_iter().flatten() {
        match hits.iter_mut().find(|(known, _, _)| known == id) {
            Some(hit) => hit.2 += 1,
            None => hits.push((*id, record, 1)),
        }
    }
    hits.sort_by_key(|hit| std::cmp::Reverse(hit.2));
    hits.truncate(MAX_CANDIDATES);
    Ok(hits.into_iter().map(|(id, record, _)| (LeadId::from(id), record.clone())).collect())
}

/// Writes a lead: its document, the columns matched on, and its blocking keys.
/// `expected` is the version it had when read (`None` for a new lead).
pub(super) async fn write_lead(
    c: &impl GenericClient,
    lead: &Lead,
    expected: Option<u64>,
    matching: &Matching,
) -> Result<(), Fail> {
    let email = lead.fields.email.as_ref().map(Email::as_str);
    let key = lead.fields.email.as_ref().map(|e| matching.email_key(e));
    let version = version_column(lead.version)?;
    let account = lead.account_id.map(|a| *a.as_uuid());
    let (original, latest) = (&lead.attribution.original, &lead.attribution.latest);
    let (source, latest_source) = (original.source.as_str(), latest.source.as_str());
    let doc = Json(lead);
    match expected {
        None => {
            exec(
                c,
                "INSERT INTO leads (id, email, version, updated_at, doc, account_id, external_id, stage, source,
                                    campaign, latest_source, latest_campaign, created_at, email_key)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    lead.id.as_uuid(),
                    &email,
                    &version,
                    &lead.updated_at,
                    &doc,
                    &account,
                    &lead.fields.external_id,
                    &lead.lifecycle_stage,
                    &source,
                    &original.utm_campaign,
                    &latest_source,
                    &latest.utm_campaign,
                    &lead.created_at,
                    &key,
                ],
            )
            .await?;
        }
        Some(expected) => {
            let changed = exec(
                c,
                "UPDATE leads SET email = $2, version = $3, updated_at = $4, doc = $5, account_id = $6,
                    external_id = $7, stage = $8, source = $9, campaign = $10, latest_source = $11,
                    latest_campaign = $12, email_key = $14
                 WHERE id = $1 AND version = $13 AND merged_into IS NULL",
                &[
                    lead.id.as_uuid(),
                    &email,
                    &version,
                    &lead.updated_at,
                    &doc,
                    &account,
                    &lead.fields.external_id,
                    &lead.lifecycle_stage,
                    &source,
                    &original.utm_campaign,
                    &latest_source,
                    &latest.utm_campaign,
                    &version_column(expected)?,
                    &key,
                ],
            )
            .await?;
            if changed != 1 {
                return Err(StoreError::Conflict(format!("lead {} changed concurrently", lead.id)).into());
            }
            exec(c, "DELETE FROM lead_keys WHERE lead_id = $1", &[lead.id.as_uuid()]).await?;
        }
    }
    write_keys(c, lead, matching).await
}

/// Indexes a lead under its blocking keys (when fuzzy matching keeps the index).
async fn write_keys(c: &impl GenericClient, lead: &Lead, matching: &Matching) -> Result<(), Fail> {
    if !matching.fuzzy {
        return Ok(());
    }
    let record = resolve::match_record(&lead.fields, &lead.derived);
    let mut keys = resolve::blocking_keys(&record, &matching.model);
    keys.sort_unstable();
    keys.dedup();
    if !keys.is_empty() {
        exec(
            c,
            "INSERT INTO lead_keys (key, lead_id, record) SELECT k, $2, $3 FROM unnest($1::text[]) AS k
             ON CONFLICT DO NOTHING",
            &[&keys, lead.id.as_uuid(), &Json(&record)],
        )
        .await?;
    }
    Ok(())
}

fn version_column(v: u64) -> Result<i64, Fail> {
    i64::try_from(v).map_err(|_| StoreError::Internal(format!("lead version {v} out of range")).into())
}

#[derive(Clone, Copy)]
pub(super) enum Status {
    Pending,
    Processed,
    Rejected,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processed => "processed",
            Self::Rejected => "rejected",
        }
    }
}

async fn upsert_submission(
    c: &impl GenericClient,
    sub: &RawSubmission,
    status: Status,
    settled: Option<(LeadId, Outcome)>,
    error: Option<&str>,
) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO submissions (id, source, idempotency_key, received_at, payload, status, lead_id, outcome, error)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, status = excluded.status,
             lead_id = excluded.lead_id, outcome = excluded.outcome, error = excluded.error",
        &[
            sub.id.as_uuid(),
            &sub.source.as_str(),
            &sub.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            &sub.received_at,
            &Json(&sub.payload),
            &status.as_str(),
            &settled.map(|(id, _)| *id.as_uuid()),
            &settled.map(|(_, o)| o.as_str()),
            &error,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn insert_history(
    c: &impl GenericClient,
    entry: &HistoryEntry,
    submission: Option<SubmissionId>,
) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO lead_history (lead_id, at, submission_id, entry) VALUES ($1, $2, $3, $4)",
        &[entry.lead_id.as_uuid(), &entry.at, &submission.map(|s| *s.as_uuid()), &Json(entry)],
    )
    .await?;
    Ok(())
}

pub(super) async fn enqueue_one(c: &impl GenericClient, sub: &RawSubmission) -> Result<(), Fail> {
    if let Some(key) = &sub.idempotency_key
        && earlier_submission(c, &sub.source, key, sub.id).await?.is_some()
    {
        return Ok(());
    }
    upsert_submission(c, sub, Status::Pending, None, None).await
}

pub(super) async fn quarantine_one(
    c: &impl GenericClient,
    sub: &RawSubmission,
    errors: &[FieldError],
) -> Result<Captured, Fail> {
    if let Some(key) = &sub.idempotency_key
        && let Some(first) = earlier_submission(c, &sub.source, key, sub.id).await?
    {
        return Ok(first);
    }
    let reasons = serde_json::to_string(errors)?;
    upsert_submission(c, sub, Status::Rejected, None, Some(&reasons)).await?;
    Ok(Captured::Rejected { submission_id: sub.id, errors: errors.to_vec() })
}

pub(super) async fn reject(c: &impl GenericClient, id: SubmissionId, errors: &[FieldError]) -> Result<(), Fail> {
    let changed = exec(
        c,
        "UPDATE submissions SET status = 'rejected', error = $2 WHERE id = $1 AND status IN ('pending', 'rejected')",
        &[id.as_uuid(), &serde_json::to_string(errors)?],
    )
    .await?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("submission {id} is not pending or quarantined")).into())
    }
}

/// The quarantine reasons stored with a submission. Settling failures are stored as
/// plain text and read back as one general error.
fn stored_errors(error: Option<&str>) -> Vec<FieldError> {
    match error {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text)
            .unwrap_or_else(|_| vec![FieldError::new("", leadflow_domain::FieldErrorCode::WrongType, text.to_owned())]),
    }
}

// ---------------------------------------------------------------------------------------
// Submissions and leads, read

const SUBMISSION_COLUMNS: &str = "id, source, idempotency_key, received_at, payload, status, error, lead_id";

fn submission_from_row(row: &Row) -> Result<StoredSubmission, Fail> {
    let id: Uuid = row.try_get(0)?;
    let corrupt = |what: &str| Fail::Store(StoreError::Corrupt(format!("submission {id}: {what}")));
    let source: &str = row.try_get(1)?;
    let key: Option<&str> = row.try_get(2)?;
    let Json(payload): Json<Map<String, Value>> = row.try_get(4)?;
    let status: &str = row.try_get(5)?;
    let error: Option<&str> = row.try_get(6)?;
    let lead_id: Option<Uuid> = row.try_get(7)?;
    Ok(StoredSubmission {
        submission: RawSubmission {
            id: SubmissionId::from(id),
            source: SourceName::parse(source).map_err(|_| corrupt("source"))?,
            received_at: row.try_get(3)?,
            idempotency_key: key.map(IdempotencyKey::parse).transpose().map_err(|_| corrupt("idempotency key"))?,
            payload,
        },
        status: match status {
            "pending" => SubmissionStatus::Pending,
            "processed" => SubmissionStatus::Processed,
            "rejected" => SubmissionStatus::Rejected,
            _ => return Err(corrupt("status")),
        },
        errors: stored_errors(error),
        lead_id: lead_id.map(LeadId::from),
    })
}

pub(super) async fn pending_submissions(c: &impl GenericClient, n: usize) -> Result<Vec<RawSubmission>, Fail> {
    let sql = format!(
        "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = 'pending' ORDER BY received_at, id LIMIT $1"
    );
    rows(c, &sql, &[&limit(n)]).await?.iter().map(|r| submission_from_row(r).map(|s| s.submission)).collect()
}

pub(super) async fn list_quarantine(
    c: &impl GenericClient,
    source: Option<&SourceName>,
    after: Option<SubmissionId>,
    n: usize,
) -> Result<Vec<StoredSubmission>, Fail> {
    // Ids are time-ordered, so paging by id is paging by arrival. The nil id stands for
    // "from the start" and keeps the statement one index range scan.
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    let found = match source {
        Some(source) => {
            let sql = format!(
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = 'rejected' AND id > $1 AND source = $2 ORDER BY id LIMIT $3"
            );
            rows(c, &sql, &[&after, &source.as_str(), &limit(n)]).await?
        }
        None => {
            let sql = format!(
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = 'rejected' AND id > $1 ORDER BY id LIMIT $2"
            );
            rows(c, &sql, &[&after, &limit(n)]).await?
        }
    };
    found.iter().map(submission_from_row).collect()
}

pub(super) async fn get_submission(c: &impl GenericClient, id: SubmissionId) -> Result<Option<StoredSubmission>, Fail> {
    let sql = format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = $1");
    opt(c, &sql, &[id.as_uuid()]).await?.as_ref().map(submission_from_row).transpose()
}

pub(super) fn lead_from_row(row: &Row, column: usize) -> Result<Lead, Fail> {
    let Json(lead): Json<Lead> = row.try_get(column)?;
    Ok(lead)
}

/// Leads stored before the email match key get theirs, under the built-in provider rules
/// (the configuration is not known here; a lead is keyed with the configured rules on its
/// next write).
pub(super) async fn backfill_email_keys(c: &impl GenericClient) -> Result<(), Fail> {
    let matching = Matching::default();
    for row in rows(c, "SELECT id, email FROM leads WHERE email IS NOT NULL AND email_key IS NULL", &[]).await? {
        let (id, email): (Uuid, String) = (row.try_get(0)?, row.try_get(1)?);
        let key = matching.stored_email_key(&email);
        exec(c, "UPDATE leads SET email_key = $2 WHERE id = $1", &[&id, &key]).await?;
    }
    Ok(())
}

/// The surviving leads with this mailbox (the same match key).
async fn leads_by_mailbox(c: &impl GenericClient, key: &str) -> Result<Vec<Lead>, Fail> {
    rows(c, "SELECT doc FROM leads WHERE email_key = $1 AND merged_into IS NULL", &[&key])
        .await?
        .iter()
        .map(|r| lead_from_row(r, 0))
        .collect()
}

pub(super) async fn leads_by_email(c: &impl GenericClient, email: &Email) -> Result<Vec<Lead>, Fail> {
    rows(c, "SELECT doc FROM leads WHERE email = $1 AND merged_into IS NULL", &[&email.as_str()])
        .await?
        .iter()
        .map(|r| lead_from_row(r, 0))
        .collect()
}

/// The lead, followed through merges to the survivor; with `lock`, each row read is
/// locked until the transaction ends.
pub(super) async fn lead_following_merges(
    c: &impl GenericClient,
    id: LeadId,
    lock: bool,
) -> Result<Option<Lead>, Fail> {
    let sql = if lock {
        "SELECT merged_into, doc FROM leads WHERE id = $1 FOR UPDATE"
    } else {
        "SELECT merged_into, doc FROM leads WHERE id = $1"
    };
    let mut current = *id.as_uuid();
    for _ in 0..MAX_MERGE_HOPS {
        let Some(row) = opt(c, sql, &[&current]).await? else { return Ok(None) };
        match row.try_get::<_, Option<Uuid>>(0)? {
            Some(next) => current = next,
            None => return lead_from_row(&row, 1).map(Some),
        }
    }
    Err(StoreError::Corrupt(format!("lead {id} is merged through more than {MAX_MERGE_HOPS} hops")).into())
}

pub(super) async fn lead_history(c: &impl GenericClient, id: LeadId) -> Result<Vec<HistoryEntry>, Fail> {
    rows(c, "SELECT entry FROM lead_history WHERE lead_id = $1 ORDER BY id", &[id.as_uuid()])
        .await?
        .iter()
        .map(|r| Ok(r.try_get::<_, Json<HistoryEntry>>(0)?.0))
        .collect()
}

pub(super) async fn list_leads(c: &impl GenericClient, after: Option<LeadId>, n: usize) -> Result<Vec<Lead>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    let sql = "SELECT doc FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND id > $1 ORDER BY id LIMIT $2";
    rows(c, sql, &[&after, &limit(n)]).await?.iter().map(|r| lead_from_row(r, 0)).collect()
}

// ---------------------------------------------------------------------------------------
// Keys

const KEY_COLUMNS: &str = "id, name, prefix, scopes, created_at, revoked_at";

fn key_from_row(row: &Row) -> Result<ApiKey, Fail> {
    let Json(scopes) = row.try_get(3)?;
    Ok(ApiKey {
        id: KeyId::from(row.try_get::<_, Uuid>(0)?),
        name: row.try_get(1)?,
        prefix: row.try_get(2)?,
        scopes,
        created_at: row.try_get(4)?,
        revoked_at: row.try_get(5)?,
    })
}

pub(super) async fn create_key(c: &impl GenericClient, key: &ApiKey, hash: TokenHash) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO api_keys (id, name, prefix, token_hash, scopes, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[key.id.as_uuid(), &key.name, &key.prefix, &hash.to_hex(), &Json(&key.scopes), &key.created_at],
    )
    .await?;
    Ok(())
}

pub(super) async fn list_keys(c: &impl GenericClient) -> Result<Vec<ApiKey>, Fail> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id");
    rows(c, &sql, &[]).await?.iter().map(key_from_row).collect()
}

pub(super) async fn key_by_hash(c: &impl GenericClient, hash: TokenHash) -> Result<Option<ApiKey>, Fail> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE token_hash = $1 AND revoked_at IS NULL");
    opt(c, &sql, &[&hash.to_hex()]).await?.as_ref().map(key_from_row).transpose()
}

pub(super) async fn revoke_key(c: &impl GenericClient, which: &str) -> Result<Option<ApiKey>, Fail> {
    let sql = format!(
        "UPDATE api_keys SET revoked_at = $2 WHERE revoked_at IS NULL AND (name = $1 OR id::text = $1) RETURNING {KEY_COLUMNS}"
    );
    let now = OffsetDateTime::now_utc();
    opt(c, &sql, &[&which, &now]).await?.as_ref().map(key_from_row).transpose()
}

// ---------------------------------------------------------------------------------------
// Imports

const IMPORT_COLUMNS: &str =
    "id, source, sheet, status, rows, created, merged, rejected, pending, error, created_at, updated_at";

fn import_from_row(row: &Row) -> Result<ImportJob, Fail> {
    let id: Uuid = row.try_get(0)?;
    let corrupt = |what: &str| Fail::Store(StoreError::Corrupt(format!("import {id}: {what}")));
    let n = |i: usize| -> Result<u64, Fail> { Ok(u64::try_from(row.try_get::<_, i64>(i)?).unwrap_or(0)) };
    let status: &str = row.try_get(3)?;
    Ok(ImportJob {
        id: ImportId::from(id),
        source: SourceName::parse(row.try_get(1)?).map_err(|_| corrupt("source"))?,
        sheet: row.try_get(2)?,
        status: match status {
            "queued" => ImportStatus::Queued,
            "running" => ImportStatus::Running,
            "done" => ImportStatus::Done,
            "failed" => ImportStatus::Failed,
            _ => return Err(corrupt("status")),
        },
        counts: ImportCounts { rows: n(4)?, created: n(5)?, merged: n(6)?, rejected: n(7)?, pending: n(8)? },
        error: row.try_get(9)?,
        created_at: row.try_get(10)?,
        updated_at: row.try_get(11)?,
    })
}

pub(super) async fn create_import(c: &impl GenericClient, job: &ImportJob, file: &[u8]) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO imports (id, source, sheet, status, created_at, updated_at, file) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            job.id.as_uuid(),
            &job.source.as_str(),
            &job.sheet,
            &job.status.as_str(),
            &job.created_at,
            &job.updated_at,
            &file,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn update_import(c: &impl GenericClient, job: &ImportJob, report: Option<&[u8]>) -> Result<(), Fail> {
    let k = job.counts;
    exec(
        c,
        "UPDATE imports SET status = $2, rows = $3, created = $4, merged = $5, rejected = $6, pending = $7,
             error = $8, updated_at = $9, report = coalesce($10, report),
             file = CASE WHEN $2 IN ('done', 'failed') THEN NULL ELSE file END
         WHERE id = $1",
        &[
            job.id.as_uuid(),
            &job.status.as_str(),
            &count(k.rows),
            &count(k.created),
            &count(k.merged),
            &count(k.rejected),
            &count(k.pending),
            &job.error,
            &job.updated_at,
            &report,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn get_import(c: &impl GenericClient, id: ImportId) -> Result<Option<ImportJob>, Fail> {
    let sql = format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE id = $1");
    opt(c, &sql, &[id.as_uuid()]).await?.as_ref().map(import_from_row).transpose()
}

pub(super) async fn import_blob(c: &impl GenericClient, sql: &str, id: ImportId) -> Result<Option<Vec<u8>>, Fail> {
    Ok(opt(c, sql, &[id.as_uuid()]).await?.map(|r| r.try_get::<_, Option<Vec<u8>>>(0)).transpose()?.flatten())
}

pub(super) async fn unfinished_imports(c: &impl GenericClient) -> Result<Vec<ImportJob>, Fail> {
    let sql =
        format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at, id");
    rows(c, &sql, &[]).await?.iter().map(import_from_row).collect()
}

// ---------------------------------------------------------------------------------------
// Reviews, merges and unmerges

const REVIEW_COLUMNS: &str = "id, lead_id, candidate_id, score, evidence, status, created_at, decided_at";

fn review_from_row(row: &Row) -> Result<Review, Fail> {
    let id: Uuid = row.try_get(0)?;
    let status: &str = row.try_get(5)?;
    let Json(evidence) = row.try_get(4)?;
    Ok(Review {
        id: ReviewId::from(id),
        lead_id: LeadId::from(row.try_get::<_, Uuid>(1)?),
        candidate_id: LeadId::from(row.try_get::<_, Uuid>(2)?),
        score: row.try_get(3)?,
        evidence,
        status: match status {
            "open" => ReviewStatus::Open,
            "merged" => ReviewStatus::Merged,
            "distinct" => ReviewStatus::Distinct,
            _ => return Err(StoreError::Corrupt(format!("review {id}: status")).into()),
        },
        created_at: row.try_get(6)?,
        decided_at: row.try_get(7)?,
    })
}

pub(super) async fn list_reviews(
    c: &impl GenericClient,
    after: Option<ReviewId>,
    n: usize,
) -> Result<Vec<Review>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    let sql = format!(
        "SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE status = 'open' AND id > $1 ORDER BY id LIMIT $2"
    );
    rows(c, &sql, &[&after, &limit(n)]).await?.iter().map(review_from_row).collect()
}

pub(super) async fn review_by_id(c: &impl GenericClient, id: ReviewId, lock: bool) -> Result<Option<Review>, Fail> {
    let sql = if lock {
        format!("SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE id = $1 FOR UPDATE")
    } else {
        format!("SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE id = $1")
    };
    opt(c, &sql, &[id.as_uuid()]).await?.as_ref().map(review_from_row).transpose()
}

pub(super) async fn add_review(
    c: &impl GenericClient,
    lead: LeadId,
    candidate: LeadId,
    score: f64,
    evidence: &[resolve::Evidence],
) -> Result<bool, Fail> {
    // A pair is proposed once: not again while open, and never after a decision.
    let known: bool = one(
        c,
        "SELECT EXISTS (SELECT 1 FROM duplicate_reviews WHERE (lead_id = $1 AND candidate_id = $2) OR (lead_id = $2 AND candidate_id = $1))",
        &[lead.as_uuid(), candidate.as_uuid()],
    )
    .await?
    .try_get(0)?;
    if known {
        return Ok(false);
    }
    let inserted = exec(
        c,
        "INSERT INTO duplicate_reviews (id, lead_id, candidate_id, score, evidence, status, created_at)
         VALUES ($1, $2, $3, $4, $5, 'open', $6) ON CONFLICT DO NOTHING",
        &[
            ReviewId::new().as_uuid(),
            lead.as_uuid(),
            candidate.as_uuid(),
            &score,
            &Json(evidence),
            &OffsetDateTime::now_utc(),
        ],
    )
    .await?;
    Ok(inserted == 1)
}

/// Folds `absorbed` into `survivor` (each followed through earlier merges): the survivor
/// gains what it lacked, the absorbed lead steps aside with `merged_into`, both histories
/// record it. `false` when either is missing or they are already one lead.
pub(super) async fn merge_pair(
    c: &impl GenericClient,
    survivor: LeadId,
    absorbed: LeadId,
    explanation: resolve::Explanation,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<bool, Fail> {
    let (Some(mut survivor), Some(absorbed)) =
        (lead_following_merges(c, survivor, true).await?, lead_following_merges(c, absorbed, true).await?)
    else {
        return Ok(false);
    };
    if survivor.id == absorbed.id || survivor.erased_at.is_some() || absorbed.erased_at.is_some() {
        return Ok(false);
    }
    let expected = survivor.version;
    let before = Box::new(survivor.clone());
    let report = resolve::merge::absorb(&mut survivor, &absorbed, now);
    // The absorbed lead steps aside first: its email is then free for the survivor.
    exec(
        c,
        "UPDATE leads SET merged_into = $2, updated_at = $3 WHERE id = $1",
        &[absorbed.id.as_uuid(), survivor.id.as_uuid(), &now],
    )
    .await?;
    exec(c, "DELETE FROM lead_keys WHERE lead_id = $1", &[absorbed.id.as_uuid()]).await?;
    // Keys are kept for the survivor whether or not capture uses them: a batch search
    // indexes in memory, and a store with fuzzy matching on reads them.
    write_lead(c, &survivor, Some(expected), &rules.matching.keeping_keys()).await?;
    let absorbed_event =
        LeadEvent::Absorbed { absorbed: absorbed.id, explanation, filled: report.filled, before: Some(before) };
    outbox::enqueue(c, &survivor, &absorbed_event, rules, now).await?;
    insert_history(c, &HistoryEntry { lead_id: survivor.id, at: now, event: absorbed_event }, None).await?;
    let moved = LeadEvent::MergedInto { into: survivor.id };
    insert_history(c, &HistoryEntry { lead_id: absorbed.id, at: now, event: moved }, None).await?;
    Ok(true)
}

/// Undoes the merge of `absorbed` into its survivor: the survivor returns to its state just
/// before the merge and the absorbed lead lives on its own again. Refused (a conflict) when
/// the survivor changed after the merge: restoring would lose that change.
pub(super) async fn unmerge(
    c: &impl GenericClient,
    absorbed_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<LeadId>, Fail> {
    let row =
        opt(c, "SELECT merged_into, erased_at FROM leads WHERE id = $1 FOR UPDATE", &[absorbed_id.as_uuid()]).await?;
    let Some(row) = row else { return Ok(None) };
    if row.try_get::<_, Option<OffsetDateTime>>(1)?.is_some() {
        return Err(StoreError::Erased(absorbed_id).into());
    }
    let Some(into) = row.try_get::<_, Option<Uuid>>(0)? else {
        return Ok(None);
    };
    let survivor_id = LeadId::from(into);
    let Some(current) = lead_following_merges(c, survivor_id, true).await?.filter(|l| l.id == survivor_id) else {
        return Err(StoreError::Conflict(format!("lead {survivor_id} was itself merged since; undo that first")).into());
    };
    let entries = rows(c, "SELECT entry FROM lead_history WHERE lead_id = $1 ORDER BY id DESC", &[&into]).await?;
    let mut before = None;
    for row in &entries {
        let Json(entry): Json<HistoryEntry> = row.try_get(0)?;
        if let LeadEvent::Absorbed { absorbed, before: Some(b), .. } = entry.event
            && absorbed == absorbed_id
        {
            before = Some(b);
            break;
        }
    }
    let Some(mut restored) = before.map(|b| *b) else {
        return Err(StoreError::Conflict(format!("the merge of {absorbed_id} kept no earlier state to restore")).into());
    };
    if current.version != restored.version + 1 {
        return Err(StoreError::Conflict(format!(
            "lead {survivor_id} changed after the merge; undoing it would lose that change"
        ))
        .into());
    }
    restored.version = current.version + 1;
    restored.updated_at = now;
    let keys = rules.matching.keeping_keys();
    write_lead(c, &restored, Some(current.version), &keys).await?;
    exec(c, "UPDATE leads SET merged_into = NULL, updated_at = $2 WHERE id = $1", &[absorbed_id.as_uuid(), &now])
        .await?;
    if let Some(absorbed) = lead_following_merges(c, absorbed_id, false).await? {
        write_keys(c, &absorbed, &keys).await?;
    }
    let entry = HistoryEntry { lead_id: survivor_id, at: now, event: LeadEvent::Unmerged { absorbed: absorbed_id } };
    insert_history(c, &entry, None).await?;
    Ok(Some(survivor_id))
}

/// A person's decision on an open review; a merge folds the newer lead into the other.
pub(super) async fn decide_review(
    c: &impl GenericClient,
    id: ReviewId,
    decision: ReviewStatus,
    rules: &Rules,
) -> Result<Option<Review>, Fail> {
    // Locked: two people deciding at once on two instances decide once.
    let Some(review) = review_by_id(c, id, true).await?.filter(|r| r.status == ReviewStatus::Open) else {
        return Ok(None);
    };
    let now = OffsetDateTime::now_utc();
    if decision == ReviewStatus::Merged {
        let explanation = resolve::Explanation {
            rule: resolve::MatchRule::Reviewed,
            score: Some(review.score),
            evidence: review.evidence.clone(),
        };
        lock_leads(c, &[review.candidate_id, review.lead_id]).await?;
        merge_pair(c, review.candidate_id, review.lead_id, explanation, rules, now).await?;
    }
    exec(
        c,
        "UPDATE duplicate_reviews SET status = $2, decided_at = $3 WHERE id = $1",
        &[id.as_uuid(), &decision.as_str(), &now],
    )
    .await?;
    review_by_id(c, id, false).await
}

/// Undoes a merge made at capture: `lead` returns to its state before `submission` merged
/// into it, and the submission becomes a lead of its own from `candidate` (the submission
/// prepared again). Refused when the lead changed since, as [`unmerge`] is.
pub(super) async fn split(
    c: &impl GenericClient,
    lead_id: LeadId,
    submission: SubmissionId,
    candidate: Candidate,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, Fail> {
    let matching = &*rules.matching;
    let Some(current) = lead_following_merges(c, lead_id, true).await?.filter(|l| l.id == lead_id) else {
        return Ok(None);
    };
    if current.erased_at.is_some() {
        return Err(StoreError::Erased(lead_id).into());
    }
    let Some(stored) = get_submission(c, submission).await? else { return Ok(None) };
    if stored.lead_id != Some(lead_id) {
        // Never merged here, or already split off.
        return Ok(None);
    }
    let entries = rows(
        c,
        "SELECT entry FROM lead_history WHERE lead_id = $1 AND submission_id = $2 ORDER BY id",
        &[lead_id.as_uuid(), submission.as_uuid()],
    )
    .await?;
    let mut before = None;
    for row in &entries {
        let Json(entry): Json<HistoryEntry> = row.try_get(0)?;
        if let LeadEvent::Merged { submission_id, before: b, .. } = entry.event
            && submission_id == submission
        {
            before = Some(b);
            break;
        }
    }
    let Some(before) = before else { return Ok(None) };
    let Some(mut restored) = before.map(|b| *b) else {
        return Err(StoreError::Conflict(format!("the merge of {submission} kept no earlier state to restore")).into());
    };
    if current.version != restored.version + 1 {
        return Err(StoreError::Conflict(format!(
            "lead {lead_id} changed after the merge; undoing it would lose that change"
        ))
        .into());
    }
    if candidate.fields.email.is_some() && candidate.fields.email == restored.fields.email {
        return Err(StoreError::Conflict(format!(
            "submission {submission} has the lead's own email address: one mailbox is one lead"
        ))
        .into());
    }
    let sub = stored.submission;
    restored.version = current.version + 1;
    restored.updated_at = now;
    write_lead(c, &restored, Some(current.version), matching).await?;
    let meta = SubmissionMeta { id: sub.id, source: sub.source.clone(), received_at: sub.received_at };
    let create = Decision::Create { possible: Vec::new() };
    let mut settlement = pipeline::settle(candidate, &meta, create, None, now, rules);
    accounts::assign(c, &mut settlement.lead, now).await?;
    let scored = leadflow_domain::engagement::rescore(&mut settlement.lead, &[], &rules.engagement, now);
    write_lead(c, &settlement.lead, None, matching).await?;
    exec(
        c,
        "UPDATE submissions SET lead_id = $2, outcome = 'created' WHERE id = $1",
        &[submission.as_uuid(), settlement.lead.id.as_uuid()],
    )
    .await?;
    insert_history(c, &settlement.history, Some(submission)).await?;
    outbox::enqueue(c, &settlement.lead, &settlement.history.event, rules, now).await?;
    engagement::record_changes(c, &settlement.lead, scored, rules, now).await?;
    let event = LeadEvent::Split { submission_id: submission, into: settlement.lead.id };
    insert_history(c, &HistoryEntry { lead_id, at: now, event }, None).await?;
    Ok(Some(settlement.lead))
}
