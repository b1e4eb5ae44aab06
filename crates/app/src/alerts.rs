//! Alerts: the rules of `[alerts]` evaluated against the health aggregates, episodes
//! opened and resolved by the core's state machine ([`leadflow_core::health::alerts`]),
//! and their notifications sent through a stored outbox with retries.
//!
//! Each evaluation period is claimed once across instances, and an episode's
//! notifications are written with it under ids unique per episode event and channel, so
//! every channel hears of an episode's firing and its resolution exactly once, whatever
//! the number of instances or restarts. A failing channel only delays its own
//! notifications: capture never waits for one.

use crate::App;
use leadflow_core::config::Mode;
use leadflow_core::health::alerts::{self, Episode, Readings, State, Step};
use leadflow_core::health::{Firing, Scope, Series};
use leadflow_store::{NotificationResult, StoreError};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Evaluates every rule now and applies what changed. Returns the step.
pub async fn evaluate(app: &App, now: OffsetDateTime) -> Result<Step, StoreError> {
    let config = &app.config.alerts;
    let store = &app.store;
    let (cells, seen, backlogs) =
        tokio::try_join!(store.health_cells(config.query(now)), store.health_seen(), crate::health::backlogs(app))?;
    let series = Series::new(cells);
    let sources: Vec<(String, bool)> =
        app.config.sources.iter().map(|s| (s.name.as_str().to_owned(), s.mode == Mode::Realtime)).collect();
    let destinations: Vec<String> = app.config.destinations.iter().map(|d| d.name.clone()).collect();
    let of_sources = seen.iter().filter(|s| s.scope == Scope::Source);
    let last_received: BTreeMap<String, OffsetDateTime> =
        of_sources.clone().map(|s| (s.name.clone(), s.last_at)).collect();
    let first_received: BTreeMap<String, OffsetDateTime> = of_sources.map(|s| (s.name.clone(), s.first_at)).collect();
    // A batch source's rows wait for their batch by design: only a realtime source's
    // pending submissions are fetches (or settlings) that are late.
    let oldest_pending_fetch: BTreeMap<String, OffsetDateTime> = backlogs
        .oldest_pending
        .iter()
        .filter(|(name, _)| sources.iter().any(|(s, realtime)| s == *name && *realtime))
        .map(|(n, at)| (n.clone(), *at))
        .collect();
    let readings = Readings {
        series: &series,
        sources: &sources,
        destinations: &destinations,
        last_received: &last_received,
        first_received: &first_received,
        backlogs: &backlogs,
        oldest_pending_fetch: &oldest_pending_fetch,
    };
    let conditions = alerts::evaluate(config, &readings, now);
    let state = store.alert_state().await?;
    let step = alerts::step(&state.open, &conditions, &state.silences, config, now);
    if !(step.opened.is_empty() && step.updated.is_empty() && step.notifications.is_empty()) {
        store.apply_alerts(step.clone()).await?;
        for e in &step.opened {
            tracing::warn!(episode = %e.id, rule = %e.kind, scope = %e.scope, "alert firing");
        }
        for e in step.updated.iter().filter(|e| e.state == State::Resolved) {
            tracing::info!(episode = %e.id, rule = %e.kind, scope = %e.scope, "alert resolved");
        }
    }
    Ok(step)
}

/// The alerts firing now, for the health statuses.
pub async fn firing(app: &App) -> Result<(Vec<Episode>, Firing), StoreError> {
    let open = app.store.alert_state().await?.open;
    let firing = alerts::firing(&open);
    Ok((open, firing))
}

/// How many notifications one pass sends at most, and how long a claim holds.
const BATCH: usize = 20;
const LEASE: Duration = Duration::from_secs(60);
/// Tries before a notification is given up (about a day with the backoff below).
const MAX_TRIES: u32 = 12;

/// The wait before try `attempts + 1`: 30 s doubling, at most an hour.
fn backoff(attempts: u32) -> time::Duration {
    time::Duration::seconds(30_i64.saturating_mul(1 << attempts.min(7)).min(3_600))
}

/// Sends the due notifications once; returns how many went out.
pub async fn send_due(app: &App) -> Result<usize, StoreError> {
    let Some(notifier) = app.providers.notifier() else { return Ok(0) };
    let now = OffsetDateTime::now_utc();
    let due = app.store.claim_notifications(BATCH, LEASE, now).await?;
    let mut sent = 0;
    for n in due {
        let result = match notifier.send(&n.id, &n.channel, &n.body).await {
            Ok(()) => {
                sent += 1;
                NotificationResult::Sent
            }
            Err(f) if f.retryable && n.attempts + 1 < MAX_TRIES => {
                tracing::warn!(notification = %n.id, channel = %n.channel, error = %f.error, "alert notification failed; trying again");
                NotificationResult::Retry { at: OffsetDateTime::now_utc() + backoff(n.attempts), error: f.error }
            }
            Err(f) => {
                tracing::error!(notification = %n.id, channel = %n.channel, error = %f.error, "alert notification given up");
                NotificationResult::Dead { error: f.error }
            }
        };
        app.store.record_notification(&n.id, result, OffsetDateTime::now_utc()).await?;
    }
    Ok(sent)
}

/// The alert worker: evaluates the rules once per `evaluate_every` period (claimed once
/// across instances) and sends due notifications.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let every = app.config.alerts.evaluate_every.max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
        let now = OffsetDateTime::now_utc();
        match claim(&app, now, every).await {
            Ok(true) => {
                if let Err(e) = evaluate(&app, now).await {
                    tracing::warn!(error = %e, "alert evaluation failed");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim the alert evaluation"),
        }
        if let Err(e) = send_due(&app).await {
            tracing::warn!(error = %e, "could not send alert notifications");
        }
    }
}

/// Claims the evaluation period holding `now`: one instance evaluates it.
async fn claim(app: &App, now: OffsetDateTime, every: Duration) -> Result<bool, StoreError> {
    let every_ms = i128::try_from(every.as_millis()).unwrap_or(i128::MAX).max(1);
    let now_ms = now.unix_timestamp_nanos() / 1_000_000;
    let start = OffsetDateTime::from_unix_timestamp_nanos(now_ms / every_ms * every_ms * 1_000_000).unwrap_or(now);
    app.store.try_claim_period("alerts", start).await
}
