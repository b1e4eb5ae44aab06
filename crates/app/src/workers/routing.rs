//! The routing worker: routes the leads queued for routing (queued in the transaction
//! of the change that called for it, so a crash loses none) and runs the SLA timers.
//! Every instance may run one; the store makes sure each lead is routed once and each
//! round-robin turn is given once.

use crate::{App, metrics as m};
use leadflow_store::RoutedLead;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Leads routed per store call.
const BATCH: usize = 64;
/// The longest the worker sleeps: leads queued by another instance (or another process)
/// do not wake it.
const IDLE: Duration = Duration::from_secs(1);

pub(super) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let (store, wake) = (&app.store, &app.wake);
    while !*stop.borrow() {
        let now = OffsetDateTime::now_utc();
        let mut full = false;
        match store.route_queued(BATCH, now).await {
            Ok(routed) => {
                full |= routed.len() == BATCH;
                count(&routed, "leadflow_routing_assignments_total");
                if !routed.is_empty() {
                    wake.delivery();
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not route queued leads"),
        }
        match store.run_sla(BATCH, now).await {
            Ok(acted) => {
                full |= acted.len() == BATCH;
                count(&acted, "leadflow_routing_sla_actions_total");
                if !acted.is_empty() {
                    wake.delivery();
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not run SLA timers"),
        }
        if full {
            continue;
        }
        let idle = match store.next_sla_due().await {
            Ok(Some(due)) => Duration::try_from(due - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO).min(IDLE),
            Ok(None) => IDLE,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the next SLA timer");
                IDLE
            }
        };
        tokio::select! {
            () = wake.routing.notified() => {}
            () = tokio::time::sleep(idle) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

fn count(routed: &[RoutedLead], metric: &'static str) {
    for r in routed {
        m::routed(metric, r.via.clone(), r.trigger.clone());
    }
}
