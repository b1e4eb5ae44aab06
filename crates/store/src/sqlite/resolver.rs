//! The resolver's batch in SQLite, in two phases so that the one writer is held only to
//! apply:
//!
//! 1. [`decide`], on a reader connection beside the writer: the queued leads, oldest first,
//!    each looked up by its blocking keys and decided by the core
//!    ([`leadflow_core::resolve::queued`]). The leads decided earlier in the batch are not
//!    in the snapshot's index yet; a [`BatchIndex`] stands in for them, so a lead still
//!    sees every lead queued before it.
//! 2. [`apply`], in the writer's transaction: a lead no longer there (merged away, erased)
//!    is passed over; a merge loads its leads as they now stand and is decided by the core
//!    again over them (a merge writes each lead at the version it read); the rest is
//!    indexed and its reviews queued. The batch's queue rows go in the same transaction.
//!
//! A capture that changed a lead between the phases queued it again, so it is resolved
//! once more over what it now holds. One batch runs at a time per store.

use super::apply::apply_one;
use super::capture::candidates_with;
use super::lead_following_merges;
use crate::{ResolveBatch, StoreError};
use leadflow_core::LeadId;
use leadflow_core::pipeline::Rules;
use leadflow_core::resolve::queued::{Batch, Held, Plan, Queued};
use rusqlite::{Connection, OptionalExtension};
use time::OffsetDateTime;

/// What the read phase decided: the plans in queue order, and the last queue row taken.
pub(super) struct Decided {
    pub taken: usize,
    pub last: Option<i64>,
    pub plans: Vec<Plan>,
}

pub(super) fn decide(
    conn: &Connection,
    limit: usize,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Decided, StoreError> {
    let rows: Vec<(i64, String)> = conn
        .prepare_cached("SELECT seq, lead_id FROM resolve_queue ORDER BY seq LIMIT ?1")?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut decided = Decided { taken: rows.len(), last: rows.last().map(|r| r.0), plans: Vec::new() };
    let mut batch = Batch::default();
    for (seq, id) in rows {
        let id: LeadId = id.parse().map_err(|_| StoreError::Corrupt(format!("resolve queue row {seq}")))?;
        let Some(lead) = batch.admit(lead_following_merges(conn, id)?) else { continue };
        let queued = Queued::new(lead, rules, now);
        let found = candidates_with(conn, &queued.lookup(), &batch)?.ranked;
        let plan = queued.decide(found).plan();
        batch.planned(&plan);
        decided.plans.push(plan);
    }
    Ok(decided)
}

pub(super) fn apply(
    conn: &Connection,
    decided: &Decided,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<ResolveBatch, StoreError> {
    let Some(last) = decided.last else { return Ok(ResolveBatch::default()) };
    let mut batch = ResolveBatch { taken: decided.taken, ..ResolveBatch::default() };
    for plan in &decided.plans {
        let held = if plan.merges() {
            let queued = lead_following_merges(conn, plan.lead)?.map(Box::new);
            let loaded =
                plan.leads().into_iter().map(|id| lead_following_merges(conn, id)).collect::<Result<_, _>>()?;
            Held::Leads { queued, loaded }
        } else if still_there(conn, plan.lead)? {
            Held::There
        } else {
            Held::Gone
        };
        let resolved = plan.clone().finish(held, rules, now);
        if resolved.changes.is_empty() {
            continue;
        }
        for change in &resolved.changes {
            apply_one(conn, change)?;
        }
        batch.add(resolved);
    }
    conn.prepare_cached("DELETE FROM resolve_queue WHERE seq <= ?1")?.execute([last])?;
    Ok(batch)
}

/// Whether the lead is still one of its own (not merged away, not erased).
fn still_there(conn: &Connection, lead: LeadId) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM leads WHERE id = ?1 AND merged_into IS NULL AND erased_at IS NULL")?
        .query_row([lead.to_string()], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn backlog(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached("SELECT count(*) FROM resolve_queue")?.query_row([], |r| r.get(0))?;
    Ok(n.unsigned_abs())
}
