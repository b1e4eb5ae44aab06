//! Re-encryption after a master key rotation: moves every sealed value onto the active
//! data key in small batches, between other writes, until nothing older is left; the store
//! then drops the older data keys and the previous master key is no longer needed.

use crate::App;
use leadflow_store::cipher::Reencrypted;
use leadflow_store::{DynStore, StoreError};
use std::time::Duration;
use tokio::sync::watch;

/// Rows per batch: one short write transaction each, so captures are not held up.
pub const BATCH: usize = 500;
/// The pause between batches, which leaves the writer to captures.
const PAUSE: Duration = Duration::from_millis(20);

/// Runs re-encryption to the end, or until `stop`; what was done.
pub async fn run(
    store: &DynStore,
    stop: &mut watch::Receiver<bool>,
    pause: Duration,
) -> Result<Reencrypted, StoreError> {
    let mut total = Reencrypted::default();
    while !*stop.borrow() {
        let step = store.reencrypt(BATCH).await?;
        total.rows += step.rows;
        if step.done {
            total.done = true;
            break;
        }
        if !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
    }
    Ok(total)
}

/// The worker: runs once at start-up (a rotation takes effect when an instance starts
/// with a new key); a failure is retried a minute later.
pub(crate) async fn worker(app: App, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        match run(&app.store, &mut stop, PAUSE).await {
            Ok(done) if done.done => {
                if done.rows > 0 {
                    tracing::info!(rows = done.rows, "re-encryption finished");
                }
                return;
            }
            Ok(_) => return,
            Err(e) => tracing::warn!(error = %e, "re-encryption stopped; it resumes in a minute"),
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}
