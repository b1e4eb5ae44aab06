//! Routing in PostgreSQL: the same steps as the SQLite store, made safe for several
//! instances. A queued lead is claimed with `FOR UPDATE SKIP LOCKED` and routed in a
//! transaction of its own, with locks taken in one order everywhere: the lead's row,
//! the queue's position row, then the reps' daily rows sorted by rep. Two instances
//! therefore never hand out the same turn or count past a cap; a deadlock with a
//! capture (which locks the lead, then queues it) is detected and the transaction
//! runs again.

use super::Fail;
use super::sql::{exec, lead_following_merges, limit, opt, rows};
use crate::{RoutedLead, StoreError};
use deadpool_postgres::GenericClient;
use leadflow_domain::changes;
use leadflow_domain::pipeline::Rules;
use leadflow_domain::route::{self, Assignment, Change, SlaStep, Trigger};
use leadflow_domain::{Lead, LeadId};
use leadflow_scoring::routing::{Context, Decision};
use std::collections::HashMap;
use time::OffsetDateTime;
use tokio_postgres::types::Json;
use uuid::Uuid;

/// The lead's assignment, and when its SLA runs out.
async fn assignment(
    c: &impl GenericClient,
    lead: LeadId,
    lock: bool,
) -> Result<Option<(Assignment, Option<OffsetDateTime>)>, Fail> {
    let sql = if lock {
        "SELECT owner, rule, source, stage, tried, sla_due_at FROM assignments WHERE lead_id = $1 FOR UPDATE"
    } else {
        "SELECT owner, rule, source, stage, tried, sla_due_at FROM assignments WHERE lead_id = $1"
    };
    let Some(row) = opt(c, sql, &[lead.as_uuid()]).await? else { return Ok(None) };
    let assignment = Assignment {
        owner: row.try_get(0)?,
        rule: row.try_get(1)?,
        source: row.try_get(2)?,
        stage: row.try_get(3)?,
        tried: row.try_get::<_, Json<Vec<String>>>(4)?.0,
    };
    Ok(Some((assignment, row.try_get(5)?)))
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
    // An erased lead is routed to nobody.
    let Some(mut lead) = lead_following_merges(c, LeadId::from(id), true).await?.filter(|l| l.erased_at.is_none())
    else {
        return Ok(Claim::Done(None));
    };
    let current = assignment(c, lead.id, false).await?;
    let routed_by = current.as_ref().and_then(|(a, _)| a.source.as_deref());
    if !route::should_route(&lead, trigger, source.as_deref(), routed_by, &rules.routing) {
        return Ok(Claim::Done(None));
    }
    let how = How { trigger, source, exclude: Vec::new(), note: None };
    Ok(Claim::Done(route_lead(c, &mut lead, how, rules, now).await?))
}

struct How {
    trigger: Trigger,
    source: Option<String>,
    exclude: Vec<String>,
    note: Option<String>,
}

async fn route_lead(
    c: &impl GenericClient,
    lead: &mut Lead,
    how: How,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<RoutedLead>, Fail> {
    let routing = &rules.routing;
    let view = route::view(lead);
    let plan = routing.plan(&view);
    let day = now.date().to_string();
    exec(c, "INSERT INTO routing_positions (queue, position) VALUES ($1, 0) ON CONFLICT DO NOTHING", &[&plan.queue])
        .await?;
    let position: i64 = opt(c, "SELECT position FROM routing_positions WHERE queue = $1 FOR UPDATE", &[&plan.queue])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0);
    let (mut account_owner, mut related) = (None, Vec::new());
    if let (Some(rule), Some(account)) = (plan.rule, lead.account_id)
        && rule.account_based
    {
        let account = *account.as_uuid();
        account_owner = opt(c, "SELECT owner FROM accounts WHERE id = $1", &[&account])
            .await?
            .map(|r| r.try_get::<_, Option<String>>(0))
            .transpose()?
            .flatten();
        related = rows(
            c,
            "SELECT a.owner FROM leads l JOIN assignments a ON a.lead_id = l.id
             WHERE l.account_id = $1 AND l.merged_into IS NULL AND l.id <> $2
             ORDER BY a.assigned_at DESC LIMIT 5",
            &[&account, lead.id.as_uuid()],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    }
    let mut people: Vec<String> = plan
        .offer
        .iter()
        .map(|r| r.id.to_string())
        .chain(account_owner.clone())
        .chain(related.iter().cloned())
        .collect();
    people.sort_unstable();
    people.dedup();
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
        stop_timer(c, lead.id).await?;
        return Ok(None);
    }
    if let Some(note) = how.note {
        decision.steps.insert(0, note);
    }
    if let Some(next) = decision.next_position {
        exec(
            c,
            "UPDATE routing_positions SET position = $2 WHERE queue = $1",
            &[&plan.queue, &i64::try_from(next).unwrap_or(0)],
        )
        .await?;
    }
    let sla_due_at = route::sla_due(routing, &decision, now);
    let mut tried = how.exclude;
    if how.trigger != Trigger::Sla {
        tried.clear();
    }
    let change = Change { trigger: how.trigger, source: how.source, tried, sla_due_at };
    commit_assignment(c, lead, decision, change, rules, now).await.map(Some)
}

async fn commit_assignment(
    c: &impl GenericClient,
    lead: &mut Lead,
    decision: Decision,
    change: Change,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<RoutedLead, Fail> {
    let owner = decision.owner.to_string();
    let rule = decision.rule.as_ref().map(|r| r.to_string());
    let via = decision.via;
    exec(
        c,
        "INSERT INTO routing_daily (rep, day, assigned) VALUES ($1, $2, 1)
         ON CONFLICT (rep, day) DO UPDATE SET assigned = routing_daily.assigned + 1",
        &[&owner, &now.date().to_string()],
    )
    .await?;
    if let Some(account) = lead.account_id {
        exec(
            c,
            "UPDATE accounts SET owner = $1, updated_at = $2 WHERE id = $3 AND owner IS NULL",
            &[&owner, &now, account.as_uuid()],
        )
        .await?;
    }
    exec(
        c,
        "INSERT INTO assignments (lead_id, owner, rule, source, stage, assigned_at, sla_due_at, tried)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (lead_id) DO UPDATE SET owner = excluded.owner, rule = excluded.rule,
             source = coalesce(excluded.source, assignments.source), stage = excluded.stage,
             assigned_at = excluded.assigned_at, sla_due_at = excluded.sla_due_at, tried = excluded.tried",
        &[
            lead.id.as_uuid(),
            &owner,
            &rule,
            &change.source,
            &lead.lifecycle_stage,
            &now,
            &change.sla_due_at,
            &Json(&change.tried),
        ],
    )
    .await?;
    let expected = lead.version;
    let event = route::assign(lead, decision, change.trigger, change.sla_due_at, now);
    lead.version += 1;
    super::apply::apply(c, &changes::updated(lead, expected, vec![event], rules, now)).await?;
    Ok(RoutedLead {
        lead_id: lead.id,
        owner,
        rule,
        via: via.as_str().to_owned(),
        trigger: change.trigger.as_str().to_owned(),
    })
}

/// The CRM reported on the lead: its owner has taken it up, so the SLA timer stops, and
/// the assignment follows an owner the CRM set.
pub(super) async fn taken_up(c: &impl GenericClient, lead: LeadId, owner: Option<&str>) -> Result<(), Fail> {
    exec(
        c,
        "UPDATE assignments SET sla_due_at = NULL, owner = coalesce($2, owner) WHERE lead_id = $1",
        &[lead.as_uuid(), &owner],
    )
    .await?;
    Ok(())
}

async fn stop_timer(c: &impl GenericClient, lead: LeadId) -> Result<(), Fail> {
    exec(c, "UPDATE assignments SET sla_due_at = NULL WHERE lead_id = $1", &[lead.as_uuid()]).await?;
    Ok(())
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
    let Some(mut lead) = lead_following_merges(c, lead_id, true).await? else { return Ok(None) };
    if lead.erased_at.is_some() {
        return Err(StoreError::Erased(lead.id).into());
    }
    let assigned = match owner {
        Some(owner) => {
            let change = Change { trigger: Trigger::Manual, source: None, tried: Vec::new(), sla_due_at: None };
            commit_assignment(c, &mut lead, route::manual(owner, actor), change, rules, now).await?;
            true
        }
        None => {
            let how = How { trigger: Trigger::Manual, source: None, exclude: Vec::new(), note: None };
            route_lead(c, &mut lead, how, rules, now).await?.is_some()
        }
    };
    Ok(Some((lead, assigned)))
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
/// meanwhile or the owner took the lead up.
pub(super) async fn run_sla_for(
    c: &impl GenericClient,
    lead_id: LeadId,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Option<RoutedLead>, Fail> {
    let lead = lead_following_merges(c, lead_id, true).await?.filter(|l| l.erased_at.is_none());
    let Some((current, due)) = assignment(c, lead_id, true).await? else { return Ok(None) };
    if due.is_none_or(|due| due > now) {
        return Ok(None);
    }
    let Some(mut lead) = lead else {
        stop_timer(c, lead_id).await?;
        return Ok(None);
    };
    let tried = current.tried.clone();
    let routed = match route::sla_step(&lead, lead_id, current, &rules.routing) {
        SlaStep::Stop => None,
        SlaStep::Escalate(decision) => {
            let change = Change { trigger: Trigger::Sla, source: None, tried, sla_due_at: None };
            Some(commit_assignment(c, &mut lead, decision, change, rules, now).await?)
        }
        SlaStep::Reassign { exclude, note } => {
            let how = How { trigger: Trigger::Sla, source: None, exclude, note: Some(note) };
            route_lead(c, &mut lead, how, rules, now).await?
        }
    };
    if routed.is_none() {
        stop_timer(c, lead_id).await?;
    }
    Ok(routed)
}

pub(super) async fn next_sla_due(c: &impl GenericClient) -> Result<Option<OffsetDateTime>, Fail> {
    Ok(opt(c, "SELECT min(sla_due_at) FROM assignments", &[]).await?.map(|r| r.try_get(0)).transpose()?.flatten())
}
