//! The resolver's batch in SQLite: queued leads, oldest first, each resolved by the core
//! ([`leadflow_core::resolve::queued`]) over the leads its blocking keys find, in the
//! writer's transaction, so a lead sees every lead resolved before it, in this batch too.

use super::apply::apply_one;
use super::capture::candidates;
use super::lead_following_merges;
use crate::{ResolveBatch, StoreError};
use leadflow_core::LeadId;
use leadflow_core::pipeline::Rules;
use leadflow_core::resolve::queued::Queued;
use rusqlite::Connection;
use std::collections::HashSet;
use time::OffsetDateTime;

pub(super) fn resolve_queued(
    conn: &Connection,
    limit: usize,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<ResolveBatch, StoreError> {
    let rows: Vec<(i64, String)> = conn
        .prepare_cached("SELECT seq, lead_id FROM resolve_queue ORDER BY seq LIMIT ?1")?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let Some(&(last, _)) = rows.last() else { return Ok(ResolveBatch::default()) };
    let mut batch = ResolveBatch { taken: rows.len(), ..ResolveBatch::default() };
    let mut seen: HashSet<LeadId> = HashSet::new();
    for (seq, id) in rows {
        let id: LeadId = id.parse().map_err(|_| StoreError::Corrupt(format!("resolve queue row {seq}")))?;
        // Queued twice, or merged into a lead resolved earlier in the batch: once is enough.
        let Some(lead) = lead_following_merges(conn, id)? else { continue };
        if lead.erased_at.is_some() || !seen.insert(lead.id) {
            continue;
        }
        let queued = Queued::new(lead, rules, now);
        let found = candidates(conn, &queued.lookup())?.ranked;
        let resolving = queued.decide(found);
        let loaded =
            resolving.leads().into_iter().map(|id| lead_following_merges(conn, id)).collect::<Result<_, _>>()?;
        let resolved = resolving.finish(loaded);
        for change in &resolved.changes {
            apply_one(conn, change)?;
        }
        seen.extend(resolved.merged.iter().copied());
        batch.add(resolved);
    }
    conn.prepare_cached("DELETE FROM resolve_queue WHERE seq <= ?1")?.execute([last])?;
    Ok(batch)
}

pub(super) fn backlog(conn: &Connection) -> Result<u64, StoreError> {
    let n: i64 = conn.prepare_cached("SELECT count(*) FROM resolve_queue")?.query_row([], |r| r.get(0))?;
    Ok(n.unsigned_abs())
}
