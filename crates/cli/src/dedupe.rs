//! `leadflow dedupe`: a batch search for duplicates among stored leads, for data that came
//! in before the rules (or while fuzzy matching was off at capture), or after a rule change.

use crate::{DataArgs, Failure};
use leadflow_app::merges;
use leadflow_core::resolve::{FoundPair, Verdict};

fn explain(p: &FoundPair) -> String {
    let score = p.explanation.score.map(|s| format!(", score {s:.1}")).unwrap_or_default();
    let rule =
        serde_json::to_value(p.explanation.rule).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    format!("{} ~ {} ({rule}{score})", p.newer, p.older)
}

pub async fn run(data: &DataArgs, dry_run: bool) -> Result<(), Failure> {
    let app = crate::open_app(data).await?;
    let (mut merged, mut queued) = (0usize, 0usize);
    let result = merges::dedupe(&app, dry_run, |pair| {
        let verb = match (pair.verdict, dry_run) {
            (Verdict::Merge, true) => "would merge",
            (Verdict::Merge, false) => "merged",
            (_, true) => "would queue for review",
            (_, false) => "queued for review",
        };
        if pair.verdict == Verdict::Merge {
            merged += 1;
        } else {
            queued += 1;
        }
        println!("{verb}: {}", explain(&pair));
    })
    .await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let searched = result.map_err(|e| Failure::Store(e.to_string()))?;
    let tense = if dry_run { "would be" } else { "were" };
    println!(
        "{searched} leads searched: {merged} duplicates {tense} merged, {queued} possible duplicates {tense} queued for review"
    );
    Ok(())
}
