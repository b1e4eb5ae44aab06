//! The delivery worker: claims due outbox rows, makes one try at each through the
//! delivery client (at most `concurrency` at once), and records what came of it.
//!
//! Nothing is lost by a crash: a row stays pending until its outcome is recorded, and a
//! claim is a lease that lapses, so a killed worker's deliveries are tried again after a
//! restart (at-least-once; the idempotency key lets the destination drop the repeat).
//! Waiting never ties up a slot: a throttled or failing destination defers its rows to a
//! later due time, and the other destinations' rows are claimed meanwhile.

use crate::{App, metrics as m};
use leadflow_core::health::ErrorClass;
use leadflow_integrations::delivery::{Client, Delivery, Outcome};
use leadflow_store::{DeliveryAttempt, DeliveryResult, DynStore, OutboxDelivery};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The longest the worker sleeps without looking at the outbox: a write made by another
/// instance (or another process, such as `leadflow import`) does not wake it.
const IDLE: Duration = Duration::from_secs(1);

/// Runs until `stop` turns true, then lets the tries in flight finish and record.
pub(super) async fn run(app: App, client: Arc<Client>, mut stop: watch::Receiver<bool>) {
    let (store, settings) = (&app.store, &app.config.delivery);
    // Long enough that a live try is never taken over: it ends within the timeout.
    let lease = settings.timeout * 2 + Duration::from_secs(5);
    let mut tasks = JoinSet::new();
    while !*stop.borrow() {
        while tasks.try_join_next().is_some() {}
        let free = settings.concurrency.saturating_sub(tasks.len());
        let mut claimed = 0;
        if free > 0 {
            match store.claim_deliveries(free, lease, OffsetDateTime::now_utc()).await {
                Ok(batch) => {
                    claimed = batch.len();
                    for d in batch {
                        tasks.spawn(attempt(app.clone(), client.clone(), d));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not claim deliveries"),
            }
        }
        if claimed > 0 && claimed == free {
            // Full batch: more may be due as soon as a slot frees.
            let _ = tasks.join_next().await;
            continue;
        }
        let idle = if claimed == 0 && tasks.is_empty() { until_next_due(store).await } else { IDLE };
        tokio::select! {
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            () = app.wake.outbox.notified() => {}
            () = tokio::time::sleep(idle) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
    while tasks.join_next().await.is_some() {}
}

async fn until_next_due(store: &DynStore) -> Duration {
    match store.next_delivery_due().await {
        Ok(Some(due)) => {
            let wait = due - OffsetDateTime::now_utc();
            Duration::try_from(wait).unwrap_or(Duration::ZERO).min(IDLE)
        }
        Ok(None) => IDLE,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the next due delivery");
            IDLE
        }
    }
}

fn due_after(after: Duration) -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    time::Duration::try_from(after).ok().and_then(|d| now.checked_add(d)).unwrap_or(now + time::Duration::HOUR)
}

async fn attempt(app: App, client: Arc<Client>, row: OutboxDelivery) {
    let store = &app.store;
    let row_lead = row.lead_id;
    let delivery = Delivery {
        id: row.id,
        destination: row.destination,
        event_type: row.event_type,
        lead_id: row.lead_id.to_string(),
        payload: row.payload,
        occurred_at: row.created_at,
        attempt: row.attempts,
    };
    let tried = client.deliver(&delivery).await;
    // An erasure deletes records; it learns none.
    if let Outcome::Delivered { response_excerpt, .. } = &tried.outcome
        && delivery.event_type != leadflow_integrations::delivery::erased::EVENT_TYPE
        && let Some(record) = client.record_id(&delivery.destination, response_excerpt)
    {
        // Before the delivery is recorded: should this fail, the delivery stays pending
        // and its retry links again. Feedback naming only the CRM's id needs the link.
        match store.link_crm_record(&delivery.destination, &record, row_lead).await {
            Ok(0) => {}
            Ok(settled) => {
                app.wake.written();
                tracing::info!(delivery_id = %delivery.id, settled, "feedback that waited for the CRM record applied")
            }
            Err(e) => tracing::warn!(delivery_id = %delivery.id, error = %e, "could not remember the CRM record id"),
        }
    }
    let (result, status, error, response) = match tried.outcome {
        Outcome::Delivered { status, response_excerpt } => {
            (DeliveryResult::Delivered, Some(status), None, Some(response_excerpt))
        }
        Outcome::Retry { after, status, error, response_excerpt } => {
            (DeliveryResult::Retry { at: due_after(after) }, status, Some(error), response_excerpt)
        }
        Outcome::Deferred { after, .. } => (DeliveryResult::Deferred { at: due_after(after) }, None, None, None),
        Outcome::DeadLetter { status, response_excerpt, reason } => {
            (DeliveryResult::Dead, status, Some(reason), response_excerpt)
        }
        Outcome::NeedsData { missing } => (DeliveryResult::NeedsData { missing }, None, None, None),
        Outcome::BlockedConsent { missing } => (DeliveryResult::BlockedConsent { missing }, None, None, None),
        // Nothing to send was the whole job: done, and the reason kept as the answer.
        Outcome::Skipped { reason } => (DeliveryResult::Delivered, None, None, Some(reason)),
    };
    let class = match &result {
        DeliveryResult::Retry { .. } | DeliveryResult::Dead => {
            Some(ErrorClass::of(status, error.as_deref().unwrap_or("")).as_str())
        }
        _ => None,
    };
    m::delivery_attempt(&delivery.destination, result_label(&result), class);
    let record = DeliveryAttempt {
        delivery_id: delivery.id,
        result,
        at: OffsetDateTime::now_utc(),
        status,
        error,
        request: tried.request_excerpt,
        response,
        duration_ms: u64::try_from(tried.duration.as_millis()).unwrap_or(u64::MAX),
    };
    let id = record.delivery_id.clone();
    if let Err(e) = store.record_delivery(record).await {
        // The row stays pending and its lease lapses: it is tried again.
        tracing::warn!(delivery_id = %id, error = %e, "could not record a delivery attempt");
    }
}

fn result_label(r: &DeliveryResult) -> &'static str {
    match r {
        DeliveryResult::Delivered => "delivered",
        DeliveryResult::Retry { .. } => "retry",
        DeliveryResult::Deferred { .. } => "deferred",
        DeliveryResult::Dead => "dead",
        DeliveryResult::NeedsData { .. } => "needs_data",
        DeliveryResult::BlockedConsent { .. } => "blocked_consent",
    }
}
