//! Retention: what the `[retention]` section says goes, goes (the core decides the
//! cutoffs, `leadflow_core::privacy::retention`; the store deletes in bounded batches).
//! Once a day on one instance ([`worker`]: the day is claimed in the store), and by hand
//! (`leadflow retention run`). Every run that changes anything is kept with its counts
//! per kind and listed by `GET /v1/retention/runs`.
//!
//! Inactive leads are anonymized or erased one at a time, each in its own transaction,
//! through the erasure: the tombstone keeps them in the reports.

use crate::App;
use leadflow_core::privacy::retention::{self, Cutoff, InactiveAction, Kind, KindCount, Run};
use leadflow_core::{LeadId, pipeline::Rules};
use leadflow_store::StoreError;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Who started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Schedule,
    Manual,
}

impl Trigger {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }
}

/// The claim of a day's run: one per day across instances.
pub const JOB: &str = "retention";
/// How often the worker looks whether today's run is claimed.
const LOOK_EVERY: Duration = Duration::from_secs(600);
/// Inactive leads read per page.
const LEADS_PAGE: usize = 500;

/// Runs retention as configured, as of `now`. A dry run counts what would go, changes
/// nothing and is not kept. A run that fails part-way is kept with its error and what it
/// did until then.
pub async fn run(app: &App, trigger: Trigger, dry_run: bool, now: OffsetDateTime) -> Result<Run, StoreError> {
    let cutoffs = retention::cutoffs(&app.config.retention, now);
    let mut run = Run {
        id: format!("ret_{}", uuid::Uuid::now_v7().simple()),
        trigger: trigger.as_str().to_owned(),
        started_at: now,
        finished_at: None,
        kinds: Vec::with_capacity(cutoffs.len()),
        error: None,
    };
    if dry_run {
        for cutoff in cutoffs {
            let count = app.store.count_expired(cutoff.kind, cutoff.before).await?;
            run.kinds.push(counted(cutoff, count));
        }
        return Ok(run);
    }
    app.store.save_retention_run(run.clone()).await?;
    for cutoff in cutoffs {
        match apply(app, cutoff).await {
            Ok(done) => run.kinds.push(done),
            Err(e) => {
                run.error = Some(e.to_string());
                finish(app, &mut run).await;
                return Err(e);
            }
        }
    }
    finish(app, &mut run).await;
    let counts: Vec<(&str, u64)> = run.kinds.iter().map(|k| (k.kind.as_str(), k.count)).collect();
    let detail = serde_json::json!({"trigger": run.trigger, "counts": counts});
    let entry = leadflow_core::audit::NewEntry::new(
        crate::audit::SYSTEM,
        leadflow_core::audit::Action::RetentionRun,
        run.id.to_string(),
    )
    .detail(detail);
    if let Err(e) = crate::audit::record(app, entry).await {
        tracing::error!(run_id = %run.id, error = %e, "the retention run's audit entry was not written");
    }
    tracing::info!(run_id = %run.id, trigger = %run.trigger, ?counts, "retention run finished");
    Ok(run)
}

async fn finish(app: &App, run: &mut Run) {
    run.finished_at = Some(OffsetDateTime::now_utc());
    if let Err(e) = app.store.save_retention_run(run.clone()).await {
        tracing::warn!(run_id = %run.id, error = %e, "could not record the end of a retention run");
    }
}

fn counted(cutoff: Cutoff, count: u64) -> KindCount {
    KindCount { kind: cutoff.kind.as_str().to_owned(), before: cutoff.before, count }
}

async fn apply(app: &App, cutoff: Cutoff) -> Result<KindCount, StoreError> {
    match cutoff.kind {
        Kind::InactiveLeads => {
            let action = app.config.retention.inactive_leads.map_or(InactiveAction::Anonymize, |(_, a)| a);
            Ok(counted(cutoff, inactive(app, cutoff.before, action).await?))
        }
        kind => Ok(counted(cutoff, app.store.expire(kind, cutoff.before).await?)),
    }
}

/// Anonymizes or erases every lead unchanged since `before`; how many.
async fn inactive(app: &App, before: OffsetDateTime, action: InactiveAction) -> Result<u64, StoreError> {
    // Anonymizing is the erasure under rules no destination subscribes to and without a
    // suppression key: the tombstone and the scrubbing, without `lead.erased` deliveries,
    // and the person may come back (they did not ask to be forgotten).
    let quiet = app.store.with_rules(Rules { outbox: Arc::default(), suppression: None, ..app.config.rules() });
    let reason = Some(format!("retention: {} after inactivity", action.as_str()));
    let (mut done, mut after): (u64, Option<LeadId>) = (0, None);
    loop {
        let page = app.store.inactive_leads(before, after, LEADS_PAGE).await?;
        let Some(last) = page.last().copied() else { return Ok(done) };
        for lead in page {
            let receipt = match action {
                InactiveAction::Anonymize => quiet.erase_lead(lead, "retention".into(), reason.clone()).await,
                InactiveAction::Erase => {
                    let request = crate::erase::Request { actor: "retention".into(), reason: reason.clone() };
                    crate::erase::erase(app, lead, request).await
                }
            };
            match receipt {
                Ok(Some(r)) if !r.already_erased => done += 1,
                Ok(_) => {}
                // An unfinished import may hold the person's row: the next run takes it.
                Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        after = Some(last);
    }
}

/// The daily run: whichever instance claims the UTC day first runs it.
pub async fn worker(app: App, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(LOOK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = stop.changed() => if changed.is_err() || *stop.borrow() { break },
        }
        let now = OffsetDateTime::now_utc();
        match app.store.try_claim_period(JOB, retention::day_of(now)).await {
            Ok(true) => {
                if let Err(e) = run(&app, Trigger::Schedule, false, now).await {
                    tracing::warn!(error = %e, "the retention run failed; tomorrow's runs again");
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not claim the retention run"),
        }
    }
}
