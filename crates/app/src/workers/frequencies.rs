//! What the resolver learns from the stored leads: name frequencies, counted at start-up,
//! every hour and whenever the store has grown by half since the last count (an import
//! into a new store), so "Michael Johnson at a 5,000-person company" needs more than name
//! and company to merge, as it does in `leadflow dedupe`; and the matching weights
//! ([`crate::weights`]), read from the store at each count and trained once a day by one
//! instance. Without frequencies the lead-level precision of the labelled set falls below
//! 0.99 from 20,000 leads on (docs/BENCHMARKS.md). Each instance counts for itself; a
//! count is a read of every lead, a page at a time.

use crate::{App, weights};
use leadflow_core::resolve::{self, NameFrequencies};
use leadflow_store::{DynStore, StoreError};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;

/// The longest between two counts.
const EVERY: Duration = Duration::from_secs(3600);
/// How often the store's size is looked at.
const LOOK: Duration = Duration::from_secs(60);
const PAGE: usize = 1_000;

pub(super) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let (mut counted_at, mut counted) = (None::<std::time::Instant>, 0u64);
    while !*stop.borrow() {
        let now_leads = app.store.count_leads().await.unwrap_or(counted);
        let due = counted_at.is_none_or(|at| at.elapsed() >= EVERY) || now_leads >= counted + counted / 2 + 100;
        if due {
            match learn(&app).await {
                Ok(leads) => {
                    tracing::info!(leads, "counted name frequencies for matching");
                    counted = leads as u64;
                }
                Err(e) => tracing::warn!(error = %e, "could not read the matching weights or count frequencies"),
            }
            counted_at = Some(std::time::Instant::now());
            train_once_a_day(&app, counted).await;
        }
        tokio::select! {
            () = tokio::time::sleep(LOOK) => {}
            changed = stop.changed() => if changed.is_err() { break },
        }
    }
}

/// Decides with the stored matching weights and the name frequencies of every stored
/// lead from now on; how many leads were counted.
pub async fn learn(app: &App) -> Result<usize, StoreError> {
    weights::load(app).await?;
    let (frequencies, leads) = count(&app.store).await?;
    app.config.matching.use_frequencies(frequencies);
    Ok(leads)
}

/// Trains the matching weights if the store is large enough and no instance has today.
async fn train_once_a_day(app: &App, leads: u64) {
    if leads < weights::MIN_LEADS {
        return;
    }
    let now = OffsetDateTime::now_utc();
    let day = now.replace_time(time::Time::MIDNIGHT);
    match app.store.try_claim_period("matching_train", day).await {
        Ok(true) => match weights::train(app).await {
            Ok(trained) => tracing::info!(leads = trained.leads, "trained the matching weights"),
            Err(e) => tracing::warn!(error = %e, "could not train the matching weights"),
        },
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not claim today's training"),
    }
}

/// The frequencies over every stored lead, and how many leads that was.
pub async fn count(store: &DynStore) -> Result<(NameFrequencies, usize), StoreError> {
    let mut frequencies = NameFrequencies::new();
    let (mut after, mut leads) = (None, 0);
    loop {
        let page = store.list_leads(after, PAGE).await?;
        for lead in &page {
            frequencies.add(&resolve::match_record(&lead.fields, &lead.derived));
        }
        leads += page.len();
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.id),
            _ => break,
        }
    }
    frequencies.finish();
    Ok((frequencies, leads))
}
