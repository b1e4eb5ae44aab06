//! Routing in PostgreSQL: loads what the core's [`assignments`] steps read and applies
//! what they decide, made safe for several instances. A queued lead is claimed with
//! `FOR UPDATE SKIP LOCKED` and routed in a transaction of its own, with locks taken in
//! one order everywhere: the lead's row, the queue's position row, then the reps' daily
//! rows sorted by rep. Two instances therefore never hand out the same turn or count
//! past a cap; a deadlock with a capture (which locks the lead, then queues it) is
//! detected and the transaction runs again.

use super::Fail;
use super::sql::{exec, lead_following_merges, limit, opt, rows};
use crate::{RoutedLead, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_core::assignments::{self, AccountOwners, Outcome, Route, State, Step};
use leadflow_core::pipeline::Rules;
use leadflow_core::route::{Assignment, Trigger};
use leadflow_core::{Lead, LeadId};
use std::collections::HashMap;
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

/// The lead's assignment; `lock` holds it until the transaction ends.
async fn assignment(c: &impl GenericClient, lead: LeadId, lock: bool) -> Result<Option<Assignment>, Fail> {
    let sql = if lock {
        "SELECT owner, rule, source, stage, tried, sla_due_at FROM assignments WHERE lead_id = $1 FOR UPDATE"
    } else {
        "SELECT owner, rule, source, stage, tried, sla_due_at FROM assignments WHERE lead_id = $1"
    };
    let Some(row) = opt(c, sql, &[lead.as_uuid()]).await? else { return Ok(None) };
    Ok(Some(Assignment {
        owner: row.try_get(0)?,
        rule: row.try_get(1)?,
        source: row.try_get(2)?,
        stage: row.try_get(3)?,
        tried: row.try_get::<_, Json<Vec<String>>>(4)?.0,
        sla_due_at: row.try_get(5)?,
    }))
}

/// What one claim of the queue came to.
pub(super) enum Claim {
    /// Nothing left to route.
    Empty,
    /// One queued lead done: routed, or nothing to do for it.
    Done(Option<RoutedLead>),
}

/// Claims and routes the oldest queued lead no other instance is routing.
pub(super) async fn route_next(c: &impl GenericClient, rules: &Rules, now: OffsetDateTime) -> Result<Claim, Fail> {
    let Some(row) = opt(
        c,
        "DELETE FROM routing_queue WHERE lead_id = (
             SELECT lead_id FROM routing_queue ORDER BY queued_at, lead_id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING lead_id, trigger, source",
        &[],
    )
    .await?
    else {
        return Ok(Claim::Empty);
    };
    let (id, trigger, source): (Uuid, String, Option<String>) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let trigger = Trigger::parse(&trigger).ok_or_else(|| StoreError::Corrupt(format!("routing queue row {id}")))?;
    let lead = lead_following_merges(c, LeadId::from(id), true).await?;
    let current = match &lead {
        Some(l) => assignment(c, l.id, false).await?,
        None => None,
    };
    let outcome = run(c, assignments::queued(lead, current, trigger, source, rules, now)).await?;
    Ok(Claim::Done(finish(c, outcome).await?.1))
}

/// Decides a step, loading the routing state first if it needs it.
async fn run(c: &impl GenericClient, step: Step<'_>) -> Result<Outcome, Fail> {
    match step {
        Step::Done(outcome) => Ok(outcome),
        Step::Route(route) => {
            let state = state(c, &route).await?;
            Ok(route.decide(state))
        }
    }
}

/// What routing reads, locked in one order everywhere (after the lead's row): the
/// queue's position row, then the reps' daily rows sorted by rep.
async fn state(c: &impl GenericClient, route: &Route<'_>) -> Result<State, Fail> {
    let queue = route.queue();
    exec(c, "INSERT INTO routing_positions (queue, position) VALUES ($1, 0) ON CONFLICT DO NOTHING", &[&queue]).await?;
    let position: i64 = opt(c, "SELECT position FROM routing_positions WHERE queue = $1 FOR UPDATE", &[&queue])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    let mut account = AccountOwners::default();
    if let Some(id) = route.account() {
        account.owner = opt(c, "SELECT owner FROM accounts WHERE id = $1", &[id.as_uuid()])
            .await?
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten();
        account.related = rows(
            c,
            "SELECT a.owner FROM leads l JOIN assignments a ON a.lead_id = l.id
             WHERE l.account_id = $1 AND l.merged_into IS NULL AND l.id <> $2
             ORDER BY a.assigned_at DESC LIMIT $3",
            &[id.as_uuid(), route.lead().id.as_uuid(), &limit(assignments::RELATED_OWNERS)],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    }
    let (day, people) = (route.day().to_string(), route.reps(&account));
    for rep in &people {
        exec(
            c,
            "INSERT INTO routing_daily (rep, day, assigned) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING",
            &[rep, &day],
        )
        .await?;
    }
    let mut assigned_today = HashMap::new();
    for row in rows(
        c,
        "SELECT rep, assigned FROM routing_daily WHERE day = $1 AND rep = ANY($2) ORDER BY rep FOR UPDATE",
        &[&day, &people],
    )
    .await?
    {
        let n: i32 = row.try_get(1)?;
        assigned_today.insert(row.try_get::<_, String>(0)?, u32::try_from(n).unwrap_or(0));
    }
    Ok(State { position: u64::try_from(position).unwrap_or(0), account, assigned_today })
}

/// Applies an outcome; the lead as it now stands, and whom it went to.
async fn finish(c: &impl GenericClient, outcome: Outcome) -> Result<(Option<Lead>, Option<RoutedLead>), Fail> {
    let (changes, lead, routed) = RoutedLead::from_outcome(outcome);
    super::apply::apply(c, &changes).await?;
    Ok((lead, routed))
}

/// Gives a lead to `owner` (a person's choice), or with `None` routes it again. `None`
/// when there is no such lead; the flag says whether it was assigned.
pub(super) async fn assign(
    c: &impl GenericClient,
    lead_id: LeadId,
    owner: Option<&str>,
    actor: &str,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<(Lead, bool)>, Fail> {
    let Some(lead) = lead_following_merges(c, lead_id, true).await? else { return Ok(None) };
    let current = assignment(c, lead.id, false).await?;
    let step = assignments::manual(lead, current, owner, actor, rules, now).map_err(|e| StoreError::Erased(e.0))?;
    let (lead, routed) = finish(c, run(c, step).await?).await?;
    let lead = lead.ok_or_else(|| StoreError::Internal(format!("assigning lead {lead_id} lost it")))?;
    Ok(Some((lead, routed.is_some())))
}

/// Leads whose SLA ran out by `now`, oldest first; each is then acted on in its own
/// transaction by [`run_sla_for`], which checks again under the lead's lock.
pub(super) async fn sla_due(c: &impl GenericClient, max: usize, now: OffsetDateTime) -> Result<Vec<LeadId>, Fail> {
    rows(
        c,
        "SELECT lead_id FROM assignments WHERE sla_due_at IS NOT NULL AND sla_due_at <= $1 ORDER BY sla_due_at LIMIT $2",
        &[&now, &limit(max)],
    )
    .await?
    .iter()
    .map(|r| Ok(LeadId::from(r.try_get::<_, Uuid>(0)?)))
    .collect()
}

/// Runs the SLA action for one lead whose timer ran out, unless another instance did
/// meanwhile or the owner took the lead up (the core checks the timer it reads here,
/// under the lead's and the assignment's locks).
pub(super) async fn run_sla_for(
    c: &impl GenericClient,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<RoutedLead>, Fail> {
    let lead = lead_following_merges(c, lead_id, true).await?;
    let current = assignment(c, lead_id, true).await?;
    let outcome = run(c, assignments::sla(lead_id, lead, current, rules, now)).await?;
    Ok(finish(c, outcome).await?.1)
}

pub(super) async fn next_sla_due(c: &impl GenericClient) -> Result<Option<OffsetDateTime>, Fail> {
    Ok(opt(c, "SELECT min(sla_due_at) FROM assignments", &[]).await?.map(|r| r.try_get(0)).transpose()?.flatten())
}
