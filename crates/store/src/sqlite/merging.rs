//! Merges, unmerges, splits and review decisions, applied as the core decides them.

use super::{
    accounts, apply, get_submission, lead_following_merges, lead_from_doc, lead_history_newest_first, millis,
    review_by_id,
};
use crate::{Review, ReviewStatus, StoreError};
use leadflow_core::merges;
use leadflow_core::normalize::Candidate;
use leadflow_core::pipeline::Rules;
use leadflow_core::pipeline::{HistoryEntry, SubmissionMeta};
use leadflow_core::resolve;
use leadflow_core::{Lead, LeadId, ReviewId, SubmissionId};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

/// Folds `absorbed` into `survivor` (each followed through earlier merges), as the core
/// decides. `false` when either is missing or erased, or they are already one lead.
pub(super) fn merge_pair(
    conn: &Connection,
    survivor: LeadId,
    absorbed: LeadId,
    explanation: resolve::Explanation,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let (Some(mut survivor), Some(absorbed)) =
        (lead_following_merges(conn, survivor)?, lead_following_merges(conn, absorbed)?)
    else {
        return Ok(false);
    };
    let Some(changes) = merges::absorb(&mut survivor, &absorbed, explanation, rules, now) else { return Ok(false) };
    apply::apply(conn, &changes)?;
    Ok(true)
}

/// Undoes the merge of `absorbed` into its survivor, as the core decides.
pub(super) fn unmerge(
    conn: &Connection,
    absorbed_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<LeadId>, StoreError> {
    let row: Option<(Option<String>, Option<i64>, String)> = conn
        .query_row(
            "SELECT merged_into, erased_at, lf_open(doc) FROM leads WHERE id = ?1",
            [absorbed_id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((into, erased_at, doc)) = row else { return Ok(None) };
    let merged_into: Option<LeadId> =
        into.map(|i| i.parse()).transpose().map_err(|_| StoreError::Corrupt("merged_into".into()))?;
    let away = merges::MergedAway { id: absorbed_id, merged_into, erased: erased_at.is_some() };
    let (survivor, history) = match merged_into {
        Some(into) if erased_at.is_none() => {
            (lead_following_merges(conn, into)?, lead_history_newest_first(conn, into)?)
        }
        _ => (None, Vec::new()),
    };
    let absorbed = lead_from_doc(&doc)?;
    let Some(changes) =
        merges::unmerge(&away, survivor.as_ref(), &history, &absorbed, rules, now).map_err(StoreError::from)?
    else {
        return Ok(None);
    };
    apply::apply(conn, &changes)?;
    Ok(merged_into)
}

/// Undoes a merge made at capture, as the core decides: the submission becomes a lead of
/// its own from `candidate` (the stored submission prepared again).
pub(super) fn split(
    conn: &Connection,
    lead_id: LeadId,
    submission: SubmissionId,
    candidate: Candidate,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<(LeadId, Lead)>, StoreError> {
    let current = lead_following_merges(conn, lead_id)?;
    let stored = get_submission(conn, submission)?.map(|s| merges::MergedSubmission {
        meta: SubmissionMeta {
            id: s.submission.id,
            source: s.submission.source,
            received_at: s.submission.received_at,
        },
        lead_id: s.lead_id,
    });
    let entries: Vec<String> = conn
        .prepare_cached("SELECT lf_open(entry) FROM lead_history WHERE lead_id = ?1 AND submission_id = ?2")?
        .query_map(params![lead_id.to_string(), submission.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let history: Vec<HistoryEntry> = entries.iter().map(|e| serde_json::from_str(e)).collect::<Result<_, _>>()?;
    let accounts = accounts::by_keys(conn, &merges::split_account_keys(&candidate))?;
    let split = merges::split(lead_id, current.as_ref(), stored.as_ref(), &history, candidate, &accounts, rules, now)
        .map_err(StoreError::from)?;
    let Some((lead, changes)) = split else { return Ok(None) };
    apply::apply(conn, &changes)?;
    Ok(Some((lead_id, lead)))
}

/// A person's decision on an open review; a merge folds the newer lead into the other.
pub(super) fn decide_review(
    conn: &Connection,
    id: ReviewId,
    decision: ReviewStatus,
    rules: &Rules,
) -> Result<Option<Review>, StoreError> {
    let Some(review) = review_by_id(conn, id)? else { return Ok(None) };
    let Some(merge) = merges::decide_review(&review, decision) else { return Ok(None) };
    let now = OffsetDateTime::now_utc();
    if let Some(m) = merge {
        merge_pair(conn, m.survivor, m.absorbed, m.explanation, rules, now)?;
    }
    conn.prepare_cached("UPDATE duplicate_reviews SET status = ?2, decided_at = ?3 WHERE id = ?1")?
        .execute(params![id.to_string(), decision.as_str(), millis(now)])?;
    review_by_id(conn, id)
}
