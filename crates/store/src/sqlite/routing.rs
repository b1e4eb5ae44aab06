//! Routing in SQLite: loads what the core's [`assignments`] steps read (the queued
//! lead, its assignment, the queue's position, the account's owners, today's counts) and
//! applies what they decide, all in the single writer's transaction.

use super::{lead_following_merges, millis};
use crate::{RoutedLead, StoreError};
use leadflow_core::assignments::{self, AccountOwners, Outcome, Route, State, Step};
use leadflow_core::pipeline::Rules;
use leadflow_core::route::{Assignment, Trigger};
use leadflow_core::{Lead, LeadId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use time::OffsetDateTime;

fn assignment(conn: &Connection, lead: LeadId) -> Result<Option<Assignment>, StoreError> {
    let row = conn
        .prepare_cached("SELECT owner, rule, source, stage, tried, sla_due_at FROM assignments WHERE lead_id = ?1")?
        .query_row([lead.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    row.map(|(owner, rule, source, stage, tried, due)| {
        let (tried, sla_due_at) = (serde_json::from_str(&tried)?, due.map(super::from_millis));
        Ok(Assignment { owner, rule, source, stage, tried, sla_due_at })
    })
    .transpose()
}

/// Routes up to `limit` queued leads, oldest first. Each row leaves the queue whether or
/// not its lead is routed.
pub(super) fn route_queued(
    conn: &Connection,
    limit: usize,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<RoutedLead>, StoreError> {
    let rows: Vec<(String, String, Option<String>)> = conn
        .prepare_cached("SELECT lead_id, trigger, source FROM routing_queue ORDER BY queued_at, lead_id LIMIT ?1")?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut routed = Vec::new();
    for (id, trigger, source) in rows {
        conn.prepare_cached("DELETE FROM routing_queue WHERE lead_id = ?1")?.execute([&id])?;
        let (Ok(lead_id), Some(trigger)) = (id.parse::<LeadId>(), Trigger::parse(&trigger)) else {
            return Err(StoreError::Corrupt(format!("routing queue row {id}")));
        };
        let lead = lead_following_merges(conn, lead_id)?;
        let current = lead.as_ref().map(|l| assignment(conn, l.id)).transpose()?.flatten();
        let outcome = run(conn, assignments::queued(lead, current, trigger, source, rules, now))?;
        routed.extend(finish(conn, outcome)?.1);
    }
    Ok(routed)
}

/// Decides a step, loading the routing state first if it needs it.
fn run(conn: &Connection, step: Step<'_>) -> Result<Outcome, StoreError> {
    match step {
        Step::Done(outcome) => Ok(outcome),
        Step::Route(route) => {
            let state = state(conn, &route)?;
            Ok(route.decide(state))
        }
    }
}

/// What routing reads: the queue's position, the account's owners, today's counts.
fn state(conn: &Connection, route: &Route<'_>) -> Result<State, StoreError> {
    let position: i64 = conn
        .prepare_cached("SELECT position FROM routing_positions WHERE queue = ?1")?
        .query_row([route.queue()], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let mut account = AccountOwners::default();
    if let Some(id) = route.account() {
        let id = id.to_string();
        account.owner = conn
            .prepare_cached("SELECT owner FROM accounts WHERE id = ?1")?
            .query_row([&id], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten();
        account.related = conn
            .prepare_cached(
                "SELECT a.owner FROM leads l JOIN assignments a ON a.lead_id = l.id
                 WHERE l.account_id = ?1 AND l.merged_into IS NULL AND l.id <> ?2
                 ORDER BY a.assigned_at DESC LIMIT ?3",
            )?
            .query_map(
                params![
                    id,
                    route.lead().id.to_string(),
                    i64::try_from(assignments::RELATED_OWNERS).unwrap_or(i64::MAX)
                ],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
    }
    let day = route.day().to_string();
    let mut assigned_today = HashMap::new();
    let mut count = conn.prepare_cached("SELECT assigned FROM routing_daily WHERE rep = ?1 AND day = ?2")?;
    for rep in route.reps(&account) {
        let n: Option<u32> = count.query_row(params![rep, day], |r| r.get(0)).optional()?;
        assigned_today.insert(rep, n.unwrap_or(0));
    }
    Ok(State { position: u64::try_from(position).unwrap_or(0), account, assigned_today })
}

/// Applies an outcome; the lead as it now stands, and whom it went to.
fn finish(conn: &Connection, outcome: Outcome) -> Result<(Option<Lead>, Option<RoutedLead>), StoreError> {
    let (changes, lead, routed) = RoutedLead::from_outcome(outcome);
    super::apply::apply(conn, &changes)?;
    Ok((lead, routed))
}

/// Acts on up to `limit` assignments whose SLA ran out by `now`, as the core decides.
pub(super) fn run_sla(
    conn: &Connection,
    limit: usize,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Vec<RoutedLead>, StoreError> {
    let due: Vec<String> = conn
        .prepare_cached(
            "SELECT lead_id FROM assignments WHERE sla_due_at IS NOT NULL AND sla_due_at <= ?1
             ORDER BY sla_due_at LIMIT ?2",
        )?
        .query_map(params![millis(now), i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut acted = Vec::new();
    for id in due {
        let lead_id: LeadId = id.parse().map_err(|_| StoreError::Corrupt(format!("assignment of {id}")))?;
        let lead = lead_following_merges(conn, lead_id)?;
        let current = assignment(conn, lead_id)?;
        let outcome = run(conn, assignments::sla(lead_id, lead, current, rules, now))?;
        acted.extend(finish(conn, outcome)?.1);
    }
    Ok(acted)
}

/// Gives a lead to `owner` (a person's choice), or with `None` routes it again. `None`
/// when there is no such lead; the flag says whether it was assigned.
pub(super) fn assign(
    conn: &Connection,
    lead_id: LeadId,
    owner: Option<&str>,
    actor: &str,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<(Lead, bool)>, StoreError> {
    let Some(lead) = lead_following_merges(conn, lead_id)? else { return Ok(None) };
    let current = assignment(conn, lead.id)?;
    let step = assignments::manual(lead, current, owner, actor, rules, now).map_err(|e| StoreError::Erased(e.0))?;
    let (lead, routed) = finish(conn, run(conn, step)?)?;
    let lead = lead.ok_or_else(|| StoreError::Internal(format!("assigning lead {lead_id} lost it")))?;
    Ok(Some((lead, routed.is_some())))
}

/// When the next SLA runs out, if any timer runs.
pub(super) fn next_sla_due(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let at: Option<i64> = conn.query_row("SELECT min(sla_due_at) FROM assignments", [], |r| r.get(0))?;
    Ok(at.map(super::from_millis))
}
