//! Every background worker, started and stopped in one place.
//!
//! - [`delivery`]: sends the outbox rows to webhooks and CRMs, with retries.
//! - [`routing`]: routes the leads queued for routing and runs the SLA timers.
//! - [`resolver`]: fuzzy matching after capture: merges, reviews and the key index.
//! - [`frequencies`]: counts name frequencies and trains the matching weights.
//! - [`crate::encryption::worker`]: after a master key rotation, re-encrypts what the
//!   older keys sealed.
//! - [`crate::retention::worker`]: once a day, deletes what the retention says expired.
//! - [`sources`]: settles batch sources, pulls LinkedIn lead forms, retries pending
//!   submissions whose provider fetch failed.
//! - At start-up, submissions left unsettled by the last run are settled and unfinished
//!   import jobs run again ([`crate::import::run_job`]).
//!
//! Each worker may run on every instance against one database: the store's claims (job
//! leases, `SKIP LOCKED`, claimed periods) make sure each piece of work is done once.

pub mod delivery;
pub mod frequencies;
pub mod resolver;
pub mod routing;
pub mod sources;

use crate::{App, import, ingest};
use leadflow_integrations::delivery::Client;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The running workers.
pub struct Workers {
    stop: watch::Sender<bool>,
    /// The workers whose work in flight is finished before the store closes.
    finishing: Vec<(&'static str, JoinHandle<()>)>,
}

/// Settles what the last run left, then starts the workers the configuration calls for.
/// Without a delivery client, nothing is delivered and outbox rows wait.
pub async fn start(app: &App, client: Option<Arc<Client>>) -> Workers {
    match ingest::recover_pending(app).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(settled = n, "settled submissions left from the last run"),
        Err(e) => tracing::error!(error = %e, "could not settle submissions left from the last run"),
    }
    // Imports interrupted by a stop run again; their rows are idempotent.
    match app.store.unfinished_imports().await {
        Ok(jobs) => {
            for job in jobs {
                tracing::info!(import_id = %job.id, "resuming an import job");
                tokio::spawn(import::run_job(app.clone(), job));
            }
        }
        Err(e) => tracing::error!(error = %e, "could not list unfinished import jobs"),
    }
    let (stop, stopped) = watch::channel(false);
    sources::spawn_batch_workers(app, &stopped);
    sources::spawn_pull_workers(app, &stopped);
    sources::spawn_pending_retry(app, &stopped);
    let mut finishing = vec![("health", tokio::spawn(crate::health::run(app.clone(), stopped.clone())))];
    tokio::spawn(crate::alerts::run(app.clone(), stopped.clone()));
    if app.config.master_keys.is_some() {
        tokio::spawn(crate::encryption::worker(app.clone(), stopped.clone()));
    }
    if !app.config.retention.ages().is_empty() {
        tokio::spawn(crate::retention::worker(app.clone(), stopped.clone()));
    }
    if app.config.matching.fuzzy {
        tokio::spawn(frequencies::run(app.clone(), stopped.clone()));
        finishing.push(("resolver", tokio::spawn(resolver::run(app.clone(), stopped.clone()))));
    }
    if app.config.routing.is_enabled() {
        finishing.push(("routing", tokio::spawn(routing::run(app.clone(), stopped.clone()))));
    }
    if let Some(client) = client {
        let _ = app.delivery.set(client.clone());
        finishing.push(("delivery", tokio::spawn(delivery::run(app.clone(), client, stopped))));
    }
    Workers { stop, finishing }
}

impl Workers {
    /// Tells every worker to stop, and waits for the routing and delivery workers to
    /// finish what they started (a try in flight is recorded, not lost to the lease).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, worker) in self.finishing {
            if let Err(e) = worker.await {
                tracing::error!(error = %e, worker = name, "a worker failed");
            }
        }
    }
}
