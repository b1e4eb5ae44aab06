//! What a change of scoring rules would do before it is made: how many scores would
//! change and which stage changes the new rules would cause. Reads only; the caller
//! streams the leads in and applies nothing.

use crate::scoring::lifecycle::LifecycleContract;
use crate::scoring::rules::ScoringConfig;
use crate::scoring::score::score;
use crate::scoring::view::{EventView, LeadView};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRunSummary {
    pub leads: u64,
    /// Leads whose total differs between the old and the new rules.
    pub changed_score: u64,
    /// Leads the new rules flag: at the threshold but failing the gate.
    pub flagged: u64,
    /// Leads whose stage the new rules would change by automatic transitions, by the
    /// stage they are in and the stage they would end in; sorted.
    pub would_change_stage: Vec<StageChange>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageChange {
    pub from: String,
    pub to: String,
    pub count: u64,
}

impl DryRunSummary {
    /// All leads that would change stage.
    pub fn stage_changes(&self) -> u64 {
        self.would_change_stage.iter().map(|c| c.count).sum()
    }
}

/// Scores every lead under `old` and `new` as of `now`, and runs the contract's
/// automatic transitions under `new` from each lead's current stage.
pub fn rescore_dry_run<I, S, L, E>(
    leads: I,
    old: &ScoringConfig,
    new: &ScoringConfig,
    contract: &LifecycleContract,
    now: OffsetDateTime,
) -> DryRunSummary
where
    I: IntoIterator<Item = (S, L, E)>,
    S: AsRef<str>,
    L: LeadView,
    E: AsRef<[EventView]>,
{
    let mut summary = DryRunSummary::default();
    let mut changes: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (stage, lead, events) in leads {
        let (stage, events) = (stage.as_ref(), events.as_ref());
        let before = score(old, &lead, events, now);
        let after = score(new, &lead, events, now);
        summary.leads += 1;
        summary.changed_score += u64::from(before.total != after.total);
        summary.flagged += u64::from(after.flagged);
        if let Some(last) = contract.advance(stage, &after, new, now).last() {
            *changes.entry((stage.to_owned(), last.to.clone())).or_default() += 1;
        }
    }
    summary.would_change_stage =
        changes.into_iter().map(|((from, to), count)| StageChange { from, to, count }).collect();
    summary
}
