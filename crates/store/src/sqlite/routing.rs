//! Routing in SQLite: the queue of leads to route, written beside the change that calls
//! for it; the routing itself (positions, daily counts, the assignment, the lead's owner,
//! its history and outbox rows) in one writer transaction per lead; and the SLA timers.

use super::{lead_following_merges, millis};
use crate::{RoutedLead, StoreError};
use leadflow_domain::changes;
use leadflow_domain::pipeline::Rules;
use leadflow_domain::route::{self, Assignment, Change, SlaStep, Trigger};
use leadflow_domain::{Lead, LeadId};
use leadflow_scoring::routing::{Context, Decision};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;
use time::OffsetDateTime;

fn assignment(conn: &Connection, lead: LeadId) -> Result<Option<Assignment>, StoreError> {
    let row = conn
        .prepare_cached("SELECT owner, rule, source, stage, tried FROM assignments WHERE lead_id = ?1")?
        .query_row([lead.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?, r.get::<_, String>(4)?))
        })
        .optional()?;
    row.map(|(owner, rule, source, stage, tried)| {
        Ok(Assignment { owner, rule, source, stage, tried: serde_json::from_str(&tried)? })
    })
    .transpose()
}

/// Routes up to `limit` queued leads, oldest first.
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
        // A lead merged away meanwhile: its survivor is the one to route. An erased one
        // is routed to nobody.
        let Some(mut lead) = lead_following_merges(conn, lead_id)?.filter(|l| l.erased_at.is_none()) else {
            continue;
        };
        let current = assignment(conn, lead.id)?;
        let routed_by = current.as_ref().and_then(|a| a.source.as_deref());
        if !route::should_route(&lead, trigger, source.as_deref(), routed_by, &rules.routing) {
            continue;
        }
        let how = How { trigger, source, exclude: Vec::new(), note: None };
        if let Some(r) = route_lead(conn, &mut lead, how, rules, now)? {
            routed.push(r);
        }
    }
    Ok(routed)
}

/// Why and how a lead is being routed.
struct How {
    trigger: Trigger,
    source: Option<String>,
    /// Earlier owners an SLA reassignment leaves out.
    exclude: Vec<String>,
    /// The first step of the explanation, before the rule's.
    note: Option<String>,
}

fn route_lead(
    conn: &Connection,
    lead: &mut Lead,
    how: How,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<RoutedLead>, StoreError> {
    let routing = &rules.routing;
    let view = route::view(lead);
    let plan = routing.plan(&view);
    let day = now.date().to_string();
    let position: i64 = conn
        .prepare_cached("SELECT position FROM routing_positions WHERE queue = ?1")?
        .query_row([&plan.queue], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let (mut account_owner, mut related) = (None, Vec::new());
    if let (Some(rule), Some(account)) = (plan.rule, lead.account_id)
        && rule.account_based
    {
        let account = account.to_string();
        account_owner = conn
            .prepare_cached("SELECT owner FROM accounts WHERE id = ?1")?
            .query_row([&account], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten();
        related = conn
            .prepare_cached(
                "SELECT a.owner FROM leads l JOIN assignments a ON a.lead_id = l.id
                 WHERE l.account_id = ?1 AND l.merged_into IS NULL AND l.id <> ?2
                 ORDER BY a.assigned_at DESC LIMIT 5",
            )?
            .query_map(params![account, lead.id.to_string()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
    }
    let mut assigned_today = HashMap::new();
    let people =
        plan.offer.iter().map(|r| &*r.id).chain(account_owner.as_deref()).chain(related.iter().map(String::as_str));
    for rep in people {
        if !assigned_today.contains_key(rep) {
            let n: u32 = conn
                .prepare_cached("SELECT assigned FROM routing_daily WHERE rep = ?1 AND day = ?2")?
                .query_row(params![rep, day], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            assigned_today.insert(rep.to_owned(), n);
        }
    }
    let ctx = Context {
        account_owner: account_owner.as_deref(),
        related_owners: &related,
        position: u64::try_from(position).unwrap_or(0),
        assigned_today,
        exclude: &how.exclude,
        today: Some(now.date()),
    };
    let mut decision = match plan.decide(&ctx, routing.fallback_owner.as_ref()) {
        Ok(d) => d,
        Err(unrouted) => {
            tracing::warn!(lead_id = %lead.id, steps = ?unrouted.steps, "lead not routed: nobody to give it to");
            return Ok(None);
        }
    };
    if how.trigger == Trigger::Sla && lead.owner.as_deref() == Some(&*decision.owner) {
        // Nobody else can take it: the owner keeps it and the timer stops.
        stop_timer(conn, lead.id)?;
        return Ok(None);
    }
    if let Some(note) = how.note {
        decision.steps.insert(0, note);
    }
    if let Some(next) = decision.next_position {
        conn.prepare_cached(
            "INSERT INTO routing_positions (queue, position) VALUES (?1, ?2)
             ON CONFLICT (queue) DO UPDATE SET position = excluded.position",
        )?
        .execute(params![plan.queue, i64::try_from(next).unwrap_or(0)])?;
    }
    let sla_due_at = route::sla_due(routing, &decision, now);
    let mut tried = how.exclude;
    if how.trigger != Trigger::Sla {
        tried.clear();
    }
    let change = Change { trigger: how.trigger, source: how.source, tried, sla_due_at };
    commit_assignment(conn, lead, decision, change, rules, now).map(Some)
}

fn commit_assignment(
    conn: &Connection,
    lead: &mut Lead,
    decision: Decision,
    change: Change,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<RoutedLead, StoreError> {
    let owner = decision.owner.to_string();
    let rule = decision.rule.as_ref().map(|r| r.to_string());
    let via = decision.via;
    conn.prepare_cached(
        "INSERT INTO routing_daily (rep, day, assigned) VALUES (?1, ?2, 1)
         ON CONFLICT (rep, day) DO UPDATE SET assigned = assigned + 1",
    )?
    .execute(params![owner, now.date().to_string()])?;
    if let Some(account) = lead.account_id {
        // The account's first owner is its first lead's: later leads of it follow.
        conn.prepare_cached("UPDATE accounts SET owner = ?1, updated_at = ?2 WHERE id = ?3 AND owner IS NULL")?
            .execute(params![owner, millis(now), account.to_string()])?;
    }
    conn.prepare_cached(
        "INSERT INTO assignments (lead_id, owner, rule, source, stage, assigned_at, sla_due_at, tried)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (lead_id) DO UPDATE SET owner = excluded.owner, rule = excluded.rule,
             source = coalesce(excluded.source, assignments.source), stage = excluded.stage,
             assigned_at = excluded.assigned_at, sla_due_at = excluded.sla_due_at, tried = excluded.tried",
    )?
    .execute(params![
        lead.id.to_string(),
        owner,
        rule,
        change.source,
        lead.lifecycle_stage,
        millis(now),
        change.sla_due_at.map(millis),
        serde_json::to_string(&change.tried)?
    ])?;
    let expected = lead.version;
    let event = route::assign(lead, decision, change.trigger, change.sla_due_at, now);
    lead.version += 1;
    super::apply::apply(conn, &changes::updated(lead, expected, vec![event], rules, now))?;
    let trigger = change.trigger.as_str().to_owned();
    Ok(RoutedLead { lead_id: lead.id, owner, rule, via: via.as_str().to_owned(), trigger })
}

/// The CRM reported on the lead: its owner has taken it up, so the SLA timer stops, and
/// the assignment follows an owner the CRM set.
pub(super) fn taken_up(conn: &Connection, lead: LeadId, owner: Option<&str>) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE assignments SET sla_due_at = NULL, owner = coalesce(?2, owner) WHERE lead_id = ?1")?
        .execute(params![lead.to_string(), owner])?;
    Ok(())
}

fn stop_timer(conn: &Connection, lead: LeadId) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE assignments SET sla_due_at = NULL WHERE lead_id = ?1")?.execute([lead.to_string()])?;
    Ok(())
}

/// Acts on up to `limit` assignments whose SLA ran out by `now`: an owner who took the
/// lead up (it left the stage it was assigned in) or lost it meanwhile stops the timer;
/// otherwise the rule's SLA action runs.
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
        let lead = lead_following_merges(conn, lead_id)?.filter(|l| l.erased_at.is_none());
        let (Some(mut lead), Some(current)) = (lead, assignment(conn, lead_id)?) else {
            stop_timer(conn, lead_id)?;
            continue;
        };
        let tried = current.tried.clone();
        let routed = match route::sla_step(&lead, lead_id, current, &rules.routing) {
            SlaStep::Stop => None,
            SlaStep::Escalate(decision) => {
                let change = Change { trigger: Trigger::Sla, source: None, tried, sla_due_at: None };
                Some(commit_assignment(conn, &mut lead, decision, change, rules, now)?)
            }
            SlaStep::Reassign { exclude, note } => {
                let how = How { trigger: Trigger::Sla, source: None, exclude, note: Some(note) };
                route_lead(conn, &mut lead, how, rules, now)?
            }
        };
        match routed {
            Some(r) => acted.push(r),
            None => stop_timer(conn, lead_id)?,
        }
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
    let Some(mut lead) = lead_following_merges(conn, lead_id)? else { return Ok(None) };
    if lead.erased_at.is_some() {
        return Err(StoreError::Erased(lead.id));
    }
    let assigned = match owner {
        Some(owner) => {
            let decision = route::manual(owner, actor);
            let tried = Vec::new();
            let change = Change { trigger: Trigger::Manual, source: None, tried, sla_due_at: None };
            commit_assignment(conn, &mut lead, decision, change, rules, now)?;
            true
        }
        None => {
            let how = How { trigger: Trigger::Manual, source: None, exclude: Vec::new(), note: None };
            route_lead(conn, &mut lead, how, rules, now)?.is_some()
        }
    };
    Ok(Some((lead, assigned)))
}

/// When the next SLA runs out, if any timer runs.
pub(super) fn next_sla_due(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let at: Option<i64> = conn.query_row("SELECT min(sla_due_at) FROM assignments", [], |r| r.get(0))?;
    Ok(at.map(super::from_millis))
}
