//! The lifecycle contract: which stages exist, which moves between them are allowed,
//! which need a reason and which the system makes by itself. A strict state machine:
//! a move that is not declared is refused, with the moves that are allowed listed.
//!
//! The contract is read from `[lifecycle]` and validated once at start (see
//! [`LifecycleContract::parse`]); after that, every check here is a lookup and cannot
//! fail for a reason other than the request itself.

mod history;
mod parse;

pub use history::{StageHistory, StageTime, StageVisit};

use crate::scoring::rules::ScoringConfig;
use crate::scoring::score::Score;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use time::OffsetDateTime;

/// What makes the system take a transition by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The score reached the MQL threshold and the data-quality gate passed.
    Score,
    /// The lead has a behavioural event (from the initial stage only).
    FirstEvent,
}

impl Trigger {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Score => "score",
            Self::FirstEvent => "first_event",
        }
    }
}

/// One `[[lifecycle.transitions]]` entry, with stage names resolved to indices.
#[derive(Clone, Debug, PartialEq, Eq)]
struct TransitionRule {
    from: Vec<usize>,
    to: usize,
    reason_required: bool,
    automatic: Option<Trigger>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleContract {
    stages: Vec<Arc<str>>,
    initial: usize,
    /// Entering this stage hands the lead off to routing.
    handoff: usize,
    /// Entering this stage needs a reason from `disqualify_reasons`.
    disqualified: Option<usize>,
    disqualify_reasons: Vec<String>,
    transitions: Vec<TransitionRule>,
}

/// Who made a transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    /// An automatic transition.
    System,
    /// A person or an API client, by id.
    User(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::System => f.write_str("system"),
            Self::User(id) => f.write_str(id),
        }
    }
}

/// A transition the contract allowed: the history row to store. `handoff` says the
/// lead reached the handoff stage and routing must be told (the outbox event).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub from: String,
    pub to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: Actor,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub automatic: bool,
    pub handoff: bool,
}

/// A refused transition, with the stages a person may move the lead to instead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("cannot move a lead from `{from}` to `{to}`: {refusal}; allowed from `{from}`: {}", list(.allowed))]
pub struct TransitionError {
    pub from: String,
    pub to: String,
    pub refusal: Refusal,
    /// The stages a manual transition from `from` may go to, in stage order.
    pub allowed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    #[error("`{stage}` is not a stage of the contract")]
    UnknownStage { stage: String },
    #[error("the contract has no such transition")]
    NotAllowed,
    #[error("this transition is made by the system only (trigger: {})", .trigger.as_str())]
    AutomaticOnly { trigger: Trigger },
    #[error("a reason is required{}", picklist(.reasons))]
    ReasonRequired { reasons: Vec<String> },
    #[error("the reason must be one of {}", list(.reasons))]
    ReasonNotInPicklist { reasons: Vec<String> },
}

impl Refusal {
    /// A stable code for API error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownStage { .. } => "unknown_stage",
            Self::NotAllowed => "transition_not_allowed",
            Self::AutomaticOnly { .. } => "transition_automatic_only",
            Self::ReasonRequired { .. } => "reason_required",
            Self::ReasonNotInPicklist { .. } => "reason_not_in_picklist",
        }
    }
}

fn list(items: &[String]) -> String {
    if items.is_empty() { "none".to_owned() } else { items.join(", ") }
}

fn picklist(reasons: &[String]) -> String {
    if reasons.is_empty() { String::new() } else { format!(", one of {}", reasons.join(", ")) }
}

impl LifecycleContract {
    pub fn stages(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|s| &**s)
    }

    pub fn initial(&self) -> &str {
        &self.stages[self.initial]
    }

    pub fn handoff_stage(&self) -> &str {
        &self.stages[self.handoff]
    }

    /// The stage whose entry needs a reason from [`Self::disqualify_reasons`], if any.
    pub fn disqualified_stage(&self) -> Option<&str> {
        self.disqualified.map(|i| &*self.stages[i])
    }

    pub fn disqualify_reasons(&self) -> &[String] {
        &self.disqualify_reasons
    }

    pub fn has_stage(&self, stage: &str) -> bool {
        self.index(stage).is_some()
    }

    fn index(&self, stage: &str) -> Option<usize> {
        self.stages.iter().position(|s| **s == *stage)
    }

    fn rule(&self, from: usize, to: usize) -> Option<&TransitionRule> {
        self.transitions.iter().find(|t| t.to == to && t.from.contains(&from))
    }

    /// The stages a person may move a lead in `current` to, in stage order.
    pub fn allowed_from(&self, current: &str) -> Vec<String> {
        let Some(from) = self.index(current) else { return Vec::new() };
        (0..self.stages.len())
            .filter(|&to| self.rule(from, to).is_some_and(|t| t.automatic.is_none()))
            .map(|to| self.stages[to].to_string())
            .collect()
    }

    /// A manual transition, checked against the contract. A blank reason counts as none.
    pub fn transition(
        &self,
        current: &str,
        to: &str,
        actor: Actor,
        reason: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<Transition, TransitionError> {
        let refuse = |refusal| TransitionError {
            from: current.to_owned(),
            to: to.to_owned(),
            refusal,
            allowed: self.allowed_from(current),
        };
        let from_i = self.index(current).ok_or_else(|| refuse(Refusal::UnknownStage { stage: current.to_owned() }))?;
        let to_i = self.index(to).ok_or_else(|| refuse(Refusal::UnknownStage { stage: to.to_owned() }))?;
        let rule = self.rule(from_i, to_i).ok_or_else(|| refuse(Refusal::NotAllowed))?;
        if let Some(trigger) = rule.automatic {
            return Err(refuse(Refusal::AutomaticOnly { trigger }));
        }
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let picklist = if Some(to_i) == self.disqualified { &self.disqualify_reasons[..] } else { &[] };
        match reason {
            None if rule.reason_required => {
                return Err(refuse(Refusal::ReasonRequired { reasons: picklist.to_vec() }));
            }
            Some(r) if !picklist.is_empty() && !picklist.iter().any(|p| p == r) => {
                return Err(refuse(Refusal::ReasonNotInPicklist { reasons: picklist.to_vec() }));
            }
            _ => {}
        }
        Ok(Transition {
            from: current.to_owned(),
            to: to.to_owned(),
            at,
            actor,
            reason: reason.map(str::to_owned),
            automatic: false,
            handoff: to_i == self.handoff,
        })
    }

    /// The transition the system makes by itself for a lead in `current` with `score`,
    /// if any. Reaching the threshold with the gate passed wins over a first event, so
    /// a lead that qualifies at once goes straight to the handoff stage where allowed.
    pub fn automatic(
        &self,
        current: &str,
        score: &Score,
        config: &ScoringConfig,
        at: OffsetDateTime,
    ) -> Option<Transition> {
        let from = self.index(current)?;
        let qualifies = score.total >= config.mql_threshold && score.gate.passed;
        let candidates = [(Trigger::Score, qualifies), (Trigger::FirstEvent, score.events_seen > 0)];
        let (trigger, rule) = candidates.into_iter().filter(|(_, fired)| *fired).find_map(|(trigger, _)| {
            self.transitions
                .iter()
                .find(|t| t.automatic == Some(trigger) && t.from.contains(&from))
                .map(|t| (trigger, t))
        })?;
        let reason = match trigger {
            Trigger::Score => format!("score {} reached the threshold {}", score.total, config.mql_threshold),
            Trigger::FirstEvent => "first behavioural event".to_owned(),
        };
        Some(Transition {
            from: current.to_owned(),
            to: self.stages[rule.to].to_string(),
            at,
            actor: Actor::System,
            reason: Some(reason),
            automatic: true,
            handoff: rule.to == self.handoff,
        })
    }

    /// Every automatic transition in a row (`new → engaged → mql` on one event), at
    /// most one per stage, so a contract can never loop.
    pub fn advance(&self, current: &str, score: &Score, config: &ScoringConfig, at: OffsetDateTime) -> Vec<Transition> {
        let mut moves: Vec<Transition> = Vec::new();
        for _ in 0..self.stages.len() {
            let stage = moves.last().map_or(current, |t| t.to.as_str());
            match self.automatic(stage, score, config, at) {
                Some(t) if !moves.iter().any(|m| m.to == t.to) => moves.push(t),
                _ => break,
            }
        }
        moves
    }
}
