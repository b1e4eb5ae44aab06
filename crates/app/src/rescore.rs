//! Rescoring every lead under the rules now configured, after a change to them
//! (`leadflow rescore`): each lead's score and automatic stage are recomputed from its
//! fields and events (`leadflow_core::engagement` decides); a dry run computes the same
//! without writing.

use crate::App;
use leadflow_core::engagement::{self, Event};
use leadflow_core::settle::MAX_SCORED_EVENTS;
use leadflow_store::StoreError;
use std::collections::BTreeMap;
use time::OffsetDateTime;

const PAGE: usize = 1000;

/// What a rescore changed (or, in a dry run, would change).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rescored {
    pub leads: u64,
    pub scores_changed: u64,
    /// How many leads moved from one stage (the first) to another.
    pub stages_changed: BTreeMap<(String, String), u64>,
}

pub async fn rescore_all(app: &App, dry_run: bool) -> Result<Rescored, StoreError> {
    let now = OffsetDateTime::now_utc();
    let mut out = Rescored::default();
    let mut after = None;
    loop {
        let page = app.store.list_leads(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for lead in page {
            out.leads += 1;
            let before = (lead.score, lead.lifecycle_stage.clone());
            let now_lead = if dry_run {
                let events: Vec<_> =
                    app.store.lead_events(lead.id, MAX_SCORED_EVENTS).await?.iter().map(Event::view).collect();
                let mut copy = lead;
                engagement::rescore(&mut copy, &events, &app.config.engagement, now);
                copy
            } else {
                match app.store.rescore_lead(lead.id).await? {
                    Some(l) => l,
                    None => continue,
                }
            };
            if now_lead.score != before.0 {
                out.scores_changed += 1;
            }
            if now_lead.lifecycle_stage != before.1 {
                *out.stages_changed.entry((before.1, now_lead.lifecycle_stage)).or_default() += 1;
            }
        }
    }
    if !dry_run {
        app.wake.written();
    }
    Ok(out)
}
