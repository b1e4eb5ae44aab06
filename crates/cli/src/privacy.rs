//! `leadflow leads export-person` (subject access) and `leadflow retention run`.

use crate::{DataArgs, Failure};
use clap::Subcommand;
use leadflow_app::retention::{self, Trigger};
use leadflow_core::LeadId;
use leadflow_core::privacy::export::Refused;
use leadflow_store::StoreError;
use std::io::Write;
use std::path::Path;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Subcommand)]
pub(crate) enum RetentionCommand {
    /// Delete what the [retention] section says has expired, now, and print the counts per
    /// kind. The run is recorded like the daily one (GET /v1/retention/runs).
    Run {
        #[command(flatten)]
        data: DataArgs,
        /// Count what would go; change and record nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn store_failure(e: StoreError) -> Failure {
    match e {
        e @ StoreError::Unavailable(_) => Failure::Store(e.to_string()),
        e => Failure::Runtime(e.to_string()),
    }
}

/// Writes everything held about the person behind `id` as one JSON document.
pub(crate) async fn export_person(data: &DataArgs, id: &str, out: Option<&Path>) -> Result<(), Failure> {
    let lead: LeadId = id.parse().map_err(|_| Failure::Runtime(format!("{id:?} is not a lead id")))?;
    let app = crate::open_app(data).await?;
    let result = leadflow_app::subject::export(&app, lead).await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let document = match result.map_err(store_failure)? {
        Ok(document) => document,
        Err(Refused::NotFound) => return Err(Failure::Runtime(format!("no lead has the id {id}"))),
        Err(Refused::Erased(lead)) => {
            return Err(Failure::Runtime(format!("lead {lead} was erased: nothing about the person is kept")));
        }
    };
    let text = serde_json::to_string_pretty(&document).map_err(|e| Failure::Runtime(e.to_string()))?;
    match out {
        Some(path) => std::fs::write(path, text + "\n")
            .map_err(|e| Failure::Runtime(format!("cannot write {}: {e}", path.display())))?,
        None => writeln!(std::io::stdout(), "{text}").map_err(|e| Failure::Runtime(e.to_string()))?,
    }
    if !document.incomplete.is_empty() {
        eprintln!("warning: some sections reached the row limit; see \"incomplete\" in the document");
    }
    Ok(())
}

pub(crate) async fn run(action: RetentionCommand) -> Result<(), Failure> {
    let RetentionCommand::Run { data, dry_run } = action;
    let app = crate::open_app(&data).await?;
    let result = retention::run(&app, Trigger::Manual, dry_run, OffsetDateTime::now_utc()).await;
    app.store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
    let run = result.map_err(store_failure)?;
    if run.kinds.is_empty() {
        println!("nothing to do: no retention is configured");
        return Ok(());
    }
    let verb = if dry_run { "WOULD_GO" } else { "DELETED" };
    println!("{:<17} {verb:>9}  OLDER_THAN", "KIND");
    for k in &run.kinds {
        let before = k.before.format(&Rfc3339).unwrap_or_default();
        println!("{:<17} {:>9}  {before}", k.kind, k.count);
    }
    if dry_run {
        eprintln!("dry run: nothing was changed");
    } else {
        eprintln!("retention run {} recorded", run.id);
    }
    Ok(())
}
