//! The resolver: fuzzy matching after capture. Capture settles exact matches and queues
//! the lead in its own transaction; this worker takes the queue in order, a batch per
//! store transaction, and merges, queues reviews and indexes there
//! ([`leadflow_core::resolve::queued`]). Every instance runs one; the store lets one
//! resolve at a time, so a lead is resolved once, after the leads queued before it.

use crate::{App, metrics as m};
use leadflow_store::{ResolveBatch, StoreError};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Leads resolved per store transaction: large enough that a busy import's queue drains
/// in few commits, small enough that SQLite's writer is not held for long (captures wait
/// behind it).
pub const BATCH: usize = 256;
/// Leads per transaction when draining after an import: nothing waits on the writer then,
/// and each commit writes every index page its keys touched, so fewer, larger commits
/// write less (about 8 % faster imports, docs/BENCHMARKS.md).
const DRAIN_BATCH: usize = 1024;
/// The longest the worker sleeps: leads queued by another instance do not wake it.
const IDLE: Duration = Duration::from_secs(1);
/// After a failed batch, before the next try.
const RETRY: Duration = Duration::from_secs(2);

pub(super) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let pause = match resolve_batch(&app).await {
            Ok(true) => continue,
            Ok(false) => IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "could not resolve queued leads");
                RETRY
            }
        };
        if let Ok(n) = app.store.resolve_backlog().await {
            m::resolve_backlog(n);
        }
        tokio::select! {
            () = app.wake.resolver.notified() => {}
            () = tokio::time::sleep(pause) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

/// Resolves one batch; `true` when the batch was full (more may be waiting).
async fn resolve_batch(app: &App) -> Result<bool, StoreError> {
    Ok(batch(app, BATCH).await?.taken == BATCH)
}

async fn batch(app: &App, size: usize) -> Result<ResolveBatch, StoreError> {
    let batch = app.store.resolve_queued(size, OffsetDateTime::now_utc()).await?;
    m::resolved(batch.leads, batch.merges.len(), batch.reviews);
    if !batch.merges.is_empty() || batch.reviews > 0 {
        // Merges are `lead.merged` deliveries and may queue routing.
        app.wake.delivery();
        app.wake.routing.notify_one();
    }
    Ok(batch)
}

/// Resolves until the queue is empty (or another instance holds the resolver), with the
/// learned weights and the name frequencies of every stored lead: for the CLI's import,
/// which ends with its duplicates merged. What every batch did, together.
pub async fn drain(app: &App) -> Result<ResolveBatch, StoreError> {
    let mut all = ResolveBatch::default();
    if !app.config.matching.fuzzy {
        return Ok(all);
    }
    super::frequencies::learn(app).await?;
    loop {
        let done = batch(app, DRAIN_BATCH).await?;
        let full = done.taken == DRAIN_BATCH;
        all.extend(done);
        if !full {
            return Ok(all);
        }
    }
}
