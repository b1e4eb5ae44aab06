//! The consent ledger and the suppression list in SQLite.

use super::{apply, millis};
use crate::StoreError;
use leadflow_core::consent::{self, Entry, State};
use leadflow_core::pipeline::Rules;
use leadflow_core::suppress::Suppression;
use leadflow_core::{Lead, LeadId, SubmissionId};
use rusqlite::{Connection, params};
use time::OffsetDateTime;

pub(super) fn insert_entries(conn: &Connection, lead: LeadId, entries: &[Entry]) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO consent_ledger (lead_id, purpose, status, at, recorded_at, submission_id, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, lf_seal(?7))",
    )?;
    for e in entries {
        insert.execute(params![
            lead.to_string(),
            e.purpose,
            e.state.status.as_str(),
            millis(e.state.at.unwrap_or(e.recorded_at)),
            millis(e.recorded_at),
            e.submission_id.map(|s| s.to_string()),
            serde_json::to_string(e)?
        ])?;
    }
    Ok(())
}

pub(super) fn suppress(conn: &Connection, entries: &[Suppression]) -> Result<u64, StoreError> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO suppressions (hash, kind, entry, key_id, reason, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut added = 0;
    for s in entries {
        added += insert.execute(params![
            s.hash.value,
            s.hash.kind.as_str(),
            s.entry,
            s.key_id,
            s.reason,
            s.created_by,
            millis(s.created_at)
        ])? as u64;
    }
    Ok(added)
}

pub(super) fn suppressed(conn: &Connection, hashes: &[String]) -> Result<Vec<String>, StoreError> {
    let mut found = Vec::new();
    let mut lookup = conn.prepare_cached("SELECT hash FROM suppressions WHERE hash = ?1")?;
    for hash in hashes {
        if lookup.exists([hash])? {
            found.push(hash.clone());
        }
    }
    Ok(found)
}

pub(super) fn lift(conn: &Connection, hashes: &[String]) -> Result<u64, StoreError> {
    let mut delete = conn.prepare_cached("DELETE FROM suppressions WHERE hash = ?1")?;
    let mut lifted = 0;
    for hash in hashes {
        lifted += delete.execute([hash])? as u64;
    }
    Ok(lifted)
}

/// Settled submissions stay: touchpoints and history name them.
pub(super) fn discard(conn: &Connection, ids: &[SubmissionId]) -> Result<u64, StoreError> {
    let mut delete = conn.prepare_cached("DELETE FROM submissions WHERE id = ?1 AND status <> 'processed'")?;
    let mut discarded = 0;
    for id in ids {
        discarded += delete.execute([id.to_string()])? as u64;
    }
    Ok(discarded)
}

pub(super) fn record(
    conn: &Connection,
    lead: LeadId,
    purpose: &str,
    state: &State,
    actor: Option<&str>,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<Lead>, StoreError> {
    let Some(mut lead) = super::reads::lead_following_merges(conn, lead)? else { return Ok(None) };
    let changes = consent::record_stored(&mut lead, purpose, state.clone(), actor, rules, now)
        .map_err(|consent::Erased(id)| StoreError::Erased(id))?;
    apply::apply(conn, &changes)?;
    Ok(Some(lead))
}

/// The ledger of the lead and of every lead merged into it (at any depth).
pub(super) fn ledger(conn: &Connection, lead: LeadId) -> Result<Vec<(LeadId, Entry)>, StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare_cached(
            "WITH RECURSIVE family (id) AS (
                 SELECT ?1 UNION SELECT l.id FROM leads l JOIN family f ON l.merged_into = f.id
             )
             SELECT c.lead_id, lf_open(c.doc) FROM consent_ledger c JOIN family f ON c.lead_id = f.id ORDER BY c.id",
        )?
        .query_map([lead.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, doc)| {
            let id = id.parse().map_err(|_| StoreError::Corrupt(format!("consent ledger: lead id {id}")))?;
            Ok((id, serde_json::from_str(&doc)?))
        })
        .collect()
}
