//! `leadflow rescore`: recomputes every lead's score and automatic stage under the rules
//! now configured, after a change to them. `--dry-run` counts what would change.

use crate::{DataArgs, Failure};
use leadflow_core::engagement::{self, Event};
use std::collections::BTreeMap;

const PAGE: usize = 1000;
/// As many events as the store scores a lead by.
const EVENTS: usize = 2_000;

pub async fn run(data: &DataArgs, dry_run: bool) -> Result<(), Failure> {
    let (store, config) = crate::open(data).await?;
    let result = rescore_all(&store, &config, dry_run).await;
    store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    result
}

async fn rescore_all(
    store: &leadflow_store::DynStore,
    config: &leadflow_core::config::Config,
    dry_run: bool,
) -> Result<(), Failure> {
    let failed = |e: leadflow_store::StoreError| Failure::Store(e.to_string());
    let rules = config.rules();
    let now = time::OffsetDateTime::now_utc();
    let (mut leads, mut scores_changed) = (0u64, 0u64);
    let mut stages: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = store.list_leads(after, PAGE).await.map_err(failed)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for lead in page {
            leads += 1;
            let before = (lead.score, lead.lifecycle_stage.clone());
            let now_lead = if dry_run {
                let events: Vec<_> =
                    store.lead_events(lead.id, EVENTS).await.map_err(failed)?.iter().map(Event::view).collect();
                let mut copy = lead;
                engagement::rescore(&mut copy, &events, &rules.engagement, now);
                copy
            } else {
                match store.rescore_lead(lead.id, &rules).await.map_err(failed)? {
                    Some(l) => l,
                    None => continue,
                }
            };
            if now_lead.score != before.0 {
                scores_changed += 1;
            }
            if now_lead.lifecycle_stage != before.1 {
                *stages.entry((before.1, now_lead.lifecycle_stage)).or_default() += 1;
            }
        }
    }
    let verb = if dry_run { "would change" } else { "changed" };
    println!("{leads} leads; {scores_changed} scores {verb}");
    for ((from, to), n) in &stages {
        println!("{n} {verb} stage: {from} → {to}");
    }
    if stages.is_empty() {
        println!("no lead {verb} stage");
    }
    Ok(())
}
