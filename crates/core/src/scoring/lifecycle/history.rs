//! Where a lead has been: its visits to each stage, rebuilt from its stored
//! transitions, and the time it spent in each stage.

use super::Transition;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// One stay in a stage; `left` is `None` for the stage the lead is in now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageVisit {
    pub stage: String,
    #[serde(with = "time::serde::rfc3339")]
    pub entered: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub left: Option<OffsetDateTime>,
}

/// The time a lead spent in one stage, over all its visits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageTime {
    pub stage: String,
    pub seconds: i64,
    pub visits: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageHistory {
    visits: Vec<StageVisit>,
}

impl StageHistory {
    /// The lead was created in `initial` at `created_at`; `transitions` are its history
    /// rows, in any order (they are taken by time, ties in the order given).
    pub fn new(initial: &str, created_at: OffsetDateTime, transitions: &[Transition]) -> Self {
        let mut ordered: Vec<&Transition> = transitions.iter().collect();
        ordered.sort_by_key(|t| t.at);
        let mut visits = vec![StageVisit { stage: initial.to_owned(), entered: created_at, left: None }];
        for t in ordered {
            if let Some(last) = visits.last_mut() {
                last.left = Some(t.at);
            }
            visits.push(StageVisit { stage: t.to.clone(), entered: t.at, left: None });
        }
        Self { visits }
    }

    pub fn visits(&self) -> &[StageVisit] {
        &self.visits
    }

    /// The stage the lead is in now.
    pub fn current(&self) -> &str {
        self.visits.last().map_or("", |v| v.stage.as_str())
    }

    /// Time spent in `stage` up to `now`, over all visits.
    pub fn time_in(&self, stage: &str, now: OffsetDateTime) -> Duration {
        self.visits.iter().filter(|v| v.stage == stage).map(|v| stay(v, now)).sum()
    }

    /// Time spent per stage up to `now`, in the order the stages were first entered.
    pub fn time_in_stages(&self, now: OffsetDateTime) -> Vec<StageTime> {
        let mut out: Vec<StageTime> = Vec::new();
        for v in &self.visits {
            let seconds = stay(v, now).whole_seconds();
            match out.iter_mut().find(|t| t.stage == v.stage) {
                Some(t) => {
                    t.seconds += seconds;
                    t.visits += 1;
                }
                None => out.push(StageTime { stage: v.stage.clone(), seconds, visits: 1 }),
            }
        }
        out
    }
}

/// A visit's length; never negative, whatever the clocks said.
fn stay(v: &StageVisit, now: OffsetDateTime) -> Duration {
    (v.left.unwrap_or(now) - v.entered).max(Duration::ZERO)
}
