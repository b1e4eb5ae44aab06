//! Row mapping and lookups, shared by the writer, inside its transaction, and the read pool.

use super::{MAX_MERGE_HOPS, capture, from_millis};
use crate::{
    ImportCounts, ImportJob, ImportStatus, Review, ReviewStatus, StoreError, StoredSubmission, SubmissionStatus,
};
use leadflow_core::capture::{IdempotencyKey, RawSubmission};
use leadflow_core::keys::ApiKey;
use leadflow_core::pipeline::HistoryEntry;
use leadflow_core::{KeyId, Lead, LeadId, ReviewId, SourceName, SubmissionId};
use rusqlite::{Connection, OptionalExtension};
use serde_json::{Map, Value};

pub(super) const IMPORT_COLUMNS: &str =
    "id, source, sheet, status, rows, created, merged, rejected, pending, error, created_at, updated_at";

pub(super) fn import_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ImportJob, StoreError>> {
    let id: String = r.get(0)?;
    let source: String = r.get(1)?;
    let status: String = r.get(3)?;
    let n = |i: usize| -> rusqlite::Result<u64> { Ok(u64::try_from(r.get::<_, i64>(i)?).unwrap_or(0)) };
    let counts = ImportCounts { rows: n(4)?, created: n(5)?, merged: n(6)?, rejected: n(7)?, pending: n(8)? };
    let (sheet, error): (Option<String>, Option<String>) = (r.get(2)?, r.get(9)?);
    let (created, updated): (i64, i64) = (r.get(10)?, r.get(11)?);
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("import {id}: {what}"));
        Ok(ImportJob {
            id: id.parse().map_err(|_| corrupt("id"))?,
            source: SourceName::parse(&source).map_err(|_| corrupt("source"))?,
            sheet,
            status: match status.as_str() {
                "queued" => ImportStatus::Queued,
                "running" => ImportStatus::Running,
                "done" => ImportStatus::Done,
                "failed" => ImportStatus::Failed,
                _ => return Err(corrupt("status")),
            },
            counts,
            error,
            created_at: from_millis(created),
            updated_at: from_millis(updated),
        })
    })())
}

pub(super) const REVIEW_COLUMNS: &str =
    "id, lead_id, candidate_id, score, lf_open(evidence), status, created_at, decided_at";

pub(super) fn review_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Review, StoreError>> {
    let (id, lead, candidate): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
    let (score, evidence, status): (f64, String, String) = (r.get(3)?, r.get(4)?, r.get(5)?);
    let (created, decided): (i64, Option<i64>) = (r.get(6)?, r.get(7)?);
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("review {id}: {what}"));
        Ok(Review {
            id: id.parse().map_err(|_| corrupt("id"))?,
            lead_id: lead.parse().map_err(|_| corrupt("lead id"))?,
            candidate_id: candidate.parse().map_err(|_| corrupt("candidate id"))?,
            score,
            evidence: serde_json::from_str(&evidence)?,
            status: match status.as_str() {
                "open" => ReviewStatus::Open,
                "merged" => ReviewStatus::Merged,
                "distinct" => ReviewStatus::Distinct,
                _ => return Err(corrupt("status")),
            },
            created_at: from_millis(created),
            decided_at: decided.map(from_millis),
        })
    })())
}

pub(super) fn review_by_id(conn: &Connection, id: ReviewId) -> Result<Option<Review>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {REVIEW_COLUMNS} FROM duplicate_reviews WHERE id = ?1"))?
        .query_row([id.to_string()], review_from_row)
        .optional()?;
    found.transpose()
}

pub(super) fn lead_history_newest_first(conn: &Connection, lead: LeadId) -> Result<Vec<HistoryEntry>, StoreError> {
    let entries: Vec<String> = conn
        .prepare_cached("SELECT lf_open(entry) FROM lead_history WHERE lead_id = ?1 ORDER BY id DESC")?
        .query_map([lead.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    entries.iter().map(|e| Ok(serde_json::from_str(e)?)).collect()
}

pub(super) const SUBMISSION_COLUMNS: &str =
    "id, source, idempotency_key, received_at, lf_open(payload), status, lf_open(error), lead_id";

pub(super) fn submission_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<StoredSubmission, StoreError>> {
    let id: String = r.get(0)?;
    let source: String = r.get(1)?;
    let key: Option<String> = r.get(2)?;
    let received: i64 = r.get(3)?;
    let payload: String = r.get(4)?;
    let status: String = r.get(5)?;
    let error: Option<String> = r.get(6)?;
    let lead_id: Option<String> = r.get(7)?;
    Ok((|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("submission {id}: {what}"));
        Ok(StoredSubmission {
            submission: RawSubmission {
                id: id.parse().map_err(|_| corrupt("id"))?,
                source: SourceName::parse(&source).map_err(|_| corrupt("source"))?,
                received_at: from_millis(received),
                idempotency_key: key
                    .map(|k| IdempotencyKey::parse(&k))
                    .transpose()
                    .map_err(|_| corrupt("idempotency key"))?,
                payload: serde_json::from_str::<Map<String, Value>>(&payload)?,
                fingerprint: None,
            },
            status: match status.as_str() {
                "pending" => SubmissionStatus::Pending,
                "processed" => SubmissionStatus::Processed,
                "rejected" => SubmissionStatus::Rejected,
                _ => return Err(corrupt("status")),
            },
            errors: capture::stored_errors(error.as_deref()),
            lead_id: lead_id.map(|l| l.parse()).transpose().map_err(|_| corrupt("lead id"))?,
        })
    })())
}

pub(super) fn get_submission(conn: &Connection, id: SubmissionId) -> Result<Option<StoredSubmission>, StoreError> {
    let found = conn
        .prepare_cached(&format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = ?1"))?
        .query_row([id.to_string()], submission_from_row)
        .optional()?;
    found.transpose()
}

pub(super) const KEY_COLUMNS: &str = "id, name, prefix, scopes, created_at, revoked_at, expires_at, last_used_at, \
                                      rotated_at, rate_limit_per_minute, allowed_ips";

pub(super) fn key_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<ApiKey, StoreError>> {
    let id: String = r.get(0)?;
    let scopes: String = r.get(3)?;
    let revoked: Option<i64> = r.get(5)?;
    let (name, prefix, created): (String, String, i64) = (r.get(1)?, r.get(2)?, r.get(4)?);
    let (expires, used, rotated): (Option<i64>, Option<i64>, Option<i64>) = (r.get(6)?, r.get(7)?, r.get(8)?);
    let rate: Option<i64> = r.get(9)?;
    let ips: String = r.get(10)?;
    Ok((|| {
        Ok(ApiKey {
            id: id.parse::<KeyId>().map_err(|e| StoreError::Corrupt(e.to_string()))?,
            name,
            prefix,
            scopes: serde_json::from_str(&scopes)?,
            created_at: from_millis(created),
            revoked_at: revoked.map(from_millis),
            expires_at: expires.map(from_millis),
            last_used_at: used.map(from_millis),
            rotated_at: rotated.map(from_millis),
            rate_limit_per_minute: rate.and_then(|r| u32::try_from(r).ok()),
            allowed_ips: serde_json::from_str(&ips)?,
        })
    })())
}

pub(super) fn lead_from_doc(doc: &str) -> Result<Lead, StoreError> {
    Ok(serde_json::from_str(doc)?)
}

/// One index lookup: a UNION with the plain address cost a quarter of import throughput.
/// `merged_into IS NULL` lets it use the partial index.
pub(super) const MAILBOX_LOOKUP: &str =
    "SELECT lf_open(doc) FROM leads WHERE email_key = lf_blind(?1) AND merged_into IS NULL";

/// The surviving leads with this mailbox (the same match key).
pub(super) fn leads_by_mailbox(conn: &Connection, key: &str) -> Result<Vec<Lead>, StoreError> {
    leads_where(conn, MAILBOX_LOOKUP, key)
}

/// The leads a one-parameter lookup selecting `doc` finds.
pub(super) fn leads_where(conn: &Connection, lookup: &str, value: &str) -> Result<Vec<Lead>, StoreError> {
    let mut stmt = conn.prepare_cached(lookup)?;
    let docs = stmt.query_map([value], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
    docs.iter().map(|d| lead_from_doc(d)).collect()
}

pub(super) fn lead_following_merges(conn: &Connection, id: LeadId) -> Result<Option<Lead>, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT merged_into, lf_open(doc) FROM leads WHERE id = ?1")?;
    let mut current = id.to_string();
    for _ in 0..MAX_MERGE_HOPS {
        let row =
            stmt.query_row([&current], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))).optional()?;
        match row {
            None => return Ok(None),
            Some((Some(next), _)) => current = next,
            Some((None, doc)) => return lead_from_doc(&doc).map(Some),
        }
    }
    Err(StoreError::Corrupt(format!("lead {id} is merged through more than {MAX_MERGE_HOPS} hops")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::SqliteStore;

    /// The lookups capture runs for every submission must read an index, never the table: a
    /// scan costs milliseconds per capture at a million leads.
    #[test]
    fn capture_lookups_use_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.db");
        drop(SqliteStore::open(&path, Default::default()).unwrap());
        let conn = Connection::open(&path).unwrap();
        crate::sqlite::sealing::register(&conn, None).unwrap();
        let plan = |sql: &str| -> Vec<String> {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let args = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
            stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let steps = plan(MAILBOX_LOOKUP);
        assert!(steps.iter().all(|s| !s.starts_with("SCAN leads")), "{steps:?}");
        assert!(steps.iter().any(|s| s.contains("leads_email_key")), "{steps:?}");
    }
}
