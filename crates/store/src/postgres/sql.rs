//! The PostgreSQL statements, each beside the function that runs it. Every function takes
//! a client or a transaction; the caller decides the transaction's bounds and retries.

use super::apply::apply;
use super::sealing::{self, Blind, Opened, OpenedBytes, Sealed, SealedBytes, SealedText};
use super::{Fail, accounts};
use crate::{
    CaptureItem, ImportCounts, ImportJob, ImportStatus, Review, ReviewStatus, StoreError, StoredSubmission,
    SubmissionStatus,
};
use deadpool_postgres::GenericClient;
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::error::FieldError;
use leadflow_core::keys::{ApiKey, TokenHash};
use leadflow_core::merges;
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline::{HistoryEntry, Rules, SubmissionMeta};
use leadflow_core::resolve::{self, Matching};
use leadflow_core::{ImportId, KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};
use uuid::Uuid;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A chain of merges longer than this is a bug, not data.
pub(super) const MAX_MERGE_HOPS: usize = 32;

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

/// The locks a capture takes before it matches: each candidate's idempotency key and
/// exact email. Sorted and without repeats. (Fuzzy matching takes no capture locks: the
/// resolver runs alone, after the capture committed.)
pub(super) fn capture_locks(items: &[CaptureItem]) -> Vec<i64> {
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

/// More key locks than this in one transaction would crowd PostgreSQL's lock table (64
/// locks a connection by default, shared by every database on the server): a
/// transaction naming more takes [`EVERY_KEY`] alone, exclusively.
pub(super) const MAX_KEY_LOCKS: usize = 1024;

/// The lock every transaction taking key locks holds first: shared beside its key locks,
/// or exclusive instead of them, which waits for all others and makes them wait. The
/// two-number form is a namespace apart from the keys' locks.
const EVERY_KEY: (i32, i32) = (0x6c66, 1);

/// The statement [`take_key_locks`] runs for these locks, to prepare ahead.
pub(super) fn key_locks_statement(locks: &[i64]) -> &'static str {
    if locks.len() > MAX_KEY_LOCKS {
        "SELECT pg_advisory_xact_lock($1::int4, $2::int4)"
    } else {
        "SELECT pg_advisory_xact_lock_shared($1::int4, $2::int4)
         UNION ALL SELECT pg_advisory_xact_lock(k) FROM unnest($3::bigint[]) AS k"
    }
}

/// Takes transaction-scoped advisory locks in the order given (sorted by the caller), so
/// two transactions never hold one each of two locks they both want. `statement` is
/// [`key_locks_statement`] prepared; it is sent when this is first polled.
pub(super) async fn take_key_locks(
    c: &impl GenericClient,
    statement: &tokio_postgres::Statement,
    locks: &[i64],
) -> Result<(), Fail> {
    let (kind, key) = EVERY_KEY;
    if locks.len() > MAX_KEY_LOCKS {
        c.query(statement, &[&kind, &key]).await?;
    } else if !locks.is_empty() {
        c.query(statement, &[&kind, &key, &locks]).await?;
    }
    Ok(())
}

/// [`take_key_locks`], preparing the statement first.
pub(super) async fn lock_keys(c: &impl GenericClient, locks: &[i64]) -> Result<(), Fail> {
    if locks.is_empty() {
        return Ok(());
    }
    let statement = c.prepare_cached(key_locks_statement(locks)).await?;
    take_key_locks(c, &statement, locks).await
}

/// Locks lead rows in id order, for changes that touch two leads.
pub(super) async fn lock_leads(c: &impl GenericClient, ids: &[LeadId]) -> Result<(), Fail> {
    let mut ids: Vec<Uuid> = ids.iter().map(|id| *id.as_uuid()).collect();
    ids.sort_unstable();
    rows(c, "SELECT id FROM leads WHERE id = ANY($1) ORDER BY id FOR UPDATE", &[&ids]).await?;
    Ok(())
}

pub(super) async fn reject(
    c: &impl GenericClient,
    id: SubmissionId,
    errors: &[FieldError],
    tally: &mut leadflow_core::health::Tally,
) -> Result<(), Fail> {
    // Counted when it enters the quarantine, not when its reasons are replaced.
    let entering =
        opt(c, "SELECT source FROM submissions WHERE id = $1 AND status = 'pending' FOR UPDATE", &[id.as_uuid()])
            .await?;
    let changed = exec(
        c,
        "UPDATE submissions SET status = 'rejected', error = $2 WHERE id = $1 AND status IN ('pending', 'rejected')",
        &[id.as_uuid(), &SealedText(serde_json::to_string(errors)?)],
    )
    .await?;
    if changed == 1 {
        if let Some(row) = entering {
            tally.quarantined(row.try_get(0)?, errors, OffsetDateTime::now_utc());
        }
        Ok(())
    } else {
        Err(StoreError::Conflict(format!("submission {id} is not pending or quarantined")).into())
    }
}

// ---------------------------------------------------------------------------------------
// Submissions and leads, read

pub(super) const SUBMISSION_COLUMNS: &str = "id, source, idempotency_key, received_at, payload, status, error, lead_id";

pub(super) fn submission_from_row(row: &Row) -> Result<StoredSubmission, Fail> {
    let id: Uuid = row.try_get(0)?;
    let corrupt = |what: &str| Fail::Store(StoreError::Corrupt(format!("submission {id}: {what}")));
    let source: &str = row.try_get(1)?;
    let key: Option<&str> = row.try_get(2)?;
    let Opened(payload): Opened<Map<String, Value>> = row.try_get(4)?;
    let status: &str = row.try_get(5)?;
    let error = sealing::text(row.try_get(6)?);
    let lead_id: Option<Uuid> = row.try_get(7)?;
    Ok(StoredSubmission {
        submission: RawSubmission {
            id: SubmissionId::from(id),
            source: SourceName::parse(source).map_err(|_| corrupt("source"))?,
            received_at: row.try_get(3)?,
            idempotency_key: key.map(IdempotencyKey::parse).transpose().map_err(|_| corrupt("idempotency key"))?,
            payload,
            fingerprint: None,
        },
        status: match status {
            "pending" => SubmissionStatus::Pending,
            "processed" => SubmissionStatus::Processed,
            "rejected" => SubmissionStatus::Rejected,
            _ => return Err(corrupt("status")),
        },
        errors: super::capture::stored_errors(error.as_deref()),
        lead_id: lead_id.map(LeadId::from),
    })
}

pub(super) async fn pending_submissions(c: &impl GenericClient, n: usize) -> Result<Vec<RawSubmission>, Fail> {
    let sql = format!(
        "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = 'pending' ORDER BY received_at, id LIMIT $1"
    );
    rows(c, &sql, &[&limit(n)]).await?.iter().map(|r| submission_from_row(r).map(|s| s.submission)).collect()
}

/// Submissions in `status`, optionally of one source, oldest first, after `after`.
pub(super) async fn list_submissions(
    c: &impl GenericClient,
    status: &str,
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
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = $4 AND id > $1 AND source = $2 ORDER BY id LIMIT $3"
            );
            rows(c, &sql, &[&after, &source.as_str(), &limit(n), &status]).await?
        }
        None => {
            let sql = format!(
                "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE status = $3 AND id > $1 ORDER BY id LIMIT $2"
            );
            rows(c, &sql, &[&after, &limit(n), &status]).await?
        }
    };
    found.iter().map(submission_from_row).collect()
}

pub(super) async fn get_submission(c: &impl GenericClient, id: SubmissionId) -> Result<Option<StoredSubmission>, Fail> {
    let sql = format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = $1");
    opt(c, &sql, &[id.as_uuid()]).await?.as_ref().map(submission_from_row).transpose()
}

pub(super) fn lead_from_row(row: &Row, column: usize) -> Result<Lead, Fail> {
    let Opened(lead): Opened<Lead> = row.try_get(column)?;
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

pub(super) async fn leads_by_mailbox(c: &impl GenericClient, key: &str) -> Result<Vec<Lead>, Fail> {
    rows(c, "SELECT doc FROM leads WHERE email_key = $1 AND merged_into IS NULL", &[&Blind(key)])
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
        .map(|r| Ok(r.try_get::<_, Opened<HistoryEntry>>(0)?.0))
        .collect()
}

pub(super) async fn list_leads(c: &impl GenericClient, after: Option<LeadId>, n: usize) -> Result<Vec<Lead>, Fail> {
    let after = after.map_or(Uuid::nil(), |a| *a.as_uuid());
    let sql = "SELECT doc FROM leads WHERE merged_into IS NULL AND erased_at IS NULL AND id > $1 ORDER BY id LIMIT $2";
    rows(c, sql, &[&after, &limit(n)]).await?.iter().map(|r| lead_from_row(r, 0)).collect()
}

// ---------------------------------------------------------------------------------------
// Keys

const KEY_COLUMNS: &str = "id, name, prefix, scopes, created_at, revoked_at, expires_at, last_used_at, rotated_at, \
                           rate_limit_per_minute, allowed_ips";

fn key_from_row(row: &Row) -> Result<ApiKey, Fail> {
    let Json(scopes) = row.try_get(3)?;
    let Json(allowed_ips) = row.try_get(10)?;
    let rate: Option<i32> = row.try_get(9)?;
    Ok(ApiKey {
        id: KeyId::from(row.try_get::<_, Uuid>(0)?),
        name: row.try_get(1)?,
        prefix: row.try_get(2)?,
        scopes,
        created_at: row.try_get(4)?,
        revoked_at: row.try_get(5)?,
        expires_at: row.try_get(6)?,
        last_used_at: row.try_get(7)?,
        rotated_at: row.try_get(8)?,
        rate_limit_per_minute: rate.and_then(|r| u32::try_from(r).ok()),
        allowed_ips,
    })
}

pub(super) async fn create_key(c: &impl GenericClient, key: &ApiKey, hash: TokenHash) -> Result<(), Fail> {
    exec(
        c,
        "INSERT INTO api_keys (id, name, prefix, token_hash, scopes, created_at, expires_at, rate_limit_per_minute,
                               allowed_ips)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            key.id.as_uuid(),
            &key.name,
            &key.prefix,
            &hash.to_hex(),
            &Json(&key.scopes),
            &key.created_at,
            &key.expires_at,
            &key.rate_limit_per_minute.map(|r| i32::try_from(r).unwrap_or(i32::MAX)),
            &Json(&key.allowed_ips),
        ],
    )
    .await?;
    Ok(())
}

/// Marks the active key `old` rotated, expiring at `grace_until` (the core's
/// [`ApiKey::grace_end`]), and
/// stores its successor; `None` when `old` is not an active, unrotated key.
pub(super) async fn rotate_key(
    c: &impl GenericClient,
    old: KeyId,
    grace_until: OffsetDateTime,
    new: &ApiKey,
    hash: TokenHash,
) -> Result<Option<ApiKey>, Fail> {
    let sql = format!(
        "UPDATE api_keys SET rotated_at = $2, expires_at = $3
         WHERE id = $1 AND revoked_at IS NULL AND rotated_at IS NULL RETURNING {KEY_COLUMNS}"
    );
    let Some(row) = opt(c, &sql, &[old.as_uuid(), &new.created_at, &grace_until]).await? else {
        return Ok(None);
    };
    let rotated = key_from_row(&row)?;
    create_key(c, new, hash).await?;
    Ok(Some(rotated))
}

/// Records when keys were last used (never moving a time back).
pub(super) async fn touch_keys(c: &impl GenericClient, used: &[(KeyId, OffsetDateTime)]) -> Result<(), Fail> {
    for (id, at) in used {
        exec(
            c,
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
            &[id.as_uuid(), at],
        )
        .await?;
    }
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
    // During a rotation's grace a name holds two keys: both go. The current one answers.
    let sql = format!(
        "UPDATE api_keys SET revoked_at = $2 WHERE revoked_at IS NULL AND (name = $1 OR id::text = $1) RETURNING {KEY_COLUMNS}"
    );
    let now = OffsetDateTime::now_utc();
    let mut revoked: Vec<ApiKey> =
        rows(c, &sql, &[&which, &now]).await?.iter().map(key_from_row).collect::<Result<_, _>>()?;
    revoked.sort_by_key(|k| (k.rotated_at.is_some(), std::cmp::Reverse(k.created_at)));
    Ok(revoked.into_iter().next())
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
            &SealedBytes(file),
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
            &report.map(SealedBytes),
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
    Ok(opt(c, sql, &[id.as_uuid()])
        .await?
        .map(|r| r.try_get::<_, Option<OpenedBytes>>(0))
        .transpose()?
        .flatten()
        .map(|b| b.0))
}

pub(super) async fn unfinished_imports(c: &impl GenericClient) -> Result<Vec<ImportJob>, Fail> {
    let sql =
        format!("SELECT {IMPORT_COLUMNS} FROM imports WHERE status IN ('queued', 'running') ORDER BY created_at, id");
    rows(c, &sql, &[]).await?.iter().map(import_from_row).collect()
}

// ---------------------------------------------------------------------------------------
// Reviews, merges and unmerges

pub(super) const REVIEW_COLUMNS: &str = "id, lead_id, candidate_id, score, evidence, status, created_at, decided_at";

pub(super) fn review_from_row(row: &Row) -> Result<Review, Fail> {
    let id: Uuid = row.try_get(0)?;
    let status: &str = row.try_get(5)?;
    let Opened(evidence) = row.try_get(4)?;
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
            &Sealed(evidence),
            &OffsetDateTime::now_utc(),
        ],
    )
    .await?;
    Ok(inserted == 1)
}

/// Folds `absorbed` into `survivor` (each followed through earlier merges, and locked),
/// as the core decides. `false` when either is missing or erased, or they are already one
/// lead.
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
    let Some(changes) = merges::absorb(&mut survivor, &absorbed, explanation, rules, now) else { return Ok(false) };
    apply(c, &changes).await?;
    Ok(true)
}

/// Undoes the merge of `absorbed` into its survivor, as the core decides.
pub(super) async fn unmerge(
    c: &impl GenericClient,
    absorbed_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<LeadId>, Fail> {
    let row =
        opt(c, "SELECT merged_into, erased_at, doc FROM leads WHERE id = $1 FOR UPDATE", &[absorbed_id.as_uuid()])
            .await?;
    let Some(row) = row else { return Ok(None) };
    let merged_into = row.try_get::<_, Option<Uuid>>(0)?.map(LeadId::from);
    let erased = row.try_get::<_, Option<OffsetDateTime>>(1)?.is_some();
    let away = merges::MergedAway { id: absorbed_id, merged_into, erased };
    let (survivor, history) = match merged_into {
        Some(into) if !erased => {
            let survivor = lead_following_merges(c, into, true).await?;
            let entries =
                rows(c, "SELECT entry FROM lead_history WHERE lead_id = $1 ORDER BY id DESC", &[into.as_uuid()])
                    .await?;
            let history: Vec<HistoryEntry> =
                entries.iter().map(|r| Ok(r.try_get::<_, Opened<HistoryEntry>>(0)?.0)).collect::<Result<_, Fail>>()?;
            (survivor, history)
        }
        _ => (None, Vec::new()),
    };
    let absorbed = lead_from_row(&row, 2)?;
    let Some(changes) =
        merges::unmerge(&away, survivor.as_ref(), &history, &absorbed, rules, now).map_err(StoreError::from)?
    else {
        return Ok(None);
    };
    apply(c, &changes).await?;
    Ok(merged_into)
}

/// A person's decision on an open review; a merge folds the newer lead into the other.
pub(super) async fn decide_review(
    c: &impl GenericClient,
    id: ReviewId,
    decision: ReviewStatus,
    rules: &Rules,
) -> Result<Option<Review>, Fail> {
    // Locked: two people deciding at once on two instances decide once.
    let Some(review) = review_by_id(c, id, true).await? else { return Ok(None) };
    let Some(merge) = merges::decide_review(&review, decision) else { return Ok(None) };
    let now = OffsetDateTime::now_utc();
    if let Some(m) = merge {
        lock_leads(c, &[m.survivor, m.absorbed]).await?;
        merge_pair(c, m.survivor, m.absorbed, m.explanation, rules, now).await?;
    }
    exec(
        c,
        "UPDATE duplicate_reviews SET status = $2, decided_at = $3 WHERE id = $1",
        &[id.as_uuid(), &decision.as_str(), &now],
    )
    .await?;
    review_by_id(c, id, false).await
}

/// Undoes a merge made at capture, as the core decides: the submission becomes a lead of
/// its own from `candidate` (the stored submission prepared again).
pub(super) async fn split(
    c: &impl GenericClient,
    lead_id: LeadId,
    submission: SubmissionId,
    candidate: Candidate,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, Fail> {
    let current = lead_following_merges(c, lead_id, true).await?;
    let stored = get_submission(c, submission).await?.map(|s| merges::MergedSubmission {
        meta: SubmissionMeta {
            id: s.submission.id,
            source: s.submission.source,
            received_at: s.submission.received_at,
        },
        lead_id: s.lead_id,
    });
    let entries = rows(
        c,
        "SELECT entry FROM lead_history WHERE lead_id = $1 AND submission_id = $2 ORDER BY id",
        &[lead_id.as_uuid(), submission.as_uuid()],
    )
    .await?;
    let history: Vec<HistoryEntry> =
        entries.iter().map(|r| Ok(r.try_get::<_, Opened<HistoryEntry>>(0)?.0)).collect::<Result<_, Fail>>()?;
    let accounts = accounts::by_keys(c, &merges::split_account_keys(&candidate)).await?;
    let split = merges::split(lead_id, current.as_ref(), stored.as_ref(), &history, candidate, &accounts, rules, now)
        .map_err(StoreError::from)?;
    let Some((lead, changes)) = split else { return Ok(None) };
    apply(c, &changes).await?;
    Ok(Some(lead))
}
