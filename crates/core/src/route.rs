//! route: when a lead is routed, what routing reads of it, and how an assignment
//! changes it. The choice itself is `crate::scoring::routing`; [`crate::assignments`]
//! walks these rules over the state the store loads (positions, today's counts, the
//! account's owner) and returns the changes the store keeps.

use crate::engagement;
use crate::ids::LeadId;
use crate::lead::Lead;
use crate::pipeline::LeadEvent;
use crate::scoring::routing::{Decision, RoutingConfig, SlaAction, Via};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// What set routing off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// The lead reached the handoff stage.
    Handoff,
    /// A touch from a priority source: routed at once, before the handoff.
    PrioritySource,
    /// A routed lead came back through a priority source: re-routed if that source
    /// outranks the one that routed it.
    RenewedTouch,
    /// The owner did not accept in time.
    Sla,
    /// A person asked.
    Manual,
}

impl Trigger {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Handoff => "handoff",
            Self::PrioritySource => "priority_source",
            Self::RenewedTouch => "renewed_touch",
            Self::Sla => "sla",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Handoff, Self::PrioritySource, Self::RenewedTouch, Self::Sla, Self::Manual]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// Whether a lead change queues the lead for routing, and with which source. Called in
/// the transaction that writes the change, so the queue row commits with it.
pub fn queued_by(lead: &Lead, event: &LeadEvent, routing: &RoutingConfig) -> Option<(Trigger, Option<String>)> {
    if !routing.is_enabled() {
        return None;
    }
    match event {
        LeadEvent::StageChanged { handoff: true, .. } => {
            Some((Trigger::Handoff, Some(lead.attribution.latest.source.as_str().to_owned())))
        }
        LeadEvent::Created { source, .. } if routing.source_rank(source.as_str()).is_some() => {
            Some((Trigger::PrioritySource, Some(source.as_str().to_owned())))
        }
        LeadEvent::Merged { source, .. } if routing.source_rank(source.as_str()).is_some() => {
            let trigger = if lead.owner.is_some() { Trigger::RenewedTouch } else { Trigger::PrioritySource };
            Some((trigger, Some(source.as_str().to_owned())))
        }
        _ => None,
    }
}

/// Whether a queued lead is routed now. `routed_by` is the source whose touch routed
/// it last time, if it has an owner.
pub fn should_route(
    lead: &Lead,
    trigger: Trigger,
    source: Option<&str>,
    routed_by: Option<&str>,
    routing: &RoutingConfig,
) -> bool {
    match trigger {
        // Routed once already (a priority source before the handoff, or the CRM).
        Trigger::Handoff | Trigger::PrioritySource => lead.owner.is_none(),
        Trigger::RenewedTouch => lead.owner.is_none() || source.is_some_and(|s| routing.outranks(s, routed_by)),
        Trigger::Sla | Trigger::Manual => true,
    }
}

/// What routing conditions read: the attributes scoring reads, plus the score and stage.
pub fn view(lead: &Lead) -> Map<String, Value> {
    let mut view = engagement::view(lead);
    if let Some(score) = lead.score {
        view.insert("score".into(), Value::from(score));
    }
    view.insert("lifecycle_stage".into(), Value::String(lead.lifecycle_stage.clone()));
    view
}

/// Gives the lead to the decision's owner; the history entry to write.
pub fn assign(
    lead: &mut Lead,
    decision: Decision,
    trigger: Trigger,
    sla_due_at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> LeadEvent {
    let previous = lead.owner.replace(decision.owner.to_string());
    lead.updated_at = now;
    LeadEvent::Assigned {
        owner: decision.owner.to_string(),
        previous,
        trigger: trigger.as_str().to_owned(),
        rule: decision.rule.map(|r| r.to_string()),
        via: decision.via.as_str().to_owned(),
        steps: decision.steps,
        sla_due_at,
    }
}

/// A person's choice of owner, as a routing decision.
pub fn manual(owner: &str, actor: &str) -> Decision {
    Decision {
        owner: owner.into(),
        rule: None,
        via: crate::scoring::routing::Via::Manual,
        steps: vec![format!("assigned to {owner} by {actor}")],
        next_position: None,
    }
}

/// When the SLA of a fresh decision runs out. Timers run for a team's reps only: a
/// fallback queue or an escalation has none.
pub fn sla_due(routing: &RoutingConfig, decision: &Decision, now: OffsetDateTime) -> Option<OffsetDateTime> {
    if matches!(decision.via, Via::Fallback | Via::Escalation | Via::Manual) {
        return None;
    }
    let sla = routing.rule(decision.rule.as_deref()?)?.sla.as_ref()?;
    now.checked_add(time::Duration::try_from(sla.after).ok()?)
}

/// A lead's current assignment, as the store keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub owner: String,
    pub rule: Option<String>,
    /// The source whose touch routed the lead.
    pub source: Option<String>,
    /// The stage the lead was in when assigned.
    pub stage: String,
    /// Owners an SLA took the lead from.
    pub tried: Vec<String>,
    /// When the owner's time to accept runs out; `None` once the timer stopped.
    pub sla_due_at: Option<OffsetDateTime>,
}

/// What an SLA that ran out does.
#[derive(Clone, Debug, PartialEq)]
pub enum SlaStep {
    /// The owner took the lead up, or lost it meanwhile, or the rule has no SLA now.
    Stop,
    /// Hand it to this person; the timer ends.
    Escalate(Decision),
    /// Route it again, leaving out everyone who had it; `note` opens the explanation.
    Reassign { exclude: Vec<String>, note: String },
}

/// The SLA step for `lead` (read after following merges from `assigned`, the id the
/// assignment is kept under).
pub fn sla_step(lead: &Lead, assigned: LeadId, current: &Assignment, routing: &RoutingConfig) -> SlaStep {
    let taken_up = lead.id != assigned
        || lead.owner.as_deref() != Some(current.owner.as_str())
        || lead.lifecycle_stage != current.stage;
    let sla = current.rule.as_deref().and_then(|r| routing.rule(r)).and_then(|r| r.sla.as_ref());
    let Some(sla) = sla.filter(|_| !taken_up) else { return SlaStep::Stop };
    let late = format!("{} did not accept within {} minutes", current.owner, sla.after.as_secs_f64() / 60.0);
    match &sla.action {
        SlaAction::Escalate(to) => SlaStep::Escalate(Decision {
            owner: to.clone(),
            rule: current.rule.as_deref().map(Into::into),
            via: Via::Escalation,
            steps: vec![format!("{late}: escalated to {to}")],
            next_position: None,
        }),
        SlaAction::Reassign => {
            let mut exclude = current.tried.clone();
            exclude.push(current.owner.clone());
            SlaStep::Reassign { exclude, note: format!("{late}: reassigned") }
        }
    }
}
