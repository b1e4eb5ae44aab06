//! The periodic work of sources: batch sources settled on their schedule, LinkedIn lead
//! forms pulled, and submissions left pending by a failed provider fetch tried again.
//!
//! Several instances may run these workers against one database: each round belongs to a
//! period (the time truncated to the interval) and only the instance whose claim of that
//! period wins runs it, so a round runs once per period, not once per instance.

use crate::{App, ingest, providers};
use leadflow_core::SourceName;
use leadflow_core::capture::RawSubmission;
use leadflow_core::config::{Adapter, Mode, SourceConfig};
use leadflow_store::{DynStore, StoreError};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Settles, every `batch_interval`, the pending submissions of each batch source; the
/// first round runs at once (start-up). Stops when `stop` changes or is dropped.
pub(super) fn spawn_batch_workers(app: &App, stop: &watch::Receiver<bool>) {
    let batch: Vec<SourceConfig> = app.config.sources.iter().filter(|s| s.mode == Mode::Batch).cloned().collect();
    for source in batch {
        let app = app.clone();
        let job = format!("batch:{}", source.name);
        spawn_periodic(app.store.clone(), job, source.batch_interval, stop.clone(), move || {
            let (app, source) = (app.clone(), source.clone());
            async move {
                match settle_batch(&app, &source.name).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(source = %source.name, settled = n, "batch settled"),
                    Err(e) => tracing::error!(source = %source.name, error = %e, "batch settling failed"),
                }
            }
        });
    }
}

/// Pulls, every `pull_interval`, the lead form responses of each LinkedIn source that has
/// one, once per period across instances (see [`spawn_batch_workers`]). The first round
/// runs at once. Stops when `stop` changes or is dropped.
pub(super) fn spawn_pull_workers(app: &App, stop: &watch::Receiver<bool>) {
    let pulls: Vec<(SourceConfig, Duration)> = app
        .config
        .sources
        .iter()
        .filter(|s| s.adapter == Adapter::LinkedinLeadGen)
        .filter_map(|s| Some((s.clone(), s.pull_interval?)))
        .collect();
    for (source, interval) in pulls {
        let app = app.clone();
        let job = format!("pull:{}", source.name);
        spawn_periodic(app.store.clone(), job, interval, stop.clone(), move || {
            let (app, source) = (app.clone(), source.clone());
            async move {
                match providers::pull_linkedin(&app, &source).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(source = %source.name, pulled = n, "lead form responses pulled"),
                    Err(e) => {
                        tracing::error!(source = %source.name, error = %e, "pull failed; it resumes from the saved cursor")
                    }
                }
            }
        });
    }
}

/// How often submissions left pending by a failed provider fetch (or a failed settle) are
/// tried again, outside batch sources, which keep their own schedule.
pub const RETRY_PENDING_INTERVAL: Duration = Duration::from_secs(60);

/// Retries, every [`RETRY_PENDING_INTERVAL`], the pending submissions of realtime sources:
/// a provider that was down when its lead arrived is asked again without a restart.
pub(super) fn spawn_pending_retry(app: &App, stop: &watch::Receiver<bool>) {
    let app = app.clone();
    spawn_periodic(app.store.clone(), "retry-pending".to_owned(), RETRY_PENDING_INTERVAL, stop.clone(), move || {
        let app = app.clone();
        async move {
            let config = app.config.clone();
            let realtime = |s: &RawSubmission| config.source(&s.source).is_none_or(|src| src.mode != Mode::Batch);
            match ingest::settle_pending(&app, realtime).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(settled = n, "settled submissions that were pending"),
                Err(e) => tracing::error!(error = %e, "retrying pending submissions failed"),
            }
        }
    });
}

/// Runs `round` every `interval` (the first at once) for the periods this instance claims.
fn spawn_periodic<F, Fut>(store: DynStore, job: String, interval: Duration, mut stop: watch::Receiver<bool>, round: F)
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let start = period_start(OffsetDateTime::now_utc(), interval);
            match store.try_claim_period(&job, start).await {
                Ok(true) => round().await,
                // Another instance (or an earlier round of this one) has this period.
                Ok(false) => {}
                Err(e) => tracing::error!(job = %job, error = %e, "could not claim the period; skipping it"),
            }
        }
    });
}

/// The start of the period `now` falls in: `now` truncated to a multiple of `interval`
/// since the Unix epoch, so every instance computes the same start.
pub fn period_start(now: OffsetDateTime, interval: Duration) -> OffsetDateTime {
    let step = i128::try_from(interval.as_millis()).unwrap_or(i128::MAX).max(1);
    let ms = now.unix_timestamp_nanos() / 1_000_000;
    let start = ms - ms.rem_euclid(step);
    OffsetDateTime::from_unix_timestamp_nanos(start * 1_000_000).unwrap_or(now)
}

/// One batch round for one source: up to a page of its pending submissions.
async fn settle_batch(app: &App, name: &SourceName) -> Result<usize, StoreError> {
    const PAGE: usize = 1000;
    let pending: Vec<RawSubmission> =
        app.store.pending_submissions(PAGE).await?.into_iter().filter(|s| &s.source == name).collect();
    ingest::settle_fetched(app, pending).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn every_instance_computes_the_same_period_for_times_within_it() {
        let hour = Duration::from_secs(3600);
        let start = datetime!(2026-03-01 10:00 UTC);
        assert_eq!(period_start(datetime!(2026-03-01 10:00 UTC), hour), start);
        assert_eq!(period_start(datetime!(2026-03-01 10:59:59.999 UTC), hour), start);
        assert_eq!(period_start(datetime!(2026-03-01 11:00 UTC), hour), datetime!(2026-03-01 11:00 UTC));
        let odd = Duration::from_secs(7 * 60);
        let a = period_start(datetime!(2026-03-01 10:03 UTC), odd);
        assert_eq!(a, period_start(a + time::Duration::seconds(419), odd), "a 7-minute period holds 419 s more");
        assert_ne!(a, period_start(a + time::Duration::seconds(420), odd));
    }
}
