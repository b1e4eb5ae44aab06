//! People's moves on a lead: giving it to an owner by hand, routing it again, and moving
//! it along the lifecycle; and the stage history read back as time spent in each stage.
//! The routing worker ([`crate::workers`]) does the automatic part: queued leads and SLA
//! timers. `leadflow_core::assignments` and the lifecycle contract decide; the store
//! applies, with the history entries and the deliveries subscribed to `assigned` and
//! stage changes.

use crate::App;
use leadflow_core::lifecycle;
use leadflow_core::pipeline::{HistoryEntry, LeadEvent};
use leadflow_core::scoring::{LifecycleContract, TransitionError};
use leadflow_core::{Lead, LeadId};
use leadflow_store::StoreError;
use time::OffsetDateTime;

/// What a person asks of a lead's assignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assign {
    /// Give it to this owner (no SLA timer: a person chose).
    To(String),
    /// Run routing for it again.
    Route,
}

/// Assigns the lead as asked. `None` when there is no such lead; the flag says whether it
/// was assigned (routing may find nobody to give it to).
pub async fn assign(app: &App, lead: LeadId, how: Assign, actor: String) -> Result<Option<(Lead, bool)>, StoreError> {
    let owner = match how {
        Assign::To(owner) => Some(owner),
        Assign::Route => None,
    };
    let assigned = app.store.assign_lead(lead, owner, actor).await?;
    if assigned.as_ref().is_some_and(|(_, assigned)| *assigned) {
        app.wake.written();
    }
    Ok(assigned)
}

/// A person's move of the lead to the stage `to`. `None` when there is no such lead; the
/// inner error when the contract refuses the move (with the moves it allows).
pub async fn transition(
    app: &App,
    lead: LeadId,
    to: String,
    actor: String,
    reason: Option<String>,
) -> Result<Option<Result<Lead, TransitionError>>, StoreError> {
    let moved = app.store.transition_lead(lead, to, actor, reason).await?;
    if matches!(moved, Some(Ok(_))) {
        app.wake.written();
    }
    Ok(moved)
}

/// A lead's stage changes, and the time it spent in each stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Stages {
    /// Every stage change, oldest first.
    pub changes: Vec<HistoryEntry>,
    pub time_in: Vec<StageTime>,
    /// Where a person may move the lead from its stage now.
    pub allowed: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageTime {
    pub stage: String,
    /// Over all visits, up to `now` for the current one.
    pub seconds: i64,
    pub visits: u32,
}

/// The lead's stages from its history: each stage change, and per stage the time spent
/// and the visits, from the lead's creation in the initial stage up to `now`.
pub fn stages(lead: &Lead, history: Vec<HistoryEntry>, contract: &LifecycleContract, now: OffsetDateTime) -> Stages {
    let changes: Vec<HistoryEntry> =
        history.into_iter().filter(|h| matches!(h.event, LeadEvent::StageChanged { .. })).collect();
    let mut time_in: Vec<StageTime> = Vec::new();
    let mut add = |stage: &str, seconds: i64| match time_in.iter_mut().find(|s| s.stage == stage) {
        Some(s) => {
            s.seconds += seconds;
            s.visits += 1;
        }
        None => time_in.push(StageTime { stage: stage.to_owned(), seconds, visits: 1 }),
    };
    let (mut stage, mut since) = (lifecycle::INITIAL.to_owned(), lead.created_at);
    for change in &changes {
        if let LeadEvent::StageChanged { from, to, .. } = &change.event {
            add(from, (change.at - since).whole_seconds().max(0));
            stage.clone_from(to);
            since = change.at;
        }
    }
    add(&stage, (now - since).whole_seconds().max(0));
    Stages { changes, time_in, allowed: contract.allowed_from(&lead.lifecycle_stage) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use leadflow_core::config::SourceConfig;
    use leadflow_core::pipeline::{self, SubmissionMeta};
    use leadflow_core::{SourceName, SubmissionId};
    use time::macros::datetime;

    fn lead(created_at: OffsetDateTime) -> Lead {
        let payload = serde_json::json!({"email": "ada@example.com"});
        let candidate =
            pipeline::prepare(payload.as_object().unwrap(), &SourceConfig::api(), &Default::default()).unwrap();
        let meta = SubmissionMeta { id: SubmissionId::new(), source: SourceName::api(), received_at: created_at };
        pipeline::resolve_and_settle(candidate, &meta, vec![], &Default::default(), created_at).lead
    }

    fn moved(lead: &Lead, from: &str, to: &str, at: OffsetDateTime) -> HistoryEntry {
        let event = LeadEvent::StageChanged {
            from: from.into(),
            to: to.into(),
            actor: None,
            reason: None,
            automatic: true,
            handoff: false,
        };
        HistoryEntry { lead_id: lead.id, at, event }
    }

    #[test]
    fn time_in_each_stage_adds_up_every_visit_and_runs_to_now_in_the_current_one() {
        let t0 = datetime!(2026-03-01 12:00 UTC);
        let mut lead = lead(t0);
        lead.lifecycle_stage = "new".into();
        let history = vec![
            moved(&lead, "new", "engaged", t0 + time::Duration::seconds(10)),
            moved(&lead, "engaged", "new", t0 + time::Duration::seconds(30)),
        ];
        let now = t0 + time::Duration::seconds(35);
        let stages = stages(&lead, history, &LifecycleContract::default(), now);
        assert_eq!(stages.changes.len(), 2);
        let new = stages.time_in.iter().find(|s| s.stage == "new").unwrap();
        assert_eq!((new.seconds, new.visits), (15, 2), "10 s before the move, 5 s since the way back");
        let engaged = stages.time_in.iter().find(|s| s.stage == "engaged").unwrap();
        assert_eq!((engaged.seconds, engaged.visits), (20, 1));
        assert_eq!(stages.allowed, LifecycleContract::default().allowed_from("new"));
    }
}
