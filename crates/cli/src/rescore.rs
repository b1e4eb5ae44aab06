//! `leadflow rescore`: recomputes every lead's score and automatic stage under the rules
//! now configured, after a change to them. `--dry-run` counts what would change.

use crate::{DataArgs, Failure};

pub async fn run(data: &DataArgs, dry_run: bool) -> Result<(), Failure> {
    let app = crate::open_app(data).await?;
    let result = leadflow_app::rescore::rescore_all(&app, dry_run).await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let rescored = result.map_err(|e| Failure::Store(e.to_string()))?;
    let verb = if dry_run { "would change" } else { "changed" };
    println!("{} leads; {} scores {verb}", rescored.leads, rescored.scores_changed);
    for ((from, to), n) in &rescored.stages_changed {
        println!("{n} {verb} stage: {from} → {to}");
    }
    if rescored.stages_changed.is_empty() {
        println!("no lead {verb} stage");
    }
    Ok(())
}
