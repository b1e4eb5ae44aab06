//! `leadflow dedupe`: a batch search for duplicates among stored leads, for data that came
//! in before the rules (or while fuzzy matching was off at capture), or after a rule change.

use crate::{DataArgs, Failure};
use leadflow_core::resolve::{self, FoundPair, Verdict};
use leadflow_core::{LeadId, resolve::Record};

const PAGE: usize = 1000;

fn explain(p: &FoundPair) -> String {
    let score = p.explanation.score.map(|s| format!(", score {s:.1}")).unwrap_or_default();
    let rule =
        serde_json::to_value(p.explanation.rule).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    format!("{} ~ {} ({rule}{score})", p.newer, p.older)
}

pub async fn run(data: &DataArgs, dry_run: bool) -> Result<(), Failure> {
    let (store, config) = crate::open(data).await?;
    let result = search_and_apply(&store, &config, dry_run).await;
    store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    result
}

async fn search_and_apply(
    store: &leadflow_store::DynStore,
    config: &leadflow_core::config::Config,
    dry_run: bool,
) -> Result<(), Failure> {
    let failed = |e: leadflow_store::StoreError| Failure::Store(e.to_string());
    let mut leads: Vec<(LeadId, Record)> = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_leads(after, PAGE).await.map_err(failed)?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        leads.extend(page.iter().map(|l| (l.id, resolve::match_record(&l.fields, &l.derived))));
    }
    let pairs = resolve::find_duplicates(&leads, &config.matching);
    let rules = config.rules();
    let (mut merged, mut queued) = (0usize, 0usize);
    for pair in &pairs {
        let verb = match (pair.verdict, dry_run) {
            (Verdict::Merge, true) => "would merge",
            (Verdict::Merge, false) => {
                if !store.merge_leads(pair.older, pair.newer, pair.explanation.clone(), &rules).await.map_err(failed)? {
                    continue;
                }
                "merged"
            }
            (_, true) => "would queue for review",
            (_, false) => {
                let (score, evidence) = (pair.explanation.score.unwrap_or_default(), pair.explanation.evidence.clone());
                if !store.add_review(pair.newer, pair.older, score, evidence).await.map_err(failed)? {
                    continue;
                }
                "queued for review"
            }
        };
        if pair.verdict == Verdict::Merge {
            merged += 1;
        } else {
            queued += 1;
        }
        println!("{verb}: {}", explain(pair));
    }
    let tense = if dry_run { "would be" } else { "were" };
    println!(
        "{} leads searched: {merged} duplicates {tense} merged, {queued} possible duplicates {tense} queued for review",
        leads.len()
    );
    Ok(())
}
