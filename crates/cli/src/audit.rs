//! `leadflow audit`: the audit log from the command line — verify the hash chain, list
//! entries — and [`note`], how the other commands record what they did.

use crate::{DataArgs, Failure};
use clap::Subcommand;
use leadflow_core::audit::{NewEntry, Verifier};
use leadflow_store::{AuditFilter, DynStore};
use std::io::Write;

/// Entries read per page while verifying.
const PAGE: usize = 1000;

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check the hash chain from the oldest entry kept to the newest: prints
    /// `ok: N entries, head HASH` and exits 0, or names the first broken entry and exits 1.
    /// Keep the head hash somewhere else: a later verification that ends on another head
    /// with fewer entries shows entries removed from the end.
    Verify {
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print entries as JSON lines, newest first.
    List {
        #[command(flatten)]
        data: DataArgs,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

pub(crate) async fn run(action: AuditCommand) -> Result<(), Failure> {
    match action {
        AuditCommand::Verify { data } => {
            let (store, _) = crate::open(&data).await?;
            // Each region keeps its own chain: every one is verified, named by its region.
            let regions = store.regions();
            let chains: Vec<(Option<String>, DynStore)> = if regions.is_empty() {
                vec![(None, store.clone())]
            } else {
                regions.into_iter().map(|(name, s)| (Some(name), s)).collect()
            };
            let mut results = Vec::new();
            for (name, chain) in chains {
                results.push((name, verify(&chain).await));
            }
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            for (name, result) in results {
                let verified = result?;
                let region = name.map(|n| format!("region {n}: ")).unwrap_or_default();
                match (verified.head, verified.first_seq) {
                    (Some((seq, hash)), Some(first)) if first > 1 => println!(
                        "{region}ok: {} entries, head {hash} (entries {first} to {seq}; the older ones were deleted)",
                        verified.entries
                    ),
                    (Some((_, hash)), _) => println!("{region}ok: {} entries, head {hash}", verified.entries),
                    (None, _) => println!("{region}ok: 0 entries"),
                }
            }
            Ok(())
        }
        AuditCommand::List { data, limit } => {
            let (store, _) = crate::open(&data).await?;
            let result = store.list_audit(AuditFilter { limit: limit.max(1), ..Default::default() }).await;
            store.close().await.map_err(|e| Failure::Store(e.to_string()))?;
            let mut out = std::io::stdout().lock();
            for entry in result.map_err(|e| Failure::Store(e.to_string()))? {
                let line = serde_json::to_string(&entry).map_err(|e| Failure::Runtime(e.to_string()))?;
                writeln!(out, "{line}").map_err(|e| Failure::Runtime(e.to_string()))?;
            }
            Ok(())
        }
    }
}

async fn verify(store: &DynStore) -> Result<leadflow_core::audit::Verified, Failure> {
    let mut verifier = Verifier::default();
    let mut after = 0;
    loop {
        let page = store.audit_entries(after, PAGE).await.map_err(|e| Failure::Store(e.to_string()))?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for entry in &page {
            verifier.push(entry).map_err(|broken| Failure::Runtime(broken.to_string()))?;
        }
    }
    Ok(verifier.finish())
}

/// Records what a command did once it succeeded. The action is done: a failure to record
/// it is reported on standard error and does not change the exit code.
pub(crate) async fn note(store: &DynStore, entries: Vec<NewEntry>) {
    if entries.is_empty() {
        return;
    }
    if let Err(e) = store.append_audit(entries).await {
        eprintln!("warning: the action succeeded but its audit entry was not written: {e}");
    }
}
